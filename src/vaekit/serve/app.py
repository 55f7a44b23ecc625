"""The FastAPI application: one set of routes per served model, the explorer page, health.

    GET  /healthz, /readyz                       liveness, readiness
    GET  /v1/models                              every model with its metadata and limits
    GET  /v1/models/NAME                         one model
    POST /v1/models/NAME/OPERATION               encode, decode, sample, reconstruct, interpolate,
                                                 score, recommend, transform (as the kind allows)
    GET  /v1/models/NAME/latent-map|examples     explorer data
    GET  /openapi.json                           the spec, with each model's own shapes
    GET  /                                       the latent-space explorer (static files)

Every error is JSON ``{"detail": "..."}`` with a 4xx status that says whose fault it was;
an unexpected failure is a bare 500 ``{"detail": "internal error"}`` (logged, never a
stack trace in the body). Forward passes run on a compute thread, batched
(:mod:`vaekit.serve.batching`) unless batching is off.
"""

import asyncio
import gc
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException

from vaekit import __version__
from vaekit.errors import VaekitError
from vaekit.serve.base import NAME_PATTERN, InputError, Operation, ServedModel
from vaekit.serve.batching import Batcher, run_each
from vaekit.serve.security import (
    API_KEY_HEADER,
    BodyLimitMiddleware,
    ConcurrencyLimitMiddleware,
    LoopbackHostMiddleware,
    SecurityHeadersMiddleware,
    key_matches,
)
from vaekit.serve.settings import ServeSettings

log = logging.getLogger("vaekit.serve")
STATIC = Path(__file__).parent / "static"


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[ErrorItem] | None = Field(None, description="each validation error (at most 20)")


class ModelInfo(BaseModel):
    name: str
    kind: str
    operations: list[str]
    info: dict[str, Any]
    limits: dict[str, Any]


class ModelList(BaseModel):
    models: list[ModelInfo]


class Health(BaseModel):
    status: str


def _limits(s: ServeSettings) -> dict:
    keys = ("max_rows", "max_samples", "max_steps", "max_seq_len", "max_k", "max_body_bytes", "batching",
            "batch_window_ms", "max_batch_rows")
    return {k: getattr(s, k) for k in keys}


def _json(result: dict) -> Response:
    try:
        body = json.dumps(result, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise InputError("the model produced non-finite values for this input") from None
    return Response(body, media_type="application/json")


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:500]


