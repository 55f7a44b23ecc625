"""Request batching: concurrent requests share forward passes, answers do not change, and a
bad request fails alone."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.serve.conftest import LOCAL
from vaekit.serve.base import InputError
from vaekit.serve.batching import Batcher


def run_batcher(reqs, run, rows=len, window=0.01, max_rows=1000):
    calls = []

    def recording(batch):
        calls.append([len(r) for r in batch])
        return run(batch)

    async def main():
        b = Batcher(recording, rows, ThreadPoolExecutor(1), window, max_rows)
        b.start()
        try:
            return await asyncio.gather(*(b.submit(r) for r in reqs), return_exceptions=True)
        finally:
            await b.stop()

    return asyncio.run(main()), calls


def test_concurrent_requests_share_a_batch_and_keep_their_order():
    reqs = [[i] * (1 + i % 3) for i in range(20)]
    results, calls = run_batcher(reqs, lambda batch: [sum(r) for r in batch])
    assert results == [sum(r) for r in reqs]
    assert len(calls) < 5 and sum(len(c) for c in calls) == 20


def test_batches_respect_the_row_cap():
    reqs = [[1, 2, 3] for _ in range(10)]
    results, calls = run_batcher(reqs, lambda batch: [len(r) for r in batch], max_rows=7)
    assert results == [3] * 10 and all(sum(c) <= 7 for c in calls)
    results, calls = run_batcher([[0] * 20], lambda batch: [len(r) for r in batch], max_rows=7)
    assert results == [20]  # one request over the cap still runs, alone


def test_a_failing_request_fails_alone():
    def run(batch):
        if any(r == ["bad"] for r in batch):
            raise InputError("bad row")
        return [r[0] for r in batch]

    results, calls = run_batcher([["a"], ["bad"], ["c"]], run)
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], InputError) and str(results[1]) == "bad row"


def test_served_answers_are_the_same_with_and_without_batching(specs, client, app):
    from fastapi.testclient import TestClient

    from vaekit.serve import ServeSettings, build

    x = np.random.default_rng(0).random((6, 64)).round(4).tolist()
    rows = [{"amount": 90.0 + i, "hour": float(i), "kind": "cash"} for i in range(6)]
    unbatched = build(specs, ServeSettings(batching=False))
    with TestClient(unbatched, base_url=LOCAL) as plain:
        for path, body in [("/v1/models/digits/encode", {"x": x}), ("/v1/models/fraud/score", {"rows": rows}),
                           ("/v1/models/shop/recommend", {"history": ["i1", "i3"], "k": 4})]:
            a, b = client.post(path, json=body).json(), plain.post(path, json=body).json()
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], list) and a[k] and not isinstance(a[k][0], (str, dict, list)):
                    np.testing.assert_allclose(a[k], b[k], rtol=1e-5)
        assert not unbatched.state.batchers


def test_concurrent_http_requests_are_batched(live):
    import httpx

    rng = np.random.default_rng(1)
    xs = [rng.random((1, 64)).round(4).tolist() for _ in range(48)]

    async def main():
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as c:
            together = await asyncio.gather(*(c.post("/v1/models/digits/encode", json={"x": x}) for x in xs))
            alone = [await c.post("/v1/models/digits/encode", json={"x": x}) for x in xs[:5]]
        return together, alone

    together, alone = asyncio.run(main())
    assert all(r.status_code == 200 for r in together)
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.json()["mean"], b.json()["mean"], rtol=1e-5, atol=1e-6)
    batcher = live.server.config.app.state.batchers[("digits", "encode")]
    assert batcher.requests >= 53 and batcher.batches < batcher.requests


def _post(port: int, tag: str, close_after_send: bool = False):
    import http.client
    import json
    import socket

    body = json.dumps({"tag": tag}).encode()
    if close_after_send:  # send the request, then hang up without reading the answer
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/models/m/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        return s
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("POST", "/v1/models/m/echo", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read())


@pytest.mark.parametrize("batching", [False, True])
def test_a_request_whose_client_left_is_never_run(batching):
    """Under load, requests wait for the compute thread; one whose client hangs up while
    it waits is dropped there, in the executor's queue or the batcher's."""
    import threading
    import time

    from pydantic import BaseModel

    from tests.serve.conftest import LiveServer
    from vaekit.serve import ServeSettings
    from vaekit.serve.app import create_app
    from vaekit.serve.base import Operation, ServedModel, Strict

    release, ran = threading.Event(), []

    class Tag(Strict):
        tag: str

    class Echo(BaseModel):
        tag: str

    def run(reqs):
        ran.extend(r.tag for r in reqs)
        if reqs[0].tag == "first":
            release.wait(20)  # holds the only compute thread
        return [{"tag": r.tag} for r in reqs]

    model = ServedModel("m", "test", {})
    model.add(Operation("echo", "echo", Tag, Echo, run, batchable=True))
    app = create_app([model], ServeSettings(batching=batching, compute_threads=1))
    with LiveServer(app) as server:
        answers = []
        first = threading.Thread(target=lambda: answers.append(_post(server.port, "first")))
        first.start()
        deadline = time.monotonic() + 20
        while ran != ["first"] and time.monotonic() < deadline:
            time.sleep(0.01)
        gone = _post(server.port, "gone", close_after_send=True)
        time.sleep(0.3)  # the request waits behind "first"
        gone.close()
        time.sleep(0.3)  # the server sees the hang-up
        release.set()
        first.join(20)
        assert answers == [(200, {"tag": "first"})]
        assert _post(server.port, "after") == (200, {"tag": "after"})
    assert ran == ["first", "after"]


def test_a_body_over_the_limit_sent_while_a_request_waits_gets_413():
    """While a request waits for the compute thread the server watches for the client
    leaving; a body that arrives then and breaks the size limit is the middleware's 413,
    not a sign that the client has gone."""
    import socket
    import time

    from pydantic import BaseModel

    from tests.serve.conftest import LiveServer
    from vaekit.serve import ServeSettings
    from vaekit.serve.app import create_app
    from vaekit.serve.base import Operation, ServedModel

    class Done(BaseModel):
        done: bool

    def run(reqs):
        time.sleep(1.0)
        return [{"done": True} for _ in reqs]

    model = ServedModel("m", "test", {})
    model.add(Operation("slow", "slow", None, Done, run))
    app = create_app([model], ServeSettings(batching=False, max_body_bytes=1024))
    with LiveServer(app) as server:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        s.sendall(b"GET /v1/models/m/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        time.sleep(0.3)
        s.sendall(b"800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n")
        answer = s.recv(64)
        s.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_requests_whose_client_left_take_no_room_in_a_batch():
    calls = []

    def recording(batch):
        calls.append([r[0] for r in batch])
        return [r[0] for r in batch]

    async def main():
        b = Batcher(recording, len, ThreadPoolExecutor(1), 0.05, 4)
        b.start()
        try:
            tasks = [asyncio.ensure_future(b.submit([i, i])) for i in range(3)]  # 2 rows each, 4 to a batch
            await asyncio.sleep(0)
            tasks[0].cancel()  # its client left before the batch was taken
            return await asyncio.gather(*tasks[1:])
        finally:
            await b.stop()

    assert asyncio.run(main()) == [1, 2]
    assert calls == [[1, 2]]  # the left request's rows did not push request 2 into a second batch
