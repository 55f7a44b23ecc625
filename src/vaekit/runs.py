"""The run directory: one per training run, the unit that is evaluated, sampled and served.

    RUN/config.json        model description (for from_pretrained) + the full run config,
                           command line, versions
    RUN/model.safetensors  the best weights (early stopping on validation)
    RUN/metrics.jsonl      one line per epoch
    RUN/checkpoints/       last.safetensors (resume) and best.safetensors
    RUN/figures/           PNGs
    RUN/evaluation.json    written by `vaekit evaluate`
    RUN/README.md          model card
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from contextlib import contextmanager
from glob import escape as glob_escape
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

import torch

from vaekit.builders import build_vae
from vaekit.config import RunConfig
from vaekit.errors import RunDirError, TrainingInterrupted
from vaekit.io import CONFIG_FILE, SETTINGS_FORMAT, read_config, validated_stored_settings
from vaekit.train import Trainer
from vaekit.train.checkpoint import atomic_write_text, current_umask


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("vaekit", "torch", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _check_writable(path: Path) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise RunDirError(f"run directory {path} is not writable: {e.strerror or e}") from None


def prepare(path: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Create (or reopen for ``resume``) a run directory; refuse to clobber by accident."""
    path = Path(path)
    if resume:
        if not (path / "checkpoints" / "last.safetensors").is_file():
            raise RunDirError(f"cannot resume: {path}/checkpoints/last.safetensors does not exist")
        _check_writable(path)
        return path
    if _check_replaceable(path, overwrite, "--overwrite or --resume"):
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create run directory {path}: {e.strerror or e}") from None
    _check_writable(path)
    _check_space(path)
    return path


def _check_space(where: Path, named: Path | None = None) -> None:
    if shutil.disk_usage(where).free < 50 * 2**20:
        raise RunDirError(f"less than 50 MiB free on the disk of {named or where}")


