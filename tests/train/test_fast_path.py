"""The fast path: fused Adam, torch.compile with a clean fallback, bf16 autocast."""

import pytest
import torch

from tests.compile_faults import break_backward
from tests.fault.test_trainer_faults import make_trainer
from vaekit.train import acceleration


def test_compile_failure_falls_back_to_eager(small_config, monkeypatch):
    messages = []

    def broken_compile(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    small_config.train.compile = True
    t = make_trainer(small_config, None)
    t.log = messages.append
    t.net.log = messages.append
    result = t.fit()
    assert result.epochs == 3 and all(torch.isfinite(p).all() for p in t.model.parameters())


def test_compile_error_at_first_call_falls_back(small_config):
    calls = []

    class Exploding(torch.nn.Module):
        def forward(self, *a):
            raise RuntimeError("inductor failed")

    wrapped = acceleration.Compiled(torch.nn.Identity(), calls.append)
    wrapped.fn = Exploding()
    x = torch.ones(2)
    assert torch.equal(wrapped(x), x)
    assert wrapped.fn is None and "torch.compile failed" in calls[0]


def test_bf16_autocast_trains_to_the_same_quality(small_config):
    if acceleration.autocast_dtype(small_config.train.model_copy(update={"fast": True}), torch.device("cpu")) is None:
        pytest.skip("this CPU has no native bf16 matmuls")
    small_config.train.epochs = 6
    ref = make_trainer(small_config, None).fit().history[-1]["val_loss"]
    small_config.train.precision = "bf16"
    fast = make_trainer(small_config, None).fit().history[-1]["val_loss"]
    assert abs(fast - ref) < 0.05 * abs(ref)


def test_fused_adam_is_used_on_cpu(small_config):
    t = make_trainer(small_config, None)
    assert t.optimizer.defaults.get("fused") is True


def test_compiled_step_compiles_the_binarization_threshold(small_config):
    from vaekit.apps.image_data import dynamic_binarize

    small_config.data.binarize = "dynamic"
    small_config.train.compile = True
    t = make_trainer(small_config, None)
    assert t.apply_transform is not None
    x = torch.rand(37, 1, 8, 8)
    x[3, 0, 2, 2] = float("nan")
    noise = dynamic_binarize.noise(x, torch.Generator().manual_seed(0))
    compiled = t.apply_transform(x, noise)  # compiles here (or falls back, reported, to eager)
    assert torch.equal(compiled.nan_to_num(-1.0), dynamic_binarize.apply(x, noise).nan_to_num(-1.0))
    assert torch.isnan(compiled[3, 0, 2, 2])
    result = t.fit()
    assert result.epochs == 3 and all(torch.isfinite(p).all() for p in t.model.parameters())


def test_eager_step_binarizes_without_a_compiled_transform(small_config):
    small_config.data.binarize = "dynamic"
    t = make_trainer(small_config, None)
    assert t.apply_transform is None and t.fit().epochs == 3


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_direct_fused_adam_step_is_bit_identical_to_optimizer_step(weight_decay):
    if not acceleration.fused_adam_ok(torch.device("cpu")):
        pytest.skip("no fused Adam in this build")
    torch.manual_seed(0)
    shapes = [(30, 20), (30,), (5, 30)]
    ours, theirs = ([torch.randn(s, requires_grad=True) for s in shapes] for _ in range(2))
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.copy_(a)
    opt_ours = torch.optim.Adam(ours, lr=1e-2, weight_decay=weight_decay, fused=True)
    opt_theirs = torch.optim.Adam(theirs, lr=1e-2, weight_decay=weight_decay, fused=True)
    step = acceleration.AdamStep(opt_ours)
    assert step.direct
    for i in range(6):
        if i == 3:  # an lr change between epochs, as the trainer's decay does
            for opt in (opt_ours, opt_theirs):
                opt.param_groups[0]["lr"] = 3e-3
        grads = [torch.randn(s) for s in shapes]
        step.zero_grad()
        opt_theirs.zero_grad(set_to_none=True)
        for p, q, g in zip(ours, theirs, grads):
            if not (i == 4 and p.dim() == 1):  # step 5: a parameter without gradient
                p.grad, q.grad = g.clone(), g.clone()
        step.step()
        opt_theirs.step()
        for p, q in zip(ours, theirs):
            assert torch.equal(p, q)
    sd_ours, sd_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    for k in sd_theirs["state"]:
        for name, value in sd_theirs["state"][k].items():
            assert torch.equal(sd_ours["state"][k][name], value)


def test_direct_adam_step_stands_aside_for_what_it_does_not_cover():
    if not acceleration.fused_adam_ok(torch.device("cpu")):
        pytest.skip("no fused Adam in this build")
    p = [torch.zeros(3, requires_grad=True)]
    assert acceleration.AdamStep(torch.optim.Adam(p, fused=True)).direct
    assert not acceleration.AdamStep(torch.optim.Adam(p, fused=True, amsgrad=True)).direct
    assert not acceleration.AdamStep(torch.optim.Adam(p, fused=False)).direct
    assert not acceleration.AdamStep(torch.optim.SGD(p, lr=0.1)).direct
    two_groups = torch.optim.Adam([{"params": p}, {"params": [torch.zeros(2, requires_grad=True)]}], fused=True)
    assert not acceleration.AdamStep(two_groups).direct
    mixed = [torch.zeros(3, requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)]
    assert not acceleration.AdamStep(torch.optim.Adam(mixed, fused=True)).direct
    # flags are read at every step: a checkpoint's param_groups or a hook added later count
    opt = torch.optim.Adam(p, fused=True)
    step = acceleration.AdamStep(opt)
    opt.param_groups[0]["amsgrad"] = True
    assert not step.direct
    opt.param_groups[0]["amsgrad"] = False
    handle = opt.register_step_post_hook(lambda *a: None)
    assert not step.direct
    handle.remove()
    assert step.direct


def test_a_short_last_batch_runs_eagerly_instead_of_compiling_its_shape(small_config):
    small_config.train.compile = True
    small_config.train.batch_size = 48  # digits' training split does not divide by 48
    t = make_trainer(small_config, None)
    compiled_sizes, eager_sizes = [], []
    eager = t.net.eager

    class Recorder(torch.nn.Module):
        def __init__(self, into):
            super().__init__()
            self.into, self.inner = into, eager

        def forward(self, x, *rest):
            self.into.append(x.shape[0])
            return self.inner(x, *rest)

    t.net.fn = Recorder(compiled_sizes)  # stands in for the compiled step: no compile in the test
    t.net.eager = Recorder(eager_sizes)
    t.fit()
    n = len(t.train_data)
    assert n % 48 and set(compiled_sizes) == {48} and eager_sizes == [n % 48] * 3


def test_a_set_smaller_than_one_batch_still_runs_compiled(small_config):
    small_config.train.compile = True
    small_config.train.batch_size = 4096  # more than the digits training split
    t = make_trainer(small_config, None)
    sizes = []

    class Recorder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, *rest):
            sizes.append(x.shape[0])
            return self.inner(x, *rest)

    t.net.fn = Recorder(t.net.eager)  # stands in for the compiled step
    t.fit()
    assert sizes == [len(t.train_data)] * 3


