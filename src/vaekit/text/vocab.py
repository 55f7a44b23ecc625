"""A word vocabulary: tokens <-> ids, built from sentences, saved as JSON beside the model.

Ids 0-3 are the specials: ``<pad>`` (ignored by the likelihood), ``<bos>`` (the
decoder's first input), ``<eos>`` (the decoder's last target: a sentence's length is
part of what the model learns) and ``<unk>`` (out-of-vocabulary words, and the token
word dropout puts in the decoder's input; Bowman et al. 2016). Penn Treebank already
holds ``<unk>``: it is the same token.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from vaekit.errors import DataError, ModelFileError
from vaekit.train.checkpoint import atomic_write_text, read_json

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
VOCAB_FILE = "vocab.json"


def tokenize(sentence: str, lowercase: bool = False) -> list[str]:
    """Whitespace tokens (Penn Treebank is tokenized already); optionally lower-cased."""
    return (sentence.lower() if lowercase else sentence).split()


class Vocabulary:
    def __init__(self, tokens: list[str], lowercase: bool = False):
        if list(tokens[:4]) != list(SPECIALS):
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tokens[:4]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary holds each token once")
        self.tokens = list(tokens)
        self.lowercase = lowercase
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, sentences: Iterable[list[str]], max_size: int | None = None, min_count: int = 1,
              lowercase: bool = False) -> "Vocabulary":
        """The most frequent tokens (ties in first-seen order), at most ``max_size`` with the specials."""
        if max_size is not None and max_size <= len(SPECIALS):
            raise DataError(f"vocabulary size must be > {len(SPECIALS)} (the special tokens), got {max_size}")
        if min_count < 1:
            raise DataError(f"min_count must be >= 1, got {min_count}")
        counts = Counter(t for s in sentences for t in s if t not in SPECIALS)
        words = [w for w, c in counts.most_common() if c >= min_count]
        if max_size is not None:
            words = words[: max_size - len(SPECIALS)]
        if not words:
            raise DataError("no word occurs often enough to enter the vocabulary")
        return cls(list(SPECIALS) + words, lowercase)

    def encode(self, tokens: list[str]) -> tuple[list[int], int]:
        """Ids of the tokens and how many were unknown (mapped to ``<unk>``)."""
        ids = [self.index.get(t, UNK_ID) for t in tokens]
        unknown = sum(1 for t, i in zip(tokens, ids) if i == UNK_ID and t != UNK)
        return ids, unknown

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first ``<eos>``; padding and ``<bos>`` dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        return out

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / VOCAB_FILE
        atomic_write_text(path, json.dumps({"tokens": self.tokens, "lowercase": self.lowercase}))
        return path

    def fingerprint(self) -> str:
        """sha256 of the tokens and the case flag: ``config.json`` keeps it, so that a
        ``vocab.json`` from another run (the same size or not) is refused at load time
        instead of decoding every sentence into the wrong words."""
        doc = json.dumps({"tokens": self.tokens, "lowercase": self.lowercase}, separators=(",", ":"))
        return hashlib.sha256(doc.encode("utf-8")).hexdigest()

    @classmethod
    def load(cls, directory: str | Path, description: dict | None = None) -> "Vocabulary":
        """The vocabulary saved in ``directory``; with the model's ``description``
        (``config.json``), one that does not fit the model is refused: a size other than
        the model's ``vocab_size`` or, for runs that recorded it, another fingerprint."""
        path = Path(directory) / VOCAB_FILE
        doc = read_json(path, missing=f"{directory} is not a text or molecule run directory")
        try:
            lowercase = doc.get("lowercase", False)
            if not isinstance(lowercase, bool):
                raise TypeError(f"'lowercase' must be true or false, got {lowercase!r}")
            if not isinstance(doc["tokens"], list) or not all(isinstance(t, str) for t in doc["tokens"]):
                raise TypeError("'tokens' must be a list of strings")
            vocab = cls(doc["tokens"], lowercase)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelFileError(f"{path}: not a valid vocabulary ({e})") from None
        if description is not None:
            size, digest = description.get("vocab_size"), description.get("vocab_sha256")
            if size != len(vocab):
                raise ModelFileError(f"{path} holds {len(vocab)} tokens but the model in {directory} was trained "
                                     f"on {size} (config.json vocab_size): a vocabulary from another run?")
            if digest is not None and digest != vocab.fingerprint():
                raise ModelFileError(f"{path} is not the vocabulary the model in {directory} was trained with "
                                     "(its sha256 differs from config.json vocab_sha256): a file from another run?")
        return vocab
