"""Fuzzing every reader of user files (bounded, hypothesis): random and mutated bytes may
only ever raise the project's own errors, and never execute code.

Readers covered: idx, .npy, .npz, image folders, YAML configs, safetensors checkpoints,
model directories, interaction files (recommend), anomaly tables (CSV, .npz), sentence
files and vocabularies (text), molecule libraries (.smi, gzip CSV; cleaned by RDKit). A reader added with a new application joins them here.
"""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaekit import VAE
from vaekit.builders import build_vae, image_vae_description
from vaekit.config import ModelConfig, build_config, load_preset
from vaekit.data.idx import read_idx
from vaekit.data.images import read_images
from vaekit.errors import VaekitError
from vaekit.train.checkpoint import load_state, save_state

FUZZ = settings(max_examples=int(__import__("os").environ.get("VAEKIT_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MARKER = "FUZZ_EXECUTED_MARKER"


def _valid_samples() -> dict[str, bytes]:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).random((4, 5, 5)).astype(np.float32))
    npy = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((3, 4, 4), np.uint8), y=np.arange(3))
    npz = buf.getvalue()
    idx = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (2, 3, 3)) + bytes(range(18))
    png = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.zeros((6, 6), np.uint8)).save(png, format="PNG")
    yaml_text = b"model: {latent_dim: 4}\ntrain: {epochs: 2}\n"
    ratings = b"user,item,rating\n1,10,5\n1,11,4\n2,10,3\n2,12,5\n"
    table = b"a,b,kind\n1.5,2,x\n0.5,,y\n3,4,x\n"
    buf = io.BytesIO()
    np.savez(buf, X=np.random.default_rng(0).random((5, 3)), y=np.array([0, 0, 1, 0, 0]))
    sentences = "the cat sat\nun café au lait\n".encode()
    vocab = json.dumps({"tokens": ["<pad>", "<bos>", "<eos>", "<unk>", "a"], "lowercase": False}).encode()
    smi = b"SMILES name\nCCO ethanol\nc1ccccc1O phenol\nCC(=O)N[C@@H](C)C(=O)O\n"
    import gzip

    smiles_csv = gzip.compress(b"id,smiles\n1,CCO\n2,C1CC\n3,c1ccncc1\n", mtime=0)
    return {"idx": idx, "npy": npy, "npz": npz, "png": png.getvalue(), "yaml": yaml_text, "ratings": ratings,
            "table": table, "table_npz": buf.getvalue(), "sentences": sentences, "vocab": vocab,
            "smiles": smi, "smiles_csv": smiles_csv}


VALID = _valid_samples()


def _read_file(kind: str, path: Path):
    if kind == "idx":
        return read_idx(path)
    if kind in ("npy", "npz"):
        return read_images(path)
    if kind == "png":
        folder = path.parent / "imgs"
        folder.mkdir(exist_ok=True)
        shutil.copy(path, folder / "a.png")
        return read_images(folder)
    if kind == "yaml":
        return build_config(load_preset(str(path)))
    if kind == "checkpoint":
        return load_state(path)
    if kind == "ratings":
        from vaekit.data.ratings import read_interactions

        return read_interactions(path)
    if kind in ("table", "table_npz"):
        from vaekit.anomaly.data import read_table

        return read_table(path)
    if kind == "sentences":
        from vaekit.text.data import read_sentences

        return read_sentences(path)
    if kind == "vocab":
        from vaekit.text.vocab import Vocabulary

        return Vocabulary.load(path.parent)
    if kind in ("smiles", "smiles_csv"):
        from vaekit.molecules.data import clean, read_smiles
        from vaekit.molecules.tokens import Representation

        return clean(read_smiles(path), Representation("smiles"), 100)
    raise AssertionError(kind)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    return bytes(b[:cut] if cut is not None else b)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8)
cuts = st.one_of(st.none(), st.integers(0, 400))
SUFFIX = {"idx": "-idx3-ubyte", "npy": ".npy", "npz": ".npz", "png": ".png", "yaml": ".yaml",
          "checkpoint": ".safetensors", "ratings": ".csv", "table": ".csv", "table_npz": ".npz",
          "sentences": ".txt", "vocab": "", "smiles": ".smi", "smiles_csv": ".csv.gz"}
KINDS = ["idx", "npy", "npz", "png", "yaml", "checkpoint", "ratings", "table", "table_npz", "sentences", "vocab",
         "smiles", "smiles_csv"]


def _checkpoint_bytes(tmp: Path) -> bytes:
    save_state(tmp / "ck.safetensors", {"w": torch.ones(4)}, {"epoch": 1})
    return (tmp / "ck.safetensors").read_bytes()


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(edit=edits, cut=cuts, junk=st.binary(max_size=64))
def test_mutated_files_raise_only_project_errors(kind, edit, cut, junk, tmp_path):
    base = _checkpoint_bytes(tmp_path) if kind == "checkpoint" else VALID[kind]
    path = tmp_path / ("vocab.json" if kind == "vocab" else f"f{SUFFIX[kind]}")
    path.write_bytes(mutate(base, edit, cut) + (junk if cut is None and edit else b""))
    try:
        _read_file(kind, path)
    except VaekitError:
        pass


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    cfg = ModelConfig(latent_dim=2, hidden=[8])
    build_vae(image_vae_description(cfg, (1, 4, 4))).save_pretrained(d)
    return d


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=8)


@FUZZ
@given(key=st.sampled_from(["kind", "model", "data_shape", "n_classes", "extra"]), value=json_values)
def test_model_directory_with_a_mutated_config_raises_only_project_errors(model_dir, key, value, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(model_dir, d, dirs_exist_ok=True)
    doc = json.loads((d / "config.json").read_text())
    doc[key] = value
    (d / "config.json").write_text(json.dumps(doc))
    try:
        VAE.from_pretrained(d)
    except VaekitError:
        pass


@FUZZ
@given(edit=edits, cut=cuts)
def test_model_directory_with_mutated_weights_raises_only_project_errors(model_dir, edit, cut, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(model_dir, d, dirs_exist_ok=True)
    w = d / "model.safetensors"
    w.write_bytes(mutate(w.read_bytes(), edit, cut))
    try:
        VAE.from_pretrained(d)
    except VaekitError:
        pass


def test_pickle_payloads_never_run(tmp_path):
    import pickle

    marker = tmp_path / MARKER

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    blob = pickle.dumps(Payload())
    for kind in ("npy", "npz", "checkpoint"):
        path = tmp_path / f"p{SUFFIX[kind]}"
        path.write_bytes(blob)
        with pytest.raises(VaekitError):
            _read_file(kind, path)
    assert not marker.exists()
