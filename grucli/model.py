"""The one place a model is sized, built and loaded: the sequence-model wrapper every cell
and head goes through, exact parameter counting and parameter-budget matching, `model_size`
and `build` for a run config, `load` for a run folder. Cells come from the registry (grucli.cells); this
module never asks which cell it wraps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from grucli import cells, seq2seq, store
from grucli.config import LATER_KEYS, RunConfig, parse_run
from grucli.errors import ConfigError, GrucliError
from grucli.tasks import TaskData
from grucli.cells.fused import build as kernels


def model_params(cell: str, hidden: int, *, input_size: int, output_size: int, layers: int = 1,
                 bidirectional: bool = False, vocab_size: int | None = None, embed_dim: int | None = None) -> int:
    """Total parameters of a SequenceModel: embedding (if any) + recurrent stack + linear head."""
    d = 2 if bidirectional else 1
    embed = vocab_size * embed_dim if (vocab_size and embed_dim) else 0
    rnn_in = embed_dim if (vocab_size and embed_dim) else input_size
    head = d * hidden * output_size + output_size
    return embed + cells.recurrent_params(cell, rnn_in, hidden, layers, bidirectional) + head


def hidden_for_budget(budget: int, cell: str, max_hidden: int = 8192, count=None, **dims) -> int:
    """The hidden size whose total parameter count (`count(cell, H, **dims)`, by default a
    SequenceModel's) is closest to `budget` (ties -> smaller). The count grows
    monotonically with H, so we walk up until it passes the budget."""
    count = count or model_params
    best, best_gap = 1, abs(count(cell, 1, **dims) - budget)
    for h in range(2, max_hidden + 1):
        n = count(cell, h, **dims)
        if abs(n - budget) < best_gap:
            best, best_gap = h, abs(n - budget)
        if n > budget:
            break
    return best


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class SequenceModel(nn.Module):
    """Input (embedding or one-hot for tokens) -> recurrent stack -> dropout -> linear head.

    head="last": one output per sequence from the final hidden state (for a bidirectional
    cell: the forward state at the last true step and the backward state at step 0).
    head="each": one output per step. Padded batches (lengths given) are packed, so padding
    never changes a result."""

    def __init__(self, cell: str, *, input_size: int, output_size: int, hidden_size: int, head: str,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 tokens: bool = False, embed_dim: int | None = None, forget_bias: float | None = None,
                 impl: str = "auto"):
        super().__init__()
        self.cell = cells.get(cell)
        self.head_kind = head
        self.tokens, self.vocab_size = tokens, input_size if tokens else None
        self.layers, self.dirs, self.hidden = num_layers, 2 if bidirectional else 1, hidden_size
        self.embed = nn.Embedding(input_size, embed_dim) if tokens and embed_dim else None
        rnn_in = embed_dim if self.embed is not None else input_size
        self.impl = cells.resolve_impl(self.cell, impl)
        self.rnn = cells.make(self.cell, rnn_in, hidden_size, num_layers, bidirectional, dropout, self.impl, forget_bias)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.dirs * hidden_size, output_size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tokens:
            return x  # (B, T, I)
        if self.embed is not None:
            return self.embed(x)  # (B, T, E)
        return F.one_hot(x, self.vocab_size).to(self.head.weight.dtype)  # (B, T, V)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        z = self.encode(x)  # (B, T, I)
        B, T = z.shape[:2]
        if lengths is not None:
            z = pack_padded_sequence(z, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(z)
        if self.head_kind == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H); a memory c_n is not read
            if self.dirs == 1:
                feat = h_n[-1]  # (B, H); one autograd node, not a chain of views (it counts on tiny models)
            else:
                feat = h_n[-2:].transpose(0, 1).reshape(B, 2 * self.hidden)  # (B, 2H): forward, backward
        else:
            if lengths is not None:
                out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
            feat = out  # (B, T, D*H)
        return self.head(self.drop(feat))  # (B, O) or (B, T, O)


# --------------------------------------------------------------------------- model kinds
@dataclass(frozen=True)
class Kind:
    """What a task's head asks for: how to read its sizes off the task (`spec`, plain data,
    kept in model.pt to rebuild the model), count its parameters and build it."""

    spec: Callable  # (ModelConfig, TaskData) -> dict
    count: Callable  # (cell, hidden, **spec) -> int
    build: Callable  # (ModelConfig, hidden, spec) -> nn.Module
    options: tuple[str, ...] = ()  # model keys only this kind reads (others must leave them at their defaults)


def _sequence_spec(m, data) -> dict:
    return dict(input_size=data.input_size, output_size=data.output_size, layers=m.num_layers,
                bidirectional=m.bidirectional, vocab_size=data.input_size if data.tokens else None,
                embed_dim=m.embed_dim, head=data.head, tokens=data.tokens)


def _sequence_count(cell, hidden, head=None, tokens=None, **dims) -> int:
    return model_params(cell, hidden, **dims)


def _sequence_build(m, hidden, spec) -> nn.Module:
    return SequenceModel(m.cell, input_size=spec["input_size"], output_size=spec["output_size"], hidden_size=hidden,
                         head=spec["head"], num_layers=m.num_layers, bidirectional=m.bidirectional, dropout=m.dropout,
                         tokens=spec["tokens"], embed_dim=m.embed_dim, forget_bias=m.forget_bias, impl=m.impl)


def _seq2seq_spec(m, data) -> dict:
    i = data.info
    return dict(src_vocab=len(i["src_vocab"]), tgt_vocab=len(i["tgt_vocab"]), layers=m.num_layers,
                bidirectional=m.bidirectional, embed_dim=m.embed_dim, attention=m.attention,
                src_len=i["src_len"], out_len=i["out_len"])


def _seq2seq_count(cell, hidden, src_len=None, out_len=None, **dims) -> int:
    return seq2seq.count(cell, hidden, **dims)


def _seq2seq_build(m, hidden, spec) -> nn.Module:
    return seq2seq.Seq2Seq(m.cell, src_vocab=spec["src_vocab"], tgt_vocab=spec["tgt_vocab"], src_len=spec["src_len"],
                   out_len=spec["out_len"], hidden_size=hidden, embed_dim=m.embed_dim, num_layers=m.num_layers,
                   bidirectional=m.bidirectional, dropout=m.dropout, attention=m.attention, beam=m.beam,
                   impl=m.impl, forget_bias=m.forget_bias)


SEQUENCE = Kind(_sequence_spec, _sequence_count, _sequence_build)
KINDS = {"last": SEQUENCE, "each": SEQUENCE,
         "seq2seq": Kind(_seq2seq_spec, _seq2seq_count, _seq2seq_build, options=("attention", "beam"))}
ALL_OPTIONS = ("attention", "beam")  # see grucli.config.LATER_KEYS for their defaults


# --------------------------------------------------------------------------- a run's model
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


def build(cfg: RunConfig, data: TaskData) -> nn.Module:
    """The model a run trains (a SequenceModel, or an encoder-decoder for seq2seq tasks)."""
    hidden, spec = model_size(cfg, data)
    kind = KINDS[data.head]
    model = kind.build(cfg.model, hidden, spec)
    assert count_params(model) == kind.count(cfg.model.cell, hidden, **spec)
    model.spec = spec  # for meta(): sized once per run
    return model


def describe_impl(impl: str) -> str:
    """What actually computed the recurrence: grucli's compiled kernels (which build),
    torch's own modules, or the cell's Python step."""
    if impl == "fused":
        return "grucli fused kernels " + kernels.describe()
    return {"torch": "torch's own module", "reference": "the cell's Python step (reference)"}.get(impl, impl)


def meta(model: nn.Module, cfg: RunConfig, data: TaskData) -> dict:
    """What model.pt keeps beside the weights: enough to rebuild the model without the task's
    data (`load`), and to decode its tokens."""
    return {"hidden_size": model.hidden, "impl": model.impl, "kernels": describe_impl(model.impl),
            "spec": model.spec, "input_size": data.input_size,
            "output_size": data.output_size, "head": data.head, "tokens": data.tokens,
            "vocab": data.info.get("vocab"),  # token tasks: id -> token, to decode (grucli sample)
            "unit": data.info.get("unit"), "src_vocab": data.info.get("src_vocab"),
            "tgt_vocab": data.info.get("tgt_vocab"), "src_unit": data.info.get("src_unit"),
            "tgt_unit": data.info.get("tgt_unit")}


def load(run_dir: str | Path) -> tuple[nn.Module, RunConfig, dict]:
    """(model in eval mode, its run config, its meta) from a run folder's model.pt, rebuilt
    from what model.pt holds (no task data needed). One line when the folder is not a run,
    has no weights, or the weights do not load."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GrucliError(f"{run_dir}: no such folder")
    weights = run_dir / store.WEIGHTS
    if not weights.is_file():
        if not (run_dir / store.CONFIG).is_file():
            hint = " (an experiment folder: add --compare)" if any(run_dir.glob(f"*/{store.CONFIG}")) else ""
            raise GrucliError(f"{run_dir}: not a run folder (no {store.CONFIG}){hint}")
        summary = store.read_summary(run_dir)
        state = f"status {summary['status']}" if summary else "unfinished"
        raise GrucliError(f"{run_dir}: no weights ({store.WEIGHTS} missing, run {state})")
    try:
        saved = torch.load(weights, map_location="cpu", weights_only=True)
        cfg = parse_run(saved["config"], str(weights))
        m = saved["meta"]
        if "spec" in m:  # written since grucli 0.2: everything the model kind needs
            model = KINDS[m["head"]].build(cfg.model, m["hidden_size"], m["spec"])
        else:
            model = build(cfg, SimpleNamespace(**{k: m[k] for k in ("input_size", "output_size", "head", "tokens")},
                                               info={}))
        model.load_state_dict(saved["state_dict"])
    except GrucliError:
        raise
    except Exception as e:  # corrupt file, wrong keys or shapes
        raise GrucliError(f"{weights}: cannot load the weights ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return model.eval(), cfg, m
