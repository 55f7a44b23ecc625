"""End to end through the CLI on scikit-learn's digits: train, evaluate, sample, reload."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit import VAE
from vaekit.cli import main

FAST = ["--set", "data.limit=300", "--set", "model.latent_dim=4", "--set", "model.hidden=[32]",
        "--set", "train.batch_size=64", "--set", "eval.iw_samples=10", "--set", "eval.n_generated=100",
        "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "digits", "--epochs", "3", "--out", str(out), *FAST]) == 0
    return out


def test_train_writes_a_complete_run_directory(run):
    for name in ("config.json", "model.safetensors", "metrics.jsonl", "README.md",
                 "checkpoints/last.safetensors", "checkpoints/best.safetensors"):
        assert (run / name).is_file(), name
    figures = {p.name for p in (run / "figures").glob("*.png")}
    assert {"samples.png", "reconstructions.png", "interpolation.png", "traversals.png",
            "latent_map.png", "training.png", "kl_per_dim.png"} <= figures
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "val_loss" in json.loads(lines[0])
    card = (run / "README.md").read_text()
    assert "vaekit train digits" in card and "seed: 0" in card


def test_evaluate_reports_the_protocol_metrics(run, capsys):
    assert main(["evaluate", str(run), "--iw-samples", "20"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    for key in ("test_elbo", "reconstruction", "kl", "iw_nll", "bits_per_dim", "active_units",
                "kl_per_dim", "mutual_information", "domain_fid", "sample_precision", "sample_recall"):
        assert key in result, key
    assert result["iw_nll"] <= -result["test_elbo"] + 0.5  # the IW bound is tighter than the ELBO
    assert result["iw_samples"] == 20 and result["n_test"] == 180
    assert "iw_nll" in capsys.readouterr().out


def test_saved_model_reloads_with_identical_outputs(run, tmp_path):
    model = VAE.from_pretrained(run)
    x = torch.rand(5, 1, 8, 8)
    model.save_pretrained(tmp_path / "copy")
    again = VAE.from_pretrained(tmp_path / "copy")
    assert torch.equal(model.encode(x).mean, again.encode(x).mean)
    torch.manual_seed(0)
    a = model.sample(4)
    torch.manual_seed(0)
    assert torch.equal(a, again.sample(4))


def test_sample_reconstruct_interpolate_traverse_map_encode(run, tmp_path):
    assert main(["sample", str(run), "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["reconstruct", str(run), "-n", "8", "--out", str(tmp_path / "r.png")]) == 0
    assert main(["interpolate", str(run), "0", "1", "--steps", "5", "--out", str(tmp_path / "i.png")]) == 0
    assert main(["traverse", str(run), "--dims", "0,1", "--out", str(tmp_path / "t.png")]) == 0
    assert main(["latent-map", str(run), "--out", str(tmp_path / "m.png")]) == 0
    np.save(tmp_path / "x.npy", np.random.rand(7, 8, 8).astype(np.float32))
    assert main(["encode", str(run), str(tmp_path / "x.npy"), "--out", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (7, 4)
    for name in "srtim":
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_conditional_vae_samples_a_chosen_label(tmp_path):
    out = tmp_path / "cvae"
    assert main(["train", "digits", "--conditional", "--epochs", "2", "--out", str(out), *FAST]) == 0
    assert main(["sample", str(out), "-n", "8", "--label", "7", "--out", str(tmp_path / "seven.png")]) == 0
    assert VAE.from_pretrained(out).n_classes == 10
    assert main(["sample", str(out), "--label", "12", "--out", str(tmp_path / "x.png")]) == 2


def test_custom_image_folder_with_conv_networks(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray((rng.random((12, 10)) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "images", "--data", str(tmp_path), "--epochs", "2", "--out", str(out),
                 "--set", "model.channels=[4,8]", "--set", "model.hidden=[16]", "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["data_shape"] == [1, 12, 10]


def test_help_lists_every_setting_with_its_default():
    out = subprocess.run([sys.executable, "-m", "vaekit", "train", "--help"], capture_output=True, text=True,
                         env={"COLUMNS": "200", "PATH": ""})
    assert out.returncode == 0
    for key in ("train.free_bits = 0.0", "train.beta.schedule = 'constant'", "model.latent_dim = 16",
                "eval.iw_samples = 1000", "data.binarize = 'dynamic'"):
        assert key in out.stdout, key
    text = " ".join(out.stdout.split())  # the text and molecule presets' own keys too
    for key in ("Settings of the text presets", "model.word_dropout = 0.0", "Settings of the molecules presets",
                "data.representation = 'smiles'", "data.eval_limit = None"):
        assert key in text, key


def test_interpolate_and_encode_take_single_image_files(run, tmp_path, capsys):
    """An image file is one image, and so is an array of the model's image shape
    without the batch axis: (8, 8) for a (1, 8, 8) model, not eight rows of eight."""
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).save(tmp_path / "b.jpg")
    np.save(tmp_path / "one.npy", rng.random((8, 8)).astype(np.float32))
    for a, b in (("a.png", "1"), ("b.jpg", "one.npy")):
        out = tmp_path / f"{a}.png"
        assert main(["interpolate", str(run), str(tmp_path / a), b if b.isdigit() else str(tmp_path / b),
                     "--steps", "3", "--out", str(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"
    for name in ("a.png", "one.npy"):
        assert main(["encode", str(run), str(tmp_path / name), "--out", str(tmp_path / "z.npy")]) == 0
        assert np.load(tmp_path / "z.npy").shape == (1, 4)
    np.save(tmp_path / "two.npy", rng.random((2, 8, 8)).astype(np.float32))
    capsys.readouterr()
    assert main(["interpolate", str(run), str(tmp_path / "two.npy"), "1"]) == 2
    assert "holds 2 images; give one image" in capsys.readouterr().err


@pytest.mark.parametrize("preset, data, generic", [
    ("mnist", "x.npz", "images"),
    ("mnist", "lib.csv", "images"),
    ("ptb", "s.txt", "text"),
    ("zinc250k", "lib.csv", "molecules"),
])
def test_train_refuses_data_that_a_dataset_preset_would_ignore(tmp_path, capsys, monkeypatch, preset, data,
                                                               generic):
    for name in ("VAEKIT_DATA_DIR", "VAEKIT_CACHE_DIR"):  # no dataset at hand: nothing can train by mistake
        monkeypatch.setenv(name, str(tmp_path / "empty"))
    out = tmp_path / "run"
    assert main(["train", preset, "--data", str(tmp_path / data), "--out", str(out), "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"preset '{preset}' trains on the {preset} dataset and would ignore --data" in err
    assert f"`vaekit train {generic} --data {tmp_path / data}`" in err
    assert f"--set data.name={generic}" in err
    assert not out.exists()


def test_train_refuses_a_data_path_set_on_a_dataset_preset(tmp_path, capsys, monkeypatch):
    for name in ("VAEKIT_DATA_DIR", "VAEKIT_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "empty"))
    assert main(["train", "digits", "--set", f"data.path={tmp_path / 'x.npy'}", "--out", str(tmp_path / "r")]) == 2
    assert "would ignore data.path=" in capsys.readouterr().err
    assert main(["train", "moses", "--column", "smiles", "--out", str(tmp_path / "r")]) == 2
    assert "would ignore --column smiles" in capsys.readouterr().err


def test_a_dataset_preset_trains_on_the_file_when_data_name_says_so(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 6, 5)).astype(np.float32))
    out = tmp_path / "run"
    assert main(["train", "digits", "--data", str(tmp_path / "x.npy"), "--set", "data.name=images",
                 "--epochs", "1", "--out", str(out), *FAST]) == 0
    document = json.loads((out / "config.json").read_text())
    assert document["data_shape"] == [1, 6, 5] and document["run"]["config"]["data"]["name"] == "images"


def test_help_lists_every_preset_train_accepts():
    from vaekit.config import load_preset, preset_names

    out = subprocess.run([sys.executable, "-m", "vaekit", "train", "--help"], capture_output=True, text=True,
                         env={"COLUMNS": "200", "PATH": ""})
    listed = " ".join(out.stdout.split()).split("Presets (", 1)[1].split(")", 1)[0]
    names = {n.strip() for group in listed.split(";") for n in group.split(":", 1)[1].split(",")}
    trainable = {n for n in preset_names() if load_preset(n).get("application", "images") in
                 ("images", "text", "molecules")}
    assert names == trainable
    assert {"digits", "mnist", "ptb", "text", "moses", "zinc250k", "molecules"} <= names
    assert "ml-100k" not in names  # fitted by `vaekit recommend fit`


def test_compare_written_to_a_pipe_keeps_markdown_rows_whole(run):
    """One run: every setting is a column, a row far wider than 80 columns."""
    out = subprocess.run([sys.executable, "-m", "vaekit", "compare", str(run)], capture_output=True, text=True,
                         env={"PATH": "", "VAEKIT_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and max(map(len, lines)) > 200
    assert all(line.startswith("| ") or line.startswith("|---") for line in lines)
    assert all(line.endswith("|") for line in lines)
    assert lines[0].count(" | ") == lines[2].count(" | ")


def test_an_error_naming_bracketed_text_is_printed_as_it_is(tmp_path, capsys):
    """Brackets in a message (a path, a SMILES token such as [/O]) are not rich markup."""
    missing = tmp_path / "runs[/O]"
    assert main(["evaluate", str(missing)]) == 2
    assert f"{missing} does not exist" in capsys.readouterr().err
