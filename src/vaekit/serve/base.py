"""What a served model is: a name, a kind, metadata and a set of operations.

Each operation has a request schema built for that model (a row of an MNIST model has
exactly 784 numbers in [0, 1]; a code has exactly ``latent_dim``), so the OpenAPI spec
documents every model's real shapes and pydantic refuses wrong shapes, types, NaN and inf
before any tensor is made. ``run`` takes a list of requests and returns one result per
request: the batcher hands it many at once (one forward pass), the unbatched server one.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable

import numpy as np
import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from vaekit.serve.settings import ServeSettings

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
SEED_MAX = 2**31 - 1


class InputError(Exception):
    """A request that is well-formed JSON but cannot be served; becomes a 4xx response."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass
class Operation:
    name: str
    summary: str
    request: type[BaseModel] | None  # None: a GET without a body
    response: type[BaseModel]
    run: Callable[[list], list[dict]]
    rows: Callable[[Any], int] = lambda _req: 1
    batchable: bool = False
    description: str = ""


@dataclass
class ServedModel:
    name: str
    kind: str
    info: dict
    operations: dict[str, Operation] = field(default_factory=dict)

    def add(self, *ops: Operation) -> None:
        for op in ops:
            self.operations[op.name] = op


def camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p)


class Strict(BaseModel):
    """No unknown fields, no coercion (``false`` is not 0, ``"1"`` is not 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _integral(v):
    """JSON Schema counts 64.0 as an integer; strict pydantic does not: accept it, exactly."""
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**63 else v


def integer(lo: int, hi: int):
    """An integer in [lo, hi]; the bounds come before the validator so the spec shows them."""
    return Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_integral)]


def number(lo: float, hi: float, doc: str = ""):
    return Annotated[float, Field(ge=lo, le=hi, allow_inf_nan=False, description=doc or None)]


def rows_of(width: int, lo: float, hi: float, max_rows: int, doc: str):
    row = Annotated[list[number(lo, hi)], Field(min_length=width, max_length=width)]
    return Annotated[list[row], Field(min_length=1, max_length=max_rows, description=doc)]


NUMBER_BYTES = 32  # room for one JSON number with its separator, e.g. "-1.2345678901234567e-300, "


def fits(settings: ServeSettings, cap: int, bytes_per_item: int) -> int:
    """The most items of ``bytes_per_item`` (at most ``cap``) that fit the body limit, so
    that every request the spec allows also fits the body limit."""
    return max(1, min(cap, int(0.9 * settings.max_body_bytes) // bytes_per_item))


def schema(model_name: str, what: str, **fields) -> type[BaseModel]:
    """A request or response model named after the served model (unique in the spec)."""
    return create_model(f"{camel(model_name)}{what}", __base__=Strict, **fields)


def finite_or_fail(arrays: dict[str, np.ndarray], what: str = "the model") -> None:
    for key, a in arrays.items():
        if a is not None and not np.all(np.isfinite(a)):
            raise InputError(f"{what} produced non-finite values in '{key}' for this input "
                             f"(inputs far outside the training data?)")


def split_rows(array: np.ndarray, counts: list[int]) -> list[np.ndarray]:
    return np.split(array, np.cumsum(counts)[:-1]) if len(counts) > 1 else [array]


def per_request(items: list, counts: list[int]) -> list[list]:
    """Cut a batch's outputs (a list) back into each request's share of ``counts`` items."""
    out, i = [], 0
    for n in counts:
        out.append(items[i:i + n])
        i += n
    return out


_GLOBAL_RNG = threading.Lock()


@contextmanager
def seeded_global_rng(seed: int):
    """torch's process-wide generator seeded for a block and restored after it, held by
    one compute thread at a time (``--compute-threads``): decoders that sample from the
    global generator stay reproducible from their seed when requests run in parallel."""
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def prior_draw(n: int, latent_dim: int, seed: int | None) -> tuple[int, torch.Tensor]:
    """``n`` codes from N(0, I), reproducible from the returned seed (drawn if not given)."""
    seed = seed if seed is not None else int(torch.randint(0, SEED_MAX, (1,)))
    return seed, torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


# -- the operations every latent-variable model has -------------------------------------
class VectorModel:
    """Encode/decode as numpy functions; the operations below are built from them.

    Subclasses set ``input_dim``, ``latent_dim``, ``x_range`` (bounds of an input value),
    ``n_classes`` and implement ``encode(x, y) -> (mean, log_var)`` and ``decode(z, y) -> x``.
    """

    input_dim: int
    latent_dim: int
    x_range: tuple[float, float] = (-1e9, 1e9)
    x_doc: str = "input rows"
    n_classes: int = 0
    z_bound: float = 1e3

    def encode(self, x: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def decode(self, z: np.ndarray, y: np.ndarray | None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------
    def _labels(self, req, n: int) -> np.ndarray | None:
        if not self.n_classes:
            return None
        labels = np.asarray(req.labels, dtype=np.int64)
        if len(labels) != n:
            raise InputError(f"labels has {len(labels)} entries for {n} rows")
        return labels

    def _stack(self, reqs: list, key: str) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
        arrays = [np.asarray(getattr(r, key), dtype=np.float32) for r in reqs]
        labels = [self._labels(r, len(a)) for r, a in zip(reqs, arrays)]
        y = None if labels[0] is None else np.concatenate(labels)
        return np.concatenate(arrays), y, [len(a) for a in arrays]

    def _sample_labels(self, req, n: int) -> np.ndarray | None:
        if not self.n_classes:
            return None
        if req.label is None:
            return np.arange(n) % self.n_classes
        return np.full(n, req.label, dtype=np.int64)

    # -- batched operations ----------------------------------------------------------
    def run_encode(self, reqs: list) -> list[dict]:
        x, y, counts = self._stack(reqs, "x")
        mean, log_var = self.encode(x, y)
        finite_or_fail({"mean": mean, "log_var": log_var})
        return [{"mean": m.tolist(), "log_var": v.tolist()}
                for m, v in zip(split_rows(mean, counts), split_rows(log_var, counts))]

    def run_decode(self, reqs: list) -> list[dict]:
        z, y, counts = self._stack(reqs, "z")
        x = self.decode(z, y)
        finite_or_fail({"x": x})
        return [{"x": part.tolist(), "shape": self.row_shape()} for part in split_rows(x, counts)]

    def run_reconstruct(self, reqs: list) -> list[dict]:
        x, y, counts = self._stack(reqs, "x")
        mean, _ = self.encode(x, y)
        rec = self.decode(mean, y)
        finite_or_fail({"x": rec, "z": mean})
        return [{"x": r.tolist(), "z": m.tolist(), "shape": self.row_shape()}
                for r, m in zip(split_rows(rec, counts), split_rows(mean, counts))]

    # -- single-request operations -----------------------------------------------------
    def run_sample(self, reqs: list) -> list[dict]:
        out = []
        for req in reqs:
            seed = req.seed if req.seed is not None else int(np.random.SeedSequence().generate_state(1)[0] >> 1)
            gen = torch.Generator().manual_seed(seed)
            z = torch.randn(req.n, self.latent_dim, generator=gen).numpy()
            x = self.decode(z, self._sample_labels(req, req.n))
            finite_or_fail({"x": x})
            out.append({"x": x.tolist(), "z": z.tolist(), "seed": seed, "shape": self.row_shape()})
        return out

    def run_interpolate(self, reqs: list) -> list[dict]:
        out = []
        for req in reqs:
            ends = np.asarray([req.a, req.b], dtype=np.float32)
            y = None if not self.n_classes else np.full(2, req.label, dtype=np.int64)
            mean, _ = self.encode(ends, y)
            t = np.linspace(0.0, 1.0, req.steps, dtype=np.float32)[:, None]
            z = (1 - t) * mean[0] + t * mean[1]
            x = self.decode(z, None if y is None else np.full(req.steps, req.label, dtype=np.int64))
            finite_or_fail({"x": x, "z": z})
            out.append({"x": x.tolist(), "z": z.tolist(), "t": t[:, 0].tolist(), "shape": self.row_shape()})
        return out

    def row_shape(self) -> list[int]:
        return [self.input_dim]

    # -- schemas -----------------------------------------------------------------------
    def vector_operations(self, name: str, s: ServeSettings) -> list[Operation]:
        lo, hi = self.x_range
        d, k, zb = self.input_dim, self.latent_dim, self.z_bound
        nx, nz = fits(s, s.max_rows, NUMBER_BYTES * (d + 1)), fits(s, s.max_rows, NUMBER_BYTES * (k + 1))
        x_rows = rows_of(d, lo, hi, nx, f"{self.x_doc}: each row exactly {d} numbers in [{lo:g}, {hi:g}]")
        z_rows = rows_of(k, -zb, zb, nz, f"latent codes: each row exactly {k} numbers in [{-zb:g}, {zb:g}]")
        row = Annotated[list[number(lo, hi)], Field(min_length=d, max_length=d, description=f"{d} numbers")]
        cond: dict = {}
        label_field: dict = {}
        if self.n_classes:
            lab = integer(0, self.n_classes - 1)
            cond = {"labels": (Annotated[list[lab], Field(min_length=1, max_length=max(nx, nz),
                                                          description="class of each row (conditional model)")], ...)}
            label_field = {"label": (lab | None, Field(None, description="class (default: cycle through them)"))}
        matrix = list[list[float]]
        shape_f = (list[int], Field(description="shape of one row, row-major"))
        enc_req = schema(name, "EncodeRequest", x=(x_rows, ...), **cond)
        enc_res = schema(name, "EncodeResponse", mean=(matrix, ...), log_var=(matrix, ...))
        dec_req = schema(name, "DecodeRequest", z=(z_rows, ...), **cond)
        dec_res = schema(name, "DecodeResponse", x=(matrix, ...), shape=shape_f)
        rec_req = schema(name, "ReconstructRequest", x=(x_rows, ...), **cond)
        rec_res = schema(name, "ReconstructResponse", x=(matrix, ...), z=(matrix, ...), shape=shape_f)
        smp_req = schema(name, "SampleRequest",
                         n=(integer(1, s.max_samples), Field(16, description="number of samples")),
                         seed=(integer(0, SEED_MAX) | None, Field(None, description="random seed (default: fresh)")),
                         **label_field)
        smp_res = schema(name, "SampleResponse", x=(matrix, ...), z=(matrix, ...), seed=(int, ...), shape=shape_f)
        itp_req = schema(name, "InterpolateRequest", a=(row, ...), b=(row, ...),
                         steps=(integer(2, s.max_steps), Field(8, description="points on the path, ends included")),
                         **({"label": (integer(0, self.n_classes - 1), ...)} if self.n_classes else {}))
        itp_res = schema(name, "InterpolateResponse", x=(matrix, ...), z=(matrix, ...), t=(list[float], ...),
                         shape=shape_f)
        n_rows = lambda key: (lambda req: len(getattr(req, key)))  # noqa: E731
        return [
            Operation("encode", "Posterior mean and log-variance of each row", enc_req, enc_res, self.run_encode,
                      n_rows("x"), batchable=True),
            Operation("decode", "Decoder mean of p(x|z) for each latent code", dec_req, dec_res, self.run_decode,
                      n_rows("z"), batchable=True),
            Operation("reconstruct", "Decode the posterior mean of each row", rec_req, rec_res,
                      self.run_reconstruct, n_rows("x"), batchable=True),
            Operation("sample", "Draw z from the prior N(0, I) and decode", smp_req, smp_res, self.run_sample),
            Operation("interpolate", "Decode the straight line between the posterior means of a and b",
                      itp_req, itp_res, self.run_interpolate),
        ]


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()
