"""Property-based API testing of ``vaekit serve`` with Schemathesis, against its own spec.

Serves one model of each kind (an image VAE on scikit-learn's digits, an anomaly detector
on a generated table, a Mult-VAE recommender, a VAE transformer, a sentence VAE on
generated sentences and, when RDKit is installed, a SELFIES molecule VAE on RDKit's
bundled NCI sample), then runs
``schemathesis run /openapi.json --checks all`` with a bounded number of examples per
operation (its coverage phase adds boundary values of every schema: empty, longest,
smallest, largest, wrong types). Reports the failures by kind:

- server errors (ST101/ST102): any 5xx;
- schema violations (ST103-ST110): a status code, content type, header or response body
  that the spec does not describe;
- input handling (ST201-ST205): invalid requests accepted, valid requests refused, wrong
  answers to undeclared methods.

    python benchmarks/schemathesis_run.py --max-examples 50

Results: ``benchmarks/results/schemathesis.json`` and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402
from serve_load import start_server  # noqa: E402

RUNS = Path(__file__).resolve().parent / "runs" / "schemathesis"
SERVER_ERRORS = {"ST101", "ST102"}
SCHEMA_VIOLATIONS = {"ST103", "ST104", "ST105", "ST106", "ST107", "ST108", "ST109", "ST110"}


def tiny_models(root: Path) -> list[str]:
    """One small model of each kind, trained in well under a minute (kept for reruns)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.datasets import load_digits

    from vaekit.anomaly import VAEDetector
    from vaekit.apps import images
    from vaekit.config import build_config
    from vaekit.recommend import MultVAERecommender
    from vaekit.reduction import VAETransformer

    rng = np.random.default_rng(0)
    if not (root / "digits" / "model.safetensors").exists():
        cfg = build_config({"data": {"name": "digits"}, "model": {"architecture": "mlp", "latent_dim": 4, "hidden": [64]},
                            "train": {"epochs": 10, "batch_size": 32, "patience": None, "seed": 0}})
        images.train(cfg, root / "digits", overwrite=True, progress=False, log=lambda _m: None, figures=False)
    if not (root / "fraud" / "detector.json").exists():
        table = pd.DataFrame({"amount": rng.lognormal(4, 0.5, 1000), "hour": rng.integers(0, 24, 1000).astype(float),
                              "kind": rng.choice(["card", "cash", "wire"], 1000)})
        VAEDetector(max_steps=500, random_state=0).fit(table).save(root / "fraud")
    if not (root / "shop" / "recommender.json").exists():
        x = (rng.random((300, 50)) < 0.1).astype(np.float32)
        MultVAERecommender(hidden=[32], latent_dim=8, epochs=10, batch_size=50).fit(
            sp.csr_matrix(x), item_ids=[f"item{j}" for j in range(50)]).save(root / "shop")
    if not (root / "embed" / "config.json").exists():
        VAETransformer(n_components=2, hidden_layer_sizes=(64,), max_iter=20, random_state=0).fit(
            load_digits().data / 16.0).save(root / "embed")
    if not (root / "words" / "model.safetensors").exists():
        tiny_text(root)
    names = ["digits", "fraud", "shop", "embed", "words"]
    if tiny_molecules(root):
        names.append("mols")
    return [str(root / name) for name in names]


def tiny_text(root: Path) -> None:
    import numpy as np

    from vaekit.text import app as text
    from vaekit.text.config import build_text_config

    rng = np.random.default_rng(0)
    parts = (["the cat", "a dog", "my friend"], ["sees", "likes", "wants"], ["the ball", "a fish", "some bread"])
    (root / "sentences.txt").write_text("\n".join(" ".join(rng.choice(p) for p in parts) for _ in range(300)) + "\n")
    cfg = build_text_config({"data": {"name": "text", "path": str(root / "sentences.txt"), "min_count": 1,
                                      "max_len": 12},
                             "model": {"hidden": 32, "embedding_dim": 16, "latent_dim": 4},
                             "train": {"epochs": 6, "batch_size": 32, "patience": None, "seed": 0}})
    text.train(cfg, root / "words", overwrite=True, progress=False, log=lambda _m: None)


