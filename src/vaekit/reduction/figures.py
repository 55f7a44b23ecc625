"""Scatter plots of embeddings: one map, or several methods side by side.

Built on :class:`matplotlib.figure.Figure` directly (never ``pyplot``), like
:mod:`vaekit.plots`. Labels may be any values (class names, integers, strings): up to 20
distinct values get a legend with their names, more than that (or floats) a colour bar.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from vaekit.plots import DPI, save_figure

MAX_LEGEND = 20


def _points(xy, labels) -> tuple[np.ndarray, np.ndarray | None]:
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2 or xy.shape[0] == 0:
        raise ValueError(f"embedding must have shape (N, >=2) with N >= 1, got {xy.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(xy),):
            raise ValueError(f"labels must have shape ({len(xy)},), got {labels.shape}")
    return xy[:, :2], labels


def _draw(ax, fig, xy: np.ndarray, labels, size: float) -> None:
    style = dict(s=size, alpha=0.7, linewidths=0, rasterized=True)
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], color="tab:blue", **style)
        return
    classes = np.unique(labels)
    if len(classes) <= MAX_LEGEND:
        colors = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, c in enumerate(classes):
            m = labels == c
            ax.scatter(xy[m, 0], xy[m, 1], color=colors(i), label=str(c), **style)
        ax.legend(fontsize=7, markerscale=2.5, loc="best", framealpha=0.8, handletextpad=0.1)
        return
    if labels.dtype.kind in "OUS":  # many text labels: colour by category code
        _, codes = np.unique(labels, return_inverse=True)
        labels = codes
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels.astype(np.float64), cmap="viridis", **style)
    fig.colorbar(sc, ax=ax)


def embedding_scatter(xy, labels, path, title: str = "Embedding", axis_names=("z[0]", "z[1]")) -> Path:
    """One scatter of the first two columns of ``xy``, coloured by ``labels`` if given."""
    xy, labels = _points(xy, labels)
    fig = Figure(figsize=(6.4, 5.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    _draw(ax, fig, xy, labels, size=max(1.0, min(8.0, 4e4 / len(xy))))
    ax.set(xlabel=axis_names[0], ylabel=axis_names[1], title=f"{title} (N={len(xy)})")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def side_by_side(panels: dict[str, np.ndarray], labels, path, title: str | None = None) -> Path:
    """One row of scatters, one per method (name -> (N, 2) embedding), same labels."""
    if not panels:
        raise ValueError("no embeddings to draw")
    fig = Figure(figsize=(3.3 * len(panels), 3.5), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, xy) in zip(axes, panels.items()):
        xy, lab = _points(xy, labels)
        _draw(ax, fig, xy, lab, size=max(0.5, min(6.0, 2e4 / len(xy))))
        if ax is not axes[-1] and ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)
