"""Which runs train together as one pack (train.train_pack), and how a grid is cut into packs.

Runs pack together when they build the same model on the same data with the same steps:
everything in their configs is equal except the keys a pack lets each run keep for itself
(VARIES). A pack then advances all its runs together, each run's arithmetic unchanged (train/loop.py:
stacked on the fused kernels, else one backward and one optimiser step over every run's
own model), so the per-step fixed cost (autograd, clipping, optimiser, Python) that
dominates small models is paid once per pack.
"""

from __future__ import annotations

import json
import math

from grucli.config import RunConfig
from grucli.errors import GrucliError

# What may differ between the runs of one pack: each run keeps its own.
VARIES = {
    ("seed",): "weights, batch order and dropout masks",
    ("train", "lr"): "a param group per run",
    ("train", "weight_decay"): "a param group per run",
    ("train", "grad_clip"): "clipped per run",
    ("train", "early_stopping"): "a run that stops leaves the pack",
    ("train", "stop_at_target"): "a run that stops leaves the pack",
    ("model", "dropout"): "masks drawn from the run's own generator",
}
MAX_AUTO = 8  # the largest pack `--pack auto` makes
# The smallest: measured on 2 cores (benchmarks/batched_grid.py), with the stacked step packs of
# 3 (the demo's seeds) trained 1.08-1.17x as many runs per minute as runs alone, packs of 8
# trials 1.29-1.42x (before it: 0.98x and 1.30x); below this, auto trains alone.
MIN_AUTO = 3
AUTO_LIMIT = 64 * 64  # auto packs models with H^2 (or, given a parameter budget, budget / 4) at most this


MEMORY_SHARE = 0.5  # of the memory available, what the packs of all cores may hold together


def fit(k: int, run_bytes: int, available: int | None, cores: int) -> int:
    """How many of a pack's k runs train at once so that, with every core training such a
    pack, they hold at most MEMORY_SHARE of the memory available (run_bytes: one run's
    weights, gradients, optimiser state and saved activations for one batch). The rest of
    the pack trains next, in the same worker: packed or alone, a run's numbers are the same."""
    if available is None or run_bytes <= 0:
        return k
    return max(1, min(k, int(MEMORY_SHARE * available / max(cores, 1) // run_bytes)))


_KEYS: dict[int, tuple[RunConfig, str]] = {}  # id(config) -> (config, key): grids ask for the same keys often


def key(cfg: RunConfig) -> str:
    """Runs with equal keys can share a pack: the config without the keys in VARIES."""
    known = _KEYS.get(id(cfg))
    if known is not None and known[0] is cfg:
        return known[1]
    d = cfg.model_dump(mode="json")
    for path in VARIES:
        node = d
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
    _KEYS[id(cfg)] = (cfg, out := json.dumps(d, sort_keys=True))
    return out


def small(cfg: RunConfig) -> bool:
    """Whether packing pays off: small models, whose steps are mostly fixed cost."""
    m = cfg.model
    width2 = m.hidden_size ** 2 if m.hidden_size else (m.param_budget or AUTO_LIMIT + 1) / 4
    return width2 <= AUTO_LIMIT and cfg.train.device != "cuda"


def size(pack: int | None, runs: list, jobs: int) -> int:
    """The pack size K to use: `pack` when given (1 = every run alone). For auto (None): 1
    unless every run is small; else the largest K up to MAX_AUTO that still cuts the runs
    into at least `jobs` packs, so no worker waits (24 trials on 2 workers: K = 8), and 1
    where that is below MIN_AUTO (the demo's settings of 3 seeds train as packs of 3)."""
    if pack is not None:
        return pack
    if not runs or not all(small(r.config) for r in runs):
        return 1
    counts = _counts(runs).values()
    fits = [k for k in range(1, MAX_AUTO + 1) if sum(math.ceil(c / k) for c in counts) >= jobs]
    k = min(max(fits, default=1), max(counts))
    k = max(math.ceil(c / math.ceil(c / k)) for c in counts)  # the packs `take` cuts: equal ones
    return k if k >= MIN_AUTO else 1


def _counts(runs: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in runs:
        k = key(r.config)
        out[k] = out.get(k, 0) + 1
    return out


def parse(value: str) -> int | None:
    """--pack: 'auto' (None) or a whole number of runs >= 1."""
    if value == "auto":
        return None
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise GrucliError(f"--pack {value}: give a number of runs per pack (at least 1; 1 = each run alone) or auto")
    return k


def take(queue: list, k: int) -> list:
    """Remove from `queue` and return its first run with later runs of the same key, in
    queue order: of the c runs of that key waiting, as many as cuts them into equal packs
    of at most k (8 runs and k = 7: 4, then 4 -- not 7 and a lone 1, which left a worker
    idle while the other trained 7: measured 8.1 s vs 6.3 s for packs of 4)."""
    if not queue:
        return []
    first = key(queue[0].config)
    same = [i for i, r in enumerate(queue) if key(r.config) == first]
    packs = math.ceil(len(same) / k)
    picked = same[:math.ceil(len(same) / packs)]
    out = [queue[i] for i in picked]
    for i in reversed(picked):
        del queue[i]
    return out


def packs(runs: list, k: int) -> list[list]:
    """A list of runs cut into packs of up to k (grid order kept within each pack)."""
    queue, out = list(runs), []
    while queue:
        out.append(take(queue, k))
    return out
