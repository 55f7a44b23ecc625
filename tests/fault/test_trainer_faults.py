"""The trainer: resume parity, non-finite guard, interrupts, early stopping, schedules."""

import json
import math
import os
import signal

import pytest
import torch

from vaekit.apps.image_data import load_image_data
from vaekit.builders import build_vae, image_vae_description
from vaekit.errors import DataError, ModelFileError, NonFiniteError, TrainingInterrupted
from vaekit.train import Tensors, Trainer
from vaekit.train.checkpoint import load_state


def make_trainer(config, run_dir, **kw):
    data = load_image_data(config)
    torch.manual_seed(config.train.seed)
    model = build_vae(image_vae_description(config.model, data.shape, data.n_classes))
    return Trainer(model, config.train, data.train, data.val, run_dir, data.transform(), progress=False,
                   log=lambda m: None, **kw)


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(small_config, tmp_path):
    small_config.train.epochs = 4
    small_config.train.checkpoint_every = 5
    full = make_trainer(small_config, tmp_path / "full")
    full.fit()
    ref = weights(full)
    ref_opt = full.optimizer.state_dict()

    class Stop(Exception):
        pass

    # crash in the middle of epoch 2 (7 steps an epoch), one step after the checkpoint of step 10
    part = make_trainer(small_config, tmp_path / "part")
    original = part._step

    def step_then_crash(x, y):
        original(x, y)
        if part.global_step == 11:
            raise Stop

    part._step = step_then_crash
    with pytest.raises(Stop):
        part.fit()
    resumed = make_trainer(small_config, tmp_path / "part")
    resumed.fit(resume=True)
    for k, v in weights(resumed).items():
        assert torch.equal(v, ref[k]), k
    assert torch.equal(resumed.optimizer.state_dict()["state"][0]["exp_avg"], ref_opt["state"][0]["exp_avg"])
    lines = [json.loads(l) for l in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    ref_lines = [json.loads(l) for l in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [0, 1, 2, 3]
    for a, b in zip(lines, ref_lines):
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]


def test_nan_in_batch_stops_with_step_and_checkpoint(small_config, tmp_path):
    trainer = make_trainer(small_config, tmp_path / "run")
    trainer.fit()  # leaves a good checkpoint
    before = (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes()
    small_config.train.epochs = 5
    again = make_trainer(small_config, tmp_path / "run")
    again.train_data.x[5] = float("nan")
    with pytest.raises(NonFiniteError, match=r"non-finite loss at epoch 4, step \d+; last good checkpoint: .*last.safetensors"):
        again.fit(resume=True)
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes() == before
    load_state(tmp_path / "run" / "checkpoints" / "last.safetensors")


def test_skip_nonfinite_counts_and_goes_on(small_config, tmp_path):
    small_config.train.skip_nonfinite = 10
    trainer = make_trainer(small_config, None)
    trainer.train_data.x[3] = float("nan")
    result = trainer.fit()
    assert trainer.skipped == 3  # one bad example, met once per epoch
    assert result.history[-1]["skipped"] == 3
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_diverging_learning_rate_is_caught(small_config):
    small_config.train.lr = 1e6
    small_config.train.grad_clip = None
    small_config.train.epochs = 30
    trainer = make_trainer(small_config, None)
    with pytest.raises(NonFiniteError, match="non-finite"):
        trainer.fit()


def test_ctrl_c_saves_a_resumable_checkpoint(small_config, tmp_path):
    trainer = make_trainer(small_config, tmp_path / "run")
    original = trainer._step

    def step_and_interrupt(x, y):
        original(x, y)
        if trainer.global_step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    trainer._step = step_and_interrupt
    with pytest.raises(TrainingInterrupted, match="--resume"):
        trainer.fit()
    tensors, state = load_state(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert state["global_step"] == 4
    make_trainer(small_config, tmp_path / "run").fit(resume=True)


def test_early_stopping_restores_best_weights(small_config, tmp_path):
    small_config.train.epochs = 40
    small_config.train.patience = 1
    small_config.train.lr = 0.05  # noisy enough to get worse sometimes
    trainer = make_trainer(small_config, tmp_path / "run")
    result = trainer.fit()
    best, _ = load_state(tmp_path / "run" / "checkpoints" / "best.safetensors")
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, best[k])
    assert result.best_val_loss == min(r["val_loss"] for r in result.history)


def test_same_seed_same_result(small_config):
    a, b = make_trainer(small_config, None), make_trainer(small_config, None)
    a.fit(), b.fit()
    for k, v in weights(a).items():
        assert torch.equal(v, weights(b)[k])


def test_time_limit_stops_and_records(small_config):
    small_config.train.epochs = 1000
    small_config.train.max_seconds = 0.5
    result = make_trainer(small_config, None).fit()
    assert result.stopped == "time_limit" and result.epochs < 1000


def test_empty_dataset_is_refused():
    with pytest.raises(DataError, match="empty"):
        Tensors(torch.zeros(0, 4))


def test_corrupted_checkpoint_gives_a_clear_error(small_config, tmp_path):
    make_trainer(small_config, tmp_path / "run").fit()
    path = tmp_path / "run" / "checkpoints" / "last.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        make_trainer(small_config, tmp_path / "run").fit(resume=True)


def test_beta_warmup_and_free_bits_are_used(small_config):
    small_config.train.beta.schedule = "linear"
    small_config.train.beta.warmup_epochs = 2
    small_config.train.free_bits = 0.5
    result = make_trainer(small_config, None).fit()
    betas = [r["beta"] for r in result.history]
    assert betas[0] < betas[1] <= 1.0 and math.isclose(betas[-1], 1.0)
