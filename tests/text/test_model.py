"""The sentence VAE's networks: shapes with importance samples, word dropout, generation, LM mode."""

import pytest
import torch

from vaekit.builders import build_vae
from vaekit.text.model import text_vae_description
from vaekit.text.vocab import EOS_ID, PAD_ID, UNK_ID

MODEL = {"cell": "gru", "embedding_dim": 8, "hidden": 16, "latent_dim": 4, "bidirectional": True,
         "word_dropout": 0.5, "use_z": True, "tie_weights": False}


def make(**changes):
    torch.manual_seed(0)
    return build_vae(text_vae_description(12, {**MODEL, **changes}))


def batch():
    return torch.tensor([[4, 5, 6, EOS_ID], [7, EOS_ID, PAD_ID, PAD_ID]])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_elbo_and_iw_bound_have_per_sentence_shapes(cell):
    model = make(cell=cell)
    out = model.elbo(batch())
    assert out.elbo.shape == (2,) and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.encoder.embed.weight.grad is not None
    model.eval()
    bound = model.iwae_bound(batch(), k=7, chunk=3)
    assert bound.shape == (2,) and (bound <= 0).all()


def test_padding_does_not_change_a_sentence_likelihood():
    model = make().eval()
    x = torch.tensor([[7, EOS_ID]])
    z = torch.zeros(1, 4)
    short = model.likelihood.log_prob(x, model.decode(z, x))
    padded_x = torch.tensor([[7, EOS_ID, PAD_ID, PAD_ID]])
    padded = model.likelihood.log_prob(padded_x, model.decode(z, padded_x))
    assert torch.allclose(short, padded, atol=1e-6)


def test_word_dropout_only_in_training():
    model = make(word_dropout=0.99)
    x = batch()
    z = torch.zeros(2, 4)
    model.eval()
    a, b = model.decode(z, x), model.decode(z, x)
    assert torch.equal(a, b)  # deterministic without dropout
    model.train()
    seen = {}

    def record(_module, inputs):
        seen["tokens"] = inputs[0]

    handle = model.decoder.embed.register_forward_pre_hook(record)
    model.decode(z, x)
    handle.remove()
    assert (seen["tokens"][:, 1:][x[:, :-1] != PAD_ID] == UNK_ID).float().mean() > 0.5
    assert (seen["tokens"][:, 0] != UNK_ID).all()  # <bos> is never dropped


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_generation_returns_token_ids_without_specials(strategy):
    model = make().eval()
    rows = model.decoder.generate(torch.randn(3, 4), max_len=6, strategy=strategy, temperature=0.7, beam_size=3)
    assert len(rows) == 3
    for row in rows:
        assert len(row) <= 6 and EOS_ID not in row and PAD_ID not in row


def test_bad_generation_settings():
    model = make().eval()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.decoder.generate(torch.randn(1, 4), strategy="sample", temperature=0.0)
    with pytest.raises(ValueError, match="strategy must be"):
        model.decoder.generate(torch.randn(1, 4), strategy="nucleus")


def test_language_model_ignores_z():
    model = make(use_z=False).eval()
    x = batch()
    a = model.decode(torch.randn(2, 4), x)
    b = model.decode(torch.randn(2, 4), x)
    assert torch.equal(a, b)


def test_tied_output_layer_shares_the_embedding():
    model = make(tie_weights=True)
    names = dict(model.decoder.named_parameters())
    assert "out.weight" not in names and "project.weight" in names
    out = model.elbo(batch())
    out.loss.backward()
    assert model.decoder.embed.weight.grad is not None
    rows = model.eval().decoder.generate(torch.randn(2, 4), max_len=5, strategy="greedy")
    assert len(rows) == 2
