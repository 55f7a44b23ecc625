"""Molecules as token sequences: SMILES (regex atoms) or SELFIES (Krenn et al. 2020).

- SMILES: the atom-level regular expression of Schwaller et al. 2019 (bracket atoms,
  two-letter halogens, ring-closure digits and ``%nn`` each one token). A string the
  expression does not cover completely is refused with the character named.
- SELFIES: the ``selfies`` library's tokens; every token sequence decodes to a valid
  molecule, so a SELFIES VAE's samples are valid by construction.

Both representations turn canonical SMILES into tokens and tokens back into canonical
SMILES (None when the tokens are not a molecule).
"""

from __future__ import annotations

import re

from vaekit.errors import DataError
from vaekit.molecules.chem import canonical

SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
)
REPRESENTATIONS = ("smiles", "selfies")


def smiles_tokens(smiles: str) -> list[str]:
    tokens = SMILES_REGEX.findall(smiles)
    if "".join(tokens) != smiles:
        covered, pos = 0, 0
        for t in tokens:  # find the first character the expression skipped
            at = smiles.find(t, pos)
            if at != pos:
                break
            pos = at + len(t)
            covered = pos
        raise DataError(f"SMILES {smiles!r}: character {smiles[covered]!r} at position {covered} is not a SMILES token")
    return tokens


def _selfies():
    try:
        import selfies
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("SELFIES needs the selfies package: pip install 'vaekit[molecules]'") from e
    return selfies


class Representation:
    """Canonical SMILES <-> tokens for one representation (``smiles`` or ``selfies``)."""

    def __init__(self, name: str):
        if name not in REPRESENTATIONS:
            raise DataError(f"unknown representation {name!r}; known: {', '.join(REPRESENTATIONS)}")
        self.name = name

    def tokens(self, smiles: str) -> list[str]:
        if self.name == "smiles":
            return smiles_tokens(smiles)
        sf = _selfies()
        try:
            encoded = sf.encoder(smiles)
        except Exception as e:  # selfies.EncoderError and friends
            raise DataError(f"SMILES {smiles!r} cannot be written as SELFIES ({e})") from None
        if encoded is None:
            raise DataError(f"SMILES {smiles!r} cannot be written as SELFIES")
        return list(sf.split_selfies(encoded))

    def to_smiles(self, tokens: list[str]) -> str | None:
        """Canonical SMILES of the decoded tokens, or None when they are not a molecule."""
        text = "".join(tokens)
        if self.name == "selfies":
            try:
                text = _selfies().decoder(text)
            except Exception:
                return None
        return canonical(text) if text else None
