"""The `vaekit` command line: thin wrappers over the Python API.

Errors the user caused (bad data, config, model files, arguments) print one line and exit
with code 2; Ctrl-C during training leaves a resumable checkpoint and exits with 130.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from vaekit.config import RunConfig, apply_override, build_config, load_preset, preset_names
from vaekit.errors import ConfigError, ModelFileError, RunDirError, TrainingInterrupted, VaekitError
from vaekit.anomaly.cli import app as anomaly_app
from vaekit.recommend.cli import app as recommend_app
from vaekit.reduction.cli import app as reduce_app
from vaekit.serve.cli import serve_command

console = Console()
err_console = Console(stderr=True)


def _config_reference(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every config key with its default and description, for --help."""
    lines = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            lines += _config_reference(ann, f"{prefix}{name}.")
        else:
            desc = f" - {field.description}" if field.description else ""
            lines.append(f"{prefix}{name} = {field.get_default(call_default_factory=True)!r}{desc}")
    return lines


# the applications `vaekit train` trains; recommend and anomaly presets are fitted by their own commands
TRAIN_APPLICATIONS = ("images", "text", "molecules")


def _train_presets() -> str:
    """Every bundled preset `vaekit train` accepts, grouped by application, for --help."""
    by_application: dict[str, list[str]] = {a: [] for a in TRAIN_APPLICATIONS}
    for name in preset_names():
        application = load_preset(name).get("application", "images")
        if application in by_application:
            by_application[application].append(name)
    return "; ".join(f"{a}: {', '.join(names)}" for a, names in by_application.items() if names)


def _application_reference() -> str:
    """The data, model and eval settings of the text and molecule presets (their train
    section is the image presets' own), for --help."""
    from vaekit.molecules.config import MoleculeConfig
    from vaekit.text.config import TextConfig

    parts = []
    for application, config in (("text", TextConfig), ("molecules", MoleculeConfig)):
        keys = [line for line in _config_reference(config) if line.split(".")[0] in ("data", "model", "eval")]
        parts.append(f"Settings of the {application} presets (train.* as above):\n\n" + "\n\n".join(keys))
    return "\n\n".join(parts)


TRAIN_EPILOG = (
    "Presets (" + _train_presets() + "). The defaults shown are each setting's own; a preset overrides some "
    "of them (its YAML file is in the package's vaekit/configs/).\n\n"
    "Settings of the image presets for --set KEY=VALUE:\n\n"
    + "\n\n".join(_config_reference()) + "\n\n" + _application_reference()
)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Variational autoencoders: train, evaluate, sample, encode.")
app.add_typer(recommend_app, name="recommend")
app.add_typer(reduce_app, name="reduce", help="Dimensionality reduction: fit a VAE transformer on a CSV, embed new rows, plot the map.")
app.add_typer(anomaly_app, name="anomaly")
app.command("serve")(serve_command)

RunArg = Annotated[Path, typer.Argument(help="run directory written by `vaekit train`")]

# The run kinds (config.json's "kind") each command of this module takes; the
# messages for a run of another kind list the commands that do take it.
COMMAND_KINDS: dict[str, tuple[str, ...]] = {
    "evaluate": ("image", "text", "molecule"),
    "sample": ("image", "text", "molecule"),
    "reconstruct": ("image", "text", "molecule"),
    "interpolate": ("image", "text", "molecule"),
    "traverse": ("image",),
    "latent-map": ("image",),
    "encode": ("image",),
    "optimize": ("molecule",),
}
# runs that the application sub-commands serve, none of the commands above
OTHER_KIND_COMMANDS = {"anomaly": "vaekit anomaly score", "multvae": "vaekit recommend top / similar",
                       "reduction": "vaekit reduce transform"}
KIND_LABELS = {"image": "image", "text": "text", "molecule": "molecule", "anomaly": "anomaly detector",
               "multvae": "recommender", "reduction": "dimensionality-reduction"}


def run_kind(run: Path) -> str | None:
    """The kind of model in a run directory, None where config.json cannot tell (the
    command's own loader then says what is wrong with the directory)."""
    from vaekit.io import read_config

    if (run / "detector.json").is_file():
        return "anomaly"
    if (run / "recommender.json").is_file():
        return "multvae"
    try:
        return read_config(run).get("kind")
    except ModelFileError:
        return None


