"""Run directories -> served models, refusing anything that could run code on load.

A run directory is recognised by its files: ``detector.json`` (``vaekit anomaly fit``),
``recommender.json`` (``vaekit recommend fit``), or ``config.json`` of kind ``image``,
``text`` or ``molecule`` (``vaekit train``) or ``reduction`` (``VAETransformer.save``). Before anything is read,
every file in the directory is checked: a Python pickle (by its suffix or its first
bytes) or a ``torch.save`` archive (a zip holding ``.pkl`` members) stops the server at
start-up with the file named. Models are then read by each application's own loader,
which reads only safetensors and JSON.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Callable

from vaekit.errors import ConfigError, ModelFileError
from vaekit.io import read_config
from vaekit.serve.base import NAME_PATTERN, ServedModel
from vaekit.serve.settings import ServeSettings

PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".dill"}
MAX_FILES = 20000


def _looks_like_pickle(path: Path) -> str | None:
    """Why this file is refused, or None."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return f"a {path.suffix} file (pickle-based format)"
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if path.suffix == ".safetensors" and len(head) == 9:
        n = int.from_bytes(head[:8], "little")
        if 0 < n and 8 + n <= size and head[8:9] == b"{":
            return None
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                if any(n.endswith((".pkl", ".pickle")) for n in z.namelist()[:10000]):
                    return "a torch.save archive (pickle inside a zip)"
        except (zipfile.BadZipFile, OSError):
            return None
    return None


def refuse_pickles(run_dir: Path) -> None:
    count = 0
    for root, dirs, files in os.walk(run_dir, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            count += 1
            if count > MAX_FILES:
                raise ModelFileError(f"{run_dir} holds more than {MAX_FILES} files: not a run directory")
            path = Path(root) / name
            why = _looks_like_pickle(path)
            if why:
                raise ModelFileError(f"{path} is {why}; refused: model files are never unpickled, "
                                     f"serve run directories of safetensors + JSON only")


def detect_kind(run_dir: Path) -> str:
    if (run_dir / "detector.json").is_file():
        return "anomaly"
    if (run_dir / "recommender.json").is_file():
        return "recommender"
    kind = read_config(run_dir).get("kind")
    if kind in ("image", "reduction", "text", "molecule"):
        return kind
    raise ModelFileError(f"{run_dir}: a model of kind {kind!r}, which the service cannot serve "
                         f"(served: image, text, molecule, anomaly, recommender, reduction)")


def _loaders() -> dict[str, Callable[[str, Path, ServeSettings], ServedModel]]:
    from vaekit.serve.anomaly import load_anomaly_model
    from vaekit.serve.image import load_image_model
    from vaekit.serve.molecules import load_molecule_model
    from vaekit.serve.recommend import load_recommender
    from vaekit.serve.reduction import load_reducer
    from vaekit.serve.text import load_text_model

    return {"image": load_image_model, "anomaly": load_anomaly_model, "recommender": load_recommender,
            "reduction": load_reducer, "text": load_text_model, "molecule": load_molecule_model}


def parse_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (the name is then the folder's name)."""
    name, sep, rest = spec.partition("=")
    if sep and re.match(NAME_PATTERN, name) and not Path(spec).exists():
        return name, Path(rest)
    path = Path(spec)
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", path.resolve().name).strip("-_")[:64] or "model"
    return base, path


def load_models(specs: list[str], settings: ServeSettings) -> list[ServedModel]:
    if not specs:
        raise ConfigError("give at least one run directory to serve")
    named: dict[str, Path] = {}
    for spec in specs:
        name, path = parse_spec(spec)
        if name in named:
            raise ConfigError(f"two models named {name!r} ({named[name]} and {path}); name them: NAME=PATH")
        if not path.is_dir():
            raise ModelFileError(f"run directory {path} does not exist")
        named[name] = path
    loaders = _loaders()
    models = []
    for name, path in named.items():
        refuse_pickles(path)
        models.append(loaders[detect_kind(path)](name, path, settings))
    return models
