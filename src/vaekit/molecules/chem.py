"""RDKit helpers: parsing, canonical SMILES, the properties the VAE learns and searches.

- QED (Bickerton et al. 2012) and Crippen logP (Wildman & Crippen 1999) from RDKit.
- SA score (Ertl & Schuffenhauer 2009), from RDKit's Contrib ``SA_Score/sascorer.py``.
- Penalized logP: logP - SA - ring penalty (max(largest ring - 6, 0)). With
  ``normalized=True`` (the default) each of the three terms is standardized by its mean
  and standard deviation over ZINC250k before the sum, as in Kusner et al. 2017's and
  Jin et al. 2018's Bayesian-optimization code: the scale of their tables (JT-VAE's best
  5.30, CVAE's 1.98).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Iterable

from vaekit.errors import ConfigError

try:
    from rdkit import Chem, RDConfig, RDLogger
    from rdkit.Chem import QED, Crippen

    RDLogger.DisableLog("rdApp.*")  # a failed parse is counted, not printed
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("the molecule application needs RDKit: pip install 'vaekit[molecules]'") from e

PROPERTIES = ("qed", "logp", "sa", "plogp")

# Kusner et al. 2017 / Jin et al. 2018 (bo/ scripts): ZINC250k statistics of the three terms
_LOGP_MEAN, _LOGP_STD = 2.4570953396190123, 1.434324401111988
_SA_MEAN, _SA_STD = -3.0525811293166134, 0.8335207024513095
_CYCLE_MEAN, _CYCLE_STD = -0.0485696876403053, 0.2860212110245455


def mol(smiles: str):
    """An RDKit molecule, or None for an empty or unparsable string. A SMILES is one word:
    one with whitespace inside is not a molecule (RDKit would read up to the first space
    and take the rest as the molecule's name, silently)."""
    if not smiles or not isinstance(smiles, str):
        return None
    smiles = smiles.strip()
    if not smiles or any(c.isspace() for c in smiles):
        return None
    return Chem.MolFromSmiles(smiles)


def canonical(smiles: str, isomeric: bool = True) -> str | None:
    """RDKit's canonical SMILES, or None when the string is not a molecule."""
    m = mol(smiles)
    if m is None or m.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(m, isomericSmiles=isomeric)


@functools.lru_cache(maxsize=1)
def _sascorer():
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    spec = importlib.util.spec_from_file_location("sascorer", path)
    if spec is None or not os.path.exists(path):
        raise ImportError(f"RDKit's SA score is missing ({path}): install the rdkit package from PyPI")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sa_score(m) -> float:
    """Synthetic accessibility, 1 (easy) to 10 (hard)."""
    return float(_sascorer().calculateScore(m))


def ring_penalty(m) -> int:
    """How far the largest ring exceeds six atoms (0 for rings of up to six)."""
    rings = m.GetRingInfo().AtomRings()
    return max([len(r) for r in rings] + [6]) - 6


def penalized_logp(m, normalized: bool = True) -> float:
    logp, sa, cycle = Crippen.MolLogP(m), -sa_score(m), -ring_penalty(m)
    if not normalized:
        return float(logp + sa + cycle)
    return float((logp - _LOGP_MEAN) / _LOGP_STD + (sa - _SA_MEAN) / _SA_STD + (cycle - _CYCLE_MEAN) / _CYCLE_STD)


def properties(m) -> dict[str, float]:
    """QED, logP, SA and penalized logP (normalized) of one molecule."""
    return {"qed": float(QED.qed(m)), "logp": float(Crippen.MolLogP(m)), "sa": sa_score(m),
            "plogp": penalized_logp(m)}


def property_of(name: str, m) -> float:
    check_property(name)
    if name == "qed":
        return float(QED.qed(m))
    if name == "logp":
        return float(Crippen.MolLogP(m))
    if name == "sa":
        return sa_score(m)
    return penalized_logp(m)


def check_property(name: str) -> None:
    if name not in PROPERTIES:
        raise ConfigError(f"unknown property {name!r}; known: {', '.join(PROPERTIES)}")


def property_table(smiles: Iterable[str], names: Iterable[str]) -> list[list[float]]:
    """Rows of the named properties for valid SMILES (the caller has filtered them)."""
    names = list(names)
    for n in names:
        check_property(n)
    rows = []
    for s in smiles:
        m = mol(s)
        if m is None:
            raise ValueError(f"not a valid SMILES: {s!r}")
        rows.append([property_of(n, m) for n in names])
    return rows
