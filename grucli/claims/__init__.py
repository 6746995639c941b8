"""What the study notes claim, measured: the claims registry (torch-free).

A claim is a quote, the experiment file(s) under experiments/claims/ that measure it, and
an evaluator (grucli.claims.evidence, registered there under the claim's id) that reads
their results and returns findings with verdicts (grucli.claims.verdict) and one figure.
The papers' own numbers are data: experiments/claims/literature.yaml. `grucli claims` runs what is missing
(resumable, like compare and tune), evaluates every claim and writes the page "What the
notes say, what we measured" (grucli.claims.page).

Adding a claim = one experiment file + one evaluator function (@evaluates(id)) + one entry below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grucli.errors import ConfigError, unknown_name

ROOT = Path("experiments/claims")
LITERATURE = "literature.yaml"  # the papers' numbers, per claim id (not an experiment)


@dataclass(frozen=True)
class Claim:
    id: str
    quote: str  # as the notes say it (or the paper's result)
    source: str  # "the notes" or the paper
    experiments: tuple[str, ...]  # files under experiments/claims/
    cells: tuple[str, ...]  # the cells the claim is about: the one it speaks of first, then those it is compared with
    quick: tuple[str, ...] = ()  # --set overrides for --quick (seconds, for tests and a first look)
    how: str = ""  # what counts as support, in one sentence
    notes: dict = field(default_factory=dict)

    def paths(self, root: Path = ROOT) -> list[Path]:
        return [root / name for name in self.experiments]


_TINY_TRAIN = ("train.epochs=2", "train.max_steps=6", "seeds=2")
_TINY_TUNE = ("search.trials=3", "search.final_seeds=2", "train.epochs=2", "train.max_steps=6")

CLAIMS: list[Claim] = [
    Claim("params", "GRUs have fewer parameters than LSTMs", "the notes", ("params.yaml",), ("gru", "lstm"),
          quick=("grid.model.hidden_size=[8, 32]",),
          how="every GRU count below the LSTM's at the same H, and every count equal to its closed form"),
    Claim("speed", "GRUs often train faster due to fewer parameters", "the notes", ("speed.yaml",), ("gru", "lstm"),
          quick=("repeats=2", "warmup=1", "sizes=[{hidden: 13, seq_len: 5, batch: 4}, {hidden: 16, seq_len: 5, batch: 4}]"),
          how="GRU / LSTM training-step time below 0.95 (CPU time, interleaved in one bench), per implementation, "
              "at equal H and at equal parameters; above 1.05 is not supported"),
    Claim("comparable", "GRUs and LSTMs generally achieve comparable performance", "the notes",
          ("comparable_adding.yaml", "comparable_forecast.yaml"), ("gru", "lstm"), quick=_TINY_TUNE,
          how="after an equal tuning budget per cell, the 90% interval of the GRU / LSTM ratio of geometric means "
              "lies inside the declared margin x/÷ 1.25 (TOST on the log scale), per task"),
    Claim("long_range", "LSTMs tend to perform better when there are very long-range dependencies", "the notes",
          ("long_range.yaml",), ("lstm", "gru"), quick=_TINY_TRAIN + ("grid.task.seq_len=[20]",),
          how="LSTM significantly better than GRU (Holm over tasks x lengths) at the longest T, runs converged"),
    Claim("data", "GRUs ... may train a bit faster or need less data to generalize", "the notes",
          ("data_efficiency.yaml",), ("gru", "lstm"), quick=_TINY_TRAIN + ("grid.task.n_train=[64, 128]",),
          how="GRU significantly better than LSTM (Holm over sizes) at the small training sets"),
    Claim("sensitivity", "The performance of GRUs can be sensitive to hyperparameters", "the notes",
          ("sensitivity.yaml",), ("gru", "lstm"), quick=_TINY_TUNE + ("search.trials=4",),
          how="the spread of the GRU's trial results (log validation metric) significantly larger than the "
              "LSTM's (Brown-Forsythe test) under the same random search"),
    Claim("memory", "GRUs are more memory-efficient", "the notes", ("memory.yaml",), ("gru", "lstm"),
          quick=("grid.model.hidden_size=[8]", "task.seq_len=10"),
          how="GRU bytes (parameters; activations saved for the backward) below the LSTM's, per implementation"),
    Claim("gru_to_rnn", "If we set the reset to all 1's and update gate to all 0's we arrive at our plain RNN model",
          "the notes", ("gru_to_rnn.yaml",), ("gru",), quick=("train.epochs=1", "train.max_steps=2"),
          how="on trained weights, the GRU step with those gates forced equals the tanh RNN step to float64 "
              "rounding (1e-12), while the free GRU does not"),
    Claim("counting", "An LSTM trained on a^n b^n (n <= 100) recognises it, near misses rejected, for n beyond "
                      "the training range; a GRU does not", "Weiss et al. 2018",
          ("counting_next.yaml", "counting.yaml"), ("lstm", "gru"),
          quick=_TINY_TRAIN + ("task.max_n_train=3", "task.max_n_test=9", "task.n_train=64"),
          how="LSTM significantly above the GRU (Holm over both) in the largest n its next-symbol acceptor "
              "recognises (the paper's setup: trained on the positives n <= 100, checked to 300; inconclusive "
              "while a run rejects some of its own training positives) and in classifier accuracy on "
              "100 < n <= 120"),
    Claim("polyphonic", "On polyphonic music (Bach chorales) at about 20k parameters the GRU reaches a lower "
                        "negative log-likelihood than the LSTM and the tanh RNN", "Chung et al. 2014",
          ("polyphonic.yaml",), ("gru_cho", "lstm_peephole", "rnn", "gru", "lstm"),
          quick=_TINY_TUNE + ("task.max_pieces=12", "task.max_len=16", "model.param_budget=2000"),
          how="each cell's RMSProp learning rate tuned at the same budget (random log-uniform draws, chosen on "
              "validation), then fresh seeds: the paper's GRU (gru_cho) significantly below its LSTM "
              "(lstm_peephole) and the tanh RNN in test NLL per step, and torch's gru below torch's lstm (Holm "
              "over the three); the best run per cell, as the paper reports, beside the mean"),
    Claim("forget_bias", "Initialising the LSTM's forget-gate bias to 1 closes most of its gap to the GRU",
          "Jozefowicz et al. 2015", ("forget_bias_adding.yaml", "forget_bias_forecast.yaml"), ("lstm", "gru"),
          quick=_TINY_TUNE,
          how="per task, each arm tuned at the same budget (12 random learning rates, then 3 fresh seeds): the LSTM "
              "with forget bias 1 significantly better than with 0 (Holm over the tasks), and within the declared "
              "margin of the GRU (TOST, x/÷ 1.25)"),
    Claim("adding_limits", "On the adding problem the plain tanh RNN's length limit is far below the gated "
                           "cells'", "Le et al. 2015 (style)", ("adding_limits.yaml",), ("rnn", "gru", "lstm"),
          quick=_TINY_TRAIN + ("grid.task.seq_len=[10, 20]", "task.n_train=128"),
          how="the largest T solved (test MSE < 0.01 in at least half the seeds) is smaller for rnn than for "
              "gru and for lstm"),
]
BY_ID = {c.id: c for c in CLAIMS}


def get(claim_id: str) -> Claim:
    if claim_id not in BY_ID:
        raise ConfigError(unknown_name("claim", claim_id, list(BY_ID)))
    return BY_ID[claim_id]


def literature(root: Path = ROOT) -> dict[str, list[dict]]:
    """The papers' numbers by claim id (experiments/claims/literature.yaml; {} without it)."""
    from grucli.config import parse_yaml, read_text

    path = root / LITERATURE
    if not path.is_file():
        return {}
    data = parse_yaml(read_text(path, str(path)), str(path)) or {}
    unknown = set(data) - set(BY_ID)
    if unknown:
        from grucli.errors import ConfigError

        raise ConfigError(f"{path}: '{sorted(unknown)[0]}' is not a claim ({', '.join(BY_ID)})")
    return data
