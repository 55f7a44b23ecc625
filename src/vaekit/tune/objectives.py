"""What one trial of ``vaekit tune`` trains and measures, for each application.

A preset names its application with a top-level ``application:`` key (``images`` when
absent). Each application here knows which settings exist (so a search space naming an
unknown one is refused before any trial), how to train one trial into a normal run
directory, what to report to the pruner after every epoch, and the metrics a trial ends
with. The study's objective is one of those metrics (``--metric``, each application has a
default and its direction), or a user-given function ``module:function`` that receives
the trial's run directory and returns a number (``--direction`` says which way is
better).

- ``images``: validation IW-NLL (Burda et al. 2015) of the best weights on the first
  2,000 validation examples (the same for every trial); pruned on the validation -ELBO.
- ``text``: validation IW-NLL per sentence on a seeded subset of 500 validation sentences
  (the same for every trial); pruned on the validation -ELBO.
- ``molecules``: validity x novelty of 500 prior samples drawn from the same seed for
  every trial (default), or their validity, uniqueness or novelty, or the validation
  -ELBO; pruned on the validation -ELBO.
- ``recommend``: NDCG@100 on held-out validation users, strong generalization with an
  80/20 fold-in split (Liang et al. 2018; the split is the same for every trial);
  pruned on the same NDCG@100 after every epoch.
- ``anomaly``: ROC-AUC on a labelled, stratified validation split (the detector is fitted
  on the rest without its labels, as ADBench's unsupervised protocol; Han et al. 2022).
  The detector trains by steps, not epochs, so these trials are not pruned.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import sys
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vaekit.config import SearchParam, build_config
from vaekit.errors import ConfigError, DataError, VaekitError

METRICS_FILE = "objective.json"  # what a trial measured, beside its run directory's files

Report = Callable[[float, int], None]  # (value in the study's direction, epoch) -> may raise TrialPruned


def _copy(data: dict) -> dict:
    return json.loads(json.dumps(data))


def _pydantic_error(where: str, e: ValidationError) -> ConfigError:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return ConfigError(f"{where}: unknown key {loc!r}")
    if err["type"] == "value_error":  # a validator's own message: it names the value already
        message = str(err.get("ctx", {}).get("error", err["msg"]))
        return ConfigError(f"{where}: {loc + ': ' if loc else ''}{message}")
    return ConfigError(f"{where}: {loc + ': ' if loc else ''}{err['msg']} (got {err.get('input')!r})")


class Application:
    """One application's trial: settings check, training into a run directory, metrics."""

    name: str = ""
    metrics: dict[str, Literal["minimize", "maximize"]] = {}
    default_metric: str = ""
    prunable: bool = True

    def __init__(self, base: dict):
        self.base = _copy(base)

    def settings(self, overrides: dict) -> object:
        """The validated settings of one trial (``overrides``: dotted key -> value)."""
        raise NotImplementedError

    def space(self) -> dict[str, SearchParam]:
        raw = self.base.get("search") or {}
        if not isinstance(raw, dict):
            raise ConfigError("search: expected a mapping of dotted keys to ranges")
        out = {}
        for key, value in raw.items():
            try:
                out[key] = SearchParam.model_validate(value)
            except ValidationError as e:
                raise _pydantic_error(f"search: {key}", e) from None
        return out

    def check_key(self, key: str) -> None:
        """Refuse a search key that names no setting of this application."""
        node = self.known_settings()
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"search: unknown parameter {key!r} (not a setting of the {self.name} application)")
            node = node[part]

    def known_settings(self) -> dict:
        raise NotImplementedError

    def prepare(self) -> None:
        """Read and check the data once, before the first trial (bad data fails the command)."""

    def run(self, settings, run_dir: Path, report: Report, direction: str, log: Callable[[str], None],
            trial_number: int) -> dict[str, float]:
        """Train one trial into ``run_dir``; returns its metrics (those of ``metrics`` at least)."""
        raise NotImplementedError