def commands_for(kind: str) -> str:
    """The commands that serve runs of ``kind``, for error messages."""
    if kind in OTHER_KIND_COMMANDS:
        return OTHER_KIND_COMMANDS[kind]
    return "vaekit " + ", ".join(c for c, kinds in COMMAND_KINDS.items() if kind in kinds)


def require_kind(run: Path, command: str, hint: str = "") -> str | None:
    """The kind of ``run`` (see :func:`run_kind`), after refusing one that ``command``
    does not take, naming the run's kind and the commands that serve it. ``hint`` says
    how to get a run of the right kind."""
    kind = run_kind(run)
    takes = COMMAND_KINDS[command]
    if kind is None or kind in takes or kind not in KIND_LABELS:
        return kind
    label = KIND_LABELS[kind]
    article = "an" if label[0] in "aeiou" else "a"
    wanted = [KIND_LABELS[k] for k in takes]
    wanted = f"{wanted[0]} runs only" if len(wanted) == 1 else f"{', '.join(wanted[:-1])} and {wanted[-1]} runs"
    raise RunDirError(f"{run} is {article} {label} run; `vaekit {command}` takes {wanted}{hint}. "
                      f"For {label} runs use: {commands_for(kind)}")


@app.command(epilog=TRAIN_EPILOG)
def train(
    preset: Annotated[str, typer.Argument(help="preset name (mnist, digits, images, ...) or a YAML file")],
    data: Annotated[Optional[str], typer.Option(
        help="custom data, read by the generic presets only: images (an image folder, .npy, .npz or idx "
             "file), text (a text file), molecules (a .smi / .csv / .tsv library)")] = None,
    column: Annotated[Optional[str], typer.Option(help="molecules: the CSV column holding SMILES")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run directory (default runs/<preset>)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a setting: --set train.epochs=20")] = [],
    epochs: Annotated[Optional[int], typer.Option(help="shortcut for --set train.epochs=N")] = None,
    conditional: Annotated[bool, typer.Option(help="conditional VAE on the labels (Sohn et al. 2015)")] = False,
    skip_nonfinite: Annotated[Optional[int], typer.Option(
        help="skip up to N batches with a NaN/inf loss or gradient instead of stopping at the first")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run directory")] = False,
    resume: Annotated[bool, typer.Option(help="continue the run in --out from its last checkpoint")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
):
    """Train a VAE and write a run directory (weights, metrics, checkpoints, figures, card).

    Under `torchrun --nproc_per_node=N -m vaekit train ...` it trains with DDP; batch_size
    is per process. After a worker failure `torchrun --max-restarts=K` restarts every
    worker, and they resume from the last checkpoint.
    """
    from vaekit.apps import images
    from vaekit.train import distributed

    overrides = list(set_)
    if data is not None:
        overrides.append(f"data.path={data}")
    if column is not None:
        overrides.append(f"data.column={column}")
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    if conditional:
        overrides.append("model.conditional=true")
    if skip_nonfinite is not None:
        overrides.append(f"train.skip_nonfinite={skip_nonfinite}")
    run_dir = out or Path("runs") / Path(preset).stem
    dist = distributed.from_env()
    if dist is not None and distributed.restart_count() > 0:
        # an elastic restart: continue our own run from its checkpoint, or start it again
        resume = (run_dir / "checkpoints" / "last.safetensors").is_file()
        overwrite = not resume
    command = "vaekit " + shlex.join(_ARGV or sys.argv[1:])
    if resume and overrides and (dist is None or dist.is_main):
        err_console.print(f"note: a resumed run keeps its own config.json; not applied: {', '.join(overrides)}",
                          highlight=False, soft_wrap=True)
    base = None if resume else load_preset(preset)
    if base is not None:
        _check_data_is_read(preset, base, overrides, data, column)
    if (base is not None and base.get("application") == "text") or (resume and _is_text_run(run_dir)):
        _train_text(base, overrides, run_dir, overwrite, resume, progress, command, dist)
        return
    if (base is not None and base.get("application") == "molecules") or (resume and _is_molecule_run(run_dir)):
        from vaekit.molecules import cli as molecules

        path = molecules.train(base, overrides, run_dir, overwrite, resume, progress, command, dist)
        console.print(f"run directory: {path}")
        return
    # with --resume the run's own config is used; RunConfig() is only a placeholder
    config = RunConfig() if resume else build_config(base, overrides)
    try:
        path = images.train(config, run_dir, overwrite=overwrite, resume=resume, progress=progress,
                            log=console.print, command=command, dist=dist)
    finally:
        distributed.shutdown(dist)
    if dist is None or dist.is_main:
        console.print(f"run directory: {path}\nfigures: {path / 'figures'}")


def _check_data_is_read(preset: str, base: dict, overrides: list[str], data_option: str | None,
                        column_option: str | None) -> None:
    """Refuse a data file that the preset would ignore.

    Only the generic presets read a file: those whose data.name is their application's
    name (images, text, molecules). mnist, digits, ptb, moses and zinc250k load their own
    dataset whatever data.path says, so a run would train on something else than asked
    while its config.json recorded the file.
    """
    merged = json.loads(json.dumps(base))  # a deep copy of plain YAML data
    for o in overrides:
        apply_override(merged, o)
    section = merged.get("data")
    if not isinstance(section, dict):
        return  # the config's own validation reports it
    application = merged.get("application", "images")
    name, path, column = section.get("name"), section.get("path"), section.get("column")
    if application not in TRAIN_APPLICATIONS or name == application or (path is None and column is None):
        return
    if data_option is not None:
        given = f"--data {shlex.quote(data_option)}"
    elif column_option is not None:
        given = f"--column {shlex.quote(column_option)}"
    else:
        given = f"data.path={path}" if path is not None else f"data.column={column}"
    command = shlex.join(["vaekit", "train", application, "--data", str(path or "FILE")]
                         + (["--column", str(column)] if column is not None else []))
    dataset = f"the {name} dataset" if name else "its default dataset"
    raise ConfigError(f"preset {preset!r} trains on {dataset} and would ignore {given}; to train "
                      f"on your file use the {application} preset: `{command}` (or keep {preset}'s settings "
                      f"with --set data.name={application})")


def _is_text_run(run_dir: Path) -> bool:
    from vaekit.text.app import is_text_run

    return is_text_run(run_dir)


def _is_molecule_run(run_dir: Path) -> bool:
    from vaekit.molecules.app import is_molecule_run

    return is_molecule_run(run_dir)


def _train_text(base, overrides, run_dir, overwrite, resume, progress, command, dist) -> None:
    from vaekit.text import app as text
    from vaekit.text.config import TextConfig, build_text_config

    if dist is not None:
        raise VaekitError("text runs train in one process; run `vaekit train` without torchrun")
    config = TextConfig() if resume else build_text_config(base, overrides)
    path = text.train(config, run_dir, overwrite=overwrite, resume=resume, progress=progress, log=console.print,
                      command=command)
    console.print(f"run directory: {path}")


@app.command()
def evaluate(
    run: RunArg,
    iw_samples: Annotated[Optional[int], typer.Option(help="importance samples for the NLL (default: the run's eval.iw_samples)")] = None,
    n_test: Annotated[Optional[int], typer.Option(help="evaluate on the first N test examples only")] = None,
    n_samples: Annotated[Optional[int], typer.Option(
        help="molecules: prior samples for the MOSES metrics (default: the run's eval.n_samples)")] = None,
):
    """Test ELBO, IW-NLL, bits/dim, KL per dimension, active units, collapse check, domain FID."""
    from rich.progress import Progress

    from vaekit.apps import images

    _positive("--iw-samples", iw_samples)
    _positive("--n-test", n_test)
    _positive("--n-samples", n_samples)
    kind = require_kind(run, "evaluate")
    if kind == "molecule":
        from vaekit.molecules import cli as molecules

        print_metrics(molecules.evaluate(run, n_samples, n_test))
        return
    if kind == "text":
        from vaekit.text import app as text

        evaluate_run = text.evaluate
    else:
        evaluate_run = images.evaluate
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("IW-NLL", total=None)
        result = evaluate_run(run, iw_samples, n_test, progress=lambda n: bar.advance(task, n))
    print_metrics(result)


def print_text(text: str) -> None:
    """Write machine-readable output (Markdown, JSON) to stdout as it is: never wrapped
    at a terminal's or a pipe's width, which would break table rows and strings."""
    typer.echo(text, nl=not text.endswith("\n"))


def print_metrics(result: dict) -> None:
    table = Table("metric", "value", title="Evaluation")
    for k, v in result.items():
        if isinstance(v, list):
            continue
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)
    if result.get("collapse_warning"):
        err_console.print(f"[yellow]warning: {result['collapse_warning']}[/yellow]")


def _print_sentence(line: str) -> None:
    console.print(line or "(empty sentence)", highlight=False, markup=False, soft_wrap=True)


def _note_unknown(words: list[str]) -> None:
    if words:
        err_console.print(f"note: not in the vocabulary, read as <unk>: {', '.join(sorted(set(words)))}",
                          highlight=False, markup=False)


def _positive(name: str, value) -> None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be > 0, got {value}", param_hint=name)


@app.command()
def sample(
    run: RunArg,
    n: Annotated[int, typer.Option("-n", help="number of samples")] = 64,
    out: Annotated[Path, typer.Option(help="PNG grid to write; molecules: a .csv (and a PNG grid beside it)")] = Path("samples.png"),
    label: Annotated[Optional[int], typer.Option(help="class label (conditional models)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    strategy: Annotated[str, typer.Option(help="text: sample | greedy | beam")] = "sample",
    temperature: Annotated[float, typer.Option(help="text: softmax temperature of sampling (> 0)")] = 1.0,
    beam_size: Annotated[int, typer.Option(help="text: beam width")] = 5,
):
    """Draw samples from the prior: an image grid, or sentences printed for a text run."""
    import torch

    from vaekit import plots
    from vaekit.apps.images import _as_images
    from vaekit.core import VAE
    from vaekit.io import read_config

    _positive("-n", n)
    kind = require_kind(run, "sample")
    if kind == "molecule":
        from vaekit.molecules import cli as molecules

        molecules.sample(run, n, out, seed, strategy, temperature)
        return
    if kind == "text":
        from vaekit.text import app as text

        model, config, vocab = text.load_run(run)
        torch.manual_seed(seed)
        for line in text.sample(model, vocab, n, config.data.max_len, strategy, temperature, beam_size):
            _print_sentence(line)
        return
    model = VAE.from_pretrained(run)
    shape = read_config(run)["data_shape"]
    y = None
    if model.n_classes:
        if label is None:
            y = torch.arange(n) % model.n_classes
        elif not 0 <= label < model.n_classes:
            raise typer.BadParameter(f"label must be in 0..{model.n_classes - 1}, got {label}", param_hint="--label")
        else:
            y = torch.full((n,), label)
    elif label is not None:
        raise typer.BadParameter("this model is not conditional; train with --conditional", param_hint="--label")
    torch.manual_seed(seed)
    path = plots.image_grid(_as_images(model.sample(n, y), shape), out, title=f"{n} samples")
    console.print(f"wrote {path}")


@app.command()
def reconstruct(
    run: RunArg,
    sentence: Annotated[Optional[str], typer.Argument(
        help="text runs: the sentence to reconstruct; molecule runs: the SMILES")] = None,
    n: Annotated[int, typer.Option("-n", help="number of test images")] = 16,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("reconstructions.png"),
    strategy: Annotated[str, typer.Option(help="text: greedy | beam | sample")] = "greedy",
    beam_size: Annotated[int, typer.Option(help="text: beam width")] = 5,
):
    """Test images above their reconstructions; for a text run, a sentence through z and back."""
    from vaekit import plots
    from vaekit.apps.images import _as_images, _labels_for, load_run

    _positive("-n", n)
    kind = require_kind(run, "reconstruct")
    if kind == "molecule":
        from vaekit.molecules import cli as molecules

        if sentence is None:
            raise typer.BadParameter("give the SMILES to reconstruct", param_hint="SMILES")
        molecules.reconstruct(run, sentence, "greedy" if strategy == "beam" else strategy)
        return
    if kind == "text":
        from vaekit.text import app as text

        if sentence is None:
            raise typer.BadParameter("give the sentence to reconstruct", param_hint="SENTENCE")
        model, config, vocab = text.load_run(run)
        line, unknown = text.reconstruct(model, vocab, sentence, config.data.max_len, strategy, 1.0, beam_size)
        _note_unknown(unknown)
        _print_sentence(line)
        return
    if sentence is not None:
        if kind is None:  # config.json cannot tell the kind: say what is wrong with it
            from vaekit.io import read_config

            read_config(run)
        raise typer.BadParameter("a sentence is for text runs; this is an image run", param_hint="SENTENCE")
    model, _, data = load_run(run)
    x = data.test.x[:n]
    rec = model.reconstruct(x, _labels_for(model, data.test, n))
    console.print(f"wrote {plots.reconstruction_figure(_as_images(x, data.shape), _as_images(rec, data.shape), out)}")


@app.command()
def interpolate(
    run: RunArg,
    a: Annotated[str, typer.Argument(help="first image (a test-set index or an image file), or sentence")],
    b: Annotated[str, typer.Argument(help="second image (a test-set index or an image file), or sentence")],
    steps: Annotated[int, typer.Option(help="points on the line, ends included")] = 10,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("interpolation.png"),
):
    """Decode the straight line between the latent codes of two images."""
    import torch

    from vaekit import plots
    from vaekit.apps.images import _as_images, load_run, read_inputs

    if steps < 2:
        raise typer.BadParameter(f"must be >= 2, got {steps}", param_hint="--steps")
    kind = require_kind(run, "interpolate")
    if kind == "molecule":
        from vaekit.molecules import cli as molecules

        molecules.interpolate(run, a, b, steps, out)
        return
    if kind == "text":
        from vaekit.text import app as text

        model, config, vocab = text.load_run(run)
        lines, unknown = text.interpolate(model, vocab, a, b, steps, config.data.max_len)
        _note_unknown(unknown)
        for line in lines:
            _print_sentence(line)
        return
    model, _, data = load_run(run)
    if model.n_classes:
        raise VaekitError("interpolate on a conditional model needs labels; use the Python API")
    row = model.interpolate(read_inputs(a, data), read_inputs(b, data), steps)
    console.print(f"wrote {plots.interpolation_figure(torch.stack([_as_images(row, data.shape)]), out)}")


@app.command()
def traverse(
    run: RunArg,
    dims: Annotated[Optional[str], typer.Option(help="comma-separated latent dims (default: 8 most active)")] = None,
    steps: Annotated[int, typer.Option(help="values per dimension")] = 9,
    span: Annotated[float, typer.Option(help="sweep z_d over [-span, span]")] = 3.0,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("traversals.png"),
):
    """Latent traversals: one dimension swept at a time around a test image's code."""
    from vaekit.apps.images import load_run
    from vaekit.apps.images import traverse as do_traverse

    if steps < 2 or span <= 0:
        raise typer.BadParameter(f"need steps >= 2 and span > 0, got {steps}, {span}")
    require_kind(run, "traverse")
    model, _, data = load_run(run)
    try:
        dim_list = [int(d) for d in dims.split(",")] if dims else None
    except ValueError:
        raise typer.BadParameter(f"expected integers like 0,3,5, got {dims!r}", param_hint="--dims") from None
    console.print(f"wrote {do_traverse(model, data, out, dim_list, steps, span)}")


@app.command("latent-map")
def latent_map(
    run: RunArg,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("latent_map.png"),
    n: Annotated[int, typer.Option("-n", help="test examples to plot")] = 5000,
):
    """2-D map of the posterior means of test data, coloured by label (PCA if dim > 2)."""
    from vaekit import plots
    from vaekit.apps.images import load_run

    _positive("-n", n)
    require_kind(run, "latent-map")
    model, _, data = load_run(run)
    y = None if data.test.y is None else data.test.y[:n]
    z = model.encode(data.test.x[:n], y if model.n_classes else None).mean
    console.print(f"wrote {plots.latent_map(z.detach(), None if y is None else y.numpy(), out)}")


@app.command()
def encode(
    run: RunArg,
    data: Annotated[str, typer.Argument(
        help="images to encode: an image file, a folder of images, .npy, .npz or idx")],
    out: Annotated[Path, typer.Option(help=".npy file for the posterior means")] = Path("codes.npy"),
):
    """Posterior means E_q[z|x] of a file of images, saved as .npy."""
    import numpy as np

    from vaekit.apps.images import encode_file
    from vaekit.core import VAE
    from vaekit.io import read_config

    require_kind(run, "encode")
    model = VAE.from_pretrained(run)
    z = encode_file(model, data, read_config(run)["data_shape"])
    np.save(out, z, allow_pickle=False)
    console.print(f"wrote {out} {z.shape}")


@app.command()
def optimize(
    run: RunArg,
    objective: Annotated[str, typer.Option(help="qed | plogp (penalized logP, normalized) | logp")] = "plogp",
    budget: Annotated[int, typer.Option(help="decoded candidate molecules the search may score")] = 1000,
    method: Annotated[str, typer.Option(help="bo (Gaussian-process Bayesian optimization) | gradient "
                                             "(ascent on the property head)")] = "bo",
    start: Annotated[list[str], typer.Option(help="SMILES to start from (repeatable; default: prior draws)")] = [],
    top: Annotated[int, typer.Option(help="molecules to report")] = 10,
    out: Annotated[Optional[Path], typer.Option(help="also write the full report as JSON")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
):
    """Property-guided design: search a molecule run's latent space for high-scoring molecules."""
    from vaekit.molecules import cli as molecules

    _positive("--budget", budget)
    _positive("--top", top)
    require_kind(run, "optimize", " (train one with `vaekit train zinc250k`)")
    molecules.optimize(run, objective, budget, method, start, top, out, seed)


@app.command()
def tune(
    preset: Annotated[str, typer.Argument(help="preset (or YAML file) with a 'search:' section; 'report' shows a study")],
    trials: Annotated[int, typer.Option(help="finished trials the study should hold")] = 20,
    storage: Annotated[str, typer.Option(help="Optuna storage URL (sqlite:///tune.db, postgresql://...)")] = "sqlite:///tune.db",
    study: Annotated[Optional[str], typer.Option(help="study name (default: the preset's name)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="folder for trial run directories and best/ (report: plots)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="fixed override for every trial: --set train.epochs=20")] = [],
    timeout: Annotated[Optional[float], typer.Option(help="stop starting trials after this many seconds")] = None,
    jobs: Annotated[int, typer.Option(help="worker processes sharing the study")] = 1,
    iw_samples: Annotated[int, typer.Option(help="importance samples of the validation IW-NLL objective")] = 100,
    metric: Annotated[Optional[str], typer.Option(
        help="objective: images val_iw_nll (default) | val_loss; recommend val_ndcg_100 (default) | "
             "val_recall_20 | val_recall_50; anomaly val_roc_auc (default) | val_average_precision; "
             "molecules val_valid_novel (default) | val_valid | val_unique | val_novelty | val_loss; "
             "or module:function, called with the trial's run directory")] = None,
    direction: Annotated[Optional[str], typer.Option(help="minimize | maximize (for a module:function metric)")] = None,
    pruner: Annotated[str, typer.Option(help="median | hyperband | none")] = "median",
    seed: Annotated[int, typer.Option(help="sampler seed")] = 0,
):
    """Hyperparameter search with Optuna (TPE + pruning); resumable, shareable through --storage.

    Works for image presets (mnist, digits), text (ptb, text), molecules (moses, zinc250k,
    molecules), recommend presets (ml-100k) and anomaly presets (adbench-cardio, or a YAML
    file of your own with application: anomaly).

    `vaekit tune report --storage URL --study NAME [--out DIR]` prints the trials as a
    Markdown table and writes Optuna's plots to DIR.
    """
    from vaekit import tune as tuning

    if preset == "report":
        if study is None:
            raise typer.BadParameter("report needs --study NAME", param_hint="--study")
        print_text(tuning.report(storage, study, out))
        return
    name = study or Path(preset).stem
    base = load_preset(preset)
    fixed = [apply_override(base, o) for o in set_]
    result = tuning.tune(preset, base, out or Path("runs") / f"tune-{name}", storage, name, trials, timeout,
                         jobs, iw_samples, seed, pruner, metric, direction, fixed=fixed)
    print_text(json.dumps(result, indent=2))


@app.command()
def compare(runs_: Annotated[list[Path], typer.Argument(metavar="RUN...", help="run directories")],
            out: Annotated[Optional[Path], typer.Option(help="also write the table to this file")] = None):
    """A Markdown table of runs: the settings that differ and their metrics."""
    from vaekit.tune import compare as compare_runs

    table = compare_runs(runs_)
    print_text(table)
    if out is not None:
        out.write_text(table)


@app.command()
def presets():
    """List the bundled presets and the application each one is for."""
    for name in preset_names():
        console.print(f"{name:16s} {load_preset(name).get('application', 'images')}", highlight=False)


_ARGV: list[str] = []


def main(argv: list[str] | None = None) -> int:
    _ARGV[:] = list(argv) if argv is not None else sys.argv[1:]
    try:
        app(args=argv, standalone_mode=False)
    except TrainingInterrupted as e:
        err_console.print(f"interrupted: {e}", highlight=False, markup=False, soft_wrap=True)
        return 130
    except VaekitError as e:
        err_console.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)
        return 2
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.TyperException as e:  # usage errors: bad option values, missing arguments
        show = getattr(e, "show", None)
        if show is None:
            raise
        show()
        return getattr(e, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
