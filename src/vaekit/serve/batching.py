"""Dynamic request batching: concurrent requests to one model and operation share a
forward pass.

A request joins a queue; the batcher takes the queue as one batch once its oldest request
has waited ``window`` seconds or the queued rows reach ``max_rows``, and runs the batch on
the compute thread while new requests queue up behind it. Under load the queue fills
while the previous batch runs, so batches grow with the load and requests wait about one
forward pass; alone, a request waits at most the window.

A batch that fails is rerun one request at a time, so a request that cannot be served
fails alone and the others still get their answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import Executor
from typing import Any, Callable


def run_each(run: Callable[[list], list], reqs: list) -> list:
    """Results of ``run`` over the batch, or per request (result or exception) if it fails."""
    try:
        results = run(reqs)
        if len(results) != len(reqs):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(reqs)} requests")
        return results
    except Exception as batch_error:  # noqa: BLE001 - isolate the request at fault
        if len(reqs) == 1:
            return [batch_error]
    out = []
    for req in reqs:
        try:
            out.append(run([req])[0])
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


class Batcher:
    def __init__(self, run: Callable[[list], list], rows: Callable[[Any], int], executor: Executor,
                 window: float, max_rows: int):
        self.run, self.rows, self.executor = run, rows, executor
        self.window, self.max_rows = window, max_rows
        self.queue: deque[tuple[Any, int, asyncio.Future, float]] = deque()
        self.queued_rows = 0
        self.arrived = asyncio.Event()
        self.full = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.batches = 0
        self.requests = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        for _, _, fut, _ in self.queue:
            if not fut.done():
                fut.set_exception(RuntimeError("server shutting down"))
        self.queue.clear()

    async def submit(self, req) -> Any:
        fut = asyncio.get_running_loop().create_future()
        n = self.rows(req)
        self.queue.append((req, n, fut, time.monotonic()))
        self.queued_rows += n
        self.arrived.set()
        if self.queued_rows >= self.max_rows:
            self.full.set()
        result = await fut
        if isinstance(result, Exception):
            raise result
        return result

    def _take(self) -> list:
        """The next batch: queued requests up to ``max_rows`` rows (at least one request),
        leaving out requests whose client has left, so they take no room in it."""
        batch, rows = [], 0
        while self.queue:
            n, fut = self.queue[0][1], self.queue[0][2]
            if not fut.done() and batch and rows + n > self.max_rows:
                break
            item = self.queue.popleft()
            self.queued_rows -= n
            if not fut.done():
                rows += n
                batch.append(item)
        if self.queued_rows < self.max_rows:
            self.full.clear()
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.queue:
                self.arrived.clear()
                await self.arrived.wait()
            wait = self.queue[0][3] + self.window - time.monotonic()
            if wait > 0 and self.queued_rows < self.max_rows:
                try:
                    await asyncio.wait_for(self.full.wait(), wait)
                except asyncio.TimeoutError:
                    pass
            live = self._take()
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self.executor, run_each, self.run, [i[0] for i in live])
            except Exception as e:  # noqa: BLE001 - executor gone (shutdown)
                results = [e] * len(live)
            self.batches += 1
            self.requests += len(live)
            for (_, _, fut, _), result in zip(live, results):
                if not fut.done():
                    fut.set_result(result)