# -- images and text: likelihood models trained by `vaekit train` ------------------------
class LikelihoodApplication(Application):
    """A trial of ``vaekit train`` scored by a validation IW-NLL; pruned on the validation -ELBO."""

    metrics = {"val_iw_nll": "minimize", "val_loss": "minimize"}
    default_metric = "val_iw_nll"
    iw_examples_default: int | None = None

    def __init__(self, base: dict, iw_samples: int = 100, iw_examples: int | None = None):
        super().__init__(base)
        self.iw_samples = iw_samples
        self.iw_examples = iw_examples if iw_examples is not None else self.iw_examples_default

    def train(self, settings, run_dir: Path, callbacks: list, command: str) -> None:
        raise NotImplementedError

    def validation_metrics(self, run_dir: Path) -> dict[str, float]:
        raise NotImplementedError

    def run(self, settings, run_dir, report, direction, log, trial_number):
        from vaekit import runs

        sign = 1.0 if direction == "minimize" else -1.0

        def each_epoch(record: dict) -> None:
            report(sign * record.get("val_loss", record["train_loss"]), record["epoch"])

        self.train(settings, run_dir, [each_epoch], f"vaekit tune (trial {trial_number})")
        losses = [h.get("val_loss", h["train_loss"]) for h in runs.read_metrics(run_dir)]
        return {**self.validation_metrics(run_dir), "val_loss": float(min(losses)) if losses else float("nan")}


class Images(LikelihoodApplication):
    name = "images"
    iw_examples_default = 2000

    def __init__(self, base: dict, iw_samples: int = 100, iw_examples: int | None = None):
        super().__init__({k: v for k, v in base.items() if k != "application"}, iw_samples, iw_examples)

    def known_settings(self) -> dict:
        from vaekit.config import RunConfig

        return RunConfig().model_dump()

    def settings(self, overrides: dict):
        return build_config(self.base, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])

    def train(self, settings, run_dir, callbacks, command):
        from vaekit.apps import images

        images.train(settings, run_dir, overwrite=True, progress=False, log=lambda m: None, command=command,
                     callbacks=callbacks, figures=False)

    def validation_metrics(self, run_dir):
        from vaekit.apps import images
        from vaekit.metrics.likelihood import iw_nll
        from vaekit.train import Tensors

        model, _, data = images.load_run(run_dir)
        val = data.val
        if self.iw_examples and len(val) > self.iw_examples:  # the same first examples for every trial
            val = Tensors(val.x[: self.iw_examples], None if val.y is None else val.y[: self.iw_examples])
        return {"val_iw_nll": float(iw_nll(model, val, k=self.iw_samples, chunk=min(self.iw_samples, 250),
                                           batch_size=100).mean())}


class Text(LikelihoodApplication):
    name = "text"
    iw_examples_default = 500

    def known_settings(self) -> dict:
        from vaekit.text.config import TextConfig

        return TextConfig().model_dump()

    def settings(self, overrides: dict):
        from vaekit.text.config import build_text_config

        return build_text_config(self.base, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])

    def train(self, settings, run_dir, callbacks, command):
        from vaekit.text import app as text

        text.train(settings, run_dir, overwrite=True, progress=False, log=lambda m: None, command=command,
                   callbacks=callbacks)

    def validation_metrics(self, run_dir):
        from vaekit.text import app as text

        # a seeded subset of validation sentences, the same for every trial
        result = text.evaluate(run_dir, self.iw_samples, self.iw_examples, split="valid", write=False)
        return {"val_iw_nll": result["nll"], "val_kl": result["kl"], "val_active_units": result["active_units"]}


