"""Recommenders (run directories of ``vaekit recommend fit``): ``recommend``.

A request is a history of item ids; the answer is the k best items not in it, as
:meth:`vaekit.recommend.MultVAERecommender.recommend` gives them: unknown ids are ignored
and listed, an empty history gets the most popular items. Where fewer than k items are
left to recommend, the answer has fewer (said in the note) instead of an error.
Concurrent requests are scored in one forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from vaekit.serve.base import Operation, ServedModel, fits, integer, schema
from vaekit.serve.settings import ServeSettings

MAX_ID = 256


class Recommender:
    def __init__(self, rec):
        from vaekit.recommend.metrics import mask_seen, top_k

        self.rec, self._mask_seen, self._top_k = rec, mask_seen, top_k
        self.index = {v: i for i, v in enumerate(rec.item_ids)}
        self.n_items = len(rec.item_ids)

    def history(self, items: list[str]) -> tuple[list[int], list[str]]:
        cols, unknown = set(), []
        for it in items:
            key = it.strip()
            if key in self.index:
                cols.add(self.index[key])
            elif key:
                unknown.append(key)
        return sorted(cols), unknown

    def run(self, reqs: list) -> list[dict]:
        parsed = [self.history(r.history) for r in reqs]
        rows = [i for i, (cols, _) in enumerate(parsed) if cols]
        h = sp.csr_matrix((len(reqs), self.n_items), dtype=np.float32)
        if rows:
            data = [(i, c) for i in rows for c in parsed[i][0]]
            r, c = zip(*data)
            h = sp.csr_matrix((np.ones(len(data), np.float32), (r, c)), shape=(len(reqs), self.n_items))
            scores = np.zeros((len(reqs), self.n_items), np.float64)
            scores[rows] = self.rec.score(h[rows])
        else:
            scores = np.zeros((len(reqs), self.n_items), np.float64)
        out = []
        for i, req in enumerate(reqs):
            cols, unknown = parsed[i]
            notes = [f"{len(unknown)} unknown item(s) ignored"] if unknown else []
            s = scores[i:i + 1]
            if not cols:
                s = self.rec.item_popularity.astype(np.float64)[None]
                notes.append("empty history: most popular items")
            if req.exclude_seen:
                s = self._mask_seen(s, h[i])
            k = min(req.k, self.n_items - (len(cols) if req.exclude_seen else 0))
            if k < req.k:
                notes.append(f"only {k} item(s) left to recommend")
            idx = self._top_k(s, k)[0] if k > 0 else np.zeros(0, int)
            out.append({"items": [str(self.rec.item_ids[j]) for j in idx], "scores": [float(s[0, j]) for j in idx],
                        "unknown": unknown, "note": "; ".join(notes)})
        return out


def load_recommender(name: str, run_dir: Path, settings: ServeSettings) -> ServedModel:
    from vaekit.recommend import MultVAERecommender

    rec = MultVAERecommender.load(run_dir)
    model = Recommender(rec)
    item = Annotated[str, Field(max_length=MAX_ID)]
    req = schema(name, "RecommendRequest",
                 history=(Annotated[list[item], Field(max_length=fits(settings, settings.max_seq_len, 6 * MAX_ID + 4),
                                                      description="item ids the user interacted with")], ...),
                 k=(integer(1, min(settings.max_k, model.n_items)), Field(10, description="items to return")),
                 exclude_seen=(bool, Field(True, description="leave the history's items out")))
    res = schema(name, "RecommendResponse", items=(list[str], ...), scores=(list[float], ...),
                 unknown=(list[str], ...), note=(str, ...))
    popular = np.argsort(-rec.item_popularity, kind="stable")[:10]
    info = {"kind": "recommender", "n_items": model.n_items, "n_users": len(rec.user_ids),
            "variant": rec.variant, "latent_dim": rec.model.latent_dim,
            "popular_items": [str(rec.item_ids[i]) for i in popular]}
    served = ServedModel(name, "recommender", info)
    served.add(Operation("recommend", "The k best items for a history of item ids", req, res, model.run,
                         lambda r: 1, batchable=True))
    return served
