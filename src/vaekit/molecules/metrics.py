"""The MOSES metrics (Polykovskiy et al. 2020) with RDKit and the ``fcd`` package.

Computed as the ``moses`` package does (``moses/metrics/metrics.py``):

- ``valid``: share of generated strings RDKit parses into a non-empty molecule;
- ``unique@k``: distinct canonical SMILES among the first k valid ones, over k;
- ``novelty``: share of the distinct valid molecules absent from the training set;
- ``int_div1`` / ``int_div2``: 1 - the mean (p = 1) or root-mean-square (p = 2) Tanimoto
  similarity of all pairs of generated molecules (Morgan radius 2, 1024 bits);
- ``fcd``: the Fréchet ChemNet Distance (Preuer et al. 2018) to a reference set;
- ``snn``: mean over generated molecules of the Tanimoto similarity to the nearest
  reference molecule;
- ``frag`` / ``scaf``: cosine similarity of the BRICS-fragment counts and of the
  Bemis-Murcko scaffold counts (scaffolds with at least two rings);
- ``filters``: share of valid molecules passing MOSES's filters: atoms among C, N, S, O,
  F, Cl, Br, H; no charge; no ring of eight or more atoms; none of the medicinal-chemistry
  (MCF) and PAINS substructures. The 22 MCF patterns are MOSES's ``mcf.csv`` (MIT);
  PAINS comes from RDKit's filter catalog (the same WEHI set MOSES ships).

Reference statistics (FCD mean and covariance, fingerprints, fragment and scaffold
counts) take minutes for MOSES's 176k test molecules; :func:`reference_stats` caches
them in the cache directory, keyed by the hash of the reference list.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from vaekit.molecules.chem import Chem, canonical
from vaekit.molecules.data import parallel_map

MCF_SMARTS = [
    "[#6]=&!@[#6]-[#6]#[#7]", "[#6]=&!@[#6]-[#16](=[#8])=[#8]", "[#6]=&!@[#6&!H0]-&!@[#6](=[#8])-&!@[#7]",
    "[H]C([H])([#6])[F,Cl,Br,I]", "[#6]1-[#8]-[#6]-1", "[#6]-[#7]=[#6]=[#8]", "[#6&!H0]=[#8]",
    "[#6](=&!@[#7&!H0])-&!@[#6,#7,#8,#16]", "[#6]1-[#7]-[#6]-1", "[#6]~&!@[#7]~&!@[#7]~&!@[#6]",
    "[#7]=&!@[#7]", "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#8]-1", "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#16]-1",
    "[#17,#35,#53]-c(:*):[!#1!#6]:*", "[H][#7]([H])-[#6]-1=[#6]-[#6]=[#6]-[#6]=[#6]-1", "[#16]~[#16]",
    "[#7]~&!@[#7]~&!@[#7]", "[#7]-&!@[#6&!H0&!H1]-&!@[#7]", "[#6&!H0](-&!@[#8])-&!@[#8]", "[#35].[#35].[#35]",
    "[#17].[#17].[#17].[#17]", "[#9].[#9].[#9].[#9].[#9].[#9].[#9]",
]
ALLOWED_ATOMS = {"C", "N", "S", "O", "F", "Cl", "Br", "H"}
_FILTERS = None


def _filters():
    global _FILTERS
    if _FILTERS is None:
        from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

        params = FilterCatalogParams()
        params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
        _FILTERS = ([Chem.MolFromSmarts(s) for s in MCF_SMARTS], FilterCatalog(params))
    return _FILTERS


def passes_filters(smiles: str) -> bool:
    m = Chem.MolFromSmiles(smiles) if smiles else None
    if m is None:
        return False
    if any(len(r) >= 8 for r in m.GetRingInfo().AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 for a in m.GetAtoms()):
        return False
    if any(a.GetSymbol() not in ALLOWED_ATOMS for a in m.GetAtoms()):
        return False
    mcf, pains = _filters()
    h = Chem.AddHs(m)
    if any(h.HasSubstructMatch(p) for p in mcf) or pains.HasMatch(h):
        return False
    return True


# -- fingerprints and Tanimoto -------------------------------------------------------------
def _fingerprint_chunk(smiles: list[str]) -> np.ndarray:
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    out = np.zeros((len(smiles), 1024), np.uint8)
    for i, s in enumerate(smiles):
        m = Chem.MolFromSmiles(s)
        if m is not None:
            out[i] = gen.GetFingerprintAsNumPy(m)
    return out


def fingerprints(smiles: list[str]) -> np.ndarray:
    """Morgan fingerprints (radius 2, 1024 bits) as a (N, 1024) uint8 array."""
    if len(smiles) > 20_000:
        return np.concatenate(parallel_map(_fingerprint_block, smiles, chunk=5000))
    return _fingerprint_chunk(smiles)


def _fingerprint_block(chunk: list[str]) -> list[np.ndarray]:
    return [_fingerprint_chunk(chunk)]  # one array per chunk: parallel_map concatenates lists


def tanimoto_agg(gen: np.ndarray, ref: np.ndarray, agg: str = "max", p: int = 1, block: int = 4096) -> np.ndarray:
    """For each generated fingerprint, the max or mean (of T^p) Tanimoto similarity to ``ref``."""
    g = gen.astype(np.float32)
    out = np.zeros(len(gen), np.float64)
    g_count = g.sum(1)
    for j in range(0, len(ref), block):
        r = ref[j : j + block].astype(np.float32)
        inter = g @ r.T
        union = g_count[:, None] + r.sum(1)[None, :] - inter
        sim = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        if p != 1:
            sim = sim**p
        if agg == "max":
            np.maximum(out, sim.max(1), out=out)
        else:
            out += sim.sum(1)
    if agg == "mean":
        out = (out / len(ref)) ** (1.0 / p)
    return out


def internal_diversity(fps: np.ndarray, p: int = 1) -> float:
    return float(1 - tanimoto_agg(fps, fps, "mean", p).mean())


# -- fragments and scaffolds -----------------------------------------------------------------
def _fragment_chunk(smiles: list[str]) -> list[Counter]:
    from rdkit.Chem import BRICS

    out = []
    for s in smiles:
        m = Chem.MolFromSmiles(s)
        frags = Counter()
        if m is not None:
            for f in Chem.GetMolFrags(BRICS.BreakBRICSBonds(m), asMols=True):
                frags[Chem.MolToSmiles(f)] += 1
        out.append(frags)
    return [sum(out, Counter())]


def _scaffold_chunk(smiles: list[str]) -> list[Counter]:
    from rdkit.Chem.Scaffolds import MurckoScaffold

    counts = Counter()
    for s in smiles:
        m = Chem.MolFromSmiles(s)
        if m is None:
            continue
        try:
            scaffold = MurckoScaffold.GetScaffoldForMol(m)
        except Exception:  # RDKit refuses some exotic molecules
            continue
        text = Chem.MolToSmiles(scaffold)
        if text and scaffold.GetRingInfo().NumRings() >= 2:
            counts[text] += 1
    return [counts]


def fragment_counts(smiles: list[str]) -> Counter:
    return sum(parallel_map(_fragment_chunk, smiles, chunk=5000) if len(smiles) > 20_000
               else _fragment_chunk(smiles), Counter())


def scaffold_counts(smiles: list[str]) -> Counter:
    return sum(parallel_map(_scaffold_chunk, smiles, chunk=5000) if len(smiles) > 20_000
               else _scaffold_chunk(smiles), Counter())


def cosine_similarity(ref: Counter, gen: Counter) -> float:
    keys = list(set(ref) | set(gen))
    if not keys:
        return float("nan")
    a = np.array([ref.get(k, 0) for k in keys], np.float64)
    b = np.array([gen.get(k, 0) for k in keys], np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na and nb else 0.0


# -- FCD ---------------------------------------------------------------------------------------
_CHEMNET = None


def chemnet_activations(smiles: list[str]) -> np.ndarray:
    global _CHEMNET
    import fcd

    if _CHEMNET is None:
        _CHEMNET = fcd.load_ref_model()
    return fcd.get_predictions(_CHEMNET, smiles, batch_size=512)


def fcd_stats(smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    act = chemnet_activations(smiles)
    return act.mean(0), np.cov(act.T)


def frechet(mu1, sigma1, mu2, sigma2) -> float:
    import fcd

    return float(fcd.calculate_frechet_distance(mu1=mu1, sigma1=sigma1, mu2=mu2, sigma2=sigma2))


# -- reference statistics ------------------------------------------------------------------------
class ReferenceStats:
    """What the metrics need of a reference set (MOSES's test or scaffold-test set)."""

    def __init__(self, mu, sigma, fps, frags: Counter, scaffolds: Counter, n: int):
        self.mu, self.sigma, self.fps, self.frags, self.scaffolds, self.n = mu, sigma, fps, frags, scaffolds, n

    @classmethod
    def compute(cls, smiles: list[str]) -> "ReferenceStats":
        mu, sigma = fcd_stats(smiles)
        return cls(mu, sigma, fingerprints(smiles), fragment_counts(smiles), scaffold_counts(smiles), len(smiles))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, mu=self.mu, sigma=self.sigma, fps=np.packbits(self.fps, axis=1),
                 counts=np.frombuffer(json.dumps({"frags": self.frags, "scaffolds": self.scaffolds,
                                                  "n": self.n}).encode(), np.uint8))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "ReferenceStats":
        with np.load(path, allow_pickle=False) as f:
            counts = json.loads(f["counts"].tobytes().decode())
            return cls(f["mu"], f["sigma"], np.unpackbits(f["fps"], axis=1), Counter(counts["frags"]),
                       Counter(counts["scaffolds"]), int(counts["n"]))


