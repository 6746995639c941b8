"""A starter experiment from a data file (`grucli init`), as `cargo init` writes a project
that builds: look at the columns, guess the task kind and its keys (saying what was guessed
and why), propose window, horizon and season for a series (the season from the timestamps'
frequency), size rnn, gru and lstm at one parameter budget, and write two commented files
that run as written: `<name>.yaml` for `grucli compare` and `<name>_tune.yaml` (the same plus
a `search:` block) for `grucli tune`. The guessed task is built once before anything is
written, so a guess that would not run is refused with the reason. What cannot be guessed is
an error naming the option that settles it."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from grucli.errors import DataError, GrucliError, bounded, did_you_mean
from grucli.tasks import TASKS
from grucli.tasks.sources import BLANK, blank, read_csv
from grucli.tasks.user_files import PARTS
from grucli.tasks.sources import user_file
from grucli.tasks.uea import parse_ts
from grucli.store import atomic_write_text

KINDS = ("csv_forecast", "csv_classify", "csv_anomaly")
LABEL_NAMES = re.compile(r"^(label|labels|class|classes|target|y|category|species|kind|type|sentiment|outcome|"
                         r"gesture|activity|digit|stars?)$", re.I)
TIME_NAMES = re.compile(r"^(date|time|datetime|timestamp|ds|day|week|month|quarter|year|period|t|index)$|date|time",
                        re.I)
ANOMALY_NAMES = re.compile(r"anomal|outlier|fault|attack|is_|label", re.I)
ID_NAMES = re.compile(r"(^|_)(id|ids|series|sequence|seq|session|recording|rec|take|trial|run|case|sample)(_|$)|id$",
                      re.I)
STEP_NAMES = re.compile(r"^(t|step|steps|tick|frame|sample_no|position|pos)$", re.I)
SHORT_TEXT = 15  # mean characters a cell below which a text column is read as characters (names, words)
# timestamp step (days) -> (season in rows, what it is)
SEASONS = [((1 / 24 * 0.9, 1 / 24 * 1.1), 24, "hourly rows: a day is 24"),
           ((0.9, 1.1), 7, "daily rows: a week is 7"),
           ((6.5, 7.5), 52, "weekly rows: a year is 52"),
           ((27, 32), 12, "monthly rows: a year is 12"),
           ((85, 95), 4, "quarterly rows: a year is 4")]


@dataclass
class Column:
    name: str
    numeric: bool  # every filled cell is a number
    distinct: int  # distinct filled values
    values: pd.Series  # the filled cells, as text
    mean_len: float  # mean characters per filled cell


@dataclass
class Long:
    """A long file: one row per step, `id` naming the sequence, `time` ordering its steps (None:
    file order), `label` the same on every row of a sequence, `channels` the numeric columns."""

    id: Column
    time: Column | None
    label: Column
    channels: list[Column]
    sequences: int
    steps: float  # median rows per sequence


@dataclass
class Starter:
    """What init proposes: the task section, every guess as a line, the model budget."""

    kind: str
    task: dict
    guesses: list[str] = field(default_factory=list)
    budget: int = 5000
    batch_size: int = 32
    epochs: int = 30
    patience: int = 5  # train.early_stopping
    notes: list[str] = field(default_factory=list)  # what building the guessed task said (small splits, gaps)
    sizes: dict = field(default_factory=dict)


@dataclass
class InitResult:
    starter: Starter
    files: list[Path]
    commands: list[str]


def profile(df: pd.DataFrame) -> list[Column]:
    cols = []
    for name in df.columns:
        text = df[name].astype(str).str.strip()
        filled = text[~text.isin(BLANK)]
        num = pd.to_numeric(filled, errors="coerce")
        cols.append(Column(str(name), bool(len(filled)) and bool(num.notna().all()), int(filled.nunique()), filled,
                           float(filled.str.len().mean()) if len(filled) else 0.0))
    return cols


def _is_time(c: Column) -> bool:
    if c.numeric:  # a year or step counter: increasing integers under a time-like name
        v = pd.to_numeric(c.values)
        return bool(TIME_NAMES.search(c.name)) and bool((np.diff(v.to_numpy()) > 0).all())
    parsed = pd.to_datetime(c.values.head(200), errors="coerce", format="mixed")
    return parsed.notna().mean() > 0.9


def long_layout(df: pd.DataFrame, cols: list[Column], split: Column | None, target: str | None = None) -> Long | None:
    """The long multi-channel format, if the file has it: an id column whose values repeat
    (three or more rows per sequence), a label constant within each id with fewer values than
    there are ids, and numeric channel columns that change within an id; the time column is
    one named like time or a step (or holding timestamps) whose values do not repeat within an id.
    Columns named like an id are tried first."""
    n = len(df)
    pool = [c for c in cols if c is not split and 2 <= c.distinct <= n // 3
            and (not c.numeric or (pd.to_numeric(c.values) % 1 == 0).all())]
    pool.sort(key=lambda c: not ID_NAMES.search(c.name))
    for idc in pool:
        ids = df[idc.name].astype(str).str.strip()
        per_id = df.groupby(ids, sort=False).nunique()  # (sequences, columns): distinct values within each id
        const = [c for c in cols if c is not idc and c is not split and bool((per_id[c.name] <= 1).all())]
        labels = [c for c in const if 2 <= c.distinct < idc.distinct and (target is None or c.name == target)]
        if not labels:
            continue
        label = sorted(labels, key=lambda c: not LABEL_NAMES.match(c.name))[0]
        rest = [c for c in cols if c not in (idc, label, split) and c not in const]
        times = [c for c in rest if (STEP_NAMES.match(c.name) or TIME_NAMES.search(c.name)
                                     or (not c.numeric and _is_time(c)))
                 and bool((per_id[c.name] == ids.groupby(ids, sort=False).size()).all())]
        time = times[0] if times else None
        channels = [c for c in rest if c is not time]
        if not channels or any(not c.numeric for c in channels):
            continue
        sizes = ids.value_counts()
        if sizes.median() < 3:
            continue
        return Long(idc, time, label, channels, len(sizes), float(sizes.median()))
    return None


def no_blank_time(values: pd.Series, name: str, path: str) -> None:
    """A time column orders the rows (and gives the season): an empty cell in it is one line
    naming the column and the first such row, as an empty value cell is."""
    rows = np.flatnonzero(blank(values))
    if len(rows):
        more = f" ({len(rows) - 1} more rows miss their time)" if len(rows) > 1 else ""
        raise DataError(f"{path}: data row {rows[0] + 1}: the time (column '{name}') is empty{more}; fill it in, "
                        "or remove the row")


def season_from(c: Column) -> tuple[int | None, str]:
    """Rows per season from a timestamp column's typical step, and the reason."""
    if c.numeric:
        return None, f"'{c.name}' counts steps (no calendar): no season guessed; set season: if there is one"
    t = pd.to_datetime(c.values, errors="coerce", format="mixed").dropna()
    if len(t) < 3:
        return None, f"'{c.name}' has too few timestamps to tell a frequency"
    days = float(pd.Series(t).diff().dropna().median() / pd.Timedelta(days=1))
    for (lo, hi), season, why in SEASONS:
        if lo <= days <= hi:
            return season, f"from the timestamps in '{c.name}': {why}"
    return None, f"from the timestamps in '{c.name}': one row every {days:g} days, no usual season; set season: if there is one"