class Molecules(LikelihoodApplication):
    """A molecule VAE trial, measured on 500 molecules sampled from the prior with a fixed
    seed (the same codes for every trial): validity x novelty (default), validity,
    uniqueness, novelty against the training set; or the validation -ELBO."""

    name = "molecules"
    metrics = {"val_valid_novel": "maximize", "val_valid": "maximize", "val_unique": "maximize",
               "val_novelty": "maximize", "val_loss": "minimize"}
    default_metric = "val_valid_novel"
    n_samples = 500

    def known_settings(self) -> dict:
        from vaekit.molecules.config import MoleculeConfig

        return MoleculeConfig().model_dump()

    def settings(self, overrides: dict):
        from vaekit.molecules.config import build_molecule_config

        return build_molecule_config(self.base, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])

    def train(self, settings, run_dir, callbacks, command):
        from vaekit.molecules import app as molecules

        molecules.train(settings, run_dir, overwrite=True, progress=False, log=lambda m: None, command=command,
                        callbacks=callbacks)

    def validation_metrics(self, run_dir):
        from vaekit.molecules import app as molecules

        model = molecules.load_run(run_dir)
        valid = [s for s in molecules.sample(model, self.n_samples, seed=0) if s]
        distinct = set(valid)
        novelty = len(distinct - molecules.training_set(model.config)) / max(len(distinct), 1)
        validity = len(valid) / self.n_samples
        return {"val_valid": validity, "val_unique": len(distinct) / max(len(valid), 1), "val_novelty": novelty,
                "val_valid_novel": validity * novelty}


# -- recommend ---------------------------------------------------------------------------
class RecommendData(BaseModel):
    """Where a recommend preset's interactions come from and how validation users are held out."""

    model_config = ConfigDict(extra="forbid")
    name: Optional[str] = Field(None, description="registered dataset (ml-100k)")
    path: Optional[str] = Field(None, description="CSV/TSV/Parquet of user-item interactions")
    user_col: str = "user"
    item_col: str = "item"
    rating_col: Optional[str] = "rating"
    min_rating: Optional[float] = None
    min_user_items: int = Field(5, ge=1)
    sep: Optional[str] = None
    validation_users: int = Field(100, ge=1, description="users held out, 80/20 fold-in")
    seed: int = Field(0, description="seed of the validation split (the same for every trial)")


def _estimator_settings(cls, skip: set[str]) -> dict:
    sig = inspect.signature(cls.__init__)
    return {name: p.default for name, p in sig.parameters.items()
            if name not in {"self", *skip} and p.kind is p.POSITIONAL_OR_KEYWORD}


class EstimatorApplication(Application):
    """A trial that fits one estimator: the preset has ``data``, ``params`` (the estimator's
    keyword arguments) and ``search`` (keys ``params.NAME``)."""

    data_model: type[BaseModel]
    name_example = ""

    def __init__(self, base: dict):
        super().__init__(base)
        unknown = set(self.base) - {"application", "data", "params", "search"}
        if unknown:
            raise ConfigError(f"{self.name} preset: unknown section(s) {', '.join(sorted(unknown))} "
                              "(expected data, params, search)")
        try:
            self.data = self.data_model.model_validate(self.base.get("data") or {})
        except ValidationError as e:
            raise _pydantic_error(f"{self.name} preset data", e) from None
        if (self.data.name is None) == (self.data.path is None):
            raise ConfigError(f"{self.name} preset data: give exactly one of 'name' ({self.name_example}) or 'path'")
        self._split = None

    def estimator(self) -> type:
        raise NotImplementedError

    def check(self, params: dict) -> None:
        """Construct the estimator and let it refuse bad settings."""
        raise NotImplementedError

    def known_settings(self) -> dict:
        return {"params": _estimator_settings(self.estimator(), {"progress", "log"})}

    def settings(self, overrides: dict):
        params = dict(self.base.get("params") or {})
        known = self.known_settings()["params"]
        for key, value in overrides.items():
            params[key.split(".", 1)[1]] = value
        bad = sorted(set(params) - set(known))
        if bad:
            raise ConfigError(f"{self.name} preset params: unknown setting(s) {', '.join(bad)}; "
                              f"known: {', '.join(sorted(known))}")
        try:
            self.check(params)
        except (DataError, TypeError, ValueError) as e:
            raise ConfigError(f"{self.name} preset params: {e}") from None
        return params

    def prepare(self) -> None:
        self.split()

    def split(self):
        """The data and their validation split, read once per process (every trial reuses them)."""
        if self._split is None:
            self._split = self.read_split()
        return self._split

    def read_split(self):  # pragma: no cover - abstract
        raise NotImplementedError


