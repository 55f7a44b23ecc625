"""Data readers and the fetch path: formats, checksums, and every bad input."""

import gzip
import hashlib

import numpy as np
import pytest
from PIL import Image

from vaekit.data import fetch as fetch_mod
from vaekit.data.idx import read_idx
from vaekit.data.images import read_images
from vaekit.data.registry import DatasetSpec
from vaekit.errors import ChecksumError, DataError


def write_idx(path, arr: np.ndarray, compress=False):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    raw = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def test_idx_round_trip_plain_and_gzip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte", arr)), arr)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte.gz", arr, True)), arr)


def test_idx_bad_files(tmp_path):
    with pytest.raises(DataError, match="bad magic"):
        (tmp_path / "x").write_bytes(b"\x01\x02\x08\x01")
        read_idx(tmp_path / "x")
    arr = np.zeros((5, 4), dtype=np.uint8)
    p = write_idx(tmp_path / "t-idx2-ubyte", arr)
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(DataError, match="header says shape"):
        read_idx(p)
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "missing")


def test_image_folder_with_labels_and_mixed_sizes(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "ok" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 5), 40 * i, np.uint8)).save(tmp_path / "ok" / cls / f"{i}.png")
    x, y = read_images(tmp_path / "ok")
    assert x.shape == (6, 1, 6, 5) and x.max() <= 1 and list(y) == [0, 0, 0, 1, 1, 1]
    Image.fromarray(np.zeros((7, 5), np.uint8)).save(tmp_path / "ok" / "dog" / "odd.png")
    with pytest.raises(DataError, match="mixed sizes"):
        read_images(tmp_path / "ok")


def test_npz_npy_and_bad_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.random.rand(10, 8, 8).astype(np.float32), y=np.arange(10))
    x, y = read_images(tmp_path / "d.npz")
    assert x.shape == (10, 1, 8, 8) and y.shape == (10,)
    np.save(tmp_path / "rgb.npy", np.zeros((4, 9, 9, 3), np.uint8))
    assert read_images(tmp_path / "rgb.npy")[0].shape == (4, 3, 9, 9)
    bad = np.random.rand(10, 8, 8)
    bad[3, 2, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataError, match="NaN or inf.*example 3"):
        read_images(tmp_path / "nan.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8)))
    with pytest.raises(DataError, match="empty"):
        read_images(tmp_path / "empty.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="holds Python objects, not numbers; refused"):
        read_images(tmp_path / "obj.npy")
    (tmp_path / "text.npy").write_text("not an array\n")  # numpy would call it a pickle and suggest loading it
    with pytest.raises(DataError, match="not a NumPy .npy file") as err:
        read_images(tmp_path / "text.npy")
    assert "pickle" not in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        read_images(tmp_path / "nope.npz")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported"):
        read_images(tmp_path / "f.txt")


def test_fetch_prefers_data_dir_and_verifies(tmp_path, monkeypatch):
    content = b"hello"
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "f.bin").write_bytes(content)
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    spec = DatasetSpec("toy", "toy", {"f.bin": digest})
    assert fetch_mod.fetch(spec)["f.bin"] == tmp_path / "data" / "toy" / "f.bin"
    (tmp_path / "data" / "toy" / "f.bin").write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="checksum mismatch for .*f.bin"):
        fetch_mod.fetch(spec)


def test_fetch_downloads_missing_files_with_checksum(tmp_path, monkeypatch):
    src = tmp_path / "upstream.bin"
    src.write_bytes(b"payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VAEKIT_OFFLINE")  # file:// URLs only: nothing leaves the machine
    spec = DatasetSpec("toy", "toy", {"f.bin": digest}, {"f.bin": [src.as_uri()]})
    path = fetch_mod.fetch(spec)["f.bin"]
    assert path.read_bytes() == b"payload" and path.parent == tmp_path / "cache" / "toy"
    bad = DatasetSpec("toy2", "toy2", {"f.bin": "0" * 64}, {"f.bin": [src.as_uri()]})
    with pytest.raises(DataError, match="could not download f.bin"):
        fetch_mod.fetch(bad)
    assert not list((tmp_path / "cache" / "toy2").glob("*"))  # no partial file left
    with pytest.raises(DataError, match="not found"):
        fetch_mod.fetch(DatasetSpec("toy3", "toy3", {"g.bin": digest}))
