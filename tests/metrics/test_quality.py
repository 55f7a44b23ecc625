"""Sample-quality metrics on scikit-learn's 8x8 digits (fast, CPU, no downloads)."""

from __future__ import annotations

import pickle
from importlib import resources

import numpy as np
import pytest
import torch
from torch import nn

from vaekit.errors import ModelFileError
from vaekit.metrics.quality import (
    FeatureNet,
    extract_features,
    feature_net_for,
    frechet_distance,
    load_feature_net,
    mnist_feature_net,
    precision_recall,
    sample_quality,
    save_feature_net,
    train_feature_net,
)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)[:, None])
    y = torch.from_numpy(d.target.astype(np.int64))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[order], y[order]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def net(digits):
    x, y = digits
    return train_feature_net(x[:1400], y[:1400], (1, 8, 8), 10, epochs=10, seed=0)


def test_feature_net_shapes():
    for shape in [(1, 8, 8), (3, 13, 17), (1, 28, 28), (3, 32, 32)]:
        m = FeatureNet(shape, 5)
        x = torch.rand(2, *shape)
        assert m(x).shape == (2, 5) and m.features(x).shape == (2, 128)
        assert m.config == {"in_shape": list(shape), "n_classes": 5, "feature_dim": 128}
    with pytest.raises(ValueError, match="at least 8x8"):
        FeatureNet((1, 7, 7), 10)


def test_training_accuracy_and_determinism(digits, net):
    x, y = digits
    with torch.no_grad():
        acc = (net(x[1400:]).argmax(1) == y[1400:]).float().mean().item()
    assert acc > 0.9
    again = train_feature_net(x[:300], y[:300], (1, 8, 8), 10, epochs=1, seed=3)
    same = train_feature_net(x[:300], y[:300], (1, 8, 8), 10, epochs=1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), same.state_dict().values()))
    assert not again.training


def test_fid_self_zero_and_perturbed_larger(digits, net):
    x, _ = digits
    real = extract_features(net, x[:600])
    assert frechet_distance(real, real) < 1e-6 * float(real.var(0).sum()) + 1e-8
    shifted = extract_features(net, torch.roll(x[:600], shifts=2, dims=3))
    noise = 0.3 * torch.randn(x[:600].shape, generator=torch.Generator().manual_seed(1))
    noisy = extract_features(net, (x[:600] + noise).clamp(0, 1))
    other_half = extract_features(net, x[600:1200])
    base = frechet_distance(real, other_half)
    assert frechet_distance(real, shifted) > 3 * base
    assert frechet_distance(real, noisy) > 3 * base


class _Identity(nn.Module):
    num_features = 16

    def forward(self, f):
        return f


def test_fid_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 16, generator=g, dtype=torch.float64)
    mix = torch.randn(16, 16, generator=g, dtype=torch.float64)
    b = torch.randn(400, 16, generator=g, dtype=torch.float64) @ mix * 0.5 + 1
    tm = FrechetInceptionDistance(feature=_Identity())
    tm.update(a, real=True)
    tm.update(b, real=False)
    assert frechet_distance(a, b) == pytest.approx(float(tm.compute()), rel=1e-6)


def test_precision_recall():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 16, generator=g)
    assert precision_recall(a, a.clone(), k=3) == (1.0, 1.0)
    p, r = precision_recall(a, a + 100.0, k=3)
    assert p == 0.0 and r == 0.0
    b = torch.randn(300, 16, generator=g)  # same distribution: both high
    p, r = precision_recall(a, b, k=3, block=64)  # blocks do not change the answer
    assert (p, r) == precision_recall(a, b, k=3, block=1000)
    assert p > 0.6 and r > 0.6
    with pytest.raises(ValueError, match="at least 4 samples"):
        precision_recall(a, b[:3], k=3)
    with pytest.raises(ValueError, match=r"\(300, 16\).*\(300, 8\)"):
        precision_recall(a, b[:, :8])


def test_sample_quality(digits, net):
    x, _ = digits
    q = sample_quality(net, x[:500], x[500:1000])
    assert set(q) == {"domain_fid", "precision", "recall", "n_real", "n_fake", "classifier_confidence"}
    assert q["n_real"] == q["n_fake"] == 500 and q["classifier_confidence"] > 0.8
    assert q["precision"] > 0.7 and q["recall"] > 0.7
    noise = sample_quality(net, x[:500], torch.rand(500, 1, 8, 8, generator=torch.Generator().manual_seed(2)))
    assert noise["domain_fid"] > 5 * q["domain_fid"] and noise["precision"] < q["precision"]
    with pytest.raises(ValueError, match=r"\(500, 1, 8, 8\).*\(10, 1, 9, 9\)"):
        sample_quality(net, x[:500], torch.rand(10, 1, 9, 9))
    with pytest.raises(ValueError, match="k\\+1 = 4"):
        sample_quality(net, x[:500], x[:3])


def test_save_load_round_trip(tmp_path, digits, net):
    x, _ = digits
    path = tmp_path / "fn.safetensors"
    save_feature_net(net, path)
    assert path.read_bytes()[:1] != b"\x80"
    back = load_feature_net(path)
    assert back.config == net.config and not back.training
    assert torch.equal(extract_features(back, x[:100]), extract_features(net, x[:100]))


class _Boom:
    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled.marker"
    _Boom.marker = marker
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"a": 1, "b": _Boom()}))
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="pickle"):
        load_feature_net(path)
    assert not marker.exists()
    path.write_bytes(b"not a model at all, just text")
    with pytest.raises(ModelFileError):
        load_feature_net(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_feature_net(tmp_path / "missing.safetensors")


def test_feature_net_for(tmp_path, digits):
    x, y = digits
    x, y = x[:64], y[:64]  # one batch per epoch keeps this fast
    assert feature_net_for("digits", x, None, 10, tmp_path) is None
    first = feature_net_for("digits", x, y, 10, tmp_path)
    cached = tmp_path / "feature_net.safetensors"
    assert cached.is_file()
    again = feature_net_for("digits", x, y, 10, tmp_path)  # reused, not retrained
    assert torch.equal(extract_features(first, x), extract_features(again, x))
    other = feature_net_for("digits", x, y % 5, 5, tmp_path)  # config differs: retrained
    assert other.config["n_classes"] == 5 and load_feature_net(cached).config["n_classes"] == 5


def test_bundled_mnist_feature_net():
    asset = resources.files("vaekit.metrics") / "assets" / "mnist_classifier.safetensors"
    if not asset.is_file():
        pytest.skip("bundled MNIST feature net not built (run benchmarks/train_feature_net.py)")
    with resources.as_file(asset) as path:
        assert path.stat().st_size < 2_000_000
    net = mnist_feature_net()
    assert net.config == {"in_shape": [1, 28, 28], "n_classes": 10, "feature_dim": 128}
    assert not net.training
    assert extract_features(net, torch.rand(3, 1, 28, 28)).shape == (3, 128)
    same = feature_net_for("mnist", torch.rand(2, 1, 28, 28), None, 10, None)
    assert same is not None and same.config == net.config
