"""Polyphonic music modelling (Chung et al. 2014, after Boulanger-Lewandowski et al. 2012):
predict which of the 88 piano keys sound at the next time step of a piano roll.

Data: the Bach chorales music21 ships (`music21/corpus/bach/*.mxl`, read from the installed
package with music21's own MusicXML parser; 408 files in music21 10.5.1). Each file becomes a
piano roll: one row per `step` quarter notes (default 1, a quarter note), a 1 for every key
(MIDI 21..108) with a note sounding in that step, all parts together. The pieces are split
by piece with `data_seed` (70 / 15 / 15 %), which is NOT Boulanger-Lewandowski's JSB split
(229 / 76 / 77 pieces, a different encoding of the chorales): compare the cells' ordering
with Chung et al.'s, not the numbers.

Input at step t: the roll at t; target: the roll at t + 1 (padding steps: -1, not scored).
Metric: negative log-likelihood per time step (nats, the Bernoulli NLL summed over the 88
keys, as in Chung et al.); also frame-level accuracy (Bay et al. 2009). Baseline: every key
independently on with its training-set frequency.

Parsing all 408 files takes about a minute; the rolls are cached in grucli's data cache as
plain arrays (`.npz`, read with allow_pickle=False), keyed by music21's version, `step` and
this code.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from grucli.errors import DataError
from grucli.objectives import MultiLabel
from grucli.tasks.base import Split, Task, TaskConfig, TaskData
from grucli.tasks.cache import cache_dir, code_hash, disk_cached
from grucli.tasks.sources import EXTRA

LOW, KEYS = 21, 88  # MIDI number of the piano's lowest key (A0), number of keys


class PolyphonicConfig(TaskConfig):
    name: Literal["polyphonic"] = "polyphonic"
    step: float = Field(1.0, gt=0, le=4)  # quarter notes per time step (1: a quarter note, 0.5: an eighth)
    max_pieces: int | None = Field(None, ge=3)  # use only the first this-many chorales (after sorting by file name)
    max_len: int | None = Field(None, ge=8)  # cut each piece to its first this-many steps
    val_frac: float = Field(0.15, gt=0, lt=0.5)
    test_frac: float = Field(0.15, gt=0, lt=0.5)


def corpus_files() -> list[Path]:
    """The chorale files inside the installed music21, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the Bach chorales ship inside the 'music21' package, which is not installed: {EXTRA}")
    files = sorted(p for root in spec.submodule_search_locations for p in (Path(root) / "corpus" / "bach").glob("*.mxl"))
    if not files:
        raise DataError(f"music21 is installed but has no corpus/bach/*.mxl (a version without its corpus?): {EXTRA}")
    return files


def roll_of(score, step: float) -> np.ndarray:
    """A music21 score as a (T, 88) 0/1 piano roll: key k is on in row t when a note of
    MIDI pitch 21 + k sounds during [t * step, (t + 1) * step) quarter notes."""
    flat = score.flatten()
    T = max(1, math.ceil(float(flat.highestTime) / step - 1e-9))
    roll = np.zeros((T, KEYS), dtype=np.uint8)
    for n in flat.notes:
        start = float(n.offset)
        end = start + float(n.quarterLength)
        a, b = int(math.floor(start / step + 1e-9)), int(math.ceil(end / step - 1e-9))
        for p in n.pitches:
            k = p.midi - LOW
            if 0 <= k < KEYS and b > a:
                roll[a:min(b, T), k] = 1
    return roll


def _parse_all(files: list[Path], step: float) -> list[np.ndarray]:
    import music21

    rolls = []
    for f in files:
        try:
            rolls.append(roll_of(music21.converter.parse(str(f)), step))
        except Exception as e:  # a corpus file music21 cannot read is named, not skipped silently
            raise DataError(f"{f}: music21 could not parse it ({type(e).__name__}: {str(e)[:80]})") from None
    return rolls


