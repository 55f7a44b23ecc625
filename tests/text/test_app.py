"""`vaekit train text`, `sample`, `reconstruct`, `interpolate`, `evaluate` on a generated corpus."""

import json
import random

import pytest

from vaekit.cli import main
from vaekit.metrics.elbo import elbo_pass
from vaekit.text.app import load_held_out, load_run
from vaekit.text.data import SequenceTensors

TINY = ["--set", "model.hidden=32", "--set", "model.embedding_dim=16", "--set", "model.latent_dim=4",
        "--set", "data.min_count=1", "--set", "train.batch_size=32", "--no-progress"]


def corpus(n=400, seed=0):
    rng = random.Random(seed)
    subj = ["the cat", "a dog", "my friend", "the old man"]
    verb = ["sees", "likes", "eats", "wants"]
    obj = ["the ball", "a fish", "some bread", "the red car"]
    lines = [" ".join([rng.choice(subj), rng.choice(verb), rng.choice(obj)]) for _ in range(n)]
    lines[0] = " ".join(["very"] * 30) + " long"  # longer than max_len: truncated and counted
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    (d / "s.txt").write_text(corpus())
    out = d / "run"
    assert main(["train", "text", "--data", str(d / "s.txt"), "--out", str(out), "--epochs", "4",
                 "--set", "data.max_len=12", *TINY]) == 0
    return out


def test_train_writes_a_text_run(run):
    for name in ("config.json", "model.safetensors", "vocab.json", "data_report.json", "metrics.jsonl", "README.md"):
        assert (run / name).is_file(), name
    report = json.loads((run / "data_report.json").read_text())
    assert report["train"]["truncated_sentences"] + report["valid"]["truncated_sentences"] + \
        report["test"]["truncated_sentences"] == 1
    assert json.loads((run / "config.json").read_text())["kind"] == "text"
    card = (run / "README.md").read_text()
    assert "gru sentence VAE" in card and "vocabulary:" in card and "data shape" not in card


def test_sample_reconstruct_interpolate(run, capsys):
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3", "--strategy", "sample", "--temperature", "0.8"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["sample", str(run), "-n", "2", "--strategy", "beam", "--beam-size", "3"]) == 0
    assert main(["reconstruct", str(run), "the cat likes a zebra"]) == 0
    captured = capsys.readouterr()
    assert "not in the vocabulary, read as <unk>: zebra" in captured.err
    assert main(["interpolate", str(run), "the cat sees a fish", "my friend wants the red car", "--steps", "5"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 5


def test_evaluate_reports_the_text_metrics(run, capsys):
    assert main(["evaluate", str(run), "--iw-samples", "10"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert {"nll", "ppl", "kl", "mutual_info", "active_units"} <= set(result)
    assert result["nll"] > 0 and result["ppl"] > 1 and result["iw_samples"] == 10
    # the IW bound is at least as tight as the ELBO, in expectation: one-sample ELBOs of
    # ~20 test sentences scatter by ~0.13 nats, so compare with their mean over 20 seeds
    model, config, vocab = load_run(run)
    test = SequenceTensors(load_held_out(config, vocab, "test"))
    mean_neg_elbo = sum(-elbo_pass(model, test, seed=s).elbo for s in range(20)) / 20
    assert result["nll"] <= mean_neg_elbo + 1e-3


def test_resume_continues_a_text_run(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["run"]["config"]["train"]["epochs"] = 5
    (copy / "config.json").write_text(json.dumps(cfg))
    assert main(["train", "text", "--out", str(copy), "--resume", "--no-progress"]) == 0
    assert len((copy / "metrics.jsonl").read_text().splitlines()) == 5


def _write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case, message", [
    ("empty", "the file is empty"),
    ("latin1", "line 2 is not UTF-8"),
    ("binary", "holds NUL bytes"),
])
def test_bad_training_files_exit_2(tmp_path, capsys, case, message):
    data = {"empty": b"", "latin1": b"ok\ncaf\xe9 au lait\n", "binary": b"\x00\x01\x02\x03"}[case]
    path = _write(tmp_path / "bad.txt", data)
    assert main(["train", "text", "--data", path, "--out", str(tmp_path / "o"), *TINY]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("args, message", [
    (["sample", "RUN", "--temperature", "0"], "temperature must be > 0"),
    (["sample", "RUN", "--temperature", "-1"], "temperature must be > 0"),
    (["sample", "RUN", "--strategy", "nucleus"], "strategy must be sample, greedy or beam"),
    (["reconstruct", "RUN", "   "], "the sentence is empty"),
    (["reconstruct", "RUN"], "give the sentence"),
    (["interpolate", "RUN", "", "a dog", "--steps", "3"], "the sentence is empty"),
    (["interpolate", "RUN", "a", "b", "--steps", "1"], "must be >= 2"),
    (["reconstruct", "RUN", " ".join(["the"] * 13)], "the sentence has 13 words, more than the 12 this model reads"),
])
def test_bad_generation_requests_exit_2(run, capsys, args, message):
    assert main([str(run) if a == "RUN" else a for a in args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_text_preset_needs_a_file(tmp_path, capsys):
    assert main(["train", "text", "--out", str(tmp_path / "o"), *TINY]) == 2
    assert "needs data.path" in capsys.readouterr().err


def test_held_out_rows_are_the_split_of_the_full_load(run):
    """Evaluation reads only its split: the same rows as the split of the whole data load."""
    import torch

    from vaekit.text.app import load_text_data

    model, config, vocab = load_run(run)
    full = load_text_data(config, vocab, log=lambda m: None)
    assert torch.equal(load_held_out(config, vocab, "test"), full.test.x)
    assert torch.equal(load_held_out(config, vocab, "valid"), full.val.x)


@pytest.mark.parametrize("damage, message", [
    ("config missing", "config.json is missing"),
    ("config truncated", "config.json is not valid JSON"),
    ("vocab of another size", "holds 5 tokens but the model"),
    ("vocab reordered", "is not the vocabulary the model"),
    ("vocab directory", "vocab.json is a directory, not a file"),
])
def test_a_damaged_run_names_its_file_not_the_sentence(run, tmp_path, capsys, damage, message):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    vocab = json.loads((copy / "vocab.json").read_text())
    if damage == "config missing":
        (copy / "config.json").unlink()
    elif damage == "config truncated":
        (copy / "config.json").write_text((copy / "config.json").read_text()[:100])
    elif damage == "vocab of another size":
        (copy / "vocab.json").write_text(json.dumps({**vocab, "tokens": vocab["tokens"][:5]}))
    elif damage == "vocab reordered":
        tokens = vocab["tokens"][:4] + vocab["tokens"][4:][::-1]
        (copy / "vocab.json").write_text(json.dumps({**vocab, "tokens": tokens}))
    else:
        (copy / "vocab.json").unlink()
        (copy / "vocab.json").mkdir()
    assert main(["reconstruct", str(copy), "the cat"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "image run" not in err, err
