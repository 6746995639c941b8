"""Experiment -> list of runs. Pure functions: grid expansion (cartesian, zip, exclude,
include, seeds), validation of every point before anything runs, and run ids."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grucli.config import (EXECUTION_KEYS, LATER_KEYS, SECTIONS, Experiment, RunConfig, RunConfigError, merge_section,
                           parse_run, section_lines, set_dotted)
from grucli.errors import ConfigError


@dataclass(frozen=True)
class Run:
    """One point of the grid with one seed."""

    index: int  # 1-based position in the grid listing
    config: RunConfig
    varied: dict[str, Any]  # the dotted keys the grid set for this point (for display)
    run_id: str
    watch: Any = None  # optional: whoever watches the run from inside (a tuner's pruner): .callback(inner) ->
    # Callback, and .close() when the run's pack is over


def run_id(config: RunConfig) -> str:
    """Stable id: sha256 of the resolved config as canonical JSON, execution-only keys
    (device, threads) left out, and keys added later while at their default; 12 hex digits."""
    return _hash(_canonical(config))


def _canonical(config: RunConfig) -> str:
    data = config.model_dump(mode="json")
    for section, key in EXECUTION_KEYS:
        data[section].pop(key, None)
    for (section, key), default in LATER_KEYS.items():
        if key in data[section] and data[section][key] == default:
            data[section].pop(key)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _hash(blob: str) -> str:
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


_SEED_MARK = -8_675_309_123  # a seed no grid uses: marks where the seed sits in the canonical JSON


def _seeded(raw: dict, seeds: list[int], where: str):
    """(config, run id) for each seed of one grid point, validated once. The seed is the
    only difference between them (GridSpec already checked each is an int, no validator
    reads it, and configs are frozen, so the copies may share their sections); the
    canonical JSON is the point's with the seed written in: the same text, so the same id,
    as run_id gives. (A 100,000-run grid spent ~8 s validating and serialising each run.)"""
    cfg = parse_run({**raw, "seed": seeds[0]}, where)
    mark = f'"seed":{_SEED_MARK}'
    text = _canonical(cfg.model_copy(update={"seed": _SEED_MARK}))
    # the slow way where the seed is more than the seed: task.data_seed: per_seed follows it
    # (resolved by RunConfig's validator), or where the mark could be mistaken (never expected)
    if cfg.data_seed_given != cfg.task.data_seed or text.count(str(_SEED_MARK)) != 1 or _SEED_MARK in seeds:
        for seed in seeds:
            one = parse_run({**raw, "seed": seed}, where)
            yield one, run_id(one)
        return
    head, _, tail = text.partition(mark)
    for seed in seeds:
        yield cfg.model_copy(update={"seed": seed}), _hash(f'{head}"seed":{seed}{tail}')


def grid_points(exp: Experiment) -> list[dict[str, Any]]:
    """The settings each point sets, before seeds: cartesian axes x zip groups, minus
    excluded points, plus included ones (deduplicated, order kept)."""
    spec = exp.spec
    axes = [[{k: v} for v in values] for k, values in spec.grid.items()]
    for n, group in enumerate(spec.zip):
        lengths = {k: len(v) for k, v in group.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"{exp.source}: zip[{n}]: lists must have equal length, got {lengths}")
        if not group or not next(iter(lengths.values())):
            raise ConfigError(f"{exp.source}: zip[{n}]: empty group")
        overlap = set(group) & (set(spec.grid) | {k for g in spec.zip[:n] for k in g})
        if overlap:
            raise ConfigError(f"{exp.source}: zip[{n}]: key {sorted(overlap)[0]} is already varied elsewhere")
        axes.append([dict(zip(group, values)) for values in zip(*group.values())])
    points = [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]
    for n, rule in enumerate(spec.exclude):
        unknown = set(rule) - set(spec.grid) - {k for g in spec.zip for k in g}
        if unknown:
            raise ConfigError(f"{exp.source}: exclude[{n}]: '{sorted(unknown)[0]}' is not a grid or zip key")
        points = [p for p in points if not all(p.get(k) == v for k, v in rule.items())]
    for point in spec.include:
        if point not in points:
            points.append(dict(point))
    if not points:
        raise ConfigError(f"{exp.source}: the grid is empty (every point was excluded)")
    return points


def point_config(exp: Experiment, point: dict[str, Any]) -> dict:
    """The raw run config (task, model, train; no seed) of one grid point: the base with the
    point's values laid over it, whole sections first."""
    raw = copy.deepcopy(exp.base)
    for key, value in sorted(point.items(), key=lambda kv: "." in kv[0]):  # whole sections first
        section, *rest = key.split(".")
        if section not in SECTIONS:
            raise ConfigError(f"{exp.source}: grid key '{key}' must be task, model, train or start with one")
        if rest:
            raw[section] = set_dotted(raw[section], rest, value, section)
            continue
        try:
            raw[section] = merge_section(section, raw[section], value)
        except TypeError as e:
            raise ConfigError(f"{exp.source}: grid.{key}: {e}") from None
    return raw