def test_compile_passes_vaekit_options_to_torch_compile(monkeypatch):
    """Every vaekit compile gets ``COMPILE_OPTIONS`` (inductor trusts the CPU's SIMD flags)
    as per-call options, and the compiled function is what the wrapper calls."""
    passed = {}

    def recording_compile(net, **kwargs):
        passed.update(kwargs)
        return lambda x: x + 1

    monkeypatch.setattr(torch, "compile", recording_compile)
    wrapped = acceleration.Compiled(torch.nn.Identity(), print)
    assert passed["options"] is acceleration.COMPILE_OPTIONS
    assert acceleration.COMPILE_OPTIONS == {"cpp.vec_isa_ok": True}
    assert torch.equal(wrapped(torch.zeros(3)), torch.ones(3))


def test_adam_betas_reach_the_fused_step(small_config):
    """``train.adam_betas`` decides Adam's moment decays: the trainer's direct fused step
    gives the same weights as torch.optim's own Adam built with those betas."""
    small_config.train.adam_betas = (0.8, 0.95)
    small_config.train.epochs = 1
    t = make_trainer(small_config, None)
    assert t.optimizer.param_groups[0]["betas"] == (0.8, 0.95)
    ref = [p.detach().clone().requires_grad_() for p in t.params]
    ref_opt = torch.optim.Adam(ref, lr=small_config.train.lr, betas=(0.8, 0.95))
    default_betas = [p.detach().clone().requires_grad_() for p in t.params]
    default_opt = torch.optim.Adam(default_betas, lr=small_config.train.lr)
    for _ in range(3):  # Adam's first step does not depend on its betas (bias correction)
        grads = [torch.randn_like(p) for p in ref]
        for params, step in ((t.params, t.adam.step), (ref, ref_opt.step), (default_betas, default_opt.step)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            step()
    for p, q, d in zip(t.params, ref, default_betas):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-7)
    assert any(not torch.allclose(p.detach(), d.detach(), rtol=0, atol=1e-6) for p, d in zip(t.params, default_betas))
    t.fit()
    assert t.optimizer.param_groups[0]["betas"] == (0.8, 0.95)


