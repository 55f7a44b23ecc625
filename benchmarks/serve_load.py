"""Load test of ``vaekit serve`` on loopback: batched against unbatched, in one run.

Two models are served: an MNIST image VAE (``encode``, one 784-pixel image per request)
and a VAE anomaly detector on ADBench's cardio table (``score``, one 21-column row per
request, with its top contributing columns). Two servers run side by side: batching on
(its default window) and batching off (one forward pass per request). For each endpoint
and 1, 8 and 32 concurrent clients, a closed-loop async client keeps that many keep-alive
connections busy for ``--duration`` seconds (after a short warm-up) against one server,
then the other, and records every latency.

The client is a minimal asyncio HTTP/1.1 client in its own process, so the server's
numbers are not limited by a heavy client library; both share this machine's cores.

    python benchmarks/serve_load.py                       # 60 s per cell, ~13 min
    python benchmarks/serve_load.py --duration 5          # a quick look

Results: ``benchmarks/results/serve_load.json`` (``metrics.errors``,
``metrics.p99_ms_8_clients``, ``metrics.rps_batched_32``, ``metrics.rps_unbatched_32``)
and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

RUNS = Path(__file__).resolve().parent / "runs"


# -- models --------------------------------------------------------------------------
def mnist_model(path: Path, epochs: int) -> Path:
    from vaekit.apps import images
    from vaekit.config import build_config, load_preset

    if not (path / "model.safetensors").exists():
        cfg = build_config(load_preset("mnist"), [f"train.epochs={epochs}"])
        images.train(cfg, path, overwrite=True, progress=False, log=lambda m: None, figures=False)
    return path


def cardio_table():
    from vaekit.data.fetch import fetch

    with np.load(fetch("adbench-cardio")["6_cardio.npz"], allow_pickle=False) as z:
        return z["X"].astype(np.float64), z["y"].astype(int)


def anomaly_model(path: Path, steps: int) -> Path:
    from vaekit.anomaly import VAEDetector

    if not (path / "detector.json").exists():
        x, _ = cardio_table()
        VAEDetector(max_steps=steps, random_state=0, contamination=0.1).fit(x).save(path)
    return path


def payloads() -> dict[str, list[bytes]]:
    """64 single-row request bodies per endpoint: MNIST test images, cardio rows."""
    from vaekit.apps.image_data import load_image_data
    from vaekit.config import build_config, load_preset

    test = load_image_data(build_config(load_preset("mnist"), [])).test.x[:64].reshape(64, -1).numpy()
    x, _ = cardio_table()
    rows = x[np.random.default_rng(0).choice(len(x), 64, replace=False)]
    return {
        "encode": [json.dumps({"x": [[round(float(v), 4) for v in row]]}).encode() for row in test],
        "score": [json.dumps({"rows": [{f"x{j}": float(v) for j, v in enumerate(row)}], "top_k": 3}).encode()
                  for row in rows],
    }


def request_bytes(model: str, op: str, body: bytes) -> bytes:
    return (f"POST /v1/models/{model}/{op} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


# -- the server ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(specs: list[str], batching: bool, window_ms: float) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "vaekit", "serve", *specs, "--port", str(port), "--log-level", "error",
           "--batch-window-ms", str(window_ms), "--batching" if batching else "--no-batching"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not become ready")


# -- the client ----------------------------------------------------------------------
async def _one_client(port: int, requests: list[bytes], stop: float, record: bool, lat: list, errors: list):
    i = random.randrange(len(requests))
    reader = writer = None
    while time.perf_counter() < stop:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            req = requests[i % len(requests)]
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if record:
                lat.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(status)
            if b"connection: close" in head.lower():
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            if record:
                errors.append(type(e).__name__)
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _load(port: int, requests: list[bytes], clients: int, seconds: float, record: bool):
    lat, errors = [], []
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(_one_client(port, requests, stop, record, lat, errors) for _ in range(clients)))
    return lat, errors


def measure(port: int, requests: list[bytes], clients: int, seconds: float, warmup: float) -> dict:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(_load(port, requests, clients, warmup, record=False))
    t0 = time.perf_counter()
    lat, errors = runner(_load(port, requests, clients, seconds, record=True))
    wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000 if lat else np.zeros(1)
    return {"clients": clients, "requests": len(lat), "seconds": round(wall, 2), "rps": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "errors": len(errors),
            "error_kinds": sorted({str(e) for e in errors})[:5]}


# -- the run -------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds measured per cell")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--endpoints", default="encode,score")
    ap.add_argument("--window-ms", type=float, default=1.0, help="batch window of the batched server (its default)")
    ap.add_argument("--mnist-epochs", type=int, default=5)
    ap.add_argument("--anomaly-steps", type=int, default=2000)
    ap.add_argument("--name", default="serve_load", help="results file name in benchmarks/results")
    args = ap.parse_args()
    os.environ.setdefault("VAEKIT_OFFLINE", "1")
    for fast_part in ("uvloop", "httptools"):
        try:
            __import__(fast_part)
        except ImportError:
            print(f"warning: {fast_part} is not installed (pip install -e '.[serve]'); uvicorn falls back to "
                  "its pure-Python parts and serves a fraction of the requests", file=sys.stderr)
    import torch

    torch.set_num_threads(1)
    RUNS.mkdir(parents=True, exist_ok=True)
    mnist = mnist_model(RUNS / "serve-mnist", args.mnist_epochs)
    cardio = anomaly_model(RUNS / "serve-cardio", args.anomaly_steps)
    bodies = payloads()
    targets = {"encode": ("mnist", "encode"), "score": ("cardio", "score")}
    specs = [f"mnist={mnist}", f"cardio={cardio}"]
    clients = [int(c) for c in args.clients.split(",")]
    endpoints = args.endpoints.split(",")
    load_before = os.getloadavg()
    cells, started = [], time.time()
    # Both servers run side by side (an idle one costs nothing) and their cells alternate,
    # so that a change in the machine's load during the run hits both alike.
    servers = {mode: start_server(specs, mode == "batched", args.window_ms) for mode in ("batched", "unbatched")}
    try:
        for ep in endpoints:
            model, op = targets[ep]
            reqs = [request_bytes(model, op, b) for b in bodies[ep]]
            for c in clients:
                for mode, (_, port) in servers.items():
                    cell = {"mode": mode, "endpoint": ep, **measure(port, reqs, c, args.duration, args.warmup),
                            "load_average_1min": round(os.getloadavg()[0], 2)}
                    print(json.dumps(cell), flush=True)
                    cells.append(cell)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    load_after = os.getloadavg()

    def cell(mode, ep, c):
        return next((x for x in cells if x["mode"] == mode and x["endpoint"] == ep and x["clients"] == c), None)

    metrics = {"errors": sum(x["errors"] for x in cells)}
    if 8 in clients:
        metrics["p99_ms_8_clients"] = max(cell("batched", ep, 8)["p99_ms"] for ep in endpoints)
        metrics["p99_ms_8_clients_unbatched"] = max(cell("unbatched", ep, 8)["p99_ms"] for ep in endpoints)
    if 32 in clients:
        for mode in ("batched", "unbatched"):
            per = {ep: cell(mode, ep, 32)["rps"] for ep in endpoints}
            metrics[f"rps_{mode}_32"] = round(float(np.mean(list(per.values()))), 1)
            for ep, v in per.items():
                metrics[f"rps_{mode}_32_{ep}"] = v
        metrics["speedup_32"] = round(metrics["rps_batched_32"] / metrics["rps_unbatched_32"], 2)
        for ep in endpoints:
            metrics[f"speedup_32_{ep}"] = round(metrics[f"rps_batched_32_{ep}"] / metrics[f"rps_unbatched_32_{ep}"], 2)
    goals = {"zero_errors": metrics["errors"] == 0}
    if "p99_ms_8_clients" in metrics:
        goals["p99_under_50ms_at_8_clients"] = metrics["p99_ms_8_clients"] < 50
    if "speedup_32" in metrics:
        goals["batched_rps_at_32_at_least_3x"] = metrics["speedup_32"] >= 3
    payload = {
        "benchmark": "serve_load", "date": now(), "machine": {**machine(), "load_average_before": load_before,
                                                            "load_average_after": load_after},
        "versions": versions("fastapi", "uvicorn", "starlette", "pydantic", "uvloop", "httptools"),
        "command": "python " + shlex.join(sys.argv),
        "config": {"duration_s": args.duration, "warmup_s": args.warmup, "clients": clients, "endpoints": endpoints,
                   "batch_window_ms": args.window_ms, "models": {"mnist": "mnist preset (784-512-256-32 MLP), "
                                                                 f"{args.mnist_epochs} epochs",
                                                                 "cardio": f"VAEDetector, {args.anomaly_steps} steps"},
                   "request": "one row per request; encode: one MNIST test image; score: one cardio row, top 3 columns",
                   "wall_s": round(time.time() - started, 1)},
        "metrics": metrics, "goals": goals, "cells": cells,
    }
    rows = ["| server | endpoint | clients | req/s | p50 ms | p95 ms | p99 ms | errors |",
            "|---|---|---|---|---|---|---|---|"]
    order = {"batched": 0, "unbatched": 1}
    rows += [f"| {x['mode']} | {x['endpoint']} | {x['clients']} | {x['rps']} | {x['p50_ms']} | {x['p95_ms']} | "
             f"{x['p99_ms']} | {x['errors']} |" for x in sorted(cells, key=lambda x: order[x["mode"]])]
    parts = ", ".join(f"{k} {v}" if v else f"no {k}" for k, v in payload["versions"].items()
                      if k in ("uvloop", "httptools"))
    md = ("\n".join(rows) + f"\n\n{machine()['cpu']}, {os.cpu_count()} cores shared by server and client "
          f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after); {parts}; {args.duration:g} s per cell; "
          f"{now()}.\n")
    path = write_results(args.name, payload, md)
    print(md)
    print(json.dumps({"metrics": metrics, "goals": goals}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