class Recommend(EstimatorApplication):
    name = "recommend"
    metrics = {"val_ndcg_100": "maximize", "val_recall_20": "maximize", "val_recall_50": "maximize"}
    default_metric = "val_ndcg_100"
    data_model = RecommendData
    name_example = "ml-100k"

    def estimator(self) -> type:
        from vaekit.recommend import MultVAERecommender

        return MultVAERecommender

    def check(self, params: dict) -> None:
        self.estimator()(**params).check_params()

    def read_split(self):
        """The interactions and the validation split (strong generalization, no test users)."""
        from vaekit.recommend.cli import load_interactions
        from vaekit.recommend.splits import strong_generalization_split

        d = self.data
        min_rating = d.min_rating if d.min_rating is not None or d.name != "ml-100k" else 4.0
        inter = load_interactions(d.name or d.path, d.user_col, d.item_col, d.rating_col, min_rating,
                                  d.min_user_items, d.sep)
        if d.validation_users >= inter.n_users:
            raise ConfigError(f"recommend preset data: validation_users {d.validation_users} must be below "
                              f"the number of users ({inter.n_users})")
        split = strong_generalization_split(inter.matrix, d.validation_users, seed=d.seed, n_test_users=0)
        return inter, split

    def run(self, settings, run_dir, report, direction, log, trial_number):
        from vaekit import runs
        from vaekit.recommend import MultVAERecommender
        from vaekit.recommend.metrics import ranking_report

        inter, split = self.split()
        sign = 1.0 if direction == "maximize" else -1.0  # the pruner reads values in the study's direction

        def each_epoch(record: dict) -> None:
            report(sign * record["val_ndcg_100"], record["epoch"])

        keep = split.users["train"]
        rec = MultVAERecommender(**settings)
        run_dir = runs.prepare(run_dir, overwrite=True)
        rec.fit(inter.matrix[keep][:, split.item_index], (split.valid_in, split.valid_out), run_dir,
                item_ids=inter.item_ids[split.item_index], user_ids=inter.user_ids[keep], callbacks=[each_epoch])
        rec.report = inter.report
        rec.save(run_dir)
        r = ranking_report(rec.score(split.valid_in), split.valid_in, split.valid_out)
        return {"val_ndcg_100": r["ndcg_100"], "val_recall_20": r["recall_20"], "val_recall_50": r["recall_50"]}


# -- anomaly -----------------------------------------------------------------------------
class AnomalyData(BaseModel):
    """A labelled table for tuning a detector: a registered set or a file with a label column."""

    model_config = ConfigDict(extra="forbid")
    name: Optional[str] = Field(None, description="registered labelled set, e.g. adbench-cardio")
    path: Optional[str] = Field(None, description="CSV/TSV/Parquet/.npz with a label column (or y)")
    label_col: Optional[str] = Field(None, description="0/1 label column of a CSV/Parquet file")
    ignore: list[str] = Field(default_factory=list, description="columns to leave out")
    val_size: float = Field(0.3, gt=0.0, lt=1.0, description="stratified validation share")
    seed: int = 0


class Anomaly(EstimatorApplication):
    name = "anomaly"
    metrics = {"val_roc_auc": "maximize", "val_average_precision": "maximize"}
    default_metric = "val_roc_auc"
    prunable = False
    data_model = AnomalyData
    name_example = "e.g. adbench-cardio"

    def estimator(self) -> type:
        from vaekit.anomaly import VAEDetector

        return VAEDetector

    def check(self, params: dict) -> None:
        self.estimator()(**params)._check_params()

    def read_split(self):
        """Training rows (labels dropped) and the labelled validation rows."""
        import pandas as pd
        from sklearn.model_selection import train_test_split

        from vaekit.anomaly.data import binary_labels, load_adbench, read_table

        d = self.data
        if d.name is not None:
            X, y = load_adbench(d.name)
            X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        else:
            X, y = read_table(d.path)
            if d.label_col is not None:
                if d.label_col not in X.columns:
                    raise DataError(f"{d.path}: no label column {d.label_col!r}")
                y = X.pop(d.label_col).to_numpy()
            if y is None:
                raise ConfigError(f"anomaly preset data: {d.path} has no labels; name the 'label_col' "
                                  "(tuning needs labelled validation rows)")
            y = binary_labels(y, f"{d.path} labels")
            missing = [c for c in d.ignore if c not in X.columns]
            if missing:
                raise DataError(f"{d.path}: no column(s) {', '.join(missing)} to ignore")
            X = X.drop(columns=d.ignore)
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            raise DataError("anomaly preset data: the labels hold one class only; ROC-AUC needs both")
        tr, va = train_test_split(np.arange(len(y)), test_size=d.val_size, stratify=y, random_state=d.seed)
        return X.iloc[tr].reset_index(drop=True), X.iloc[va].reset_index(drop=True), y[va]

    def run(self, settings, run_dir, report, direction, log, trial_number):
        from sklearn.metrics import average_precision_score, roc_auc_score

        from vaekit import runs
        from vaekit.anomaly import VAEDetector

        train, val, y_val = self.split()
        run_dir = runs.prepare(run_dir, overwrite=True)
        det = VAEDetector(**settings).fit(train, run_dir=run_dir)  # no labels: unsupervised
        det.save(run_dir, extra={"tuning": f"trial {trial_number}"})
        scores = det.decision_function(val)
        return {"val_roc_auc": float(roc_auc_score(y_val, scores)),
                "val_average_precision": float(average_precision_score(y_val, scores))}


