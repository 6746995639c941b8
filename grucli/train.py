"""Train one run: config in, result out. Progress goes to a callback; nothing is printed.

The loop never asks which cell or task it runs: the model wrapper handles cells and
heads, the task's objective handles losses and metrics."""

from __future__ import annotations

import copy
import math
import resource
import time
import traceback
from dataclasses import dataclass, field

import torch

from grucli import budget, environment, memory, runtime
from grucli.config import RunConfig
from grucli.errors import ConfigError, GrucliError
from grucli.config import LATER_KEYS
from grucli.model import ALL_OPTIONS, KINDS, count_params, hidden_for_budget
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


def model_size(cfg: RunConfig, data: TaskData) -> tuple[int, dict]:
    """The hidden size a run trains with and its model's spec (grucli.model.KINDS, by the
    task's head). `param_budget` is resolved here, where the task's sizes are known; a
    budget below the smallest model of the cell (H = 1) is an error naming that smallest
    count, and so is a model key this kind of model does not read."""
    m = cfg.model
    kind = KINDS[data.head]
    for key in ALL_OPTIONS:
        if key not in kind.options and getattr(m, key) != LATER_KEYS[("model", key)]:
            raise ConfigError(f"model.{key}: only encoder-decoder tasks read it (task {cfg.task.name} has a "
                              f"'{data.head}' head)")
    spec = kind.spec(m, data)
    if m.hidden_size:
        return m.hidden_size, spec
    smallest = kind.count(m.cell, 1, **spec)
    if m.param_budget < smallest:
        raise ConfigError(f"model.param_budget: {m.param_budget} is below the smallest {m.cell} for this task: "
                          f"{smallest} parameters at hidden_size 1 ({m.num_layers} layer(s), task {cfg.task.name})")
    return hidden_for_budget(m.param_budget, m.cell, count=kind.count, **spec), spec


def build_model(cfg: RunConfig, data: TaskData) -> torch.nn.Module:
    """The model a run trains (a SequenceModel, or an encoder-decoder for seq2seq tasks)."""
    hidden, spec = model_size(cfg, data)
    kind = KINDS[data.head]
    model = kind.build(cfg.model, hidden, spec)
    assert count_params(model) == kind.count(cfg.model.cell, hidden, **spec)
    return model


def _kernels(impl: str) -> str:
    """What actually computed the recurrence: grucli's compiled kernels (which build),
    torch's own modules, or the cell's Python step."""
    if impl == "fused":
        from grucli.cells.fused import build

        return "grucli fused kernels " + build.describe()
    return {"torch": "torch's own module", "reference": "the cell's Python step (reference)"}.get(impl, impl)


def make_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    t = cfg.train
    if t.optimizer == "adam":
        return adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    params = list(params)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, **_fused(params))


def _fused(params: list) -> dict:
    """torch's fused optimiser step (one kernel over every parameter) where it has one for
    these tensors. On CPU it cuts Adam's step at H=16 from ~0.3 to ~0.14 ms; the per-tensor
    loop it replaces is most of a small model's fixed cost per training step."""
    ok = params and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return {"fused": True} if ok else {}


