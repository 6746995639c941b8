"""Typed configuration. YAML becomes typed objects here and only here: unknown keys (with
the closest valid key suggested), wrong types and impossible values are rejected with the
file and the key path. Downstream code receives frozen `RunConfig` objects.

Every file grucli reads goes through `read_mapping` (the file -> its top-level mapping) and
`typed` (a mapping -> a pydantic model, or one ConfigError line): experiment files and their
sections (search: is grucli.tune.space.SearchSpec, verdict: grucli.declared.VerdictSpec),
and bench files (`load_file` with grucli.bench.BenchConfig)."""

from __future__ import annotations

import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from grucli.errors import ConfigError, closest_key, each_line, unknown_key, unknown_name
from grucli.cells import CELLS
from grucli.tasks import TASKS
from grucli.declared import VerdictSpec
from grucli.tasks.base import PER_SEED
from grucli.tune.space import SearchSpec, check_seeds

DEFAULT_HIDDEN = 64


class Strict(BaseModel):
    # strict: YAML is already typed, so `true` is not 1 and "8" is not 8 (an int still fills a float)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelConfig(Strict):
    """The recurrent model. Set `hidden_size` or `param_budget`, not both."""

    cell: str = "gru"  # registry name: gru, lstm, rnn, ... (see `grucli cells`)
    hidden_size: int | None = Field(None, ge=1)  # units per layer and direction (default 64)
    param_budget: int | None = Field(None, ge=1)  # pick, per cell, the hidden size whose total parameter count is closest
    num_layers: int = Field(1, ge=1)  # stacked recurrent layers
    bidirectional: bool = False  # run a second stack backwards in time
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # between stacked layers and before the head
    forget_bias: float = 1.0  # cells with a forget gate (LSTM family): its initial bias (Jozefowicz et al. 2015: 1.0)
    embed_dim: int | None = Field(None, ge=1)  # token tasks: learned embedding size; null = one-hot input
    impl: Literal["auto", "torch", "fused", "reference"] = "auto"  # same model, different code: auto = fastest exact available
    attention: Literal["none", "additive"] = "none"  # encoder-decoder tasks: additive attention (Bahdanau et al. 2014)
    beam: int = Field(1, ge=1)  # encoder-decoder tasks: beam width when decoding for evaluation (1 = greedy)

    @field_validator("cell")
    @classmethod
    def _known_cell(cls, v: str) -> str:
        if v not in CELLS:
            raise ValueError(unknown_name("cell", v, CELLS))
        return v

    @model_validator(mode="after")
    def _size(self):
        if self.hidden_size is not None and self.param_budget is not None:
            raise ValueError("set either hidden_size or param_budget, not both")
        if self.hidden_size is None and self.param_budget is None:  # resolved here, so the run id sees it
            object.__setattr__(self, "hidden_size", DEFAULT_HIDDEN)
        if self.impl != "auto" and self.impl not in CELLS[self.cell].impls:
            raise ValueError(f"impl: cell '{self.cell}' has no '{self.impl}' implementation; "
                             f"valid: auto, {', '.join(CELLS[self.cell].impls)}")
        return self


class TrainConfig(Strict):
    """Optimisation and stopping. Timing and devices are measured, not configured here."""

    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)  # learning rate
    momentum: float = Field(0.0, ge=0, lt=1)  # sgd and rmsprop only
    weight_decay: float = Field(0.0, ge=0)  # L2 penalty
    batch_size: int = Field(64, ge=1)  # sequences per step
    epochs: int = Field(10, ge=1)  # passes over the training split
    max_steps: int | None = Field(None, ge=1)  # stop after this many optimiser steps (across epochs)
    grad_clip: float | None = Field(1.0, gt=0)  # clip the global gradient norm; null = off
    weight_noise: float = Field(0.0, ge=0)  # sigma of Gaussian noise on every weight at each step (Graves 2011); 0 = off
    early_stopping: int = Field(0, ge=0)  # stop after this many epochs without validation improvement; 0 = off
    stop_at_target: bool = False  # stop as soon as the validation metric reaches the task's target
    eval_batch_size: int = Field(1000, ge=1)  # sequences per forward pass when evaluating
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda if available, else cpu
    threads: int | None = Field(None, ge=1)  # torch intra-op threads; null = 1 (more only helps large models)