APPLICATIONS: dict[str, type[Application]] = {"images": Images, "text": Text, "recommend": Recommend,
                                              "anomaly": Anomaly, "molecules": Molecules}


def application_for(base: dict, iw_samples: int = 100) -> Application:
    name = base.get("application", "images")
    if name not in APPLICATIONS:
        raise ConfigError(f"unknown application {name!r} in the preset; tunable: {', '.join(APPLICATIONS)}")
    if name in ("images", "text"):
        return APPLICATIONS[name](base, iw_samples)
    return APPLICATIONS[name](base)


# -- the objective: a named metric or a user function ------------------------------------
class Objective(BaseModel):
    """The metric a study optimizes: ``metric`` of the application, or ``function`` of the run."""

    model_config = ConfigDict(extra="forbid")
    metric: str
    direction: Literal["minimize", "maximize"]
    function: Optional[str] = Field(None, description="module:function given the trial's run directory")


def resolve_objective(app: Application, metric: str | None, direction: str | None) -> Objective:
    """``--metric``/``--direction`` checked against the application; a ``module:function`` loads now."""
    if metric is None:
        metric = app.default_metric
    if ":" in metric:
        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"--metric {metric} is a user function: give --direction minimize or maximize")
        user_function(metric)  # fail before the first trial
        return Objective(metric=metric, direction=direction, function=metric)
    if metric not in app.metrics:
        raise ConfigError(f"unknown metric {metric!r} for the {app.name} application; choose one of "
                          f"{', '.join(app.metrics)}, or give a user function as module:function")
    natural = app.metrics[metric]
    if direction is not None and direction != natural:
        raise ConfigError(f"{metric} is to {natural}, not to {direction}")
    return Objective(metric=metric, direction=natural)


def user_function(spec: str) -> Callable[[Path], float]:
    """``module:function`` (the current directory is importable), refused clearly if absent."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ConfigError(f"--metric {spec!r}: a user metric is written module:function")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        fn = getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ConfigError(f"--metric {spec!r}: cannot import module {module!r} ({e})") from None
    except AttributeError:
        raise ConfigError(f"--metric {spec!r}: module {module!r} has no {name!r}") from None
    if not callable(fn):
        raise ConfigError(f"--metric {spec!r}: {name!r} is not a function")
    return fn


def measure(objective: Objective, metrics: dict[str, float], run_dir: Path) -> float:
    """The trial's objective value; a user function gets the run directory."""
    if objective.function is None:
        value = metrics[objective.metric]
    else:
        try:
            value = float(user_function(objective.function)(Path(run_dir)))
        except ConfigError:
            raise
        except Exception as e:  # the user's code: recorded on the trial, the study goes on
            raise VaekitError(f"user metric {objective.function} failed: {type(e).__name__}: {e}") from None
    if not math.isfinite(value):
        raise VaekitError(f"non-finite objective {objective.metric} = {value}")
    return float(value)
