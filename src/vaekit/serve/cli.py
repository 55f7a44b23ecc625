"""``vaekit serve RUN [RUN ...]``: the command (registered by :mod:`vaekit.cli`).

Imports nothing of FastAPI until it runs, so the CLI works without the ``serve`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from vaekit.errors import ConfigError
from vaekit.serve.settings import MiB, ServeSettings

D = ServeSettings()


def serve_command(
    runs_: Annotated[list[str], typer.Argument(metavar="RUN...", help="run directories: PATH or NAME=PATH")],
    host: Annotated[str, typer.Option(help="address to bind; other than loopback needs an API key")] = D.host,
    port: Annotated[int, typer.Option(help="TCP port")] = D.port,
    batching: Annotated[bool, typer.Option(help="batch concurrent requests into one forward pass")] = D.batching,
    batch_window_ms: Annotated[float, typer.Option(help="longest wait for a batch to fill (ms)")] = D.batch_window_ms,
    max_batch_rows: Annotated[int, typer.Option(help="rows in one batched forward pass")] = D.max_batch_rows,
    max_body_mib: Annotated[float, typer.Option(help="request body limit in MiB (413 beyond)")] = D.max_body_bytes / MiB,
    max_rows: Annotated[int, typer.Option(help="rows in one request")] = D.max_rows,
    max_samples: Annotated[int, typer.Option(help="samples in one request")] = D.max_samples,
    max_steps: Annotated[int, typer.Option(help="interpolation steps in one request")] = D.max_steps,
    max_seq_len: Annotated[int, typer.Option(help="items in one recommender history")] = D.max_seq_len,
    max_concurrency: Annotated[int, typer.Option(help="requests in flight before 503")] = D.max_concurrency,
    api_key_file: Annotated[Optional[Path], typer.Option(
        help="file holding the API key (or set $VAEKIT_API_KEY); required to bind beyond loopback")] = None,
    torch_threads: Annotated[int, typer.Option(help="torch threads per forward pass")] = D.torch_threads,
    compute_threads: Annotated[int, typer.Option(
        help="threads running forward passes (more: a slow request holds up fewer others)")] = D.compute_threads,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = D.log_level,
    idle_timeout: Annotated[float, typer.Option(
        help="seconds a connection may stay open without sending anything")] = D.idle_timeout_s,
):
    """Serve models over HTTP (FastAPI + uvicorn) with the latent-space explorer at /.

    The OpenAPI spec is at /openapi.json; endpoints live under /v1/models/NAME/. Model
    files are safetensors + JSON only: a run directory holding a pickle is refused.
    """
    try:
        import fastapi
        import uvicorn
    except ImportError as e:
        raise ConfigError(f"serving needs the serve extra: pip install 'vaekit[serve]' ({e})") from None
    del fastapi, uvicorn
    from vaekit.serve.security import load_api_key
    from vaekit.serve.server import serve

    try:
        settings = ServeSettings(
            host=host, port=port, batching=batching, batch_window_ms=batch_window_ms, max_batch_rows=max_batch_rows,
            max_body_bytes=int(max_body_mib * MiB), max_rows=max_rows, max_samples=max_samples,
            max_steps=max_steps, max_seq_len=max_seq_len, max_concurrency=max_concurrency,
            torch_threads=torch_threads, compute_threads=compute_threads, log_level=log_level,
            idle_timeout_s=idle_timeout)
    except ValidationError as e:
        err = e.errors()[0]
        option = {"max_body_bytes": "max_body_mib", "idle_timeout_s": "idle_timeout"}.get(str(err["loc"][0]),
                                                                                         str(err["loc"][0]))
        raise ConfigError(f"--{option.replace('_', '-')}: {err['msg']}") from None
    key = load_api_key(api_key_file)

    def announce(app, port: int) -> None:
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        typer.echo(f"serving {', '.join(app.state.model_names)} at http://{shown}:{port}/ (explorer), "
                   f"/openapi.json (API){'; API key required' if key else ''}")

    serve(runs_, settings, key, on_start=announce)