def _validation_response(errors: list[dict]) -> JSONResponse:
    if errors and errors[0].get("type") == "json_invalid":
        ctx = errors[0].get("ctx") or {}
        loc = [p for p in errors[0].get("loc", ()) if p != "body"]
        pos = f" at position {loc[0]}" if loc else ""
        return JSONResponse({"detail": f"malformed JSON{pos}: {ctx.get('error', 'cannot parse the body')}"}, 400)
    items = []
    for e in errors[:20]:
        loc = [p for p in e.get("loc", ()) if p != "body"]
        items.append({"loc": [p if isinstance(p, (int, str)) else str(p) for p in loc], "msg": str(e.get("msg", ""))})
    head = items[0] if items else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in head["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return JSONResponse({"detail": f"{where}: {head['msg']}{more}", "errors": items}, 422)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_request, exc: RequestValidationError):
        return _validation_response(exc.errors())

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse({"detail": detail}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(InputError)
    async def input_error(_request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, exc.status)

    @app.exception_handler(VaekitError)
    async def vaekit_error(_request, exc: VaekitError):
        return JSONResponse({"detail": _first_line(exc)}, 422)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, 500)


def create_app(models: list[ServedModel], settings: ServeSettings | None = None,
               api_key: str | None = None) -> FastAPI:
    """The service for already loaded models (see :func:`vaekit.serve.loading.load_models`)."""
    settings = settings or ServeSettings()
    by_name = {m.name: m for m in models}
    executor = ThreadPoolExecutor(settings.compute_threads, thread_name_prefix="vaekit-compute")
    batchers: dict[tuple[str, str], Batcher] = {}
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(_app):
        executor.submit(torch.set_num_threads, settings.torch_threads).result()
        if settings.batching:
            for m in models:
                for op in m.operations.values():
                    if op.batchable:
                        b = Batcher(op.run, op.rows, executor, settings.batch_window_ms / 1000, settings.max_batch_rows)
                        b.start()
                        batchers[(m.name, op.name)] = b
        # Everything loaded so far (torch, the models, their data) lives as long as the
        # server: leave it out of the garbage collector's full passes, which would
        # otherwise walk it and stall every request for tens of milliseconds.
        gc.collect()
        gc.freeze()
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            for b in batchers.values():
                await b.stop()
            batchers.clear()
            executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="vaekit inference service", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json" if api_key is None else None,
                  description="Variational autoencoders behind an API. Each served model has its own routes "
                              "under /v1/models/NAME/ with request schemas of its exact shapes. Errors are "
                              "JSON {\"detail\": ...} with a 4xx status. The explorer page is at /.")
    app.state.batchers = batchers
    app.state.model_names = list(by_name)
    _install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    if api_key is None:
        app.add_middleware(LoopbackHostMiddleware)
    app.add_middleware(ConcurrencyLimitMiddleware, limit=settings.max_concurrency)  # outermost: first to answer

    deps = []
    errors: dict = {400: {"model": ErrorBody, "description": "malformed request"},
                    413: {"model": ErrorBody, "description": "body over the size limit"},
                    415: {"model": ErrorBody, "description": "body not sent as JSON"},
                    422: {"model": ErrorBody, "description": "invalid input (shape, type, range, limit)"}}
    if api_key is not None:
        header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the server's API key")

        async def require_key(key: str | None = Security(header)):
            if not key_matches(key, api_key):
                raise HTTPException(401, f"missing or wrong API key (send it in the {API_KEY_HEADER} header)")

        deps = [Depends(require_key)]
        errors[401] = {"model": ErrorBody, "description": "missing or wrong API key"}

    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", response_model=Health, tags=["health"], summary="Readiness: models loaded, batchers running",
             responses={503: {"model": Health, "description": "starting or stopping"}})
    async def readyz():
        if not state["ready"]:
            return JSONResponse({"status": "starting"}, 503)
        return {"status": "ready"}

    def describe(m: ServedModel) -> dict:
        return {"name": m.name, "kind": m.kind, "operations": list(m.operations), "info": m.info,
                "limits": _limits(settings)}

    @app.get("/v1/models", response_model=ModelList, tags=["models"], summary="Every served model",
             dependencies=deps, responses=errors)
    async def list_models():
        return {"models": [describe(m) for m in models]}

    for m in models:
        _add_model_routes(app, m, describe(m), executor, batchers, deps, errors)
    _add_fallback_routes(app, by_name, deps)
    app.openapi = _openapi(app, models)
    if api_key is not None:  # the spec names every model and its shapes: behind the key like /v1/models
        @app.get("/openapi.json", include_in_schema=False, dependencies=deps)
        async def openapi_spec():
            return JSONResponse(app.openapi())

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_model_routes(app: FastAPI, m: ServedModel, description: dict, executor, batchers, deps, errors) -> None:
    async def info():
        return description

    app.add_api_route(f"/v1/models/{m.name}", info, methods=["GET"], response_model=ModelInfo, tags=[m.name],
                      summary=f"Metadata of {m.name}", dependencies=deps, responses=errors,
                      operation_id=f"{m.name}-info")
    for op in m.operations.values():
        handler = _handler(m, op, executor, batchers)
        app.add_api_route(f"/v1/models/{m.name}/{op.name}", handler, methods=["GET" if op.request is None else "POST"],
                          response_model=op.response, tags=[m.name], summary=op.summary,
                          description=op.description or None, dependencies=deps, responses=errors,
                          operation_id=f"{m.name}-{op.name}",
                          openapi_extra=None if op.request is None else _request_body_spec(op))


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    # no Content-Type is not JSON: a browser sends a body without one (a Blob) from any web
    # page without asking the server first, and such a POST must not run a model
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _handler(m: ServedModel, op: Operation, executor, batchers):
    """The route of one operation. The body is parsed and validated in one step by
    pydantic's JSON parser (``model_validate_json``): several times faster than
    ``json.loads`` followed by validation, which matters at hundreds of requests a second."""

    async def handler(request: Request):
        body = None
        if op.request is not None:
            if not _is_json(request.headers.get("content-type", "")):
                raise InputError("send the body as JSON (Content-Type: application/json)", 415)
            try:
                body = op.request.model_validate_json(await request.body())
            except ValidationError as e:
                return _validation_response(e.errors(include_url=False, include_input=False))
        batcher = batchers.get((m.name, op.name))
        if batcher is not None:
            work = batcher.submit(body)
        else:
            work = asyncio.get_running_loop().run_in_executor(executor, run_each, op.run, [body])
        result = await _unless_client_leaves(request, work)
        if result is CLIENT_LEFT:
            return Response(status_code=499)  # nobody reads it; uvicorn drops it
        if batcher is None:
            result = result[0]
            if isinstance(result, Exception):
                raise result
        return _json(result)

    handler.__name__ = f"{m.name}_{op.name}".replace("-", "_")
    return handler