def point_source(exp: Experiment, point: dict[str, Any]) -> str:
    """Where a grid point's errors are reported: the file and the point."""
    return exp.source if not point else f"{exp.source} [grid point {label(point)}]"


def origin(exp: Experiment, point: dict[str, Any], key: str) -> str:
    """Where the value at config key `key` (dotted, e.g. train.lr) of a grid point came from,
    for its error: the grid point when the point sets it (or a whole section holding it), else
    the --set override that gave it, else the file at the key's line (the base sections)."""

    def covers(given: str, value=None) -> bool:  # setting `given` (to `value`) decides `key`
        if key == given or given.startswith(key + "."):
            return True
        if not key.startswith(given + "."):
            return False
        inner = key[len(given) + 1:].split(".")[0]  # a whole section sets only the keys it holds
        return not isinstance(value, dict) or inner in value

    if any(covers(k, v) for k, v in point.items()):
        return point_source(exp, point)
    given = [k for k in exp.set_by if covers(k)]
    if given:
        return f"--set {exp.set_by[max(given, key=len)]}"
    parts, lines = key.split("."), section_lines(Path(exp.source))
    line = next((lines[k] for k in (".".join(parts[:n]) for n in range(len(parts), 0, -1)) if k in lines), None)
    return exp.source if line is None else f"{exp.source}:{line}"


def expand(exp: Experiment) -> list[Run]:
    """Every run of the experiment, validated. Raises ConfigError naming, for each problem of
    the first invalid point, the key path and where its value came from (`origin`)."""
    runs: list[Run] = []
    seen: set[str] = set()
    for point in grid_points(exp):
        raw = point_config(exp, point)
        try:
            seeded = list(_seeded(raw, exp.spec.seed_list(), point_source(exp, point)))
        except RunConfigError as e:
            raise ConfigError(e.at(lambda key: origin(exp, point, key))) from None
        for cfg, rid in seeded:
            if rid in seen:
                continue
            seen.add(rid)
            runs.append(Run(len(runs) + 1, cfg, dict(point), rid))
    return runs


def label(point: dict[str, Any]) -> str:
    """`model.cell=gru task.seq_len=60` (whole-section values shortened)."""
    return " ".join(f"{k}={_short(v)}" for k, v in point.items() if v != {})


def _short(value: Any) -> str:
    """`copy(seq_len=10,copy_len=5)` for a whole-section value, 4 significant digits for a
    float (a sampled learning rate), str(value) otherwise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if not isinstance(value, dict):
        return str(value)
    rest = ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
    return f"{value.get('name', '')}({rest})"


def describe(run: Run, without: tuple[str, ...] = ()) -> str:
    """`model.cell=gru task.seq_len=100 seed=1` (keys in `without` left out)."""
    varied = {k: v for k, v in run.varied.items() if k not in without}
    return " ".join([label(varied), f"seed={run.config.seed}"]).strip()
