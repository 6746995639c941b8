"""How the runs of a pack take a training step together (train/loop.py asks one of these
for every step): RunByRun, each run's own model; or StackedSteps, one stacked computation on the
fused kernels (grucli.train.stacked). Either way each run's numbers are the ones it gets alone.

A stepper sees the pack's runs (train._Member: `model`, `cfg`, `index`, `rng`, `take`,
`forward`, `record`, `loss`, `params`) and the pack (`data`, `guard`)."""

from __future__ import annotations

import torch

from grucli.train import memory, stacked
from grucli.train.optim import clip_grad_norms, make_optimizer
from grucli.tasks import Split


def choose(runs: list, data, device: torch.device):
    """The stepper for these runs: stacked where grucli.train.stacked can train them, else run by
    run (its `why` says why not stacked; it goes into each run's summary)."""
    why = stacked.unsupported([r.model for r in runs], data, device)
    if runs[0].cfg.train.weight_noise:  # a pack shares it (grucli.train.packing.key)
        why = "weight noise trains run by run"
    return RunByRun(runs, why) if why else StackedSteps(runs)


class RunByRun:
    """How a pack steps when its runs cannot train stacked (grucli.train.stacked.unsupported):
    each run's forward on its own model, with its random state swapped in; then one backward
    over every run's loss (disjoint graphs: each gradient is what its own backward gives),
    each run's clip, and one optimiser step over a param group per run."""

    kind = "per-run"

    def __init__(self, runs: list, why: str | None = None):
        self.why = why  # why these runs do not train stacked
        for r in runs:
            r.params = list(r.model.parameters())
        groups = [{"params": r.params, "lr": r.cfg.train.lr, "weight_decay": r.cfg.train.weight_decay} for r in runs]
        self.opt = make_optimizer(runs[0].cfg, groups)
        self.noise = {r.index: WeightNoise(r.cfg) for r in runs if r.cfg.train.weight_noise}

    def forward(self, pack, stepping: list, train: Split, i: int, batch_size: int) -> None:
        for r in stepping:
            if r.index in self.noise:
                self.noise[r.index].add(r.params)
            pack.guard([r], lambda: r.forward(train, i, batch_size))

    def update(self, stepping: list) -> None:
        """The graphs are traversed together, so an error raised here fails every stepping
        run. (A backward per run, right after its forward, keeps its activations in cache
        but measured no faster: benchmarks/pack_bound.py, README.)"""
        self.opt.zero_grad(set_to_none=True)  # every run's, so a run that left is not stepped
        torch.autograd.backward([r.loss for r in stepping])
        for noise in self.noise.values():  # the gradients were taken at the noisy weights; the clean ones step
            noise.remove()
        clip = [r for r in stepping if r.cfg.train.grad_clip]
        if clip:
            clip_grad_norms([r.params for r in clip], [r.cfg.train.grad_clip for r in clip])
        self.opt.step()

    def sync(self, run) -> None:  # its model is the one that trains
        pass

    def left(self, run) -> None:
        if run.index in self.noise:  # e.g. diverged between its noisy forward and the step
            self.noise.pop(run.index).remove()

    def state_bytes(self, run) -> int:
        return memory.optimizer_state_bytes(self.opt, run.params) if run.params is not None else 0


class StackedSteps:
    """How a pack steps on the fused kernels: one stacked computation for all its runs
    (grucli.train.stacked); each run's model receives its weights before it is evaluated."""

    kind, why = "stacked", None

    def __init__(self, runs: list):
        rngs = [torch.Generator().set_state(r.rng[0]) for r in runs]  # dropout: each run's own stream
        self.stack = stacked.of_runs([r.model for r in runs], [r.cfg for r in runs], rngs)
        self.order = [r.index for r in runs]  # run index at each slice
        self.gone: set[int] = set()
        self.losses = None  # every slice's loss (K,), when the objective computes them at once

    def slot(self, run) -> int:
        return self.order.index(run.index)

    def forward(self, pack, stepping: list, train: Split, i: int, batch_size: int) -> None:
        """Every run's loss: where the output layer computes the objective's kind of loss
        with it (objectives: `head_loss`), in one node on the kernels (Stacked.head_loss);
        where it is a mean of elementwise terms (objectives: `loss_terms`), all at once
        (stacked.mean_per_run); else the loss of each run's slice of the output."""
        if self.gone:  # runs left since the last step: keep the others' slices
            self.stack.keep([k for k, idx in enumerate(self.order) if idx not in self.gone])
            self.order = [idx for idx in self.order if idx not in self.gone]
            self.gone.clear()
        assert [r.index for r in stepping] == self.order
        objective = pack.data.objective

        def run():
            batches = [r.take(train, i, batch_size) for r in stepping]
            x = torch.stack([b.x for b in batches])
            losses = [None] * len(stepping)
            if getattr(objective, "head_loss", None) in stacked.HEAD_LOSSES:
                self.losses = self.stack.head_loss(x, torch.stack([b.y for b in batches]), objective.head_loss)  # (K,)
            elif hasattr(objective, "loss_terms"):
                out, y = self.stack.forward(x), torch.stack([b.y for b in batches])
                self.losses = stacked.mean_per_run(objective.loss_terms(out, y), self.stack.kernels)  # (K,)
            else:
                out, self.losses = self.stack.forward(x), None
                losses = [objective.loss(out[k], b.y) for k, b in enumerate(batches)]
            values = (self.losses.detach() if self.losses is not None
                      else torch.stack([loss.detach() for loss in losses])).tolist()
            for r, loss, value in zip(stepping, losses, values):
                r.record(loss, value)

        pack.guard(stepping, run)

    def update(self, stepping: list) -> None:
        self.stack.zero_grad()
        if self.losses is not None:  # one backward from every slice's loss; a run that left weighs 0
            live = {r.index for r in stepping}  # (a list, not index_put: 2 us, not 20-60)
            self.losses.backward(torch.tensor([float(idx in live) for idx in self.order], dtype=self.losses.dtype))
        else:
            torch.autograd.backward([r.loss for r in stepping])
        self.stack.step([self.slot(r) for r in stepping])

    def sync(self, run) -> None:
        if run.model is not None and run.index not in self.gone:
            self.stack.write(self.slot(run), run.model)

    def left(self, run) -> None:
        self.gone.add(run.index)

    def state_bytes(self, run) -> int:
        return self.stack.state_bytes()


class WeightNoise:
    """Weight noise (Graves 2011, as Chung et al. 2014 trained their music models): before
    each training forward every parameter gets Gaussian noise of sd `train.weight_noise`
    from the run's own generator; the gradient is taken there and the noise is removed
    before the optimiser steps, so the weights that are evaluated and kept are the clean
    ones."""

    def __init__(self, cfg):
        self.sigma = cfg.train.weight_noise
        self.gen = torch.Generator().manual_seed(cfg.seed + 7_919)  # apart from the batch order's stream
        self.added: list[tuple[torch.Tensor, torch.Tensor]] = []  # (parameter, its clean value)

    @torch.no_grad()
    def add(self, params: list[torch.Tensor]) -> None:
        self.remove()
        for p in params:
            self.added.append((p, p.detach().clone()))  # restored by copy: (w + e) - e need not be w in floats
            p.add_(torch.randn(p.shape, generator=self.gen, dtype=p.dtype).to(p.device) * self.sigma)

    @torch.no_grad()
    def remove(self) -> None:
        for p, clean in self.added:
            p.copy_(clean)
        self.added = []
