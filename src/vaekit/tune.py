"""Hyperparameter search on Optuna with a real database (``vaekit tune``).

The search space is declared in the preset's YAML under ``search:`` (dotted config keys,
each an int/float range or a list of choices). Each trial is a normal run directory
``OUT/trial_NNNN`` trained by the image application; the trial reports its validation
-ELBO after every epoch, so Optuna's median or Hyperband pruner stops poor trials early,
and its objective is the validation IW-NLL of its best weights (Burda et al. 2015) on
the first 2,000 validation examples (the same for every trial).
Samplers: TPE (Bergstra et al. 2011). Optuna: Akiba et al. 2019.

The study lives in the storage (SQLite by default; PostgreSQL/MySQL URLs work the same):
an interrupted search resumes where it stopped, and several processes (``--jobs`` or
separate shells on the same storage) share one study. Trials of a process that died are
detected by heartbeat and retried. A trial that fails is recorded as failed, with its
error, and the study goes on. The best trial's run directory is copied to ``OUT/best``.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable

from vaekit.config import RunConfig, SearchParam, build_config
from vaekit.errors import ConfigError, VaekitError

SPACE_ATTR = "vaekit_search_space"
PRESET_ATTR = "vaekit_preset"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("`vaekit tune` needs Optuna: pip install 'vaekit[tune]'") from None
    return optuna


def validate_space(space: dict[str, SearchParam], base: dict) -> None:
    """Every key must name an existing setting (e.g. ``train.lr``) and every value must build."""
    if not space:
        raise ConfigError("the preset has no 'search:' section: nothing to tune (see README, 'Hyperparameter search')")
    for key, param in space.items():
        node = RunConfig().model_dump()
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"search: unknown parameter {key!r} (not a config key)")
            node = node[part]
        probes = param.choices if param.type == "categorical" else [param.low, param.high]
        for value in probes:
            if param.type == "int":
                value = int(value)
            try:
                build_config(base, [f"{key}={json.dumps(value)}"])
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
               create: bool = True):
    """Load or create the study; refuse one that exists with a different search space."""
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
    s = optuna.create_study(storage=rdb, study_name=study, direction="minimize", load_if_exists=True,
                            sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruners[pruner])
    if create:
        stored = s.user_attrs.get(SPACE_ATTR)
        if stored is None:
            s.set_user_attr(SPACE_ATTR, encoded)
            s.set_user_attr(PRESET_ATTR, preset)
        elif stored != encoded:
            raise ConfigError(f"study {study!r} in {storage} exists with a different search space; "
                              f"resume it with the same preset or start a new one with --study NEW_NAME")
    return s


def _objective(base: dict, space: dict, out: Path, iw_samples: int, log: Callable[[str], None],
               iw_examples: int | None = 2000):
    optuna = _optuna()

    def objective(trial) -> float:
        from vaekit.apps import images
        from vaekit.metrics.likelihood import iw_nll
        from vaekit.train import Tensors

        values = suggest(trial, space)
        overrides = [f"{k}={json.dumps(v)}" for k, v in values.items()]
        config = build_config(base, overrides)
        run_dir = out / f"trial_{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))

        def report(record: dict) -> None:
            value = record.get("val_loss", record["train_loss"])
            trial.report(value, record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {record['epoch'] + 1} (validation -ELBO {value:.3f})")

        log(f"trial {trial.number}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        try:
            images.train(config, run_dir, overwrite=True, progress=False, log=lambda m: None,
                         command=f"vaekit tune (trial {trial.number})", callbacks=[report], figures=False)
            model, _, data = images.load_run(run_dir)
            val = data.val
            if iw_examples and len(val) > iw_examples:  # the same first examples for every trial
                val = Tensors(val.x[:iw_examples], None if val.y is None else val.y[:iw_examples])
            nll = float(iw_nll(model, val, k=iw_samples, chunk=min(iw_samples, 250), batch_size=100).mean())
        except optuna.TrialPruned:
            raise
        except VaekitError as e:
            trial.set_user_attr("error", str(e))
            raise
        if not math.isfinite(nll):
            trial.set_user_attr("error", f"non-finite validation IW-NLL {nll}")
            raise VaekitError(f"trial {trial.number}: non-finite validation IW-NLL")
        trial.set_user_attr("val_iw_nll", nll)
        log(f"trial {trial.number}: validation IW-NLL {nll:.3f} nats")
        return nll

    return objective


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


def _worker(base, space, out, storage, study_name, preset, n_trials, timeout, iw_samples, seed, pruner, threads):
    import torch

    optuna = _optuna()
    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(storage, study_name, space, preset, seed, pruner)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    if len(study.get_trials(deepcopy=False, states=done)) >= n_trials:
        _copy_best(study, Path(out))
        return
    study.optimize(_objective(base, space, Path(out), iw_samples, print), n_trials=n_trials, timeout=timeout,
                   catch=(Exception,), callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=done)])
    _copy_best(study, Path(out))


def tune(preset: str, base: dict, out: Path, storage: str, study_name: str, n_trials: int,
         timeout: float | None = None, jobs: int = 1, iw_samples: int = 100, seed: int = 0,
         pruner: str = "median") -> dict:
    """Run (or resume) a study until it holds ``n_trials`` finished trials; returns a summary."""
    if n_trials <= 0:
        raise ConfigError(f"--trials must be > 0, got {n_trials}")
    if jobs <= 0:
        raise ConfigError(f"--jobs must be > 0, got {jobs}")
    config = build_config(base)
    space = config.search
    validate_space(space, base)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(storage, study_name, space, preset, seed, pruner)  # fail fast, before forking
    threads = max(1, (os.cpu_count() or 1) // jobs)
    args = (base, space, str(out), storage, study_name, preset, n_trials, timeout, iw_samples, seed, pruner, threads)
    if jobs == 1:
        _worker(*args)
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=args[:9] + (seed + j,) + args[10:]) for j in range(jobs)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    study = open_study(storage, study_name, space, preset, seed, pruner)
    _copy_best(study, out)
    return summary(study)


def summary(study) -> dict:
    optuna = _optuna()
    trials = study.get_trials(deepcopy=False)
    states = {s.name.lower(): sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    out = {"study": study.study_name, "trials": len(trials), "states": states}
    try:
        best = study.best_trial
        out.update(best_value=best.value, best_params=best.params, best_trial=best.number,
                   best_run_dir=best.user_attrs.get("run_dir"))
    except ValueError:
        out["best_value"] = None
    return out


def report(storage: str, study_name: str, out: Path | None = None) -> str:
    """A Markdown table of the trials; with ``out``, also Optuna's plots as PNGs."""
    optuna = _optuna()
    study = open_study(storage, study_name, {}, "", create=False)
    trials = study.get_trials(deepcopy=False)
    keys = sorted({k for t in trials for k in t.params})
    lines = [f"Study `{study_name}` ({len(trials)} trials; objective: validation IW-NLL, nats, lower is better)", "",
             "| trial | state | value | " + " | ".join(keys) + " | seconds | note |",
             "|---" * (len(keys) + 5) + "|"]
    for t in trials:
        secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        note = t.user_attrs.get("error", "")[:80]
        cells = [str(t.number), t.state.name.lower(), f"{t.value:.3f}" if t.value is not None else "",
                 *[str(t.params.get(k, "")) for k in keys], f"{secs:.0f}" if secs is not None else "", note]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(text)
        _plots(study, out)
    return text


