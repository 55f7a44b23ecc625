"""Denormal flushing: every intra-op thread, each Python thread on its own, undone on exit."""

import threading

import pytest
import torch

from tests.fault.test_trainer_faults import make_trainer
from vaekit.train import denormals


def _denormal_fraction() -> float:
    """Fraction of a large product (spread over torch's intra-op threads) left denormal."""
    product = torch.full((1 << 20,), 1e-30) * 1e-10  # 1e-40: denormal, or 0 when flushed
    return float((product != 0).float().mean())


@pytest.fixture
def flushing_supported():
    if not denormals.openmp_runtimes() or not torch.set_flush_denormal(False):
        pytest.skip("no flush-to-zero or no OpenMP pool to restart on this platform")


def test_flush_denormals_reaches_every_thread_and_is_undone(flushing_supported):
    assert _denormal_fraction() == 1.0  # workers created before the context keep their mode...
    with denormals.flush_denormals():
        assert denormals.denormals_flushed()
        assert _denormal_fraction() == 0.0  # ...the restarted pool inherits flushing
        with denormals.flush_denormals():  # nested: one switch
            pass
        assert _denormal_fraction() == 0.0
    assert not denormals.denormals_flushed() and _denormal_fraction() == 1.0
    with denormals.flush_denormals(enabled=False):
        assert _denormal_fraction() == 1.0


def test_flush_denormals_is_undone_after_an_error(flushing_supported):
    with pytest.raises(ValueError):
        with denormals.flush_denormals():
            raise ValueError("boom")
    assert _denormal_fraction() == 1.0


def test_training_flushes_denormals_and_restores_the_mode(small_config, flushing_supported):
    seen = []
    t = make_trainer(small_config, None)
    t.callbacks.append(lambda record: seen.append(denormals.denormals_flushed()))
    t.fit()
    assert seen and all(seen) and _denormal_fraction() == 1.0
    small_config.train.flush_denormals = False
    seen.clear()
    t = make_trainer(small_config, None)
    t.callbacks.append(lambda record: seen.append(denormals.denormals_flushed()))
    t.fit()
    assert seen and not any(seen)


def test_each_python_thread_has_its_own_switch(flushing_supported):
    inside_a, b_done = threading.Event(), threading.Event()
    seen = {}

    def a():
        with denormals.flush_denormals():
            inside_a.set()
            b_done.wait(10)
            seen["a_inside_after_b"] = denormals.denormals_flushed()
        seen["a_after"] = denormals.denormals_flushed()

    def b():
        inside_a.wait(10)
        with denormals.flush_denormals():
            seen["b_inside"] = denormals.denormals_flushed()
        seen["b_after"] = denormals.denormals_flushed()
        b_done.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"b_inside": True, "b_after": False, "a_inside_after_b": True, "a_after": False}
    assert _denormal_fraction() == 1.0


def test_a_thread_that_already_flushes_gets_its_workers_flushed_too(flushing_supported):
    torch.set_flush_denormal(True)  # set late: the existing workers keep denormals
    try:
        assert _denormal_fraction() < 1.0 or torch.get_num_threads() == 1
        with denormals.flush_denormals():
            assert _denormal_fraction() == 0.0
        assert denormals.denormals_flushed()  # the thread's own mode is kept
    finally:
        torch.set_flush_denormal(False)
        denormals._restart_thread_pools()
    assert _denormal_fraction() == 1.0
