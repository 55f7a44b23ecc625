"""The neighbour term, the neighbour graph and the pair batches behind VAETransformer."""

import numpy as np
import pytest
import torch

from vaekit.reduction.model import (
    KERNEL_SCALE,
    NeighborPairs,
    build_reduction_vae,
    contrastive_neighbor_loss,
    description,
    neighbor_graph,
)


def test_neighbor_graph_matches_brute_force_and_excludes_self():
    x = np.random.RandomState(0).randn(40, 5)
    g = neighbor_graph(x, 4, seed=0)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    expected = np.argsort(d, axis=1)[:, :4]
    assert g.shape == (40, 4)
    assert all(set(g[i]) == set(expected[i]) for i in range(40))


def test_neighbor_graph_with_duplicate_rows_never_lists_a_row_twice():
    x = np.repeat(np.random.RandomState(0).randn(5, 3), 4, axis=0)
    g = neighbor_graph(x, 3, seed=0)
    assert all(i not in g[i] and len(set(g[i])) == 3 for i in range(len(x)))


def test_neighbor_graph_uses_principal_components_for_wide_data():
    x = np.random.RandomState(0).randn(120, 80)
    assert neighbor_graph(x, 5, seed=0).shape == (120, 5)
    with pytest.raises(ValueError):
        neighbor_graph(x[:3], 3, seed=0)


def test_contrastive_loss_prefers_neighbours_close_together():
    torch.manual_seed(0)
    a = torch.randn(64, 2) * 3
    for dof in (0.5, 1.0):
        close = contrastive_neighbor_loss(a, a + 0.01 * torch.randn(64, 2), 1.0, dof)
        far = contrastive_neighbor_loss(a, a[torch.randperm(64)], 1.0, dof)
        assert close < far
    # log(2B - 1) is the loss of a kernel that cannot tell points apart
    assert float(contrastive_neighbor_loss(torch.zeros(8, 2), torch.zeros(8, 2))) == pytest.approx(np.log(15))


def test_pairs_get_the_elbo_plus_the_neighbour_term_and_single_rows_the_plain_elbo():
    torch.manual_seed(0)
    model = build_reduction_vae(description(6, 2, [8], "relu", "gaussian", 0.5, kernel_dof=0.7))
    x = torch.randn(10, 6)
    partner = torch.randn(10, 6)
    eps = torch.randn(10, 2)
    plain = model.elbo(x, eps=eps)
    paired = model.elbo(torch.stack([x, partner], 1), eps=eps)
    torch.testing.assert_close(paired.elbo, plain.elbo)
    term = contrastive_neighbor_loss(plain.posterior.mean, model.encoder(partner)[0], KERNEL_SCALE, 0.7)
    torch.testing.assert_close(paired.loss, plain.loss + 0.5 * 6 * term)


def test_neighbor_pairs_batches_are_seeded_pairs_of_neighbours():
    x = torch.arange(12.0).reshape(6, 2)
    graph = torch.tensor([[1, 2], [0, 2], [3, 1], [2, 4], [5, 3], [4, 0]])
    a, b = NeighborPairs(x, graph, seed=1), NeighborPairs(x, graph, seed=1)
    idx = torch.tensor([0, 3, 5])
    xa, _ = a.batch(idx)
    xb, _ = b.batch(idx)
    assert xa.shape == (3, 2, 2) and torch.equal(xa, xb)
    assert torch.equal(xa[:, 0], x[idx])
    rows = (xa[:, 1, 0] / 2).long()
    assert all(int(r) in graph[int(i)].tolist() for r, i in zip(rows, idx))
    with pytest.raises(ValueError):
        NeighborPairs(x, graph[:3], seed=0)


def test_builder_refuses_bad_descriptions():
    good = description(4, 2, [8], "relu", "bernoulli", 1.0)
    for key, value in [("n_features", 0), ("hidden", [0]), ("likelihood", "poisson"), ("kernel_dof", 0)]:
        with pytest.raises(ValueError):
            build_reduction_vae({**good, key: value})


def _reference_loss(anchors, positives, scale, dof):
    """The same loss through autograd: cross-entropy of the masked Student-t logits."""
    z = torch.cat([anchors, positives])
    b = anchors.shape[0]
    logits = -dof * torch.log1p(torch.cdist(z, z).pow(2) / (dof * scale**2))
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return torch.nn.functional.cross_entropy(logits, target)


@pytest.mark.parametrize("scale, dof", [(0.1, 0.5), (1.0, 1.0), (0.3, 4.5)])
def test_written_out_gradient_equals_autograd(scale, dof):
    torch.manual_seed(0)
    a = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    b = (a.detach() + 0.3 * torch.randn(7, 3, dtype=torch.float64)).requires_grad_()
    fast = contrastive_neighbor_loss(a, b, scale, dof)
    ref = _reference_loss(a, b, scale, dof)
    torch.testing.assert_close(fast, ref)
    ga, gb = torch.autograd.grad(fast, (a, b))
    ra, rb = torch.autograd.grad(ref, (a, b))
    torch.testing.assert_close(ga, ra)
    torch.testing.assert_close(gb, rb)
    assert torch.autograd.gradcheck(lambda x, y: contrastive_neighbor_loss(x, y, scale, dof), (a, b))