def rolls(step: float, files: list[Path] | None = None) -> tuple[list[str], list[np.ndarray]]:
    """(file names, piano rolls) of every chorale, parsed once per machine and cached."""
    files = files if files is not None else corpus_files()
    version = importlib.metadata.version("music21")
    names = [f.name for f in files]
    key = hashlib.sha256(f"{version}|{step}|{code_hash()}|{'|'.join(names)}".encode()).hexdigest()[:16]
    path = cache_dir() / f"bach-rolls-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                flat, offsets, cached = z["rolls"], z["offsets"], [str(n) for n in z["names"]]
            if cached == names:
                return names, [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # truncated or foreign: parsed again
    parsed = _parse_all(files, step)
    offsets = np.cumsum([0] + [len(r) for r in parsed])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, rolls=np.concatenate(parsed), offsets=offsets, names=np.array(names))
        tmp.replace(path)
    except OSError:  # a read-only folder only costs speed
        pass
    return names, parsed


def to_split(pieces: list[np.ndarray]) -> Split:
    """Next-step pairs, right-padded: x (N, T, 88) float, y (N, T, 88) float with -1 on padding."""
    lengths = torch.tensor([len(p) - 1 for p in pieces])
    T = int(lengths.max())
    x = torch.zeros(len(pieces), T, KEYS)
    y = torch.full((len(pieces), T, KEYS), -1.0)
    for i, p in enumerate(pieces):
        t = torch.from_numpy(p.astype(np.float32))
        x[i, :len(p) - 1], y[i, :len(p) - 1] = t[:-1], t[1:]
    return Split(x, y, lengths if len(set(lengths.tolist())) > 1 else None)


@disk_cached
def build_polyphonic(cfg: PolyphonicConfig) -> TaskData:
    files = corpus_files()[:cfg.max_pieces] if cfg.max_pieces else corpus_files()
    names, pieces = rolls(cfg.step, files)
    if cfg.max_len:
        pieces = [p[:cfg.max_len + 1] for p in pieces]
    keep = [i for i, p in enumerate(pieces) if len(p) >= 2]
    order = np.random.default_rng(cfg.data_seed).permutation(keep)
    n = len(order)
    n_test, n_val = max(1, round(n * cfg.test_frac)), max(1, round(n * cfg.val_frac))
    if n - n_test - n_val < 1:
        raise DataError(f"polyphonic: {n} pieces are too few for a train, validation and test part")
    parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    splits = {k: to_split([pieces[i] for i in sorted(v)]) for k, v in parts.items()}
    train_frames = np.concatenate([pieces[i][1:] for i in parts["train"]]).astype(np.float64)
    p_on = (train_frames.sum(0) + 1.0) / (len(train_frames) + 2.0)  # add-one smoothed, per key
    test_frames = np.concatenate([pieces[i][1:] for i in parts["test"]]).astype(np.float64)
    nll = float(-(test_frames * np.log(p_on) + (1 - test_frames) * np.log1p(-p_on)).sum(1).mean())
    return TaskData(
        splits["train"], splits["val"], splits["test"], input_size=KEYS, output_size=KEYS, head="each",
        objective=MultiLabel(), metric="nll", goal="min",
        baseline={"nll": nll, "accuracy": 0.0},
        info={"step_quarters": cfg.step, "pieces": {k: len(v) for k, v in parts.items()},
              "steps": {k: int(sum(len(pieces[i]) - 1 for i in v)) for k, v in parts.items()},
              "mean_keys_on": float(train_frames.sum(1).mean()), "source": "music21 corpus/bach/*.mxl",
              "baseline_rule": "every key on independently with its training frequency"},
    )


POLYPHONIC = Task("polyphonic", PolyphonicConfig, build_polyphonic, "real",
                  "polyphonic music: the 88 keys sounding at the next step of a Bach chorale (NLL per step)",
                  source="music21's corpus/bach/*.mxl (408 chorales), read with music21; needs the real extra",
                  sizes="408 chorales, ~60 quarter-note steps each; split by piece 70/15/15 with data_seed",
                  baseline="each key on independently with its training frequency")
