"""Molecule VAE on MOSES: the MOSES metrics of 30,000 samples against the published models.

Claim (issue 5): valid >= 0.98 with SMILES (1.0 with SELFIES), unique@10k >= 0.998,
novelty >= 0.90, FCD/Test <= 0.5, with the KL clearly above zero.

Protocol (Polykovskiy et al. 2020)
- Data: MOSES ``train.csv.gz`` (1,584,663 SMILES), canonicalized by RDKit; 10,000 of them
  (seeded) are held out for validation; ``--limit N`` trains on a seeded subset, stated in
  the results. The ``moses`` preset (``src/vaekit/configs/moses.yaml``) with a wall-clock
  limit of ``--train-minutes``, keeping the best weights on the validation -ELBO.
- Samples: ``--n-samples`` codes from the prior N(0, I), each decoded once by sampling
  (temperature 1); a decoding that is not a molecule counts as invalid.
- Metrics (``vaekit.molecules.metrics``): validity, unique@1k / @10k, novelty against the
  whole training file, internal diversity, filters, and FCD, SNN, fragment and scaffold
  similarity against the full test set (176,074) and scaffold test set (176,225).
- The test -ELBO and KL are measured on 10,000 (seeded) test molecules.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/moses.py --train-minutes 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _molecules import add_training_args, train_preset  # noqa: E402
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.config import load_preset  # noqa: E402
from vaekit.molecules import app  # noqa: E402

# MOSES README, table of metrics (valid, unique@10k, novelty, FCD/Test, IntDiv1)
ANCHORS = [
    ("MOSES CharVAE (published)", 0.977, 0.998, 0.695, 0.099, 0.856),
    ("MOSES JTN-VAE (published)", 1.0, 0.9996, 0.914, 0.395, 0.855),
    ("MOSES CharRNN (published)", 0.975, 0.999, 0.842, 0.073, 0.856),
    ("MOSES AAE (published)", 0.937, 0.997, 0.793, 0.556, 0.856),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(p, "moses")
    p.add_argument("--n-samples", type=int, default=30_000)
    args = p.parse_args()
    log = lambda m: print(m, flush=True)  # noqa: E731
    started = time.perf_counter()
    run, train_seconds, overrides = train_preset(args, "moses", log)
    result = app.evaluate(run, args.n_samples, log=log)
    model = app.load_run(run)
    shown = [s for s in app.sample(model, 48, seed=1) if s][:24]
    grid = Path(__file__).resolve().parent / "results" / f"{args.results_name}_samples.png"
    app.draw_grid(shown, grid, legends=[""] * len(shown))
    metrics = {
        "valid": result["valid"], "unique_1k": result["unique@1k"], "unique_10k": result["unique@10k"],
        "novelty": result["novelty"], "fcd_test": result["fcd_test"], "fcd_testsf": result["fcd_test_sf"],
        "snn_test": result["snn_test"], "frag_test": result["frag_test"], "scaf_test": result["scaf_test"],
        "int_div": result["int_div1"], "int_div2": result["int_div2"], "filters": result["filters"],
        "kl": result["kl"], "test_neg_elbo": result["test_neg_elbo"], "active_units": result["active_units"],
        "train_seconds": round(train_seconds, 1),
    }
    report = model.config.data.model_dump()
    goal = {"valid": metrics["valid"] >= (1.0 if report["representation"] == "selfies" else 0.98),
            "unique_10k_at_least_0.998": metrics["unique_10k"] >= 0.998, "novelty_at_least_0.90": metrics["novelty"] >= 0.90,
            "fcd_test_at_most_0.5": metrics["fcd_test"] <= 0.5, "kl_above_zero": metrics["kl"] > 1.0}
    import json

    data_report = json.loads((run / "data_report.json").read_text())
    payload = {"benchmark": "moses", "date": now(), "machine": machine(), "versions": versions("rdkit", "selfies", "fcd"),
               "command": "python benchmarks/moses.py " + " ".join(sys.argv[1:]),
               "config": {"preset": load_preset("moses"), "overrides": overrides}, "data": data_report,
               "metrics": metrics, "goal": goal, "evaluation": result, "samples": shown,
               "wall_seconds": round(time.perf_counter() - started, 1)}
    n_train = data_report["train"]["kept"]
    lines = [
        f"MOSES, {result['n_generated']} samples from the prior; trained "
        f"{train_seconds / 60:.0f} min on {n_train} molecules ({report['representation']}).", "",
        "| model | valid | unique@10k | novelty | FCD/Test | FCD/TestSF | SNN/Test | Frag/Test | Scaf/Test | IntDiv1 | filters |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| vaekit ({report['representation']}) | {metrics['valid']:.4f} | {metrics['unique_10k']:.4f} | "
        f"{metrics['novelty']:.4f} | {metrics['fcd_test']:.3f} | {metrics['fcd_testsf']:.3f} | {metrics['snn_test']:.3f} | "
        f"{metrics['frag_test']:.3f} | {metrics['scaf_test']:.3f} | {metrics['int_div']:.3f} | {metrics['filters']:.3f} |",
    ]
    for name, valid, uniq, nov, fcd, intdiv in ANCHORS:
        lines.append(f"| {name} | {valid} | {uniq} | {nov} | {fcd} | - | - | - | - | {intdiv} | - |")
    lines += ["", f"Test -ELBO {metrics['test_neg_elbo']:.2f} nats, KL {metrics['kl']:.2f} nats, "
                  f"{metrics['active_units']} of {result['latent_dim']} active units.", "",
              "Goals: " + ", ".join(f"{k} = {v}" for k, v in goal.items())]
    m = payload["machine"]
    lines += ["", f"{m.get('cpu')} ({m.get('cores')} cores, {args.threads} thread(s)), device {args.device}, "
                  f"torch {torch.__version__}; {payload['date']}; wall time {payload['wall_seconds']:.0f} s."]
    path = write_results(args.results_name, payload, "\n".join(lines) + "\n")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
