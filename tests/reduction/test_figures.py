"""Embedding scatters: any label type, several methods side by side, bad shapes refused."""

import numpy as np
import pytest
from PIL import Image

from vaekit.reduction.figures import embedding_scatter, side_by_side


@pytest.mark.parametrize("labels", [None, np.arange(60) % 3, np.array(["a", "b"] * 30), np.arange(60) * 0.5,
                                    np.array([f"c{i}" for i in range(60)])])
def test_scatter_accepts_any_labels(tmp_path, labels):
    xy = np.random.RandomState(0).randn(60, 2)
    path = embedding_scatter(xy, labels, tmp_path / "a" / "map.png")
    assert Image.open(path).size[0] > 300


def test_side_by_side_draws_one_panel_per_method(tmp_path):
    rng = np.random.RandomState(0)
    panels = {name: rng.randn(50, 2) for name in ("vaekit", "PCA", "UMAP", "t-SNE")}
    path = side_by_side(panels, np.arange(50) % 10, tmp_path / "side.png", title="digits")
    w, h = Image.open(path).size
    assert w > 3 * h


def test_bad_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        embedding_scatter(np.zeros((5, 1)), None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels"):
        embedding_scatter(np.zeros((5, 2)), np.arange(4), tmp_path / "x.png")
    with pytest.raises(ValueError):
        side_by_side({}, None, tmp_path / "x.png")
