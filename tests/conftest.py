"""Shared fixtures: small real data (scikit-learn's digits), fast settings, one thread."""

import os

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
os.environ["VAEKIT_OFFLINE"] = "1"  # tests never reach for the network


@pytest.fixture(autouse=True)
def _compiler_presumed_working():
    """A test that fakes a missing C++ compiler must not turn compiling off for the next."""
    from vaekit.train import acceleration

    yield
    acceleration._NO_COMPILER = None


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)


@pytest.fixture
def small_config():
    """A run config that trains on digits in a second or two."""
    from vaekit.config import build_config

    return build_config({
        "data": {"name": "digits", "limit": 256},
        "model": {"architecture": "mlp", "latent_dim": 4, "hidden": [32]},
        "train": {"epochs": 3, "batch_size": 32, "patience": None, "seed": 0},
        "eval": {"iw_samples": 20, "n_generated": 100},
    })
