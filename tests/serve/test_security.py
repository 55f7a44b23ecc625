"""Binding, API keys, body limits and model files that are refused at start-up."""

import http.client
import pickle
import shutil
import socket
import zipfile
from contextlib import contextmanager

import pytest

from tests.serve.conftest import LOCAL
from vaekit.cli import main
from vaekit.errors import ConfigError, ModelFileError
from vaekit.serve.loading import load_models
from vaekit.serve.security import check_bind, is_loopback, key_matches, load_api_key
from vaekit.serve.server import bind
from vaekit.serve.settings import ServeSettings

KEY = "k" * 12 + "-secret-0123"


def test_loopback_needs_no_key_anything_else_does():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", KEY)
    with pytest.raises(ConfigError, match="VAEKIT_API_KEY"):
        check_bind("0.0.0.0", None)


def test_api_key_comes_from_the_environment_or_a_file(tmp_path):
    assert load_api_key(None, {}) is None
    assert load_api_key(None, {"VAEKIT_API_KEY": f" {KEY}\n"}) == KEY
    f = tmp_path / "key"
    f.write_text(KEY + "\n")
    assert load_api_key(f, {"VAEKIT_API_KEY": "x" * 20}) == KEY  # the file wins
    with pytest.raises(ConfigError, match="at least 16"):
        load_api_key(None, {"VAEKIT_API_KEY": "short"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_api_key(tmp_path / "missing", {})
    assert key_matches(KEY, KEY) and not key_matches(KEY[:-1], KEY) and not key_matches(None, KEY)


def test_the_cli_takes_no_key_and_refuses_a_public_bind_without_one(runs, capsys, monkeypatch):
    monkeypatch.delenv("VAEKIT_API_KEY", raising=False)
    assert main(["serve", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--api-key-file" in help_text and "--api-key " not in help_text
    assert main(["serve", str(runs["digits"]), "--host", "0.0.0.0"]) == 2
    assert "API key" in capsys.readouterr().err
    assert main(["serve", str(runs["digits"]), "--max-rows", "0"]) == 2
    assert "--max-rows" in capsys.readouterr().err


def test_with_a_key_every_v1_call_needs_it(specs):
    from fastapi.testclient import TestClient

    from vaekit.serve import build

    with TestClient(build(specs[:1], ServeSettings(), api_key=KEY), base_url=LOCAL) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"X-API-Key": "wrong-" + KEY}).status_code == 401
        r = c.post("/v1/models/digits/sample", json={"n": 1})
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
        assert c.post("/v1/models/other/encode", json={}).status_code == 401  # nothing leaks before auth
        assert c.get("/v1/models", headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        assert c.get("/openapi.json").status_code == 401  # the spec names the models: behind the key too
        spec = c.get("/openapi.json", headers={"X-API-Key": KEY}).json()
        assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
        assert c.get("/v1/models", headers={"X-API-Key": KEY, "Host": "evil.example"}).status_code == 200


def test_without_a_key_only_loopback_hosts_and_json_bodies_are_answered(client):
    """A web page on another origin can reach a loopback server by DNS rebinding (a Host
    header of its own name) or by a POST without Content-Type (no preflight): both refused."""
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
        r = client.get("/v1/models", headers={"Host": host})
        assert r.status_code == 400 and "not a loopback name" in r.json()["detail"], host
    for host in ("localhost", "localhost:8000", "127.0.0.1:1234", "[::1]:8000", "LOCALHOST"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    r = client.post("/v1/models/digits/sample", content=b'{"n": 1}')
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    r = client.post("/v1/models/digits/sample", content=b'{"n": 1}', headers={"Content-Type": "application/json"})
    assert r.status_code == 200


@pytest.mark.parametrize("args, message", [
    (["--log-level", "bogus"], "--log-level: Input should be 'critical'"),
    (["--max-body-mib", "-1"], "--max-body-mib:"),
])
def test_bad_serve_options_are_named(runs, capsys, args, message):
    assert main(["serve", str(runs["digits"]), *args]) == 2
    assert message in capsys.readouterr().err


def _raw(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_body_limit_announced_and_chunked(live):
    big = b'{"x": [' + b"0.5," * 80000 + b"0.5]}"
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    conn.request("POST", "/v1/models/digits/encode", body=big, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 413 and b"limit of 262144 bytes" in r.read()
    head = (b"POST /v1/models/digits/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in [big[i:i + 8192] for i in range(0, len(big), 8192)])
    status, data = _raw(live.port, head + chunks + b"0\r\n\r\n")
    assert status == 413 and b"limit of 262144 bytes" in data and b"Traceback" not in data


def test_path_like_names_over_the_wire(live):
    for path in (b"/v1/models/..%2F..%2Fetc%2Fpasswd/encode", b"/v1/models/../../etc/passwd",
                 b"/v1/models/%2e%2e/%2e%2e/encode"):
        status, data = _raw(live.port, b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        assert 400 <= status < 500 and b"Traceback" not in data and b"root:" not in data


class Payload:
    """Unpickling this would create a marker file: the test checks that it never is."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("where", ["model.safetensors", "extra.pkl", "checkpoints/best.safetensors", "scaler.bin"])
def test_a_run_directory_with_a_pickle_is_refused_at_start(runs, tmp_path, where, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs["digits"], run)
    marker = tmp_path / "unpickled"
    (run / where).parent.mkdir(parents=True, exist_ok=True)
    (run / where).write_bytes(pickle.dumps(Payload(marker), protocol=4))
    with pytest.raises(ModelFileError, match="never unpickled"):
        load_models([str(run)], ServeSettings())
    assert main(["serve", str(run)]) == 2
    assert where.split("/")[-1] in capsys.readouterr().err
    assert not marker.exists()


def test_a_torch_save_archive_is_refused(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["digits"], run)
    with zipfile.ZipFile(run / "pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="torch.save archive"):
        load_models([str(run)], ServeSettings())


def test_unusable_run_directories_are_refused_clearly(runs, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_models([str(tmp_path / "nope")], ServeSettings())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="config.json is missing"):
        load_models([str(tmp_path / "empty")], ServeSettings())
    with pytest.raises(ConfigError, match="NAME=PATH"):
        load_models([str(runs["digits"]), f"{runs['digits']}"], ServeSettings())
    models = load_models([f"a={runs['digits']}", f"b={runs['digits']}"], ServeSettings())
    assert [m.name for m in models] == ["a", "b"]


def test_requests_beyond_the_limit_get_a_json_503_and_health_probes_still_answer():
    import asyncio

    from vaekit.serve.security import ConcurrencyLimitMiddleware

    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(app, path):
        sent = []

        async def send(msg):
            sent.append(msg)

        await app({"type": "http", "path": path, "headers": []}, None, send)
        return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    async def scenario():
        app = ConcurrencyLimitMiddleware(slow_app, limit=2)
        first = [asyncio.create_task(call(app, "/v1/models")) for _ in range(2)]
        await asyncio.sleep(0.01)
        status, headers, body = await call(app, "/v1/models/digits/encode")
        assert status == 503 and headers[b"retry-after"] == b"1" and b"2 requests in flight" in body
        health = asyncio.create_task(call(app, "/healthz"))  # exempt: not refused, waits like any request
        await asyncio.sleep(0.01)
        assert not health.done()
        release.set()
        assert [(await t)[0] for t in first] == [200, 200] and (await health)[0] == 200
        assert app.in_flight == 0

    asyncio.run(scenario())


@contextmanager
def _served(specs, settings):
    """A live server of ``specs[:1]`` with the service's own uvicorn settings; yields its port."""
    import threading
    import time

    import uvicorn

    from vaekit.serve import build
    from vaekit.serve.server import uvicorn_config

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(build(specs[:1], settings), settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_idle_connections_do_not_take_the_capacity_of_requests(specs):
    import time

    from vaekit.serve import ServeSettings

    with _served(specs, ServeSettings(max_concurrency=4)) as port:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]  # 4x the request limit
        time.sleep(0.2)
        for path in (b"/healthz", b"/v1/models"):
            status, _ = _raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert status == 200, path
        for s in idle:
            s.close()


def test_connections_that_send_nothing_are_closed_after_the_idle_timeout(specs):
    """uvicorn times out a keep-alive connection only after a response; a connection that
    never sends a request must be closed too, or enough of them fill the server."""
    import time

    from vaekit.serve import ServeSettings

    with _served(specs, ServeSettings(idle_timeout_s=0.5)) as port:
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")  # a request on its way: not idle
        started = time.monotonic()
        assert silent.recv(1) == b""  # closed by the server
        assert time.monotonic() - started < 5
        time.sleep(0.2)
        slow.sendall(b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert slow.recv(64).startswith(b"HTTP/1.1 200")
        silent.close()
        slow.close()
