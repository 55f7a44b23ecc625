"""`vaekit reduce fit|transform` on a digits CSV, and every bad input exits 2 with one line."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vaekit.cli import main
from vaekit.reduction import VAETransformer


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    from sklearn.datasets import load_digits

    d = load_digits(as_frame=True)
    frame = d.frame.iloc[:400].copy()
    frame["target"] = frame["target"].map(lambda t: f"digit {t}")
    root = tmp_path_factory.mktemp("reduce")
    frame.to_csv(root / "train.csv", index=False)
    frame.iloc[:50].to_csv(root / "new.csv", index=False)
    return root


@pytest.fixture(scope="module")
def run(tables):
    out = tables / "run"
    assert main(["reduce", "fit", str(tables / "train.csv"), "--label", "target", "--out", str(out),
                 "--max-iter", "3", "--no-progress"]) == 0
    return out


@pytest.fixture
def cli(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")

    def call(*args):
        capsys.readouterr()
        code = main(list(args))
        return code, capsys.readouterr().err.strip()

    return call


def test_fit_writes_model_codes_history_and_map(run):
    assert {"config.json", "model.safetensors", "metrics.jsonl", "embedding.csv"} <= {p.name for p in run.iterdir()}
    codes = pd.read_csv(run / "embedding.csv")
    assert list(codes.columns) == ["vaetransformer0", "vaetransformer1", "target"] and len(codes) == 400
    assert codes["target"].iloc[0] == "digit 0"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    assert json.loads((run / "config.json").read_text())["kind"] == "reduction"
    assert Image.open(run / "figures" / "embedding.png").size[0] > 300


def test_transform_new_rows_without_refitting(run, tables, cli):
    out = tables / "codes.csv"
    code, err = cli("reduce", "transform", str(run), str(tables / "new.csv"), "--label", "target",
                    "--out", str(out), "--plot", str(tables / "new.png"))
    assert code == 0, err
    codes = pd.read_csv(out)
    fitted = pd.read_csv(run / "embedding.csv")
    np.testing.assert_allclose(codes.iloc[:, :2].to_numpy(), fitted.iloc[:50, :2].to_numpy(), rtol=1e-6)
    assert (tables / "new.png").is_file()
    code, _ = cli("reduce", "transform", str(run), str(tables / "new.csv"), "--label", "target",
                  "--out", str(tables / "s.csv"), "--mode", "sample")
    assert code == 0 and not np.allclose(pd.read_csv(tables / "s.csv").iloc[:, :2], codes.iloc[:, :2])
    assert VAETransformer.load(run).n_features_in_ == 64
    shuffled = pd.read_csv(tables / "new.csv")
    shuffled[shuffled.columns[::-1]].to_csv(tables / "reversed.csv", index=False)
    code, err = cli("reduce", "transform", str(run), str(tables / "reversed.csv"), "--label", "target",
                    "--out", str(tables / "reversed_codes.csv"))
    assert code == 0, err  # columns are matched by name, as when scoring anomalies
    np.testing.assert_allclose(pd.read_csv(tables / "reversed_codes.csv").iloc[:, :2], codes.iloc[:, :2], rtol=1e-6)


def test_bad_inputs_exit_2_with_one_line(run, tables, cli, tmp_path):
    new = str(tables / "new.csv")
    frame = pd.read_csv(new)
    text = frame.copy()
    text["pixel_0_0"] = "x"
    text.to_csv(tmp_path / "text.csv", index=False)
    holes = frame.copy().astype({"pixel_0_1": float})
    holes.loc[3, "pixel_0_1"] = np.nan
    holes.to_csv(tmp_path / "holes.csv", index=False)
    frame.drop(columns=["pixel_0_0"]).to_csv(tmp_path / "narrow.csv", index=False)
    frame.assign(digit=1).to_csv(tmp_path / "wide.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"\x00\xff\xfe" * 50)
    cases = [
        (("reduce", "fit", str(tmp_path / "nothere.csv"), "--out", str(tmp_path / "r1")), "does not exist"),
        (("reduce", "fit", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "r2")), "cannot read"),
        (("reduce", "fit", str(tmp_path / "text.csv"), "--label", "target", "--out", str(tmp_path / "r3")), "non-numeric"),
        (("reduce", "fit", str(tmp_path / "holes.csv"), "--label", "target", "--out", str(tmp_path / "r4")), "pixel_0_1"),
        (("reduce", "fit", new, "--out", str(tmp_path / "r5")), "non-numeric column(s) target"),
        (("reduce", "fit", new, "--label", "nope", "--out", str(tmp_path / "r6")), "no column 'nope'"),
        (("reduce", "fit", new, "--label", "target", "--n-components", "0", "--out", str(tmp_path / "r7")), "n-components"),
        (("reduce", "fit", new, "--label", "target", "--likelihood", "poisson", "--out", str(tmp_path / "r8")), "likelihood"),
        (("reduce", "fit", new, "--label", "target", "--out", str(run)), "already exists"),
        (("reduce", "transform", str(run), str(tmp_path / "narrow.csv"), "--label", "target"),
         "missing column(s) 'pixel_0_0'"),
        (("reduce", "transform", str(run), str(tmp_path / "wide.csv"), "--label", "target"),
         "column(s) the model was not fitted on 'digit' (a label? pass --label NAME)"),
        (("reduce", "transform", str(run), new), "non-numeric"),
        (("reduce", "transform", str(tmp_path / "norun"), new, "--label", "target"), "does not exist"),
        (("reduce", "transform", str(run), new, "--label", "target", "--mode", "median"), "mode"),
    ]
    for args, message in cases:
        code, err = cli(*args)
        assert code == 2, (args, err)
        assert message in err, (args, err)
        assert len(err.splitlines()) <= 4, err  # typer usage errors draw a short box


def test_compare_reads_reduction_runs(run, tables, cli, capsys):
    other = tables / "run2"
    assert main(["reduce", "fit", str(tables / "train.csv"), "--label", "target", "--out", str(other),
                 "--max-iter", "2", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", str(run), str(other)]) == 0
    table = capsys.readouterr().out
    header, _, first, second = table.splitlines()
    assert header == "| run | params.max_iter | epochs | train_loss |"
    assert first.startswith(f"| {run} | 3 | 3 | ") and second.startswith(f"| {other} | 2 | 2 | ")
