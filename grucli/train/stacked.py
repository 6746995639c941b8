"""The runs of a pack trained as one stacked computation: the fast path of train.train_pack.

K SequenceModels of one shape on the fused kernels keep their parameters stacked, each
tensor (K, ...) (a run alone is a pack of one, through this same code). A training step is
then one kernel call per layer and direction for all K runs, one for the output layer, the
task's loss (where the objective names its kind, HEAD_LOSSES: in the output layer's node,
two kernel calls each way; a classification's cross-entropy on the features as the layers
leave them, time-major), one backward, and one call that clips each run's gradient and steps
its optimiser (grucli/cells/fused/step.cpp): the per-step cost of autograd, Python and the
optimiser is paid once per pack instead of once per run.

Each run's numbers are the ones it gets alone: the kernels compute each run on its own
slices with its own code path, its dropout masks come from its own generator, its loss is
computed on its own slice, and its optimiser state and hyperparameters (lr, weight decay,
clip) are its own. Each run's SequenceModel is the one saved and evaluated; `write` copies
the run's current weights into it.

`unsupported` says when a pack cannot train this way (grucli.train.steppers then steps each run's own
model: a torch or reference cell, an encoder-decoder, padded batches, a GPU, a kernel build
without SIMD); it reads only what every run of a pack shares, so a run never trains one way
alone and another packed.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from grucli.cells.layers import suffix
from grucli.cells.fused import FusedLayers
from grucli.model import SequenceModel
from grucli.objectives import IGNORE

OPTIMIZERS = {"sgd": 0, "adam": 1, "rmsprop": 2}  # train.optimizer -> step.cpp's kind
ADAM_BETAS, EPS, RMSPROP_ALPHA = (0.9, 0.999), 1e-8, 0.99  # torch's defaults, as optim.make_optimizer uses them


def unsupported(models: list[torch.nn.Module], data, device: torch.device) -> str | None:
    """Why these models cannot train stacked on this task's data (None: they can)."""
    if device.type != "cpu":
        return "the stacked step runs on CPU"
    if not all(isinstance(m, SequenceModel) and isinstance(m.rnn, FusedLayers) for m in models):
        return "only sequence models on the fused kernels train stacked"
    if data is not None and data.train.lengths is not None:
        return "padded batches train run by run"
    if not models[0].rnn.kernels.own_products():
        # the BLAS a build without SIMD calls picks its code by alignment, and a run's slice
        # of a stack lies elsewhere than its own tensors: measured, its weight gradients
        # differed in the last bits
        return "this build's products are the BLAS's (no SIMD): packed runs train run by run"
    return None


def of_runs(models: list[torch.nn.Module], cfgs: list, rngs: list[torch.Generator]) -> "Stacked":
    """The Stacked of a pack's runs: each run's own settings from its RunConfig."""
    t = cfgs[0].train
    return Stacked(models, rngs, lr=[c.train.lr for c in cfgs], optimizer=t.optimizer, momentum=t.momentum,
                   weight_decay=[c.train.weight_decay for c in cfgs], grad_clip=[c.train.grad_clip for c in cfgs],
                   dropout=[c.model.dropout for c in cfgs])


class Linear(torch.autograd.Function):
    """The output layer of K runs: x (K, N, F), W (K, O, F), b (K, O) -> (K, N, O)."""

    @staticmethod
    def forward(ctx, x, w, b, k):
        ctx.save_for_backward(x, w)
        ctx.k = k
        return k.linear_forward(x, w, b)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dx, dw, db = ctx.k.linear_backward(dy, x, w, ctx.needs_input_grad[0])
        return dx, dw, db, None


class HeadCrossEntropy(torch.autograd.Function):
    """The output layer and cross-entropy of K runs: x (K, N, F), W (K, C, F), b (K, C),
    targets (K, N) -> each run's mean loss over its rows whose target is not `ignore` (K,).
    Forward and backward are two kernel calls each (linear_* and cross_entropy_*), one
    autograd node; the backward is the softmax minus the one-hot target, written out."""

    @staticmethod
    def forward(ctx, x, w, b, target, ignore, k):
        loss, probs = k.cross_entropy_forward(k.linear_forward(x, w, b), target, ignore)
        ctx.save_for_backward(x, w, probs, target)
        ctx.ignore, ctx.k = ignore, k
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, w, probs, target = ctx.saved_tensors
        dlogits = ctx.k.cross_entropy_backward(grad, probs, target, ctx.ignore)
        dx, dw, db = ctx.k.linear_backward(dlogits, x, w, ctx.needs_input_grad[0])
        return dx, dw, db, None, None, None


