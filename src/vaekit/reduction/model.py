"""The model behind :class:`~vaekit.reduction.VAETransformer`: a VAE (Kingma & Welling 2014,
"Auto-Encoding Variational Bayes") whose training loss adds a contrastive neighbour-embedding
term on the posterior means.

A plain VAE with a 2-D latent keeps what it needs to reconstruct, not who is whose
neighbour: classes overlap in its latent map. Neighbour embeddings (t-SNE, van der Maaten &
Hinton 2008; UMAP, McInnes et al. 2018) keep neighbours but have no decoder, and t-SNE has
no map for new points. Here the encoder mean is the map, trained on both:

    loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)) + w * D * L_NCE

L_NCE is the InfoNCE loss with a heavy-tailed Student-t kernel
q(a, b) = (1 + |a - b|^2 / (alpha s^2))^(-alpha), the contrastive form of t-SNE (Damrich et
al. 2023, "From t-SNE to UMAP with contrastive learning"): each example x_i is paired with
one of its k nearest neighbours x_j in input space, and every other point of the batch is
a negative,

    L_NCE = -mean_i log q(mu_i, mu_j) / sum_{l != i} q(mu_i, mu_l).

alpha = 1 is t-SNE's Cauchy kernel; alpha < 1 has heavier tails, which separates clusters
further (Kobak et al. 2019, "Heavy-tailed kernels reveal a finer cluster structure in
t-SNE visualisations"); on MNIST alpha = 0.5 raised 2-D k-NN accuracy by about a point.
Parametric t-SNE (van der Maaten 2009) trained an encoder on the t-SNE loss alone; VAE-SNE
(Graving & Couzin 2020) added the ELBO. The N(0, I) prior fixes the scale of z, and the
kernel width s = 0.1 of that scale lets the map span tens of kernel widths, as t-SNE maps
do (a learned width converged towards it, but slowly). D (the number of features) keeps the
weight w comparable across data sets, since the reconstruction term grows with D.
``elbo`` still returns the true ELBO per example; only ``loss`` has the term.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from vaekit.builders import register
from vaekit.core import VAE, BernoulliLikelihood, GaussianLikelihood, LossOutput
from vaekit.core.networks import MLPDecoder, MLPEncoder
from vaekit.train import Tensors

KIND = "reduction"
GRAPH_DIMS = 50  # neighbours are found in the first 50 principal components (as t-SNE/UMAP practice)
KERNEL_SCALE = 0.1  # width s of the kernel, in units of the prior's scale


def contrastive_neighbor_loss(anchors: Tensor, positives: Tensor, scale: float = KERNEL_SCALE,
                              dof: float = 1.0) -> Tensor:
    """InfoNCE with a Student-t kernel over the 2B points of a batch (Damrich et al. 2023).

    Row i of ``anchors`` and row i of ``positives`` are neighbours in input space; each of
    the 2B points is a query whose positive is its partner and whose negatives are the
    2B - 2 other points. ``dof`` is the kernel's degrees of freedom alpha. The value is
    ``F.cross_entropy`` of the logits -alpha log(1 + |z_i - z_j|^2 / (alpha s^2)) with the
    diagonal masked; the gradient is written out (:class:`_StudentInfoNCE`), which takes
    half the time of autograd's on the (2B)^2 kernel matrix.
    """
    if anchors.shape != positives.shape or anchors.dim() != 2:
        raise ValueError(f"anchors and positives must have the same (B, d) shape, got "
                         f"{tuple(anchors.shape)} and {tuple(positives.shape)}")
    return _StudentInfoNCE.apply(torch.cat([anchors, positives]), float(scale), float(dof))


class _StudentInfoNCE(torch.autograd.Function):
    """loss = mean_i [log sum_{j != i} u_ij^-alpha + alpha log u_{i,t(i)}], u = 1 + sq / (alpha s^2).

    d loss / d sq_ij = -(p_ij - [j = t(i)]) / (n s^2 u_ij) with p the row softmax, and
    d sq_ij / d z_i = 2 (z_i - z_j); so grad z = 2 (diag(S 1) z - S z) with S = W + W^T.
    """

    @staticmethod
    def forward(ctx, z: Tensor, scale: float, dof: float) -> Tensor:
        n = z.shape[0]
        target = torch.arange(n, device=z.device).roll(n // 2)
        gram = z @ z.T
        norm = gram.diagonal().clone()
        # u = 1 + |z_i - z_j|^2 / (alpha s^2), built in place in the Gram matrix's storage
        u = gram.mul_(-2).add_(norm[:, None]).add_(norm[None, :]).clamp_(min=0)
        u.mul_(1.0 / (dof * scale * scale)).add_(1.0)
        q = u.pow(-dof)
        q.fill_diagonal_(0.0)
        row = q.sum(1)
        rows = torch.arange(n, device=z.device)
        loss = (row.log() + dof * u[rows, target].log()).mean()
        ctx.save_for_backward(z, u, q, row, target)
        ctx.scale = scale
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, u, q, row, target = ctx.saved_tensors
        n = z.shape[0]
        rows = torch.arange(n, device=z.device)
        w = q / row[:, None]  # the softmax p
        w.div_(u)
        w[rows, target] -= 1.0 / u[rows, target]
        w.mul_(-1.0 / (n * ctx.scale * ctx.scale))
        s = w + w.T
        grad_z = 2.0 * (s.sum(1)[:, None] * z - s @ z)
        return grad * grad_z, None, None


class NeighborVAE(VAE):
    """A VAE whose ``elbo`` on neighbour pairs (B, 2, D) adds the contrastive term.

    A batch of shape (B, D) gets the plain VAE objective (validation, scoring); a batch of
    shape (B, 2, D) holds each example and one of its neighbours (:class:`NeighborPairs`):
    the ELBO is taken on the first of each pair, the neighbour term on both.
    """

    def __init__(self, encoder, decoder, likelihood, latent_dim: int, n_features: int,
                 neighbor_weight: float = 1.0, kernel_dof: float = 1.0, config: dict | None = None):
        super().__init__(encoder, decoder, likelihood, latent_dim, config=config)
        self.n_features = n_features
        self.neighbor_weight = neighbor_weight
        self.kernel_dof = kernel_dof

    def elbo(self, x: Tensor, beta: float = 1.0, y: Tensor | None = None, free_bits: float = 0.0,
             eps: Tensor | None = None) -> LossOutput:
        if x.dim() != 3:
            return super().elbo(x, beta, y, free_bits, eps)
        anchors, positives = x[:, 0], x[:, 1]
        out = super().elbo(anchors, beta, y, free_bits, eps)
        if self.neighbor_weight <= 0 or anchors.shape[0] < 2:
            return out
        pos_mean, _ = self.encoder(positives)
        term = contrastive_neighbor_loss(out.posterior.mean, pos_mean, KERNEL_SCALE, self.kernel_dof)
        return dataclasses.replace(out, loss=out.loss + self.neighbor_weight * self.n_features * term)


class NeighborPairs(Tensors):
    """Training rows, each batch drawn with one random k-nearest neighbour per row.

    ``batch(idx)`` returns x of shape (B, 2, D): row i and one of its ``neighbors[i]``,
    chosen by a seeded generator so that training is reproducible.
    """

    def __init__(self, x: Tensor, neighbors: Tensor, seed: int):
        super().__init__(x)
        if neighbors.shape[0] != x.shape[0] or neighbors.dim() != 2 or neighbors.shape[1] < 1:
            raise ValueError(f"neighbors must have shape ({x.shape[0]}, k >= 1), got {tuple(neighbors.shape)}")
        self.neighbors = neighbors.long()
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, idx: Tensor) -> tuple[Tensor, None]:
        pick = torch.randint(self.neighbors.shape[1], (len(idx),), generator=self.generator)
        partner = self.neighbors[idx, pick]
        return torch.stack([self.x[idx], self.x[partner]], dim=1), None


def neighbor_graph(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of the ``k`` nearest other rows of each row, shape (N, k).

    Euclidean distances, in the first 50 principal components when there are more
    features (randomized PCA, seeded). Exact search (scikit-learn, brute force in chunks).
    """
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"need 1 <= k < number of rows, got k={k} for {n} rows")
    if x.shape[1] > GRAPH_DIMS and n > GRAPH_DIMS:
        x = PCA(GRAPH_DIMS, svd_solver="randomized", random_state=seed).fit_transform(x)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
    # drop each row itself; with duplicate rows the self index may be missing: drop the last
    is_self = idx == np.arange(n)[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    return idx[keep].reshape(n, k)


def description(n_features: int, n_components: int, hidden: list[int], activation: str,
                likelihood: str, neighbor_weight: float, kernel_dof: float = 1.0) -> dict:
    """The JSON-able model description that :func:`build_reduction_vae` turns into a model."""
    return {
        "kind": KIND,
        "n_features": int(n_features),
        "n_components": int(n_components),
        "hidden": [int(h) for h in hidden],
        "activation": activation,
        "likelihood": likelihood,
        "neighbor_weight": float(neighbor_weight),
        "kernel_dof": float(kernel_dof),
    }


@register(KIND)
def build_reduction_vae(desc: dict) -> NeighborVAE:
    """MLP encoder/decoder over flat feature vectors; Bernoulli or Gaussian p(x|z).

    The Gaussian has one learned scale shared by all features: its optimum is the RMS
    reconstruction error, so training minimises log MSE (the calibrated decoder of Rybkin
    et al. 2021) and the ELBO stays a proper density.
    """
    d, k = desc["n_features"], desc["n_components"]
    for name, v in (("n_features", d), ("n_components", k)):
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    hidden = list(desc["hidden"])
    if not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ValueError(f"hidden must be a list of positive integers, got {hidden!r}")
    enc = MLPEncoder((d,), hidden, k, activation=desc["activation"])
    dec = MLPDecoder(k, list(reversed(hidden)), (d,), activation=desc["activation"])
    if desc["likelihood"] == "bernoulli":
        lik = BernoulliLikelihood()
    elif desc["likelihood"] == "gaussian":
        lik = GaussianLikelihood(scale=None, n_features=1)
    else:
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {desc['likelihood']!r}")
    dof = float(desc.get("kernel_dof", 1.0))
    if not dof > 0:
        raise ValueError(f"kernel_dof must be > 0, got {dof!r}")
    return NeighborVAE(enc, dec, lik, k, d, float(desc.get("neighbor_weight", 1.0)), dof, config=desc)
