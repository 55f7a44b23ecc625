"""The study: Optuna with a real database, trials as run directories (``vaekit tune``).

The search space is declared in the preset's YAML under ``search:`` (dotted setting keys,
each an int/float range or a list of choices). Each trial is a normal run directory
``OUT/trial_NNNN`` trained by the preset's application (:mod:`vaekit.tune.objectives`),
which reports a validation measure after every epoch so that Optuna's median or
Hyperband pruner stops poor trials early; the objective is the application's metric
(or a user function of the run directory). Every trial's metrics are stored on the
trial and in ``objective.json`` in its run directory.
Samplers: TPE (Bergstra et al. 2011). Optuna: Akiba et al. 2019.

The study lives in the storage (SQLite by default; PostgreSQL/MySQL URLs work the same):
an interrupted search resumes where it stopped, and several processes (``--jobs`` or
separate shells on the same storage) share one study. Trials of a process that died are
detected by heartbeat and retried. A trial that fails is recorded as failed, with its
error, and the study goes on; Ctrl-C stops the study, and the trial it stopped runs again
first when the same command is run again. A study is refused on resuming when its search
space, objective or fixed settings (preset and ``--set``) differ from the first run's. The
trials' folder ``OUT`` is the study's (``OUT/STUDY.json``); the best trial's run directory
is copied to ``OUT/best``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

from vaekit.config import SearchParam
from vaekit.errors import ConfigError, TrainingInterrupted, VaekitError
from vaekit.train.checkpoint import atomic_write_text
from vaekit.tune.folder import check_out, claim_out, copy_best, storage_identity
from vaekit.tune.objectives import (
    METRICS_FILE,
    Application,
    Objective,
    application_for,
    measure,
    resolve_objective,
)

SPACE_ATTR = "vaekit_search_space"
PRESET_ATTR = "vaekit_preset"
OBJECTIVE_ATTR = "vaekit_objective"
BASE_ATTR = "vaekit_settings"
# data settings that choose the data or the validation examples: trials must share them
SHARED_DATA_SETTINGS = ("name", "val_size", "limit", "eval_limit", "seed", "validation_users", "ignore", "sep",
                        "min_rating", "min_user_items")


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C during a trial: Optuna records the trial as failed and re-raises this (it
    catches ``Exception`` only), so the study stops instead of going on with the next trial."""

    def __init__(self, trial_number: int):
        super().__init__(trial_number)
        self.trial_number = trial_number


class _QuietInterrupt:
    """A logging filter for Optuna's trial log: Ctrl-C is reported once by ``tune``, not as
    the stopped trial's failure (Optuna logs a trial that raised with its traceback, then
    its value: both records name the trial)."""

    def __init__(self):
        self.stopped: set[str] = set()

    def filter(self, record) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], _Interrupted):
            self.stopped.add(f"Trial {record.exc_info[1].trial_number} ")
            return False
        return not any(record.getMessage().startswith(prefix) for prefix in self.stopped)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("`vaekit tune` needs Optuna: pip install 'vaekit[tune]'") from None
    return optuna


def validate_space(space: dict[str, SearchParam], app: Application) -> None:
    """Every key must name an existing setting (e.g. ``train.lr``) and every value must build."""
    if not space:
        raise ConfigError("the preset has no 'search:' section: nothing to tune (see README, 'Hyperparameter search')")
    for key, param in space.items():
        app.check_key(key)
        section, _, name = key.partition(".")
        if section == "data" and (name in SHARED_DATA_SETTINGS or name.endswith("_col") or "path" in name
                                  or "file" in name):
            raise ConfigError(f"search: {key} chooses the data or the validation set, which every trial "
                              "must share to be compared; tune one dataset per study")
        probes = param.choices if param.type == "categorical" else [param.low, param.high]
        for value in probes:
            if param.type == "int":
                value = int(value)
            try:
                app.settings({key: value})
            except ConfigError as e:
                raise ConfigError(f"search: {key} = {value!r} is not a valid setting ({e})") from None
        if param.type == "float":  # the bounds may be whole numbers that an integer setting takes
            inside = param.low + (param.high - param.low) / 3
            try:
                app.settings({key: inside})
            except ConfigError:
                raise ConfigError(f"search: {key} takes whole numbers only: give it type: int") from None


