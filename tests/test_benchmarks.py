"""The device-independent logic of the benchmark scripts, on CPU and tiny data."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import throughput  # noqa: E402


def test_matmul_peak_and_vaekit_throughput_on_cpu():
    assert throughput.matmul_peak(torch.float32, size=128, reps=2, device="cpu") > 0
    x = torch.rand(512, 1, 28, 28)
    assert throughput.vaekit_sps(x, epochs=2, batch=128, lr=1e-3, fast=False, device="cpu") > 0
    model, history = throughput.vaekit_train(x, 2, 256, 1e-3, False)
    assert len(history) == 2 and next(model.parameters()).device.type == "cpu"


def test_pythae_side_runs_when_installed():
    pytest.importorskip("pythae")
    assert throughput.pythae_sps(torch.rand(256, 1, 28, 28), epochs=1, batch=128, lr=1e-3) > 0
