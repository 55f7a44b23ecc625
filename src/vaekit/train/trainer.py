"""One training loop for every VAE in vaekit.

Adam with optional gradient clipping and per-epoch learning-rate decay, a beta schedule and
free bits, the ELBO or IWAE objective, validation and latent diagnostics every epoch, early
stopping on the validation loss (-ELBO with beta = 1), a guard against non-finite losses
and gradients, and atomic checkpoints that hold the model, the optimizer, every RNG state
and the loop position, so that a resumed run ends with the same weights as an
uninterrupted one (on CPU). Ctrl-C is turned into a checkpoint at the next step boundary.

Data are resident tensors, shuffled by a seeded generator: no per-sample Python.
Applications customise the loop through the model's objective, a batch ``transform`` (e.g.
dynamic binarization) and ``callbacks`` called after each epoch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from vaekit.config import TrainConfig
from vaekit.core import VAE, BetaSchedule
from vaekit.errors import ConfigError, DataError, NonFiniteError, RunDirError, TrainingInterrupted
from vaekit.metrics.elbo import elbo_pass
from vaekit.metrics.latent import collapse_warning
from vaekit.train.acceleration import AdamStep, Compiled, autocast_dtype, fused_adam_ok, pick_device
from vaekit.train.console import InterruptFlag, progress_bar
from vaekit.train.data import Tensors, Transform, epoch_order
from vaekit.train.denormals import flush_denormals
from vaekit.train.distributed import DistContext, all_reduce_sum
from vaekit.train.gradients import clip_gradients
from vaekit.train.checkpoint import (
    atomic_write_text,
    load_state,
    optimizer_tensors,
    restore_optimizer,
    save_state,
)

@dataclass
class TrainResult:
    epochs: int
    steps: int
    best_val_loss: float  # the best monitored value as a loss (negated when monitor_mode is "max")
    seconds: float
    stopped: str  # "epochs" | "early_stopping" | "time_limit"
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Train ``model`` on ``train`` with early stopping on ``val``.

    ``run_dir`` (optional) receives ``metrics.jsonl`` and ``checkpoints/{last,best}.safetensors``.
    """

    def __init__(
        self,
        model: VAE,
        config: TrainConfig,
        train: Tensors,
        val: Tensors | None = None,
        run_dir: str | Path | None = None,
        transform: Transform | None = None,
        callbacks: list[Callable[[dict], None]] | None = None,
        evaluators: list[Callable[[VAE], dict]] | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
        dist: DistContext | None = None,
    ):
        self.model = model
        self.dist = dist
        self.world = dist.world_size if dist else 1
        self.rank = dist.rank if dist else 0
        self.writes = dist is None or dist.is_main  # rank 0 alone writes files
        self.device = pick_device(config.device, dist)
        model.to(self.device)
        if dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(model, device_ids=ids)
            log = _tagged(log, dist.rank)
            progress = progress and dist.is_main
        else:
            self.net = model
        self.config = config
        for what, data in (("training data", train), ("validation data", val)):
            if data is not None:
                if not isinstance(data, Tensors):
                    raise DataError(f"{what}: expected vaekit.Tensors(x, y), got {type(data).__name__}")
                model.check_data(data.x, data.y, what)
        self.train_data = train
        self.val_data = val
        self.run_dir = Path(run_dir) if run_dir else None
        self.transform = transform
        self.callbacks = list(callbacks or [])
        self.evaluators = list(evaluators or [])
        self.progress = progress
        self.log = log
        self.params = list(model.parameters())  # listed once: walking the modules costs ~70 us a step
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr, betas=config.adam_betas,
                                          weight_decay=config.weight_decay,
                                          fused=fused_adam_ok(self.device))
        self.adam = AdamStep(self.optimizer)
        self.autocast = autocast_dtype(config, self.device)
        self.apply_transform = None  # a split transform's compiled deterministic part
        if config.compile or config.fast:
            self.net = Compiled(self.net, log)
            if hasattr(transform, "noise") and hasattr(transform, "apply"):
                # compiled on its own, outside autocast: fused into the model's graph it
                # slowed the bf16 first layer down (measured 2x on the MNIST MLP)
                # dynamic shapes: one compile serves every batch size (a tuning study tries many)
                self.apply_transform = Compiled(transform.apply, log, doing="transforming batches", dynamic=True)
        # config.batch_size is per process: a step consumes batch_size * world examples
        self.global_batch = config.batch_size * self.world
        self.full_batch = min(self.global_batch, len(train))  # a set smaller than a batch is one batch
        self.steps_per_epoch = math.ceil(len(train) / self.global_batch)
        b = config.beta
        period = round(b.warmup_epochs * self.steps_per_epoch)
        self.beta = BetaSchedule(b.schedule, b.value, b.start, period, b.cycles, b.ratio)
        self._beta_tensor: Tensor | None = None  # beta for a compiled step (see _loss)
        self.shuffle_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator().manual_seed(config.seed + 1)
        # loop position and early-stopping state: everything a checkpoint must hold
        self.epoch = 0
        self.batch_index = 0
        self.global_step = 0
        self.epoch_start_shuffle = self.shuffle_gen.get_state()
        self.sums = {"loss": 0.0, "elbo": 0.0, "kl": 0.0, "n": 0}
        self.best_val = math.inf
        self.bad_epochs = 0
        self.elapsed = 0.0
        self.skipped = 0
        self.step_seconds = 0.0  # wall time inside training steps this epoch (not checkpointed)

    # -- paths -----------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoints" / "last.safetensors" if self.run_dir else None

    @property
    def best_path(self) -> Path | None:
        return self.run_dir / "checkpoints" / "best.safetensors" if self.run_dir else None

    # -- checkpoints -----------------------------------------------------------------
    def _global_sums(self) -> dict:
        """The epoch's running sums over every rank (a collective: all ranks call it)."""
        keys = ("loss", "elbo", "kl", "n")
        return dict(zip(keys, all_reduce_sum([self.sums[k] for k in keys], self.dist)))

    def _state(self, sums: dict) -> dict:
        return {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "global_step": self.global_step,
            "sums": sums,
            "best_val": self.best_val if math.isfinite(self.best_val) else None,
            "bad_epochs": self.bad_epochs,
            "elapsed": self.elapsed,
            "skipped": self.skipped,
            "config": self.config.model_dump(),
        }

    def save_checkpoint(self) -> None:
        sums = self._global_sums() if self.dist is not None else self.sums
        if self.checkpoint_path is None or not self.writes:
            return
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt_t, opt_meta = optimizer_tensors(self.optimizer)
        tensors.update(opt_t)
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.noise"] = self.noise_gen.get_state()
        tensors["rng.shuffle_epoch_start"] = self.epoch_start_shuffle
        tensors["rng.shuffle"] = self.shuffle_gen.get_state()
        _save_or_explain(self.checkpoint_path, tensors, {**self._state(sums), "optimizer": opt_meta})

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        tensors, state = load_state(path or self.checkpoint_path)
        model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model_sd)  # copies onto the model's device
        restore_optimizer(self.optimizer, tensors, state["optimizer"])
        torch.set_rng_state(tensors["rng.torch"])
        self.noise_gen.set_state(tensors["rng.noise"])
        self.epoch_start_shuffle = tensors["rng.shuffle_epoch_start"]
        self.shuffle_gen.set_state(tensors["rng.shuffle"])
        self.epoch = state["epoch"]
        self.batch_index = state["batch_index"]
        self.global_step = state["global_step"]
        # the stored sums cover every rank: rank 0 carries them on, the others restart at 0
        self.sums = state["sums"] if self.rank == 0 else {"loss": 0.0, "elbo": 0.0, "kl": 0.0, "n": 0}
        self.best_val = state["best_val"] if state["best_val"] is not None else math.inf
        self.bad_epochs = state["bad_epochs"]
        self.elapsed = state["elapsed"]
        self.skipped = state["skipped"]
        self._truncate_metrics()

    def _save_best(self) -> None:
        if self.best_path is not None and self.writes:
            _save_or_explain(self.best_path, dict(self.model.state_dict()), {"epoch": self.epoch})

    def _remove_stale_temp_files(self) -> None:
        """Temp files of a writer that was killed mid-write are never mistaken for checkpoints
        (only ``last``/``best.safetensors`` are read); remove them so they do not pile up."""
        if self.run_dir and self.writes and (self.run_dir / "checkpoints").is_dir():
            for tmp in (self.run_dir / "checkpoints").glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def _truncate_metrics(self) -> None:
        """Drop metric lines written after the checkpoint we resume from."""
        path = self.run_dir / "metrics.jsonl" if self.run_dir else None
        if path is None or not path.exists() or not self.writes:
            return
        keep = [line for line in path.read_text().splitlines() if _epoch_of(line) < self.epoch]
        atomic_write_text(path, "".join(line + "\n" for line in keep))

    # -- one step --------------------------------------------------------------------
    def _noise(self, n: int) -> Tensor:
        """Reparameterization noise for a whole global batch, from the trainer's stream."""
        k = self.config.iwae_k if self.config.objective == "iwae" else 0
        shape = (k, n, self.model.latent_dim) if k else (n, self.model.latent_dim)
        return torch.randn(shape, generator=self.noise_gen)

    def _local(self, n: int) -> slice:
        """This rank's share of a global batch of n examples (sizes differ by at most one)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def _agree(self, *flags: bool) -> list[bool]:
        """Every rank takes the same decision: a flag raised anywhere is raised everywhere."""
        if self.dist is None:
            return list(flags)
        return [v > 0 for v in all_reduce_sum([float(f) for f in flags], self.dist)]

    def _step(self, x: Tensor, y: Tensor | None) -> None:
        # every rank draws the noise of the whole global batch, then keeps its share: the
        # trajectory is the one of a single process with the global batch size
        if self.apply_transform is not None:
            x = self.apply_transform(x, self.transform.noise(x, self.noise_gen))
        elif self.transform is not None:
            x = self.transform(x, self.noise_gen)
        n_global = x.shape[0]
        eps = self._noise(n_global)
        part = self._local(n_global)
        x, y = x[part].to(self.device), None if y is None else y[part].to(self.device)
        eps = (eps[:, part] if eps.dim() == 3 else eps[part]).to(self.device)
        self._update(x, y, eps, n_global)
        self.global_step += 1

    def _update(self, x: Tensor, y: Tensor | None, eps: Tensor, n_global: int) -> None:
        """Forward, backward and optimizer step on this rank's share of one global batch."""
        self.adam.zero_grad()
        k = self.config.iwae_k if self.config.objective == "iwae" else 0
        # a short last batch runs eagerly: compiling its shape too would cost seconds (~6 s
        # for the MNIST MLP) to save milliseconds, once per epoch length
        compiled = isinstance(self.net, Compiled) and self.net.fn is not None and n_global == self.full_batch
        net = self.net.eager if isinstance(self.net, Compiled) and not compiled else self.net
        out, loss = self._loss(net, x, y, eps, k, n_global)
        n_local = x.shape[0]
        (bad_loss,) = self._agree(not bool(torch.isfinite(loss)))
        grads_ok = False
        if not bad_loss:
            try:
                loss.backward()
            except Exception as e:
                if not compiled:
                    raise
                # the compiled backward graph is built at the first backward, outside
                # Compiled's own guard: if that fails, the same batch runs again eagerly
                self.net.give_up(e)
                if self.dist is None:
                    return self._update(x, y, eps, n_global)
                # under DDP the other ranks have agreed to this step and wait in its gradient
                # all-reduce, and this rank's DDP forward has already prepared the reducer for
                # it: the eager retry runs the bare model, whose backward joins that all-reduce
                self.adam.zero_grad()
                out, loss = self._loss(self.model, x, y, eps, k, n_global)
                loss.backward()
            grads_ok = clip_gradients(self.params, self.config.grad_clip)
        if bad_loss or not grads_ok:
            self._skip_or_stop("loss" if bad_loss else "gradient norm")
            return
        self.adam.step()
        if n_local:
            self.sums["loss"] += float(out.loss.detach()) * n_local
            self.sums["elbo"] += float(out.elbo.detach().sum())
            self.sums["kl"] += float(out.kl.detach().sum())
            self.sums["n"] += n_local

    def _loss(self, net, x: Tensor, y: Tensor | None, eps: Tensor, k: int, n_global: int):
        """The model's output and this rank's loss. DDP averages gradients over ranks, so each
        rank's loss is weighted by its share of the batch; a rank with no example in a short
        last batch still joins the all-reduce, with zeros."""
        beta = self.beta(self.global_step)
        if isinstance(net, Compiled):  # a float would be a constant of the graph: one compile per beta value
            if self._beta_tensor is None:
                self._beta_tensor = torch.zeros((), device=self.device)
            beta = self._beta_tensor.fill_(beta)  # in place: no host-to-device copy per step on a GPU
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            out = net(x, beta, y, self.config.free_bits, eps, k)
        n_local = x.shape[0]
        if n_local:
            return out, out.loss * (n_local * self.world / n_global)
        return out, sum(p.sum() for p in self.params) * 0.0

    def _skip_or_stop(self, what: str) -> None:
        self.skipped += 1
        if self.skipped > self.config.skip_nonfinite:
            where = self.checkpoint_path if self.checkpoint_path and self.checkpoint_path.exists() else None
            raise NonFiniteError(
                f"non-finite {what} at epoch {self.epoch + 1}, step {self.global_step}; "
                f"last good checkpoint: {where or 'none yet'}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.log(f"skipped batch at step {self.global_step}: non-finite {what} ({self.skipped} skipped)")

    # -- validation ------------------------------------------------------------------
    def validate(self, data: Tensors | None = None, batch_size: int = 1000) -> dict:
        """-ELBO (beta = 1), KL per dimension and active units on ``data`` (default: val)."""
        data = data or self.val_data
        if data is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        result = elbo_pass(self.model, data, batch_size, seed=self.config.seed + 2, device=self.device)
        self.model.train(was_training)
        au = result.active_units
        return {
            "val_loss": -result.elbo,
            "val_kl": result.kl,
            "active_units": au,
            "kl_per_dim": [round(float(v), 5) for v in result.kl_per_dim],
            "collapse": collapse_warning(result.kl_per_dim, au),
        }

    # -- the loop --------------------------------------------------------------------
    def _end_epoch(self, started: float) -> dict:
        sums = self._global_sums()
        n = max(sums["n"], 1)
        record = {
            "epoch": self.epoch,
            "step": self.global_step,
            "train_loss": sums["loss"] / n,
            "train_elbo": sums["elbo"] / n,
            "train_kl": sums["kl"] / n,
            "beta": self.beta(self.global_step),
            "lr": self.optimizer.param_groups[0]["lr"],
            "skipped": self.skipped,
        }
        record.update(self.validate())
        for evaluate in self.evaluators:  # application metrics, e.g. NDCG@100 on validation users
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                record.update(evaluate(self.model))
            self.model.train(was_training)
        record["seconds"] = round(self.elapsed + time.perf_counter() - started, 3)
        record["samples_per_second"] = round(sums["n"] / self.step_seconds, 1) if self.step_seconds else None
        self.step_seconds = 0.0
        if record.get("collapse"):
            self.log(f"warning: epoch {self.epoch + 1}: {record['collapse']}")
        monitored = self._monitored(record)
        if monitored < self.best_val:
            self.best_val = monitored
            self.bad_epochs = 0
            self._save_best()
        else:
            self.bad_epochs += 1
        if self.run_dir and self.writes:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        for cb in self.callbacks:
            cb(record)
        return record

    def _monitored(self, record: dict) -> float:
        """The followed metric as a loss (lower is better); val_loss falls back to train_loss."""
        key = self.config.monitor
        if key == "val_loss" and key not in record:
            key = "train_loss"
        if key not in record:
            raise ConfigError(f"train.monitor: no epoch metric {key!r}; available: {', '.join(sorted(record))}")
        value = float(record[key])
        return -value if self.config.monitor_mode == "max" else value

    def fit(self, resume: bool = False) -> TrainResult:
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self._remove_stale_temp_files()
        if resume:
            self.load_checkpoint()
        else:
            torch.manual_seed(cfg.seed)
            self.epoch_start_shuffle = self.shuffle_gen.get_state()
        self.model.train()
        started = time.perf_counter()
        history: list[dict] = []
        stopped = "epochs"
        progress = progress_bar(self.progress)
        denormals = flush_denormals(cfg.flush_denormals and self.device.type == "cpu")
        with InterruptFlag() as interrupt, progress, denormals:
            task = progress.add_task("train", total=cfg.epochs * self.steps_per_epoch, completed=self.global_step)
            while self.epoch < cfg.epochs:
                for group in self.optimizer.param_groups:
                    group["lr"] = cfg.lr * cfg.lr_decay**self.epoch
                self.shuffle_gen.set_state(self.epoch_start_shuffle)
                order = epoch_order(self.train_data, self.global_batch, self.shuffle_gen)
                for b in range(self.batch_index, self.steps_per_epoch):
                    idx = order[b * self.global_batch : (b + 1) * self.global_batch]
                    t_step = time.perf_counter()
                    self._step(*self.train_data.batch(idx))
                    self.step_seconds += time.perf_counter() - t_step
                    self.batch_index = b + 1
                    progress.update(task, advance=1, description=f"epoch {self.epoch + 1}/{cfg.epochs}")
                    over_time = bool(cfg.max_seconds) and self.elapsed + time.perf_counter() - started > cfg.max_seconds
                    interrupted, over_time = self._agree(interrupt.raised, over_time)
                    if interrupted:
                        self.elapsed += time.perf_counter() - started
                        self.save_checkpoint()
                        raise TrainingInterrupted(
                            f"interrupted at epoch {self.epoch + 1}, step {self.global_step}; "
                            f"checkpoint saved, continue with --resume"
                        )
                    if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                        now = time.perf_counter()
                        self.elapsed += now - started
                        started = now
                        self.save_checkpoint()
                    if over_time:
                        stopped = "time_limit"
                        break
                record = self._end_epoch(started)
                history.append(record)
                every = max(1, cfg.epochs // 25)  # about 25 summary lines per run
                if self.progress and (self.epoch % every == 0 or self.epoch + 1 == cfg.epochs):
                    progress.console.print(_summary(record), highlight=False)
                self.epoch += 1
                self.batch_index = 0
                self.sums = {"loss": 0.0, "elbo": 0.0, "kl": 0.0, "n": 0}
                self.epoch_start_shuffle = self.shuffle_gen.get_state()
                now = time.perf_counter()
                self.elapsed += now - started
                started = now
                self.save_checkpoint()
                if stopped == "time_limit":
                    break
                if cfg.patience and self.bad_epochs >= cfg.patience:
                    stopped = "early_stopping"
                    break
        if self.best_path is not None and self.best_path.exists():
            best, _ = load_state(self.best_path)
            self.model.load_state_dict(best)
        self.model.eval()
        return TrainResult(self.epoch, self.global_step, self.best_val, self.elapsed, stopped, history)


def _save_or_explain(path: Path, tensors: dict, state: dict) -> None:
    """Atomic save; a failed write (disk full, I/O error) becomes one clear error."""
    try:
        save_state(path, tensors, state)
    except OSError as e:
        raise RunDirError(f"cannot write {path}: {e.strerror or e}; the previous checkpoint is intact") from None


def _epoch_of(line: str) -> float:
    """Epoch of a metrics line; a line cut short by a crash counts as past every epoch."""
    try:
        return json.loads(line)["epoch"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def _tagged(log: Callable[[str], None], rank: int) -> Callable[[str], None]:
    return lambda message: log(f"[rank {rank}] {message}")


def _summary(r: dict) -> str:
    parts = [f"epoch {r['epoch'] + 1}", f"train {r['train_loss']:.3f}"]
    if "val_loss" in r:
        parts += [f"val {r['val_loss']:.3f}", f"KL {r['val_kl']:.2f}", f"AU {r['active_units']}"]
    return "  ".join(parts)
