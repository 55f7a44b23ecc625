"""One ELBO pass over a dataset: means that match the model's own ELBO, and a fixed seed."""

import torch

from vaekit.builders import build_vae, image_vae_description
from vaekit.config import build_config
from vaekit.metrics.elbo import elbo_pass
from vaekit.train import Tensors


def _model_and_data():
    cfg = build_config({"model": {"architecture": "mlp", "latent_dim": 3, "hidden": [16]}})
    torch.manual_seed(0)
    model = build_vae(image_vae_description(cfg.model, (1, 4, 4))).eval()
    return model, Tensors(torch.bernoulli(torch.rand(23, 1, 4, 4)))


def test_means_are_the_model_elbo_averaged_over_every_example():
    model, data = _model_and_data()
    stats = elbo_pass(model, data, batch_size=5, seed=3)
    torch.manual_seed(3)
    with torch.no_grad():
        outs = [model.elbo(data.x[i : i + 5]) for i in range(0, 23, 5)]  # the same batches, same stream
    assert stats.n == 23 and stats.means.shape == (23, 3) and stats.log_vars.shape == (23, 3)
    assert abs(stats.elbo - float(torch.cat([o.elbo for o in outs]).mean())) < 1e-4
    assert abs(stats.kl - float(torch.cat([o.kl for o in outs]).mean())) < 1e-5
    assert torch.allclose(stats.means, torch.cat([o.posterior.mean for o in outs]))
    assert torch.allclose(stats.kl_per_dim.sum(), torch.tensor(stats.kl), atol=1e-5)
    assert abs(stats.elbo - (-stats.reconstruction - stats.kl)) < 1e-4


def test_the_seed_fixes_the_numbers_and_leaves_the_global_stream_alone():
    model, data = _model_and_data()
    torch.manual_seed(11)
    before = torch.rand(1)
    torch.manual_seed(11)
    a = elbo_pass(model, data, seed=0)
    after = torch.rand(1)
    b = elbo_pass(model, data, seed=0)
    assert a.elbo == b.elbo and torch.equal(before, after)
    assert 0 <= a.active_units <= 3 and a.mutual_information() == b.mutual_information()
