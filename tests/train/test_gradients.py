"""Gradient clipping and the non-finite gradient check of a training step (train/gradients.py)."""

import math

import torch

from vaekit.train.gradients import clip_gradients


def _params(*grads):
    params = [torch.zeros(len(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float32)
    return params


def test_clips_the_total_norm_to_the_bound():
    params = _params([3.0, 0.0], [0.0, 4.0])  # total norm 5
    assert clip_gradients(params, 1.0)
    total = math.sqrt(sum(float((p.grad**2).sum()) for p in params))
    assert abs(total - 1.0) < 1e-5
    assert torch.allclose(params[0].grad, torch.tensor([0.6, 0.0]))


def test_leaves_gradients_below_the_bound_alone():
    params = _params([3.0, 0.0], [0.0, 4.0])
    assert clip_gradients(params, 100.0) and clip_gradients(params, None)
    assert torch.equal(params[1].grad, torch.tensor([0.0, 4.0]))


def test_reports_non_finite_gradients():
    for bad in (float("nan"), float("inf")):
        assert not clip_gradients(_params([1.0, bad]), 5.0)
        assert not clip_gradients(_params([1.0, bad]), None)


def test_parameters_without_gradients_are_fine():
    p = torch.zeros(2, requires_grad=True)
    assert clip_gradients([p], 1.0)


def test_norm_matches_torch_and_a_lone_square_beyond_fp32_is_still_finite():
    torch.manual_seed(0)
    grads = [torch.randn(400, 784) * 1e-2, torch.randn(400), torch.randn(20, 400) * 3.0]
    params = _params(*[g.flatten().tolist() for g in grads])
    expected = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    assert clip_gradients(params, expected / 2)
    clipped = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    assert abs(clipped - expected / 2) < 1e-4 * expected
    # 3e19 squared overflows fp32, but the gradient is finite and gets clipped
    params = _params([3e19])
    assert clip_gradients(params, 1.0) and abs(float(params[0].grad) - 1.0) < 1e-6
