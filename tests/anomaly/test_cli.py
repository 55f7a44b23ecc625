"""`vaekit anomaly fit|score` on generated CSV and .npz files; bad input exits 2."""

import numpy as np
import pandas as pd
import pytest

from vaekit.cli import main

from .conftest import mixed_table
from .test_timeseries import sine


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("anomaly-data")
    df = mixed_table(300)
    df["label"] = 0
    df.loc[:5, "c"] = -df.loc[:5, "c"] + 6
    df.loc[:5, "label"] = 1
    df.loc[10, "b"] = np.nan
    df.to_csv(d / "table.csv", index=False)
    new = df.sample(frac=1.0, random_state=0)[["proto", "c", "const", "b", "a", "label"]].head(40)
    new.to_csv(d / "new.csv", index=False)
    X = df[["a", "b", "c"]].fillna(0).to_numpy()
    np.savez(d / "table.npz", X=X, y=df["label"].to_numpy())
    sine(300, spike_at=250).to_csv(d / "series.csv", index=False)
    return d


@pytest.fixture(scope="module")
def table_run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "table"
    code = main(["anomaly", "fit", str(files / "table.csv"), "--contamination", "0.05", "--out", str(out),
                 "--label-col", "label", "--max-steps", "150", "--no-progress"])
    assert code == 0
    return out


def test_fit_writes_a_run_directory(table_run, capsys):
    for name in ("config.json", "model.safetensors", "detector.json", "detector.safetensors", "metrics.jsonl",
                 "README.md", "figures/score_histogram.png"):
        assert (table_run / name).is_file(), name


def test_score_writes_rows_with_labels_and_top_columns(table_run, files, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["anomaly", "score", str(table_run), str(files / "new.csv"), "--out", str(out),
                 "--figure", str(tmp_path / "h.png")]) == 0
    table = pd.read_csv(out)
    assert len(table) == 40
    assert list(table.columns[:4]) == ["row", "score", "label", "probability"]
    assert {"top1", "top1_share", "top3"} <= set(table.columns)
    assert set(table["top1"]) <= {"a", "b", "c", "proto"}
    assert (tmp_path / "h.png").is_file()
    assert "against the labels: ROC-AUC" in capsys.readouterr().out


def test_npz_and_series(files, tmp_path, capsys):
    run = tmp_path / "npz"
    assert main(["anomaly", "fit", str(files / "table.npz"), "--out", str(run), "--max-steps", "50",
                 "--no-progress"]) == 0
    assert "on the training rows (labels not used to fit): ROC-AUC" in capsys.readouterr().out
    srun = tmp_path / "series"
    assert main(["anomaly", "fit", str(files / "series.csv"), "--out", str(srun), "--window", "24",
                 "--max-steps", "60", "--contamination", "0.01", "--no-progress"]) == 0
    assert "series detector" in capsys.readouterr().out
    assert (srun / "figures" / "series.png").is_file()
    out = tmp_path / "s.csv"
    assert main(["anomaly", "score", str(srun), str(files / "series.csv"), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:3]) == ["row", "timestamp", "score"] and len(table) == 300


def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case, message", [
    ("contamination", "contamination must be in (0, 0.5]"),
    ("missing_column", "columns missing from the data"),
    ("unsorted", "timestamps are not sorted"),
    ("short", "shorter than the window"),
    ("npz_without_x", "no array 'X'"),
    ("text_in_numbers", "is numeric but row 2 holds 'oops'"),
    ("not_a_run", "is not an anomaly detector directory"),
])
def test_bad_input_exits_2_with_one_line(case, message, files, table_run, tmp_path, capsys):
    fit = ["anomaly", "fit", "--out", str(tmp_path / "o"), "--max-steps", "5", "--no-progress"]
    if case == "contamination":
        args = fit + [str(files / "table.csv"), "--contamination", "0.7"]
    elif case == "missing_column":
        pd.read_csv(files / "new.csv").drop(columns=["b"]).to_csv(tmp_path / "x.csv", index=False)
        args = ["anomaly", "score", str(table_run), str(tmp_path / "x.csv"), "--out", str(tmp_path / "s.csv")]
    elif case == "unsorted":
        args = fit + [_write(tmp_path / "u.csv", "timestamp,value\n2024-01-02,1\n2024-01-01,2\n2024-01-03,3\n")]
    elif case == "short":
        args = fit + [_write(tmp_path / "s.csv", "timestamp,value\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n")]
    elif case == "npz_without_x":
        np.savez(tmp_path / "bad.npz", data=np.zeros((3, 2)))
        args = fit + [str(tmp_path / "bad.npz")]
    elif case == "text_in_numbers":
        rows = "\n".join(f"{i},{i * 2}" for i in range(30))
        args = fit + [_write(tmp_path / "t.csv", "a,b\n0,1\n1,2\n2,oops\n" + rows + "\n")]
    else:
        args = ["anomaly", "score", str(tmp_path), str(files / "new.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split())


@pytest.mark.parametrize("data", ["table.csv", "series.csv"])
@pytest.mark.parametrize("steps", ["0", "-5"])
def test_max_steps_below_one_is_refused(data, steps, files, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["anomaly", "fit", str(files / data), "--out", str(out), "--window", "24",
                 "--max-steps", steps, "--no-progress"]) == 2
    assert f"--max-steps must be a positive integer, got {steps}" in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_label_is_shown_as_a_plain_value(files, tmp_path, capsys):
    table = pd.read_csv(files / "table.csv").assign(hour=lambda d: np.arange(len(d)) % 24)
    table.loc[:1, "hour"] = [1, 22]
    table.to_csv(tmp_path / "t.csv", index=False)
    assert main(["anomaly", "fit", str(tmp_path / "t.csv"), "--out", str(tmp_path / "o"), "--label-col", "hour",
                 "--max-steps", "5", "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "label column 'hour': labels must be 0 (normal) or 1 (anomaly), found 22" in err
    assert "np." not in err


def test_parquet_without_an_engine_is_a_clear_error(tmp_path, capsys):
    try:
        import pyarrow  # noqa: F401

        pytest.skip("pyarrow is installed: Parquet is read")
    except ImportError:
        pass
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    assert main(["anomaly", "fit", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert "reading Parquet needs pyarrow" in capsys.readouterr().err


def test_parquet_fit_and_score(files, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    table = pd.read_csv(files / "table.csv")
    table.to_parquet(tmp_path / "table.parquet")
    table.head(25).to_parquet(tmp_path / "new.parquet")
    run = tmp_path / "pq"
    assert main(["anomaly", "fit", str(tmp_path / "table.parquet"), "--out", str(run), "--label-col", "label",
                 "--max-steps", "40", "--no-progress"]) == 0
    out = tmp_path / "scores.csv"
    assert main(["anomaly", "score", str(run), str(tmp_path / "new.parquet"), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 25


def test_corrupt_parquet_names_the_file(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    (tmp_path / "t.parquet").write_bytes(b"PAR1 not really")
    assert main(["anomaly", "fit", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert "t.parquet" in capsys.readouterr().err


def test_empty_parquet_is_refused(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(tmp_path / "e.parquet")
    assert main(["anomaly", "fit", str(tmp_path / "e.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert "no rows" in capsys.readouterr().err