def _task_union():
    classes = tuple(t.config for t in TASKS.values())
    return Annotated[Union[classes], Field(discriminator="name")]  # type: ignore[valid-type]


TaskUnion = _task_union()

# Keys that change where/how fast a run executes but not what it computes: left out of run ids.
# A data file's path is one of them: its content hash (task.content_sha256) stands for the data.
EXECUTION_KEYS = {("train", "device"), ("train", "threads"), ("task", "path"), ("task", "test_path")}
# Keys added after run ids were first issued, with their defaults: left out of the id while
# at the default, so a results folder made before they existed keeps its run ids.
LATER_KEYS = {("model", "attention"): "none", ("model", "beam"): 1, ("task", "missing"): "error",
              ("task", "split"): None, ("task", "id"): None, ("task", "time"): None, ("task", "channels"): None,
              ("task", "mode"): "classifier", ("task", "threshold"): 0.005,
              ("train", "weight_noise"): 0.0}


class RunConfig(Strict):
    """One fully resolved run: what `train_run` receives. Its hash is the run id."""

    task: TaskUnion
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    seed: int = 0  # drives weight init, batch order and dropout
    _data_per_seed: bool = PrivateAttr(False)  # task.data_seed was given as per_seed (not part of the run id)

    @model_validator(mode="after")
    def _data_seed(self):
        if self.task.data_seed == PER_SEED:  # resolved here, so the run id and the data cache see the int
            object.__setattr__(self, "task", self.task.model_copy(update={"data_seed": self.seed}))
            self._data_per_seed = True
        return self

    @property
    def data_seed_given(self) -> int | str:
        """task.data_seed as the experiment gave it: per_seed, or the int (store.write_run records it)."""
        return PER_SEED if self._data_per_seed else self.task.data_seed


class GridSpec(Strict):
    """How an experiment expands into runs (see grucli.grid)."""

    grid: dict[str, list[Any]] = {}  # cartesian product over dotted keys
    zip: list[dict[str, list[Any]]] = []  # groups of keys that vary together (equal-length lists)
    exclude: list[dict[str, Any]] = []  # drop points that match every key/value of an entry
    include: list[dict[str, Any]] = []  # extra points: base config plus these dotted values
    seeds: int | list[int] = 1  # N -> seeds 0..N-1, or an explicit list

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        return check_seeds(v)

    @field_validator("grid")
    @classmethod
    def _axes(cls, v):
        for key, values in v.items():
            if not values:
                raise ValueError(f"'{key}' has an empty list of values")
        return v

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


class Experiment(Strict):
    """A loaded experiment file: the base run (task/model/train as given), its grid and,
    for `grucli tune`, how each grid point (an arm) is searched."""

    name: str
    description: str = ""
    source: str  # the file it came from, for messages
    base: dict[str, Any]  # {"task": ..., "model": ..., "train": ...} after --set overrides
    spec: GridSpec
    search: SearchSpec | None = None  # the search: section (grucli tune), if any
    verdict: VerdictSpec = VerdictSpec()  # the verdict: section: alpha, margins, looks (declared before the data)
    set_by: dict[str, str] = {}  # dotted key -> the --set override that gave it ("train.lr=0.1")