def test_compiled_backward_failure_redoes_the_batch_eagerly(small_config, monkeypatch):
    """The compiled backward graph is built at the first backward, outside ``Compiled``'s
    own guard. If it fails, the trainer stops compiling, says so, and runs the same batch
    eagerly: the run ends with the weights of a run that never compiled."""
    eager = make_trainer(small_config, None)
    eager.fit()
    monkeypatch.setattr(torch, "compile", break_backward(lambda fn, **kwargs: fn))
    small_config.train.compile = True
    messages = []
    t = make_trainer(small_config, None)
    t.net.log = messages.append
    result = t.fit()
    assert result.epochs == 3 and t.net.fn is None
    assert len(messages) == 1 and "torch.compile failed (RuntimeError: backward graph did not build)" in messages[0]
    for (name, a), b in zip(t.model.state_dict().items(), eager.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_an_annealed_beta_does_not_recompile_the_step(small_config):
    from torch._dynamo.utils import counters

    small_config.train.compile = True
    small_config.train.beta.schedule = "linear"
    small_config.train.beta.warmup_epochs = 3  # a new beta at every step
    torch._dynamo.reset()
    counters.clear()
    t = make_trainer(small_config, None)
    history = t.fit().history
    assert t.net.fn is not None, "fell back to eager"
    assert len({round(h["beta"], 6) for h in history}) == 3
    assert counters["stats"]["unique_graphs"] <= 2  # the training step once (and the tail batch runs eagerly)


@pytest.mark.parametrize("precision, fast, bf16", [
    ("auto", False, False), ("fp32", True, False), ("fp32", False, False), ("auto", True, True), ("bf16", False, True),
])
def test_an_explicit_precision_wins_over_fast(small_config, precision, fast, bf16):
    from vaekit.errors import DataError

    config = small_config.train.model_copy(update={"precision": precision, "fast": fast})
    cpu = torch.device("cpu")
    try:
        supported = acceleration.autocast_dtype(config.model_copy(update={"precision": "bf16"}), cpu) is not None
    except DataError:  # this CPU has no bf16 matmuls
        supported = False
    if precision == "bf16" and not supported:
        pytest.skip("this CPU has no native bf16 matmuls")
    assert acceleration.autocast_dtype(config, cpu) == (torch.bfloat16 if bf16 and supported else None)


def test_compile_failures_are_reported_in_one_line_and_a_missing_compiler_once(monkeypatch):
    monkeypatch.setattr(acceleration, "_NO_COMPILER", None)
    said = []
    error = RuntimeError("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: "
                         "(None, '/bin/false')\n\nSet TORCHDYNAMO_VERBOSE=1 for the internal stack trace\n")
    first = acceleration.Compiled(torch.nn.Identity(), said.append, doing="transforming batches")
    first.give_up(error)
    second = acceleration.Compiled(torch.nn.Identity(), said.append)
    assert second.fn is None and torch.equal(second(torch.ones(2)), torch.ones(2))
    assert len(said) == 2 and all("\n" not in m for m in said)
    assert said[0].startswith("torch.compile failed (RuntimeError: InvalidCxxCompiler") and "VERBOSE" not in said[0]
    assert said[1].startswith("torch.compile unavailable (RuntimeError: InvalidCxxCompiler")
    assert said[1].endswith("; training eagerly")


def test_a_wrapped_compiler_error_is_reported_by_the_error_inside(monkeypatch):
    monkeypatch.setattr(acceleration, "_NO_COMPILER", None)

    class InvalidCxxCompiler(RuntimeError):
        pass

    class BackendCompilerFailed(RuntimeError):
        def __init__(self, inner):
            super().__init__(f"backend='inductor' raised:\n{type(inner).__name__}: {inner}")
            self.inner_exception = inner

    said = []
    acceleration.Compiled(torch.nn.Identity(), said.append).give_up(
        BackendCompilerFailed(InvalidCxxCompiler("No working C++ compiler found")))
    assert said == ["torch.compile failed (InvalidCxxCompiler: No working C++ compiler found); training eagerly"]
    assert acceleration._NO_COMPILER is not None


def test_run_configs_written_before_precision_auto_keep_bf16_under_fast(tmp_path):
    import json

    from vaekit import runs

    run = tmp_path / "run"
    run.mkdir()
    old = {"kind": "mlp", "run": {"config": {"train": {"fast": True, "precision": "fp32"}}}}
    (run / "config.json").write_text(json.dumps(old))
    assert runs.run_config(run).train.precision == "auto"  # what "fp32" meant then: the default
    new = dict(old, run={**old["run"], "settings_format": 2})
    (run / "config.json").write_text(json.dumps(new))
    assert runs.run_config(run).train.precision == "fp32"  # now an explicit choice
