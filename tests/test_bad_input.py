"""Every bad input of the CLI gets a one-line error and exit code 2, and loses nothing."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from vaekit import VAE
from vaekit.cli import main
from vaekit.errors import ModelFileError

FAST = ["--set", "data.limit=200", "--set", "model.latent_dim=2", "--set", "model.hidden=[16]", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "run"
    assert main(["train", "digits", "--epochs", "1", "--out", str(out), *FAST]) == 0
    return out


@pytest.fixture
def cli(capsys, monkeypatch):
    """Call the CLI in-process: exit code and what it printed on stderr (one line)."""
    monkeypatch.setenv("VAEKIT_DATA_DIR", "/nonexistent")
    monkeypatch.setenv("COLUMNS", "300")

    def call(*args):
        capsys.readouterr()
        code = main(list(args))
        return code, capsys.readouterr().err.strip()

    return call


def test_the_installed_entry_point_exits_2_with_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "vaekit", "train", "nosuchpreset", "--out", str(tmp_path)],
                       capture_output=True, text=True, env={"COLUMNS": "300", "PATH": "", "VAEKIT_OFFLINE": "1"})
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "unknown preset" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "images", "--data", "/no/such/path", "--out", "{tmp}/a"], "does not exist"),
    (["train", "nosuchpreset", "--out", "{tmp}/a"], "unknown preset 'nosuchpreset'"),
    (["train", "digits", "--set", "train.bogus=1", "--out", "{tmp}/a"], "unknown config key 'train.bogus'"),
    (["train", "digits", "--set", "model.latent_dim=0", "--out", "{tmp}/a"], "model.latent_dim"),
    (["train", "digits", "--set", "model.latent_dim=-3", "--out", "{tmp}/a"], "model.latent_dim"),
    (["train", "digits", "--set", "train.batch_size=0", "--out", "{tmp}/a"], "train.batch_size"),
    (["train", "digits", "--set", "noequals", "--out", "{tmp}/a"], "key=value"),
    (["train", "digits", "--set", "train.adam_betas=[0.9,1.0]", "--out", "{tmp}/a"], "train.adam_betas.1"),
    (["train", "digits", "--set", "train.adam_betas=0.9", "--out", "{tmp}/a"], "train.adam_betas"),
    (["train", "digits", "--skip-nonfinite", "-1", "--out", "{tmp}/a"], "train.skip_nonfinite"),
    (["train", "mnist", "--out", "{tmp}/a"], "dataset mnist: file train-images-idx3-ubyte.gz not found"),
    (["sample", "{tmp}/missing-run"], "does not exist"),
    (["sample", "{run}", "-n", "0"], "must be > 0"),
    (["evaluate", "{run}", "--iw-samples", "-5"], "must be > 0"),
    (["traverse", "{run}", "--dims", "0,99"], "out of range"),
    (["interpolate", "{run}", "0", "100000"], "out of range"),
])
def test_one_line_error_and_exit_2(args, message, run, tmp_path, cli):
    args = [a.format(tmp=tmp_path, run=run) for a in args]
    code, err = cli(*args)
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err


def test_existing_run_directory_is_refused(run, cli):
    code, err = cli("train", "digits", "--out", str(run), *FAST)
    assert code == 2 and "already exists; use --overwrite or --resume" in err
    assert (run / "model.safetensors").is_file()


def test_mixed_sizes_nan_and_empty_data(tmp_path, cli):
    from PIL import Image

    (tmp_path / "mixed").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(tmp_path / "mixed" / "b.png")
    code, err = cli("train", "images", "--data", str(tmp_path / "mixed"), "--out", str(tmp_path / "r1"))
    assert code == 2 and "mixed sizes" in err
    x = np.random.rand(50, 8, 8)
    x[7, 1, 1] = np.inf
    np.save(tmp_path / "inf.npy", x)
    code, err = cli("train", "images", "--data", str(tmp_path / "inf.npy"), "--out", str(tmp_path / "r2"))
    assert code == 2 and "NaN or inf" in err
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8)))
    code, err = cli("train", "images", "--data", str(tmp_path / "empty.npy"), "--out", str(tmp_path / "r3"))
    assert code == 2 and "empty" in err


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pickle", "torchzip"])
def test_damaged_model_files_are_refused(run, tmp_path, damage, cli):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    weights = copy / "model.safetensors"
    marker = tmp_path / "executed"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage":
        weights.write_bytes(b"\x00" * 64)
    elif damage == "pickle":
        class Payload:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        weights.write_bytes(pickle.dumps(Payload()))
    else:
        import zipfile

        with zipfile.ZipFile(weights, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError):
        VAE.from_pretrained(copy)
    code, err = cli("sample", str(copy), "--out", str(tmp_path / "s.png"))
    assert code == 2 and str(weights) in err
    assert not marker.exists()  # the pickle payload never ran


def test_oversized_model_description_is_refused_before_allocating(run, tmp_path):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["data_shape"] = [1, 100_000, 100_000]  # would need ~10^10 weights
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="asks for .* numbers"):
        VAE.from_pretrained(copy)


def test_resume_without_checkpoint_and_corrupted_config(tmp_path, run, cli):
    code, err = cli("train", "digits", "--resume", "--out", str(tmp_path / "none"))
    assert code == 2 and "cannot resume" in err
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "config.json").write_text("{not json")
    code, err = cli("sample", str(copy))
    assert code == 2 and "config.json is not valid JSON" in err


def test_settings_given_with_resume_are_reported_as_not_applied(tmp_path, cli):
    out = tmp_path / "run"
    assert main(["train", "digits", "--epochs", "1", "--out", str(out), *FAST]) == 0
    before = (out / "model.safetensors").read_bytes()
    code, err = cli("train", "digits", "--out", str(out), "--resume", "--set", "train.lr=5")
    assert code == 0
    assert "a resumed run keeps its own config.json; not applied: train.lr=5" in err
    assert (out / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("damage, message", [
    ("nested", "config.json is not a valid description: its JSON is nested too deeply"),
    ("directory", "config.json is a directory, not a file"),
    ("settings", "config.json: run.config is not valid image settings (1 problem(s); first: model.latent_dim"),
    ("no settings", "config.json: 'run' holds no 'config' section"),
    ("integer weights", "holds int64 numbers where the model has floating-point weights"),
])
def test_damaged_side_files_are_one_line_errors(run, tmp_path, damage, message, cli):
    import json
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    if damage == "nested":
        (copy / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "directory":
        (copy / "config.json").unlink()
        (copy / "config.json").mkdir()
    elif damage == "settings":
        config["run"]["config"]["model"]["latent_dim"] = "many"
        (copy / "config.json").write_text(json.dumps(config))
    elif damage == "no settings":
        config["run"] = {"command": "x"}
        (copy / "config.json").write_text(json.dumps(config))
    else:
        weights = load_file(copy / "model.safetensors")
        weights = {k: v.round().to(torch.int64) for k, v in weights.items()}
        save_file(weights, copy / "model.safetensors")
    code, err = cli("reconstruct", str(copy), "-n", "2", "--out", str(tmp_path / "s.png"))
    assert code == 2 and message in err, err
    assert not (tmp_path / "s.png").exists()
