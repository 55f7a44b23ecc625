"""Drug discovery: train, evaluate and use a molecule VAE on MOSES, ZINC250k or a user's library.

The application reads and cleans molecules (:mod:`vaekit.molecules.data`), builds the
token vocabulary and the networks (:mod:`vaekit.molecules.model`) and trains with the
shared :class:`vaekit.train.Trainer`. Evaluation follows the published protocols: the
MOSES metrics on sampled molecules (Polykovskiy et al. 2020), ZINC250k reconstruction
accuracy and prior validity (Kusner et al. 2017; Jin et al. 2018), and the test ELBO, KL
and active units.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vaekit import runs
from vaekit.errors import DataError, ModelFileError
from vaekit.io import is_run_of_kind, read_config, run_settings
from vaekit.metrics.elbo import elbo_pass
from vaekit.molecules.config import MoleculeConfig
from vaekit.molecules.data import (
    clean,
    canonicalize,
    moses_files,
    properties_cached,
    read_lines,
    read_smiles,
    seeded_subset,
    zinc250k_files,
)
from vaekit.molecules.model import PropertyVAE, molecule_vae_description
from vaekit.molecules.tokens import Representation
from vaekit.text.data import SequenceTensors, encode
from vaekit.text.vocab import UNK, Vocabulary
from vaekit.train.checkpoint import atomic_write_text


@dataclass
class MoleculeData:
    train: SequenceTensors
    val: SequenceTensors
    test: SequenceTensors
    smiles: dict  # split -> canonical SMILES kept, in row order
    vocab: Vocabulary
    representation: Representation
    property_mean: list[float]
    property_std: list[float]
    report: dict


def _cache() -> Path:
    from vaekit.data.fetch import cache_dir

    return cache_dir() / "molecules"


def raw_splits(config: MoleculeConfig) -> dict[str, list[str]]:
    """The raw SMILES of each split, before cleaning; validation and test cut to seeded
    subsets of ``data.eval_limit`` molecules where it is set."""
    splits = _full_raw_splits(config)
    limit, seed = config.data.eval_limit, config.train.seed
    return {k: v if k == "train" else seeded_subset(v, limit, seed) for k, v in splits.items()}


def _full_raw_splits(config: MoleculeConfig) -> dict[str, list[str]]:
    d, seed = config.data, config.train.seed
    if d.name == "moses":
        files = moses_files()
        train = read_smiles(files["train"])
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
        val = [train[i] for i in order[: d.val_size]]
        rest = [train[i] for i in sorted(order[d.val_size :])]
        test = read_smiles(files["test"])
        return {"train": seeded_subset(rest, d.limit, seed), "valid": val,
                "test": seeded_subset(test, d.val_size, seed)}
    if d.name == "zinc250k":
        files = zinc250k_files()
        return {"train": seeded_subset(read_lines(files["train"]), d.limit, seed),
                "valid": read_lines(files["valid"]), "test": read_lines(files["test"])}
    library = read_smiles(d.path, d.column)
    order = torch.randperm(len(library), generator=torch.Generator().manual_seed(seed)).tolist()
    n_hold = max(1, int(round(d.test_size * len(library))))
    if len(library) < 2 * n_hold + 1:
        raise DataError(f"{d.path}: {len(library)} molecules are too few to hold out {n_hold} for validation "
                        f"and {n_hold} for test")
    pick = lambda idx: [library[i] for i in idx]  # noqa: E731
    return {"valid": pick(order[:n_hold]), "test": pick(order[n_hold : 2 * n_hold]),
            "train": seeded_subset(pick(order[2 * n_hold :]), d.limit, seed)}


def load_molecule_data(config: MoleculeConfig, vocab: Vocabulary | None = None,
                       stats: tuple[list[float], list[float]] | None = None,
                       log: Callable[[str], None] = print) -> MoleculeData:
    """Clean every split with RDKit, tokenize, and attach standardized property targets."""
    d = config.data
    rep = Representation(d.representation)
    raw = raw_splits(config)
    where = (lambda k: f"{d.name} {k}") if d.name in ("moses", "zinc250k") else (lambda k: f"{d.path} ({k} split)")
    libs = {k: clean(v, rep, d.max_len, d.max_chars, where(k)) for k, v in raw.items()}
    for split, lib in libs.items():
        skipped = sum(lib.report["skipped"].values())
        if skipped:
            log(f"note: {split}: skipped {skipped} of {lib.report['lines']} lines {lib.report['skipped']}")
    if vocab is None:
        vocab = Vocabulary.build(libs["train"].tokens)
    names = list(d.properties)
    props = {k: properties_cached(lib.smiles, names, _cache()) for k, lib in libs.items()}
    if stats is None:
        mean = props["train"].mean(0) if names else np.zeros(0)
        std = props["train"].std(0) + 1e-6 if names else np.ones(0)
        stats = (mean.tolist(), std.tolist())
    mean, std = np.asarray(stats[0], np.float32), np.asarray(stats[1], np.float32)
    tensors, report = {}, {}
    for k, lib in libs.items():
        enc = encode(lib.tokens, vocab, d.max_len, k)
        y = torch.from_numpy((props[k] - mean) / std).float() if names else None
        tensors[k] = SequenceTensors(enc.rows, y)
        report[k] = {**lib.report, "unknown_tokens": enc.report["unknown_words"]}
    return MoleculeData(tensors["train"], tensors["valid"], tensors["test"],
                        {k: lib.smiles for k, lib in libs.items()}, vocab, rep, stats[0], stats[1], report)


def molecule_run_config(run_dir: str | Path) -> MoleculeConfig:
    return run_settings(run_dir, "molecule", MoleculeConfig)


def is_molecule_run(run_dir: str | Path) -> bool:
    return is_run_of_kind(run_dir, "molecule")


def _stats(document: dict) -> tuple[list[float], list[float]]:
    p = document.get("properties") or {}
    return list(p.get("mean", [])), list(p.get("std", []))


def train(config: MoleculeConfig, run_dir: str | Path, overwrite: bool = False, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] = print, command: str | None = None,
          callbacks: list[Callable[[dict], None]] | None = None) -> Path:
    """Train a molecule VAE into ``run_dir`` (vocabulary and data report saved beside it)."""
    run_dir = Path(run_dir)
    if resume:
        runs.prepare(run_dir, resume=True)
        config = molecule_run_config(run_dir)
        document = read_config(run_dir)
        data = load_molecule_data(config, Vocabulary.load(run_dir, document), _stats(document), log)
    else:
        data = load_molecule_data(config, None, None, log)
        description = molecule_vae_description(len(data.vocab), config.model.model_dump(), data.representation.name,
                                               config.data.properties, data.property_mean, data.property_std)
        document = runs.describe_run(description, config, command)
    log(f"{len(data.train)} training molecules, vocabulary of {len(data.vocab)} {data.representation.name} tokens")
    with nullcontext() if resume else runs.create_run(run_dir, document, overwrite, data.vocab, data.report, log):
        return runs.train_run(document, config, data.train, data.val, run_dir, resume, callbacks, progress, log)


@dataclass
class MoleculeModel:
    """A trained molecule VAE with what it needs to read and write molecules."""

    vae: PropertyVAE
    vocab: Vocabulary
    representation: Representation
    config: MoleculeConfig

    @property
    def max_len(self) -> int:
        return self.config.eval.max_len

    def ids(self, smiles: str) -> torch.Tensor:
        """One molecule as a (1, T) id row; a token outside the vocabulary is an error that names it."""
        from vaekit.molecules.chem import canonical

        if isinstance(smiles, str) and any(c.isspace() for c in smiles.strip()):
            raise DataError(f"not a valid SMILES: {smiles!r} holds whitespace (a SMILES is one word; RDKit "
                            "would read the part before the space and take the rest as a name)")
        c = canonical(smiles.strip()) if isinstance(smiles, str) else None
        if c is None:
            raise DataError(f"not a valid SMILES: {smiles!r}")
        tokens = self.representation.tokens(c)
        unknown = sorted({t for t in tokens if t not in self.vocab.index})
        if unknown:
            raise DataError(f"SMILES {smiles!r}: token(s) {', '.join(map(repr, unknown))} not in the model's "
                            f"{self.representation.name} vocabulary of {len(self.vocab)} tokens")
        return encode([tokens], self.vocab, max(len(tokens), 1)).rows

    @torch.no_grad()
    def encode(self, smiles: list[str]) -> torch.Tensor:
        """Posterior means (N, L)."""
        return torch.cat([self.vae.encode(self.ids(s)).mean for s in smiles])

    @torch.no_grad()
    def decode(self, z: torch.Tensor, strategy: str = "greedy", temperature: float = 1.0,
               batch: int = 500) -> list[str | None]:
        """Canonical SMILES decoded from each row of z (None where the tokens are no molecule)."""
        if strategy not in ("greedy", "sample"):
            raise DataError(f"strategy must be greedy or sample, got {strategy!r}")
        if not temperature > 0:
            raise DataError(f"temperature must be > 0, got {temperature}")
        out: list[str | None] = []
        for i in range(0, z.shape[0], batch):
            rows = self.vae.decoder.generate(z[i : i + batch], self.max_len, strategy, temperature)
            for row in rows:
                tokens = self.vocab.decode(row)
                # a decoding that reached max_len without <eos> is unfinished: not a molecule
                unfinished = len(row) >= self.max_len
                bad = unfinished or UNK in tokens or not tokens
                out.append(None if bad else self.representation.to_smiles(tokens))
        return out


def load_run(run_dir: str | Path) -> MoleculeModel:
    document = read_config(run_dir)
    config = run_settings(run_dir, "molecule", MoleculeConfig, document)
    vocab = Vocabulary.load(run_dir, document)
    try:
        representation = Representation(document.get("representation"))
    except DataError as e:
        raise ModelFileError(f"{Path(run_dir) / 'config.json'}: {e}") from None
    vae = PropertyVAE.from_pretrained(run_dir).eval()
    return MoleculeModel(vae, vocab, representation, config)


# -- using a trained model -------------------------------------------------------------------
def check_count(n: int, what: str = "number of samples") -> None:
    if n < 1:
        raise DataError(f"{what} must be >= 1, got {n}")


@torch.no_grad()
def sample(model: MoleculeModel, n: int, strategy: str = "sample", temperature: float = 1.0,
           seed: int | None = None) -> list[str | None]:
    """Molecules decoded from z ~ N(0, I)."""
    check_count(n)
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    return model.decode(torch.randn(n, model.vae.latent_dim, generator=g), strategy, temperature)


@torch.no_grad()
def reconstruct(model: MoleculeModel, smiles: str, strategy: str = "greedy") -> str | None:
    return model.decode(model.encode([smiles]), strategy)[0]


@torch.no_grad()
def interpolate(model: MoleculeModel, a: str, b: str, steps: int = 8) -> list[str | None]:
    """Greedy decodings along the line between two posterior means."""
    if steps < 2:
        raise DataError(f"steps must be >= 2, got {steps}")
    za, zb = model.encode([a, b])
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    return model.decode((1 - t) * za + t * zb)


def describe(smiles: list[str | None], train: set[str] | None = None) -> list[dict]:
    """Rows for a CSV: SMILES, validity, QED, logP, SA, penalized logP (and novelty)."""
    from vaekit.molecules.chem import mol, properties

    rows = []
    for s in smiles:
        m = mol(s) if s else None
        row = {"smiles": s or "", "valid": m is not None}
        row.update({k: round(v, 4) for k, v in properties(m).items()} if m is not None else
                   {"qed": None, "logp": None, "sa": None, "plogp": None})
        if train is not None:
            row["novel"] = bool(m is not None and s not in train)
        rows.append(row)
    return rows


def draw_grid(smiles: list[str | None], path: str | Path, per_row: int = 6, legends: list[str] | None = None) -> Path:
    """A PNG grid of the valid molecules, drawn by RDKit."""
    from rdkit.Chem import Draw

    from vaekit.molecules.chem import mol

    mols = [(mol(s), legends[i] if legends else s) for i, s in enumerate(smiles) if s and mol(s) is not None]
    if not mols:
        raise DataError("no valid molecule to draw")
    image = Draw.MolsToGridImage([m for m, _ in mols], molsPerRow=per_row, subImgSize=(250, 200),
                                 legends=[(leg or "")[:40] for _, leg in mols])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    image.save(tmp)
    tmp.replace(path)
    return path


# -- evaluation ------------------------------------------------------------------------------------
def training_set(config: MoleculeConfig) -> set[str]:
    """Canonical SMILES of the whole training file (novelty is measured against all of it)."""
    d = config.data
    if d.name == "moses":
        raw = read_smiles(moses_files()["train"])
    elif d.name == "zinc250k":
        raw = read_lines(zinc250k_files()["train"])
    else:
        raw = raw_splits(config)["train"]
    key = hashlib.sha256("\n".join(raw).encode()).hexdigest()[:24]
    path = _cache() / f"canonical-{key}.txt.gz"
    if path.is_file():
        return set(gzip.decompress(path.read_bytes()).decode().split("\n"))
    canon = {c for c in canonicalize(raw) if c}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(gzip.compress("\n".join(sorted(canon)).encode()))
        tmp.replace(path)
    except OSError:
        pass
    return canon


def test_elbo(model: MoleculeModel, data: SequenceTensors, batch: int = 500) -> dict:
    stats = elbo_pass(model.vae, data, batch, labels=False)  # properties are targets, not conditions
    return {"test_neg_elbo": -stats.elbo, "kl": stats.kl, "active_units": stats.active_units,
            "latent_dim": model.vae.latent_dim, "test_molecules": stats.n}


@torch.no_grad()
def reconstruction_accuracy(model: MoleculeModel, smiles: list[str], n_encode: int = 10, n_decode: int = 10,
                            strategy: str = "sample", seed: int = 0) -> float:
    """Kusner et al. 2017's protocol: each molecule encoded ``n_encode`` times (z ~ q(z|x)),
    each code decoded ``n_decode`` times; the share of decodings that are the molecule."""
    from vaekit.molecules.chem import canonical

    g = torch.Generator().manual_seed(seed)
    hits = total = 0
    block = max(1, 500 // (n_encode * n_decode))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, len(smiles), block):
            chunk = smiles[i : i + block]
            targets = [canonical(s) for s in chunk]
            q = [model.vae.encode(model.ids(s)) for s in chunk]
            z = torch.cat([qi.mean + (0.5 * qi.log_var).exp() * torch.randn(n_encode, qi.mean.shape[-1], generator=g)
                           for qi in q])
            z = z.repeat_interleave(n_decode, 0)
            decoded = model.decode(z, strategy)
            per = n_encode * n_decode
            for j, target in enumerate(targets):
                hits += sum(d == target for d in decoded[j * per : (j + 1) * per])
                total += per
    return hits / total


def prior_validity(model: MoleculeModel, n_z: int = 1000, n_decode: int = 100, seed: int = 0) -> dict:
    """Jin et al. 2018's protocol: ``n_z`` codes from the prior, each decoded ``n_decode``
    times (sampling); the share of valid molecules, and of distinct ones among them."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_z, model.vae.latent_dim, generator=g).repeat_interleave(n_decode, 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoded = model.decode(z, "sample")
    valid = [d for d in decoded if d]
    return {"prior_validity": len(valid) / len(decoded), "prior_decodings": len(decoded),
            "prior_unique": len(set(valid)) / max(len(valid), 1)}


