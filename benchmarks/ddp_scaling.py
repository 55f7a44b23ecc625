"""Training throughput with 1 and N processes under torchrun (DDP), same per-process batch.

Runs `torchrun --standalone --nproc_per_node=P -m vaekit train PRESET` for each P, reads
the trainer's own `samples_per_second` (time inside training steps, all ranks together)
from `metrics.jsonl`, and reports the median over the epochs after the first (warm-up).
On CPU each process gets `cores / P` threads (gloo); with `--device cuda` each process
drives one GPU (NCCL) and P defaults to 1..number of GPUs.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/ddp_scaling.py
    VAEKIT_DATA_DIR=... python benchmarks/ddp_scaling.py --device cuda --batch-size 1024
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402


def run(nproc: int, args, threads: int, out: Path) -> dict:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    cmd = [torchrun, "--standalone", f"--nproc_per_node={nproc}", "-m", "vaekit", "train", args.preset,
           "--out", str(out), "--overwrite", "--no-progress", "--epochs", str(args.epochs),
           "--set", f"train.batch_size={args.batch_size}", "--set", "train.patience=null",
           "--set", f"train.device={args.device}", "--set", f"train.threads={threads}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if nproc == 1:  # torchrun with one process still runs as a plain process (no DDP)
        cmd = [sys.executable, "-m", "vaekit", *cmd[cmd.index("train"):]]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{nproc} process(es) failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    sps = [r["samples_per_second"] for r in rows[1:]] or [rows[0]["samples_per_second"]]
    return {"nproc": nproc, "threads_per_proc": threads, "samples_per_second": round(statistics.median(sps), 1),
            "per_epoch": sps, "wall_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="mnist")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128, help="per process")
    p.add_argument("--device", default="cpu")
    p.add_argument("--procs", default=None, help="comma-separated process counts (default 1,2 on CPU)")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    if args.procs:
        procs = [int(x) for x in args.procs.split(",")]
    elif args.device.startswith("cuda"):
        import torch

        procs = list(range(1, torch.cuda.device_count() + 1))
    else:
        procs = [1, 2]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in procs:
            threads = max(1, cores // n) if args.device == "cpu" else 1
            results.append(run(n, args, threads, Path(tmp) / f"p{n}"))
            print(results[-1], flush=True)
    base = results[0]["samples_per_second"]
    for r in results:
        r["speedup"] = round(r["samples_per_second"] / base, 3)
        r["efficiency"] = round(r["speedup"] / r["nproc"], 3)
    by_n = {r["nproc"]: r for r in results}
    payload = {
        "benchmark": "ddp_scaling",
        "date": now(),
        "machine": machine(),
        "versions": versions(),
        "command": " ".join(sys.argv),
        "config": {"preset": args.preset, "epochs": args.epochs, "batch_size_per_process": args.batch_size,
                   "device": args.device},
        "metrics": {"sps_1proc": by_n.get(1, {}).get("samples_per_second"),
                    "sps_2proc": by_n.get(2, {}).get("samples_per_second"), "runs": results},
    }
    lines = ["| processes | threads each | samples/s | speed-up | efficiency |", "|---|---|---|---|---|"]
    lines += [f"| {r['nproc']} | {r['threads_per_proc']} | {r['samples_per_second']:.0f} | {r['speedup']:.2f}x | "
              f"{r['efficiency']:.0%} |" for r in results]
    m = payload["machine"]
    md = "\n".join(lines) + f"\n\n{args.preset}, batch {args.batch_size} per process, {args.device}; " \
         f"{m['cpu']} ({m['cores']} cores){', ' + m['gpu'] if 'gpu' in m else ''}; torch {payload['versions']['torch']}; {payload['date']}.\n"
    write_results("ddp_scaling", payload, md)
    print(md)


if __name__ == "__main__":
    main()