def _check_replaceable(path: Path, overwrite: bool, options: str = "--overwrite") -> bool:
    """Whether ``path`` holds a run that ``overwrite`` lets a new run replace; refuses a
    file, an existing run without ``overwrite`` and a directory that is not a run."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {path} is a file, not a directory")
    if not (path.exists() and any(path.iterdir())):
        return False
    if not overwrite:
        raise RunDirError(f"run directory {path} already exists; use {options}")
    if not (path / CONFIG_FILE).is_file() and not (path / "checkpoints").is_dir():
        raise RunDirError(f"refusing to overwrite {path}: it does not look like a vaekit run directory")
    if Path.cwd().is_relative_to(path.resolve()):
        raise RunDirError(f"cannot replace {path}: the working directory is inside it; run the command from "
                          "another directory")
    return True


def check_target(path: str | Path, overwrite: bool = False) -> None:
    """Refuse, before any work, a run directory that :func:`staged` would refuse (a file, a
    run without ``overwrite``, a directory that is not a run), so that a long read of the
    data does not end in an error the command line already gave."""
    _check_replaceable(Path(path), overwrite)


@contextmanager
def staged(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A run directory written whole or not at all, for runs that cannot be resumed.

    Yields a new directory beside ``path``; when the block ends normally it takes the
    place of ``path`` (an old run there, allowed by ``overwrite``, is removed only then).
    When the block fails or is interrupted, the new directory is removed and ``path`` is
    left exactly as it was, so a failed ``--overwrite`` never costs the previous model.

    Where a directory cannot be swapped by renaming (``path`` is the working directory, a
    mount point or a symbolic link, or its parent is not writable) the run is written in
    place as :func:`prepare` does. If the final swap fails all the same, the finished run
    is kept where it was written and the error says where.
    """
    path = Path(path)
    if not _swappable(path):
        yield prepare(path, overwrite=overwrite)
        return
    replacing = _check_replaceable(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    except OSError as e:
        raise RunDirError(f"cannot create run directory {path}: {e.strerror or e}") from None
    try:
        _check_space(new, path)
        yield new
        new.chmod(0o777 & ~current_umask())
    except TrainingInterrupted:  # its "continue with --resume" does not hold: the new run is gone
        shutil.rmtree(new, ignore_errors=True)
        raise TrainingInterrupted(f"interrupted; nothing was written and {path} is as it was") from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    try:
        _swap_in(new, path, replacing)
    except OSError as e:
        raise RunDirError(f"the run finished but could not replace {path} ({e.strerror or e}); "
                          f"it is in {new}") from None


REPLACED_PREFIX = ".{name}.replaced-"


@contextmanager
def replacing(path: str | Path, overwrite: bool = False,
              log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
              restore: bool = True) -> Iterator[Path]:
    """A new run directory at ``path`` for a run that can be resumed, so one that trains in
    place (Ctrl-C leaves a checkpoint there for ``--resume``), without losing an old run
    that ``overwrite`` replaces before the new one is worth keeping.

    The old run is moved aside, to a hidden directory beside ``path``
    (``.NAME.replaced-*``; ``log`` says where), and removed when the block ends normally.
    If the block fails or is interrupted before the new run has a checkpoint, the new
    directory is removed and the old run moved back: ``path`` is as it was. After that the
    new run can be resumed, so both are kept; the old one is removed when the new run
    finishes (a successful ``--resume`` calls :func:`drop_replaced`).

    ``restore=False`` (under torchrun) never moves the old run back: an elastic restart
    decides between resuming and starting again by the checkpoint in ``path``, and must
    not find the old run's there. A process killed outright (SIGKILL, SIGTERM) cleans up
    nothing: the old run stays aside, where the start of the run said it was. Where a
    directory cannot be moved by renaming (see :func:`staged`) the old run is removed at
    the start, as :func:`prepare` does.
    """
    path = Path(path)
    if not _swappable(path) or not _check_replaceable(path, overwrite, "--overwrite or --resume"):
        yield prepare(path, overwrite=overwrite)
        return
    try:
        aside = Path(tempfile.mkdtemp(prefix=REPLACED_PREFIX.format(name=path.name), dir=path.parent))
    except OSError as e:
        raise RunDirError(f"cannot make a directory beside {path} to keep the run it replaces: "
                          f"{e.strerror or e}") from None
    kept = aside / path.name
    try:
        path.rename(kept)
    except OSError as e:
        aside.rmdir()
        raise RunDirError(f"cannot move the run in {path} aside to replace it: {e.strerror or e}") from None
    kept_note = f"the run that {path} replaces is kept in {kept} until this one finishes"
    log(kept_note)
    try:
        yield prepare(path)
    except BaseException as e:
        if not restore or (path / "checkpoints" / "last.safetensors").is_file():
            log(kept_note)  # again, next to the error
            raise
        shutil.rmtree(path, ignore_errors=True)
        try:
            kept.rename(path)
            aside.rmdir()
        except OSError as failed:
            log(f"could not move the run that {path} replaces back ({failed.strerror or failed}); it is in {kept}")
            raise e from None
        if isinstance(e, TrainingInterrupted):
            raise TrainingInterrupted(f"interrupted before the first checkpoint; {path} is as it was") from None
        raise
    drop_replaced(path)


def drop_replaced(path: str | Path) -> None:
    """Remove the runs that the finished run at ``path`` was started to replace."""
    path = Path(path)
    for old in path.parent.glob(REPLACED_PREFIX.format(name=glob_escape(path.name)) + "*"):
        shutil.rmtree(old, ignore_errors=True)


def _swappable(path: Path) -> bool:
    """Whether ``path`` can be renamed away: not a symlink or mount point, not the working
    directory or one above it (moving it would move the process's working directory
    along, and relative paths with it; replacing a run there is refused), in a parent this
    process may write."""
    parent = path.parent.resolve() if path.parent.exists() else None
    return not (path.is_symlink() or os.path.ismount(path)
                or (path.exists() and Path.cwd().is_relative_to(path.resolve()))
                or (parent is not None and not os.access(parent, os.W_OK | os.X_OK)))


def _swap_in(new: Path, path: Path, replacing: bool) -> None:
    """Put ``new`` at ``path`` by renames in one directory; an old run there goes last."""
    if not replacing:
        if path.exists():  # an empty directory
            path.rmdir()
        new.rename(path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    try:
        path.rename(old / path.name)
    except OSError:
        old.rmdir()
        raise
    try:
        new.rename(path)
    except OSError:
        (old / path.name).rename(path)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def describe_run(description: dict, config: RunConfig, command: str | None = None) -> dict:
    """The model description plus the run's settings: what ``config.json`` holds."""
    return {
        **description,
        "run": {
            "config": config.model_dump(),
            "settings_format": SETTINGS_FORMAT,
            "command": command or " ".join(["vaekit", *sys.argv[1:]]),
            "versions": versions(),
        },
    }


def write_config(path: Path, document: dict) -> None:
    atomic_write_text(path / CONFIG_FILE, json.dumps(document, indent=2))


def run_config(path: str | Path) -> RunConfig:
    doc = read_config(path)
    if "run" not in doc:
        raise RunDirError(f"{path} is a model directory without run information (no 'run' in config.json)")
    return validated_stored_settings(doc, Path(path) / CONFIG_FILE, RunConfig)


def read_metrics(path: str | Path) -> list[dict]:
    f = Path(path) / "metrics.jsonl"
    if not f.exists():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def write_model_card(path: Path, evaluation: dict | None = None) -> None:
    """README.md: what was trained on what, with which command, and how well."""
    doc = read_config(path)
    run = doc.get("run", {})
    cfg = run.get("config", {})
    history = read_metrics(path)
    model = doc.get("model", {})
    kind = doc.get("kind")
    if kind == "text":
        what = f"{model.get('cell')} sentence VAE"
    elif kind == "molecule":
        what = f"{doc.get('representation')} molecule VAE ({model.get('encoder')} encoder, {model.get('cell')} decoder)"
    else:
        what = model.get("architecture") or kind
    lines = [
        f"# vaekit model: {cfg.get('data', {}).get('name', '?')} / {what}",
        "",
        "Load with `vaekit.VAE.from_pretrained(\"<this folder>\")` (safetensors + JSON, no pickle).",
        "",
        "## Data",
        f"- dataset: `{cfg.get('data', {}).get('name')}` {cfg.get('data', {}).get('path') or ''}",
    ]
    if doc.get("kind") == "text":
        lines.append(f"- vocabulary: {doc.get('vocab_size')} tokens (`vocab.json`), sentences of at most "
                     f"{cfg.get('data', {}).get('max_len')} words")
    elif doc.get("kind") == "molecule":
        props = (doc.get("properties") or {}).get("names") or []
        lines.append(f"- vocabulary: {doc.get('vocab_size')} {doc.get('representation')} tokens (`vocab.json`), "
                     f"molecules of at most {cfg.get('data', {}).get('max_len')} tokens; property head: "
                     f"{', '.join(props) or 'none'}")
    else:
        lines += [f"- data shape: {doc.get('data_shape')}, classes: {doc.get('n_classes', 0)}",
                  f"- binarization: {cfg.get('data', {}).get('binarize')}"]
    lines += [
        "",
        "## Training",
        f"- command: `{run.get('command')}`",
        f"- seed: {cfg.get('train', {}).get('seed')}, epochs run: {len(history)}",
        f"- versions: {run.get('versions')}",
    ]
    if history:
        last = history[-1]
        best = min(history, key=lambda r: r.get("val_loss", r["train_loss"]))
        lines += [
            f"- best validation -ELBO: {best.get('val_loss', float('nan')):.3f} nats (epoch {best['epoch'] + 1})",
            f"- last epoch: train loss {last['train_loss']:.3f}, KL {last.get('val_kl', float('nan')):.3f}, "
            f"active units {last.get('active_units')}",
        ]
    if evaluation:
        lines += ["", "## Evaluation (test set)", "", "| metric | value |", "|---|---|"]
        for k, v in evaluation.items():
            if isinstance(v, (int, float, str)) and v is not None:
                lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    figures = sorted((path / "figures").glob("*.png")) if (path / "figures").is_dir() else []
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures]
    atomic_write_text(path / "README.md", "\n".join(lines) + "\n")


@contextmanager
def create_run(run_dir: Path, document: dict, overwrite: bool, vocab, report: dict,
               log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Iterator[Path]:
    """A new run directory for a sequence model, for the block that trains it: its
    vocabulary, ``config.json`` and the data report (what was kept, skipped and why)
    written before training starts; an old run it replaces is kept until the new one is
    worth keeping (:func:`replacing`)."""
    from vaekit.config import TrainConfig
    from vaekit.train.acceleration import check_train_settings

    train = document.get("run", {}).get("config", {}).get("train")
    if train is not None:  # a bad device or precision writes nothing
        check_train_settings(TrainConfig.model_validate(train))
    document["vocab_sha256"] = vocab.fingerprint()  # the model built from it keeps it in its config.json
    with replacing(run_dir, overwrite, log) as run_dir:
        vocab.save(run_dir)
        write_config(run_dir, document)
        atomic_write_text(run_dir / "data_report.json", json.dumps(report, indent=2))
        yield run_dir


def train_run(document: dict, config: RunConfig, train, val, run_dir: Path, resume: bool, callbacks, progress: bool,
              log) -> Path:
    """Build the model that ``document`` describes, train it into ``run_dir`` (resuming
    from its checkpoint when asked), save the best weights and the model card."""
    torch.manual_seed(config.train.seed)
    model = build_vae(document)
    trainer = Trainer(model, config.train, train, val, run_dir, callbacks=callbacks, progress=progress, log=log)
    result = trainer.fit(resume=resume)
    model.cpu().save_pretrained(run_dir)
    log(f"trained {result.epochs} epochs ({result.stopped}), best validation -ELBO {result.best_val_loss:.3f} nats")
    write_model_card(run_dir)
    if resume:
        drop_replaced(run_dir)  # a resumed run that --overwrite started is now whole (replacing drops it otherwise)
    return run_dir
