"""The optimisers of runs that step through torch (grucli.train.steppers.RunByRun: torch and
reference cells, and whatever cannot train stacked) and the gradient-norm clip of several
runs at once. Runs on the fused kernels step through grucli.train.stacked instead, whose C++
applies the same algorithms."""

from __future__ import annotations

import torch

from grucli.config import RunConfig


def make_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    """The run's optimiser over `params`: tensors, or param groups with their own `lr` and
    `weight_decay` (a pack: one group per run, each stepped exactly as alone)."""
    t = cfg.train
    params = list(params)
    if t.optimizer == "adam":
        return adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, **_fused(params))


def _fused(params: list) -> dict:
    """torch's fused optimiser step (one kernel over every parameter) where it has one for
    these tensors. On CPU it cuts Adam's step at H=16 from ~0.3 to ~0.14 ms; the per-tensor
    loop it replaces is most of a small model's fixed cost per training step."""
    tensors = [p for item in params for p in (item["params"] if isinstance(item, dict) else [item])]
    ok = tensors and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in tensors)
    return {"fused": True} if ok else {}


def adam(params, **kwargs) -> torch.optim.Adam:
    """Adam as grucli trains with it (and `grucli bench` times it)."""
    params = list(params)
    return torch.optim.Adam(params, **kwargs, **_fused(params))


def clip_grad_norms(param_lists: list[list[torch.Tensor]], max_norms: list[float]) -> None:
    """torch.nn.utils.clip_grad_norm_(params, max_norm) for several runs at once, with its
    arithmetic (each gradient's 2-norm, the norm of those, times min(max / (norm + 1e-6), 1)):
    the per-tensor norms of every run in one call, then a few small ops per run. torch's
    own does the same work for one run behind ~0.2 ms of Python per call on a small model."""
    grads = [[p.grad for p in ps if p.grad is not None] for ps in param_lists]
    norms = torch._foreach_norm([g for gs in grads for g in gs], 2.0)
    start = 0
    for gs, max_norm in zip(grads, max_norms):
        if not gs:
            continue
        total = torch.linalg.vector_norm(torch.stack(norms[start:start + len(gs)]), 2.0)
        start += len(gs)
        torch._foreach_mul_(gs, torch.clamp(float(max_norm) / (total + 1e-6), max=1.0))
