"""The molecule VAE: encoders, the property head's loss, and model files."""

import torch

from vaekit.core import VAE
from vaekit.molecules.model import ConvSequenceEncoder, build_molecule_vae, molecule_vae_description

MODEL = {"encoder": "conv", "cell": "gru", "embedding_dim": 8, "hidden": 16, "latent_dim": 4, "word_dropout": 0.0,
         "property_hidden": 8, "property_weight": 1.0}


def rows(batch=5, length=9, vocab=12):
    x = torch.randint(4, vocab, (batch, length))
    x[:, -1] = 2  # <eos>
    x[0, 4:] = 0  # a shorter molecule, padded
    x[0, 3] = 2
    return x


def test_conv_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = ConvSequenceEncoder(12, 8, 16, 4)
    x = rows()
    mean, _ = enc(x[:1])
    wider = torch.cat([x[:1], torch.zeros(1, 5, dtype=torch.long)], 1)
    assert torch.allclose(enc(wider)[0], mean, atol=1e-5)


def test_property_loss_enters_training_loss_only():
    torch.manual_seed(0)
    vae = build_molecule_vae(molecule_vae_description(12, MODEL, "smiles", ["qed", "logp"], [0.5, 2.0], [0.1, 1.0]))
    x, y = rows(), torch.randn(5, 2)
    eps = torch.randn(5, 4)
    with_y = vae.elbo(x, y=y, eps=eps)
    without = vae.elbo(x, eps=eps)
    assert torch.allclose(with_y.elbo, without.elbo)
    head = ((vae.property_head(with_y.posterior.mean) - y) ** 2).mean()
    assert torch.allclose(with_y.loss, without.loss + head)
    pred = vae.predict_properties(torch.zeros(3, 4))
    assert pred.shape == (3, 2)
    assert torch.allclose(pred, vae.property_head(torch.zeros(3, 4)) * torch.tensor([0.1, 1.0]) + torch.tensor([0.5, 2.0]))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    desc = molecule_vae_description(12, {**MODEL, "encoder": "gru"}, "selfies", ["plogp"], [0.0], [2.0])
    vae = build_molecule_vae(desc).eval()
    vae.save_pretrained(tmp_path)
    again = VAE.from_pretrained(tmp_path).eval()
    x = rows()
    assert type(again).__name__ == "PropertyVAE" and again.property_names == ["plogp"]
    assert torch.allclose(vae.encode(x).mean, again.encode(x).mean)
    assert torch.allclose(again.property_std, torch.tensor([2.0]))


def test_a_model_without_properties_has_no_head():
    vae = build_molecule_vae(molecule_vae_description(12, MODEL, "smiles", [], [], []))
    assert vae.property_head is None
    out = vae.elbo(rows())
    assert torch.isfinite(out.loss)
