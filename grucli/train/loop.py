"""Train one run: config in, result out. Progress goes to a callback; nothing is printed.

The loop never asks which cell or task it runs: the model wrapper handles cells and
heads, the task's objective handles losses and metrics."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import resource
import time
import traceback
from dataclasses import dataclass, field

import torch

from grucli import budget, environment, runtime, store
from grucli.train import memory, packing, steppers
from grucli.config import RunConfig
from grucli.errors import GrucliError
from grucli.model import build as build_model, count_params, meta as model_meta
from grucli.tasks import Split, TaskData, build_task

TRAIN_EVAL_CAP = 5000  # train metrics are computed on the first this-many training sequences


class Callback:
    """Override what you need. `on_start(total_steps)`, `on_step(step, loss)` after every
    optimiser step, `on_epoch(row)` with the history row after each evaluation, and
    `stop_reason()`, asked after each epoch: a reason (e.g. a tuner's pruner) ends the run
    with status "pruned"."""

    def on_start(self, total_steps: int) -> None: ...

    def on_step(self, step: int, loss: float) -> None: ...

    def on_epoch(self, row: dict) -> None: ...

    def stop_reason(self) -> str | None:
        return None


@dataclass
class RunResult:
    status: str  # ok | diverged | failed | pruned
    error: str | None = None
    traceback: str | None = None
    params: int | None = None
    hidden_size: int | None = None
    metric: str | None = None
    goal: str | None = None
    select: tuple[str, str] | None = None  # (metric, goal) validation selects on (TaskData.selection)
    target: float | None = None
    baseline: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    # The target, all on the validation split: whether it was reached, when (training seconds
    # and epoch of the first evaluation that met it). test_reached_target: the final test metric.
    reached_target: bool = False
    time_to_target_s: float | None = None
    epoch_to_target: int | None = None
    test_reached_target: bool = False
    stopped_by: str | None = None  # grucli.budget.STOPPED_BY
    still_improving: bool | None = None  # ran out of budget while its validation curve still fell (budget.py)
    left_baseline: bool | None = None  # its best validation value beat the trivial baseline by >= 5% (budget.py)
    timing: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    state_dict: dict | None = None
    model_meta: dict = field(default_factory=dict)


def forward(model: torch.nn.Module, batch: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """Model output and the matching targets; padded batches are cut to their longest sequence."""
    batch = batch.trim()
    return model(batch.x, batch.lengths), batch.y


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, data: TaskData, batch_size: int) -> dict[str, float]:
    """Metrics over the whole split (exact, not an average of batch averages). A model may
    return several outputs in eval mode (an encoder-decoder: logits and its own decoding)."""
    model.eval()
    outs = [model(split.x[i:i + batch_size], None if split.lengths is None else split.lengths[i:i + batch_size])
            for i in range(0, len(split), batch_size)]
    model.train()
    out = tuple(torch.cat(parts) for parts in zip(*outs)) if isinstance(outs[0], tuple) else torch.cat(outs)
    return data.objective.metrics(out, split.y, split.score_mask)


def _to(split: Split, device: torch.device) -> Split:
    move = lambda t: None if t is None else t.to(device)  # noqa: E731
    return Split(move(split.x), move(split.y), split.lengths, move(split.score_mask))


def _better(a: float, b: float, goal: str) -> bool:
    if a != a:
        return False
    return b != b or (a < b if goal == "min" else a > b)


def _reset_peak_memory(device: torch.device) -> bool:
    """Start this run's memory peak from now: a pool worker trains run after run, and the
    process's lifetime peak would charge a small model with a big one's memory. On Linux,
    writing 5 to /proc/self/clear_refs resets the peak RSS (VmHWM). False: cannot reset."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_memory_mb(device: torch.device) -> float:
    """The run's peak: CUDA memory allocated, else the process's peak resident set (VmHWM
    since the reset; the lifetime peak where /proc is unavailable)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@torch.no_grad()
def _latency_ms(model: torch.nn.Module, split: Split, batch_size: int, repeats: int = 5) -> float:
    """Median forward time of one batch of `batch_size` test sequences, after a warm-up."""
    model.eval()
    batch = split.take(slice(0, batch_size))
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        forward(model, batch)
        if i:
            times.append(time.perf_counter() - t0)
    model.train()
    return 1000 * sorted(times)[len(times) // 2]


def train_run(cfg: RunConfig, callback: Callback | None = None, threads: int | None = None) -> RunResult:
    """Train one run. Config and data errors raise GrucliError; any other exception is
    caught and returned as status 'failed'; a non-finite loss stops with 'diverged'.
    A run alone is a pack of one: the same code, and the same numbers, as in a pack."""
    return train_pack([cfg], [callback], threads)[0]


def train_pack(cfgs: list[RunConfig], callbacks: list[Callback | None] | None = None, threads: int | None = None,
               on_result=None) -> list[RunResult]:
    """Train runs of one shape (grucli.train.packing.key: they differ at most in seed, lr,
    weight decay, gradient clip, dropout and when to stop) together, one step advancing
    all of them. Each run keeps its own weights (from its seed), batch order, dropout
    masks, optimiser state, clip, stopping, history and result, with the arithmetic it
    has alone: its forward is its own; the backward is one call over every run's loss
    (disjoint graphs: each gradient is what its own backward gives) and the optimiser one
    step over one param group per run. A run that diverges, stops or fails leaves the pack
    at once; `on_result(i, result)` hears of each run as it finishes. Returns the results
    in the order of `cfgs`."""
    if len({packing.key(c) for c in cfgs}) != 1:
        raise ValueError("train_pack: these runs differ in more than what a pack may vary (grucli.train.packing)")
    callbacks = list(callbacks or [None] * len(cfgs))
    _import_what_backward_imports()
    first = cfgs[0]
    device = runtime.resolve_device(first.train.device)
    n_threads = runtime.configure(threads or first.train.threads, device)
    _reset_peak_memory(device)
    data = build_task(first.task)
    env = environment.describe(device, n_threads)
    with torch.random.fork_rng(devices=[]):
        runs = [_Member(i, cfg, cb or Callback(), data, device, env) for i, (cfg, cb) in enumerate(zip(cfgs, callbacks))]
        for group in _fitting(runs, data, device):
            _Pack(group, data, device, on_result).fit()
    return [r.result for r in runs]


def _import_what_backward_imports() -> None:
    """A process's first backward imports torch.fx's symbolic shapes (and with it sympy):
    measured 0.35-0.5 s, which landed in the first epoch of every worker's first run (its
    first step took 353 ms, the next ones 4 ms) and inflated the run's time in training.
    Imported here, before anything is timed; it changes no number."""
    import torch.fx.experimental.symbolic_shapes  # noqa: F401 (for its import time only)


def _fitting(runs: list[_Member], data: TaskData, device: torch.device) -> list[list[_Member]]:
    """The pack cut into consecutive groups that fit in memory (train.packing.fit), trained
    one after another; one group unless the runs are big. One run's bytes: its weights,
    gradients and Adam's two moments, and what autograd saves for one batch (measured on
    the first run with a forward whose random draws are undone)."""
    built = [r for r in runs if r.model is not None]
    if len(runs) < 2 or not built or device.type != "cpu":
        return [runs]
    model, t = built[0].model, built[0].cfg.train
    batch = _to(data.train.take(slice(0, t.batch_size)), device)
    saved = memory.saved_activation_bytes(model, lambda: data.objective.loss(*forward(model, batch)))
    k = packing.fit(len(runs), saved + 4 * memory.parameter_bytes(model), memory.available_bytes(),
                    runtime.usable_cores())
    return [runs[i:i + k] for i in range(0, len(runs), k)]


class _Member:
    """One run of a pack: its model, batch order, random state, bookkeeping and result."""

    def __init__(self, index: int, cfg: RunConfig, cb: Callback, data: TaskData, device: torch.device, env: dict):
        self.index, self.cfg, self.cb, self.data, self.device = index, cfg, cb, data, device
        self.result = RunResult(status="ok", metric=data.metric, goal=data.goal, target=data.target,
                                select=data.selection, baseline=dict(data.baseline), env=dict(env))
        self.wall0 = time.perf_counter()
        self.done, self.model, self.loss, self.value = False, None, None, 0.0
        self.params, self.opt_state_bytes, self.step_kind, self.step_why = None, 0, None, None  # by the stepper
        self.step, self.seqs, self.train_time = 0, 0, 0.0
        self.best, self.best_state, self.since_best = float("nan"), None, 0
        self.epoch_times: list[float] = []  # training seconds of each epoch (its share, in a pack)
        self.epoch_steps: list[int] = []  # optimiser steps of each epoch (the last may be cut short)
        self.epoch_seqs: list[int] = []  # sequences of each epoch
        self.result.stopped_by = "epochs"
        try:
            torch.manual_seed(cfg.seed)  # weights, then dropout masks, from the run's own seed
            self.model = build_model(cfg, data).to(device)
            self.rng = _rng_state(device)
            self.order_gen = torch.Generator().manual_seed(cfg.seed)  # batch order
            self.result.params, self.result.hidden_size = count_params(self.model), self.model.hidden
            self.result.model_meta = model_meta(self.model, cfg, data)
        except GrucliError:
            raise
        except Exception as e:
            self.fail(e)

    def fail(self, error: BaseException) -> None:  # recorded, the pack and the grid go on
        self.result.status = "failed"
        self.result.error = f"{type(error).__name__}: {error}".splitlines()[0]
        self.result.traceback = "".join(traceback.format_exception(error))
        self.result.stopped_by = None
        self.done = True

    def start_epoch(self, n: int) -> None:
        self.perm = torch.randperm(n, generator=self.order_gen).to(self.device)
        self.loss_sum, self.seen, self.epoch_time = 0.0, 0, 0.0
        self.epoch_start = (self.step, self.seqs)

    def take(self, train: Split, i: int, batch_size: int) -> Split:
        """This run's next batch (its own order)."""
        self.batch = train.take(self.perm[i:i + batch_size])
        return self.batch

    def forward(self, train: Split, i: int, batch_size: int) -> None:
        """This run's loss on its next batch, from its own model."""
        self.take(train, i, batch_size)
        _set_rng_state(device := self.device, self.rng)  # the dropout masks it would draw alone
        out, y = forward(self.model, self.batch)
        self.rng = _rng_state(device)
        self.record(self.data.objective.loss(out, y))

    def record(self, loss: torch.Tensor | None, value: float | None = None) -> None:
        """The loss of this step (None where the pack holds every run's loss in one tensor)
        and its value; a non-finite loss ends the run as diverged."""
        self.loss = loss
        self.value = loss.item() if value is None else value
        if not math.isfinite(self.value):
            self.result.status, self.result.error = "diverged", f"non-finite loss ({self.value}) at step {self.step + 1}"
            self.result.stopped_by, self.done, self.loss = "diverged", True, None

    def stepped(self, seconds: float) -> None:
        self.step += 1
        self.loss_sum += self.value * len(self.batch)
        self.seen += len(self.batch)
        self.seqs += len(self.batch)
        self.epoch_time += seconds
        self.loss = None
        self.cb.on_step(self.step, self.value)

    def end_epoch(self) -> None:
        self.train_time += self.epoch_time
        self.epoch_times.append(self.epoch_time)
        self.epoch_steps.append(self.step - self.epoch_start[0])
        self.epoch_seqs.append(self.seqs - self.epoch_start[1])

    def evaluate(self, epoch: int, val: Split, total: int, steps_per_epoch: int) -> None:
        """The epoch's validation row and whether the run stops here (self.done)."""
        t, data, result = self.cfg.train, self.data, self.result
        val_metrics = evaluate(self.model, val, data, t.eval_batch_size)
        row = {"epoch": epoch, "step": self.step, "train_loss": self.loss_sum / max(self.seen, 1),
               **{f"val_{k}": v for k, v in val_metrics.items()},
               "epoch_time_s": self.epoch_time, "train_time_s": self.train_time,
               "wall_time_s": time.perf_counter() - self.wall0}
        result.history.append(row)
        self.cb.on_epoch(row)
        score = val_metrics[data.selection[0]]
        if result.time_to_target_s is None and data.reached(score):
            result.time_to_target_s, result.epoch_to_target = self.train_time, epoch
        if _better(score, self.best, data.selection[1]):
            self.best, self.since_best = score, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.since_best += 1
        stop = self.cb.stop_reason()
        if stop:
            result.status, result.error, result.stopped_by, self.done = "pruned", stop, "pruned", True
        elif self.step >= total:
            capped = t.max_steps is not None and self.step < steps_per_epoch * t.epochs
            result.stopped_by, self.done = ("max_steps" if capped else "epochs"), True
        elif t.early_stopping and self.since_best >= t.early_stopping:
            result.stopped_by, self.done = "early_stopping", True
        elif t.stop_at_target and result.time_to_target_s is not None:
            result.stopped_by, self.done = "target", True

    def finish(self, splits: tuple[Split, Split, Split], pack_size: int, pack_id: str) -> None:
        """Final metrics at the best validation epoch, the weights and the measurements.
        Speed is steady-state (store.steady_timing): s/epoch and seq/s leave the first
        epoch's warm-up out, which is kept as first_epoch_time_s."""
        result, data, model, t = self.result, self.data, self.model, self.cfg.train
        train, val, test = splits
        select, select_goal = data.selection
        curve = [r[f"val_{select}"] for r in result.history]
        result.still_improving = budget.still_improving(curve, select_goal, result.stopped_by,
                                                        solved=result.time_to_target_s is not None)
        result.left_baseline = budget.left_baseline(curve, data.baseline.get(select), select_goal)
        if self.best_state is not None:
            model.load_state_dict(self.best_state)  # final metrics at the best validation epoch
        if result.history:
            result.val = evaluate(model, val, data, t.eval_batch_size)
            result.test = evaluate(model, test, data, t.eval_batch_size)
            result.train = evaluate(model, train.take(slice(0, TRAIN_EVAL_CAP)), data, t.eval_batch_size)
            result.reached_target = result.time_to_target_s is not None  # validation, as time_to_target_s
            result.test_reached_target = data.reached(result.test[select])
        result.state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        B = t.batch_size
        batch = train.take(slice(0, B))
        activations = memory.saved_activation_bytes(model, lambda: data.objective.loss(*forward(model, batch)))
        latency = _latency_ms(model, test, B)
        steady = store.steady_timing(self.epoch_times, self.epoch_steps, (self.epoch_seqs or [None])[0])
        result.timing = {
            "epochs": len(self.epoch_times), "steps": self.step, "train_time_s": self.train_time,
            **steady,  # epoch_time_s, first_epoch_time_s, epoch_time_steady, throughput_seq_s
            "latency_batch_ms": latency,
            "latency_seq_ms": latency / min(B, len(test)),
            "peak_memory_mb": _peak_memory_mb(self.device),  # of the process: a pack's runs share it
            "saved_activation_bytes": activations,  # kept for the backward of one batch of batch_size (memory.py)
            "param_bytes": memory.parameter_bytes(model),
            "optimizer_state_bytes": self.opt_state_bytes,
            "total_time_s": time.perf_counter() - self.wall0,
            # runs trained together in one process; its training time is its share of each step's
            "pack_size": pack_size,
            "pack_id": pack_id,  # the same for the runs of one pack: they share one measured time
            "step": self.step_kind,  # how its steps ran: "stacked" (grucli.train.stacked) or "per-run"
            "step_why": self.step_why,  # why per-run (grucli.train.stacked.unsupported); None when stacked
        }


