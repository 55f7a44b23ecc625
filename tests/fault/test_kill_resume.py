"""A training process killed with SIGKILL at a random step, then resumed, ends exactly
where an uninterrupted run ends: weights, optimizer state and metrics, bitwise on CPU."""

import json
import os
import random
import signal
import subprocess
import sys
import time

from safetensors.torch import load_file

ARGS = ["digits", "--epochs", "6", "--set", "data.limit=600", "--set", "model.latent_dim=4",
        "--set", "model.hidden=[64]", "--set", "train.batch_size=16", "--set", "train.patience=null",
        "--set", "train.checkpoint_every=7", "--no-progress"]


def env():
    return dict(os.environ, OMP_NUM_THREADS="1", VAEKIT_OFFLINE="1")


def train(out, *extra):
    return subprocess.run([sys.executable, "-m", "vaekit", "train", *ARGS, "--out", str(out), *extra],
                          env=env(), capture_output=True, text=True, timeout=600)


def metrics(run):
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_second")} for r in rows]


def test_sigkill_at_a_random_step_then_resume_is_bitwise_identical(tmp_path):
    ref = train(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    rng = random.Random(os.getpid())
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "train", *ARGS, "--out", str(run)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoints" / "last.safetensors"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the run, maybe in the middle of a write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = train(run, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_file(run / "model.safetensors"), load_file(tmp_path / "ref" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    ca, cb = load_file(ckpt), load_file(tmp_path / "ref" / "checkpoints" / "last.safetensors")
    for k in ca:
        if k.startswith(("optim.", "model.")):
            assert (ca[k] == cb[k]).all(), k
    assert metrics(run) == metrics(tmp_path / "ref")
    assert not list((run / "checkpoints").glob(".*.tmp")), "a stale temp file was left behind"
