"""The 2-D latent map of the explorer page: a plane through the latent space.

With a latent dimension above 2, the plane is spanned by the first two principal axes of
the posterior means of data points (the plane that shows most of their spread), centred
on their mean; a point (u, v) on the map is z = center + u * basis[0] + v * basis[1], so
the page decodes any clicked point with the ordinary ``decode`` call. Without data the
plane is that of the first two latent dimensions.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from vaekit.serve.base import Operation, schema


def latent_plane(means: np.ndarray | None, latent_dim: int) -> dict:
    if means is None or len(means) < 3 or latent_dim < 2:
        basis = np.eye(max(latent_dim, 2), dtype=np.float64)[:2, :latent_dim]
        return {"center": [0.0] * latent_dim, "basis": basis.tolist(), "points": [],
                "extent": [-3.0, 3.0, -3.0, 3.0], "method": "first two latent dimensions"}
    z = means.astype(np.float64)
    if latent_dim == 2:
        center, basis, method = np.zeros(2), np.eye(2), "the latent plane"
    else:
        center = z.mean(0)
        _, _, vt = np.linalg.svd(z - center, full_matrices=False)
        basis, method = vt[:2], "principal axes of the posterior means"
        for i in range(2):  # a fixed sign, so the map does not flip between runs
            j = np.argmax(np.abs(basis[i]))
            basis[i] *= np.sign(basis[i, j]) or 1.0
    uv = (z - center) @ basis.T
    lo, hi = np.percentile(uv, 0.5, axis=0), np.percentile(uv, 99.5, axis=0)
    pad = 0.1 * (hi - lo) + 1e-6
    extent = [float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])]
    return {"center": center.tolist(), "basis": basis.tolist(), "points": np.round(uv, 4).tolist(),
            "extent": extent, "method": method}


def latent_map_operation(name: str, plane: dict, labels: np.ndarray | None) -> Operation:
    result = {**plane, "labels": None if labels is None else [int(v) for v in labels]}
    res = schema(name, "LatentMap",
                 center=(list[float], Field(description="z of the map's origin")),
                 basis=(list[list[float]], Field(description="two latent directions: z = center + u b0 + v b1")),
                 points=(list[list[float]], Field(description="(u, v) of data points")),
                 labels=(list[int] | None, Field(None, description="class of each point, if known")),
                 extent=(list[float], Field(description="u_min, u_max, v_min, v_max")),
                 method=(str, ...))
    return Operation("latent-map", "A 2-D plane through the latent space with data points on it", None, res,
                     lambda reqs: [result for _ in reqs])


def examples_operation(name: str, rows: np.ndarray | None, labels: np.ndarray | None, shape: list[int]) -> Operation:
    result = {"x": [] if rows is None else np.round(rows.astype(np.float64), 4).tolist(),
              "labels": None if labels is None else [int(v) for v in labels], "shape": shape}
    res = schema(name, "Examples", x=(list[list[float]], Field(description="example inputs (test data)")),
                 labels=(list[int] | None, None), shape=(list[int], ...))
    return Operation("examples", "A few inputs from the model's test data", None, res,
                     lambda reqs: [result for _ in reqs])
