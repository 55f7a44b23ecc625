"""Dimensionality reduction (directories of ``VAETransformer.save`` / ``vaekit reduce fit``):
``transform`` plus the latent-variable operations (encode, decode = ``inverse_transform``,
sample, reconstruct, interpolate, a latent map of the first two components).

Inputs and outputs are in the data's own units, as with the scikit-learn estimator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from vaekit.errors import ModelFileError
from vaekit.serve.base import Operation, ServedModel, VectorModel, as_numpy, finite_or_fail, schema, split_rows
from vaekit.serve.latent import latent_map_operation, latent_plane
from vaekit.serve.settings import ServeSettings


class ReductionModel(VectorModel):
    x_doc = "rows of features, in the units of the training data"

    def __init__(self, est):
        self.est = est
        self.input_dim, self.latent_dim = int(est.n_features_in_), int(est.n_components)
        if est.likelihood_ == "bernoulli":
            self.x_range = (0.0, 1.0)

    def encode(self, x, y):
        xn = ((x.astype(np.float64) - self.est.mean_) / self.est.scale_).astype(np.float32)
        with torch.inference_mode():
            q = self.est.vae_.encode(torch.from_numpy(xn))
        return as_numpy(q.mean), as_numpy(q.log_var)

    def decode(self, z, y):
        return np.asarray(self.est.inverse_transform(np.asarray(z, dtype=np.float32)), dtype=np.float32)

    def run_transform(self, reqs: list) -> list[dict]:
        x, _, counts = self._stack(reqs, "x")
        z, _ = self.encode(x, None)
        finite_or_fail({"z": z})
        return [{"z": part.tolist()} for part in split_rows(z, counts)]


def load_reducer(name: str, run_dir: Path, settings: ServeSettings) -> ServedModel:
    try:
        from vaekit.reduction import VAETransformer
    except ImportError as e:
        raise ModelFileError(f"{run_dir} holds a reduction model, but vaekit.reduction is not available ({e})") from None
    est = VAETransformer.load(run_dir)
    model = ReductionModel(est)
    served = ServedModel(name, "reduction", {
        "kind": "reduction", "input_dim": model.input_dim, "latent_dim": model.latent_dim,
        "n_components": model.latent_dim, "likelihood": est.likelihood_, "value_range": list(model.x_range),
        "feature_names": None if not hasattr(est, "feature_names_in_") else [str(f) for f in est.feature_names_in_]})
    ops = model.vector_operations(name, settings)
    enc = next(op for op in ops if op.name == "encode")
    res = schema(name, "TransformResponse", z=(list[list[float]], Field(description="posterior means E_q[z|x]")))
    means, labels = _training_codes(run_dir, est, settings.latent_map_points)
    served.add(*ops, Operation("transform", "The reduced coordinates of each row (posterior means)", enc.request, res,
                               model.run_transform, enc.rows, batchable=True),
               latent_map_operation(name, latent_plane(means, model.latent_dim), labels))
    return served


def _training_codes(run_dir: Path, est, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The training rows' codes that ``vaekit reduce fit`` wrote (embedding.csv), with
    integer labels if it has them, for the latent map; (None, None) without them."""
    import pandas as pd

    path = run_dir / "embedding.csv"
    if not n or not path.is_file():
        return None, None
    try:
        frame = pd.read_csv(path, nrows=n)
        z = frame[[str(c) for c in est.get_feature_names_out()]].to_numpy(dtype=np.float64)
    except (OSError, ValueError, KeyError):
        return None, None
    if not np.all(np.isfinite(z)):
        return None, None
    extra = [c for c in frame.columns if c not in set(est.get_feature_names_out())]
    labels = None
    if extra and pd.api.types.is_integer_dtype(frame[extra[0]]) and frame[extra[0]].min() >= 0:
        labels = frame[extra[0]].to_numpy()
    return z, labels
