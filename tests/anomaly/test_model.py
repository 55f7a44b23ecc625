"""MaskedVAE: the M-ELBO equals the ELBO when everything is observed, and masked entries
have no influence on the objective."""

import math

import pytest
import torch

from vaekit.anomaly.model import MaskedGaussian, detector_description, pack
from vaekit.builders import build_vae
from vaekit.io import from_pretrained, save_pretrained


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_vae(detector_description(6, [16], 3, "decoder"))


def test_m_elbo_is_the_elbo_when_all_observed(model):
    x = pack(torch.randn(8, 6))
    eps = torch.randn(8, 3)
    out = model.elbo(x, eps=eps)
    q = model.encode(x)
    z = q.mean + q.std * eps
    log_px = model.likelihood.log_prob(x, model.decode(z))
    assert torch.allclose(out.elbo, log_px - q.kl_to_standard_normal().sum(-1), atol=1e-5)


def test_masked_entries_do_not_change_the_objective(model):
    values = torch.randn(8, 6)
    mask = torch.ones(8, 6)
    mask[:, 2] = 0
    other = values.clone()
    other[:, 2] = 100.0
    eps = torch.randn(8, 3)
    a = model.elbo(pack(values, mask), eps=eps).loss
    b = model.elbo(pack(other, mask), eps=eps).loss
    assert torch.allclose(a, b)


def test_prior_weight_is_the_observed_ratio(model):
    """Donut's M-ELBO: with half the points missing, log p(z) counts half."""
    values, mask = torch.randn(4, 6), torch.ones(4, 6)
    mask[:, :3] = 0
    x = pack(values, mask)
    q = model.encode(x)
    lw = model.log_weights(x, 1, q=q, eps=torch.zeros(1, 4, 3))
    z = q.mean.unsqueeze(0)
    expected = model.likelihood.log_prob(x, model.decode(z)) + 0.5 * model.prior.log_prob(z) - q.log_prob(z)
    assert torch.allclose(lw, expected, atol=1e-5)


def test_iw_bound_is_above_the_elbo(model):
    x = pack(torch.randn(16, 6))
    torch.manual_seed(1)
    elbo = torch.stack([model.elbo(x).elbo for _ in range(200)]).mean(0)
    assert (model.iwae_bound(x, 200) >= elbo - 1e-3).all()


def test_likelihood_floor_and_gaussian_log_prob():
    lik = MaskedGaussian(2, "feature", min_scale=0.5)
    mean, std = lik.split(torch.zeros(1, 2))
    assert (std >= 0.5).all()
    x = pack(torch.tensor([[1.0, -1.0]]))
    expected = sum(-0.5 * (math.log(2 * math.pi) + (v / s) ** 2) - math.log(s) for v, s in zip([1.0, -1.0], std[0].tolist()))
    assert lik.log_prob(x, torch.zeros(1, 2)).item() == pytest.approx(expected, rel=1e-5)


def test_save_and_load_through_the_lazy_builder(model, tmp_path):
    save_pretrained(model, tmp_path)
    again = from_pretrained(tmp_path)
    x = pack(torch.randn(3, 6))
    assert torch.allclose(again.encode(x).mean, model.encode(x).mean)
