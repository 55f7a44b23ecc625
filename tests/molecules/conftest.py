"""A small real library: the first molecules of RDKit's bundled NCI sample (offline)."""

import os

import pytest

TINY = ["--set", "model.hidden=48", "--set", "model.embedding_dim=16", "--set", "model.latent_dim=8",
        "--set", "model.property_hidden=16", "--set", "train.batch_size=32", "--set", "eval.max_len=80",
        "--set", "data.max_len=60", "--no-progress"]


def nci_smiles(n=400):
    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()][:n]


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("library")
    path = d / "lib.smi"
    path.write_text("\n".join(nci_smiles()) + "\n")
    return path


@pytest.fixture(scope="session")
def molecule_run(tmp_path_factory, library):
    """A SELFIES model with a property head (QED, penalized logP), trained for 3 epochs."""
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("molrun") / "run"
    os.environ.setdefault("VAEKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    assert main(["train", "molecules", "--data", str(library), "--out", str(out), "--epochs", "3", *TINY]) == 0
    return out
