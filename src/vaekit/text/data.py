"""Sentences from files: Penn Treebank (Mikolov's version) or any one-sentence-per-line text.

A sentence becomes a row of token ids ending with ``<eos>`` and padded with ``<pad>``
to the longest kept length; sentences longer than ``max_len`` words are truncated and
counted. :class:`SequenceTensors` cuts every batch to its own longest sentence, so the
recurrent networks and the 10,000-way softmax never run over padding columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaekit.data import require_file
from vaekit.errors import DataError
from vaekit.text.vocab import EOS_ID, PAD_ID, Vocabulary, tokenize
from vaekit.train import Tensors


def read_sentences(path: str | Path, lowercase: bool = False) -> list[list[str]]:
    """Tokenized non-empty lines of a UTF-8 text file (blank lines are skipped).

    Refused with the file and line named: a missing or empty file, bytes that are not
    UTF-8, and binary content (NUL bytes). A last line without a newline is read as usual.
    """
    path = require_file(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty (expected one sentence per line)")
    sentences = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if b"\x00" in line:
            raise DataError(f"{path}: line {number} holds NUL bytes: a binary file, not text")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: line {number} is not UTF-8 text ({e.reason} at byte {e.start} of the line)") from None
        tokens = tokenize(text, lowercase)
        if tokens:
            sentences.append(tokens)
    if not sentences:
        raise DataError(f"{path}: no sentence (every line is blank)")
    return sentences


class SequenceTensors(Tensors):
    """Padded token rows whose batches are trimmed to their longest sentence.

    ``device`` (evaluation only; the trainer moves its own batches) puts each batch there.
    """

    device: torch.device | None = None
    bucket_batches = 50  # batches per pool of similar lengths

    def epoch_order(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Shuffled batches of similar lengths (a bucket iterator): the rows are shuffled,
        each pool of ``bucket_batches`` batches is sorted by length and cut into batches,
        and the batches are shuffled; the last, partial batch stays last. Random batches
        of PTB would spend about half of every step on padding."""
        perm = torch.randperm(len(self), generator=generator)
        lengths = (self.x[perm] != PAD_ID).sum(1)
        pool = batch * self.bucket_batches
        ordered = torch.cat([perm[i : i + pool][torch.argsort(lengths[i : i + pool], stable=True)]
                             for i in range(0, len(perm), pool)])
        batches = list(ordered.split(batch))
        tail = [batches.pop()] if len(batches[-1]) < batch else []
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return torch.cat(shuffled + tail)

    def batch(self, idx: torch.Tensor):
        x, y = super().batch(idx)
        if x.shape[0]:
            longest = int((x != PAD_ID).sum(1).max())
            x = x[:, : max(longest, 1)]
        if self.device is not None:
            x = x.to(self.device)
        return x, y


@dataclass
class EncodedText:
    rows: torch.Tensor  # (N, T) int64 ids, each row ending with <eos>, then <pad>
    report: dict = field(default_factory=dict)


def encode(sentences: list[list[str]], vocab: Vocabulary, max_len: int, where: str = "") -> EncodedText:
    """Id rows of at most ``max_len`` words plus ``<eos>``; truncations and unknown words counted."""
    if max_len < 1:
        raise DataError(f"max_len must be >= 1, got {max_len}")
    if not sentences:
        raise DataError(f"{where or 'text'}: no sentence to encode")
    truncated = unknown = words = 0
    ids = []
    for s in sentences:
        if len(s) > max_len:
            truncated += 1
            s = s[:max_len]
        row, unk = vocab.encode(s)
        unknown += unk
        words += len(s)
        ids.append(row + [EOS_ID])
    width = max(len(r) for r in ids)
    rows = torch.full((len(ids), width), PAD_ID, dtype=torch.long)
    for i, r in enumerate(ids):
        rows[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    report = {"sentences": len(ids), "words": words, "tokens_with_eos": words + len(ids),
              "truncated_sentences": truncated, "max_len": max_len, "unknown_words": unknown}
    return EncodedText(rows, report)


def by_length(rows: torch.Tensor) -> torch.Tensor:
    """Rows sorted by length (evaluation order: trimmed batches then hold little padding)."""
    lengths = (rows != PAD_ID).sum(1)
    return rows[torch.argsort(lengths, stable=True)]


def ptb_files() -> dict[str, Path]:
    from vaekit.data.fetch import fetch

    files = fetch("ptb")
    return {"train": files["ptb.train.txt"], "valid": files["ptb.valid.txt"], "test": files["ptb.test.txt"]}
