"""Training an image VAE into a run directory: settings are checked before anything is written."""

import pytest
import torch

from vaekit.apps import images
from vaekit.errors import DataError


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_bad_device_with_overwrite_keeps_the_old_run(small_config, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"kind": "mlp"}')
    (run / "model.safetensors").write_bytes(b"old weights")
    small_config.train.device = "cuda"
    with pytest.raises(DataError, match="train.device='cuda' but no CUDA device"):
        images.train(small_config, run, overwrite=True, progress=False, log=lambda m: None)
    assert (run / "model.safetensors").read_bytes() == b"old weights"
    with pytest.raises(DataError):
        images.train(small_config, tmp_path / "new", progress=False, log=lambda m: None)
    assert not (tmp_path / "new").exists()  # no stub directory that blocks the next try


def test_overwrite_that_fails_in_training_keeps_the_old_run(small_config, tmp_path):
    """--overwrite of a trained run whose new training fails before its first checkpoint:
    the old run is back, whole; the old model still loads."""
    run = tmp_path / "run"
    images.train(small_config, run, progress=False, log=lambda m: None, figures=False)
    weights = (run / "model.safetensors").read_bytes()

    def fail(record):
        raise RuntimeError("stop here")

    small_config.train.checkpoint_every = 0
    with pytest.raises(RuntimeError, match="stop here"):
        images.train(small_config, run, overwrite=True, progress=False, log=lambda m: None, figures=False,
                     callbacks=[fail])
    assert (run / "model.safetensors").read_bytes() == weights
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
