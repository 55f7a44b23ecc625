"""Every setting, in one set of pydantic models: the single source of truth.

YAML presets (``vaekit/configs/<name>.yaml``) and ``--set key=value`` overrides on the
CLI feed the same models; unknown keys are refused (``extra="forbid"``) with the key
named. Values given on the command line are parsed with ``yaml.safe_load`` (never eval).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from vaekit.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    name: str = Field("digits", description="dataset: digits | mnist | images (custom, needs path)")
    path: str | None = Field(None, description="file or folder for custom data (PNG/JPEG folder, .npy, .npz, idx)")
    binarize: Literal["dynamic", "static", "none"] = Field(
        "dynamic", description="dynamic: resample binary pixels every epoch (Burda et al. 2015)"
    )
    val_size: float = Field(
        0.1, gt=0, lt=1, description="share of the training set held out for validation/early stopping"
    )
    limit: PositiveInt | None = Field(None, description="use only the first N training examples")


class ModelConfig(_Strict):
    architecture: Literal["mlp", "conv", "made"] = Field(
        "mlp", description="encoder/decoder pair: mlp | conv | made (autoregressive MADE decoder)"
    )
    latent_dim: PositiveInt = Field(16, description="size of z")
    hidden: list[PositiveInt] = Field([256, 256], description="hidden layer sizes (mlp, made decoder)")
    channels: list[PositiveInt] = Field([32, 64], description="conv channels (conv)")
    activation: Literal["relu", "tanh", "elu", "gelu", "silu"] = "relu"
    likelihood: Literal["bernoulli", "gaussian"] = Field("bernoulli", description="p(x|z) family")
    gaussian_scale: float | None = Field(
        None, gt=0, description="fixed Gaussian scale; null = learned per pixel"
    )
    conditional: bool = Field(False, description="conditional VAE on labels (Sohn et al. 2015)")

    @model_validator(mode="after")
    def _check(self):
        if self.architecture == "made" and self.likelihood != "bernoulli":
            raise ValueError("architecture 'made' supports likelihood 'bernoulli' only")
        return self


class BetaConfig(_Strict):
    schedule: Literal["constant", "linear", "sigmoid", "cyclical"] = "constant"
    value: float = Field(1.0, ge=0, description="final beta (1 = true ELBO)")
    start: float = Field(0.0, ge=0, description="initial beta of an annealing schedule")
    warmup_epochs: float = Field(0.0, ge=0, description="length of the ramp (of one cycle) in epochs")
    cycles: PositiveInt = 4
    ratio: float = Field(0.5, gt=0, le=1, description="ramp share of each cycle (cyclical)")


class TrainConfig(_Strict):
    epochs: PositiveInt = 50
    batch_size: PositiveInt = 128
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    adam_betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.9, 0.999), description="Adam's decay rates of its first and second moments (Kingma & Ba 2015)"
    )
    weight_decay: float = Field(0.0, ge=0)
    lr_decay: float = Field(
        1.0, gt=0, le=1, description="multiply the learning rate by this after every epoch"
    )
    grad_clip: float | None = Field(100.0, gt=0, description="max gradient norm; null = off")
    patience: PositiveInt | None = Field(10, description="early stopping patience in epochs; null = off")
    monitor: str = Field("val_loss", description="epoch metric that early stopping and the best checkpoint follow")
    monitor_mode: Literal["min", "max"] = Field("min", description="whether a lower or a higher monitor is better")
    objective: Literal["elbo", "iwae"] = "elbo"
    iwae_k: PositiveInt = Field(5, description="samples of the IWAE training objective")
    beta: BetaConfig = BetaConfig()
    free_bits: float = Field(0.0, ge=0, description="lambda of free bits per latent dim (nats)")
    seed: int = 0
    max_seconds: float | None = Field(None, gt=0, description="stop training after this wall time")
    skip_nonfinite: int = Field(
        0, ge=0, description="skip up to N batches with a non-finite loss/gradient (0 = stop at the first)"
    )
    checkpoint_every: int = Field(0, ge=0, description="also checkpoint every N steps (0 = epochs only)")
    threads: PositiveInt | None = Field(None, description="torch CPU threads (null = torch default)")
    fast: bool = Field(False, description="one switch for the fast path: compile + bf16 where supported")
    compile: bool = Field(False, description="torch.compile the training step (falls back to eager if unavailable)")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="bf16 autocast for matmuls (fp32 weights/loss); auto: bf16 with fast where the "
                            "hardware has bf16 matmuls, else fp32")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|auto)$", description="cpu | cuda | cuda:N | auto")
    flush_denormals: bool = Field(
        True, description="CPU: treat values below 1.2e-38 as zero while training (denormal arithmetic is slow)"
    )


class EvalConfig(_Strict):
    iw_samples: PositiveInt = Field(1000, description="importance samples for the test NLL")
    iw_chunk: PositiveInt = Field(100, description="samples per chunk in the IW estimator (x 50 images a pass: ~5000 decoder rows stay in cache)")
    n_generated: PositiveInt = Field(2000, description="samples for FID / precision / recall")


class SearchParam(_Strict):
    """One dimension of a hyperparameter search (``vaekit tune``): a range or a set of choices."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = Field(False, description="sample on a log scale (int/float)")
    step: float | None = Field(None, gt=0, description="grid step (int/float)")
    choices: list | None = Field(None, description="the options (categorical)")

    @field_validator("low", "high", "step", mode="before")
    @classmethod
    def _no_booleans(cls, value):
        if isinstance(value, bool):  # YAML's true/false would pass as 1.0/0.0
            raise ValueError(f"must be a number, not {str(value).lower()}")
        return value

    @model_validator(mode="after")
    def _check(self):
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical parameter needs a non-empty 'choices' list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} parameter needs 'low' and 'high'")
        if self.type == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and not float(value).is_integer():
                    raise ValueError(f"int parameter needs a whole-number {name}, got {value:g}")
        if not self.low < self.high:
            raise ValueError(f"empty range: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got {self.low}")
        return self