def tiny_molecules(root: Path) -> bool:
    """A small SELFIES VAE on 200 molecules of RDKit's NCI sample; False without RDKit or selfies."""
    try:
        import selfies  # noqa: F401 - the preset's representation
        from rdkit import RDConfig
    except ImportError:
        return False
    if (root / "mols" / "model.safetensors").exists():
        return True
    from vaekit.config import load_preset
    from vaekit.molecules import app
    from vaekit.molecules.config import build_molecule_config

    with open(Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi") as f:
        smiles = [line.split()[0] for line in f if line.strip()][:200]
    (root / "lib.smi").write_text("\n".join(smiles) + "\n")
    config = build_molecule_config(load_preset("molecules"), [
        f"data.path={root / 'lib.smi'}", "data.max_len=60", "model.hidden=32", "model.embedding_dim=8",
        "model.latent_dim=4", "model.property_hidden=8", "train.epochs=2", "train.batch_size=32", "eval.max_len=70"])
    app.train(config, root / "mols", overwrite=True, progress=False, log=lambda _m: None)
    return True


def classify(report: dict) -> dict:
    failures = report.get("failures", [])
    count = lambda codes: sum(f["count"] for f in failures if f["code"] in codes)  # noqa: E731
    other = [f for f in failures if f["code"] not in SERVER_ERRORS | SCHEMA_VIOLATIONS]
    return {"operations_tested": report["operations"]["tested"], "test_cases": report["test_cases"]["generated"],
            "server_errors_5xx": count(SERVER_ERRORS), "schema_violations": count(SCHEMA_VIOLATIONS),
            "input_handling_findings": sum(f["count"] for f in other), "errors": len(report.get("errors", [])),
            "failures": [{k: f[k] for k in ("code", "title", "count", "operations")} for f in failures]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-examples", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checks", default="all")
    args = ap.parse_args()
    os.environ.setdefault("VAEKIT_OFFLINE", "1")
    RUNS.mkdir(parents=True, exist_ok=True)
    specs = tiny_models(RUNS)
    proc, port = start_server(specs, True, 1.0)
    started = time.time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report_path = Path(tmp) / "report.json"
            st = Path(sys.executable).with_name("schemathesis")
            cmd = [str(st), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", args.checks,
                   "--max-examples", str(args.max_examples), "--seed", str(args.seed), "--workers", "1",
                   "--report", "json", "--report-json-path", str(report_path)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            print(out.stdout[-6000:])
            report = json.loads(report_path.read_text())
    finally:
        proc.terminate()
        proc.wait(30)
    metrics = classify(report)
    payload = {"benchmark": "schemathesis", "date": now(), "machine": machine(),
               "versions": versions("schemathesis", "fastapi", "pydantic"), "command": "python " + shlex.join(sys.argv),
               "config": {"max_examples": args.max_examples, "seed": args.seed, "checks": args.checks,
                          "phases": report.get("phases"),
                          "models": ["image (digits)", "anomaly (table)", "recommender", "reduction (digits)",
                                     "text (sentences)"] + (["molecules (NCI sample)"] if len(specs) > 5 else []),
                          "wall_s": round(time.time() - started, 1)},
               "metrics": metrics,
               "goals": {"zero_5xx": metrics["server_errors_5xx"] == 0,
                         "zero_schema_violations": metrics["schema_violations"] == 0}}
    lines = ["| operations | test cases | 5xx | schema violations | input-handling findings |",
             "|---|---|---|---|---|",
             f"| {metrics['operations_tested']} | {metrics['test_cases']} | {metrics['server_errors_5xx']} | "
             f"{metrics['schema_violations']} | {metrics['input_handling_findings']} |", ""]
    lines += [f"- {f['code']} {f['title']}: {f['count']} ({', '.join(f['operations'])})" for f in metrics["failures"]]
    md = "\n".join(lines) + (f"\n\nschemathesis {versions('schemathesis')['schemathesis']}, --checks {args.checks}, "
                             f"--max-examples {args.max_examples}, seed {args.seed}; {now()}.\n")
    path = write_results("schemathesis", payload, md)
    print(md)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
