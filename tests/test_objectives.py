"""grucli.objectives: the training loss of a few classes (padded to torch's fast path) is
torch's cross-entropy, value and gradient, ignored steps included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from grucli.objectives import FEW_CLASSES, IGNORE, Classification


@pytest.mark.parametrize("classes", [2, 6, FEW_CLASSES - 1, FEW_CLASSES, 40])
def test_classification_loss_is_torchs_cross_entropy(classes):
    g = torch.Generator().manual_seed(classes)
    out = torch.randn(7, 9, classes, generator=g, dtype=torch.float64, requires_grad=True)  # (B, T, C)
    y = torch.randint(0, classes, (7, 9), generator=g)
    y[:, ::4] = IGNORE
    ours = Classification(classes).loss(out, y)
    (grad,) = torch.autograd.grad(ours, out)
    theirs = F.cross_entropy(out.reshape(-1, classes), y.reshape(-1), ignore_index=IGNORE)
    (their_grad,) = torch.autograd.grad(theirs, out)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-14)
    assert torch.allclose(grad, their_grad, rtol=0, atol=1e-15)