class RunConfig(_Strict):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    search: dict[str, SearchParam] = Field(
        default_factory=dict, description="hyperparameter search space for `vaekit tune`: dotted key -> range"
    )


def preset_names(application: str | None = None) -> list[str]:
    """Bundled presets, optionally only those of one application (``images`` has no key)."""
    root = resources.files("vaekit") / "configs"
    names = sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))
    if application is None:
        return names
    return [n for n in names if load_preset(n).get("application", "images") == application]


def _read_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    return data


def load_preset(name_or_path: str) -> dict:
    """A preset by name (``mnist``) or a YAML file path, as a plain dict."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        return _read_yaml(text, str(path))
    res = resources.files("vaekit") / "configs" / f"{name_or_path}.yaml"
    if not res.is_file():
        raise ConfigError(f"unknown preset {name_or_path!r}; available: {', '.join(preset_names())}")
    return _read_yaml(res.read_text(), f"preset {name_or_path}")


def apply_override(data: dict, assignment: str) -> str:
    """Apply ``a.b.c=value`` to a nested dict (the value parsed as YAML, safely); returns the key."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {assignment!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {assignment!r}: {p!r} is not a section")
    node[parts[-1]] = value
    return ".".join(parts)


def validated(model: type[BaseModel], data: dict, overrides: list[str] = ()):
    """``data`` (a plain dict, after ``key=value`` overrides) validated into ``model``, errors named."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    for o in overrides:
        apply_override(data, o)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key {loc!r}") from None
        raise ConfigError(f"config {loc}: {err['msg']} (got {err.get('input')!r})") from None


def build_config(data: dict, overrides: list[str] = ()) -> RunConfig:
    """Validate an image config dict (after overrides) into a :class:`RunConfig`."""
    application = data.get("application", "images")
    if application != "images":
        raise ConfigError(f"this preset is for the {application} application: train with `vaekit {application} "
                          f"fit`, search its settings with `vaekit tune`" if application != "text" else
                          "this preset is for the text application (a TextConfig)")
    return validated(RunConfig, {k: v for k, v in data.items() if k != "application"}, overrides)
