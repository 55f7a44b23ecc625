"""Tests for vaekit.plots: every figure is written as a valid PNG of a sensible size,
numpy and torch inputs both work, and bad shapes raise a ValueError naming the argument."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from vaekit import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def png_size(path: Path) -> tuple[int, int]:
    """Check ``path`` is a PNG and return its (width, height) in pixels."""
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    h, w = imread(path).shape[:2]
    return w, h


def imgs(rng, *shape, torch_=False):
    x = rng.random(shape).astype(np.float32)
    return torch.from_numpy(x) if torch_ else x


# ------------------------------------------------------------------------- image_grid
@pytest.mark.parametrize("torch_", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
def test_image_grid_writes_png(tmp_path, rng, torch_, channels):
    out = plots.image_grid(imgs(rng, 5, channels, 8, 8, torch_=torch_),
                           tmp_path / "a" / "b" / "grid.png", title="Samples")
    assert out == tmp_path / "a" / "b" / "grid.png"
    w, h = png_size(out)
    assert w > 100 and h > 100


def test_image_grid_size_grows_with_content(tmp_path, rng):
    small = png_size(plots.image_grid(imgs(rng, 4, 1, 8, 8), tmp_path / "s.png"))
    wide = png_size(plots.image_grid(imgs(rng, 8, 1, 8, 8), tmp_path / "w.png", nrow=8))
    tall = png_size(plots.image_grid(imgs(rng, 8, 1, 8, 8), tmp_path / "t.png", nrow=2))
    assert wide[0] > small[0] and wide[1] < small[1]  # 1x8 vs 2x2
    assert tall[1] > small[1] and tall[0] == small[0]  # 4x2 vs 2x2


def test_image_grid_default_nrow_is_ceil_sqrt(tmp_path, rng):
    five = png_size(plots.image_grid(imgs(rng, 5, 1, 8, 8), tmp_path / "5.png"))
    six = png_size(plots.image_grid(imgs(rng, 6, 1, 8, 8), tmp_path / "6.png", nrow=3))
    assert five == six  # ceil(sqrt(5)) = 3 per row -> 2 rows, like 6 with nrow=3


def test_image_grid_row_labels(tmp_path, rng):
    x = imgs(rng, 6, 1, 8, 8)
    plain = png_size(plots.image_grid(x, tmp_path / "p.png", nrow=3))
    labelled = png_size(plots.image_grid(x, tmp_path / "l.png", nrow=3,
                                         row_labels=["first", "second"]))
    assert labelled[0] > plain[0]
    with pytest.raises(ValueError, match="row_labels"):
        plots.image_grid(x, tmp_path / "bad.png", nrow=3, row_labels=["only one"])


@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8), (2, 2, 8, 8), (0, 1, 8, 8)])
def test_image_grid_rejects_bad_shapes(tmp_path, rng, shape):
    with pytest.raises(ValueError, match=r"images.*" + re.escape(str(shape))):
        plots.image_grid(rng.random(shape), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_image_grid_rejects_bad_nrow(tmp_path, rng):
    with pytest.raises(ValueError, match="nrow"):
        plots.image_grid(imgs(rng, 4, 1, 8, 8), tmp_path / "bad.png", nrow=0)


# -------------------------------------------------------------- reconstruction_figure
@pytest.mark.parametrize("torch_", [False, True])
def test_reconstruction_figure(tmp_path, rng, torch_):
    x, y = imgs(rng, 6, 3, 8, 8, torch_=torch_), imgs(rng, 6, 3, 8, 8, torch_=torch_)
    w, h = png_size(plots.reconstruction_figure(x, y, tmp_path / "r.png"))
    assert w > h  # 2 rows of 6


def test_reconstruction_figure_wraps_after_16(tmp_path, rng):
    sizes = {n: png_size(plots.reconstruction_figure(
        imgs(rng, n, 1, 8, 8), imgs(rng, n, 1, 8, 8), tmp_path / f"{n}.png"))
        for n in (8, 16, 17)}
    assert sizes[16][0] > sizes[8][0] and sizes[16][1] == sizes[8][1]
    assert sizes[17][0] == sizes[16][0] and sizes[17][1] > sizes[16][1]  # 2 row pairs


def test_reconstruction_figure_rejects_mismatch(tmp_path, rng):
    with pytest.raises(ValueError, match=r"reconstructions.*\(4, 1, 8, 8\)"):
        plots.reconstruction_figure(imgs(rng, 5, 1, 8, 8), imgs(rng, 4, 1, 8, 8),
                                    tmp_path / "bad.png")
    with pytest.raises(ValueError, match="originals"):
        plots.reconstruction_figure(imgs(rng, 5, 8, 8), imgs(rng, 5, 8, 8), tmp_path / "b.png")


# --------------------------------------------------------------- interpolation_figure
@pytest.mark.parametrize("torch_", [False, True])
def test_interpolation_figure(tmp_path, rng, torch_):
    small = png_size(plots.interpolation_figure(imgs(rng, 2, 5, 1, 8, 8, torch_=torch_),
                                                tmp_path / "i.png"))
    big = png_size(plots.interpolation_figure(imgs(rng, 3, 7, 1, 8, 8, torch_=torch_),
                                              tmp_path / "j.png"))
    assert big[0] > small[0] and big[1] > small[1]


def test_interpolation_figure_rejects_4d(tmp_path, rng):
    with pytest.raises(ValueError, match=r"rows.*\(2, 1, 8, 8\)"):
        plots.interpolation_figure(imgs(rng, 2, 1, 8, 8), tmp_path / "bad.png")


# ------------------------------------------------------------------- traversal_figure
@pytest.mark.parametrize("torch_", [False, True])
def test_traversal_figure(tmp_path, rng, torch_):
    values = [-3.0, -1.5, 0.0, 1.5, 3.0]
    w, h = png_size(plots.traversal_figure(imgs(rng, 3, 5, 1, 8, 8, torch_=torch_),
                                           [0, 4, 7], values, tmp_path / "t.png"))
    assert w > h


def test_traversal_figure_rejects_mismatch(tmp_path, rng):
    with pytest.raises(ValueError, match=r"images.*\(3, 5, 1, 8, 8\)"):
        plots.traversal_figure(imgs(rng, 3, 5, 1, 8, 8), [0, 1], [-1.0, 0.0, 1.0, 2.0, 3.0],
                               tmp_path / "bad.png")
    with pytest.raises(ValueError, match="images"):
        plots.traversal_figure(imgs(rng, 3, 1, 8, 8), [0, 1, 2], [0.0], tmp_path / "b.png")


# ------------------------------------------------------------------------- latent_map
@pytest.mark.parametrize("dim", [1, 2, 5])
@pytest.mark.parametrize("n_classes", [None, 3, 12])
def test_latent_map(tmp_path, rng, dim, n_classes):
    z = rng.normal(size=(60, dim))
    labels = None if n_classes is None else rng.integers(0, n_classes, size=60)
    w, h = png_size(plots.latent_map(z, labels, tmp_path / "m.png"))
    assert w > 300 and h > 300


def test_latent_map_torch_inputs(tmp_path):
    z, labels = torch.randn(40, 4), torch.randint(0, 10, (40,))
    png_size(plots.latent_map(z, labels, tmp_path / "m.png"))


def test_latent_map_rejects_bad_input(tmp_path, rng):
    with pytest.raises(ValueError, match=r"z.*\(10,\)"):
        plots.latent_map(rng.normal(size=10), None, tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"labels.*\(9,\)"):
        plots.latent_map(rng.normal(size=(10, 2)), np.zeros(9, int), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="integer"):
        plots.latent_map(rng.normal(size=(10, 2)), np.full(10, 0.5), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="PCA"):
        plots.latent_map(rng.normal(size=(1, 5)), None, tmp_path / "bad.png")


# -------------------------------------------------------------------- training_curves
def _records(n, **extra_keys):
    return [{"epoch": e, "train_loss": 100.0 - e, **{k: f(e) for k, f in extra_keys.items()}}
            for e in range(n)]


def test_training_curves_full(tmp_path):
    recs = _records(6, val_loss=lambda e: 101.0 - e, train_kl=lambda e: 3.0 + e,
                    val_kl=lambda e: 3.5 + e, beta=lambda e: min(1.0, e / 3),
                    active_units=lambda e: e)
    full = png_size(plots.training_curves(recs, tmp_path / "full.png"))
    loss_only = png_size(plots.training_curves(_records(6), tmp_path / "loss.png"))
    kl_only = png_size(plots.training_curves(_records(6, val_kl=lambda e: 2.0 + e),
                                             tmp_path / "kl.png"))
    assert full[0] > kl_only[0] > loss_only[0]  # one panel per kind of curve
    assert full[1] == kl_only[1] == loss_only[1]


def test_training_curves_single_record_and_partial_keys(tmp_path):
    png_size(plots.training_curves([{"epoch": 0, "train_loss": 3.0}], tmp_path / "one.png"))
    recs = _records(4, beta=lambda e: e / 4)  # beta without KL
    recs[2]["val_loss"] = 99.0  # val only on some epochs
    png_size(plots.training_curves(recs, tmp_path / "partial.png"))


def test_training_curves_rejects_bad_records(tmp_path):
    with pytest.raises(ValueError, match="records"):
        plots.training_curves([], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="train_loss"):
        plots.training_curves([{"epoch": 0}], tmp_path / "bad.png")


# ------------------------------------------------------------------ kl_per_dim_figure
@pytest.mark.parametrize("torch_", [False, True])
def test_kl_per_dim_figure(tmp_path, rng, torch_):
    kl = np.abs(rng.normal(size=16)) * np.r_[np.ones(10), np.full(6, 1e-3)]
    kl = torch.from_numpy(kl) if torch_ else kl
    w, h = png_size(plots.kl_per_dim_figure(kl, tmp_path / "kl.png", threshold=0.01))
    assert w > h


def test_kl_per_dim_figure_width_grows_with_dims(tmp_path, rng):
    small = png_size(plots.kl_per_dim_figure(rng.random(8), tmp_path / "s.png"))
    big = png_size(plots.kl_per_dim_figure(rng.random(64), tmp_path / "b.png"))
    huge = png_size(plots.kl_per_dim_figure(rng.random(512), tmp_path / "h.png"))
    assert small[0] < big[0] <= huge[0] <= 20 * plots.DPI  # capped width


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(0), np.array([1.0, np.nan])])
def test_kl_per_dim_figure_rejects_bad_input(tmp_path, bad):
    with pytest.raises(ValueError, match="kl_per_dim"):
        plots.kl_per_dim_figure(bad, tmp_path / "bad.png")