def _rng_state(device: torch.device) -> tuple:
    """The global generators a training forward draws from (dropout): CPU, and the device's."""
    return (torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_rng_state(device: torch.device, state: tuple) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def pack_id(cfgs: list[RunConfig]) -> str:
    """What names one pack (the runs whose steps were timed together, so that their times
    are one measurement, not one per run): 12 hex digits of a hash of its runs' configs,
    in any order. A run alone gets an id of its own."""
    blob = json.dumps(sorted(c.model_dump_json() for c in cfgs))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class _Pack:
    """The training loop over the runs of one pack, in lockstep."""

    def __init__(self, runs: list[_Member], data: TaskData, device: torch.device, on_result):
        self.runs, self.data, self.device, self.on_result = runs, data, device, on_result
        self.splits = tuple(_to(s, device) for s in (data.train, data.val, data.test))
        self.steps = None  # how the pack steps (grucli.train.steppers), chosen when training starts
        self.pack_id = pack_id([r.cfg for r in runs])

    def _leave(self, run: _Member) -> None:
        """A run is over (any status): its final measurements, then its result is handed on."""
        if self.steps is not None:
            self.steps.sync(run)
            run.opt_state_bytes, run.step_kind = self.steps.state_bytes(run), self.steps.kind
            run.step_why = self.steps.why
            self.steps.left(run)
        if run.result.status != "failed":
            try:
                run.finish(self.splits, len(self.runs), self.pack_id)
            except GrucliError:
                raise
            except Exception as e:
                run.fail(e)
        run.done = True
        run.model = run.best_state = run.loss = run.params = None  # a finished run's memory goes back now
        if self.on_result is not None:
            self.on_result(run.index, run.result)

    def guard(self, runs: list[_Member], action) -> bool:
        """Do `action()`; if it raises, every run in `runs` failed and left (the rest go on): False."""
        try:
            action()
            return True
        except GrucliError:
            raise
        except Exception as e:
            for run in runs:
                run.fail(e)
                self._leave(run)
            return False

    def _stepper(self, live: list[_Member]) -> None:
        self.steps = steppers.choose(live, self.data, self.device)

    def fit(self) -> None:
        for r in self.runs:
            if r.done:  # failed while being built
                self._leave(r)
        live = [r for r in self.runs if not r.done]
        if not live or not self.guard(live, lambda: self._stepper(live)):
            return
        steps = self.steps
        t = live[0].cfg.train
        train, val, _ = self.splits
        n, B = len(train), t.batch_size
        steps_per_epoch = math.ceil(n / B)
        total = steps_per_epoch * t.epochs if t.max_steps is None else min(t.max_steps, steps_per_epoch * t.epochs)
        for r in live:
            r.cb.on_start(total)
        for epoch in range(1, t.epochs + 1):
            stepping = [r for r in live if not r.done]
            if not stepping:
                break
            for r in stepping:
                r.start_epoch(n)
            clock = time.perf_counter()
            for i in range(0, n, B):
                steps.forward(self, stepping, train, i, B)
                for r in stepping:
                    if r.done and r.result.status == "diverged":  # (a failed run has left already)
                        r.end_epoch()
                        self._leave(r)
                stepping = [r for r in stepping if not r.done]
                if not stepping or not self.guard(stepping, lambda: steps.update(stepping)):
                    stepping = []
                    break
                now = time.perf_counter()
                share, clock = (now - clock) / len(stepping), now  # each run's share of the step's time
                for r in stepping:
                    r.stepped(share)
                if stepping[0].step >= total:
                    break
            for r in stepping:
                r.end_epoch()
                steps.sync(r)
                if self.guard([r], lambda: r.evaluate(epoch, val, total, steps_per_epoch)) and r.done:
                    self._leave(r)
        for r in live:
            if not r.done:
                self._leave(r)
