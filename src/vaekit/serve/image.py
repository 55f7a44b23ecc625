"""Image models (run directories of ``vaekit train``): encode, decode, sample, reconstruct,
interpolate, a latent map with test images on it, and example inputs.

Images travel as flat rows of pixel intensities in [0, 1], row-major over (C, H, W); the
response says the shape. The latent map and the examples come from the run's own test
split when its data can be read here; otherwise the map shows the first two latent
dimensions and there are no examples (the model itself is served either way).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from vaekit.errors import VaekitError
from vaekit.io import from_pretrained, read_config
from vaekit.serve.base import ServedModel, VectorModel, as_numpy
from vaekit.serve.latent import examples_operation, latent_map_operation, latent_plane
from vaekit.serve.settings import ServeSettings

N_EXAMPLES = 16


class ImageModel(VectorModel):
    x_range = (0.0, 1.0)
    x_doc = "images as flat rows of pixel intensities, row-major over (C, H, W)"

    def __init__(self, vae, shape: tuple[int, ...]):
        self.vae, self.shape = vae, tuple(shape)
        self.input_dim, self.latent_dim, self.n_classes = math.prod(shape), vae.latent_dim, vae.n_classes

    def _y(self, y):
        return None if y is None else torch.from_numpy(y)

    def encode(self, x, y):
        with torch.inference_mode():
            q = self.vae.encode(torch.from_numpy(x).reshape(-1, *self.shape), self._y(y))
            return as_numpy(q.mean), as_numpy(q.log_var)

    def decode(self, z, y):
        with torch.inference_mode():
            x = self.vae.generate(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)), self._y(y))
            return as_numpy(x).reshape(len(z), -1)

    def row_shape(self) -> list[int]:
        return list(self.shape)


def _test_data(run_dir: Path, n: int) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Up to n test images and labels of the run's dataset, or (None, None, why not)."""
    from vaekit import runs
    from vaekit.apps.image_data import load_image_data

    try:
        data = load_image_data(runs.run_config(run_dir))
    except (VaekitError, OSError, ValueError) as e:
        return None, None, f"test data not available here ({str(e).splitlines()[0][:200]})"
    x = data.test.x[:n].numpy().reshape(min(n, len(data.test)), -1)
    y = None if data.test.y is None else data.test.y[:n].numpy()
    return x, y, f"{data.name} test split"


def load_image_model(name: str, run_dir: Path, settings: ServeSettings) -> ServedModel:
    vae = from_pretrained(run_dir)
    doc = read_config(run_dir)
    model = ImageModel(vae, doc["data_shape"])
    x, y, source = _test_data(run_dir, max(settings.latent_map_points, N_EXAMPLES))
    means = None
    if x is not None and len(x) and settings.latent_map_points and (y is not None or not model.n_classes):
        pts = x[: settings.latent_map_points]
        means, _ = model.encode(pts, y[: len(pts)] if model.n_classes else None)
    cfg = doc.get("model", {})
    info = {"kind": "image", "data_shape": list(model.shape), "input_dim": model.input_dim,
            "latent_dim": model.latent_dim, "n_classes": model.n_classes, "value_range": [0.0, 1.0],
            "architecture": cfg.get("architecture"), "likelihood": cfg.get("likelihood"),
            "dataset": doc.get("run", {}).get("config", {}).get("data", {}).get("name"),
            "map_data": source if means is not None else "none", **_evaluation(run_dir)}
    served = ServedModel(name, "image", info)
    served.add(*model.vector_operations(name, settings))
    labels = None if y is None or means is None else y[: len(means)]
    served.add(latent_map_operation(name, latent_plane(means, model.latent_dim), labels),
               examples_operation(name, None if x is None else x[:N_EXAMPLES],
                                  None if y is None else y[:N_EXAMPLES], list(model.shape)))
    return served


def _evaluation(run_dir: Path) -> dict:
    """Headline test metrics of ``vaekit evaluate`` when the run has them."""
    path = run_dir / "evaluation.json"
    try:
        ev = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    keep = ("test_elbo", "iw_nll", "bits_per_dim", "active_units", "n_test")
    return {"evaluation": {k: ev[k] for k in keep if isinstance(ev.get(k), (int, float))}}