EXPERIMENT_KEYS = {"name", "description", "task", "model", "train", "grid", "zip", "exclude", "include", "seeds",
                   "search", "verdict"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --------------------------------------------------------------------------- loading
class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-3 as a float (YAML 1.1 wants 1.0e-3)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def read_text(path: Path, source: str) -> str:
    """A YAML file's text; one line when it is not UTF-8 text (a binary file) or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{source}: not a text (UTF-8) file: byte {e.start} is 0x{e.object[e.start]:02x}; "
                          "an experiment file is YAML text") from None
    except OSError as e:
        raise ConfigError(f"{source}: cannot read the file ({e.strerror})") from None


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None


def read_mapping(path: Path, what: str = "experiment file", keys: str = "name, task, model, train, ...",
                 empty_ok: bool = False) -> dict:
    """A YAML file's top-level mapping; one line when the file is missing, unreadable,
    malformed (with its line and column) or not a mapping. An empty file is {} if `empty_ok`."""
    source = str(path)
    if not Path(path).is_file():
        raise ConfigError(f"{source}: {what} not found")
    raw = parse_yaml(read_text(Path(path), source), source)
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys ({keys}) at the top level")
    return raw


def typed(cls: type[BaseModel], raw: dict, source: str, prefix: str = "", keys: str = "",
          given: dict[str, str] | None = None):
    """`raw` as the model `cls`, or one ConfigError line per problem naming where it came from
    and the key path (under `prefix`, e.g. "search"): unknown keys with the closest valid one,
    wrong types, impossible values. Where is `source`, or given[key] for a top-level key that
    came from elsewhere (a command-line option)."""
    if not isinstance(raw, dict):
        where = f"{prefix}: " if prefix else ""
        raise ConfigError(f"{source}: {where}expected a mapping" + (f" ({keys})" if keys else ""))
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        origin = given or {}
        raise ConfigError(each_line([f"{origin.get(key.split('.')[0], source)}: {msg}"
                                     for key, msg in validation_problems(e, cls, prefix)])) from None


def load_file(path: str | Path | None, cls: type[BaseModel], what: str, flags: dict[str, str] | None = None,
              **overrides):
    """A config file that is one model (`what` = "bench": a bench file): the file's keys,
    then `overrides` that are not None on top (command-line values; a mistake in one is said
    at its option: flags[key], else --key); no file: overrides only."""
    raw = dict(read_mapping(Path(path), f"{what} file", ", ".join(cls.model_fields), empty_ok=True)) if path else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    raw.update(given)
    return typed(cls, raw, str(path) if path else f"{what} options",
                 given={k: (flags or {}).get(k, f"--{k.replace('_', '-')}") for k in given})


def load_experiment(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    """Read, override and validate an experiment file. Every grid point is validated by
    `grucli.grid.expand`; this checks the file's shape and the grid spec."""
    path = Path(path)
    source = str(path)
    raw = read_mapping(path)
    for key in raw:
        if key not in EXPERIMENT_KEYS:
            raise ConfigError(f"{source}: {unknown_key(str(key), EXPERIMENT_KEYS)}")
    for section in ("task", "model", "train"):
        if raw.get(section) is None:
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{source}: {section}: expected a mapping, got {type(raw[section]).__name__}")
    raw = apply_overrides(raw, overrides, source)
    raw = resolve_paths(raw, path.parent)
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"{source}: name: must be a folder-safe name (letters, digits, _ . -), got {name!r}")
    spec = typed(GridSpec, {k: raw[k] for k in ("grid", "zip", "exclude", "include", "seeds") if raw.get(k) is not None},
                 source)
    search = None
    if raw.get("search") is not None:
        if raw.get("seeds") is not None:
            raise ConfigError(f"{source}: seeds: a tuned experiment takes its seeds from search.seed (trials) and "
                              "search.final_seeds (the final runs); remove seeds")
        search = typed(SearchSpec, raw["search"], source, "search", "trials, sampler, pruner, space, ...")
    verdict = VerdictSpec() if raw.get("verdict") is None else typed(
        VerdictSpec, raw["verdict"], source, "verdict", "alpha, margin, speed_margin, looks")
    base = {k: raw[k] for k in ("task", "model", "train")}
    set_by = {item.split("=", 1)[0].strip(): item for item in overrides}
    return Experiment(name=name, description=str(raw.get("description", "")), source=source, base=base, spec=spec,
                      search=search, verdict=verdict, set_by=set_by)


