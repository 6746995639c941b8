"""Grid expansion (cartesian, seeds, zip, exclude, include) and run ids."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from grucli.config import load_experiment
from grucli.errors import ConfigError
from grucli.grid import describe, expand, run_id


def runs_of(write_yaml, exp, overrides=()):
    return expand(load_experiment(write_yaml(exp), overrides))


def settings(runs, *keys):
    """(value of each dotted key, seed) per run."""
    out = []
    for r in runs:
        cfg = r.config.model_dump()
        values = []
        for key in keys:
            node = cfg
            for part in key.split("."):
                node = node[part]
            values.append(node)
        out.append((*values, r.config.seed))
    return out


def test_no_grid_is_one_run(write_yaml, tiny_experiment):
    (run,) = runs_of(write_yaml, tiny_experiment())
    assert run.index == 1 and run.varied == {} and run.config.seed == 0


def test_empty_grid_mapping_is_one_run(write_yaml, tiny_experiment):
    assert len(runs_of(write_yaml, tiny_experiment(grid={}))) == 1


def test_cartesian_product_in_key_order(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml, tiny_experiment(grid={"model.cell": ["rnn", "gru", "lstm"], "task.seq_len": [8, 12]}))
    assert settings(runs, "model.cell", "task.seq_len") == [
        ("rnn", 8, 0), ("rnn", 12, 0), ("gru", 8, 0), ("gru", 12, 0), ("lstm", 8, 0), ("lstm", 12, 0)]
    assert [r.index for r in runs] == [1, 2, 3, 4, 5, 6]
    assert runs[3].varied == {"model.cell": "gru", "task.seq_len": 12}
    assert len({r.run_id for r in runs}) == 6


def test_seeds_as_count(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml, tiny_experiment(grid={"model.cell": ["gru", "lstm"]}, seeds=3))
    assert settings(runs, "model.cell") == [("gru", 0), ("gru", 1), ("gru", 2), ("lstm", 0), ("lstm", 1), ("lstm", 2)]


def test_seeds_as_list(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml, tiny_experiment(seeds=[7, 42]))
    assert [r.config.seed for r in runs] == [7, 42]


def test_zip_varies_keys_together(write_yaml, tiny_experiment):
    exp = tiny_experiment(grid={"task.seq_len": [8, 12]},
                          zip=[{"model.cell": ["gru", "lstm"], "model.hidden_size": [5, 4]}])
    runs = runs_of(write_yaml, exp)
    assert sorted(settings(runs, "task.seq_len", "model.cell", "model.hidden_size")) == [
        (8, "gru", 5, 0), (8, "lstm", 4, 0), (12, "gru", 5, 0), (12, "lstm", 4, 0)]


def test_exclude_drops_matching_points(write_yaml, tiny_experiment):
    exp = tiny_experiment(grid={"model.cell": ["gru", "lstm"], "task.seq_len": [8, 12]},
                          exclude=[{"model.cell": "lstm", "task.seq_len": 12}])
    runs = runs_of(write_yaml, exp)
    assert settings(runs, "model.cell", "task.seq_len") == [("gru", 8, 0), ("gru", 12, 0), ("lstm", 8, 0)]


def test_exclude_on_one_key_drops_every_point_with_it(write_yaml, tiny_experiment):
    exp = tiny_experiment(grid={"model.cell": ["gru", "lstm"], "task.seq_len": [8, 12]},
                          exclude=[{"model.cell": "lstm"}])
    assert {r.config.model.cell for r in runs_of(write_yaml, exp)} == {"gru"}


def test_include_adds_points_once(write_yaml, tiny_experiment):
    exp = tiny_experiment(grid={"model.cell": ["gru", "lstm"]},
                          include=[{"model.cell": "rnn", "model.hidden_size": 6}, {"model.cell": "gru"}])
    runs = runs_of(write_yaml, exp)
    assert settings(runs, "model.cell", "model.hidden_size") == [("gru", 4, 0), ("lstm", 4, 0), ("rnn", 6, 0)]


def test_grid_over_param_budget_clears_base_hidden_size(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml, tiny_experiment(model={"hidden_size": 4}, grid={"model.param_budget": [300, 600]}))
    assert settings(runs, "model.param_budget", "model.hidden_size") == [(300, None, 0), (600, None, 0)]


def test_describe_lists_varied_keys_and_seed(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml, tiny_experiment(grid={"model.cell": ["gru"], "task.seq_len": [12]}, seeds=[3]))
    assert describe(runs[0]) == "model.cell=gru task.seq_len=12 seed=3"


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("extra,text", [
    ({"zip": [{"model.cell": ["gru", "lstm"], "model.hidden_size": [4]}]}, "equal length"),
    ({"grid": {"model.cel": ["gru"]}}, "did you mean 'model.cell'"),
    ({"grid": {"modl.cell": ["gru"]}}, "modl.cell"),
    ({"grid": {"cell": ["gru"]}}, "'cell'"),
    ({"grid": {"model.cell": []}}, "model.cell"),
    ({"grid": {"model.cell": ["gru"]}, "exclude": [{"model.cell": "gru"}]}, "empty"),
    ({"exclude": [{"model.cell": "gru"}]}, "model.cell"),
    ({"grid": {"model.cell": ["gru", "bogus"]}}, "model.cell=bogus"),
    ({"grid": {"model.hidden_size": [4, 0]}}, "model.hidden_size"),
    ({"grid": {"model.cell": ["gru"]}, "zip": [{"model.cell": ["lstm"]}]}, "model.cell"),
])
def test_bad_grids_are_config_errors_naming_the_file(write_yaml, tiny_experiment, extra, text):
    path = write_yaml(tiny_experiment(**extra))
    with pytest.raises(ConfigError) as info:
        expand(load_experiment(path))
    message = str(info.value)
    assert str(path) in message and text in message and "\n" not in message


def test_every_grid_point_is_validated_before_anything_runs(write_yaml, tiny_experiment):
    """The bad point is the last one: expansion must still reject the whole grid."""
    path = write_yaml(tiny_experiment(grid={"model.dropout": [0.0, 0.5, 1.5]}))
    with pytest.raises(ConfigError, match=r"model\.dropout=1\.5"):
        expand(load_experiment(path))


# --------------------------------------------------------------------------- run ids
def test_run_id_is_stable_for_the_same_config(write_yaml, tiny_experiment):
    exp = tiny_experiment(grid={"model.cell": ["gru", "lstm"]}, seeds=2)
    first = [r.run_id for r in runs_of(write_yaml, exp)]
    second = [r.run_id for r in runs_of(write_yaml, exp)]
    assert first == second
    assert len(set(first)) == 4


def test_run_id_ignores_key_order_in_the_file(write_yaml, tiny_experiment):
    exp = tiny_experiment()
    shuffled = {k: (dict(reversed(list(v.items()))) if isinstance(v, dict) else v) for k, v in reversed(exp.items())}
    assert runs_of(write_yaml, exp)[0].run_id == runs_of(write_yaml, shuffled)[0].run_id


def test_run_id_changes_with_the_seed(write_yaml, tiny_experiment):
    a, b = runs_of(write_yaml, tiny_experiment(seeds=[0, 1]))
    assert a.run_id != b.run_id
    assert a.run_id == run_id(a.config)


@pytest.mark.parametrize("override", ["train.lr=0.01", "task.seq_len=9", "task.data_seed=1", "model.cell=lstm",
                                      "model.hidden_size=5", "train.epochs=3", "model.forget_bias=0.0"])
def test_run_id_changes_with_what_is_computed(write_yaml, tiny_experiment, override):
    (base,) = runs_of(write_yaml, tiny_experiment())
    (changed,) = runs_of(write_yaml, tiny_experiment(), [override])
    assert base.run_id != changed.run_id


@pytest.mark.parametrize("override", ["train.device=cpu", "train.threads=2"])
def test_run_id_ignores_device_and_threads(write_yaml, tiny_experiment, override):
    exp = tiny_experiment(train={"device": "auto", "threads": 1})
    (base,) = runs_of(write_yaml, exp)
    (moved,) = runs_of(write_yaml, exp, [override])
    assert moved.config.train != base.config.train  # the override took effect
    assert moved.run_id == base.run_id


def test_run_id_is_the_same_in_another_process(write_yaml, tiny_experiment):
    """No dependence on Python's per-process hash seed or dict order."""
    path = write_yaml(tiny_experiment(grid={"model.cell": ["gru", "lstm"]}))
    here = [r.run_id for r in expand(load_experiment(path))]
    code = ("import sys; from grucli.config import load_experiment; from grucli.grid import expand; "
            "print(' '.join(r.run_id for r in expand(load_experiment(sys.argv[1]))))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    assert out.stdout.split() == here


def test_run_ids_of_shipped_experiments_are_pinned():
    """Run ids as issued before task.data_seed could be per_seed (computed on main at 70f9e2d):
    a results folder made then must keep its runs (they are found by id)."""
    runs = expand(load_experiment("experiments/long_dependency.yaml"))
    assert [r.run_id for r in runs[:4]] == ["08b5c9f4cc35", "ea3f242ff3c7", "7e81c0d2f1ab", "34239fbb7b0c"]
    assert len(runs) == 54 and runs[-1].run_id == "1eee2c18f77c"
    assert [r.run_id for r in expand(load_experiment("experiments/copy.yaml"))] == ["04cb522b0a4d"]


def with_data_seed(exp: dict, value) -> dict:
    exp["task"]["data_seed"] = value
    return exp


def test_per_seed_data_seed_is_each_runs_seed(write_yaml, tiny_experiment):
    fixed = runs_of(write_yaml, tiny_experiment(seeds=[0, 1, 5]))
    per_seed = runs_of(write_yaml, with_data_seed(tiny_experiment(seeds=[0, 1, 5]), "per_seed"))
    assert [r.config.task.data_seed for r in per_seed] == [0, 1, 5]  # a concrete int, hashed into the id
    assert [r.config.task.data_seed for r in fixed] == [0, 0, 0]
    assert {r.config.data_seed_given for r in per_seed} == {"per_seed"}
    assert {r.config.data_seed_given for r in fixed} == {0}
    assert len({r.run_id for r in per_seed}) == 3 and all(r.run_id == run_id(r.config) for r in per_seed)
    # seed 0 with per_seed computes what data_seed 0 does: the same run; other seeds differ
    assert per_seed[0].run_id == fixed[0].run_id and per_seed[1].run_id != fixed[1].run_id


def test_per_seed_as_a_grid_value_and_an_override(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml, tiny_experiment(grid={"task.data_seed": [3, "per_seed"]}, seeds=2))
    assert [(r.config.task.data_seed, r.config.seed) for r in runs] == [(3, 0), (3, 1), (0, 0), (1, 1)]
    assert len(runs) == 4  # per_seed with seed 0 is not data_seed 3 with seed 0
    (one,) = runs_of(write_yaml, tiny_experiment(seeds=[7]), ["task.data_seed=per_seed"])
    assert one.config.task.data_seed == 7


@pytest.mark.parametrize("value", ["banana", True, 1.5, None])
def test_a_bad_data_seed_is_one_line_naming_the_key_and_the_choices(write_yaml, tiny_experiment, value):
    with pytest.raises(ConfigError) as e:
        runs_of(write_yaml, with_data_seed(tiny_experiment(), value))
    msg = str(e.value)
    assert "task.data_seed: a whole number (the seed of the data) or per_seed" in msg and "\n" not in msg
    assert repr(value) in msg


def test_expansion_validates_a_point_once_yet_equals_each_run_validated_and_hashed_alone(write_yaml, tiny_experiment):
    """expand validates one config per grid point and writes each seed into its canonical
    JSON (a 100,000-run dry run took ~8 s doing both per run): every run must still equal
    the run validated on its own, with the id run_id gives it."""
    from grucli.config import parse_run
    from grucli.grid import point_config

    exp = load_experiment(write_yaml(tiny_experiment(seeds=[7, 0, 123456, 3],
                                                     grid={"model.cell": ["gru", "lstm"], "train.lr": [0.01, 0.1]})))
    runs = expand(exp)
    assert len(runs) == 16 and len({r.run_id for r in runs}) == 16
    for r in runs:
        alone = parse_run({**point_config(exp, r.varied), "seed": r.config.seed}, "x")
        assert r.config == alone and r.config.model_dump() == alone.model_dump()
        assert r.run_id == run_id(alone)
