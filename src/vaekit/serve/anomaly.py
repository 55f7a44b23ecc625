"""Anomaly detectors (run directories of ``vaekit anomaly fit``, table mode): ``score``.

Each row gets its anomaly score (higher = more abnormal), its label against the
detector's threshold, a probability (the score min-max scaled by the training scores, as
PyOD's ``predict_proba(method="linear")``) and the columns that contribute most to it.

The detector is loaded by :meth:`vaekit.anomaly.VAEDetector.load` and scored by its own
scoring path (:meth:`~vaekit.anomaly.VAEDetector.score_encoded`), constant columns
included, with one difference: every row uses the same seeded Monte-Carlo draws
(``shared_noise``), so that a row's score does not depend on which other requests it was
batched with (``decision_function`` gives each row of a table draws of its own). The two
agree up to Monte-Carlo noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vaekit.errors import ModelFileError
from vaekit.serve.base import NUMBER_BYTES, Operation, ServedModel, camel, fits, integer, number, schema
from vaekit.serve.settings import ServeSettings

MAX_TEXT = 256
UNSEEN = "\ue000"  # a private-use character no training category starts with: keeps "" or "NA" a value


class AnomalyScorer:
    def __init__(self, det):
        from vaekit.anomaly.scoring import shares

        self.det, self._shares = det, shares
        pre = det.preprocessor_
        self.columns = list(pre.columns_)
        self.categorical = set(pre.categories_)
        self.features = list(pre.feature_names_)
        self.groups = pre.group_matrix()
        self.lo, self.hi = float(det.decision_scores_.min()), float(det.decision_scores_.max())

    def _score(self, enc, explain: bool = False):
        return self.det.score_encoded(enc, explain=explain, shared_noise=True)

    def frame(self, reqs: list) -> tuple[pd.DataFrame, list[int]]:
        """The requests' rows as one table. In JSON, null is the missing value: a string is
        always a category, even one that a CSV reader would take for missing ("", "NA")."""
        from vaekit.anomaly.preprocessing import _is_missing_text  # the preprocessor's own rule

        records = [row.model_dump(by_alias=True) for req in reqs for row in req.rows]
        df = pd.DataFrame.from_records(records, columns=self.columns)
        for col in self.categorical:
            s = df[col]
            text = s.map(lambda v: isinstance(v, str))
            looks_missing = text.to_numpy(dtype=bool) & _is_missing_text(s)
            if looks_missing.any():
                df[col] = [UNSEEN + v if m else v for v, m in zip(s, looks_missing)]
        return df, [len(r.rows) for r in reqs]

    def run(self, reqs: list) -> list[dict]:
        df, counts = self.frame(reqs)
        det = self.det
        enc = det.preprocessor_.transform(df)
        scores, resid = self._score(enc, explain=True)
        share = self._shares(resid, self.groups)
        # A row so far outside the training data that the model overflows (its encoder's
        # variance becomes inf) is as abnormal as it gets: the largest float as its score,
        # and its columns ranked by how far their standardized values are from the median.
        overflow = ~(np.isfinite(scores) & np.all(np.isfinite(share), axis=1))
        if overflow.any():
            scores = np.where(overflow, np.finfo(np.float64).max, scores)
            share[overflow] = self._shares(self._distance(enc)[overflow], self.groups)
        prob = np.clip((scores - self.lo) / (self.hi - self.lo), 0, 1) if self.hi > self.lo else np.zeros_like(scores)
        out, start = [], 0
        for req, n in zip(reqs, counts):
            sl = slice(start, start + n)
            start += n
            top = []
            for row in share[sl]:
                order = np.argsort(-row, kind="stable")[: req.top_k]
                top.append([{"feature": self.features[j], "share": round(float(row[j]), 6)} for j in order])
            out.append({"scores": scores[sl].tolist(), "labels": (scores[sl] > det.threshold_).astype(int).tolist(),
                        "probability": prob[sl].tolist(), "threshold": float(det.threshold_),
                        "top_features": top, "notes": self.notes(df.iloc[sl], enc, sl, overflow[sl])})
        return out

    def _distance(self, enc) -> np.ndarray:
        """(n, D + K) squared standardized values (capped at 1e300) and constant-column
        residuals: how far each column of a row is from the training median."""
        far = np.nan_to_num(enc.values.astype(np.float64), posinf=1e300, neginf=-1e300) ** 2 * enc.observed
        return np.concatenate([np.minimum(far, 1e300), self.det.constant_residuals(enc)], 1)

    def notes(self, rows: pd.DataFrame, enc, sl: slice, overflow: np.ndarray) -> list[str]:
        """Missing values, unseen categories, changed constant columns and overflowing rows
        of this request (``rows``: its part of the table, ``sl``: its part of ``enc``)."""
        pre = self.det.preprocessor_
        observed, values = enc.observed[sl], enc.values[sl]
        notes = []
        n_num = len(pre.numeric_)
        missing = int((observed[:, :n_num] == 0).sum()) + int(rows[pre.constant_columns_].isna().to_numpy().sum())
        j = n_num
        unseen = 0
        for col, cats in pre.categories_.items():
            block_obs, block = observed[:, j:j + len(cats)], values[:, j:j + len(cats)]
            missing += int((block_obs[:, 0] == 0).sum())
            unseen += int(((block_obs[:, 0] == 1) & (block.sum(1) == 0)).sum())
            j += len(cats)
        if missing:
            notes.append(f"{missing} missing value(s) left out of the likelihood")
        if unseen:
            notes.append(f"{unseen} categorical value(s) never seen in training (they raise the score)")
        changed = enc.constant_changed[sl].sum(0)
        if changed.any():
            cols = ", ".join(c for c, k in zip(pre.constant_columns_, changed) if k)
            notes.append(f"{int(changed.sum())} value(s) of columns constant in training changed "
                         f"(they raise the score): {cols}")
        if overflow.any():
            notes.append(f"{int(overflow.sum())} row(s) so far outside the training data that the score "
                         f"overflowed: reported as the largest float")
        return notes


class _Row(BaseModel):
    used: ClassVar[dict[str, str]] = {}  # field -> column, for the columns the model reads

    @model_validator(mode="after")
    def _has_a_value(self):
        if not any(getattr(self, f) is not None for f in self.used):
            raise ValueError(f"a row needs a value in at least one of: {', '.join(self.used.values())}")
        return self


def _row_model(name: str, det) -> type:
    """One row of the table: the training columns by name, null (or absent) = missing."""
    pre = det.preprocessor_
    annotations, namespace, used = {}, {}, {}
    for i, col in enumerate(pre.columns_):
        if col in pre.categories_:
            text = Annotated[str, Field(max_length=MAX_TEXT)]
            typ, doc = text | int | number(-1e12, 1e12) | None, "category (text or number)"
        else:
            typ, doc = number(-1e12, 1e12) | None, "number"
        annotations[f"c{i}"] = typ
        namespace[f"c{i}"] = Field(None, alias=col, description=f"{doc}; null or absent: missing")
        if col not in pre.constant_columns_:
            used[f"c{i}"] = col
    some_value = [{"required": [c], "properties": {c: {"not": {"type": "null"}}}} for c in used.values()]
    namespace.update(__annotations__=annotations, used=used, model_config=ConfigDict(
        extra="forbid", strict=True, populate_by_name=False, json_schema_extra={"anyOf": some_value}))
    return type(f"{camel(name)}Row", (_Row,), namespace)


def _row_bytes(det) -> int:
    """Room for one JSON row: each column's name and value (text escaped at worst 6 bytes a character)."""
    pre = det.preprocessor_
    return 2 + sum(len(json.dumps(c)) + 2 + (6 * MAX_TEXT + 4 if c in pre.categories_ else NUMBER_BYTES)
                   for c in pre.columns_)


