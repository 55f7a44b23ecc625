"""The facts of DESIGN.md section 2, pinned for every architecture."""

import math

import pytest
import torch

from vaekit.builders import build_vae, image_vae_description
from vaekit.config import ModelConfig
from vaekit.core import BetaSchedule, DiagGaussian, free_bits_kl

ARCHS = ["mlp", "conv", "made"]


def make(arch, shape=(1, 8, 8), latent=4, n_classes=0, likelihood="bernoulli"):
    torch.manual_seed(0)
    cfg = ModelConfig(architecture=arch, latent_dim=latent, hidden=[32], channels=[8, 16],
                      likelihood=likelihood, conditional=n_classes > 0)
    return build_vae(image_vae_description(cfg, shape, n_classes))


def batch(n=16, shape=(1, 8, 8)):
    g = torch.Generator().manual_seed(1)
    return torch.bernoulli(torch.rand(n, *shape, generator=g), generator=g)


def test_analytic_kl_equals_monte_carlo():
    torch.manual_seed(0)
    q = DiagGaussian(torch.randn(3, 5), torch.randn(3, 5) * 0.5)
    z = q.rsample(200_000)
    mc = (q.log_prob(z) - (-0.5 * (math.log(2 * math.pi) + z**2).sum(-1))).mean(0)
    assert torch.allclose(q.kl_to_standard_normal().sum(-1), mc, atol=0.02)


