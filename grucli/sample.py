"""Generate text from a trained per-step token model (a `char_lm` or `word_lm` run): load
its model.pt, feed the prime, then sample one token at a time (a character or a word) from
the softmax of the last step's logits (temperature-scaled; 0 = always the most likely)."""

from __future__ import annotations

from pathlib import Path

import torch

from grucli.model import load
from grucli.errors import GrucliError
from grucli.tasks.vocab import EOS, PAD, UNK, tokenize
from grucli.tasks.seq2seq import join_units, split_units


@torch.no_grad()
def sample_text(run_dir: Path, prime: str, length: int, temperature: float = 0.8, seed: int = 0,
                context: int | None = None, note=lambda text: None) -> str:
    """The prime followed by `length` generated tokens. `context`: tokens the model sees
    per step (default: the run's task.seq_len, the length it was trained on)."""
    model, cfg, meta = load(run_dir)
    vocab = meta.get("vocab")
    if meta.get("head") != "each" or not vocab:
        raise GrucliError(f"{run_dir}: task '{cfg.task.name}' is not a per-step token model with a vocabulary"
                          + ("; it is an encoder-decoder run: give --input" if meta.get("head") == "seq2seq"
                             else " (grucli sample continues char_lm and word_lm runs, --input decodes seq2seq runs)"))
    if not prime:
        raise GrucliError("--prime: give at least one character to start from")
    index = {t: i for i, t in enumerate(vocab)}
    unit = meta.get("unit") or "char"
    words = unit == "word"
    tokens = tokenize(prime, unit)
    ids = [index.get(t, UNK) for t in tokens]
    unknown = sorted({t for t in tokens if t not in index})
    if unknown:
        note(f"note: {len(unknown)} prime {'word' if words else 'character'}(s) are not in the run's vocabulary and "
             f"are read as the unknown token: {', '.join(map(repr, unknown))}")
    window = context or getattr(cfg.task, "seq_len", None) or 100
    banned = torch.tensor([PAD, UNK])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(length):
        logits = model(torch.tensor([ids[-window:]]))[0, -1].double()  # (V,)
        logits[banned] = float("-inf")
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
        ids.append(nxt)
    new = [vocab[i] for i in ids[len(tokens):]]
    return prime + (" " + " ".join(new) if words else "".join(new))


@torch.no_grad()
def translate(run_dir: Path, texts: list[str], beam: int = 1, note=lambda text: None) -> list[str]:
    """What an encoder-decoder run writes for each of `texts`: greedy (beam 1) or beam search."""
    model, cfg, meta = load(run_dir)
    src_vocab, tgt_vocab = meta.get("src_vocab"), meta.get("tgt_vocab")
    if meta.get("head") != "seq2seq" or not src_vocab:
        raise GrucliError(f"{run_dir}: task '{cfg.task.name}' is not an encoder-decoder run; --input decodes g2p, "
                          "reverse and csv_translate runs (language models continue --prime)")
    index = {t: i for i, t in enumerate(src_vocab)}
    outputs = []
    for text in texts:
        tokens = split_units(text, meta.get("src_unit") or "char")
        tokens = [t if t in index or t.lower() not in index else t.lower() for t in tokens]
        if not tokens:
            raise GrucliError("--input: give something to decode")
        unknown = sorted({t for t in tokens if t not in index})
        if unknown:
            note(f"note: {len(unknown)} token(s) of {text!r} are not in the run's vocabulary and are read as the "
                 f"unknown token: {', '.join(map(repr, unknown))}")
        if len(tokens) > model.src_len:
            note(f"note: {text!r} is longer than the longest training input ({model.src_len}); its first "
                 f"{model.src_len} tokens are read")
        ids = [index.get(t, UNK) for t in tokens][:model.src_len]
        src = torch.full((1, model.src_len), PAD, dtype=torch.long)
        src[0, :len(ids)] = torch.tensor(ids)
        out = model.beam_search(src, beam) if beam > 1 else model.greedy(*model._prepare(src))[0]
        ids = out.tolist()
        ids = ids[:ids.index(EOS)] if EOS in ids else [i for i in ids if i != PAD]
        outputs.append(join_units([tgt_vocab[i] for i in ids], meta.get("tgt_unit") or "char"))
    return outputs
