"""`vaekit recommend fit|top|similar` on a generated ratings file."""

import json

import numpy as np
import pytest

from vaekit.cli import main


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    rng = np.random.default_rng(0)
    lines = ["user_id,movie,stars"]
    for u in range(80):
        base = 0 if u % 2 == 0 else 20
        for i in rng.choice(20, 8, replace=False):
            lines.append(f"u{u},m{base + i},{rng.integers(1, 6)}")
    lines.append("u0,m0,5")  # a duplicate
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def run(ratings, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "rec"
    code = main(["recommend", "fit", str(ratings), "--out", str(out), "--user-col", "user_id", "--item-col", "movie",
                 "--rating-col", "stars", "--min-rating", "1", "--epochs", "5", "--batch-size", "16", "--no-progress"])
    assert code == 0
    return out


def test_fit_writes_a_run_directory(run):
    for name in ("config.json", "model.safetensors", "recommender.json", "histories.safetensors",
                 "metrics.jsonl", "README.md"):
        assert (run / name).is_file(), name
    assert "val_ndcg_100" in json.loads((run / "metrics.jsonl").read_text().splitlines()[0])


def test_fit_takes_the_model_settings(ratings, tmp_path):
    out = tmp_path / "linear"
    assert main(["recommend", "fit", str(ratings), "--out", str(out), "--user-col", "user_id", "--item-col", "movie",
                 "--rating-col", "stars", "--min-rating", "1", "--epochs", "2", "--batch-size", "16", "--hidden", "",
                 "--latent-dim", "8", "--dropout", "0.3", "--beta-cap", "0.05", "--anneal-epochs", "1", "--lr", "0.002",
                 "--weight-decay", "0.00001", "--weight-average", "0.7", "--no-progress"]) == 0
    meta = json.loads((out / "recommender.json").read_text())
    settings = meta["params"]
    assert settings["hidden"] == [] and settings["latent_dim"] == 8 and settings["weight_decay"] == 1e-5
    assert settings["weight_average"] == 0.7
    assert (settings["dropout"], settings["beta_cap"], settings["anneal_epochs"], settings["lr"]) == (0.3, 0.05, 1, 0.002)


def test_top_and_similar(run, capsys):
    assert main(["recommend", "top", str(run), "--user-history", "m1,m2,unknown-item", "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["items"]) == 3 and out["unknown"] == ["unknown-item"]
    assert main(["recommend", "similar", str(run), "m1", "-k", "2"]) == 0
    assert "items similar to m1" in capsys.readouterr().out


def test_a_json_history_takes_ids_with_commas(tmp_path, capsys):
    rng = np.random.default_rng(1)
    names = ['"Movie, The"', "m1", "m2", "m3", "m4", "m5"]
    lines = ["user,item"] + [f"u{u},{names[i]}" for u in range(40) for i in rng.choice(6, 5, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "rec"
    assert main(["recommend", "fit", str(tmp_path / "r.csv"), "--out", str(out), "--epochs", "2",
                 "--batch-size", "8", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["recommend", "top", str(out), "--user-history", '["Movie, The", "m1", "nope"]', "-k", "2",
                 "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["unknown"] == ["nope"] and "Movie, The" not in answer["items"]  # known, and seen
    assert main(["recommend", "top", str(out), "--user-history", "Movie, The", "-k", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown"] == ["Movie", "The"]  # the comma form splits it
    for text in ("[REC] (2007),m1", "[REC]"):  # ids with brackets, in the comma form: not JSON
        assert main(["recommend", "top", str(out), "--user-history", text, "-k", "2", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["unknown"] == [text.split(",")[0]]


@pytest.mark.parametrize("args, message", [
    (["top", "RUN", "--user-history", '[{"id": 1}]'], "a JSON list of item ids"),
    (["top", "RUN", "--user-history", "[null]"], "a JSON list of item ids"),
    (["top", "RUN", "--user-history", '["1", 2'], "not valid JSON"),
    (["top", "RUN", "--user-history", '[ "1", "2",]'], "not valid JSON"),
    (["top", "RUN", "--user-history", "m1", "-k", "0"], "k must be a positive integer"),
    (["top", "RUN", "--user-history", "m1", "-k", "100000"], "larger than"),
    (["top", "RUN"], "exactly one of"),
    (["top", "RUN", "--user", "nobody"], "unknown user id"),
    (["fit", "RATINGS", "--out", "OUT", "--user-col", "user_id", "--item-col", "item"], "no item column 'item'"),
    (["fit", "RATINGS", "--out", "OUT", "--user-col", "user_id", "--item-col", "movie", "--rating-col", "stars",
      "--min-rating", "9"], "no interactions left"),
    (["fit", "RATINGS", "--out", "OUT", "--user-col", "user_id", "--item-col", "movie", "--rating-col", "stars",
      "--hidden", "600,x"], "--hidden must be positive integers"),
    (["fit", "RATINGS", "--out", "OUT", "--user-col", "user_id", "--item-col", "movie", "--rating-col", "stars",
      "--hidden", "\u00b2"], "--hidden must be positive integers"),
    (["fit", "RATINGS", "--out", "OUT", "--user-col", "user_id", "--item-col", "movie", "--rating-col", "stars",
      "--dropout", "1.5"], "dropout must be in [0, 1)"),
    (["fit", "RATINGS", "--out", "OUT", "--user-col", "user_id", "--item-col", "movie", "--rating-col", "stars",
      "--weight-average", "1"], "weight_average must be a decay in [0, 1)"),
])
def test_bad_input_exits_2_with_a_message(run, ratings, tmp_path, capsys, args, message):
    args = [str(run) if a == "RUN" else str(ratings) if a == "RATINGS" else str(tmp_path / "o") if a == "OUT" else a
            for a in args]
    assert main(["recommend", *args]) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_every_user_of_the_file_is_known_including_validation_users(run, capsys):
    meta = json.loads((run / "recommender.json").read_text())
    assert len(meta["user_ids"]) == 80 and meta["report"]["validation_users"] == 8
    held_out = set(meta["user_ids"]) - {f"u{u}" for u in range(80)}
    assert not held_out
    for user in ("u0", "u79"):
        assert main(["recommend", "top", str(run), "--user", user, "-k", "2", "--json"]) == 0
        assert len(json.loads(capsys.readouterr().out)["items"]) == 2


def test_a_failed_overwrite_leaves_the_previous_run_as_it_was(run, ratings, tmp_path, capsys):
    import shutil

    old = tmp_path / "rec"
    shutil.copytree(run, old)
    before = {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()}
    code = main(["recommend", "fit", str(ratings), "--out", str(old), "--overwrite", "--user-col", "user_id",
                 "--item-col", "movie", "--rating-col", "stars", "--validation-users", "80", "--epochs", "1",
                 "--no-progress"])
    assert code == 2 and "validation" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]  # no staging directory left behind
    assert main(["recommend", "top", str(old), "--user-history", "m1", "-k", "2"]) == 0


def test_an_overwrite_replaces_the_run_whole(run, ratings, tmp_path):
    import shutil

    old = tmp_path / "rec"
    shutil.copytree(run, old)
    (old / "stale.txt").write_text("from the previous run")
    assert main(["recommend", "fit", str(ratings), "--out", str(old), "--overwrite", "--user-col", "user_id",
                 "--item-col", "movie", "--rating-col", "stars", "--epochs", "1", "--no-progress"]) == 0
    assert not (old / "stale.txt").exists() and (old / "recommender.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


@pytest.mark.parametrize("command", ["fit", "top"])
def test_a_file_where_the_run_directory_should_be(ratings, tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("x")
    args = (["fit", str(ratings), "--out", str(afile), "--user-col", "user_id", "--item-col", "movie"]
            if command == "fit" else ["top", str(afile), "--user-history", "m1"])
    assert main(["recommend", *args]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--variant", "foo"], "variant must be 'vae' or 'dae'"),
    (["--dropout", "1.5"], "dropout must be in [0, 1)"),
    (["--hidden", "a,b"], "--hidden must be positive integers"),
    (["--validation-users", "-1"], "--validation-users must be >= 0"),
    (["--out", "RUN"], "already exists"),
])
def test_bad_settings_are_refused_before_the_data_is_read(run, tmp_path, capsys, monkeypatch, args, message):
    import vaekit.recommend.cli as rec_cli

    def never(*_args, **_kwargs):
        raise AssertionError("the data was read before the settings were checked")

    monkeypatch.setattr(rec_cli, "load_interactions", never)
    args = [str(run) if a == "RUN" else a for a in args]
    assert main(["recommend", "fit", "ratings.csv", "--out", str(tmp_path / "o"), *args]) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
