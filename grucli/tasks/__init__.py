"""The task registry: name -> Task(config class, build function). Adding a task is one
module (config + build) plus one line here."""

from __future__ import annotations

from grucli.tasks.anomaly import ANOMALY, CSV_ANOMALY
from grucli.tasks.base import Split, Task, TaskConfig, TaskData
from grucli.tasks.digits import SEQ_DIGITS
from grucli.tasks.forecast import FORECAST
from grucli.tasks.music import POLYPHONIC
from grucli.tasks.sentiment import SENTIMENT
from grucli.tasks.seq2seq import CSV_TRANSLATE, G2P, REVERSE
from grucli.tasks.synthetic import ADDING, COPY, COUNTING, TEMPORAL_ORDER
from grucli.tasks.text import CHAR_LM, WORD_LM
from grucli.tasks.uea import UEA
from grucli.tasks.user_files import CSV_CLASSIFY, CSV_FORECAST

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        ADDING,
        COPY,
        TEMPORAL_ORDER,
        COUNTING,
        SEQ_DIGITS,
        FORECAST,
        UEA,
        SENTIMENT,
        CHAR_LM,
        WORD_LM,
        CSV_FORECAST,
        CSV_CLASSIFY,
        ANOMALY,
        CSV_ANOMALY,
        REVERSE,
        G2P,
        CSV_TRANSLATE,
        POLYPHONIC,
    ]
}

__all__ = ["TASKS", "Task", "TaskConfig", "TaskData", "Split", "build_task"]

_CACHE: dict[str, TaskData] = {}


def build_task(cfg: TaskConfig) -> TaskData:
    """Build (or reuse, within this process) the data of a task config."""
    key = cfg.model_dump_json()
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = TASKS[cfg.name].build(cfg)
    return _CACHE[key]

