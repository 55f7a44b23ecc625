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
