"""The settings of a text run: a preset with ``application: text`` (see ``configs/ptb.yaml``).

The training section is the shared :class:`vaekit.config.TrainConfig` (optimizer, beta
schedule with linear, sigmoid or cyclical annealing, free bits, time limit), so a text
run trains, checkpoints and resumes like every other run.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from vaekit.config import SearchParam, TrainConfig, _Strict, validated


class TextDataConfig(_Strict):
    name: Literal["ptb", "text"] = Field("ptb", description="ptb (Penn Treebank, Mikolov) | text (a file: path)")
    path: Optional[str] = Field(None, description="text: one sentence per line, UTF-8")
    max_len: PositiveInt = Field(60, description="longer sentences are truncated to this many words (counted)")
    vocab_size: PositiveInt = Field(10_000, description="text: at most this many tokens, specials included")
    min_count: PositiveInt = Field(1, description="text: a word enters the vocabulary from this many occurrences")
    lowercase: bool = Field(False, description="text: lower-case every word")
    val_size: float = Field(0.05, gt=0, lt=0.5, description="text: share of the sentences held out (valid and test)")
    limit: Optional[PositiveInt] = Field(None, description="use only the first N training sentences")

    @model_validator(mode="after")
    def _check(self):
        if self.name == "text" and not self.path:
            raise ValueError("data.name 'text' needs data.path (or --data FILE)")
        if self.vocab_size <= 4:
            raise ValueError(f"data.vocab_size must be > 4 (the special tokens), got {self.vocab_size}")
        return self


class TextModelConfig(_Strict):
    cell: Literal["gru", "lstm"] = "gru"
    embedding_dim: PositiveInt = 256
    hidden: PositiveInt = Field(512, description="recurrent state size (encoder per direction, decoder)")
    latent_dim: PositiveInt = 32
    bidirectional: bool = Field(True, description="bidirectional encoder")
    word_dropout: float = Field(0.25, ge=0, lt=1, description="share of decoder inputs replaced by <unk> (Bowman)")
    use_z: bool = Field(True, description="false: the plain language model (the reference)")
    tie_weights: bool = Field(True, description="output layer shares the decoder's word embedding (Press & Wolf 2017)")


class TextEvalConfig(_Strict):
    iw_samples: PositiveInt = Field(500, description="importance samples for the test NLL")
    iw_chunk: PositiveInt = Field(50, description="samples per chunk in the IW estimator")
    batch_size: PositiveInt = Field(50, description="sentences per evaluation batch")


class TextConfig(_Strict):
    application: Literal["text"] = "text"
    data: TextDataConfig = TextDataConfig()
    model: TextModelConfig = TextModelConfig()
    train: TrainConfig = TrainConfig()
    eval: TextEvalConfig = TextEvalConfig()
    search: dict[str, SearchParam] = Field(default_factory=dict)


def build_text_config(data: dict, overrides: list[str] = ()) -> TextConfig:
    return validated(TextConfig, data, overrides)
