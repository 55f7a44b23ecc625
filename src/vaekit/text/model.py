"""The sentence VAE's networks (Bowman et al. 2016, "Generating Sentences from a Continuous Space").

- :class:`SentenceEncoder`: word embeddings, a GRU or LSTM (bidirectional by default)
  over the sentence, its last states -> the mean and log-variance of q(z|x).
- :class:`SentenceDecoder`: an autoregressive GRU/LSTM language model conditioned on z
  twice: its initial state is tanh(W z) and z is concatenated to every input step, so the
  path from z to each word is short (the "z at every step" of Yang et al. 2017 and He et
  al. 2019). Word dropout (Bowman et al. 2016) replaces a share of the decoder's input
  words by ``<unk>`` during training, which weakens the decoder's own history and pushes
  information into z. With ``use_z=False`` the same decoder is the plain language model
  the VAE is compared to.

Both plug into :class:`vaekit.core.VAE` with the core's pad-aware categorical likelihood:
the decoder returns logits (..., B, T, V) for targets x (B, T) (teacher forcing), and z
may carry a leading sample dimension (k, B, L) for the importance-weighted bound.
Generation (:meth:`SentenceDecoder.generate`) is greedy, sampled with a temperature, or
beam search.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from vaekit.builders import register
from vaekit.core import VAE, CategoricalLikelihood
from vaekit.core.networks import GaussianHead
from vaekit.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class SentenceEncoder(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int, latent_dim: int, cell: str = "gru",
                 bidirectional: bool = True):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.rnn = CELLS[cell](embedding_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.head = GaussianHead(hidden * (2 if bidirectional else 1), latent_dim)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        lengths = (x != PAD_ID).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embed(x), lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # (directions, B, H)
        return self.head(torch.cat(list(h), dim=-1))


class SentenceDecoder(nn.Module):
    autoregressive = True

    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int, latent_dim: int, cell: str = "gru",
                 word_dropout: float = 0.0, use_z: bool = True, tie_weights: bool = False):
        super().__init__()
        self.cell, self.hidden, self.latent_dim = cell, hidden, latent_dim
        self.word_dropout, self.use_z, self.tie_weights = float(word_dropout), bool(use_z), bool(tie_weights)
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.init = nn.Linear(latent_dim, hidden) if use_z else None
        self.rnn = CELLS[cell](embedding_dim + (latent_dim if use_z else 0), hidden, batch_first=True)
        if tie_weights:
            # the output layer shares the input embedding (Press & Wolf 2017; Inan et al. 2017):
            # logits = (W h) E^T + b, fewer parameters and a softmax of embedding_dim, not hidden
            self.project = nn.Linear(hidden, embedding_dim)
            self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        else:
            self.out = nn.Linear(hidden, vocab_size)

    def logits(self, h: Tensor) -> Tensor:
        if self.tie_weights:
            return F.linear(self.project(h), self.embed.weight, self.out_bias)
        return self.out(h)

    def initial_state(self, z: Tensor):
        if self.use_z:
            h = torch.tanh(self.init(z)).unsqueeze(0)
        else:
            h = z.new_zeros(1, z.shape[0], self.hidden)
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def step_inputs(self, tokens: Tensor, z: Tensor) -> Tensor:
        e = self.embed(tokens)
        if not self.use_z:
            return e
        return torch.cat([e, z.unsqueeze(1).expand(-1, tokens.shape[1], -1).to(e.dtype)], -1)

    def forward(self, z: Tensor, x: Tensor, cond: Tensor | None = None) -> Tensor:
        lead = z.shape[:-1]
        if z.dim() == 3:  # (k, B, L): k importance samples per sentence
            k, b = z.shape[:2]
            z = z.reshape(k * b, -1)
            x = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, -1)
        inputs = torch.cat([x.new_full((x.shape[0], 1), BOS_ID), x[:, :-1]], 1)
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(inputs.shape, device=x.device) < self.word_dropout) & (inputs != PAD_ID)
            drop[:, 0] = False  # <bos> stays
            inputs = inputs.masked_fill(drop, UNK_ID)
        out, _ = self.rnn(self.step_inputs(inputs, z), self.initial_state(z))
        logits = self.logits(out)
        return logits.reshape(*lead, *logits.shape[1:])

    @torch.no_grad()
    def generate(self, z: Tensor, max_len: int = 60, strategy: str = "sample", temperature: float = 1.0,
                 beam_size: int = 5) -> list[list[int]]:
        """Token ids (without ``<eos>``) of one sentence per row of z."""
        if strategy == "beam":
            return [self._beam(z[i : i + 1], max_len, beam_size) for i in range(z.shape[0])]
        if strategy not in ("sample", "greedy"):
            raise ValueError(f"strategy must be sample, greedy or beam, got {strategy!r}")
        if strategy == "sample" and not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        # rows leave the batch as they finish, so a batch costs the sum of its lengths,
        # not its size times its longest member
        b = z.shape[0]
        state = self.initial_state(z)
        token = torch.full((b, 1), BOS_ID, dtype=torch.long, device=z.device)
        rows = torch.arange(b, device=z.device)  # the row of z of each sentence still going
        out = torch.full((b, max_len + 1), EOS_ID, dtype=torch.long, device=z.device)
        for t in range(max_len + 1):
            h, state = self.rnn(self.step_inputs(token, z), state)
            logits = self.logits(h[:, -1])
            logits[:, PAD_ID] = logits[:, BOS_ID] = -float("inf")
            if strategy == "greedy":
                nxt = logits.argmax(-1)
            else:
                nxt = torch.distributions.Categorical(logits=logits / temperature).sample()
            out[rows, t] = nxt
            going = nxt != EOS_ID
            if not going.all():
                if not going.any():
                    break
                rows, z, nxt = rows[going], z[going], nxt[going]
                state = tuple(s[:, going] for s in state) if isinstance(state, tuple) else state[:, going]
            token = nxt.unsqueeze(1)
        ids = out.tolist()
        return [row[: row.index(EOS_ID)] if EOS_ID in row else row[:max_len] for row in ids]

    def _beam(self, z: Tensor, max_len: int, beam_size: int) -> list[int]:
        """Beam search for one z: the finished hypothesis of the highest log-probability."""
        if beam_size < 1:
            raise ValueError(f"beam size must be >= 1, got {beam_size}")
        beams = [([], 0.0, self.initial_state(z))]
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_len + 1):
            candidates = []
            for tokens, score, state in beams:
                last = torch.tensor([[tokens[-1] if tokens else BOS_ID]], device=z.device)
                h, new_state = self.rnn(self.step_inputs(last, z), state)
                logp = F.log_softmax(self.logits(h[:, -1]), -1)[0]
                logp[PAD_ID] = logp[BOS_ID] = -float("inf")
                top = torch.topk(logp, beam_size)
                for lp, t in zip(top.values.tolist(), top.indices.tolist()):
                    candidates.append((tokens + [t], score + lp, new_state))
            candidates.sort(key=lambda c: c[1], reverse=True)
            beams = []
            for tokens, score, state in candidates:
                if tokens[-1] == EOS_ID:
                    finished.append((tokens[:-1], score))
                elif len(beams) < beam_size:
                    beams.append((tokens, score, state))
            if len(finished) >= beam_size or not beams:
                break
        if not finished:
            finished = [(t, s) for t, s, _ in beams]
        return max(finished, key=lambda f: f[1])[0][:max_len]


def text_vae_description(vocab_size: int, model: dict) -> dict:
    return {"kind": "text", "vocab_size": int(vocab_size), "model": dict(model)}


@register("text")
def build_text_vae(description: dict) -> VAE:
    m, v = description["model"], int(description["vocab_size"])
    enc = SentenceEncoder(v, m["embedding_dim"], m["hidden"], m["latent_dim"], m["cell"], m["bidirectional"])
    dec = SentenceDecoder(v, m["embedding_dim"], m["hidden"], m["latent_dim"], m["cell"], m["word_dropout"],
                          m["use_z"], m.get("tie_weights", False))
    return VAE(enc, dec, CategoricalLikelihood(pad_id=PAD_ID), m["latent_dim"], config=description)