def suggest(trial, space: dict[str, SearchParam]) -> dict:
    values = {}
    for key, p in space.items():
        if p.type == "int":
            values[key] = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        elif p.type == "float":
            values[key] = trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)
        else:
            # Optuna stores categorical choices as JSON-able scalars: encode lists as strings
            index = trial.suggest_categorical(key, [json.dumps(c) for c in p.choices])
            values[key] = json.loads(index)
    return values


def flatten_settings(tree: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys: {"train": {"lr": 1e-3}} -> {"train.lr": 1e-3}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _fixed_settings(base: dict) -> str:
    """The settings every trial shares (the preset with ``--set``), as stored on the study."""
    return json.dumps({k: v for k, v in base.items() if k != "search"}, sort_keys=True, default=str)


def _settings_differ(stored: str, wanted: str) -> str:
    old, new = flatten_settings(json.loads(stored)), flatten_settings(json.loads(wanted))
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k, "unset") != new.get(k, "unset")]
    return "; ".join(f"{k}: {json.dumps(old.get(k, 'unset'))} then, {json.dumps(new.get(k, 'unset'))} now"
                     for k in changed[:3]) + (f" (and {len(changed) - 3} more)" if len(changed) > 3 else "")


def _sampler_seed(seed: int, worker: int, trials: int) -> int:
    """A TPE seed of its own for each worker process and each resumption of a study."""
    import numpy as np

    return int(np.random.SeedSequence([seed, worker, trials]).generate_state(1)[0])


