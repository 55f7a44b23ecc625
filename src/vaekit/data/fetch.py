"""Find a registered dataset's files: the data directory first, then a verified download.

Set ``VAEKIT_OFFLINE=1`` to never download (the tests and CI do).

Order: ``$VAEKIT_DATA_DIR/<folder>/<file>`` (may be read-only), then the cache
(``$VAEKIT_CACHE_DIR``, default ``~/.cache/vaekit``), then each upstream mirror, written to
the cache through a temporary file and renamed only after its sha256 matched. Files found
in a data directory are verified too; a verified (path, size, mtime) is remembered in the
cache so that large files are hashed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from vaekit.data.registry import DatasetSpec, get_spec
from vaekit.errors import ChecksumError, DataError


def data_dirs() -> list[Path]:
    raw = os.environ.get("VAEKIT_DATA_DIR", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def cache_dir() -> Path:
    root = os.environ.get("VAEKIT_CACHE_DIR") or Path.home() / ".cache" / "vaekit"
    return Path(root).expanduser()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified_index() -> Path:
    return cache_dir() / "verified.json"


def _load_verified() -> dict:
    try:
        return json.loads(_verified_index().read_text())
    except (OSError, ValueError):
        return {}


def _remember(path: Path, digest: str) -> None:
    try:
        index = _load_verified()
        st = path.stat()
        index[str(path.resolve())] = [st.st_size, st.st_mtime_ns, digest]
        _verified_index().parent.mkdir(parents=True, exist_ok=True)
        tmp = _verified_index().with_suffix(".tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, _verified_index())
    except OSError:
        pass  # a cache we cannot write only costs a re-hash next time


def verify(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has sha256 ``expected``."""
    st = path.stat()
    known = _load_verified().get(str(path.resolve()))
    if known == [st.st_size, st.st_mtime_ns, expected]:
        return
    digest = sha256_of(path)
    if digest != expected:
        raise ChecksumError(
            f"checksum mismatch for {path}: sha256 {digest[:16]}..., expected {expected[:16]}... "
            "(file damaged or not the canonical one; delete it to download again)"
        )
    _remember(path, digest)


def _extract_member(archive: Path, member: str, dest: str) -> None:
    """Replace the downloaded zip at ``archive`` by its file ``member`` (written to ``dest``)."""
    with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest + ".member", "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            out.write(block)
    os.replace(dest + ".member", dest)


def _download(urls: list[str], dest: Path, expected: str, member: str | None = None) -> None:
    """Fetch ``dest`` from the first mirror that serves it with sha256 ``expected``.

    With ``member``, each URL is a zip archive (the upstream form of e.g. MovieLens) and
    the checksum is that of the extracted member.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if member is not None:
                _extract_member(Path(tmp), member, tmp)
            digest = sha256_of(Path(tmp))
            if digest != expected:
                raise ChecksumError(f"{url}: sha256 {digest[:16]}... != {expected[:16]}...")
            os.replace(tmp, dest)
            return
        except Exception as e:  # try the next mirror
            errors.append(f"{url}: {e}")
        finally:
            for leftover in (tmp, tmp + ".member"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
    raise DataError(f"could not download {dest.name}: " + "; ".join(errors))


def fetch(name: str | DatasetSpec, download: bool = True) -> dict[str, Path]:
    """Paths of every file of a dataset, verified; downloads only what is missing."""
    spec = get_spec(name) if isinstance(name, str) else name
    found: dict[str, Path] = {}
    for fname, digest in spec.files.items():
        candidates = [d / spec.folder / fname for d in data_dirs()] + [cache_dir() / spec.folder / fname]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            offline = os.environ.get("VAEKIT_OFFLINE", "") not in ("", "0")
            if not download or offline or not spec.urls.get(fname):
                where = ", ".join(str(c.parent) for c in candidates)
                why = " (downloads off: VAEKIT_OFFLINE is set)" if offline else ""
                raise DataError(
                    f"dataset {spec.name}: file {fname} not found in {where}{why}; "
                    "point VAEKIT_DATA_DIR at a folder holding it"
                )
            path = cache_dir() / spec.folder / fname
            _download(spec.urls[fname], path, digest, spec.zip_members.get(fname))
        verify(path, digest)
        found[fname] = path
    return found
