"""Image datasets for the image application: MNIST, scikit-learn's digits, or a user's own images.

Splits: MNIST keeps its official 10,000 test images and holds out the last
``val_size`` share of a seeded permutation of the 60,000 training images for early
stopping; digits and custom data are split train/val/test (80/10/10 by default) with the
seed. With the Bernoulli likelihood, ``binarize: dynamic`` resamples binary pixels from
the grey levels at every step (Burda et al. 2015) while validation and test images are
binarized once with a fixed seed; ``static`` binarizes everything once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vaekit.config import DataConfig, RunConfig
from vaekit.data.fetch import fetch
from vaekit.data.idx import read_idx
from vaekit.data.images import read_images, to_nchw
from vaekit.errors import DataError
from vaekit.train import Tensors

EVAL_BINARIZE_SEED = 1234


@dataclass
class ImageData:
    name: str
    train: Tensors
    val: Tensors
    test: Tensors
    shape: tuple[int, ...]
    n_classes: int
    dynamic: bool  # training batches need dynamic binarization

    def transform(self):
        return dynamic_binarize if self.dynamic else None


class DynamicBinarize:
    """Dynamic binarization (Salakhutdinov & Murray 2008, as in Burda et al. 2015): every
    time an image is seen, pixel i is drawn as 1 with probability x_i.

    The randomness is 16 bits a pixel, drawn as 64-bit words (four pixels a word), so
    P(1) = x_i to within 2^-16. The words come from NumPy's SFC64 generator (Small Fast
    Chaotic, which passes BigCrush and PractRand), seeded for each batch from the
    trainer's torch generator, so that generator's state (which checkpoints hold) still
    decides every draw. For 1024 MNIST images the draw takes ~0.45 ms, against ~0.66 ms for
    torch's 64-bit integers and ~1.9 ms for its float uniforms, and the threshold ~0.5 ms
    eagerly, ~0.28 ms compiled (``benchmarks/step_costs.py``). Drawing (``noise``) is kept
    apart from thresholding (``apply``) so that a compiled training step compiles the
    threshold while the draw stays on the trainer's seeded generator. A NaN pixel stays NaN so the
    trainer's non-finite guard sees it.
    """

    def noise(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Uniform 16-bit integers shaped like ``x`` (-32768 ... 32767), held as int32.

        Drawn as int16 and widened: inductor's CPU code generator does not vectorize int16
        loads, so a compiled threshold reading int16 runs as a scalar loop (2.2 ms for 1024
        MNIST images) where it reads int32 with SIMD (0.28 ms; ``benchmarks/step_costs.py``);
        the widening costs ~0.1 ms.
        """
        n = x.numel()
        seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
        words = np.random.SFC64(seed).random_raw((n + 3) // 4)  # uint64
        return torch.from_numpy(words.view(np.int16)[:n]).view(x.shape).to(torch.int32)

    def apply(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The binary image for drawn ``noise``: branch-free, so a compiled step can fuse it.

        noise + 32768 is uniform on {0, ..., 65535}; the pixel is 1 when it is below 65536 x,
        i.e. when d = (65536 x - 32768) - noise > 0, so P(1) = x to within 2^-16. The last
        subtraction gives d's sign exactly; clamp(d, 0, 1) then ceil maps it to 0/1 in place
        and leaves a NaN pixel NaN (for the trainer's non-finite guard). Computed in fp32
        whatever x's dtype (bf16 could not hold 65536 x - 32768). ~1.6x faster than a
        comparison followed by a bool-to-float cast (``benchmarks/step_costs.py``); a test
        checks both give the same images for all 65,536 draws.
        """
        return (x.float() * 65536).sub_(32768).sub_(noise).clamp_(0, 1).ceil_().to(x.dtype)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.noise(x, generator))


dynamic_binarize = DynamicBinarize()


def _binarize_once(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def load_raw(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(train_x, train_y, test_x, test_y); test arrays are None where the set has no test split."""
    if cfg.name == "mnist":
        files = fetch("mnist")
        x = to_nchw(read_idx(files["train-images-idx3-ubyte.gz"]), "mnist train")
        y = read_idx(files["train-labels-idx1-ubyte.gz"]).astype(np.int64)
        tx = to_nchw(read_idx(files["t10k-images-idx3-ubyte.gz"]), "mnist test")
        ty = read_idx(files["t10k-labels-idx1-ubyte.gz"]).astype(np.int64)
        return x, y, tx, ty
    if cfg.name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64), None, None
    if cfg.name == "images":
        if not cfg.path:
            raise DataError("dataset 'images' needs a data path (--data PATH)")
        x, y = read_images(cfg.path)
        return x, y, None, None
    raise DataError(f"unknown image dataset {cfg.name!r}; use mnist, digits or images")


def load_image_data(config: RunConfig) -> ImageData:
    cfg, seed = config.data, config.train.seed
    x, y, tx, ty = load_raw(cfg)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = max(1, int(round(cfg.val_size * len(x))))
    if tx is None:  # no official test split: carve one out of the same permutation
        n_test = n_val
        if len(x) < n_val + n_test + 1:
            raise DataError(f"dataset has {len(x)} examples: too few to split train/val/test")
        test_idx, order = order[:n_test], order[n_test:]
        tx, ty = x[test_idx], None if y is None else y[test_idx]
    val_idx, train_idx = order[:n_val], order[n_val:]
    if cfg.limit:
        train_idx = train_idx[: cfg.limit]
    bernoulli = config.model.likelihood == "bernoulli"
    if bernoulli and (x.min() < 0 or x.max() > 1):
        raise DataError(f"Bernoulli likelihood needs pixels in [0, 1], data range is [{x.min():.3g}, {x.max():.3g}]")
    binarize = cfg.binarize if bernoulli else "none"
    parts = {"train": (x[train_idx], y), "val": (x[val_idx], y), "test": (tx, ty)}
    idx = {"train": train_idx, "val": val_idx, "test": None}
    sets = {}
    for i, (split, (arr, labels)) in enumerate(parts.items()):
        if binarize == "static" or (binarize == "dynamic" and split != "train"):
            arr = _binarize_once(arr, EVAL_BINARIZE_SEED + i)
        lab = None
        if labels is not None:
            lab = torch.from_numpy(labels if idx[split] is None else labels[idx[split]])
        sets[split] = Tensors(torch.from_numpy(np.ascontiguousarray(arr)), lab)
    n_classes = int(y.max()) + 1 if y is not None else 0
    return ImageData(cfg.name, sets["train"], sets["val"], sets["test"], tuple(x.shape[1:]), n_classes,
                     binarize == "dynamic")
