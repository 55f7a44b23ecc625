"""Sentence VAEs (text run directories of ``vaekit train ptb|text``): encode, generate,
reconstruct, interpolate, decode.

Sentences travel as strings and are tokenized as in training (whitespace, the run's
lower-casing); words outside the vocabulary are read as ``<unk>`` and listed in the
answer; a sentence longer than the model reads is a 422 with its length. Generated sentences are at most the run's ``data.max_len`` words (and the
service's ``max_seq_len``). ``encode`` and ``decode`` of many rows are batched across
concurrent requests; generation runs per request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import AfterValidator, Field

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

MAX_SENTENCE_CHARS = 2000
Strategy = Literal["sample", "greedy", "beam"]


class TextModel:
    z_bound = 1e3

    def __init__(self, vae, vocab, max_len: int):
        self.vae, self.vocab, self.max_len = vae.eval(), vocab, max_len
        self.latent_dim = vae.latent_dim

    def _ids(self, sentence: str):
        from vaekit.text.app import sentence_ids

        try:
            return sentence_ids(self.vocab, sentence, self.max_len)
        except DataError as e:
            raise InputError(str(e)) from None

    def _decode(self, z: torch.Tensor, strategy: str = "greedy", temperature: float = 1.0, beam: int = 3):
        from vaekit.text.app import decode_text

        with torch.inference_mode():
            return decode_text(self.vae, self.vocab, z, self.max_len, strategy, temperature, beam)

    def _means(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        from torch.nn.utils.rnn import pad_sequence

        rows, unknown = zip(*(self._ids(s) for s in sentences))
        x = pad_sequence([r[0] for r in rows], batch_first=True)
        with torch.inference_mode():
            q = self.vae.encode(x)
        return q.mean, q.log_var, list(unknown)

    def run_encode(self, reqs: list) -> list[dict]:
        flat = [s for r in reqs for s in r.sentences]
        mean, log_var, unknown = self._means(flat)
        out, i = [], 0
        for r in reqs:
            n = len(r.sentences)
            out.append({"mean": as_numpy(mean[i:i + n]).tolist(), "log_var": as_numpy(log_var[i:i + n]).tolist(),
                        "unknown": sorted({w for u in unknown[i:i + n] for w in u})})
            i += n
        return out

    def run_decode(self, reqs: list) -> list[dict]:
        z = torch.tensor([row for r in reqs for row in r.z], dtype=torch.float32)
        lines = self._decode(z)
        return [{"sentences": part} for part in per_request(lines, [len(r.z) for r in reqs])]

    def run_generate(self, reqs: list) -> list[dict]:
        out = []
        for r in reqs:
            seed, z = prior_draw(r.n, self.latent_dim, r.seed)
            with seeded_global_rng(seed):
                lines = self._decode(z, r.strategy, r.temperature, r.beam_size)
            out.append({"sentences": lines, "z": as_numpy(z).tolist(), "seed": seed})
        return out

    def run_reconstruct(self, reqs: list) -> list[dict]:
        out = []
        for r in reqs:
            mean, _, unknown = self._means([r.sentence])
            out.append({"sentence": self._decode(mean, r.strategy, 1.0, r.beam_size)[0],
                        "z": as_numpy(mean)[0].tolist(), "unknown": unknown[0]})
        return out

    def run_interpolate(self, reqs: list) -> list[dict]:
        out = []
        for r in reqs:
            mean, _, unknown = self._means([r.a, r.b])
            t = torch.linspace(0, 1, r.steps).unsqueeze(1)
            z = (1 - t) * mean[0] + t * mean[1]
            out.append({"sentences": self._decode(z), "z": as_numpy(z).tolist(), "t": t.squeeze(1).tolist(),
                        "unknown": sorted(set(unknown[0] + unknown[1]))})
        return out



def _has_words(sentence: str) -> str:
    """Refused in the request's validation, so the error names the item (``sentences.2``)."""
    if not sentence.split():
        raise ValueError("the sentence has no words (only whitespace)")
    return sentence

def load_text_model(name: str, run_dir: Path, settings: ServeSettings) -> ServedModel:
    from vaekit.text.app import load_run

    vae, config, vocab = load_run(run_dir)
    model = TextModel(vae, vocab, min(config.data.max_len, settings.max_seq_len))
    k, s = model.latent_dim, settings
    sentence = Annotated[str, Field(min_length=1, max_length=MAX_SENTENCE_CHARS,
                                    description="a sentence; words split at whitespace"),
                         AfterValidator(_has_words)]
    n_sent = fits(s, s.max_rows, MAX_SENTENCE_CHARS + 4)
    strategy = (Strategy, Field("greedy", description="sample | greedy | beam"))
    beam = (integer(1, 8), Field(3, description="beam width (strategy beam)"))
    matrix = list[list[float]]
    words = (list[str], Field(description="words not in the vocabulary, read as <unk>"))
    enc_req = schema(name, "EncodeRequest", sentences=(Annotated[list[sentence], Field(min_length=1, max_length=n_sent)], ...))
    enc_res = schema(name, "EncodeResponse", mean=(matrix, ...), log_var=(matrix, ...), unknown=words)
    z_rows = rows_of(k, -model.z_bound, model.z_bound, min(fits(s, s.max_rows, NUMBER_BYTES * (k + 1)), s.max_samples),
                     f"latent codes: each row exactly {k} numbers")
    dec_req = schema(name, "DecodeRequest", z=(z_rows, ...))
    dec_res = schema(name, "DecodeResponse", sentences=(list[str], ...))
    gen_req = schema(name, "GenerateRequest",
                     n=(integer(1, min(s.max_samples, 64)), Field(8, description="sentences to generate")),
                     strategy=(Strategy, Field("sample", description="sample | greedy | beam")),
                     temperature=(number(1e-3, 10.0, "softmax temperature of sampling"), Field(1.0)),
                     beam_size=beam,
                     seed=(integer(0, SEED_MAX) | None, Field(None, description="random seed (default: fresh)")))
    gen_res = schema(name, "GenerateResponse", sentences=(list[str], ...), z=(matrix, ...), seed=(int, ...))
    rec_req = schema(name, "ReconstructRequest", sentence=(sentence, ...), strategy=strategy, beam_size=beam)
    rec_res = schema(name, "ReconstructResponse", sentence=(str, ...), z=(list[float], ...), unknown=words)
    itp_req = schema(name, "InterpolateRequest", a=(sentence, ...), b=(sentence, ...),
                     steps=(integer(2, min(s.max_steps, 32)), Field(8, description="points on the path, ends included")))
    itp_res = schema(name, "InterpolateResponse", sentences=(list[str], ...), z=(matrix, ...), t=(list[float], ...),
                     unknown=words)
    info = {"kind": "text", "latent_dim": k, "vocab_size": len(vocab), "max_len": model.max_len,
            "cell": config.model.cell, "dataset": config.data.name}
    served = ServedModel(name, "text", info)
    served.add(
        Operation("encode", "Posterior mean and log-variance of each sentence", enc_req, enc_res, model.run_encode,
                  lambda r: len(r.sentences), batchable=True),
        Operation("decode", "Greedy decoding of each latent code", dec_req, dec_res, model.run_decode,
                  lambda r: len(r.z), batchable=True),
        Operation("generate", "Sentences decoded from z ~ N(0, I)", gen_req, gen_res, model.run_generate),
        Operation("reconstruct", "A sentence through its posterior mean and back", rec_req, rec_res,
                  model.run_reconstruct),
        Operation("interpolate", "Greedy decodings on the line between two sentences' posterior means",
                  itp_req, itp_res, model.run_interpolate),
    )
    return served
