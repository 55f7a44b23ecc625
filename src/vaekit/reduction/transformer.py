"""``VAETransformer``: dimensionality reduction with a variational autoencoder, as a
scikit-learn transformer (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

``transform`` is the posterior mean E_q[z|x] of the encoder, so a fitted model maps new rows
in one forward pass (t-SNE has no such map; UMAP's ``transform`` optimises each new point
against the training graph). ``inverse_transform`` is the decoder mean and
``score_samples`` the ELBO of each row. The training loss adds a contrastive
neighbour-embedding term (Damrich et al. 2023) that keeps input-space neighbours together
in z; see :mod:`vaekit.reduction.model`. Training is the project's one loop,
:class:`vaekit.Trainer`.

Model files are ``config.json`` + ``model.safetensors`` (:meth:`VAETransformer.save`,
:meth:`VAETransformer.load`), never pickle. ``pickle`` and ``clone`` of the estimator
itself work as scikit-learn expects (in memory).
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from vaekit.config import BetaConfig, TrainConfig
from vaekit.core import DiagGaussian
from vaekit.reduction.model import NeighborPairs, NeighborVAE, build_reduction_vae, description, neighbor_graph
from vaekit.train import Tensors, Trainer

SCORE_SAMPLES = 16  # posterior samples per row in score_samples (the same 16 for every row)
CHUNK = 8192  # rows per forward pass at inference
AUTO_STEPS = 6000  # gradient steps aimed at by max_iter="auto"
AUTO_MAX_EPOCHS = 200


def auto_neighbor_weight(n_components: int) -> float:
    """The default weight of the neighbour term: strong for 2-D maps, light in 10-D."""
    return 3.0 if n_components <= 2 else (2.0 / n_components) ** 2


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Reduce X to ``n_components`` dimensions with a VAE that keeps neighbours together.

    Parameters
    ----------
    n_components : int, default=2
        Size of the latent code z. Values larger than the number of features are allowed
        (an overcomplete code) but warned about; values <= 0 are refused.
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Encoder hidden layers; the decoder mirrors them.
    activation : {"relu", "tanh", "elu", "gelu", "silu"}, default="relu"
    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        p(x|z). "auto" picks Bernoulli for binary data (every value 0 or 1) and Gaussian
        for every other real-valued X, grey levels in [0, 1] included: a Bernoulli
        likelihood is not a density for continuous values in [0, 1] (Loaiza-Ganem &
        Cunningham 2019, "The continuous Bernoulli") and its flat optimum gives blurred
        reconstructions; "bernoulli" may still be chosen for any X in [0, 1]. The Gaussian
        works on data centred per feature and divided by one global scale (feature ratios
        are kept, as in PCA; put a ``StandardScaler`` first to weigh features equally) and
        learns one noise scale shared by all features, so that it fits the mean squared
        error (Rybkin et al. 2021).
    beta : float, default=1.0
        Weight of KL(q(z|x) || p(z)); 1 gives the true ELBO (Higgins et al. 2017 for beta != 1).
    neighbor_weight : float or "auto", default="auto"
        Weight w of the contrastive neighbour term, per feature (the term is multiplied by
        the number of features, as the reconstruction term grows with it); 0 trains a
        plain VAE. "auto" is 3 for a 1-D or 2-D map and (2 / n_components)^2 above it
        (0.44 at 3 dimensions, 0.04 at 10). The crowding that the term corrects is a
        problem of low-dimensional maps (van der Maaten & Hinton 2008, section 3.2): on
        MNIST a 2-D map's k-NN accuracy rises from 0.89 at weight 1 to 0.92 at weight 3
        while the reconstruction stays better than PCA's, whereas at 10 dimensions a
        weight of 0.1 or more already costs trustworthiness and reconstruction (see the
        README's reduction benchmark).
    kernel_dof : float, default=0.5
        Degrees of freedom alpha of the Student-t kernel of the neighbour term: 1 is
        t-SNE's Cauchy kernel, smaller values have heavier tails and separate clusters
        more (Kobak et al. 2019).
    n_neighbors : int, default=15
        Size of the k-nearest-neighbour graph of the training rows.
    batch_size : int, default=512
        Rows per gradient step (capped at the number of rows). Every other row of a batch
        is a negative example of the neighbour term, so larger batches separate better.
    learning_rate : float, default=3e-3
        Adam step size.
    max_iter : int or "auto", default="auto"
        Number of epochs. "auto" aims at about 6000 gradient steps, between 10 and 200
        epochs (75 epochs for 20,000 rows).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when the validation ELBO has
        not improved for ``n_iter_no_change`` epochs; the best weights are kept.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    device : str, default="cpu"
        Where to train ("cpu", "cuda", "cuda:N", "auto"). The fitted model lives on the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batches, the neighbour draws and the noise; an int gives
        the same model on every run (on CPU).
    verbose : bool, default=False
        Show a progress bar and per-epoch summaries.

    Attributes
    ----------
    vae_ : NeighborVAE
        The fitted model (a :class:`vaekit.VAE`).
    likelihood_ : str
        "bernoulli" or "gaussian".
    neighbor_weight_ : float
        The weight of the neighbour term used.
    mean_ : ndarray of shape (n_features_in_,)
        Per-feature offset subtracted before encoding (zeros for Bernoulli).
    scale_ : float
        Global scale the centred data are divided by (1 for Bernoulli).
    n_iter_ : int
        Epochs run.
    history_ : list of dict
        One record per epoch from the trainer (losses, KL, active units, ...).
    n_features_in_, feature_names_in_
        As in scikit-learn.

    Notes
    -----
    The embedding is ``transform(X)``, the posterior mean. ``transform(X, sample=True)``
    draws z ~ q(z|x) instead. Sparse input is accepted and densified (memory: rows x
    features). Complex, non-finite, 1-D and empty input is refused with a ``ValueError``.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "tanh", "elu", "gelu", "silu"})],
        "likelihood": [StrOptions({"auto", "bernoulli", "gaussian"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "neighbor_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "kernel_dof": [Interval(Real, 0, None, closed="neither")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, n_components=2, *, hidden_layer_sizes=(256, 128), activation="relu",
                 likelihood="auto", beta=1.0, neighbor_weight="auto", kernel_dof=0.5, n_neighbors=15, batch_size=512,
                 learning_rate=3e-3, max_iter="auto", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, device="cpu", random_state=None, verbose=False):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.beta = beta
        self.neighbor_weight = neighbor_weight
        self.kernel_dof = kernel_dof
        self.n_neighbors = n_neighbors
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn plumbing -------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components

    def _validate(self, X, reset: bool) -> np.ndarray:
        X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc", "coo"),
                          dtype=[np.float64, np.float32])
        return X.toarray() if sp.issparse(X) else X

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the VAE to X (n_samples, n_features); ``y`` is ignored."""
        self._validate_params()
        X = self._validate(X, reset=True)
        hidden = [int(h) for h in np.atleast_1d(np.asarray(self.hidden_layer_sizes))]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}")
        n, d = X.shape
        if self.n_components > d:
            warnings.warn(f"n_components={self.n_components} is larger than the number of features "
                          f"({d}): the code is overcomplete", UserWarning, stacklevel=2)
        rng = check_random_state(self.random_state)
        self.seed_ = int(rng.randint(np.iinfo(np.int32).max))
        self.likelihood_ = self._pick_likelihood(X)
        self.neighbor_weight_ = (auto_neighbor_weight(self.n_components) if self.neighbor_weight == "auto"
                                 else float(self.neighbor_weight))
        if self.likelihood_ == "gaussian":
            self.mean_ = X.mean(axis=0).astype(np.float64)
            spread = float(np.sqrt(np.mean((X - self.mean_) ** 2)))
            self.scale_ = spread if spread > 0 and math.isfinite(spread) else 1.0
        else:
            self.mean_ = np.zeros(d)
            self.scale_ = 1.0
        x = torch.from_numpy(self._normalize(X))
        train_idx, val_idx = self._split(n, rng)
        desc = description(d, self.n_components, hidden, self.activation, self.likelihood_,
                           self.neighbor_weight_, self.kernel_dof)
        with torch.random.fork_rng(devices=[]):  # the caller's torch RNG is left as it was
            torch.manual_seed(self.seed_)
            model = build_reduction_vae(desc)
            result = self._train(model, x, train_idx, val_idx)
        self.vae_ = model.cpu().eval()
        self.n_iter_ = max(1, result.epochs)
        self.history_ = [{k: v for k, v in r.items() if not isinstance(v, list)} for r in result.history]
        return self

    def _pick_likelihood(self, X: np.ndarray) -> str:
        if self.likelihood == "auto":
            return "bernoulli" if X.size and np.all((X == 0) | (X == 1)) else "gaussian"
        if self.likelihood == "bernoulli" and not (X.size and X.min() >= 0 and X.max() <= 1):
            raise ValueError(f"likelihood='bernoulli' needs every value in [0, 1]; X ranges over "
                             f"[{X.min():.4g}, {X.max():.4g}] (use 'gaussian' or 'auto')")
        return self.likelihood

    def _split(self, n: int, rng) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.early_stopping:
            return np.arange(n), None
        n_val = int(round(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 2:
            raise ValueError(f"early_stopping with validation_fraction={self.validation_fraction} "
                             f"needs more than {n} rows (at least 1 validation and 2 training rows)")
        order = rng.permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _epochs(self, n_train: int, batch: int) -> int:
        if self.max_iter != "auto":
            return int(self.max_iter)
        steps = math.ceil(n_train / batch)
        return int(min(AUTO_MAX_EPOCHS, max(10, math.ceil(AUTO_STEPS / steps))))

    def _train(self, model: NeighborVAE, x: torch.Tensor, train_idx, val_idx):
        n_train = len(train_idx)
        batch = min(self.batch_size, n_train)
        config = TrainConfig(
            epochs=self._epochs(n_train, batch), batch_size=batch, lr=self.learning_rate,
            patience=self.n_iter_no_change if self.early_stopping else None, seed=self.seed_,
            beta=BetaConfig(value=self.beta), device=self.device,
        )
        x_train = x[torch.from_numpy(train_idx)]
        k = min(self.n_neighbors, n_train - 1)
        if self.neighbor_weight_ > 0 and k >= 1:
            graph = torch.from_numpy(neighbor_graph(x_train.numpy(), k, self.seed_))
            train = NeighborPairs(x_train, graph, self.seed_ + 3)
        else:
            train = Tensors(x_train)
        val = None if val_idx is None else Tensors(x[torch.from_numpy(val_idx)])
        best = _BestWeights(model)
        trainer = Trainer(model, config, train, val, progress=bool(self.verbose),
                          log=print if self.verbose else _quiet, callbacks=[best] if val is not None else [])
        result = trainer.fit()
        best.restore()
        return result

    # -- the maps --------------------------------------------------------------------
    def _normalize(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _out(self, t: torch.Tensor, like: np.ndarray) -> np.ndarray:
        dtype = np.float32 if like.dtype == np.float32 else np.float64
        return t.numpy().astype(dtype, copy=False)

    def transform(self, X, *, sample: bool = False, random_state=None):
        """Posterior means E_q[z|x], shape (n_samples, n_components).

        With ``sample=True``, one draw z ~ q(z|x) per row instead (seeded by ``random_state``).
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        x = torch.from_numpy(self._normalize(X))
        gen = torch.Generator().manual_seed(int(check_random_state(random_state).randint(2**31 - 1))) if sample else None
        parts = []
        with torch.no_grad():
            for i in range(0, len(x), CHUNK):
                q = self.vae_.encode(x[i:i + CHUNK])
                if sample:
                    eps = torch.randn(q.mean.shape, generator=gen)
                    parts.append(q.rsample(eps=eps))
                else:
                    parts.append(q.mean)
        z = torch.cat(parts) if parts else torch.zeros(0, self.n_components)
        return self._out(z.double(), X)

    def inverse_transform(self, X):
        """Decoder means E[x|z] for codes X (n_samples, n_components), in the input's units."""
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(f"X has {Z.shape[1]} features, but inverse_transform expects "
                             f"{self.n_components} (n_components)")
        z = torch.from_numpy(Z.astype(np.float32))
        with torch.no_grad():
            rec = torch.cat([self.vae_.generate(z[i:i + CHUNK]) for i in range(0, len(z), CHUNK)])
        out = rec.double().numpy() * self.scale_ + self.mean_
        return out.astype(Z.dtype, copy=False)

    def score_samples(self, X):
        """ELBO of each row in nats (a lower bound on log p(x)), in the input's units.

        E_q[log p(x|z)] is averaged over 16 posterior draws that use the same standard
        normal noise for every row, so a row's score does not depend on the other rows.
        For the Gaussian, the log-Jacobian of the internal scaling is included.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        x = torch.from_numpy(self._normalize(X))
        eps = torch.randn(SCORE_SAMPLES, self.n_components, generator=torch.Generator().manual_seed(self.seed_))
        scores = []
        with torch.no_grad():
            for i in range(0, len(x), CHUNK):
                xb = x[i:i + CHUNK]
                q = self.vae_.encode(xb)
                z = q.mean + q.std * eps[:, None, :]
                # sums in float64: a float32 sum's rounding depends on how rows are batched
                params = self.vae_.decoder(z).double()
                log_px = self.vae_.likelihood.log_prob(xb.double(), params).mean(0)
                kl = DiagGaussian(q.mean.double(), q.log_var.double()).kl_to_standard_normal()
                scores.append(log_px - kl.sum(-1))
        elbo = (torch.cat(scores) if scores else torch.zeros(0)).double().numpy()
        return elbo - X.shape[1] * math.log(self.scale_)

    def score(self, X, y=None):
        """Mean ELBO per row (nats)."""
        return float(np.mean(self.score_samples(X)))

    # -- files -----------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write ``config.json`` (model, settings, scaling) and ``model.safetensors``."""
        from vaekit.reduction.files import save_transformer

        return save_transformer(self, directory)

    @classmethod
    def load(cls, directory) -> "VAETransformer":
        """A fitted transformer from a directory written by :meth:`save`."""
        from vaekit.reduction.files import load_transformer

        return load_transformer(directory)


class _BestWeights:
    """Trainer callback: keep the weights of the epoch with the lowest validation loss."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.best = math.inf
        self.state: dict | None = None

    def __call__(self, record: dict) -> None:
        loss = record.get("val_loss")
        if loss is not None and loss < self.best:
            self.best = loss
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)


def _quiet(message: str) -> None:
    pass
