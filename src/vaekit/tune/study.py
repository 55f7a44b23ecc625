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
error, and the study goes on. The best trial's run directory is copied to ``OUT/best``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable

from vaekit.config import SearchParam
from vaekit.errors import ConfigError, VaekitError
from vaekit.train.checkpoint import atomic_write_text
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
        probes = param.choices if param.type == "categorical" else [param.low, param.high]
        for value in probes:
            if param.type == "int":
                value = int(value)
            try:
                app.settings({key: value})
            except ConfigError as e:
                raise ConfigError(f"search: {key} = {value!r} is not a valid setting ({e})") from None


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


def open_study(storage: str, study: str, space: dict, preset: str, seed: int = 0, pruner: str = "median",
               create: bool = True, objective: Objective | None = None):
    """Load or create the study; refuse one that exists with a different search space or objective."""
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
    if resumed:  # a sampler seeded as before would draw the first trials' settings again
        s.sampler = optuna.samplers.TPESampler(seed=seed + resumed)
    if create:
        stored = s.user_attrs.get(SPACE_ATTR)
        wanted = objective.model_dump_json()
        if stored is None:
            s.set_user_attr(SPACE_ATTR, encoded)
            s.set_user_attr(PRESET_ATTR, preset)
            s.set_user_attr(OBJECTIVE_ATTR, wanted)
        elif stored != encoded:
            raise ConfigError(f"study {study!r} in {storage} exists with a different search space; "
                              f"resume it with the same preset or start a new one with --study NEW_NAME")
        elif s.user_attrs.get(OBJECTIVE_ATTR, wanted) != wanted:
            raise ConfigError(f"study {study!r} in {storage} exists with another objective "
                              f"({s.user_attrs[OBJECTIVE_ATTR]}); resume it with the same --metric or start a "
                              f"new one with --study NEW_NAME")
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
        except VaekitError as e:
            trial.set_user_attr("error", str(e))
            raise
        log(f"trial {trial.number}: {objective.metric} {value:.4f}")
        return value

    return run_trial


def _copy_best(study, out: Path) -> Path | None:
    """Copy the best trial's run directory to ``out/best`` (replaced atomically by rename)."""
    try:
        best = study.best_trial
    except ValueError:
        return None
    src = Path(best.user_attrs.get("run_dir", ""))
    dest = out / "best"
    marker = dest / "TRIAL"
    if marker.is_file() and marker.read_text().strip() == str(best.number):
        return dest
    if not src.is_dir():
        return None
    tmp = out / f".best-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    (tmp / "TRIAL").write_text(f"{best.number}\n")
    old = out / f".best-old-{os.getpid()}"
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def _worker(base, out, storage, study_name, preset, n_trials, timeout, iw_samples, seed, pruner, threads,
            objective, app: Application | None = None):
    """One process of a study; ``app`` is the caller's prepared application (same process)."""
    import torch

    optuna = _optuna()
    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    app = app or application_for(base, iw_samples)
    space = app.space()
    study = open_study(storage, study_name, space, preset, seed, pruner, objective=objective)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    if len(study.get_trials(deepcopy=False, states=done)) >= n_trials:
        _copy_best(study, Path(out))
        return
    study.optimize(_objective(app, space, objective, Path(out), print), n_trials=n_trials, timeout=timeout,
                   catch=(Exception,), callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=done)])
    _copy_best(study, Path(out))


def tune(preset: str, base: dict, out: Path, storage: str, study_name: str, n_trials: int,
         timeout: float | None = None, jobs: int = 1, iw_samples: int = 100, seed: int = 0,
         pruner: str = "median", metric: str | None = None, direction: str | None = None) -> dict:
    """Run (or resume) a study until it holds ``n_trials`` finished trials; returns a summary.

    ``metric``: one of the application's metrics (default: its own objective) or a user
    function ``module:function`` of the trial's run directory, with ``direction``.
    """
    if n_trials <= 0:
        raise ConfigError(f"--trials must be > 0, got {n_trials}")
    if jobs <= 0:
        raise ConfigError(f"--jobs must be > 0, got {jobs}")
    app = application_for(base, iw_samples)
    space = app.space()
    validate_space(space, app)
    objective = resolve_objective(app, metric, direction)
    app.prepare()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(storage, study_name, space, preset, seed, pruner, objective=objective)  # fail fast
    threads = max(1, (os.cpu_count() or 1) // jobs)
    args = (base, str(out), storage, study_name, preset, n_trials, timeout, iw_samples, seed, pruner, threads,
            objective)
    if jobs == 1:
        _worker(*args, app=app)  # the data read by prepare() above is used, not read again
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=args[:8] + (seed + j,) + args[9:]) for j in range(jobs)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    study = open_study(storage, study_name, space, preset, seed, pruner, objective=objective)
    _copy_best(study, out)
    return summary(study) | {"metric": objective.metric, "direction": objective.direction}


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