class HeadSquaredError(torch.autograd.Function):
    """The output layer and squared error of K runs: x (K, N, F), W (K, O, F), b (K, O),
    y (K, N * O) -> each run's mean of (out - y)^2 (K,): op for op what Linear,
    objectives.Regression.loss_terms and mean_per_run compute (the same bits), as one
    autograd node of two kernel calls each way instead of five nodes."""

    @staticmethod
    def forward(ctx, x, w, b, y, k):
        loss, diff = k.squared_error_forward(k.linear_forward(x, w, b), y)
        ctx.save_for_backward(x, w, diff)
        ctx.k = k
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, w, diff = ctx.saved_tensors
        dout = ctx.k.squared_error_backward(grad / max(1, diff.shape[1]), diff)  # mean_per_run's grad / n
        dx, dw, db = ctx.k.linear_backward(dout.view(w.shape[0], -1, w.shape[1]), x, w, ctx.needs_input_grad[0])
        return dx, dw, db, None, None


class _MeanPerRun(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.n, ctx.shape = max(1, x.numel() // max(1, len(x))), x.shape  # terms per run
        return k.mean_per_run(x.reshape(len(x), -1))

    @staticmethod
    def backward(ctx, grad):
        return (grad / ctx.n).reshape(-1, *([1] * (len(ctx.shape) - 1))).expand(ctx.shape), None


def mean_per_run(terms: torch.Tensor, kernels) -> torch.Tensor:
    """Each run's mean of its loss terms: terms (K, ...) -> (K,), summed in one fixed order
    for every run whatever K and the thread count (step.cpp; torch's own mean splits a large
    sum by threads, so a run's loss would depend on its pack)."""
    return _MeanPerRun.apply(terms, kernels)


class Stacked:
    """The stacked parameters and optimiser state of K runs' models (`models[i]` is run i's
    SequenceModel; all share one shape). Per run: `lr`, `weight_decay`, `grad_clip` (None:
    no clip), `dropout`, and `rngs`, its generator for dropout; the optimiser (sgd | adam |
    rmsprop) and its momentum are the pack's."""

    def __init__(self, models: list[torch.nn.Module], rngs: list[torch.Generator], *, lr: list[float],
                 optimizer: str = "adam", momentum: float = 0.0, weight_decay: list[float] | None = None,
                 grad_clip: list[float | None] | None = None, dropout: list[float] | None = None):
        K = len(models)
        self.template, self.kernels = models[0], models[0].rnn.kernels
        self.names = [n for n, _ in self.template.named_parameters()]
        with torch.no_grad():
            self.params = {n: torch.stack([dict(m.named_parameters())[n] for m in models]).requires_grad_()
                           for n in self.names}  # each (K, *shape)
        self.kind, self.momentum = OPTIMIZERS[optimizer], momentum
        per = {0: 1 if momentum else 0, 1: 2, 2: 2 if momentum else 1}[self.kind]
        self.state = [torch.zeros_like(self.params[n]) for n in self.names for _ in range(per)]
        self.lr = torch.tensor(lr, dtype=torch.float64)
        self.weight_decay = torch.tensor(weight_decay or [0.0] * K, dtype=torch.float64)
        self.max_norm = torch.tensor([c or 0.0 for c in (grad_clip or [None] * K)], dtype=torch.float64)
        self.dropout = list(dropout or [0.0] * K)
        self.rngs = list(rngs)
        self.steps = 0

    def __len__(self) -> int:
        return len(self.rngs)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every run's output in training mode: x (K, B, T, I) features or (K, B, T) tokens ->
        (K, B, O) for a last-step head, (K, B, T, O) for a per-step one. Mirrors
        SequenceModel.forward and RecurrentLayers.forward (tests hold them equal)."""
        P = self.params
        feat = self.features(x)  # (K, B, F) or, per step, (K, T, B, F)
        if self.template.head_kind != "last":
            feat = feat.transpose(1, 2)  # (K, B, T, F)
        K = len(feat)
        out = Linear.apply(feat.reshape(K, -1, feat.shape[-1]), P["head.weight"], P["head.bias"], self.kernels)
        return out.reshape(*feat.shape[:-1], -1)

    def head_loss(self, x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
        """Every run's loss (K,) of a kind the output layer computes with it (HEAD_LOSSES;
        an objective names its kind in `head_loss`): objective.loss(forward(x)[k], y[k]) in
        one autograd node, forward and backward in the kernels. y: (K, B, ...) targets."""
        return HEAD_LOSSES[kind](self, self.features(x), y)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What every run's output layer reads, dropout applied: (K, B, D*H) for a last-step
        head; per step, (K, T, B, D*H), time-major as the layers compute it."""
        m, P = self.template, self.params
        rnn = m.rnn
        layer_in = self._encode(x)  # (K, T, B, I)
        K, B = layer_in.shape[0], layer_in.shape[2]
        finals = []
        for layer in range(rnn.num_layers):
            outs = []
            for d in range(rnn.dirs):
                w = SimpleNamespace(**{p.name: P["rnn." + p.name + suffix(layer, d)] for p in rnn.cell.params})
                state = tuple(layer_in.new_zeros(K, B, rnn.hidden_size) for _ in range(rnn.states))
                out, final = rnn.run(layer_in, state, w, None, bool(d))  # (K, T, B, H), states (K, B, H)
                outs.append(out)
                finals.append(final[0])
            layer_in = outs[0] if rnn.dirs == 1 else torch.cat(outs, dim=-1)  # (K, T, B, D*H)
            if layer < rnn.num_layers - 1:  # between layers, as RecurrentLayers (each run's own p)
                layer_in = self._dropout(layer_in, self.dropout)
        if m.head_kind == "last":
            feat = finals[-1] if rnn.dirs == 1 else torch.cat(finals[-2:], dim=-1)  # (K, B, D*H): forward, backward
            return self._dropout(feat, self.dropout)
        # each run's dropout mask is drawn over (B, T, D*H), as its own model draws it
        return self._dropout(layer_in.transpose(1, 2), self.dropout).transpose(1, 2)  # (K, T, B, D*H)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrent layers' input, time-major: (K, T, B, I)."""
        m = self.template
        if not m.tokens:
            return x.transpose(1, 2)
        if m.embed is not None:  # each run's own lookup (its backward sums repeated tokens in its own order)
            w = self.params["embed.weight"]
            return torch.stack([F.embedding(x[k], w[k]) for k in range(len(x))]).transpose(1, 2)
        # one-hot, written time-major at once: F.one_hot's values (which would check the range,
        # cast, and leave the layer a transposed (K, B, T, V) to copy into this layout);
        # scatter_ stops a token out of range as it did. (Rows of an identity matrix gathered
        # were 5 us faster at V = 6 but would hold V x V floats: a word model's vocabulary.)
        tokens = x.transpose(1, 2).unsqueeze(-1)  # (K, T, B, 1)
        return torch.zeros(*tokens.shape[:-1], m.vocab_size, dtype=self.params["head.weight"].dtype).scatter_(
            -1, tokens, 1.0)

    def _dropout(self, x: torch.Tensor, ps: list[float]) -> torch.Tensor:
        """F.dropout with each run's own p and generator: x * Bernoulli(1 - p) / (1 - p), the
        mask drawn as torch's CPU dropout draws it; a run with p = 0 is left as it is."""
        if not any(ps):
            return x
        noise = torch.ones_like(x)
        for k, p in enumerate(ps):
            if p:
                noise[k].bernoulli_(1 - p, generator=self.rngs[k]).div_(1 - p)
        return x * noise

    # ------------------------------------------------------------------ update
    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def step(self, runs: list[int]) -> list[float]:
        """Clip and step the optimiser of the runs at these slices (the others untouched);
        returns every run's gradient norm before clipping."""
        self.steps += 1
        P = [self.params[n] for n in self.names]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in P]
        with torch.no_grad():
            norms = self.kernels.optimizer_step(
                P, grads, self.state, self.kind, self.steps, self.lr, self.weight_decay, self.max_norm, runs,
                float(self.momentum), ADAM_BETAS[0], ADAM_BETAS[1], RMSPROP_ALPHA, EPS)
        return norms.tolist()

    # ------------------------------------------------------------------ runs
    def write(self, k: int, model: torch.nn.Module) -> None:
        """Copy run k's current weights into its model."""
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(self.params[n][k])

    def state_bytes(self) -> int:
        """One run's optimiser state in bytes."""
        return sum(s[0].numel() * s.element_size() for s in self.state)

    def keep(self, slices: list[int]) -> None:
        """Keep only the runs at these slices (in this order): the others have left."""
        idx = torch.tensor(slices, dtype=torch.long)
        with torch.no_grad():
            self.params = {n: p.index_select(0, idx).requires_grad_() for n, p in self.params.items()}
            self.state = [s.index_select(0, idx) for s in self.state]
        self.lr, self.weight_decay, self.max_norm = (t.index_select(0, idx) for t in
                                                     (self.lr, self.weight_decay, self.max_norm))
        self.dropout = [self.dropout[i] for i in slices]
        self.rngs = [self.rngs[i] for i in slices]