@pytest.mark.parametrize("arch", ARCHS)
def test_iw_bound_above_elbo_and_rising_in_k(arch):
    model = make(arch).eval()
    x = batch()
    torch.manual_seed(0)
    elbo = torch.stack([model.elbo(x).elbo for _ in range(200)]).mean(0)
    bounds = []
    for k in (1, 10, 100):
        torch.manual_seed(0)
        bounds.append(torch.stack([model.iwae_bound(x, k, chunk=7) for _ in range(max(1, 200 // k))]).mean(0))
    assert torch.allclose(bounds[0], elbo, atol=0.5)  # k=1 is the ELBO in expectation
    assert (bounds[1] >= elbo - 0.2).all()
    assert bounds[2].mean() >= bounds[1].mean() >= bounds[0].mean()


@pytest.mark.parametrize("arch", ARCHS)
def test_beta_one_gives_the_elbo(arch):
    model = make(arch)
    x = batch()
    torch.manual_seed(3)
    out = model.elbo(x, beta=1.0)
    assert torch.allclose(out.loss, -out.elbo.mean(), atol=1e-5)
    assert torch.allclose(out.elbo, -out.reconstruction - out.kl)
    torch.manual_seed(3)
    out2 = model.elbo(x, beta=0.5)
    assert torch.allclose(out2.loss, (out2.reconstruction + 0.5 * out2.kl).mean(), atol=1e-5)


def test_free_bits_bound():
    kl = torch.tensor([[0.01, 2.0, 0.3], [0.03, 1.0, 0.1]])
    bounded = free_bits_kl(kl, 0.5).mean()
    expected = max(0.5, 0.02) + max(0.5, 1.5) + max(0.5, 0.2)
    assert math.isclose(bounded.item(), expected, rel_tol=1e-6)
    assert torch.equal(free_bits_kl(kl, 0.0), kl.sum(-1))


@pytest.mark.parametrize("arch", ARCHS)
def test_kl_gradient_nonzero_and_train_step_lowers_loss(arch):
    model = make(arch)
    x = batch()
    out = model.elbo(x)
    out.kl.mean().backward()
    grads = [p.grad.abs().sum() for p in model.encoder.parameters() if p.grad is not None]
    assert sum(grads) > 0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss_at():
        torch.manual_seed(5)
        return model.elbo(x).loss

    before = loss_at().item()
    for _ in range(5):
        opt.zero_grad()
        loss_at().backward()
        opt.step()
    assert loss_at().item() < before


@pytest.mark.parametrize("arch", ARCHS)
def test_conditional_and_generation_shapes(arch):
    model = make(arch, n_classes=3).eval()
    x, y = batch(6), torch.tensor([0, 1, 2, 0, 1, 2])
    assert model.elbo(x, y=y).elbo.shape == (6,)
    assert model.sample(4, y=torch.tensor([1, 1, 1, 1])).shape == (4, 1, 8, 8)
    assert model.reconstruct(x, y).shape == x.shape
    assert model.interpolate(x[0], x[1], steps=5, y=y[:2]).shape == (5, 1, 8, 8)


def test_gaussian_likelihood_learned_and_fixed():
    x = torch.rand(4, 1, 8, 8)
    fixed = make("mlp", likelihood="gaussian")
    assert fixed.elbo(x).elbo.shape == (4,)
    params = torch.zeros_like(x)
    # fixed unit scale: -log p = 0.5 * sum(x^2) + 0.5 * D log(2 pi)
    expected = -(0.5 * (x**2).flatten(1).sum(1) + 0.5 * 64 * math.log(2 * math.pi))
    from vaekit.core import GaussianLikelihood
    assert torch.allclose(GaussianLikelihood(1.0, event_dims=3).log_prob(x, params), expected)
    learned = GaussianLikelihood(None, n_features=64, event_dims=3)
    assert learned.log_scale.requires_grad


@pytest.mark.parametrize("kind", ["constant", "linear", "sigmoid", "cyclical"])
def test_beta_schedules_reach_their_value(kind):
    s = BetaSchedule(kind, value=0.8, start=0.0, warmup_steps=100, cycles=2, ratio=0.5)
    assert s(10_000) == pytest.approx(0.8)
    if kind != "constant":
        assert s(0) < 0.1
    if kind == "cyclical":
        assert s(50) == pytest.approx(0.8) and s(100) == pytest.approx(0.0)
    assert all(0 <= s(t) <= 0.8 + 1e-9 for t in range(0, 400, 7))


def test_iwae_training_objective_is_a_bound():
    model = make("mlp")
    x = batch()
    torch.manual_seed(0)
    out = model.iwae_loss(x, k=20)
    out.loss.backward()
    assert out.elbo.shape == (16,) and torch.isfinite(out.loss)


def test_bernoulli_log_prob_stays_fp32_under_bf16_autocast():
    from vaekit.core import BernoulliLikelihood

    torch.manual_seed(0)
    x = torch.bernoulli(torch.rand(8, 784))
    logits = torch.randn(8, 784) * 3
    ref = BernoulliLikelihood().log_prob(x, logits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = BernoulliLikelihood().log_prob(x, logits)
    assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=1e-3)


def test_bernoulli_log_prob_is_the_same_for_one_x_per_row_and_for_k_samples():
    """Two code paths (fused BCE per row, one reduction over k samples) give the torch value."""
    from vaekit.core import BernoulliLikelihood

    torch.manual_seed(0)
    x = torch.bernoulli(torch.rand(5, 1, 4, 4))
    logits = (torch.randn(3, 5, 1, 4, 4) * 3).requires_grad_()
    lik = BernoulliLikelihood(event_dims=3)
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x.expand_as(logits)).flatten(2).sum(-1)
    k_samples = lik.log_prob(x, logits)
    per_row = torch.stack([lik.log_prob(x, logits[i]) for i in range(3)])
    assert torch.allclose(k_samples, ref, atol=1e-5) and torch.allclose(per_row, ref, atol=1e-5)
    g1, = torch.autograd.grad(k_samples.sum(), logits)
    g2, = torch.autograd.grad(per_row.sum(), logits)
    assert torch.allclose(g1, g2, atol=1e-6)


def test_one_pass_bernoulli_form_for_compiled_importance_sampling_is_exact_to_fp32_rounding():
    """The compiled k-samples form (one exp a pixel, the log of 16 factors' product) against
    float64, over logits from -60 to 60, eagerly and compiled; 784 pixels use the groups,
    36 pixels (not a multiple of 16) the one-factor fallback."""
    from vaekit.core.distributions import _bernoulli_log_prob_one_pass
    from vaekit.train.acceleration import COMPILE_OPTIONS

    g = torch.Generator().manual_seed(0)
    for d in (784, 36):
        x = torch.bernoulli(torch.rand(7, d, generator=g))
        logits = torch.cat([torch.randn(4, 7, d, generator=g) * 8, torch.linspace(-60, 60, 7 * d).view(1, 7, d)])
        ref = (logits.double() * x.double() - torch.nn.functional.softplus(logits.double())).sum(-1)
        eager = _bernoulli_log_prob_one_pass(logits, x)
        compiled = torch.compile(_bernoulli_log_prob_one_pass, options=COMPILE_OPTIONS)(logits, x)
        assert eager.shape == (5, 7) and eager.dtype == torch.float32
        assert (eager.double() - ref).abs().max() < 1e-6 * ref.abs().max() + 1e-3
        assert torch.allclose(compiled, eager, rtol=1e-5, atol=1e-3)


def test_one_pass_bernoulli_training_form_has_the_bce_value_and_gradient():
    """Compiled training steps use the one-pass form with its analytic gradient x - sigmoid(l):
    value and gradient against float64 BCE, for one x per row and for k samples of logits
    against one x (the IWAE objective), eagerly and compiled."""
    from vaekit.core.distributions import _BernoulliOnePass
    from vaekit.train.acceleration import COMPILE_OPTIONS

    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.rand(6, 64, generator=g))
    compiled = torch.compile(lambda p, x: _BernoulliOnePass.apply(p, x), options=COMPILE_OPTIONS)
    for shape in ((6, 64), (3, 6, 64)):
        base = torch.randn(*shape, generator=g) * 6
        ref_p = base.double().requires_grad_()
        ref = (ref_p * x.double() - torch.nn.functional.softplus(ref_p)).sum(-1)
        weights = torch.rand(ref.shape, generator=g, dtype=torch.float64)
        (ref * weights).sum().backward()
        for fn in (_BernoulliOnePass.apply, compiled):
            p = base.clone().requires_grad_()
            out = fn(p, x)
            (out * weights.float()).sum().backward()
            assert out.shape == ref.shape
            assert torch.allclose(out.double(), ref.detach(), atol=1e-3)
            assert torch.allclose(p.grad.double(), ref_p.grad, atol=1e-5)
