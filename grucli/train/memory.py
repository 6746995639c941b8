"""Memory a run needs, counted rather than read off the process: the bytes autograd keeps
for the backward pass (saved activations, at the run's batch size and sequence length), and
the bytes of the parameters and of the optimiser's state. The process's resident set
(peak_memory_mb) is mostly torch itself (~400 MB for any cell); these separate the cells.

Saved activations are counted with torch.autograd.graph.saved_tensors_hooks, so every
implementation is measured the same way: torch's modules, grucli's fused kernels (which
save through ctx.save_for_backward) and the reference step. Each storage counts once
(views into one buffer are one buffer); the parameters themselves are not activations.
"""

from __future__ import annotations

import torch


def saved_activation_bytes(model: torch.nn.Module, run_forward) -> int:
    """Bytes of the distinct storages autograd saves for the backward of `run_forward()`
    (a closure computing the loss of one training batch); parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.random.fork_rng(devices=[]), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run_forward()
    return sum(saved.values())


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer, params=None) -> int:
    """Adam's two moments (and step counters), RMSprop's averages, SGD's momentum: every
    tensor in the optimiser's state, or in that of `params` only (one run of a pack)."""
    states = optimizer.state.values() if params is None else [optimizer.state[p] for p in params if p in optimizer.state]
    return sum(v.numel() * v.element_size() for state in states for v in state.values() if isinstance(v, torch.Tensor))


def available_bytes() -> int | None:
    """Memory the system can give without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None