def _label_candidates(cols: list[Column], n: int, exclude=()) -> list[Column]:
    """Columns that could hold classes: named like a label, else text with few values, else
    small integer codes; most label-like first."""
    pool = [c for c in cols if c.name not in exclude and 2 <= c.distinct <= max(2, min(100, n // 2))]
    named = [c for c in pool if LABEL_NAMES.match(c.name)]
    text = [c for c in pool if not c.numeric and c not in named]
    codes = [c for c in pool if c.numeric and c.distinct <= 20 and c not in named
             and (pd.to_numeric(c.values) % 1 == 0).all()]
    return named + text + codes


def guess(path: str, kind: str | None = None, target: str | None = None) -> Starter:
    """Look at a CSV and propose a task. `kind` forces the task; `target` names the column
    to forecast or the label. A DataError says what could not be guessed and how to settle it."""
    df = read_csv(path)
    n, cols = len(df), profile(df)
    by_name = {c.name: c for c in cols}
    if target is not None and target not in by_name:
        raise DataError(f"{path}: --target {target}: no such column{did_you_mean(target, by_name)}; "
                        f"{bounded(by_name, 'columns')}")
    split = next((c for c in cols if not c.numeric and set(c.values.str.lower()) <= set(PARTS) and c.distinct >= 2), None)
    times = [c for c in cols if c is not split and _is_time(c)]
    time = times[0] if times else None
    if time is not None:
        no_blank_time(df[time.name], time.name, path)
    numeric = [c for c in cols if c.numeric and c is not time and c is not split]
    texts = [c for c in cols if not c.numeric and c is not time and c is not split and c.mean_len >= SHORT_TEXT
             and c.distinct >= 0.5 * len(c.values)]
    if not texts and len(numeric) < 2:  # short texts (names, words): mostly distinct cells holding letters
        texts = [c for c in cols if not c.numeric and c is not time and c is not split and c.mean_len >= 2
                 and c.distinct >= 0.5 * len(c.values) and c.values.str.contains(r"[^\W\d_]", regex=True).mean() > 0.9]
    long = long_layout(df, cols, split, target) if kind in (None, "csv_classify") and not texts else None
    binary = [c for c in numeric if set(pd.to_numeric(c.values).unique()) <= {0, 1} and ANOMALY_NAMES.search(c.name)]
    if kind is None:
        if long is not None:
            kind, why = "csv_classify", (f"'{long.id.name}' names {long.sequences} sequences of about {long.steps:.0f} "
                                         f"rows each and '{long.label.name}' is the same on every row of one: "
                                         "the long format, one row per step")
        elif texts:
            kind, why = "csv_classify", f"'{texts[0].name}' holds text (about {texts[0].mean_len:.0f} characters a row)"
        elif binary and len(numeric) >= 2 and n >= 200 and len(numeric) <= 3:
            kind, why = "csv_anomaly", f"'{binary[0].name}' is a 0/1 column beside a series"
        elif (time or len(numeric) <= 3) and numeric and not [c for c in cols if not c.numeric and c not in (time, split)]:
            kind, why = "csv_forecast", (f"'{time.name}' looks like time" if time else
                                         f"{len(numeric)} numeric column(s) and no label-like column")
        elif len(numeric) >= 4:
            kind, why = "csv_classify", f"{len(numeric)} numeric columns (a label and the steps of a sequence)"
        else:
            raise DataError(f"{path}: cannot tell the task from {bounded(by_name, 'columns')}: no time column, text "
                            "column or row of numeric steps; give --task (csv_forecast, csv_classify or csv_anomaly) "
                            "and --target")
        guesses = [f"task: {kind}, because {why} (--task to choose another)"]
    elif kind not in KINDS:
        raise GrucliError(f"--task {kind}: init writes one of {', '.join(KINDS)}")
    else:
        guesses = [f"task: {kind} (--task)"]
    st = Starter(kind, {"name": kind}, guesses)
    if kind == "csv_classify" and long is not None:
        return _classify_long(st, long, split, target)
    return {"csv_forecast": _forecast, "csv_classify": _classify, "csv_anomaly": _anomaly}[kind](
        st, path, n, cols, by_name, target, time, numeric, texts, binary, split)


def guess_ts(path: Path) -> Starter:
    """A .ts file: csv_classify on its cases; a _TRAIN file's _TEST sibling is the test file."""
    series, labels, _ = parse_ts(user_file(str(path)).read_text(encoding="utf-8", errors="replace"), str(path))
    lengths = sorted({len(s) for s in series})
    span = str(lengths[0]) if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}"
    st = Starter("csv_classify", {"name": "csv_classify"},
                 [f"task: csv_classify, because a .ts file holds labelled cases ({len(series)} cases, "
                  f"{series[0].shape[1]} channel(s), length {span}, {len(set(labels))} classes)"])
    test = path.with_name(re.sub(r"_TRAIN(\.ts)$", r"_TEST\1", path.name, flags=re.I))
    if test != path and test.is_file():
        st.task["test_path"] = str(test.resolve())
        st.guesses.append(f"test_path: {test.name} (the official test cases beside the _TRAIN file)")
    return st


def _pick(what: str, target, by_name, options: list[Column], path: str, st: Starter, why: str) -> Column:
    if target is not None:
        st.guesses.append(f"{what}: '{target}' (--target)")
        return by_name[target]
    if not options:
        raise DataError(f"{path}: cannot tell which column is the {what}; name it with --target")
    others = f"; others: {', '.join(c.name for c in options[1:4])}{', ...' if len(options) > 4 else ''}" \
        if len(options) > 1 else ""
    st.guesses.append(f"{what}: '{options[0].name}' ({why}{others}; --target to choose another)")
    return options[0]


def _forecast(st, path, n, cols, by_name, target, time, numeric, texts, binary, split) -> Starter:
    col = _pick("column to forecast", target, by_name, numeric, path, st,
                "the only numeric column" if len(numeric) == 1 else "the first numeric column")
    if not col.numeric:
        raise DataError(f"{path}: column '{col.name}' is not numeric: csv_forecast needs numbers", key="column")
    season, why = season_from(time) if time else (None, "no time column: no season guessed; set season: if "
                                                          "the series has one")
    horizon = max(1, (season or 4) // 4)
    room = int(0.7 * n) - horizon - 20  # train needs window + horizon rows and some windows to learn from
    window = max(2, min(2 * season if season else 24, room))
    if room < 2:
        raise DataError(f"{path}: {n} rows are too few to forecast from sliding windows (the train part, 70% of "
                        "the rows, must hold a window, its horizon and some 20 more)")
    st.task.update({"column": col.name, "window": window, "horizon": horizon, **({"season": season} if season else {})})
    st.guesses.append(f"season: {season if season else 'none'} ({why})")
    st.guesses.append(f"window {window}, horizon {horizon}: "
                      + ("two seasons in, a quarter season out" if season and window == 2 * season else
                         f"fits {n} rows with 70% for train"))
    return st


def _classify(st, path, n, cols, by_name, target, time, numeric, texts, binary, split) -> Starter:
    if split is not None:
        st.task["split"] = split.name
        st.guesses.append(f"split: '{split.name}' (its cells say {', '.join(sorted(set(split.values.str.lower())))}: "
                          "the official split is kept)")
    exclude = {split.name} if split else set()
    if texts:
        exclude.add(texts[0].name)
    label = _pick("label", target, by_name, _label_candidates(cols, n, exclude), path, st, "label-like")
    st.task["label"] = label.name
    if texts and texts[0].name != label.name:
        text = texts[0]
        if text.mean_len < SHORT_TEXT:  # names, words: characters are the tokens
            longest = int(text.values.str.len().max())
            st.task.update({"text": text.name, "unit": "char", "max_len": min(256, longest), "min_count": 2})
            st.guesses.append(f"text: '{text.name}', read as characters (short cells, about {text.mean_len:.0f} "
                              f"characters; max_len {min(256, longest)} keeps the longest; unit: word to read words)")
        else:
            st.task.update({"text": text.name, "unit": "word", "max_len": 64, "min_count": 2})
            st.guesses.append(f"text: '{text.name}', read as words (unit: char to read characters)")
        return st
    steps = [c for c in cols if c.name not in (label.name, *(exclude))]
    bad = [c for c in steps if not c.numeric]
    if bad:
        raise DataError(f"{path}: csv_classify reads every column but the label as a numeric step, and "
                        f"'{bad[0].name}' is not numeric; drop it from the file, or use --task for a text task")
    st.guesses.append(f"steps: the {len(steps)} other columns, left to right, one value per step")
    return st


def _classify_long(st: Starter, long: Long, split: Column | None, target: str | None) -> Starter:
    st.task.update({"label": long.label.name, "id": long.id.name, **({"time": long.time.name} if long.time else {})})
    if split is not None:
        st.task["split"] = split.name
    st.guesses.append(f"label: '{long.label.name}' (" + ("--target" if target else "the same on every row of a "
                                                         "sequence; --target to choose another") + ")")
    st.guesses.append(f"id: '{long.id.name}' ({long.sequences} sequences), time: "
                      + (f"'{long.time.name}' (orders the steps of each)" if long.time else
                         "none (no column orders the steps: file order)"))
    st.guesses.append(f"channels: {', '.join(c.name for c in long.channels[:8])}"
                      + (f" and {len(long.channels) - 8} more" if len(long.channels) > 8 else "")
                      + f" ({len(long.channels)} per step)")
    if split is not None:
        st.guesses.append(f"split: '{split.name}' (its cells say {', '.join(sorted(set(split.values.str.lower())))}: "
                          "the official split is kept)")
    return st


def _anomaly(st, path, n, cols, by_name, target, time, numeric, texts, binary, split) -> Starter:
    label = _pick("0/1 label", target if target in [c.name for c in binary] else None, by_name, binary, path, st,
                  "named like a label, holding 0 and 1")
    values = [c for c in numeric if c is not label]
    col = _pick("value column", target if target in [c.name for c in values] else None, by_name, values, path, st,
                "the first numeric column")
    st.task.update({"column": col.name, "label": label.name, "window": 32, "normal_frac": 0.3})
    st.guesses.append("window 32, normal_frac 0.3: the first 30% of rows train the forecaster")
    return st


def check(st: Starter, data_path: Path) -> Starter:
    """Build the guessed task once (nothing is cached or written): a guess that would not run
    is refused with the task's own reason; the sizes set the parameter budget."""
    task = {**st.task, "path": str(data_path.resolve())}
    cfg = TASKS[st.kind].config(**task)
    build = TASKS[st.kind].build
    try:
        data = getattr(build, "__wrapped__", build)(cfg)
    except DataError as e:
        raise DataError(f"the guessed {st.kind} would not run: {e}", e.key) from None
    st.notes = list(data.info.get("notes") or [])
    st.sizes = {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
    st.budget = 2000 if st.sizes["train"] < 300 else 5000 if st.sizes["train"] < 3000 else 20000
    st.batch_size, st.epochs, st.patience = schedule(st.sizes["train"])
    return st


STEPS = 600  # optimiser steps a run should get at least (a few hundred: what the small tasks converge in)


def schedule(n_train: int) -> tuple[int, int, int]:
    """(batch size, epochs, early-stopping patience) that give a run about STEPS optimiser
    steps whatever the data's size: a small set has few batches an epoch, so it needs more
    epochs, and a patience counted in epochs must grow with them (40 sequences in batches of
    32 are 2 steps an epoch: 30 epochs with a patience of 5 stopped the gesture runs after
    22-60 steps, still learning); a large set gets larger batches, so an epoch stays short."""
    batch = 32 if n_train < 5000 else 128
    per_epoch = max(1, -(-n_train // batch))
    epochs = min(300, max(30, -(-STEPS // per_epoch)))
    return batch, epochs, max(5, epochs // 5)


def _yaml_value(v) -> str:
    """A scalar as YAML: plain when it reads back as the same string, else JSON-quoted."""
    if isinstance(v, str):
        plain = re.fullmatch(r"[A-Za-z_][\w./-]*", v) and v.lower() not in ("null", "true", "false", "yes", "no", "on",
                                                                            "off")
        return v if plain else json.dumps(v)
    return str(v)


def render(st: Starter, name: str, data_rel: str, tune: bool) -> str:
    """The experiment file, commented: the command first, then every guess."""
    cmd = f"grucli tune {name}.yaml" if tune else f"grucli compare {name}.yaml"
    lines = [f"# {cmd}", f"# Then: grucli report results/{name}",
             f"# Written by grucli init from {data_rel}; what it guessed (edit freely):"]
    lines += [f"#   {g}" for g in st.guesses]
    lines += [f"# rnn, gru and lstm each sized to about {st.budget} parameters (model.param_budget), so the cells",
              "# are compared at an equal budget" + (", each tuned with the same trials from the search space,"
                                                    if tune else ", over 3 seeds."),
              *(["# then its best configuration trained again on fresh seeds."] if tune else []),
              f"name: {name}", "task:"]
    task = {"name": st.kind, "path": data_rel, **{k: v for k, v in st.task.items() if k != "name"}}
    lines += [f"  {k}: {_yaml_value(v)}" for k, v in task.items()]
    embed = st.task.get("text") is not None
    lines += ["model:", f"  param_budget: {st.budget}", *(["  embed_dim: 32             # tokens: a learned embedding"]
                                                       if embed else []),
              "train:", "  lr: 3.0e-3", f"  batch_size: {st.batch_size}",
              f"  epochs: {st.epochs}" + " " * max(1, 19 - len(str(st.epochs)))
              + f"# about {st.epochs * -(-st.sizes.get('train', 0) // st.batch_size)} optimiser steps at most",
              f"  early_stopping: {st.patience}" + " " * max(1, 11 - len(str(st.patience)))
              + "# epochs without a better validation score", "grid:",
              "  model.cell: [rnn, gru, lstm]"]
    if not tune:
        lines += ["seeds: 3"]
        return "\n".join(lines) + "\n"
    space = ["    train.lr: {log_uniform: [3.0e-4, 1.0e-2]}",
             f"    model.param_budget: {{choice: [{st.budget // 4}, {st.budget}, {st.budget * 4}]}}",
             "    model.num_layers: {int: [1, 2]}", "    model.dropout: {uniform: [0.0, 0.3]}"]
    if st.kind == "csv_forecast":
        space.append("    task.scaling: {choice: [window, global]}")
    lines += ["search:", "  trials: 12                 # per cell", "  sampler: tpe", "  pruner: asha",
              "  space:", *space, "  final_seeds: 3             # each cell's best configuration, re-trained"]
    return "\n".join(lines) + "\n"


def init(data: str | Path, out: str | Path | None = None, kind: str | None = None, target: str | None = None,
         force: bool = False) -> InitResult:
    """Guess, check and write `<out>` (default ./<data stem>.yaml) and its `_tune` twin."""
    data = Path(data)
    if data.suffix.lower() not in (".csv", ".txt", ".tsv", ".ts", ""):
        raise DataError(f"{data}: init reads a CSV file (one header line, one row per line) or a .ts file", key="path")
    if data.suffix.lower() == ".ts":
        if kind not in (None, "csv_classify") or target is not None:
            raise GrucliError(f"{data}: a .ts file holds labelled cases: init writes csv_classify for it, "
                              "without --target")
        st = check(guess_ts(data), data)
    else:
        st = check(guess(str(data), kind, target), data)
    # the data set's name: a _TRAIN.ts file's experiment covers its _TEST sibling too
    stem = re.sub(r"_TRAIN$", "", data.stem, flags=re.I) if data.suffix.lower() == ".ts" else data.stem
    out = Path(out) if out is not None else Path(re.sub(r"[^\w.-]", "_", stem) + ".yaml")
    if out.suffix not in (".yaml", ".yml"):
        raise GrucliError(f"--out {out}: an experiment file ends in .yaml")
    tune_out = out.with_name(out.stem + "_tune" + out.suffix)
    existing = [p for p in (out, tune_out) if p.exists()]
    if existing and not force:
        raise GrucliError(f"{existing[0]} exists: not overwritten (--force to replace it, or --out another name)")
    rel = os.path.relpath(data.resolve(), out.resolve().parent)
    if "test_path" in st.task:
        st.task["test_path"] = os.path.relpath(st.task["test_path"], out.resolve().parent)
    name = re.sub(r"[^\w.-]", "_", out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render(st, name, rel, tune=False))
    atomic_write_text(tune_out, render(st, name + "_tune", rel, tune=True))
    commands = [f"grucli compare {out} --dry-run", f"grucli compare {out}", f"grucli report results/{name}",
                f"grucli tune {tune_out}", f"grucli report results/{name}_tune"]
    return InitResult(st, [out, tune_out], commands)
