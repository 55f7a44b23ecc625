"""The importance-weighted NLL estimator: chunking, compiling and its fallback change
nothing but float rounding."""

import torch

from vaekit.builders import build_vae, image_vae_description
from vaekit.config import ModelConfig
from vaekit.metrics import likelihood
from vaekit.metrics.likelihood import CompiledIWChunk, iw_nll
from vaekit.train import Tensors


def _model_and_data(side: int = 6):
    torch.manual_seed(0)
    model = build_vae(image_vae_description(ModelConfig(latent_dim=4, hidden=[16]), (1, side, side))).eval()
    x = torch.bernoulli(torch.rand(12, 1, side, side, generator=torch.Generator().manual_seed(1)))
    return model, Tensors(x)


def test_chunk_size_changes_only_the_monte_carlo_noise():
    model, data = _model_and_data()
    a = iw_nll(model, data, k=2000, chunk=2000, batch_size=5, compile=False)
    b = iw_nll(model, data, k=2000, chunk=7, batch_size=5, compile=False)
    assert torch.isfinite(a).all() and (a > 0).all()
    assert (a - b).abs().max() < 0.1  # the two estimates differ by their sampling error only


def test_compiled_estimate_matches_eager():
    for side in (6, 8):  # 36 pixels; 64 pixels, where the compiled likelihood groups 16 a log
        model, data = _model_and_data(side)
        eager = iw_nll(model, data, k=40, chunk=20, batch_size=6, compile=False)
        compiled = iw_nll(model, data, k=40, chunk=20, batch_size=6, compile=True)
        assert torch.allclose(eager, compiled, atol=1e-3)


def test_compiler_failure_falls_back_to_eager_once(monkeypatch):
    model, data = _model_and_data()
    messages = []

    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(likelihood.torch, "compile", broken)
    step = CompiledIWChunk(model, log=messages.append)
    q = model.encode(data.x[:3])
    eps = torch.randn(5, 3, 4)
    total = torch.zeros(3)
    out = step(total, data.x[:3], None, q, eps)
    again = step(total, data.x[:3], None, q, eps)
    assert torch.allclose(out, model.merge_chunk(total, data.x[:3], None, q, eps))
    assert torch.allclose(out, again)
    assert len(messages) == 1 and "torch.compile failed (RuntimeError: no C++ compiler)" in messages[0]


def test_auto_compiles_only_large_evaluations(monkeypatch):
    model, data = _model_and_data()
    built = []

    class Recorded:
        def __init__(self, m):
            built.append(m)
            self.merge_chunk = m.merge_chunk

        def __call__(self, *args):
            return self.merge_chunk(*args)

    monkeypatch.setattr(likelihood, "CompiledIWChunk", Recorded)
    iw_nll(model, data, k=10)
    assert built == []
    monkeypatch.setattr(likelihood, "COMPILE_WORTH_IT", 100)
    iw_nll(model, data, k=10)
    assert built == [model]


def test_compiled_estimates_follow_changes_of_the_weights(capsys):
    """Compiled graphs are kept across evaluations of a model (dynamo's cache); they must
    read the weights as they are at each call, never as they were when compiled."""
    model, data = _model_and_data(8)

    def both():
        eager = iw_nll(model, data, k=40, chunk=20, batch_size=6, compile=False)
        return eager, iw_nll(model, data, k=40, chunk=20, batch_size=6, compile=True)

    before, compiled = both()
    assert torch.allclose(before, compiled, atol=1e-3)
    assert "torch.compile" not in capsys.readouterr().err  # compiled indeed: no fallback to eager
    changes = [
        lambda: [p.mul_(1.5) for p in model.parameters()],
        lambda: [p.data.mul_(0.5) for p in model.parameters()],
        lambda: model.load_state_dict({k: v * 1.2 for k, v in model.state_dict().items()}),
    ]
    for change in changes:
        with torch.no_grad():
            change()
        eager, compiled = both()
        assert not torch.allclose(eager, before, atol=1e-2)  # the change moved the estimate
        assert torch.allclose(eager, compiled, atol=1e-3)
        before = eager
