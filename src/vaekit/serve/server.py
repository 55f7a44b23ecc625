"""``vaekit serve``: load run directories, check the binding, run uvicorn."""

from __future__ import annotations

from typing import Callable

from vaekit.serve.settings import ServeSettings


def build(specs: list[str], settings: ServeSettings, api_key: str | None = None):
    """The app for these run directories (``NAME=PATH`` or ``PATH``), after every check."""
    import torch

    from vaekit.serve.app import create_app
    from vaekit.serve.loading import load_models
    from vaekit.serve.security import check_bind

    check_bind(settings.host, api_key)
    torch.set_num_threads(settings.torch_threads)
    return create_app(load_models(specs, settings), settings, api_key)


def serve(specs: list[str], settings: ServeSettings, api_key: str | None = None,
          on_start: Callable[[object], None] | None = None) -> None:
    import uvicorn

    app = build(specs, settings, api_key)
    if on_start is not None:
        on_start(app)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                limit_concurrency=settings.max_concurrency, timeout_keep_alive=5, server_header=False,
                proxy_headers=False)
