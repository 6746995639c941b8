"""Typed config: every class of bad input is one line naming the file and the key path,
and `--set` overrides go through the same validation."""

from __future__ import annotations

import pytest

from grucli.config import load_experiment
from grucli.errors import ConfigError
from grucli.grid import expand


def runs_of(path, overrides=()):
    return expand(load_experiment(path, overrides))


def error_of(path, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        runs_of(path, overrides)
    message = str(info.value)
    assert "\n" not in message, "one config mistake is one line"
    return message


# (id, changes to the tiny experiment, key path the message must name, other text it must hold)
BAD_VALUES = [
    ("unknown model key", {"model": {"hiden_size": 4}}, "model.hiden_size", "did you mean 'model.hidden_size'"),
    ("unknown task key", {"task": {"seq_lenn": 5}}, "task.seq_lenn", "did you mean 'task.seq_len'"),
    ("unknown train key", {"train": {"grad_clp": 1.0}}, "train.grad_clp", "did you mean 'train.grad_clip'"),
    ("unknown top-level key", {"seedz": 3}, "seedz", "did you mean 'seeds'"),
    ("int given a string", {"model": {"hidden_size": "abc"}}, "model.hidden_size", "abc"),
    ("int given a fraction", {"model": {"hidden_size": 4.5}}, "model.hidden_size", "4.5"),
    ("float given a string", {"train": {"lr": "fast"}}, "train.lr", "fast"),
    ("section given a list", {"model": [1, 2]}, "model", "mapping"),
    ("hidden_size 0", {"model": {"hidden_size": 0}}, "model.hidden_size", ""),
    ("dropout 1.5", {"model": {"dropout": 1.5}}, "model.dropout", ""),
    ("negative lr", {"train": {"lr": -0.1}}, "train.lr", ""),
    ("num_layers 0", {"model": {"num_layers": 0}}, "model.num_layers", ""),
    ("seq_len 1 for adding", {"task": {"seq_len": 1}}, "task.seq_len", ""),
    ("unknown cell", {"model": {"cell": "gruu"}}, "model.cell", "did you mean 'gru'"),
    ("unknown task", {"task": {"name": "addin"}}, "task.name", "did you mean 'adding'"),
    ("unknown optimizer", {"train": {"optimizer": "adamw"}}, "train.optimizer", "adam"),
    ("unknown device", {"train": {"device": "gpu"}}, "train.device", "cuda"),
    ("both hidden_size and param_budget", {"model": {"hidden_size": 8, "param_budget": 500}}, "model",
     "param_budget"),
    ("counting test not beyond train", {"task": {"max_n_test": 3}}, "task", "max_n_test"),
    ("seeds 0", {"seeds": 0}, "seeds", ""),
    ("repeated seeds", {"seeds": [1, 1]}, "seeds", ""),
    ("name with a space", {"name": "a b"}, "name", ""),
]


@pytest.mark.parametrize("changes,key,text", [c[1:] for c in BAD_VALUES], ids=[c[0] for c in BAD_VALUES])
def test_bad_value_names_file_and_key_path(write_yaml, tiny_experiment, changes, key, text):
    exp = tiny_experiment("counting" if "max_n_test" in changes.get("task", {}) else "adding")
    for section, value in changes.items():
        if isinstance(value, dict) and isinstance(exp.get(section), dict):
            exp[section].update(value)
        else:
            exp[section] = value
    path = write_yaml(exp)
    message = error_of(path)
    assert str(path) in message
    assert key in message
    assert text in message


@pytest.mark.parametrize("changes,key", [({"model": {"hidden_size": True}}, "model.hidden_size"),
                                         ({"seeds": True}, "seeds")])
def test_a_boolean_is_not_an_integer(write_yaml, tiny_experiment, changes, key):
    exp = tiny_experiment()
    for section, value in changes.items():
        exp[section].update(value) if isinstance(value, dict) else exp.__setitem__(section, value)
    assert key in error_of(write_yaml(exp))


def test_unknown_cell_lists_the_valid_ones(write_yaml, tiny_experiment):
    message = error_of(write_yaml(tiny_experiment(model={"cell": "transformer"})))
    for cell in ("rnn", "gru", "lstm"):
        assert cell in message


def test_unknown_key_without_a_close_match_lists_valid_keys(write_yaml, tiny_experiment):
    message = error_of(write_yaml(tiny_experiment(model={"zzzzzz": 1})))
    assert "model.zzzzzz" in message and "hidden_size" in message


def test_malformed_yaml_names_file_and_line(write_yaml):
    path = write_yaml("name: t\ntask:\n  name: adding\n   seq_len: 3\n")
    message = error_of(path)
    assert "malformed YAML" in message
    assert f"{path}:4:" in message  # the offending line


def test_unclosed_flow_mapping_is_malformed(write_yaml):
    assert "malformed YAML" in error_of(write_yaml("name: t\ntask: {name: adding\n"))


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_a_mapping(write_yaml, text):
    path = write_yaml(text)
    assert str(path) in error_of(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    message = error_of(path)
    assert str(path) in message and "not found" in message


def test_task_name_missing(write_yaml, tiny_experiment):
    exp = tiny_experiment()
    del exp["task"]["name"]
    assert "task.name" in error_of(write_yaml(exp))


def test_yaml_1_1_exponent_floats_are_read_as_numbers(write_yaml, tiny_experiment):
    path = write_yaml("name: t\ntask: {name: adding, seq_len: 8}\ntrain: {lr: 1e-3, weight_decay: 5e-5}\n")
    (run,) = runs_of(path)
    assert run.config.train.lr == pytest.approx(1e-3)
    assert run.config.train.weight_decay == pytest.approx(5e-5)


# --------------------------------------------------------------------------- --set overrides
def test_set_overrides_keys_with_yaml_typed_values(write_yaml, tiny_experiment):
    path = write_yaml(tiny_experiment())
    (run,) = runs_of(path, ["model.cell=lstm", "task.seq_len=20", "train.lr=2e-3", "model.bidirectional=true"])
    assert run.config.model.cell == "lstm"
    assert run.config.task.seq_len == 20
    assert run.config.train.lr == pytest.approx(2e-3)
    assert run.config.model.bidirectional is True


def test_set_top_level_seeds(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml(tiny_experiment()), ["seeds=3"])
    assert [r.config.seed for r in runs] == [0, 1, 2]


@pytest.mark.parametrize("override,key", [
    ("model.hidden_size=0", "model.hidden_size"),
    ("model.cell=gruu", "model.cell"),
    ("train.lr=fast", "train.lr"),
    ("task.name=addin", "task.name"),
])
def test_set_values_are_validated_like_the_file(write_yaml, tiny_experiment, override, key):
    assert key in error_of(write_yaml(tiny_experiment()), [override])


@pytest.mark.parametrize("override,text", [
    ("model.hiden_size=3", "did you mean 'model.hidden_size'"),
    ("modle.cell=gru", "did you mean 'model'"),
])
def test_set_unknown_key_suggests_the_closest(write_yaml, tiny_experiment, override, text):
    assert text in error_of(write_yaml(tiny_experiment()), [override])


def test_set_grid_axis_gives_an_axis_other_values(write_yaml, tiny_experiment):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["rnn", "gru"], "task.seq_len": [5, 6]}))
    runs = runs_of(path, ["grid.task.seq_len=[7, 8, 9]"])
    assert sorted({r.config.task.seq_len for r in runs}) == [7, 8, 9]
    assert {r.config.model.cell for r in runs} == {"rnn", "gru"}