def _cross_entropy(stack: Stacked, feat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """objectives.Classification.loss: the mean cross-entropy of each run's logits against y
    (K, B) or, per step, (K, B, T), rows whose target is IGNORE left out; its rows taken
    time-major as the recurrent layers leave the features (no transpose, copy, pad or per-run
    slice of the logits; the backward hands the layers their gradient in their own layout)."""
    P, K = stack.params, len(feat)
    if stack.template.head_kind != "last":
        y = y.transpose(1, 2)  # (K, T, B): the features' row order
    return HeadCrossEntropy.apply(feat.reshape(K, -1, feat.shape[-1]), P["head.weight"], P["head.bias"],
                                  y.reshape(K, -1), IGNORE, stack.kernels)


def _squared_error(stack: Stacked, feat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """objectives.Regression.loss: each run's mean of (out - y)^2, its rows batch-major as
    Stacked.forward takes them (so the same bits)."""
    P, K = stack.params, len(feat)
    if stack.template.head_kind != "last":
        feat = feat.transpose(1, 2)  # (K, B, T, F)
    return HeadSquaredError.apply(feat.reshape(K, -1, feat.shape[-1]), P["head.weight"], P["head.bias"],
                                  y.reshape(K, -1), stack.kernels)


HEAD_LOSSES = {"cross_entropy": _cross_entropy, "squared_error": _squared_error}  # objectives' `head_loss`
