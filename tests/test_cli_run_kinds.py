"""A command given a run of a kind it does not take exits 2 with one line that names the
run's kind and the commands that serve it (tiny real runs of every kind)."""

import os

import numpy as np
import pytest

from vaekit.cli import main


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("kinds")


@pytest.fixture(scope="module")
def image_run(root):
    out = root / "image"
    assert main(["train", "digits", "--epochs", "1", "--out", str(out), "--set", "data.limit=100",
                 "--set", "model.latent_dim=2", "--set", "model.hidden=[16]", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def text_run(root):
    words = ["the cat", "a dog", "my friend"], ["sees", "likes"], ["a fish", "the car", "bread"]
    rng = np.random.default_rng(0)
    lines = [" ".join(part[rng.integers(len(part))] for part in words) for _ in range(60)]
    (root / "s.txt").write_text("\n".join(lines) + "\n")
    out = root / "text"
    assert main(["train", "text", "--data", str(root / "s.txt"), "--epochs", "1", "--out", str(out),
                 "--set", "model.hidden=8", "--set", "model.embedding_dim=4", "--set", "model.latent_dim=2",
                 "--set", "data.min_count=1", "--set", "data.val_size=0.1", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def molecule_run(root, tmp_path_factory):
    smiles = ["CCO", "CCN", "CCC", "CCCl", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "CCOC", "CNC", "OCCO",
              "CC(C)O", "CCCC", "c1ccncc1", "CC#N", "C=CC", "CCS", "COC", "CCCO", "NCCO", "CC(N)=O"]
    (root / "lib.smi").write_text("\n".join(smiles) + "\n")
    out = root / "molecule"
    os.environ.setdefault("VAEKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    assert main(["train", "molecules", "--data", str(root / "lib.smi"), "--epochs", "1", "--out", str(out),
                 "--set", "model.hidden=8", "--set", "model.embedding_dim=4", "--set", "model.latent_dim=2",
                 "--set", "model.property_hidden=4", "--set", "data.test_size=0.1", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def table(root):
    rng = np.random.default_rng(0)
    rows = ["a,b,c"] + [",".join(f"{v:.3f}" for v in r) for r in rng.normal(size=(80, 3))]
    (root / "table.csv").write_text("\n".join(rows) + "\n")
    return root / "table.csv"


@pytest.fixture(scope="module")
def anomaly_run(root, table):
    out = root / "anomaly"
    assert main(["anomaly", "fit", str(table), "--max-steps", "5", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def reduction_run(root, table):
    out = root / "reduction"
    assert main(["reduce", "fit", str(table), "--max-iter", "1", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def recommender_run(root):
    rng = np.random.default_rng(0)
    lines = ["user,item,rating"] + [f"u{u},m{i},5" for u in range(40) for i in rng.choice(12, 5, replace=False)]
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    out = root / "recommender"
    assert main(["recommend", "fit", str(root / "ratings.csv"), "--out", str(out), "--epochs", "1",
                 "--no-progress"]) == 0
    return out


TEXT_COMMANDS = "For text runs use: vaekit evaluate, sample, reconstruct, interpolate"
MOLECULE_COMMANDS = "For molecule runs use: vaekit evaluate, sample, reconstruct, interpolate, optimize"
ANOMALY_COMMANDS = "For anomaly detector runs use: vaekit anomaly score"
REDUCTION_COMMANDS = "For dimensionality-reduction runs use: vaekit reduce transform"
RECOMMENDER_COMMANDS = "For recommender runs use: vaekit recommend top / similar"


@pytest.mark.parametrize("run, args, message", [
    ("text_run", ["traverse"], "is a text run; `vaekit traverse` takes image runs only. " + TEXT_COMMANDS),
    ("text_run", ["latent-map"], "is a text run; `vaekit latent-map` takes image runs only. " + TEXT_COMMANDS),
    ("text_run", ["encode", "{img}"], "is a text run; `vaekit encode` takes image runs only. " + TEXT_COMMANDS),
    ("molecule_run", ["traverse"], "is a molecule run; `vaekit traverse` takes image runs only. "
                                   + MOLECULE_COMMANDS),
    ("molecule_run", ["latent-map"], "is a molecule run; `vaekit latent-map`"),
    ("molecule_run", ["encode", "{img}"], "is a molecule run; `vaekit encode`"),
    ("anomaly_run", ["encode", "{img}"], "is an anomaly detector run; `vaekit encode` takes image runs only. "
                                         + ANOMALY_COMMANDS),
    ("anomaly_run", ["sample", "-n", "2"], "is an anomaly detector run; `vaekit sample` takes image, text and "
                                           "molecule runs. " + ANOMALY_COMMANDS),
    ("anomaly_run", ["evaluate"], "is an anomaly detector run; `vaekit evaluate`"),
    ("anomaly_run", ["reconstruct"], "is an anomaly detector run; `vaekit reconstruct`"),
    ("reduction_run", ["sample", "-n", "2"], "is a dimensionality-reduction run; `vaekit sample` takes image, "
                                             "text and molecule runs. " + REDUCTION_COMMANDS),
    ("reduction_run", ["encode", "{img}"], "is a dimensionality-reduction run; `vaekit encode`"),
    ("reduction_run", ["evaluate"], "is a dimensionality-reduction run; `vaekit evaluate`"),
    ("reduction_run", ["traverse"], "is a dimensionality-reduction run; `vaekit traverse`"),
    ("recommender_run", ["evaluate"], "is a recommender run; `vaekit evaluate` takes image, text and molecule "
                                      "runs. " + RECOMMENDER_COMMANDS),
    ("recommender_run", ["interpolate", "0", "1"], "is a recommender run; `vaekit interpolate`"),
    ("image_run", ["optimize"], "is an image run; `vaekit optimize` takes molecule runs only (train one with "
                                "`vaekit train zinc250k`). For image runs use: vaekit evaluate, sample, reconstruct, "
                                "interpolate, traverse, latent-map, encode"),
    ("anomaly_run", ["optimize"], "is an anomaly detector run; `vaekit optimize` takes molecule runs only"),
])
def test_a_run_of_another_kind_is_refused_naming_its_kind(request, tmp_path, capsys, run, args, message):
    directory = request.getfixturevalue(run)
    (tmp_path / "a.png").write_bytes(b"")  # never read: the kind is checked first
    command = [args[0], str(directory), *[a.replace("{img}", str(tmp_path / "a.png")) for a in args[1:]]]
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {directory} ") and message in err


def test_a_run_of_a_kind_the_command_takes_still_runs(text_run, molecule_run, tmp_path):
    assert main(["sample", str(text_run), "-n", "2"]) == 0
    assert main(["sample", str(molecule_run), "-n", "2", "--out", str(tmp_path / "m.csv")]) == 0


def test_a_directory_without_a_run_is_left_to_the_loader(tmp_path, capsys):
    assert main(["traverse", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
