"""Model files in the Hugging Face layout: ``config.json`` + ``model.safetensors``
(+ a model card ``README.md`` written by the run directory).

Never pickle: weights are safetensors, the architecture is JSON, and the model is rebuilt
by :func:`vaekit.builders.build_vae`. A directory holding a pickle or torch zip file in
place of the weights is refused with a clear error and nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from safetensors.torch import save as st_save

from vaekit.core import VAE
from vaekit.errors import ModelFileError, RunDirError
from vaekit.train.checkpoint import atomic_write_bytes, atomic_write_text, load_tensors, read_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


def save_pretrained(model: VAE, directory: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` atomically (weights first)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(directory / WEIGHTS_FILE, st_save(state, metadata={"format": "vaekit"}))
    config = {"vaekit_format": FORMAT_VERSION, **model.config}
    atomic_write_text(directory / CONFIG_FILE, json.dumps(config, indent=2))


def read_config(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise ModelFileError(f"model directory {directory} does not exist")
    config = read_json(path)
    if not isinstance(config, dict) or "kind" not in config:
        raise ModelFileError(f"{path} does not describe a vaekit model (no 'kind')")
    return config


def is_run_of_kind(run_dir: str | Path, kind: str) -> bool:
    """Whether ``run_dir`` holds a run of this application kind (``config.json`` ``kind``)."""
    try:
        return read_config(run_dir).get("kind") == kind
    except Exception:  # not a run directory at all: let the caller's own loader report it
        return False


# 2: ``train.precision`` has an ``auto`` default (bf16 with ``fast`` where supported), and
# an explicit ``fp32`` wins over ``fast``. Before, ``fp32`` was the default and ``fast``
# turned bf16 on over it, so every earlier run config says ``fp32``.
SETTINGS_FORMAT = 2


def stored_settings(doc: dict) -> dict:
    """``run.config`` of a ``config.json``, read as the version that wrote it meant it."""
    settings = doc["run"]["config"]
    train = settings.get("train") if isinstance(settings, dict) else None
    fmt = doc["run"].get("settings_format", 1)
    if isinstance(fmt, int) and fmt < 2 and isinstance(train, dict) and train.get("precision") == "fp32":
        settings = {**settings, "train": {**train, "precision": "auto"}}  # the old default, not a choice
    return settings


def run_settings(run_dir: str | Path, kind: str, settings_class, doc: dict | None = None):
    """The validated settings an application stored in ``config.json`` under ``run.config``
    (``doc``: that ``config.json`` when the caller has read it already)."""
    doc = read_config(run_dir) if doc is None else doc
    if doc.get("kind") != kind or "run" not in doc:
        raise RunDirError(f"{run_dir} is not a {kind} run directory (config.json kind {doc.get('kind')!r})")
    return validated_stored_settings(doc, Path(run_dir) / CONFIG_FILE, settings_class)


def validated_stored_settings(doc: dict, path: Path, settings_class):
    """``run.config`` of ``doc`` (read from ``path``) validated into ``settings_class``; a
    damaged or hand-edited one is a :class:`ModelFileError` naming the first bad field."""
    from pydantic import ValidationError

    if not isinstance(doc["run"], dict) or not isinstance(doc["run"].get("config"), dict):
        raise ModelFileError(f"{path}: 'run' holds no 'config' section (the settings the run was trained with)")
    try:
        return settings_class.model_validate(stored_settings(doc))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ModelFileError(f"{path}: run.config is not valid {doc.get('kind')} settings ({e.error_count()} "
                             f"problem(s); first: {where}: {first['msg']})") from None


def _check_size(config: dict, stored: int) -> None:
    """Refuse a description that asks for more numbers than the weights file holds.

    The model is first built on the ``meta`` device (shapes only, no memory), so a
    hostile or damaged ``config.json`` (a huge ``data_shape``, hidden size or vocabulary)
    is refused before any memory is allocated for the model it describes.
    """
    from vaekit.builders import build_vae, builder_for

    builder_for(config)  # import a lazily registered builder outside the meta context
    with torch.device("meta"):
        shell = build_vae(config)
    wanted = sum(t.numel() for t in shell.state_dict().values())
    if wanted > stored:
        raise ValueError(f"it asks for {wanted:,} numbers but {WEIGHTS_FILE} holds {stored:,}")


def from_pretrained(directory: str | Path) -> VAE:
    """Rebuild the model from ``config.json`` and load ``model.safetensors`` strictly."""
    from vaekit.builders import build_vae

    config = read_config(directory)
    config.pop("vaekit_format", None)
    tensors, _ = load_tensors(Path(directory) / WEIGHTS_FILE)
    for name, t in tensors.items():  # a NaN weight would make every output NaN, silently
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelFileError(f"{Path(directory) / WEIGHTS_FILE}: tensor {name!r} holds NaN or infinite values")
    try:
        _check_size(config, sum(t.numel() for t in tensors.values()))
        model = build_vae(config)
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelFileError(f"{Path(directory) / CONFIG_FILE}: invalid model description: {first}") from None
    expected = model.state_dict()
    for name, t in tensors.items():  # load_state_dict would cast integer weights to float silently
        if name in expected and expected[name].is_floating_point() and not t.is_floating_point():
            raise ModelFileError(f"{Path(directory) / WEIGHTS_FILE}: tensor {name!r} holds {str(t.dtype)[6:]} "
                                 "numbers where the model has floating-point weights")
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelFileError(f"{Path(directory) / WEIGHTS_FILE} does not match config.json: {first}") from None
    return model.eval()
