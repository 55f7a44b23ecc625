"""A study's folder (``vaekit tune --out``): trial run directories, ``best/`` and
``STUDY.json``, which names the study and storage the folder belongs to, so that a second
study cannot overwrite the first one's ``trial_NNNN`` and ``best``."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from vaekit.errors import ConfigError
from vaekit.train.checkpoint import atomic_write_text

OUT_MARKER = "STUDY.json"


def storage_identity(storage: str) -> tuple[str, Path | None]:
    """The storage as ``STUDY.json`` names it: a SQLite database by its absolute path (a
    relative URL means another file from another folder), others by URL without password;
    and the SQLite file, which may live in ``--out``."""
    try:
        from sqlalchemy.engine import make_url

        url = make_url(storage)
    except Exception:  # not a URL SQLAlchemy reads: open_study refuses it
        return storage, None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database).resolve()
        return f"sqlite:///{database}", database
    return url.render_as_string(hide_password=True), None


def _read_owner(marker: Path) -> dict:
    try:
        found = json.loads(marker.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{marker} is not readable as a study's record ({e}); give another --out") from None
    if not isinstance(found, dict):
        raise ConfigError(f"{marker} is not a study's record (a JSON object with 'study' and 'storage'); "
                          "give another --out")
    return found


def check_out(out: Path, storage: str, study_name: str) -> None:
    """Refuse an ``--out`` that is another study's (``STUDY.json``), whose ``trial_NNNN`` and
    ``best`` the new trials would overwrite, or that holds files that are not this study's;
    before the study is created, so a refused command leaves nothing behind."""
    owner = {"study": study_name, "storage": storage_identity(storage)[0]}
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    marker = out / OUT_MARKER
    if marker.is_file():
        found = _read_owner(marker)
        if found != owner:
            raise ConfigError(f"{out} holds the trials of study {found.get('study')!r} in {found.get('storage')}; "
                              f"give another --out for study {study_name!r} (or resume that one with --study and "
                              "--storage)")
        return
    entries = [e for e in out.iterdir() if not e.name.startswith(".")] if out.is_dir() else []
    if not entries:
        return
    ours = set()  # a study's folder from before STUDY.json: the run directories its trials name
    database = storage_identity(storage)[1]
    if database is None or database.is_file():
        import optuna

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
        except Exception:  # no such study (or storage): nothing here is its
            trials = []
        ours = {Path(t.user_attrs["run_dir"]).resolve() for t in trials if t.user_attrs.get("run_dir")}
    foreign = [e.name for e in entries if e.resolve() not in ours and e.name != "best"
               and not (database is not None and e.resolve().parent == database.parent
                        and e.name.startswith(database.name))]
    if foreign:
        raise ConfigError(f"{out} is not empty and is not this study's folder (it holds {', '.join(sorted(foreign)[:3])}"
                          f"{', ...' if len(foreign) > 3 else ''}); give a new or empty --out")


def claim_out(out: Path, storage: str, study_name: str) -> None:
    """Write ``OUT/STUDY.json``: the folder is this study's from now on."""
    marker = out / OUT_MARKER
    if not marker.is_file():
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(marker, json.dumps({"study": study_name, "storage": storage_identity(storage)[0]},
                                             indent=2) + "\n")


def copy_best(study, out: Path) -> Path | None:
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
