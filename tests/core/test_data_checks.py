"""Data a model cannot score is refused where it enters, naming the problem: the Python
API's misuse (NumPy arrays, one example for a batch, the wrong shape, pixels outside [0, 1],
NaN, labels out of range) gets a DataError, not torch's shape errors or meaningless numbers."""

import numpy as np
import pytest
import torch

from vaekit import Tensors, Trainer
from vaekit.builders import build_vae, image_vae_description
from vaekit.config import ModelConfig, TrainConfig
from vaekit.errors import DataError
from vaekit.recommend.model import multvae_description


def make(likelihood="bernoulli", n_classes=0, arch="mlp"):
    torch.manual_seed(0)
    cfg = ModelConfig(architecture=arch, latent_dim=3, hidden=[16], channels=[4, 8], likelihood=likelihood,
                      conditional=n_classes > 0, gaussian_scale=1.0 if likelihood == "gaussian" else None)
    return build_vae(image_vae_description(cfg, (1, 8, 8), n_classes)).eval()


def pixels(n=6):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("x, message", [
    (pixels().numpy(), r"expected a torch.Tensor, got ndarray \(torch.from_numpy\(x\).float\(\) makes one\)"),
    (pixels()[0], r"shape \(1, 8, 8\) is one example; the model takes a batch \(B, 1, 8, 8\)"),
    (pixels().reshape(6, 64), r"shape \(6, 64\) does not fit the model, which takes \(B, 1, 8, 8\): "
                              r"x.reshape\(-1, 1, 8, 8\) gives it"),
    (pixels()[:, :, :4], r"shape \(6, 1, 4, 8\) does not fit the model, which takes \(B, 1, 8, 8\)$"),
    (pixels() * 16, r"outside \[0, 1\] \(range .* to .*\); a Bernoulli likelihood needs pixels scaled"),
    (pixels().masked_fill(pixels() > 0.9, float("nan")), "value\\(s\\) are NaN or infinite"),
])
@pytest.mark.parametrize("arch", ["mlp", "conv", "made"])
def test_bad_data_is_refused_by_the_bound_and_reconstruction(x, message, arch):
    model = make(arch=arch)
    with pytest.raises(DataError, match=message):
        model.iwae_bound(x, k=4)
    with pytest.raises(DataError, match=message):
        model.reconstruct(x)


def test_good_data_still_scores_and_interpolation_names_its_points():
    model = make()
    assert torch.isfinite(model.iwae_bound(pixels(), k=4)).all()
    assert model.interpolate(pixels()[0], pixels()[1], steps=3).shape == (3, 1, 8, 8)
    with pytest.raises(DataError, match=r"x_b \(one example\): shape \(1, 64\)"):
        model.interpolate(pixels()[0], pixels()[1].reshape(64), steps=3)
    with pytest.raises(ValueError, match="positive integer, got 2.5"):
        model.iwae_bound(pixels(), k=2.5)
    with pytest.raises(ValueError, match="chunk must be a positive integer, got True"):
        model.iwae_bound(pixels(), k=2, chunk=True)
    torch.manual_seed(0)
    plain = model.iwae_bound(pixels(), k=6, chunk=4)
    torch.manual_seed(0)  # integer-like counts: NumPy and 0-d tensor integers
    assert torch.equal(model.iwae_bound(pixels(), k=np.int64(6), chunk=torch.tensor(4)), plain)


def test_a_gaussian_model_takes_any_finite_values():
    model = make("gaussian")
    assert torch.isfinite(model.iwae_bound(pixels() * 16 - 8, k=3)).all()
    x = pixels()
    x[2, 0, 3, 4] = float("inf")
    with pytest.raises(DataError, match="1 value\\(s\\) are NaN or infinite"):
        model.iwae_bound(x, k=3)


def test_conditional_labels_are_checked():
    model = make(n_classes=3)
    with pytest.raises(DataError, match="conditional VAE: pass labels y"):
        model.iwae_bound(pixels(), k=2)
    with pytest.raises(DataError, match=r"labels must lie in 0..2, got 0 to 5"):
        model.iwae_bound(pixels(), k=2, y=torch.tensor([0, 1, 2, 5, 0, 1]))
    with pytest.raises(DataError, match=r"whole numbers, a tensor of shape \(6,\), got Tensor \(6,\) torch.float32"):
        model.iwae_bound(pixels(), k=2, y=torch.full((6,), 0.5))
    with pytest.raises(DataError, match=r"got ndarray \(6,\)"):
        model.iwae_bound(pixels(), k=2, y=np.zeros(6, int))
    assert model.iwae_bound(pixels(), k=2, y=torch.tensor([0, 1, 2, 0, 1, 2])).shape == (6,)
    assert model.iwae_bound(pixels(), k=2, y=torch.tensor([0.0, 1, 2, 0, 1, 2])).shape == (6,)  # whole floats


def test_multinomial_counts_must_not_be_negative():
    model = build_vae(multvae_description(5, hidden=(), latent_dim=2)).eval()
    x = torch.tensor([[1.0, 0, 2, 0, 0], [0, -1, 1, 0, 0]])
    with pytest.raises(DataError, match=r"1 count\(s\) are negative \(min -1\)"):
        model.iwae_bound(x, k=2)


def test_the_trainer_refuses_bad_data_and_tensors_take_numpy(tmp_path):
    model = make()
    config = TrainConfig(epochs=1, batch_size=4)
    with pytest.raises(DataError, match=r"training data: \d+ value\(s\) lie outside \[0, 1\]"):
        Trainer(model, config, Tensors(pixels() * 16), progress=False, log=lambda m: None)
    with pytest.raises(DataError, match=r"validation data: shape \(6, 64\) does not fit"):
        Trainer(model, config, Tensors(pixels()), Tensors(pixels().reshape(6, 64)), progress=False, log=lambda m: None)
    with pytest.raises(DataError, match="expected vaekit.Tensors"):
        Trainer(model, config, pixels(), progress=False, log=lambda m: None)
    data = Tensors(pixels().double().numpy())  # float64 NumPy: taken as float32 tensors
    assert isinstance(data.x, torch.Tensor) and data.x.dtype == torch.float32
    result = Trainer(model.train(), config, data, run_dir=tmp_path, progress=False, log=lambda m: None).fit()
    assert np.isfinite(result.history[-1]["train_loss"])
    with pytest.raises(DataError, match="expected a torch.Tensor or a NumPy array, got list"):
        Tensors([[0.0, 1.0]])
    with pytest.raises(DataError, match="a single number, not a dataset"):
        Tensors(np.float32(1.0))
    with pytest.raises(DataError, match=r"a masked array; fill or drop its masked values first"):
        Tensors(np.ma.masked_array(np.zeros((2, 3)), mask=[[0, 1, 0], [0, 0, 0]]))