def _plots(study, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    optuna = _optuna()
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    written = []
    plots = [("optimization_history", ovm.plot_optimization_history, 1),
             ("parallel_coordinate", ovm.plot_parallel_coordinate, 2),
             ("param_importances", ovm.plot_param_importances, 2)]
    for name, fn, needed in plots:
        if len(complete) < needed:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = fn(study)
        except (ValueError, RuntimeError):
            continue  # e.g. importances of a single-valued parameter
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        written.append(out / f"{name}.png")
    return written


def compare(run_dirs: list[Path]) -> str:
    """A Markdown table of runs: the settings that differ and their metrics."""
    from vaekit import runs

    rows = []
    for r in run_dirs:
        cfg = runs.run_config(r).model_dump()
        flat = _flatten({k: v for k, v in cfg.items() if k != "search"})
        history = runs.read_metrics(r)
        metrics = {}
        if history:
            best = min(history, key=lambda h: h.get("val_loss", h["train_loss"]))
            metrics.update(epochs=len(history), best_val_loss=best.get("val_loss"),
                           active_units=best.get("active_units"))
        ev = Path(r) / "evaluation.json"
        if ev.is_file():
            e = json.loads(ev.read_text())
            metrics.update(test_elbo=e.get("test_elbo"), iw_nll=e.get("iw_nll"), fid=e.get("fid"))
        rows.append((str(r), flat, metrics))
    keys = sorted(k for k in rows[0][1] if len({json.dumps(row[1].get(k)) for row in rows}) > 1)
    mkeys = [k for k in ("epochs", "best_val_loss", "test_elbo", "iw_nll", "fid", "active_units")
             if any(row[2].get(k) is not None for row in rows)]
    lines = ["| run | " + " | ".join(keys + mkeys) + " |", "|---" * (1 + len(keys) + len(mkeys)) + "|"]
    for name, flat, metrics in rows:
        cells = [json.dumps(flat.get(k)) for k in keys]
        cells += [f"{metrics[k]:.3f}" if isinstance(metrics.get(k), float) else str(metrics.get(k, "")) for k in mkeys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