@pytest.mark.parametrize("override,text", [
    ("grid.model.dropout=[0.1]", "'model.dropout' is not an axis of this grid (axes: model.cell, task.seq_len)"),
    ("grid.task.seq_len=7", "expected a non-empty list"),
])
def test_set_grid_axis_errors_name_the_axes(write_yaml, tiny_experiment, override, text):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["rnn", "gru"], "task.seq_len": [5, 6]}))
    assert text in error_of(path, [override])


def test_set_without_equals_sign(write_yaml, tiny_experiment):
    message = error_of(write_yaml(tiny_experiment()), ["model.cell"])
    assert "--set model.cell" in message and "key=value" in message


def test_set_of_a_grid_axis_fixes_it(write_yaml, tiny_experiment):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["rnn", "gru", "lstm"], "task.seq_len": [8, 10]}))
    assert len(runs_of(path)) == 6
    runs = runs_of(path, ["model.cell=lstm"])
    assert [r.config.model.cell for r in runs] == ["lstm", "lstm"]
    assert sorted(r.config.task.seq_len for r in runs) == [8, 10]
    assert all("model.cell" not in r.varied for r in runs)


def test_set_to_a_value_outside_the_grid_axis_still_fixes_it(write_yaml, tiny_experiment):
    runs = runs_of(write_yaml(tiny_experiment(grid={"model.cell": ["gru", "lstm"]})), ["model.cell=rnn"])
    assert [r.config.model.cell for r in runs] == ["rnn"]