CLIENT_LEFT = object()


async def _unless_client_leaves(request: Request, work) -> Any:
    """The result of ``work`` (the request's turn on the compute thread), or
    ``CLIENT_LEFT`` if the client disconnects first. ``work`` is then cancelled: a request
    still waiting in the batcher's queue or the executor's never runs, so clients that
    give up under load do not leave their work behind for the ones that stay. (A forward
    pass that has started runs to its end: a thread cannot be stopped.)"""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done() and not gone.done():  # this handler itself was cancelled
            task.cancel()
    if task.done():
        return task.result()
    task.cancel()
    if not gone.cancelled() and gone.exception() is not None:
        # reading the body failed (over the size limit: the middleware answers 413); the client is still there
        raise gone.exception()
    return CLIENT_LEFT


async def _disconnect(request: Request) -> None:
    """Returns when the client has gone: once the body is read, the server's next ASGI
    message for this request is ``http.disconnect`` (sent when the connection closes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _request_body_spec(op: Operation) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{op.request.__name__}"}}}}}


def _openapi(app: FastAPI, models: list[ServedModel]):
    """FastAPI's spec plus the request schemas of the routes that parse their own bodies."""
    from fastapi.openapi.utils import get_openapi

    def build():
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for m in models:
                for op in m.operations.values():
                    if op.request is not None:
                        doc = op.request.model_json_schema(ref_template="#/components/schemas/{model}")
                        schemas.update(doc.pop("$defs", {}))
                        schemas[op.request.__name__] = doc
            app.openapi_schema = spec
        return app.openapi_schema

    return build


def _add_fallback_routes(app: FastAPI, by_name: dict, deps) -> None:
    """Clear answers for unknown or path-like model names, unknown operations, wrong methods."""
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    loaded = ", ".join(sorted(by_name)) or "none"

    def check(name: str) -> ServedModel:
        if not re.match(NAME_PATTERN, name):
            raise InputError(f"model names are plain names (letters, digits, '-', '_'), not paths; "
                             f"got {name[:80]!r}", 400)
        if name not in by_name:
            raise InputError(f"unknown model {name!r}; loaded: {loaded}", 404)
        return by_name[name]

    @app.api_route("/v1/models/{name}", methods=methods, include_in_schema=False, dependencies=deps)
    async def model_fallback(name: str):
        check(name)
        raise HTTPException(405, "use GET", headers={"Allow": "GET"})

    @app.api_route("/v1/models/{name}/{op:path}", methods=methods, include_in_schema=False, dependencies=deps)
    async def op_fallback(name: str, op: str):
        m = check(name)
        if op not in m.operations:
            raise InputError(f"model {name!r} ({m.kind}) has no operation {op[:80]!r}; it has: "
                             f"{', '.join(m.operations)}", 404)
        allowed = "GET" if m.operations[op].request is None else "POST"
        raise HTTPException(405, f"use {allowed}", headers={"Allow": allowed})
