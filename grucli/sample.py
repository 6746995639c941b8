"""Generate text from a trained per-step token model (a `char_lm` run): load its
model.pt, feed the prime, then sample one token at a time from the softmax of the last
step's logits (temperature-scaled; 0 = always the most likely token)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from grucli import store
from grucli.config import parse_run
from grucli.errors import GrucliError
from grucli.tasks.vocab import PAD, UNK


def load_model(run_dir: Path):
    """(model in eval mode, run config, meta) from a run's model.pt."""
    path = Path(run_dir) / store.WEIGHTS
    if not path.is_file():
        raise GrucliError(f"{run_dir}: no {store.WEIGHTS} (not a finished run folder?)")
    from grucli.train import build_model

    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = parse_run(saved["config"], str(path))
    meta = saved["meta"]
    model = build_model(cfg, SimpleNamespace(**{k: meta[k] for k in ("input_size", "output_size", "head", "tokens")}))
    model.load_state_dict(saved["state_dict"])
    return model.eval(), cfg, meta


@torch.no_grad()
def sample_text(run_dir: Path, prime: str, length: int, temperature: float = 0.8, seed: int = 0,
                context: int | None = None, note=lambda text: None) -> str:
    """The prime followed by `length` generated tokens. `context`: tokens the model sees
    per step (default: the run's task.seq_len, the length it was trained on)."""
    model, cfg, meta = load_model(run_dir)
    vocab = meta.get("vocab")
    if meta.get("head") != "each" or not vocab:
        raise GrucliError(f"{run_dir}: task '{cfg.task.name}' is not a per-step token model with a vocabulary "
                          "(grucli sample works on char_lm runs)")
    if not prime:
        raise GrucliError("--prime: give at least one character to start from")
    index = {t: i for i, t in enumerate(vocab)}
    ids = [index.get(c, index[UNK]) for c in prime]
    unknown = sorted({c for c in prime if c not in index})
    if unknown:
        note(f"note: {len(unknown)} prime character(s) are not in the run's vocabulary and are read as the "
             f"unknown token: {', '.join(map(repr, unknown))}")
    window = context or getattr(cfg.task, "seq_len", None) or 100
    banned = torch.tensor([index[PAD], index[UNK]])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(length):
        logits = model(torch.tensor([ids[-window:]]))[0, -1].double()  # (V,)
        logits[banned] = float("-inf")
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
        ids.append(nxt)
    return prime + "".join(vocab[i] for i in ids[len(prime):])
