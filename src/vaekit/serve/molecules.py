"""Molecule VAEs (run directories of ``vaekit train moses|zinc250k|molecules``): encode,
decode, generate, reconstruct, interpolate, and RDKit properties.

Molecules travel as SMILES. Every decoded molecule comes back as canonical SMILES (or
``null`` when the decoding is not a molecule) with its validity and, for valid ones, QED,
logP, SA score and penalized logP computed by RDKit. A SMILES that RDKit cannot parse, or
whose tokens are outside the model's vocabulary, is a 422 that names it. ``encode`` and
``decode`` of many rows are batched across concurrent requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import torch
from pydantic import Field

from vaekit.errors import DataError
from vaekit.serve.base import (
    NUMBER_BYTES,
    SEED_MAX,
    InputError,
    Operation,
    ServedModel,
    as_numpy,
    fits,
    integer,
    number,
    per_request,
    prior_draw,
    rows_of,
    schema,
    seeded_global_rng,
)
from vaekit.serve.settings import ServeSettings

MAX_SMILES_CHARS = 500
Strategy = Literal["sample", "greedy"]


class MoleculeService:
    z_bound = 1e3

    def __init__(self, model):
        self.model = model
        self.latent_dim = model.vae.latent_dim

    def _described(self, smiles: list[str | None]) -> list[dict]:
        from vaekit.molecules.app import describe

        return describe(smiles)

    def _means(self, smiles: list[str]):
        try:
            rows = [self.model.ids(s) for s in smiles]
        except DataError as e:
            raise InputError(str(e)) from None
        from torch.nn.utils.rnn import pad_sequence

        x = pad_sequence([r[0] for r in rows], batch_first=True)
        with torch.inference_mode():
            q = self.model.vae.encode(x)
        return q.mean, q.log_var

    def _decode(self, z: torch.Tensor, strategy: str = "greedy", temperature: float = 1.0) -> list[str | None]:
        with torch.inference_mode():
            return self.model.decode(z, strategy, temperature)

    def run_encode(self, reqs: list) -> list[dict]:
        flat = [s for r in reqs for s in r.smiles]
        mean, log_var = self._means(flat)
        out, i = [], 0
        for r in reqs:
            n = len(r.smiles)
            out.append({"mean": as_numpy(mean[i:i + n]).tolist(), "log_var": as_numpy(log_var[i:i + n]).tolist()})
            i += n
        return out

    def run_decode(self, reqs: list) -> list[dict]:
        z = torch.tensor([row for r in reqs for row in r.z], dtype=torch.float32)
        mols = self._described(self._decode(z))
        return [{"molecules": part} for part in per_request(mols, [len(r.z) for r in reqs])]

    def run_generate(self, reqs: list) -> list[dict]:
        out = []
        for r in reqs:
            seed, z = prior_draw(r.n, self.latent_dim, r.seed)
            with seeded_global_rng(seed):
                mols = self._described(self._decode(z, r.strategy, r.temperature))
            out.append({"molecules": mols, "z": as_numpy(z).tolist(), "seed": seed})
        return out

    def run_reconstruct(self, reqs: list) -> list[dict]:
        out = []
        for r in reqs:
            mean, _ = self._means([r.smiles])
            out.append({"molecule": self._described(self._decode(mean))[0], "z": as_numpy(mean)[0].tolist()})
        return out

    def run_interpolate(self, reqs: list) -> list[dict]:
        out = []
        for r in reqs:
            mean, _ = self._means([r.a, r.b])
            t = torch.linspace(0, 1, r.steps).unsqueeze(1)
            z = (1 - t) * mean[0] + t * mean[1]
            out.append({"molecules": self._described(self._decode(z)), "z": as_numpy(z).tolist(),
                        "t": t.squeeze(1).tolist()})
        return out

    def run_draw(self, reqs: list) -> list[dict]:
        """RDKit 2-D drawings as SVG text ('' for a string that is not a molecule)."""
        from rdkit.Chem.Draw import rdMolDraw2D

        from vaekit.molecules.chem import mol

        out = []
        for r in reqs:
            svgs = []
            for s in r.smiles:
                m = mol(s)
                if m is None:
                    svgs.append("")
                    continue
                drawer = rdMolDraw2D.MolDraw2DSVG(r.width, r.height)
                drawer.DrawMolecule(m)
                drawer.FinishDrawing()
                svgs.append(drawer.GetDrawingText())
            out.append({"svg": svgs})
        return out

    def run_properties(self, reqs: list) -> list[dict]:
        from vaekit.molecules.chem import canonical

        out = []
        for r in reqs:
            canon = [canonical(s) for s in r.smiles]
            bad = [s for s, c in zip(r.smiles, canon) if c is None]
            if bad:
                raise InputError(f"not a valid SMILES: {bad[0]!r}")
            out.append({"molecules": self._described(canon)})
        return out


def load_molecule_model(name: str, run_dir: Path, settings: ServeSettings) -> ServedModel:
    from vaekit.molecules.app import load_run

    model = load_run(run_dir)
    service = MoleculeService(model)
    k, s = service.latent_dim, settings
    smiles = Annotated[str, Field(min_length=1, max_length=MAX_SMILES_CHARS, description="a SMILES string")]
    n_smiles = fits(s, s.max_rows, MAX_SMILES_CHARS + 4)
    smiles_list = (Annotated[list[smiles], Field(min_length=1, max_length=n_smiles)], ...)
    molecule = dict[str, Optional[float | bool | str]]
    molecules = (list[molecule], Field(description="canonical SMILES ('' when not a molecule), valid, qed, "
                                                  "logp, sa, plogp"))
    matrix = list[list[float]]
    strategy = (Strategy, Field("sample", description="sample | greedy"))
    enc_req = schema(name, "EncodeRequest", smiles=smiles_list)
    enc_res = schema(name, "EncodeResponse", mean=(matrix, ...), log_var=(matrix, ...))
    z_rows = rows_of(k, -service.z_bound, service.z_bound,
                     min(fits(s, s.max_rows, NUMBER_BYTES * (k + 1)), s.max_samples), f"latent codes: each row exactly {k} numbers")
    dec_req = schema(name, "DecodeRequest", z=(z_rows, ...))
    dec_res = schema(name, "DecodeResponse", molecules=molecules)
    gen_req = schema(name, "GenerateRequest",
                     n=(integer(1, min(s.max_samples, 64)), Field(8, description="molecules to generate")),
                     strategy=strategy,
                     temperature=(number(1e-3, 10.0, "softmax temperature of sampling"), Field(1.0)),
                     seed=(integer(0, SEED_MAX) | None, Field(None, description="random seed (default: fresh)")))
    gen_res = schema(name, "GenerateResponse", molecules=molecules, z=(matrix, ...), seed=(int, ...))
    rec_req = schema(name, "ReconstructRequest", smiles=(smiles, ...))
    rec_res = schema(name, "ReconstructResponse", molecule=(molecule, ...), z=(list[float], ...))
    itp_req = schema(name, "InterpolateRequest", a=(smiles, ...), b=(smiles, ...),
                     steps=(integer(2, min(s.max_steps, 32)), Field(8, description="points on the path, ends included")))
    itp_res = schema(name, "InterpolateResponse", molecules=molecules, z=(matrix, ...), t=(list[float], ...))
    prop_req = schema(name, "PropertiesRequest", smiles=smiles_list)
    prop_res = schema(name, "PropertiesResponse", molecules=molecules)
    drawn = Annotated[str, Field(max_length=MAX_SMILES_CHARS, description="a SMILES string ('' draws nothing)")]
    draw_req = schema(name, "DrawRequest", smiles=(Annotated[list[drawn], Field(min_length=1, max_length=min(n_smiles, 32))], ...),
                      width=(integer(50, 600), Field(220, description="pixels")),
                      height=(integer(50, 600), Field(180, description="pixels")))
    draw_res = schema(name, "DrawResponse", svg=(list[str], Field(description="SVG text per SMILES ('' if invalid)")))
    config = model.config
    info = {"kind": "molecule", "latent_dim": k, "vocab_size": len(model.vocab),
            "representation": model.representation.name, "encoder": config.model.encoder,
            "dataset": config.data.name, "properties": list(model.vae.property_names), "max_len": model.max_len}
    served = ServedModel(name, "molecule", info)
    served.add(
        Operation("encode", "Posterior mean and log-variance of each molecule", enc_req, enc_res, service.run_encode,
                  lambda r: len(r.smiles), batchable=True),
        Operation("decode", "Greedy decoding of each latent code, with RDKit properties", dec_req, dec_res,
                  service.run_decode, lambda r: len(r.z), batchable=True),
        Operation("generate", "Molecules decoded from z ~ N(0, I)", gen_req, gen_res, service.run_generate),
        Operation("reconstruct", "A molecule through its posterior mean and back", rec_req, rec_res,
                  service.run_reconstruct),
        Operation("interpolate", "Greedy decodings on the line between two molecules' posterior means",
                  itp_req, itp_res, service.run_interpolate),
        Operation("properties", "QED, logP, SA score and penalized logP of SMILES (RDKit)", prop_req, prop_res,
                  service.run_properties),
        Operation("draw", "RDKit drawings of SMILES as SVG", draw_req, draw_res, service.run_draw),
    )
    return served