def reference_stats(smiles: list[str], cache: Path | None) -> ReferenceStats:
    key = hashlib.sha256("\n".join(smiles).encode()).hexdigest()[:24]
    path = cache / f"reference-{key}.npz" if cache else None
    if path is not None and path.is_file():
        try:
            return ReferenceStats.load(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is recomputed
    stats = ReferenceStats.compute(smiles)
    if path is not None:
        try:
            stats.save(path)
        except OSError:
            pass
    return stats


# -- the metrics ------------------------------------------------------------------------------
def moses_metrics(generated: list[str | None], train: set[str], references: dict[str, ReferenceStats],
                  unique_k: tuple[int, ...] = (1000, 10000)) -> dict:
    """All MOSES metrics of generated SMILES (None or unparsable strings count as invalid).

    ``train`` holds the canonical training SMILES (novelty); ``references`` maps a name
    (``test``, ``test_sf``) to its statistics.
    """
    n = len(generated)
    canon = [canonical(s) if s else None for s in generated]
    valid = [c for c in canon if c is not None]
    result: dict = {"n_generated": n, "valid": len(valid) / n if n else 0.0}
    for k in unique_k:
        head = valid[:k]
        name = f"unique@{k // 1000}k" if k % 1000 == 0 else f"unique@{k}"
        result[name] = len(set(head)) / max(len(head), 1)
        if len(head) < k:  # as MOSES does, over the valid molecules there are, with a note
            result[f"{name}_note"] = f"only {len(head)} valid molecules"
    if not valid:
        return result
    distinct = set(valid)
    result["novelty"] = len(distinct - train) / len(distinct)
    fps = fingerprints(valid)
    result["int_div1"] = internal_diversity(fps, 1)
    result["int_div2"] = internal_diversity(fps, 2)
    result["filters"] = float(np.mean([passes_filters(s) for s in valid]))
    mu, sigma = fcd_stats(valid)
    frags, scaffolds = fragment_counts(valid), scaffold_counts(valid)
    for name, ref in references.items():
        result[f"fcd_{name}"] = frechet(mu, sigma, ref.mu, ref.sigma)
        result[f"snn_{name}"] = float(tanimoto_agg(fps, ref.fps, "max").mean())
        result[f"frag_{name}"] = cosine_similarity(ref.frags, frags)
        result[f"scaf_{name}"] = cosine_similarity(ref.scaffolds, scaffolds)
    return result
