"""The polyphonic task: piano rolls from hand-made music21 scores, the multi-label
objective by hand, padding never scored, the parsed-roll cache (plain arrays, rebuilt when
foreign), and the split by piece."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from optional_extras import needs

from grucli.objectives import MultiLabel
from grucli.tasks.music import KEYS, LOW, PolyphonicConfig, build_polyphonic, roll_of, rolls, to_split

pytestmark = needs("music21")


def _score():
    from music21 import chord, note, stream

    s = stream.Stream()
    s.insert(0.0, note.Note(60, quarterLength=1.0))  # C4 for one quarter
    s.insert(1.0, chord.Chord([64, 67], quarterLength=2.0))  # E4 + G4 for two quarters
    s.insert(1.5, note.Note(12, quarterLength=0.5))  # below the piano: not a key
    return s


def test_a_score_becomes_a_piano_roll_of_quarter_steps():
    roll = roll_of(_score(), 1.0)
    assert roll.shape == (3, KEYS)
    assert np.flatnonzero(roll[0]).tolist() == [60 - LOW]
    assert np.flatnonzero(roll[1]).tolist() == [64 - LOW, 67 - LOW] == np.flatnonzero(roll[2]).tolist()
    assert roll.sum() == 5  # the note below the piano's range is dropped


def test_eighth_steps_double_the_rows():
    roll = roll_of(_score(), 0.5)
    assert roll.shape == (6, KEYS)
    assert roll[:, 60 - LOW].tolist() == [1, 1, 0, 0, 0, 0]
    assert roll[:, 64 - LOW].tolist() == [0, 0, 1, 1, 1, 1]


def test_next_step_pairs_pad_the_target_with_minus_one():
    a, b = np.eye(KEYS, dtype=np.uint8)[:4], np.eye(KEYS, dtype=np.uint8)[:3]
    s = to_split([a, b])
    assert s.x.shape == (2, 3, KEYS) and s.lengths.tolist() == [3, 2]
    assert torch.equal(s.y[0, 0], torch.from_numpy(a[1]).float())  # the target is the next row
    assert (s.y[1, 2] == -1).all() and (s.x[1, 2] == 0).all()


def test_multilabel_nll_is_summed_over_keys_and_skips_padding():
    obj = MultiLabel()
    y = torch.zeros(1, 3, KEYS)
    y[0, :2, 5] = 1.0
    y[0, 2] = -1.0  # padding
    out = torch.zeros(1, 3, KEYS)  # p = 0.5 everywhere
    assert obj.loss(out, y).item() == pytest.approx(KEYS * math.log(2))
    m = obj.metrics(out, y)
    assert m["nll"] == pytest.approx(KEYS * math.log(2))
    out[0, :2, 5] = 10.0  # confident and right on the sounding key, unsure elsewhere
    out[0, :2, :5] = -10.0
    out[0, 0, 7] = 1.0  # one false positive
    m = obj.metrics(out, y)
    assert m["accuracy"] == pytest.approx(2 / 3)  # TP 2, FP 1, FN 0
    assert m["nll"] < KEYS * math.log(2)


def test_the_parsed_rolls_are_cached_as_plain_arrays_and_a_foreign_file_is_reparsed(tmp_path, monkeypatch):
    from grucli.tasks import music

    monkeypatch.setenv("GRUCLI_CACHE", str(tmp_path))
    files = music.corpus_files()[:3]
    names, first = rolls(1.0, files)
    (cached,) = tmp_path.glob("bach-rolls-*.npz")
    with np.load(cached, allow_pickle=False) as z:  # no pickles: loading cannot run code
        assert z["rolls"].dtype == np.uint8
    calls = []
    monkeypatch.setattr(music, "_parse_all", lambda fs, step: calls.append(1) or [np.zeros((2, KEYS), np.uint8)] * 3)
    assert all(np.array_equal(a, b) for a, b in zip(rolls(1.0, files)[1], first)) and not calls  # read back
    cached.write_bytes(b"not an npz")
    rolls(1.0, files)
    assert calls == [1]  # a file that does not parse is never trusted: parsed again


def test_split_by_piece_with_the_data_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("GRUCLI_CACHE", str(tmp_path))
    a = build_polyphonic(PolyphonicConfig(max_pieces=8, max_len=10, data_seed=0))
    b = build_polyphonic(PolyphonicConfig(max_pieces=8, max_len=10, data_seed=1))
    assert a.info["pieces"] == {"test": 1, "val": 1, "train": 6}
    assert not torch.equal(a.test.x, b.test.x)  # another seed holds out another piece
    p = a.train.y[a.train.y[..., 0] >= 0]
    assert set(p.unique().tolist()) <= {0.0, 1.0}
    assert 0 < a.baseline["nll"] < KEYS * math.log(2)  # the frequency baseline beats a coin per key
