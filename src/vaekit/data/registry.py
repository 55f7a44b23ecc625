"""Named datasets: their files, sha256 checksums, upstream URLs and licences.

The sha256 values are those of the canonical upstream files; :mod:`vaekit.data.fetch`
verifies every file against them, whether it was found in the data directory or
downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vaekit.errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # sub-folder of the data directory
    files: dict[str, str]  # file name -> sha256
    urls: dict[str, list[str]] = field(default_factory=dict)  # file name -> mirrors, in order
    zip_members: dict[str, str] = field(default_factory=dict)  # file name -> its path in the zip at urls
    licence: str = ""
    citation: str = ""


_MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}

_ML100K_ZIP = ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
_ML100K_FILES = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="mnist",
        files=_MNIST_FILES,
        urls={f: [m + f for m in _MNIST_MIRRORS] for f in _MNIST_FILES},
        licence="CC BY-SA 3.0 (LeCun & Cortes)",
        citation="LeCun, Bottou, Bengio & Haffner 1998",
    ),
    "ml-100k": DatasetSpec(
        name="ml-100k",
        folder="ml-100k",
        files=_ML100K_FILES,
        urls={f: _ML100K_ZIP for f in _ML100K_FILES},
        zip_members={f: f"ml-100k/{f}" for f in _ML100K_FILES},
        licence="GroupLens research licence: research use, no redistribution",
        citation="Harper & Konstan 2015, The MovieLens Datasets",
    ),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; registered: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
