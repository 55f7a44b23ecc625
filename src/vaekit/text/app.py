"""Text generation: train, evaluate and use a sentence VAE on Penn Treebank or a user's text.

The application reads sentences (:mod:`vaekit.text.data`), builds the vocabulary and the
networks (:mod:`vaekit.text.model`) and trains with the shared
:class:`vaekit.train.Trainer`. Evaluation follows the sentence-VAE literature (Bowman et
al. 2016; He et al. 2019): the test NLL per sentence by importance sampling (Burda et al.
2015), the perplexity exp(total NLL / number of target tokens, ``<eos>`` included), the
KL, the mutual information I(x; z) under q (Hoffman & Johnson 2016), and the active
units (Burda et al. 2015).
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from vaekit import runs
from vaekit.core import VAE
from vaekit.errors import DataError
from vaekit.io import is_run_of_kind, read_config, run_settings
from vaekit.metrics.elbo import elbo_pass
from vaekit.metrics.likelihood import iw_nll
from vaekit.text.config import TextConfig
from vaekit.text.data import SequenceTensors, by_length, encode, ptb_files, read_sentences
from vaekit.text.model import text_vae_description
from vaekit.text.vocab import PAD_ID, Vocabulary, tokenize
from vaekit.train.acceleration import pick_device
from vaekit.train.checkpoint import atomic_write_text


@dataclass
class TextData:
    train: SequenceTensors
    val: SequenceTensors
    test: SequenceTensors
    vocab: Vocabulary
    report: dict


def _sentences(config: TextConfig, only: str | None = None) -> tuple[dict[str, list], int | None]:
    """The sentences of each split ("train", "valid", "test"), or of split ``only``, and the
    vocabulary size cap. PTB's splits are its three files; a user's file is split with the seed."""
    d = config.data
    if d.name == "ptb":
        files = ptb_files()
        # Mikolov's PTB has exactly its 10k words (with <unk>): no cap, keep them all
        return {k: read_sentences(v) for k, v in files.items() if only in (None, k)}, None
    sentences = read_sentences(d.path, d.lowercase)
    g = torch.Generator().manual_seed(config.train.seed)
    order = torch.randperm(len(sentences), generator=g).tolist()
    n_hold = max(1, int(round(d.val_size * len(sentences))))
    if len(sentences) < 2 * n_hold + 1:
        raise DataError(f"{d.path}: {len(sentences)} sentences are too few to hold out "
                        f"{n_hold} for validation and {n_hold} for test")
    picks = {"valid": order[:n_hold], "test": order[n_hold : 2 * n_hold], "train": order[2 * n_hold :]}
    return {k: [sentences[i] for i in idx] for k, idx in picks.items() if only in (None, k)}, d.vocab_size


def load_text_data(config: TextConfig, vocab: Vocabulary | None = None, log: Callable[[str], None] = print) -> TextData:
    """Sentences -> id rows; the vocabulary is built from the training sentences unless given."""
    d = config.data
    parts, max_size = _sentences(config)
    if d.limit:
        parts["train"] = parts["train"][: d.limit]
    if vocab is None:
        vocab = Vocabulary.build(parts["train"], max_size, d.min_count if d.name == "text" else 1, d.lowercase)
    enc = {k: encode(v, vocab, d.max_len, k) for k, v in parts.items()}
    report = {k: e.report for k, e in enc.items()}
    if enc["train"].report["truncated_sentences"]:
        log(f"note: {enc['train'].report['truncated_sentences']} training sentences longer than "
            f"{d.max_len} words were truncated")
    return TextData(SequenceTensors(enc["train"].rows), SequenceTensors(by_length(enc["valid"].rows)),
                    SequenceTensors(by_length(enc["test"].rows)), vocab, report)


def load_held_out(config: TextConfig, vocab: Vocabulary, split: str) -> torch.Tensor:
    """The id rows of one held-out split ("valid" or "test"), sorted by length; reads and
    encodes only what that split needs (for PTB, one file)."""
    parts, _ = _sentences(config, only=split)
    return by_length(encode(parts[split], vocab, config.data.max_len, split).rows)


def text_run_config(run_dir: str | Path) -> TextConfig:
    return run_settings(run_dir, "text", TextConfig)


def is_text_run(run_dir: str | Path) -> bool:
    return is_run_of_kind(run_dir, "text")


def train(config: TextConfig, run_dir: str | Path, overwrite: bool = False, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] = print, command: str | None = None,
          callbacks: list[Callable[[dict], None]] | None = None) -> Path:
    """Train a sentence VAE (or, with ``model.use_z: false``, the language model) into ``run_dir``."""
    run_dir = Path(run_dir)
    if resume:
        runs.prepare(run_dir, resume=True)
        config = text_run_config(run_dir)
        document = read_config(run_dir)
        data = load_text_data(config, Vocabulary.load(run_dir, document), log)
    else:
        data = load_text_data(config, None, log)
        document = runs.describe_run(text_vae_description(len(data.vocab), config.model.model_dump()), config, command)
    with nullcontext() if resume else runs.create_run(run_dir, document, overwrite, data.vocab, data.report, log):
        return runs.train_run(document, config, data.train, data.val, run_dir, resume, callbacks, progress, log)


def load_run(run_dir: str | Path) -> tuple[VAE, TextConfig, Vocabulary]:
    document = read_config(run_dir)
    config = run_settings(run_dir, "text", TextConfig, document)
    vocab = Vocabulary.load(run_dir, document)
    model = VAE.from_pretrained(run_dir)
    return model.eval(), config, vocab


@torch.no_grad()
def evaluate(run_dir: str | Path, iw_samples: int | None = None, n_test: int | None = None, split: str = "test",
             progress: Callable[[int], None] | None = None, write: bool = True) -> dict:
    """Test NLL (IW, k samples), perplexity, KL, MI, active units; written to ``evaluation.json``."""
    model, config, vocab = load_run(run_dir)
    rows = load_held_out(config, vocab, "test" if split == "test" else "valid")
    if n_test:
        rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:n_test]]
        rows = by_length(rows)
    subset = SequenceTensors(rows)
    device = pick_device(config.train.device, None)
    model.to(device)
    subset.device = device
    k = iw_samples or config.eval.iw_samples
    use_z = model.decoder.use_z
    tokens = int((rows != PAD_ID).sum())
    stats = elbo_pass(model, subset, config.eval.batch_size)
    if use_z:
        nll = iw_nll(model, subset, k=k, chunk=min(k, config.eval.iw_chunk), batch_size=config.eval.batch_size,
                     on_batch=progress)
        total = float(nll.sum())
    else:  # the language model: log p(x) exactly, z is not used
        total = stats.reconstruction * stats.n
    model.cpu()
    n = stats.n
    result = {
        "split": split, "sentences": n, "target_tokens": tokens, "iw_samples": k if use_z else None,
        "nll": total / n, "ppl": math.exp(total / tokens), "elbo": stats.elbo, "kl": stats.kl,
        "mutual_info": stats.mutual_information() if use_z else 0.0,
        "active_units": stats.active_units if use_z else 0,
        "latent_dim": model.latent_dim, "uses_z": use_z,
    }
    if write:
        atomic_write_text(Path(run_dir) / "evaluation.json", json.dumps(result, indent=2))
        runs.write_model_card(Path(run_dir), result)
    return result


# -- using a trained model -------------------------------------------------------------
def sentence_ids(vocab: Vocabulary, sentence: str, max_len: int) -> tuple[torch.Tensor, list[str]]:
    """One sentence as a (1, T) id row, and the words that were not in the vocabulary."""
    tokens = tokenize(sentence, vocab.lowercase)
    if not tokens:
        raise DataError("the sentence is empty")
    if len(tokens) > max_len:  # encode() would cut it silently: the code would describe another sentence
        raise DataError(f"the sentence has {len(tokens)} words, more than the {max_len} this model reads: "
                        "shorten it")
    unknown = [t for t in tokens if t not in vocab.index]
    enc = encode([tokens], vocab, max_len)
    return enc.rows, unknown


def check_generation(strategy: str, temperature: float, beam_size: int) -> None:
    if strategy not in ("sample", "greedy", "beam"):
        raise DataError(f"strategy must be sample, greedy or beam, got {strategy!r}")
    if not temperature > 0:
        raise DataError(f"temperature must be > 0, got {temperature}")
    if beam_size < 1:
        raise DataError(f"beam size must be >= 1, got {beam_size}")


def decode_text(model: VAE, vocab: Vocabulary, z: torch.Tensor, max_len: int, strategy: str = "greedy",
                temperature: float = 1.0, beam_size: int = 5) -> list[str]:
    check_generation(strategy, temperature, beam_size)
    ids = model.decoder.generate(z, max_len, strategy, temperature, beam_size)
    return [" ".join(vocab.decode(row)) for row in ids]


@torch.no_grad()
def sample(model: VAE, vocab: Vocabulary, n: int, max_len: int, strategy: str = "sample",
           temperature: float = 1.0, beam_size: int = 5) -> list[str]:
    """Sentences decoded from z ~ N(0, I)."""
    if n < 1:
        raise DataError(f"number of samples must be >= 1, got {n}")
    return decode_text(model, vocab, torch.randn(n, model.latent_dim), max_len, strategy, temperature, beam_size)


@torch.no_grad()
def reconstruct(model: VAE, vocab: Vocabulary, sentence: str, max_len: int, strategy: str = "greedy",
                temperature: float = 1.0, beam_size: int = 5) -> tuple[str, list[str]]:
    """The decoding of the sentence's posterior mean, and its out-of-vocabulary words."""
    x, unknown = sentence_ids(vocab, sentence, max_len)
    z = model.encode(x).mean
    return decode_text(model, vocab, z, max_len, strategy, temperature, beam_size)[0], unknown


@torch.no_grad()
def interpolate(model: VAE, vocab: Vocabulary, a: str, b: str, steps: int, max_len: int,
                strategy: str = "greedy", beam_size: int = 5) -> tuple[list[str], list[str]]:
    """Greedy decodings along the line between two posterior means (Bowman et al. 2016, table 7)."""
    if steps < 2:
        raise DataError(f"steps must be >= 2, got {steps}")
    xa, unk_a = sentence_ids(vocab, a, max_len)
    xb, unk_b = sentence_ids(vocab, b, max_len)
    za, zb = model.encode(xa).mean, model.encode(xb).mean
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    return decode_text(model, vocab, (1 - t) * za + t * zb, max_len, strategy, 1.0, beam_size), unk_a + unk_b
