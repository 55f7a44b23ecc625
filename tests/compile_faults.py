"""A torch.compile whose compiled training step builds no backward graph, for the tests of
the trainer's fallback (one process, and one DDP rank under torchrun)."""

import torch


class FailingBackward(torch.autograd.Function):
    """Identity forward; a backward that fails as a compiled backward graph that does not
    build would, before any gradient reaches a parameter."""

    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward graph did not build")


def break_backward(compile_fn):
    """``torch.compile`` for a module: its output's loss gets a failing backward. Functions
    (e.g. the binarization threshold) go to ``compile_fn``."""

    def broken(net, **kwargs):
        if not isinstance(net, torch.nn.Module):
            return compile_fn(net, **kwargs)

        def run(*args):
            out = net(*args)
            out.loss = FailingBackward.apply(out.loss)
            return out
        return run

    return broken