def evaluate(run_dir: str | Path, n_samples: int | None = None, reconstruction_molecules: int | None = None,
             prior_codes: int = 1000, prior_decodes: int = 100, write: bool = True,
             log: Callable[[str], None] = print) -> dict:
    """The test -ELBO (nats per molecule) and KL; the MOSES metrics of ``n_samples`` prior samples against the
    test set (and the scaffold test set for MOSES); for ZINC250k also reconstruction
    accuracy and prior validity. Written to ``evaluation.json``."""
    from vaekit.molecules.metrics import moses_metrics, reference_stats

    run_dir = Path(run_dir)
    model = load_run(run_dir)
    config = model.config
    document = read_config(run_dir)
    data = load_molecule_data(config, model.vocab, _stats(document), log=lambda m: None)
    result = test_elbo(model, data.test)
    n = n_samples or config.eval.n_samples
    log(f"sampling {n} molecules")
    generated = sample(model, n, seed=0)
    refs = {}
    if config.data.name == "moses":
        files = moses_files()
        for name, key in (("test", "test"), ("test_sf", "test_scaffolds")):
            log(f"reference statistics of MOSES {key} (cached after the first time)")
            refs[name] = reference_stats([s for s in read_smiles(files[key]) if s], _cache())
    else:
        refs["test"] = reference_stats(data.smiles["test"], _cache())
    log("MOSES metrics")
    result.update(moses_metrics(generated, training_set(config), refs))
    if config.data.name == "zinc250k":
        test = data.smiles["test"][:reconstruction_molecules] if reconstruction_molecules else data.smiles["test"]
        log(f"reconstruction accuracy on {len(test)} test molecules (10 x 10 decodings each)")
        result["reconstruction"] = reconstruction_accuracy(model, test)
        result["reconstruction_greedy"] = reconstruction_accuracy(model, test, 1, 1, "greedy")
        result["reconstruction_molecules"] = len(test)
        log(f"prior validity ({prior_codes} codes x {prior_decodes} decodings)")
        result.update(prior_validity(model, prior_codes, prior_decodes))
    if write:
        atomic_write_text(run_dir / "evaluation.json", json.dumps(result, indent=2))
        runs.write_model_card(run_dir, result)
    return result
