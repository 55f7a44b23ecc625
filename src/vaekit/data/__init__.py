"""Datasets: a registry of named files with checksums, one fetch path, and format readers."""

from pathlib import Path

from vaekit.errors import DataError


def require_file(path: str | Path) -> Path:
    """``path`` as a Path when it is a file; a directory or a missing path is refused, saying which."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a directory, not a file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return path