def load_anomaly_model(name: str, run_dir: Path, settings: ServeSettings) -> ServedModel:
    try:
        from vaekit.anomaly import VAEDetector
        from vaekit.anomaly.base import read_kind
    except ImportError as e:  # an installation without the anomaly application
        raise ModelFileError(f"{run_dir} holds an anomaly detector, but vaekit.anomaly is not available ({e})") from None
    if read_kind(run_dir) != "tabular":
        raise ModelFileError(f"{run_dir} holds a time-series detector; the service scores table rows only")
    det = VAEDetector.load(run_dir)
    scorer = AnomalyScorer(det)
    row = _row_model(name, det)
    req = schema(name, "ScoreRequest",
                 rows=(Annotated[list[row], Field(min_length=1, max_length=fits(
                     settings, settings.max_rows, _row_bytes(det)))], ...),
                 top_k=(integer(0, len(scorer.features)), Field(3, description="top contributing columns per row")))
    feature = schema(name, "Contribution", feature=(str, ...), share=(float, ...))
    res = schema(name, "ScoreResponse", scores=(list[float], ...), labels=(list[int], ...),
                 probability=(list[float], ...), threshold=(float, ...),
                 top_features=(list[list[feature]], ...), notes=(list[str], ...))
    pre = det.preprocessor_
    counts, edges = np.histogram(det.decision_scores_, bins=30)
    info = {"kind": "anomaly", "columns": [{"name": c, "type": "categorical" if c in pre.categories_ else "numeric",
                                            **({"categories": pre.categories_[c][:50]} if c in pre.categories_ else {})}
                                           for c in pre.columns_],
            "threshold": float(det.threshold_), "contamination": float(det.contamination), "score": det.score,
            "n_samples": int(det.n_samples), "latent_dim": det.model_.latent_dim,
            "training_rows": int(len(det.decision_scores_)),
            "training_scores": {"counts": counts.tolist(), "edges": edges.tolist()}}
    served = ServedModel(name, "anomaly", info)
    served.add(Operation("score", "Anomaly score, label and top contributing columns of each row", req, res,
                         scorer.run, lambda r: len(r.rows), batchable=True,
                         description="Higher scores are more abnormal; label 1 = above the detector's threshold."))
    return served
