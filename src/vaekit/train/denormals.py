"""Flush-to-zero for the length of a training run, on every intra-op thread.

Adam's first moment of a weight whose gradient is mostly zero (encoder weights of pixels
that are nearly always black, weights of ReLU units that rarely fire) decays by beta1 =
0.9 a step. About 800 steps after its last non-zero gradient it passes below fp32's
smallest normal number (1.2e-38) and stays denormal for ~150 steps before it rounds to
zero; on the CPU every operation on such a value takes a slow path. In the MNIST MLP
~70,000 of Adam's 1.3 million moments are denormal after a few epochs, and the fused
Adam step takes ~3x as long (``benchmarks/denormals.py``). Flushing changes only values
below 1.2e-38, updates far too small to move an fp32 weight.

``torch.set_flush_denormal`` sets the calling thread's mode only. POSIX threads inherit
their creator's floating-point mode, so the calling thread's GNU OpenMP pool (torch's
intra-op threads in its Linux builds) is freed with ``omp_pause_resource_all`` and its
next parallel region starts workers that inherit the mode. libgomp keeps one pool per
thread that starts parallel regions, so this touches no other thread's pool. Where no
libgomp is loaded (LLVM or Intel OpenMP, whose hard pause stops the whole runtime, or
another platform), only the calling thread flushes.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from contextlib import contextmanager
from typing import Iterator

import torch

_state = threading.local()  # per thread: the mode and the pool are per thread


@functools.cache
def openmp_runtimes() -> tuple[ctypes.CDLL, ...]:
    """The GNU OpenMP runtimes loaded in this process that can free a thread's pool,
    found through /proc/self/maps (whatever the file's version suffix); empty elsewhere.
    Looked up once: torch loads its runtime when it is imported."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return ()
    libs = []
    for path in sorted(p for p in paths if os.path.basename(p).startswith("libgomp") and ".so" in p):
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle
        except OSError:
            continue
        if hasattr(lib, "omp_pause_resource_all"):
            libs.append(lib)
    return tuple(libs)


def _restart_thread_pools() -> None:
    for lib in openmp_runtimes():
        lib.omp_pause_resource_all(2)  # omp_pause_hard: free this thread's pool


def denormals_flushed() -> bool:
    """Whether the calling thread flushes denormals to zero (probed, not remembered)."""
    return bool(torch.tensor([1e-30]) * 1e-10 == 0)


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Flush-to-zero and denormals-are-zero for the work inside, on the calling thread and
    its intra-op workers. On exit the calling thread's previous mode returns and its
    workers follow it. Nested uses on one thread share one switch; each thread has its own."""
    if not enabled:
        yield
        return
    depth = getattr(_state, "depth", 0)
    if depth == 0:
        _state.was_on = denormals_flushed()
        _state.switched = bool(torch.set_flush_denormal(True))
        if _state.switched:
            _restart_thread_pools()  # even if this thread already flushed: its workers may not
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0 and _state.switched:
            if not _state.was_on:
                torch.set_flush_denormal(False)
            _restart_thread_pools()
