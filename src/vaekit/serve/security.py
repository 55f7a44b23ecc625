"""Who may call the service and how much they may send.

- The server binds to 127.0.0.1 by default. Binding anywhere else needs an API key, read
  from the environment (``VAEKIT_API_KEY``) or a file (``--api-key-file``), never from the
  command line, where it would show in ``ps`` and shell history. With a key set, every
  ``/v1`` call must send it in the ``X-API-Key`` header; it is compared in constant time
  (:func:`hmac.compare_digest`).
- :class:`BodyLimitMiddleware` answers 413 to a body over the limit, whether the client
  announced its length (``Content-Length``) or streams it in chunks.
- :class:`SecurityHeadersMiddleware` adds a strict Content-Security-Policy (the page loads
  nothing from elsewhere) and ``nosniff`` to every response.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from pathlib import Path

from starlette.exceptions import HTTPException

from vaekit.errors import ConfigError

API_KEY_ENV = "VAEKIT_API_KEY"
API_KEY_HEADER = "X-API-Key"
MIN_KEY_LENGTH = 16
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_api_key(key_file: str | Path | None = None, environ: dict | None = None) -> str | None:
    """The API key from ``--api-key-file`` or ``$VAEKIT_API_KEY`` (the file wins), or None."""
    environ = os.environ if environ is None else environ
    if key_file is not None:
        path = Path(key_file)
        try:
            key = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(f"API key file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read the API key file {path}: {e}") from None
        source = f"API key file {path}"
    elif environ.get(API_KEY_ENV):
        key, source = environ[API_KEY_ENV].strip(), f"${API_KEY_ENV}"
    else:
        return None
    if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
        raise ConfigError(f"{source}: the API key must be at least {MIN_KEY_LENGTH} characters without spaces")
    return key


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve beyond this machine without an API key."""
    if not is_loopback(host) and api_key is None:
        raise ConfigError(f"binding to {host} exposes the models beyond this machine: set an API key in "
                          f"${API_KEY_ENV} or pass --api-key-file FILE (never on the command line), "
                          f"or bind to 127.0.0.1")


def key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (the time does not depend on where the strings differ)."""
    return hmac.compare_digest((given or "").encode("utf-8"), expected.encode("utf-8"))


async def _send_json(send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTP exceptions raised while it reads a body
    on to its handlers, so the client gets 413 with this message, not a parse error."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than the limit of {limit} bytes")


class BodyLimitMiddleware:
    """413 for request bodies over ``limit`` bytes, announced or streamed (chunked)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    return await _send_json(send, 400, "invalid Content-Length header")
                if announced > self.limit:
                    return await _send_json(send, 413, BodyTooLarge(self.limit).detail)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return msg

        async def tracking_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as e:
            if not started:
                await _send_json(send, 413, e.detail)


def host_name(header: str) -> str:
    """The name part of a Host header: ``[::1]:8000`` -> ``::1``, ``localhost:80`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_loopback_name(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a DNS name: not one that is known to point here
        return False


class LoopbackHostMiddleware:
    """400 for a request whose Host header is not a loopback name, on a server without an
    API key (which may only listen on loopback). A web page the browser fetched from another
    origin can reach 127.0.0.1 through DNS rebinding (its own name re-pointed at
    127.0.0.1); its requests then carry that name as Host and are refused here."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
        if not _is_loopback_name(host_name(host)):
            return await _send_json(send, 400, f"Host header {host!r} is not a loopback name; without an API "
                                               "key the service answers only requests addressed to localhost")
        return await self.app(scope, receive, send)


class ConcurrencyLimitMiddleware:
    """503 as JSON, with ``Retry-After``, for a request that finds ``limit`` others in flight.

    Counted here, per request, rather than by uvicorn per connection: a client holding
    idle connections open then takes no capacity from requests, and the health probes
    (``exempt``) answer however busy the models are."""

    def __init__(self, app, limit: int, exempt: tuple[str, ...] = ("/healthz", "/readyz")):
        self.app, self.limit, self.exempt = app, limit, exempt
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            return await _send_json(send, 503, f"busy: {self.limit} requests in flight; retry shortly",
                                    [(b"retry-after", b"1")])
        self.in_flight += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class SecurityHeadersMiddleware:
    HEADERS = [
        (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                     b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                                     b"base-uri 'none'; form-action 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(msg):
            if msg["type"] == "http.response.start":
                msg = {**msg, "headers": [*msg.get("headers", []), *self.HEADERS]}
            await send(msg)

        await self.app(scope, receive, with_headers)
