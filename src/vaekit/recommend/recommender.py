"""``MultVAERecommender``: fit on a user-item matrix, recommend from any user's history.

The model sees a user only through their history (the fold-in vector), so a fitted model
recommends for new users without retraining, which is the strong-generalization setting
of Liang et al. 2018. Training is the shared :class:`vaekit.train.Trainer`; when
validation users are given, early stopping and the best checkpoint follow NDCG@100 on
them (the paper's model selection) instead of the validation loss.

Files: a run directory holds ``config.json`` + ``model.safetensors`` (the VAE),
``recommender.json`` (item and user ids, item popularity, settings, data report) and
``histories.safetensors`` (the training users' items, CSR arrays). No pickle.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.numpy import save as save_numpy

from vaekit.builders import build_vae
from vaekit.config import BetaConfig, TrainConfig
from vaekit.data.fetch import sha256_of
from vaekit.data.ratings import Interactions
from vaekit.errors import DataError, ModelFileError
from vaekit.io import CONFIG_FILE, WEIGHTS_FILE, from_pretrained, read_config, save_pretrained
from vaekit.recommend.metrics import mask_seen, ndcg_at_k, top_k
from vaekit.recommend.model import multvae_description
from vaekit.train import Tensors, Trainer
from vaekit.train.checkpoint import atomic_write_bytes, atomic_write_text, load_tensors, read_json

META_FILE = "recommender.json"
HISTORY_FILE = "histories.safetensors"


@dataclass
class Recommendation:
    items: list[str]
    scores: list[float]
    unknown: list[str] = field(default_factory=list)  # history items not in the catalogue (ignored)
    note: str = ""


def _as_csr(x, what: str) -> sp.csr_matrix:
    if isinstance(x, Interactions):
        x = x.matrix
    if hasattr(x, "columns") and hasattr(x, "iloc"):  # a pandas DataFrame: a table, not a matrix
        raise DataError(f"{what}: a DataFrame is a table of rows, not a users x items matrix; turn a "
                        "(user, item[, rating]) table into one with "
                        "vaekit.data.ratings.interactions_from_table(df) and pass that")
    if sp.issparse(x):
        m = sp.csr_matrix(x, dtype=np.float32)
    else:
        arr = np.asarray(x)
        if arr.ndim != 2:
            raise DataError(f"{what}: expected a 2-D users x items matrix, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise DataError(f"{what}: expected numbers, got dtype {arr.dtype}")
        m = sp.csr_matrix(arr.astype(np.float32))
    if m.nnz and (not np.all(np.isfinite(m.data)) or (m.data < 0).any()):
        raise DataError(f"{what}: interactions must be finite and >= 0")
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def _popularity(histories: sp.csr_matrix) -> np.ndarray:
    """Each item's share of users who have it (the empty-history fallback's ranking)."""
    return np.asarray(histories.sum(0)).ravel() / max(histories.shape[0], 1)


def _refuse_duplicates(ids: np.ndarray, what: str) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{what} must be unique; {str(values[counts > 1][0])!r} appears {counts[counts > 1][0]} times")


class MultVAERecommender:
    """Mult-VAE (``variant="vae"``) or Mult-DAE (``"dae"``), Liang et al. 2018.

    Defaults are the paper's: network [I-600-200-600-I] with tanh, input dropout 0.5, Adam
    lr 1e-3, batch 500, beta annealed linearly from 0 to ``beta_cap`` = 0.2 (over
    ``anneal_epochs``, default all of training).

    ``weight_average``: keep an exponential moving average of the weights, updated after
    every epoch with this decay (Polyak & Juditsky 1992; as in Izmailov et al. 2018, the
    average is the model that is scored). Validation NDCG@100, the choice of the best epoch
    and the fitted model then use the average, which drifts less from epoch to epoch than
    the weights Adam leaves: with ~100 validation users, the best of many noisy epochs
    flatters the choice (``benchmarks/movielens_selection.py``). ``None``: off (the paper).
    """

    def __init__(self, variant: str = "vae", hidden: Iterable[int] = (600,), latent_dim: int = 200,
                 dropout: float = 0.5, beta_cap: float = 0.2, anneal_epochs: float | None = None,
                 epochs: int = 200, batch_size: int = 500, lr: float = 1e-3, weight_decay: float = 0.0,
                 patience: int | None = None, weight_average: float | None = None, seed: int = 0,
                 progress: bool = False,
                 log: Callable[[str], None] | None = None):
        if variant not in ("vae", "dae"):
            raise DataError(f"variant must be 'vae' or 'dae', got {variant!r}")
        self.variant, self.hidden, self.latent_dim = variant, [int(h) for h in hidden], int(latent_dim)
        self.dropout, self.beta_cap, self.anneal_epochs = float(dropout), float(beta_cap), anneal_epochs
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.patience, self.seed, self.progress = patience, seed, progress
        self.weight_average = weight_average
        self.log = log or (lambda _msg: None)
        self.model = None
        self.item_ids: np.ndarray | None = None
        self.user_ids: np.ndarray | None = None
        self.histories: sp.csr_matrix | None = None
        self.item_popularity: np.ndarray | None = None
        self.report: dict = {}
        self.history: list[dict] = []

    def check_params(self) -> None:
        """Refuse settings that cannot train, naming the setting (called by ``fit``)."""
        def positive_int(name, value):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"{name} must be a positive integer, got {value!r}")

        for name in ("latent_dim", "epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        for h in self.hidden:
            positive_int("hidden sizes", h)
        if not 0.0 <= self.dropout < 1.0:
            raise DataError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.beta_cap >= 0 and math.isfinite(self.beta_cap)):
            raise DataError(f"beta_cap must be a finite number >= 0, got {self.beta_cap}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr and math.isfinite(self.lr)):
            raise DataError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < math.inf):
            raise DataError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.anneal_epochs is not None and not self.anneal_epochs > 0:
            raise DataError(f"anneal_epochs must be > 0 (or None: all of training), got {self.anneal_epochs!r}")
        if self.patience is not None:
            positive_int("patience", self.patience)
        if self.weight_average is not None and not (isinstance(self.weight_average, (int, float))
                                                    and not isinstance(self.weight_average, bool)
                                                    and 0 <= self.weight_average < 1):
            raise DataError(f"weight_average must be a decay in [0, 1) (or None: off), got {self.weight_average!r}")

    # -- training ----------------------------------------------------------------------
    def train_config(self, monitor: str = "val_loss") -> TrainConfig:
        anneal = self.epochs if self.anneal_epochs is None else self.anneal_epochs
        beta = (BetaConfig(schedule="constant", value=0.0) if self.variant == "dae" else
                BetaConfig(schedule="linear", value=self.beta_cap, start=0.0, warmup_epochs=anneal))
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=self.weight_decay, patience=self.patience, beta=beta, seed=self.seed,
                           grad_clip=None, monitor=monitor, monitor_mode="max" if monitor != "val_loss" else "min")

    def fit(self, interactions, validation: tuple | None = None, run_dir: str | Path | None = None,
            item_ids=None, user_ids=None, callbacks: list[Callable[[dict], None]] | None = None
            ) -> "MultVAERecommender":
        """Train on a users x items matrix (an :class:`Interactions`, SciPy sparse or dense).

        ``validation`` = (fold_in, held_out) matrices of validation users over the same
        items: NDCG@100 on them is computed every epoch and selects the best epoch.
        ``callbacks`` get each epoch's record (``vaekit tune`` reports it to Optuna's pruner).
        """
        self.check_params()
        if isinstance(interactions, Interactions):
            item_ids = interactions.item_ids if item_ids is None else item_ids
            user_ids = interactions.user_ids if user_ids is None else user_ids
            self.report = dict(interactions.report)
        x = _as_csr(interactions, "interactions")
        n_users, n_items = x.shape
        if n_users == 0 or n_items == 0 or x.nnz == 0:
            raise DataError(f"interactions: nothing to learn from ({n_users} users, {n_items} items, {x.nnz} interactions)")
        self.item_ids = np.asarray(item_ids if item_ids is not None else np.arange(n_items)).astype(str)
        self.user_ids = np.asarray(user_ids if user_ids is not None else np.arange(n_users)).astype(str)
        if len(self.item_ids) != n_items or len(self.user_ids) != n_users:
            raise DataError(f"{len(self.item_ids)} item ids / {len(self.user_ids)} user ids for a "
                            f"{n_users} x {n_items} matrix")
        for name, ids in (("item", self.item_ids), ("user", self.user_ids)):
            _refuse_duplicates(ids, f"{name} ids")
        self.histories = x
        self.item_popularity = _popularity(x)
        torch.manual_seed(self.seed)
        self.model = build_vae(multvae_description(n_items, self.variant, self.hidden, self.latent_dim, self.dropout))
        train = Tensors(torch.from_numpy(x.toarray().astype(np.uint8)))
        average = _WeightAverage(self.model, self.weight_average) if self.weight_average is not None else None
        val, evaluators, monitor = None, [], "val_loss"
        if validation is not None:
            fold_in, held_out = (_as_csr(m, "validation") for m in validation)
            if fold_in.shape[1] != n_items or held_out.shape != fold_in.shape:
                raise DataError(f"validation matrices {fold_in.shape} / {held_out.shape} do not match "
                                f"{n_items} items")
            val = Tensors(torch.from_numpy(fold_in.toarray().astype(np.uint8)))

            def validation_ndcg(model) -> dict:
                scored = average.update(model) if average is not None else model
                ndcg = float(np.mean(ndcg_at_k(mask_seen(self._scores(scored, fold_in), fold_in), held_out, 100)))
                if average is not None:
                    average.keep_if_best(ndcg)
                return {"val_ndcg_100": ndcg}

            evaluators = [validation_ndcg]
            monitor = "val_ndcg_100"
        elif average is not None:  # no validation: the average after the last epoch is the model
            callbacks = [lambda _record: average.update(self.model), *(callbacks or [])]
        with tempfile.TemporaryDirectory(prefix="vaekit-rec-") as tmp:
            trainer = Trainer(self.model, self.train_config(monitor), train, val, run_dir or tmp,
                              evaluators=evaluators, callbacks=callbacks, progress=self.progress, log=self.log)
            result = trainer.fit()
        self.history = result.history
        if average is not None:
            average.load_into(self.model)
        self.model.cpu().eval()
        return self

    def keep_histories(self, histories, user_ids) -> None:
        """Keep these users' histories (over the model's items) for :meth:`recommend_user`
        and the most-popular fallback, for example the training users together with the
        validation users that were held out of training to choose the epoch."""
        self._check_fitted()
        h = _as_csr(histories, "histories")
        user_ids = np.asarray(user_ids).astype(str)
        if h.shape != (len(user_ids), len(self.item_ids)):
            raise DataError(f"histories {h.shape} do not match {len(user_ids)} user ids x {len(self.item_ids)} items")
        _refuse_duplicates(user_ids, "user ids")
        self.histories, self.user_ids = h, user_ids
        self.item_popularity = _popularity(h)

    # -- scoring -----------------------------------------------------------------------
    @staticmethod
    @torch.no_grad()
    def _scores(model, histories: sp.csr_matrix, batch: int = 2000) -> np.ndarray:
        was = model.training
        model.eval()
        out = []
        for i in range(0, histories.shape[0], batch):
            x = torch.from_numpy(histories[i:i + batch].toarray())
            out.append(model.decode(model.encode(x).mean).float().numpy())  # logits: same order as softmax
        model.train(was)
        return np.concatenate(out) if out else np.zeros((0, histories.shape[1]), np.float32)

    def _check_fitted(self):
        if self.model is None:
            raise DataError("this recommender is not fitted: call fit() or load() first")

    def score(self, histories) -> np.ndarray:
        """Unnormalised scores (decoder logits) of every item for each history row."""
        self._check_fitted()
        h = _as_csr(histories, "histories")
        if h.shape[1] != len(self.item_ids):
            raise DataError(f"histories have {h.shape[1]} items, the model has {len(self.item_ids)}")
        return self._scores(self.model, h)

    def recommend_all(self, histories, k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for every row of ``histories`` (batch scoring)."""
        self._check_fitted()
        h = _as_csr(histories, "histories")
        self._check_k(k, int(np.diff(h.indptr).max(initial=0)) if exclude_seen else 0)
        s = self.score(h)
        if exclude_seen:
            s = mask_seen(s, h)
        idx = top_k(s, k)
        return idx, np.take_along_axis(s, idx, 1)

    def _check_k(self, k: int, exclude: int = 0) -> None:
        n = len(self.item_ids)
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise DataError(f"k must be a positive integer, got {k!r}")
        if k > n - exclude:
            raise DataError(f"k = {k} is larger than the {n - exclude} items that can be recommended "
                            f"(catalogue {n}, excluded {exclude})")

    def history_vector(self, items: Iterable) -> tuple[sp.csr_matrix, list[str]]:
        """A one-row history over the catalogue; unknown item ids are returned, not used."""
        self._check_fitted()
        index = {v: i for i, v in enumerate(self.item_ids)}
        cols, unknown = [], []
        for it in items:
            key = str(it).strip()
            if key in index:
                cols.append(index[key])
            elif key:
                unknown.append(key)
        cols = sorted(set(cols))
        row = sp.csr_matrix((np.ones(len(cols), np.float32), (np.zeros(len(cols), int), cols)),
                            shape=(1, len(self.item_ids)))
        return row, unknown

    def recommend(self, user_history: Iterable, k: int = 10, exclude_seen: bool = True) -> Recommendation:
        """The k best items for a history of item ids (original ids, as in the training file).

        Unknown ids are ignored and listed in ``unknown``. An empty history (or one with only
        unknown items) falls back to the most popular items of the training data.
        """
        if isinstance(user_history, (str, bytes)):
            raise DataError(f"user_history must be a list of item ids, not the string {user_history!r} "
                            "(whose characters would be taken for ids)")
        row, unknown = self.history_vector(user_history)
        self._check_k(k, row.nnz if exclude_seen else 0)
        note = f"{len(unknown)} unknown item(s) ignored" if unknown else ""
        if row.nnz == 0:
            scores = self.item_popularity.astype(np.float64)[None]
            note = (note + "; " if note else "") + "empty history: most popular items"
        else:
            scores = self.score(row)
        if exclude_seen:
            scores = mask_seen(scores, row)
        idx = top_k(scores, k)[0]
        return Recommendation([str(self.item_ids[i]) for i in idx], [float(scores[0, i]) for i in idx], unknown, note)

    def recommend_user(self, user_id, k: int = 10, exclude_seen: bool = True) -> Recommendation:
        """Recommendations for a user of the training data, from their saved history."""
        self._check_fitted()
        where = np.flatnonzero(self.user_ids == str(user_id))
        if len(where) == 0:
            raise DataError(f"unknown user id {user_id!r} (the model knows {len(self.user_ids)} users)")
        row = self.histories[where[0]]
        return self.recommend([self.item_ids[i] for i in row.indices], k, exclude_seen)

    def similar_items(self, item, k: int = 10) -> Recommendation:
        """Items whose output embeddings (rows of the decoder's last layer) are closest by cosine."""
        self._check_fitted()
        self._check_k(k, 1)
        index = np.flatnonzero(self.item_ids == str(item).strip())  # ids are stored stripped, as histories are
        if len(index) == 0:
            raise DataError(f"unknown item id {item!r}")
        last = [m for m in self.model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
        emb = torch.nn.functional.normalize(last.weight.detach(), dim=1).numpy()
        sims = emb @ emb[index[0]]
        sims[index[0]] = -np.inf
        idx = top_k(sims[None], k)[0]
        return Recommendation([str(self.item_ids[i]) for i in idx], [float(sims[i]) for i in idx])

    # -- files -------------------------------------------------------------------------
    def params(self) -> dict:
        return {"variant": self.variant, "hidden": self.hidden, "latent_dim": self.latent_dim,
                "dropout": self.dropout, "beta_cap": self.beta_cap, "anneal_epochs": self.anneal_epochs,
                "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "patience": self.patience,
                "weight_average": self.weight_average, "seed": self.seed}

    def save(self, directory: str | Path) -> Path:
        """Write the model and its id maps (weights first, the JSON that points at them last).

        ``recommender.json`` holds the sha256 of the two weight files it was written with,
        so a directory whose files come from different saves (a save that failed halfway
        over an older model) is refused on loading instead of giving wrong items. A
        directory holding another kind of vaekit run is refused before anything is written.
        """
        self._check_fitted()
        directory = Path(directory)
        if (directory / CONFIG_FILE).is_file() and not (directory / META_FILE).is_file():
            try:
                kind = read_config(directory)["kind"]
            except ModelFileError:
                kind = "unknown"
            if kind != "multvae":
                raise DataError(f"{directory} holds a {kind} run, not a recommender; save elsewhere")
        directory.mkdir(parents=True, exist_ok=True)
        save_pretrained(self.model, directory)
        h = self.histories
        histories = save_numpy({
            "indptr": h.indptr.astype(np.int64), "indices": h.indices.astype(np.int64),
            "shape": np.array(h.shape, np.int64), "item_popularity": self.item_popularity.astype(np.float64)})
        atomic_write_bytes(directory / HISTORY_FILE, histories)
        meta = {"params": self.params(), "item_ids": self.item_ids.tolist(), "user_ids": self.user_ids.tolist(),
                "report": self.report, "history": self.history,
                "sha256": {name: sha256_of(directory / name) for name in (WEIGHTS_FILE, HISTORY_FILE)}}
        atomic_write_text(directory / META_FILE, json.dumps(meta))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "MultVAERecommender":
        directory = Path(directory)
        path = directory / META_FILE
        if directory.exists() and not directory.is_dir():
            raise ModelFileError(f"{directory} is a file, not a recommender run directory")
        meta = read_json(path, missing=f"{directory} is not a recommender run directory")
        try:
            params = {k: v for k, v in meta["params"].items() if k in cls.__init__.__code__.co_varnames}
            rec = cls(**params)
            rec.item_ids, rec.user_ids = _id_list(meta, "item_ids"), _id_list(meta, "user_ids")
            rec.report, rec.history = meta.get("report", {}), meta.get("history", [])
            hashes = meta.get("sha256", {})
        except (ValueError, KeyError, TypeError, AttributeError, DataError) as e:
            raise ModelFileError(f"{path}: not a valid recommender description ({e})") from None
        for name, digest in (hashes.items() if isinstance(hashes, dict) else ()):
            if (directory / name).is_file() and sha256_of(directory / name) != digest:
                raise ModelFileError(f"{directory / name} is not the file {META_FILE} was saved with (a save "
                                     "that stopped halfway, or a file copied in from another run); save again")
        rec.model = from_pretrained(directory)
        rec.histories, rec.item_popularity = _read_histories(directory / HISTORY_FILE, len(rec.user_ids),
                                                             len(rec.item_ids))
        if rec.model.config.get("n_items") != len(rec.item_ids):
            raise ModelFileError(f"{directory}: the model has {rec.model.config.get('n_items')} items, "
                                 f"{META_FILE} lists {len(rec.item_ids)}")
        return rec


class _WeightAverage:
    """An exponential moving average of a model's weights, updated once an epoch
    (``torch.optim.swa_utils.AveragedModel``; its first update copies the weights), and
    the average at the best validation score seen, kept for the end of training."""

    def __init__(self, model: torch.nn.Module, decay: float):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.best_score, self.best_state = -math.inf, None

    def update(self, model: torch.nn.Module) -> torch.nn.Module:
        self.average.update_parameters(model)
        return self.average.module

    def keep_if_best(self, score: float) -> None:
        if score > self.best_score:  # the first of equal scores, as the trainer's best epoch
            self.best_score = score
            self.best_state = {k: v.detach().clone() for k, v in self.average.module.state_dict().items()}

    def load_into(self, model: torch.nn.Module) -> None:
        """The best average where validation scored it, else the last one."""
        model.load_state_dict(self.best_state if self.best_state is not None else self.average.module.state_dict())


def _id_list(meta: dict, key: str) -> np.ndarray:
    ids = meta[key]
    if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
        raise ValueError(f"{key!r} must be a list of strings")
    ids = np.asarray(ids, dtype=str)
    _refuse_duplicates(ids, key)  # a DataError: load() reports it as an invalid description
    return ids


def _read_histories(path: Path, n_users: int, n_items: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The saved CSR histories and item popularity, checked against the id lists."""
    tensors, _ = load_tensors(path)  # refuses pickles, names damaged files
    try:
        arrays = {k: tensors[k].numpy() for k in ("indptr", "indices", "shape", "item_popularity")}
    except KeyError as e:
        raise ModelFileError(f"{path}: no array {e}") from None
    shape = tuple(int(v) for v in arrays["shape"])
    if shape != (n_users, n_items):
        raise ModelFileError(f"{path}: shape {shape} does not match the id lists ({n_users} users, {n_items} items)")
    popularity = arrays["item_popularity"]
    if popularity.shape != (n_items,) or not np.all(np.isfinite(popularity)):
        raise ModelFileError(f"{path}: item_popularity must be {n_items} finite numbers, got shape "
                             f"{popularity.shape}")
    try:
        histories = sp.csr_matrix((np.ones(len(arrays["indices"]), np.float32), arrays["indices"],
                                   arrays["indptr"]), shape=shape)
        histories.check_format(full_check=True)
    except ValueError as e:
        raise ModelFileError(f"{path}: damaged histories ({e})") from None
    return histories, popularity
