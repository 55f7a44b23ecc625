"""``vaekit serve``: load run directories, check the binding, run uvicorn."""

from __future__ import annotations

import socket
from typing import Callable

from vaekit.errors import ConfigError
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


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts so that a taken port is a
    one-line error rather than a log line after start-up.

    Made with the protocol that ``getaddrinfo`` names (IPPROTO_TCP), not the default 0:
    asyncio's event loop turns Nagle's algorithm off (TCP_NODELAY) only on connections
    whose socket says TCP, and with Nagle on, a response written in two parts (headers,
    then body) waits for the client's delayed ACK (40 ms on Linux) where uvloop, which
    sets it on every TCP connection, is not installed."""
    try:
        family, kind, proto = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][:3]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(specs: list[str], settings: ServeSettings, api_key: str | None = None,
          on_start: Callable[[object, int], None] | None = None) -> None:
    import uvicorn

    app = build(specs, settings, api_key)
    sock = bind(settings.host, settings.port)
    if on_start is not None:
        on_start(app, sock.getsockname()[1])
    config = uvicorn_config(app, settings)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def uvicorn_config(app, settings: ServeSettings):
    """uvicorn's settings for the service. Requests in flight are limited by the app
    (``ConcurrencyLimitMiddleware``, JSON 503); uvicorn's own limit, which counts open
    connections, idle ones included, is only a backstop against running out of sockets.
    Connections that send nothing are closed after ``idle_timeout_s``, new ones too
    (:func:`idle_timeout_protocol`)."""
    import uvicorn

    return uvicorn.Config(app, log_level=settings.log_level, limit_concurrency=4 * settings.max_concurrency + 64,
                          timeout_keep_alive=settings.idle_timeout_s, server_header=False, proxy_headers=False,
                          http=idle_timeout_protocol())


def idle_timeout_protocol():
    """uvicorn's HTTP protocol (httptools where installed, else h11, as its ``auto``
    picks) with its keep-alive timer also started when a connection opens. uvicorn starts
    that timer only after a response, so a connection that never sent a request stayed
    open for good, and enough of them took every connection the server allows. The
    timer is the one uvicorn cancels when data arrives, so a request that is being sent
    is unaffected; one trickled byte by byte is not caught (a reverse proxy is the remedy)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    class IdleTimeoutProtocol(Base):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if getattr(self, "timeout_keep_alive_task", None) is None:
                self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                    self.timeout_keep_alive_handler)

    return IdleTimeoutProtocol
