"""Figures for looking at a VAE: samples, reconstructions, latent space, training.

A trained VAE is judged first by eye: are reconstructions sharp, do interpolations move
smoothly, which latent dimensions carry information, did the KL collapse? Each function
here writes one PNG answering one such question and returns its :class:`~pathlib.Path`.

Figures are built with :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so
nothing global is touched, no GUI backend is needed and plotting is safe from worker
threads. Images are ``(N, C, H, W)`` torch tensors or numpy arrays with ``C`` in {1, 3}
and values in [0, 1]. Wrong shapes raise :class:`ValueError` naming the argument and the
shape received, before anything is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

DPI = 120
CELL_IN = 0.9  # side of one image cell, inches
RECON_WRAP = 16  # images per row in reconstruction figures

__all__ = [
    "image_grid",
    "interpolation_figure",
    "kl_per_dim_figure",
    "latent_map",
    "reconstruction_figure",
    "training_curves",
    "traversal_figure",
]


# ---------------------------------------------------------------------------- helpers
def _to_numpy(x: Any) -> np.ndarray:
    """A float numpy copy of a torch tensor, numpy array or nested sequence."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def _images(x: Any, name: str, ndim: int = 4) -> np.ndarray:
    """Validate an image batch whose last three axes are (C, H, W) with C in {1, 3}."""
    arr = _to_numpy(x)
    if arr.ndim != ndim or arr.shape[-3] not in (1, 3) or 0 in arr.shape:
        lead = "N" if ndim == 4 else "R, S"
        raise ValueError(
            f"{name} must have shape ({lead}, C, H, W) with C in {{1, 3}} and no empty "
            f"axis, got shape {tuple(arr.shape)}"
        )
    return arr


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` (creating parent folders), free it and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI)
    finally:
        fig.clear()
    return path


def _draw_grid(
    cells: Sequence[Sequence[np.ndarray | None]],
    path: str | Path,
    title: str | None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> Path:
    """Lay out rows of (C, H, W) images (``None`` = blank cell) edge to edge and save."""
    nrows, ncols = len(cells), max(len(r) for r in cells)
    left = 0.75 if row_labels else 0.05
    top = (0.4 if title else 0.05) + (0.25 if col_labels else 0.0)
    width, height = left + ncols * CELL_IN + 0.05, top + nrows * CELL_IN + 0.05
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=left / width, right=1 - 0.05 / width, bottom=0.05 / height,
                        top=1 - top / height, wspace=0.04, hspace=0.04)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for r, row in enumerate(cells):
        for c in range(ncols):
            ax, img = axes[r, c], row[c] if c < len(row) else None
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
            if img is None:
                continue
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1), interpolation="nearest")
            if r == 0 and col_labels:
                ax.set_title(col_labels[c], fontsize=8, pad=3)
        if row_labels:
            axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center",
                                  fontsize=9, labelpad=6)
    if title:
        fig.suptitle(title, y=1 - 0.08 / height, va="top", fontsize=11)
    return save_figure(fig, path)


# ----------------------------------------------------------------------- image figures
def image_grid(images, path, nrow: int | None = None, title: str | None = None,
               row_labels: list[str] | None = None) -> Path:
    """Images in a grid of ``nrow`` per row (default ``ceil(sqrt(N))``), row-major."""
    imgs = _images(images, "images")
    n = len(imgs)
    nrow = math.ceil(math.sqrt(n)) if nrow is None else nrow
    if nrow < 1:
        raise ValueError(f"nrow must be a positive number of images per row, got {nrow}")
    cells = [list(imgs[i:i + nrow]) for i in range(0, n, nrow)]
    if row_labels is not None and len(row_labels) != len(cells):
        raise ValueError(f"row_labels has {len(row_labels)} entries but the grid has "
                         f"{len(cells)} rows ({n} images, {nrow} per row)")
    return _draw_grid(cells, path, title, row_labels=row_labels)


def reconstruction_figure(originals, reconstructions, path,
                          title="Reconstructions (top: data, bottom: model)") -> Path:
    """Originals above their reconstructions, wrapped into row pairs of up to 16."""
    x = _images(originals, "originals")
    y = _images(reconstructions, "reconstructions")
    if x.shape != y.shape:
        raise ValueError(f"reconstructions must match originals' shape {tuple(x.shape)}, "
                         f"got shape {tuple(y.shape)}")
    cells, labels = [], []
    for i in range(0, len(x), RECON_WRAP):
        cells += [list(x[i:i + RECON_WRAP]), list(y[i:i + RECON_WRAP])]
        labels += ["data", "model"]
    return _draw_grid(cells, path, title, row_labels=labels)


def interpolation_figure(rows, path, title="Latent interpolation") -> Path:
    """One latent interpolation per row: ``rows`` is (R, S, C, H, W), S steps each."""
    arr = _images(rows, "rows", ndim=5)
    return _draw_grid([list(r) for r in arr], path, title)


def traversal_figure(images, dims: list[int], values: list[float], path,
                     title="Latent traversals") -> Path:
    """Decodings as one latent dimension sweeps ``values``: a row per entry of ``dims``."""
    arr = _images(images, "images", ndim=5)
    if arr.shape[:2] != (len(dims), len(values)):
        raise ValueError(f"images must have shape (len(dims)={len(dims)}, "
                         f"len(values)={len(values)}, C, H, W), got {tuple(arr.shape)}")
    return _draw_grid([list(r) for r in arr], path, title,
                      row_labels=[f"z[{d}]" for d in dims],
                      col_labels=[f"{float(v):.1f}" for v in values])


# ---------------------------------------------------------------------- latent figures
def _class_labels(labels: Any, n: int) -> np.ndarray | None:
    """Validate ``labels`` as None or ``n`` integer class ids."""
    if labels is None:
        return None
    arr = _to_numpy(labels)
    if arr.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match z, got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError("labels must be integer class ids")
    return arr.astype(np.int64)


def _project_2d(z: np.ndarray) -> tuple[np.ndarray, str, str]:
    """2-D coordinates of ``z`` (PCA when D > 2, jitter when D == 1) and axis labels."""
    d = z.shape[1]
    if d == 1:
        jitter = np.random.default_rng(0).uniform(-0.5, 0.5, size=len(z))
        return np.stack([z[:, 0], jitter], axis=1), "z[0]", "jitter (no meaning)"
    if d == 2:
        return z, "z[0]", "z[1]"
    if len(z) < 2:
        raise ValueError(f"z needs at least 2 points to project {d} dims with PCA, "
                         f"got shape {tuple(z.shape)}")
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(z)
    pct = 100 * pca.explained_variance_ratio_
    return (pca.transform(z), f"PC 1 ({pct[0]:.0f}% var, PCA of {d} dims)",
            f"PC 2 ({pct[1]:.0f}% var)")


def latent_map(z, labels, path, title="Latent space") -> Path:
    """Scatter of latent codes (PCA to 2-D when D > 2), coloured by class if labelled."""
    arr = _to_numpy(z)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"z must have shape (N, D) with N, D >= 1, got {tuple(arr.shape)}")
    cls = _class_labels(labels, len(arr))
    xy, xlabel, ylabel = _project_2d(arr)
    fig = Figure(figsize=(6.4, 5.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    style = dict(s=8, alpha=0.6, linewidths=0)
    classes = np.unique(cls) if cls is not None else np.array([])
    if cls is None:
        ax.scatter(xy[:, 0], xy[:, 1], color="tab:blue", **style)
    elif len(classes) <= 10:
        for i, c in enumerate(classes):
            m = cls == c
            ax.scatter(xy[m, 0], xy[m, 1], color=f"C{i}", label=str(c), **style)
        ax.legend(title="class", fontsize=8, markerscale=2, loc="best", framealpha=0.8)
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=cls, cmap="viridis", **style)
        fig.colorbar(sc, ax=ax, label="class")
    if arr.shape[1] == 1:
        ax.set_yticks([])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title} (N={len(arr)})")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


# --------------------------------------------------------------------- training figures
def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Epochs and values of ``key`` over the records that have it (not None)."""
    pts = [(int(r["epoch"]), float(r[key])) for r in records if r.get(key) is not None]
    return [e for e, _ in pts], [v for _, v in pts]


def _plot_lines(ax, records: list[dict], keys: dict[str, str], **kw) -> list:
    """Plot each present ``key`` (mapped to its legend label); return the line handles."""
    handles = []
    marker = "o" if len(records) <= 30 else None
    for key, label in keys.items():
        epochs, vals = _series(records, key)
        if epochs:
            handles += ax.plot(epochs, vals, marker=marker, ms=3, label=label, **kw)
    return handles


def _has(records: list[dict], *keys: str) -> bool:
    """Whether any record holds any of ``keys``."""
    return any(r.get(k) is not None for r in records for k in keys)


def training_curves(records: list[dict], path, title="Training") -> Path:
    """Loss, KL (with beta on a twin axis) and active units per epoch, as present."""
    if not records or any(not isinstance(r, dict) or "epoch" not in r or "train_loss" not in r
                          for r in records):
        raise ValueError(f"records must be a non-empty list of dicts with 'epoch' and "
                         f"'train_loss', got {len(records or [])} records")
    records = sorted(records, key=lambda r: int(r["epoch"]))
    has_kl = _has(records, "train_kl", "val_kl")
    panels = ["loss"] + (["kl"] if has_kl or _has(records, "beta") else [])
    panels += ["au"] if _has(records, "active_units") else []
    fig = Figure(figsize=(4.2 * len(panels), 3.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            h = _plot_lines(ax, records, {"train_loss": "train", "val_loss": "val"})
            ax.set(title="Loss (negative ELBO)", ylabel="nats")
        elif panel == "kl":
            h = _plot_lines(ax, records, {"train_kl": "train KL", "val_kl": "val KL"})
            ax.set(title="KL divergence", ylabel="nats" if has_kl else "beta")
            beta_ax = ax.twinx() if has_kl else ax
            h += _plot_lines(beta_ax, records, {"beta": "beta"}, color="0.4", ls="--")
            beta_ax.set_ylabel("beta")
        else:
            h = _plot_lines(ax, records, {"active_units": "active units"}, color="C2")
            ax.set(title="Active latent units", ylabel="units")
            ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(handles=h, fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def kl_per_dim_figure(kl_per_dim, path, threshold: float = 0.01,
                      title="KL per latent dimension") -> Path:
    """Bar chart of per-dimension KL, sorted descending; inactive dims (< threshold) grey."""
    kl = _to_numpy(kl_per_dim)
    if kl.ndim != 1 or kl.size == 0 or not np.all(np.isfinite(kl)):
        raise ValueError(f"kl_per_dim must be a non-empty finite 1-D array (D,), "
                         f"got shape {tuple(kl.shape)}")
    order = np.argsort(-kl, kind="stable")
    vals, d = kl[order], len(kl)
    active = vals >= threshold
    width = min(20.0, max(5.0, 1.5 + 0.25 * d))
    fig = Figure(figsize=(width, 3.8), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(d)
    ax.bar(pos[active], vals[active], color="tab:blue", label=f"active: {active.sum()}")
    ax.bar(pos[~active], vals[~active], color="0.7", label=f"inactive: {(~active).sum()}")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    step = max(1, math.ceil(d / (width * 5)))
    ax.set_xticks(pos[::step], [str(i) for i in order[::step]],
                  rotation=90 if d > 20 else 0, fontsize=7 if d > 20 else 9)
    ax.set(xlim=(-0.6, d - 0.4), xlabel="latent dimension (sorted by KL)",
           ylabel="KL (nats)", title=f"{title} ({active.sum()}/{d} active)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
