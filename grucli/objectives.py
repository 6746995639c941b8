"""Losses and metrics, one class per kind of target. A task picks an objective; the
training loop only calls `loss` and `metrics`, so it never asks what the task is.

Shapes: `out` is the model output, (B, O) for a last-step head or (B, T, O) for a
per-step head; `y` is the target of the same leading shape.

An objective whose loss is the mean of elementwise terms (the squared errors) says so with
`loss_terms`: the loss is `loss_terms(out, y).mean()`, and written with `...` indexing it
also takes the stacked outputs of a pack of runs, (K, B, ...), so grucli.train.stacked computes
every run's loss at once (each run's mean in one fixed order, grucli.train.stacked.mean_per_run).
An objective whose loss the stacked step computes together with the output layer, in the
kernels, names its kind in `head_loss` (grucli.train.stacked.HEAD_LOSSES: "cross_entropy",
"squared_error"); tests hold each equal to its `loss`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE = -100  # target value of a step that is not scored (padding, non-recall steps)
FEW_CLASSES = 16  # below this many classes the training loss pads its logits (Classification.loss)


class Regression:
    """Mean squared error. Metrics: mse, rmse, mae (all on the scale of `y`)."""

    kind = "regression"
    head_loss = "squared_error"  # the stacked step's kind of this loss (grucli.train.stacked.HEAD_LOSSES)

    def loss_terms(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (out.reshape(y.shape) - y) ** 2

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_terms(out, y).mean()

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        err = out.reshape(y.shape).double() - y.double()
        mse = float((err**2).mean())
        return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(err.abs().mean())}


class Classification:
    """Cross-entropy over classes. For a per-step head, steps whose target is IGNORE do
    not count in the loss; `score_mask` (B, T) picks the steps whose accuracy is reported
    (e.g. the recall steps of the copy task). Metrics: ce (nats), accuracy, macro_f1."""

    kind = "classification"
    head_loss = "cross_entropy"  # the stacked step's kind of this loss (grucli.train.stacked.HEAD_LOSSES)

    def __init__(self, n_classes: int):
        self.n_classes = n_classes

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self._logits(out), y.reshape(-1), ignore_index=IGNORE)

    @staticmethod
    def _logits(out: torch.Tensor) -> torch.Tensor:
        logits = out.reshape(-1, out.shape[-1])
        if logits.shape[-1] < FEW_CLASSES and logits.device.type == "cpu":
            # torch's CPU log_softmax takes a scalar path below its vector width: measured,
            # cross-entropy forward and backward over 1500 x 6 logits took 148 us, over
            # 1500 x 16 58 us. Classes of -inf add exp(-inf) = 0: the same loss, 5x faster.
            logits = F.pad(logits, (0, FEW_CLASSES - logits.shape[-1]), value=float("-inf"))
        return logits

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        logits = out.reshape(-1, out.shape[-1]).double()
        target = y.reshape(-1)
        ce = float(F.cross_entropy(logits, target, ignore_index=IGNORE))
        keep = target != IGNORE if score_mask is None else score_mask.reshape(-1)
        pred, true = logits[keep].argmax(-1), target[keep]
        acc = float((pred == true).double().mean()) if len(true) else float("nan")
        return {"ce": ce, "accuracy": acc, "macro_f1": macro_f1(pred, true, self.n_classes)}


def macro_f1(pred: torch.Tensor, true: torch.Tensor, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in `true` or `pred`."""
    f1s = []
    for c in range(n_classes):
        tp = int(((pred == c) & (true == c)).sum())
        fp = int(((pred == c) & (true != c)).sum())
        fn = int(((pred != c) & (true == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else float("nan")


class NextToken(Classification):
    """Per-step next-token prediction (character language models). Adds bits per
    character: bpc = ce / ln 2 (ce in nats per scored step)."""

    kind = "next_token"

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        m = super().metrics(out, y, score_mask)
        return {"bpc": m["ce"] / math.log(2), **m}


class MultiLabel:
    """Several binary targets per step (the keys sounding in a piano roll): the Bernoulli
    negative log-likelihood summed over the targets, averaged over the scored steps (a step
    whose targets are -1 is padding). Metrics: nll (nats per step, as Chung et al. 2014
    report it) and frame-level accuracy TP / (TP + FP + FN) at probability 0.5 (Bay et al.
    2009)."""

    kind = "multilabel"

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        keep = y[..., 0] >= 0  # (B, T)
        steps = keep.sum().clamp(min=1)
        return F.binary_cross_entropy_with_logits(out[keep], y[keep], reduction="sum") / steps

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        keep = y[..., 0] >= 0
        logits, target = out[keep].double(), y[keep].double()
        nll = float(F.binary_cross_entropy_with_logits(logits, target, reduction="sum")) / max(1, len(target))
        pred, on = logits > 0, target > 0.5
        tp, fp, fn = int((pred & on).sum()), int((pred & ~on).sum()), int((~pred & on).sum())
        return {"nll": nll, "accuracy": tp / (tp + fp + fn) if tp + fp + fn else float("nan")}


class Forecast:
    """Forecasting `H` steps of a series from a scaled window.

    y: (B, H + 1) -- the H future values on the ORIGINAL scale, then the window's anchor a
    (its last observed value, or the train mean with global scaling). The model predicts
    z = (future - a) / scale, trained with MSE on z. Metrics are on the original scale:
    rmse, mae and mase = mae / `mase_scale` (the mean absolute one-step change on the
    training part, Hyndman & Koehler 2006)."""

    kind = "forecast"

    def __init__(self, scale: float, mase_scale: float):
        self.scale, self.mase_scale = scale, mase_scale

    def loss_terms(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        future, anchor = y[..., :-1], y[..., -1:]  # (B, H), (B, 1)
        return (out.reshape(future.shape) - (future - anchor) / self.scale) ** 2

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_terms(out, y).mean()

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        future, anchor = y[:, :-1].double(), y[:, -1:].double()
        pred = out.reshape(future.shape).double() * self.scale + anchor  # (B, H), original scale
        return forecast_errors(pred, future, self.mase_scale)


def forecast_errors(pred: torch.Tensor, true: torch.Tensor, mase_scale: float) -> dict[str, float]:
    """rmse, mae, mase of point forecasts on the original scale (shared with the baselines)."""
    err = pred.double() - true.double()
    mae = float(err.abs().mean())
    return {"rmse": math.sqrt(float((err**2).mean())), "mae": mae, "mase": mae / mase_scale}


class AnomalyForecast:
    """Anomaly detection by forecasting (a model trained on normal data predicts the next
    value; a large error flags an anomaly).

    y: (B, C + 2) -- the next value of each of C channels (scaled), its 0/1 anomaly label,
    and 1 where the row is scored or 0 where it is calibration (normal validation windows).
    Loss: MSE on the values (a step's error: the mean over its channels; one channel: its
    squared error). Metrics: mse (on scored rows, else all); where a split holds both calibration
    and scored rows (the test split), the threshold is the `quantile` of the calibration
    errors and the scored rows get point precision, recall and F1 at it, and two
    threshold-free or range scores from aeon: pr_auc and range_f1 (Tatbul et al. 2018)."""

    kind = "anomaly"

    def __init__(self, quantile: float):
        self.quantile = quantile

    def loss_terms(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        C = y.shape[-1] - 2
        return ((out.reshape(*y.shape[:-1], C) - y[..., :C]) ** 2).mean(-1)  # the next values' squared error

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_terms(out, y).mean()

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        C = y.shape[-1] - 2
        err = ((out.reshape(len(y), C).double() - y[:, :C].double()) ** 2).mean(1)
        scored = y[:, -1] > 0.5
        mse = float(err[scored].mean()) if scored.any() else float(err.mean())
        if not scored.any() or scored.all():
            return {"mse": mse}
        return {"mse": mse, **anomaly_scores(err[~scored].numpy(), err[scored].numpy(),
                                             y[scored, -2].long().numpy(), self.quantile)}


def anomaly_scores(calibration, score, labels, quantile: float) -> dict[str, float]:
    """Detection quality of anomaly scores `score` (one per step) against 0/1 `labels`,
    thresholded at the `quantile` of the scores of normal calibration data (shared by the
    models and the naive baseline). PR-AUC and the range F1 are aeon's
    (aeon.benchmarking.metrics.anomaly_detection); point precision/recall/F1 at the threshold."""
    import numpy as np

    from grucli.tasks.sources import anomaly_metrics

    metrics = anomaly_metrics()
    threshold = float(np.quantile(calibration, quantile))
    pred = (score > threshold).astype(int)
    tp, fp, fn = int((pred & labels).sum()), int((pred & (1 - labels)).sum()), int(((1 - pred) & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    out = {"precision": precision, "recall": recall,
           "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
           "threshold": threshold, "flagged": float(pred.mean())}
    if labels.any():
        out["pr_auc"] = float(metrics.pr_auc_score(labels, score))
        out["range_f1"] = float(metrics.range_f_score(labels, pred)) if pred.any() else 0.0
    else:
        out["pr_auc"] = out["range_f1"] = float("nan")
    return out


class NextWord(Classification):
    """Per-step next-word prediction. Metrics: ce (nats per scored word), perplexity =
    exp(ce), and top-1 / top-5 accuracy of the next word (no macro-F1 over a vocabulary
    of thousands)."""

    kind = "next_word"

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        logits = out.reshape(-1, out.shape[-1]).double()
        target = y.reshape(-1)
        keep = target != IGNORE
        logits, target = logits[keep], target[keep]
        ce = float(F.cross_entropy(logits, target))
        top5 = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
        return {"ce": ce, "perplexity": math.exp(min(ce, 700.0)),
                "accuracy": float((top5[:, 0] == target).double().mean()),
                "top5_accuracy": float((top5 == target[:, None]).any(-1).double().mean())}


class Transduction:
    """Sequence to sequence (an encoder-decoder's output): the loss is cross-entropy of the
    teacher-forced logits (the reference's previous token in, every step scored until the
    reference's <eos>); metrics score the model's own decoding: `error` = total edit
    distance to the references / their total length (phoneme error rate for g2p), `exact`
    = share of outputs equal to their reference, and ce."""

    kind = "transduction"

    def __init__(self, error: str, exact: str, eos: int):
        self.error, self.exact, self.eos = error, exact, eos

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = out[0] if isinstance(out, tuple) else out
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)

    def metrics(self, out, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        logits, decoded = out if isinstance(out, tuple) else (out, out.argmax(-1))
        ce = float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), y.reshape(-1), ignore_index=IGNORE))
        refs = [_until(row, self.eos) for row in y.tolist()]
        hyps = [_until(row, self.eos) for row in decoded.tolist()]
        return {self.error: sequence_error(hyps, refs), self.exact: sum(h == r for h, r in zip(hyps, refs)) / len(refs),
                "ce": ce}


def _until(row: list[int], eos: int) -> list[int]:
    """A token row up to (not including) its first <eos> or padding (IGNORE / 0)."""
    out = []
    for t in row:
        if t == eos or t == IGNORE or t == 0:
            break
        out.append(t)
    return out


def edit_distance(a, b) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute: 1 each)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def sequence_error(hyps, refs) -> float:
    """Corpus error rate: summed edit distances over summed reference lengths."""
    return sum(edit_distance(h, r) for h, r in zip(hyps, refs)) / max(1, sum(len(r) for r in refs))