def section_lines(path: Path) -> dict[str, int]:
    """The line (1-based) of every key under the file's task, model and train sections,
    dotted ("train.lr"), and of the sections themselves, for messages; {} if the file cannot
    be read."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                dotted = f"{prefix}.{key.value}" if prefix else key.value
                lines[dotted] = key.start_mark.line + 1
                if isinstance(value, yaml.MappingNode):
                    walk(value, dotted)

    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value in SECTIONS:
                lines[key.value] = key.start_mark.line + 1
                if isinstance(value, yaml.MappingNode):
                    walk(value, key.value)
    return lines


def apply_overrides(raw: dict, overrides, source: str) -> dict:
    """Apply `dotted.key=value` overrides (values parsed as YAML). A key that is also a
    grid axis fixes that axis to the given value; `grid.<axis>=[...]` gives an axis other
    values (e.g. --set grid.task.seq_len=[10,20])."""
    raw = dict(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected dotted.key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        value = parse_yaml(text, f"--set {key}")
        parts = key.split(".")
        if parts[0] not in EXPERIMENT_KEYS:
            raise ConfigError(f"--set {item}: {unknown_key(parts[0], EXPERIMENT_KEYS)}")
        if len(parts) == 1:
            raw[key] = value
            if key in SECTIONS:  # the whole section is fixed: its grid axes go
                raw = _drop_axes(raw, lambda k: k == key or k.startswith(key + "."))
            continue
        if parts[0] == "search":
            raw["search"] = _set_search(raw.get("search"), parts[1:], value, key)
            continue
        if parts[0] == "grid":
            raw["grid"] = _set_axis(raw.get("grid"), ".".join(parts[1:]), value, key)
            continue
        if parts[0] not in SECTIONS:
            raise ConfigError(f"--set {key}: only task.*, model.*, train.*, search.* and top-level keys can be set")
        raw[parts[0]] = set_dotted(dict(raw.get(parts[0]) or {}), parts[1:], value, parts[0])
        if isinstance(raw.get("search"), dict) and isinstance(raw["search"].get("space"), dict):
            raw["search"] = {**raw["search"], "space": {k: v for k, v in raw["search"]["space"].items() if k != key}}
        grid = _without_section_key(dict(raw.get("grid") or {}), parts)
        if key in grid:
            grid.pop(key)
        if raw.get("grid") is not None:
            raw["grid"] = grid
        zips = []
        for group in raw.get("zip") or []:
            if isinstance(group, dict):
                group = _without_section_key(group, parts)
            if isinstance(group, dict) and key in group:
                keep = [i for i, v in enumerate(group[key]) if v == value]
                if not keep:
                    raise ConfigError(f"--set {key}={text}: value is not among the zip values {group[key]}")
                group = {k: [vals[i] for i in keep] for k, vals in group.items() if k != key}
            if group:
                zips.append(group)
        if raw.get("zip") is not None:
            raw["zip"] = zips
    return raw


SECTIONS = ("task", "model", "train")


def _flow(values) -> str:
    return yaml.safe_dump(values, default_flow_style=True, width=10**6).strip()


def _set_axis(grid, axis: str, value, key: str) -> dict:
    """--set grid.<axis>=[values]: new values for an axis the grid already has."""
    if not isinstance(grid, dict) or axis not in grid:
        axes = ", ".join(map(str, grid)) if isinstance(grid, dict) and grid else "none"
        raise ConfigError(f"--set {key}: '{axis}' is not an axis of this grid (axes: {axes}); grid.<axis> gives an "
                          f"existing axis new values, --set {axis}=value fixes a key")
    if not isinstance(value, list) or not value:
        raise ConfigError(f"--set {key}: expected a non-empty list of values, like the file's {key}="
                          f"{_flow(grid[axis])}")
    return {**grid, axis: value}


def _set_search(search, parts: list[str], value, key: str) -> dict:
    """--set search.trials=4, or search.space.<dotted key>={...} (space keys hold dots)."""
    if not isinstance(search, dict):
        raise ConfigError(f"--set {key}: this experiment has no search: section")
    search = dict(search)
    if parts[0] == "space" and len(parts) > 1:
        search["space"] = {**(search.get("space") or {}), ".".join(parts[1:]): value}
    elif len(parts) == 1:
        search[parts[0]] = value
    else:
        raise ConfigError(f"--set {key}: expected search.<key>=value or search.space.<dotted key>=value")
    return search


def _without_section_key(axes: dict, parts: list[str]) -> dict:
    """A --set of section.key also fixes that key in whole-section values of a grid or zip
    group (`task: [{name: copy, seq_len: 5}, ...]`): each value loses the key, and an axis left
    with only empty values no longer varies anything, so it goes."""
    section = parts[0]
    if len(parts) != 2 or not isinstance(axes.get(section), list):
        return axes
    values = [{k: v for k, v in entry.items() if k != parts[1]} if isinstance(entry, dict) else entry
              for entry in axes[section]]
    rest = {k: v for k, v in axes.items() if k != section}
    return rest if all(v == {} for v in values) else {**rest, section: values}


def _drop_axes(raw: dict, drop) -> dict:
    """Remove grid axes and zip keys whose dotted key satisfies `drop`."""
    if isinstance(raw.get("grid"), dict):
        raw["grid"] = {k: v for k, v in raw["grid"].items() if not drop(k)}
    if isinstance(raw.get("zip"), list):
        groups = [{k: v for k, v in g.items() if not drop(k)} if isinstance(g, dict) else g for g in raw["zip"]]
        raw["zip"] = [g for g in groups if g]
    return raw


def merge_section(section: str, base: dict, value: dict) -> dict:
    """A grid value for a whole section (`grid: {task: [{name: copy, ...}, ...]}`) is laid
    over the base section. When it switches to another task, only the base keys that task
    also has are kept (e.g. n_train), so tasks with different keys can share one grid."""
    if not isinstance(value, dict):
        raise TypeError(f"a grid value for '{section}' must be a mapping, got {value!r}")
    if section == "task":
        name = value.get("name", base.get("name"))
        if name in TASKS and name != base.get("name"):
            fields = TASKS[name].config.model_fields
            base = {k: v for k, v in base.items() if k in fields}
    return {**base, **value}


def resolve_paths(raw: dict, folder: Path) -> dict:
    """Data files (`task.path` and `task.test_path` in the task, a grid, a zip group or an include entry) are
    relative to the experiment file: make them absolute, so runs find them from any
    working directory. (The run id leaves the path out and hashes the file's content.)"""

    def fix(value):
        if isinstance(value, list):
            return [fix(v) for v in value]
        return str((folder / value).resolve()) if isinstance(value, str) and value else value

    def fix_in(entry, prefix=""):
        for key in (f"{prefix}path", f"{prefix}test_path"):
            if isinstance(entry, dict) and key in entry:
                entry = {**entry, key: fix(entry[key])}
        return entry

    def fix_point(entry):  # a grid, zip group or include entry: dotted task.path or whole task sections
        entry = fix_in(entry, "task.")
        if isinstance(entry, dict) and "task" in entry:
            tasks = entry["task"]
            fixed = [fix_in(t) for t in tasks] if isinstance(tasks, list) else fix_in(tasks)
            entry = {**entry, "task": fixed}
        return entry

    raw = {**raw, "task": fix_in(raw.get("task")), "grid": fix_point(raw.get("grid"))}
    for section in ("zip", "include"):
        if isinstance(raw.get(section), list):
            raw[section] = [fix_point(entry) for entry in raw[section]]
    return raw


# Setting one of these keys (by --set or a grid) clears the other: they are alternatives.
ALTERNATIVES = {("model", "param_budget"): "hidden_size", ("model", "hidden_size"): "param_budget"}


def set_dotted(d: dict, parts: list[str], value: Any, section: str | None = None) -> dict:
    """Set d[a][b]... = value for parts [a, b, ...] (copying the dicts on the way)."""
    if section and (section, *parts) in [(s, k) for s, k in ALTERNATIVES] and len(parts) == 1:
        d.pop(ALTERNATIVES[(section, parts[0])], None)
    if len(parts) == 1:
        d[parts[0]] = value
    else:
        d[parts[0]] = set_dotted(dict(d.get(parts[0]) or {}), parts[1:], value)
    return d


class RunConfigError(ConfigError):
    """A run config that does not validate: its `problems`, each (key path, line), said at
    `where`. Who knows where each key came from (grid.expand: the file's line, a grid point
    or a --set) says them there instead (`at`)."""

    def __init__(self, where: str, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(self.at(lambda key: where))

    def at(self, where) -> str:
        """The message with each problem at `where(key)`."""
        return each_line([f"{where(key)}: {msg}" for key, msg in self.problems])


def parse_run(raw: dict, where: str) -> RunConfig:
    """Validate one run's raw dict; errors carry `where` (file, grid point)."""
    try:
        return RunConfig(**raw)
    except ValidationError as e:
        raise RunConfigError(where, validation_problems(e, RunConfig)) from None


# --------------------------------------------------------------------------- messages
def _fields_at(loc: tuple, root: type[BaseModel]) -> set[str] | None:
    """Valid field names of the model at `loc` (with the task's tag resolved; through lists
    and mappings of models, e.g. bench's sizes.0)."""
    cls: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if cls is RunConfig and part == "task":
            if not parts or parts[0] not in TASKS:
                return None
            cls = TASKS[parts.pop(0)].config
            continue
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        model, indexed = _model_in(field.annotation) if field is not None else (None, False)
        if model is None:
            return None
        if indexed and parts:  # list[Model] / dict[str, Model]: skip the index or key
            parts.pop(0)
        cls = model
    return set(cls.model_fields)


def _model_in(annotation) -> tuple[type[BaseModel] | None, bool]:
    """The model an annotation holds (Model, Model | None, list[Model], dict[str, Model]),
    and whether the key path goes through an index or key to reach it."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    if origin in (list, dict, tuple, Union, UnionType):
        found = [m for m in map(_model_in, get_args(annotation)) if m[0] is not None]
        if len(found) == 1:
            return found[0][0], found[0][1] or origin is not Union and origin is not UnionType
    return None, False


def _field_of(loc: tuple, root: type[BaseModel] | None) -> tuple:
    """The part of an error's `loc` that names a field: ('seeds',) for ('seeds', 'list[int]'),
    where pydantic tries each member of a union and reports each failure."""
    if root is not None:
        for i in range(1, len(loc)):
            if root is RunConfig and loc[:i] == ("task",):  # the task's tag: its keys follow
                continue
            if isinstance(loc[i], str) and _fields_at(loc[:i], root) is None and loc[i - 1] in (
                    _fields_at(loc[:i - 1], root) or ()):
                return loc[:i]
    return loc


def _dotted(loc: tuple) -> str:
    parts = [str(p) for i, p in enumerate(loc) if not (i == 1 and loc[0] == "task" and p in TASKS)]
    return ".".join(parts)


def validation_problems(e: ValidationError, root: type[BaseModel] | None = None,
                        prefix: str = "") -> list[tuple[str, str]]:
    """Each problem of a failed validation as (key path, one line naming it), typos first;
    `prefix` is the key path of the section the model was built from (e.g. "search"). A
    required key reported missing because it was misspelt is left out: its typo's line
    already suggests it."""
    errors = sorted(e.errors(include_url=False), key=lambda err: err["type"] != "extra_forbidden")
    meant: set[tuple] = set()  # (loc of a model, field) that a typo there was probably meant to be
    said: set[tuple] = set()  # the fields already named: one line each (a union's members each fail)
    problems = []
    for err in errors:
        loc = tuple(err["loc"])
        field = _field_of(loc, root)
        if field in said:
            continue
        said.add(field)
        key = ".".join(filter(None, [prefix, _dotted(loc)]))
        kind = err["type"]
        if kind == "extra_forbidden":
            valid = _fields_at(loc[:-1], root) if root else None
            msg = unknown_key(key, valid) if valid else f"unknown key '{key}'"
            meant.add((loc[:-1], closest_key(str(loc[-1]), valid or ())))
        elif kind == "union_tag_invalid":
            key, msg = f"{key}.name", f"{key}.name: {unknown_name('task', err['input'].get('name'), TASKS)}"
        elif kind == "union_tag_not_found":
            key, msg = f"{key}.name", f"{key}.name: missing (valid tasks: {', '.join(sorted(TASKS))})"
        elif kind == "missing":
            if (loc[:-1], loc[-1]) in meant:
                continue
            msg = f"{key}: missing required key"
        else:
            text = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            plain = isinstance(got, (dict, list)) or got is None or kind == "value_error"
            shown = "" if plain else f" (got {got!r})"
            msg = f"{key}: {text}{shown}" if key else f"{text}{shown}"
        problems.append((key, msg))
    return problems