def open_study(storage: str, study: str, space: dict, preset: str, seed: int = 0, pruner: str = "median",
               create: bool = True, objective: Objective | None = None, base: dict | None = None,
               worker: int = 0):
    """Load or create the study; refuse one that holds trials with a different search
    space, objective or fixed settings (``base``: the preset with ``--set``), as they would
    not be comparable with the new ones. ``worker``: which ``--jobs`` process asks."""
    optuna = _optuna()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            rdb = RDBStorage(storage, heartbeat_interval=30, grace_period=90,
                             heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as e:  # bad URL, unreachable server, unwritable file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"cannot open storage {storage!r}: {first}") from None
    pruners = {"median": optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
               "hyperband": optuna.pruners.HyperbandPruner(), "none": optuna.pruners.NopPruner()}
    if pruner not in pruners:
        raise ConfigError(f"unknown pruner {pruner!r}; choose one of {sorted(pruners)}")
    encoded = json.dumps({k: v.model_dump() for k, v in sorted(space.items())}, sort_keys=True)
    names = {s.study_name for s in optuna.get_all_study_summaries(rdb)}
    if study not in names and not create:
        raise ConfigError(f"no study {study!r} in {storage}; studies there: {', '.join(sorted(names)) or 'none'}")
    objective = objective or Objective(metric="val_iw_nll", direction="minimize")
    s = optuna.create_study(storage=rdb, study_name=study, direction=objective.direction, load_if_exists=True,
                            sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruners[pruner])
    resumed = len(s.get_trials(deepcopy=False))
    if resumed or worker:  # a sampler seeded as another's would draw its settings again
        s.sampler = optuna.samplers.TPESampler(seed=_sampler_seed(seed, worker, resumed))
    if create:
        wanted = objective.model_dump_json()
        fixed = None if base is None else _fixed_settings(base)
        if resumed:  # a study with trials takes only trials comparable with them
            if s.user_attrs.get(SPACE_ATTR, encoded) != encoded:
                raise ConfigError(f"study {study!r} in {storage} exists with a different search space; "
                                  f"resume it with the same preset or start a new one with --study NEW_NAME")
            if s.user_attrs.get(OBJECTIVE_ATTR, wanted) != wanted:
                raise ConfigError(f"study {study!r} in {storage} exists with another objective "
                                  f"({s.user_attrs[OBJECTIVE_ATTR]}); resume it with the same --metric or start a "
                                  f"new one with --study NEW_NAME")
            if fixed is not None and s.user_attrs.get(BASE_ATTR, fixed) != fixed:
                raise ConfigError(f"study {study!r} in {storage} was run with other fixed settings ("
                                  f"{_settings_differ(s.user_attrs[BASE_ATTR], fixed)}); resume it with the same "
                                  "preset and --set values, or start a new one with --study NEW_NAME")
        for attr, value in ((SPACE_ATTR, encoded), (PRESET_ATTR, preset), (OBJECTIVE_ATTR, wanted), (BASE_ATTR, fixed)):
            if value is not None and s.user_attrs.get(attr) != value:
                s.set_user_attr(attr, value)
    return s


def _objective(app: Application, space: dict, objective: Objective, out: Path, log: Callable[[str], None]):
    optuna = _optuna()

    def run_trial(trial) -> float:
        def report(value: float, epoch: int) -> None:
            trial.report(value, epoch)
            if app.prunable and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch + 1} (intermediate value {value:.4f})")

        values = suggest(trial, space)
        run_dir = out / f"trial_{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        log(f"trial {trial.number}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        try:
            settings = app.settings(values)
            metrics = app.run(settings, run_dir, report, objective.direction, log, trial.number)
            for name, value in metrics.items():
                trial.set_user_attr(name, value)
            atomic_write_text(run_dir / METRICS_FILE, json.dumps(
                {"trial": trial.number, "application": app.name, "params": values, "metrics": metrics}, indent=2))
            value = measure(objective, metrics, run_dir)
        except optuna.TrialPruned:
            raise
        except (TrainingInterrupted, KeyboardInterrupt):  # in training, or in setup, evaluation, writing
            trial.set_user_attr("error", "interrupted (Ctrl-C)")
            # run its settings first when the study resumes (Optuna re-asks the same values)
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            raise _Interrupted(trial.number) from None
        except Exception as e:
            trial.set_user_attr("error", str(e) if isinstance(e, VaekitError) else f"{type(e).__name__}: {e}")
            raise
        log(f"trial {trial.number}: {objective.metric} {value:.4f}")
        return value

    return run_trial


def _worker(base, out, storage, study_name, preset, n_trials, timeout, iw_samples, seed, pruner, threads,
            objective, app: Application | None = None, worker: int = 0):
    """One process of a study; ``app`` is the caller's prepared application (same process)."""
    import torch

    optuna = _optuna()
    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial_log = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _QuietInterrupt) for f in trial_log.filters):
        trial_log.addFilter(_QuietInterrupt())
    app = app or application_for(base, iw_samples)
    space = app.space()
    study = open_study(storage, study_name, space, preset, seed, pruner, objective=objective, base=base,
                       worker=worker)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    if len(study.get_trials(deepcopy=False, states=done)) >= n_trials:
        copy_best(study, Path(out))
        return
    study.optimize(_objective(app, space, objective, Path(out), print), n_trials=n_trials, timeout=timeout,
                   catch=(Exception,), callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=done)])
    copy_best(study, Path(out))


def _spawned_worker(*args, worker: int) -> None:
    """A ``--jobs`` process: Ctrl-C, which reaches every process of the terminal, ends it
    quietly (its trial is recorded); the parent reports the stop."""
    try:
        _worker(*args, worker=worker)
    except KeyboardInterrupt:
        pass


def _stopped_message(study, storage: str) -> str:
    optuna = _optuna()
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    queued = sorted(t.user_attrs["retry_of"] for t in trials
                    if t.state == optuna.trial.TrialState.WAITING and "retry_of" in t.user_attrs)
    stopped = f"trial{'s' if len(queued) > 1 else ''} {', '.join(map(str, queued))}"
    again = (f"; the settings of {stopped}, which it stopped, run first when " if queued else
             "; ") + "the same command is run again"
    return f"the study stopped with {finished} finished trial(s) in {storage_identity(storage)[0]}{again}"


