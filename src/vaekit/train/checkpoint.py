"""Atomic, pickle-free state files: safetensors tensors plus a JSON document in the
safetensors metadata, written through temp file + fsync + rename.

One file holds everything a resume needs (model, optimizer, RNG states, loop position),
so there is no moment when half of a checkpoint is new and half is old. A file that is a
pickle or a torch zip archive is refused by its first bytes and never unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vaekit.errors import ModelFileError

META_KEY = "vaekit"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:  # owns fd from here on: closed on every path
            os.fchmod(f.fileno(), 0o666 & ~current_umask())  # mkstemp makes 0600; use the usual mode
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def current_umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_state(path: str | Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = st_save(tensors, metadata={META_KEY: json.dumps(state)})
    atomic_write_bytes(path, data)


def _refuse_non_safetensors(raw: bytes, path: Path) -> None:
    """Accept a well-formed safetensors prefix; otherwise say what the file is.

    A safetensors file starts with its header length (8 bytes, little-endian) followed by
    a JSON header, so a length that fits the file and a '{' after it come first: the
    length's first byte can be 0x80, like a pickle's, in perfectly good files.
    """
    if len(raw) >= 9:
        header_len = int.from_bytes(raw[:8], "little")
        if 0 < header_len and 8 + header_len <= len(raw) and raw[8:9] == b"{":
            return
    if raw[:1] == b"\x80" or raw[:2] in (b"(d", b"}q", b"(l"):
        raise ModelFileError(f"{path} is a Python pickle, not safetensors; refused (never unpickled)")
    if raw[:4] == b"PK\x03\x04":
        raise ModelFileError(f"{path} is a zip archive (torch.save format), not safetensors; refused")
    raise ModelFileError(f"{path} is truncated or corrupted (not a complete safetensors file, {len(raw)} bytes)")


def read_json(path: str | Path, missing: str = ""):
    """The JSON document in ``path`` (a model's ``config.json``, ``vocab.json``,
    ``detector.json`` ...), or a :class:`ModelFileError` that names the file and what is
    wrong with it: missing (``missing`` says what the directory then is not), a directory,
    unreadable, not UTF-8, not JSON, or nested too deeply for Python's parser (a damaged or
    hostile file must not end in a RecursionError traceback)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError(f"{path} is missing" + (f": {missing}" if missing else "")) from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a file") from None
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{path} is not valid JSON: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{path} is not a valid description: its JSON is nested too deeply") from None
    except ValueError as e:
        raise ModelFileError(f"{path} is not valid JSON: {e}") from None


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and raw metadata of a safetensors file, with clear errors for bad files."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a file") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e}") from None
    _refuse_non_safetensors(raw, path)
    try:
        tensors = st_load(raw)
        header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    except (SafetensorError, ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ModelFileError(f"{path} is truncated or corrupted: {e}") from None
    return tensors, header.get("__metadata__", {}) or {}


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = load_tensors(path)
    if META_KEY not in meta:
        raise ModelFileError(f"{path} is not a vaekit checkpoint (no '{META_KEY}' metadata)")
    try:
        return tensors, json.loads(meta[META_KEY])
    except (ValueError, RecursionError):
        raise ModelFileError(f"{path}: checkpoint metadata is not valid JSON") from None


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors and a JSON-able remainder."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
