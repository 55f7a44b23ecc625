"""Drug discovery: a sequence VAE over SMILES or SELFIES (Gómez-Bombarelli et al. 2018).

- :mod:`~vaekit.molecules.chem`: RDKit helpers (canonical SMILES, QED, logP, SA score,
  penalized logP) and the MOSES filters.
- :mod:`~vaekit.molecules.tokens`: the SMILES regex tokenizer and SELFIES tokens.
- :mod:`~vaekit.molecules.data`: reading a user's library (.smi / .csv), cleaning it with
  RDKit, MOSES and ZINC250k.
- :mod:`~vaekit.molecules.model`: the VAE with an optional property head.
- :mod:`~vaekit.molecules.metrics`: the MOSES metrics and the ZINC250k protocols.
- :mod:`~vaekit.molecules.optimize`: property-guided search in latent space.
- :mod:`~vaekit.molecules.app`: train, evaluate, sample, reconstruct, interpolate.

RDKit and selfies come with the ``molecules`` extra (``pip install vaekit[molecules]``).
"""
