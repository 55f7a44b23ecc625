"""What the `vaekit` commands do with a molecule run (the main CLI dispatches here)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vaekit.errors import DataError

console = Console()
err_console = Console(stderr=True)


def is_molecule_run(run: Path) -> bool:
    from vaekit.molecules.app import is_molecule_run as check

    return check(run)


def train(base: dict | None, overrides: list[str], run_dir: Path, overwrite: bool, resume: bool, progress: bool,
          command: str, dist) -> Path:
    from vaekit.errors import VaekitError
    from vaekit.molecules import app
    from vaekit.molecules.config import MoleculeConfig, build_molecule_config

    if dist is not None:
        raise VaekitError("molecule runs train in one process; run `vaekit train` without torchrun")
    config = MoleculeConfig() if resume else build_molecule_config(base, overrides)
    return app.train(config, run_dir, overwrite=overwrite, resume=resume, progress=progress, log=console.print,
                     command=command)


def write_csv(rows: list[dict], path: Path) -> Path:
    if path.suffix.lower() != ".csv":
        raise DataError(f"--out {path}: molecules are written as .csv (a PNG grid is drawn beside it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def sample(run: Path, n: int, out: Path, seed: int, strategy: str, temperature: float) -> None:
    """Molecules from the prior: a CSV (SMILES, validity, QED, logP, SA, penalized logP,
    novelty against the training set when its files are at hand) and a PNG grid."""
    from vaekit.molecules import app

    model = app.load_run(run)
    if out.suffix.lower() == ".png":
        out = out.with_suffix(".csv")
    smiles = app.sample(model, n, strategy, temperature, seed)
    try:
        train = app.training_set(model.config)
    except DataError:
        train = None  # the training files are not here: novelty is left out
    rows = app.describe(smiles, train)
    path = write_csv(rows, out)
    valid = [r["smiles"] for r in rows if r["valid"]]
    console.print(f"wrote {path}: {len(valid)} of {n} valid ({len(set(valid))} distinct)")
    if valid:
        grid = app.draw_grid(valid[:24], out.with_suffix(".png"), legends=[""] * min(len(valid), 24))
        console.print(f"wrote {grid}")


def reconstruct(run: Path, smiles: str, strategy: str) -> None:
    from vaekit.molecules import app

    model = app.load_run(run)
    out = app.reconstruct(model, smiles, strategy)
    console.print(out or "(not a valid molecule)", highlight=False, markup=False)


def interpolate(run: Path, a: str, b: str, steps: int, out: Path | None) -> None:
    from vaekit.molecules import app

    model = app.load_run(run)
    path = app.interpolate(model, a, b, steps)
    for s in path:
        console.print(s or "(not a valid molecule)", highlight=False, markup=False)
    if out is not None and any(path):
        console.print(f"wrote {app.draw_grid(path, out, per_row=min(steps, 8), legends=[str(i) for i in range(len(path))])}")


def evaluate(run: Path, n_samples: int | None, n_test: int | None) -> dict:
    from vaekit.molecules import app

    return app.evaluate(run, n_samples, n_test, log=lambda m: err_console.print(m, highlight=False))


def optimize(run: Path, objective: str, budget: int, method: str, starts: list[str], top: int, out: Path | None,
             seed: int) -> None:
    from vaekit.molecules import app
    from vaekit.molecules.optimize import check_objective, optimize as search

    check_objective(objective, method)  # before loading anything
    model = app.load_run(run)
    try:
        train = app.training_set(model.config)
    except DataError:
        train = None
    result = search(model, objective, budget, method, starts or None, train=train, top=top, seed=seed)
    table = Table("rank", "SMILES", objective, "QED", "SA", "novel", "sim. to start",
                  title=f"{method}: {result['evaluated']} candidates, {100 * result['valid_fraction']:.1f}% valid")
    for i, r in enumerate(result["best"], 1):
        sim = r["similarity_to_start"]
        table.add_row(str(i), r["smiles"], f"{r['score']:.3f}", f"{r['qed']:.3f}", f"{r['sa']:.2f}",
                      str(r.get("novel", "?")), "-" if sim is None else f"{sim:.2f}")
    console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(out)
        console.print(f"wrote {out}")