def tune(preset: str, base: dict, out: Path, storage: str, study_name: str, n_trials: int,
         timeout: float | None = None, jobs: int = 1, iw_samples: int = 100, seed: int = 0,
         pruner: str = "median", metric: str | None = None, direction: str | None = None,
         fixed: Iterable[str] = ()) -> dict:
    """Run (or resume) a study until it holds ``n_trials`` finished trials; returns a summary.

    ``metric``: one of the application's metrics (default: its own objective) or a user
    function ``module:function`` of the trial's run directory, with ``direction``.
    ``fixed``: the keys ``--set`` gave (refused where the study searches them).
    Ctrl-C stops the study (``TrainingInterrupted``) with the trial it stopped recorded as
    failed and queued to run first on resuming; a study where no trial completes raises.
    """
    if n_trials <= 0:
        raise ConfigError(f"--trials must be > 0, got {n_trials}")
    if jobs <= 0:
        raise ConfigError(f"--jobs must be > 0, got {jobs}")
    app = application_for(base, iw_samples)
    space = app.space()
    validate_space(space, app)
    searched = sorted(set(fixed) & set(space))
    if searched:
        raise ConfigError(f"--set {searched[0]} fixes a setting the study searches (the preset's search: section); "
                          "drop the --set, or tune from a YAML file whose search: leaves it out")
    objective = resolve_objective(app, metric, direction)
    out = Path(out).resolve()  # trials record absolute run directories
    check_out(out, storage, study_name)
    app.prepare()
    database = storage_identity(storage)[1]
    if database is not None and out in database.parents:
        database.parent.mkdir(parents=True, exist_ok=True)  # a database in --out: the folder is made now
    study = open_study(storage, study_name, space, preset, seed, pruner, objective=objective, base=base)  # fail fast
    claim_out(out, storage, study_name)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    args = (base, str(out), storage, study_name, preset, n_trials, timeout, iw_samples, seed, pruner, threads,
            objective)
    try:
        if jobs == 1:
            _worker(*args, app=app)  # the data read by prepare() above is used, not read again
        else:
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=_spawned_worker, args=args, kwargs={"worker": j}) for j in range(jobs)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
    except KeyboardInterrupt:
        if jobs > 1:
            for p in procs:  # the workers had the same Ctrl-C; let them record their trials
                p.join(timeout=30)
        study = open_study(storage, study_name, space, preset, seed, pruner, objective=objective)
        copy_best(study, out)
        raise TrainingInterrupted(_stopped_message(study, storage)) from None
    study = open_study(storage, study_name, space, preset, seed, pruner, objective=objective)
    copy_best(study, out)
    result = summary(study) | {"metric": objective.metric, "direction": objective.direction}
    if result["states"]["complete"] == 0:
        failed = [t for t in study.get_trials(deepcopy=False) if t.state == _optuna().trial.TrialState.FAIL]
        first = next((t.user_attrs["error"] for t in failed if "error" in t.user_attrs), None)
        raise VaekitError(f"no trial of study {study_name!r} completed ({result['states']['fail']} failed, "
                          f"{result['states']['pruned']} pruned)" + (f"; the first error: {first}" if first else ""))
    return result


def decoded_params(params: dict) -> dict:
    """A trial's parameters with categorical choices decoded (stored as JSON strings by ``suggest``)."""
    out = {}
    for k, v in params.items():
        try:
            out[k] = json.loads(v) if isinstance(v, str) else v
        except ValueError:
            out[k] = v
    return out


def summary(study) -> dict:
    optuna = _optuna()
    trials = study.get_trials(deepcopy=False)
    states = {s.name.lower(): sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    out = {"study": study.study_name, "trials": len(trials), "states": states}
    try:
        best = study.best_trial
        out.update(best_value=best.value, best_params=decoded_params(best.params), best_trial=best.number,
                   best_run_dir=best.user_attrs.get("run_dir"))
    except ValueError:
        out["best_value"] = None
    return out