def test_set_of_a_zip_key_keeps_the_matching_column(write_yaml, tiny_experiment):
    exp = tiny_experiment(zip=[{"model.cell": ["gru", "lstm"], "model.hidden_size": [4, 6]}])
    (run,) = runs_of(write_yaml(exp), ["model.cell=lstm"])
    assert (run.config.model.cell, run.config.model.hidden_size) == ("lstm", 6)


def test_set_param_budget_clears_hidden_size(write_yaml, tiny_experiment):
    (run,) = runs_of(write_yaml(tiny_experiment(model={"hidden_size": 4})), ["model.param_budget=300"])
    assert run.config.model.param_budget == 300
    assert run.config.model.hidden_size is None


def test_set_hidden_size_clears_param_budget(write_yaml, tiny_experiment):
    exp = tiny_experiment()
    exp["model"] = {"cell": "gru", "param_budget": 300}
    (run,) = runs_of(write_yaml(exp), ["model.hidden_size=5"])
    assert (run.config.model.hidden_size, run.config.model.param_budget) == (5, None)


def test_run_config_is_frozen(write_yaml, tiny_experiment):
    (run,) = runs_of(write_yaml(tiny_experiment()))
    with pytest.raises(Exception):
        run.config.model.hidden_size = 99


# --------------------------------------------------------------------------- where a mistake came from
def test_a_set_typo_is_blamed_on_the_set_not_on_the_file_or_a_grid_point(write_yaml, tiny_experiment):
    """(A new user's `--set train.lrr=0.1` was reported as the file's, at one grid point.)"""
    exp = tiny_experiment(zip=[{"model.cell": ["gru", "lstm"], "train": [{"epochs": 1}, {"epochs": 2}]}])
    assert error_of(write_yaml(exp), ["train.lrr=0.1"]) == \
        "--set train.lrr=0.1: unknown key 'train.lrr' (did you mean 'train.lr'?)"
    assert error_of(write_yaml(exp), ["trian.lr=0.1"]) == "--set trian.lr=0.1: unknown key 'trian' (did you mean 'train'?)"


def test_a_base_section_mistake_is_reported_at_its_line_without_a_grid_point(write_yaml):
    path = write_yaml("name: t\ntask: {name: adding, seq_len: 5}\nmodel:\n  hidden_size: 4\ntrain:\n  epochs: 1\n"
                      "  lrr: 0.01\ngrid:\n  model.cell: [gru, lstm]\n")
    assert error_of(path) == f"{path}:7: unknown key 'train.lrr' (did you mean 'train.lr'?)"


def test_a_grid_point_s_own_mistake_names_the_point(write_yaml, tiny_experiment):
    message = error_of(write_yaml(tiny_experiment(grid={"model.dropout": [0.0, 1.5]})))
    assert "[grid point model.dropout=1.5]: model.dropout:" in message


def test_several_mistakes_are_one_line_each_where_each_came_from(write_yaml):
    path = write_yaml("name: t\ntask: {name: adding, seq_len: 5}\nmodel:\n  hidden_size: 4\n  dropot: 0.1\n"
                      "train:\n  lrr: 0.01\ngrid:\n  model.cell: [gru, lstm]\n")
    with pytest.raises(ConfigError) as info:
        runs_of(path, ["train.lr=fast"])
    assert str(info.value).splitlines() == [
        f"{path}:5: unknown key 'model.dropot' (did you mean 'model.dropout'?)",
        f"{path}:7: unknown key 'train.lrr' (did you mean 'train.lr'?)",
        "--set train.lr=fast: train.lr: Input should be a valid number (got 'fast')"]