def adam(params, **kwargs) -> torch.optim.Adam:
    """Adam as grucli trains with it (and `grucli bench` times it)."""
    params = list(params)
    return torch.optim.Adam(params, **kwargs, **_fused(params))


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
    caught and returned as status 'failed'; a non-finite loss stops with 'diverged'."""
    cb = callback or Callback()
    device = runtime.resolve_device(cfg.train.device)
    n_threads = runtime.configure(threads or cfg.train.threads, device)
    _reset_peak_memory(device)
    data = build_task(cfg.task)
    result = RunResult(status="ok", metric=data.metric, goal=data.goal, target=data.target, select=data.selection,
                       baseline=dict(data.baseline), env=environment.describe(device, n_threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            _fit(cfg, data, device, cb, result)
    except GrucliError:
        raise
    except Exception as e:  # recorded, the grid goes on
        result.status = "failed"
        result.error = f"{type(e).__name__}: {e}".splitlines()[0]
        result.traceback = traceback.format_exc()
    return result


def _fit(cfg: RunConfig, data: TaskData, device: torch.device, cb: Callback, result: RunResult) -> None:
    t, wall0 = cfg.train, time.perf_counter()
    model = build_model(cfg, data).to(device)
    result.params, result.hidden_size = count_params(model), model.hidden
    result.model_meta = {"hidden_size": model.hidden, "impl": model.impl, "kernels": _kernels(model.impl),
                         "spec": model_size(cfg, data)[1], "input_size": data.input_size,
                         "output_size": data.output_size, "head": data.head, "tokens": data.tokens,
                         "vocab": data.info.get("vocab"),  # token tasks: id -> token, to decode (grucli sample)
                         "unit": data.info.get("unit"), "src_vocab": data.info.get("src_vocab"),
                         "tgt_vocab": data.info.get("tgt_vocab"), "src_unit": data.info.get("src_unit"),
                         "tgt_unit": data.info.get("tgt_unit")}
    opt = make_optimizer(cfg, model.parameters())
    train, val, test = (_to(s, device) for s in (data.train, data.val, data.test))
    order_gen = torch.Generator().manual_seed(cfg.seed)
    n, B = len(train), t.batch_size
    steps_per_epoch = math.ceil(n / B)
    total = steps_per_epoch * t.epochs if t.max_steps is None else min(t.max_steps, steps_per_epoch * t.epochs)
    cb.on_start(total)

    step, seqs, train_time, best, best_state, since_best = 0, 0, 0.0, float("nan"), None, 0
    epoch_times: list[float] = []
    result.stopped_by = "epochs"
    for epoch in range(1, t.epochs + 1):
        perm = torch.randperm(n, generator=order_gen).to(device)
        loss_sum, seen, t0 = 0.0, 0, time.perf_counter()
        for i in range(0, n, B):
            batch = train.take(perm[i:i + B])
            out, y = forward(model, batch)
            loss = data.objective.loss(out, y)
            value = loss.item()
            if not math.isfinite(value):
                result.status, result.error = "diverged", f"non-finite loss ({value}) at step {step + 1}"
                result.stopped_by = "diverged"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            opt.step()
            step += 1
            loss_sum += value * len(batch)
            seen += len(batch)
            seqs += len(batch)
            cb.on_step(step, value)
            if step >= total:
                break
        epoch_time = time.perf_counter() - t0
        train_time += epoch_time
        epoch_times.append(epoch_time)
        if result.status == "diverged":
            break
        val_metrics = evaluate(model, val, data, t.eval_batch_size)
        row = {"epoch": epoch, "step": step, "train_loss": loss_sum / max(seen, 1),
               **{f"val_{k}": v for k, v in val_metrics.items()},
               "epoch_time_s": epoch_time, "train_time_s": train_time, "wall_time_s": time.perf_counter() - wall0}
        result.history.append(row)
        cb.on_epoch(row)
        score = val_metrics[data.selection[0]]
        if result.time_to_target_s is None and data.reached(score):
            result.time_to_target_s, result.epoch_to_target = train_time, epoch
        if _better(score, best, data.selection[1]):
            best, since_best = score, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        stop = cb.stop_reason()
        if stop:
            result.status, result.error, result.stopped_by = "pruned", stop, "pruned"
            break
        if step >= total:
            result.stopped_by = "max_steps" if t.max_steps is not None and step < steps_per_epoch * t.epochs else "epochs"
            break
        if t.early_stopping and since_best >= t.early_stopping:
            result.stopped_by = "early_stopping"
            break
        if t.stop_at_target and result.time_to_target_s is not None:
            result.stopped_by = "target"
            break
    select, select_goal = data.selection
    curve = [r[f"val_{select}"] for r in result.history]
    result.still_improving = budget.still_improving(curve, select_goal, result.stopped_by,
                                                    solved=result.time_to_target_s is not None)
    result.left_baseline = budget.left_baseline(curve, data.baseline.get(select), select_goal)

    if best_state is not None:
        model.load_state_dict(best_state)  # final metrics at the best validation epoch
    if result.history:
        result.val = evaluate(model, val, data, t.eval_batch_size)
        result.test = evaluate(model, test, data, t.eval_batch_size)
        result.train = evaluate(model, train.take(slice(0, TRAIN_EVAL_CAP)), data, t.eval_batch_size)
        result.reached_target = result.time_to_target_s is not None  # validation, as time_to_target_s
        result.test_reached_target = data.reached(result.test[select])
    result.state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    batch = train.take(slice(0, B))
    activations = memory.saved_activation_bytes(model, lambda: data.objective.loss(*forward(model, batch)))
    latency = _latency_ms(model, test, B)
    result.timing = {
        "epochs": len(epoch_times), "steps": step, "train_time_s": train_time,
        "epoch_time_s": sum(epoch_times) / len(epoch_times) if epoch_times else None,
        "throughput_seq_s": seqs / train_time if train_time else None,
        "latency_batch_ms": latency,
        "latency_seq_ms": latency / min(B, len(test)),
        "peak_memory_mb": _peak_memory_mb(device),
        "saved_activation_bytes": activations,  # kept for the backward of one batch of batch_size (memory.py)
        "param_bytes": memory.parameter_bytes(model),
        "optimizer_state_bytes": memory.optimizer_state_bytes(opt),
        "total_time_s": time.perf_counter() - wall0,
    }
