"""Run (what is missing of) a claim's experiments and evaluate the claim.

Each file under experiments/claims/ is one of three kinds, told by its top-level keys:
a tuned experiment (a `search:` section: grucli.tune.run), a plain grid (a `task:`:
grucli.experiment.run) or a bench config (neither: grucli.bench, the step-time claims).
Grids and studies resume by run id like `grucli compare` / `grucli tune`; a bench whose
bench.csv exists is read, not re-timed. `quick` applies the claim's small overrides and
keeps the results apart (name + "_quick"), so a first look never mixes with the real one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grucli.claims import Claim
from grucli.errors import ConfigError, GrucliError

QUICK_SUFFIX = "_quick"


@dataclass
class Outcome:
    """One claim, evaluated (or why not)."""

    claim: Claim
    dirs: list[Path]
    evidence: object | None = None  # grucli.claims.evidence.Evidence
    missing: list[Path] = field(default_factory=list)  # results folders with nothing to read yet
    error: str | None = None  # the evaluator could not read what is there (one line)
    incomplete: str | None = None  # e.g. "12 of 36 runs finished": judged on what is there, and said so


def _top(path: Path) -> dict:
    """The file's top-level mapping (read once per call site that needs kind and name)."""
    from grucli.config import parse_yaml, read_text

    raw = parse_yaml(read_text(path, str(path)), str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return raw


def kind_of(path: Path, raw: dict | None = None) -> str:
    """'tune' | 'grid' | 'bench' from the file's top-level keys."""
    raw = _top(path) if raw is None else raw
    if "search" in raw:
        return "tune"
    return "grid" if "task" in raw else "bench"


def name_of(path: Path, quick: bool, raw: dict | None = None) -> str:
    """The results folder name: the experiment's `name:` (a bench: claims_<file stem>)."""
    raw = _top(path) if raw is None else raw
    base = f"claims_{path.stem}" if kind_of(path, raw) == "bench" else str(raw.get("name") or path.stem)
    return base + (QUICK_SUFFIX if quick else "")


def overrides(claim: Claim, kind: str, quick: bool, path: Path) -> list[str]:
    if kind == "bench" or not quick:
        return []
    return [f"name={name_of(path, quick)}", *claim.quick]


def results_dirs(claim: Claim, results: Path, quick: bool, root: Path) -> list[Path]:
    return [results / name_of(p, quick) for p in claim.paths(root)]


def check(claim: Claim, path: Path, quick: bool) -> None:
    """Load and validate one experiment file as it would run (nothing read or written in
    results/): `grucli claims` checks every file before it trains the first."""
    kind = kind_of(path)
    if kind == "bench":
        from grucli import bench

        bench.load_bench_config(path, **_bench_quick(claim, quick))
        return
    from grucli.config import load_experiment
    from grucli.grid import expand

    exp = load_experiment(path, overrides(claim, kind, quick, path))
    if kind == "grid":
        expand(exp)


def _bench_quick(claim: Claim, quick: bool) -> dict:
    """The claim's quick overrides of a bench config (key=YAML value)."""
    from grucli.config import parse_yaml

    return {k: parse_yaml(v, f"quick {k}") for k, v in (i.split("=", 1) for i in (claim.quick if quick else ()))}


def run_experiment(claim: Claim, path: Path, results: Path, *, quick: bool, executor: str = "local",
                   jobs: int | None = None, threads: int | None = None, reporter=None, on_round=None,
                   pack: int | None = None, until_decided: bool = False) -> Path:
    """Train / tune / time what is missing of one experiment; returns its results folder.
    `until_decided`: a plain grid adds seeds look by look to its undecided settings
    (grucli.experiment.run_until_decided); studies and benches run as they are."""
    kind = kind_of(path)
    if kind == "bench":
        return _bench(claim, path, results, quick, on_round)
    if kind == "tune":
        from grucli.tune import run as tuning

        return tuning.run(path, overrides(claim, kind, quick, path), results=results, executor=executor, jobs=jobs,
                          threads=threads, reporter=reporter, pack=pack).exp_dir
    from grucli import experiment

    if until_decided:
        er, _ = experiment.run_until_decided(path, overrides(claim, kind, quick, path), results=results,
                                             executor=executor, jobs=jobs, threads=threads, reporter=reporter, pack=pack)
        return er.exp_dir
    return experiment.run(path, overrides(claim, kind, quick, path), results=results, executor=executor, jobs=jobs,
                          threads=threads, reporter=reporter, pack=pack).exp_dir


def _bench(claim: Claim, path: Path, results: Path, quick: bool, on_round) -> Path:
    import pandas as pd

    from grucli import bench
    from grucli.store import atomic_write_text

    out = results / name_of(path, quick)
    cfg = bench.load_bench_config(path, **_bench_quick(claim, quick))
    wanted = json.dumps(cfg.model_dump(), sort_keys=True)
    done = out / "bench_config.json"
    if (out / "bench.csv").is_file() and done.is_file() and done.read_text() == wanted:
        return out  # timed with this very config: read, not re-timed (an edited file is timed again)
    rows, _ = bench.run_bench(cfg, on_round=on_round)
    atomic_write_text(out / "bench.csv", pd.DataFrame(rows).to_csv(index=False))  # a killed bench leaves none
    atomic_write_text(done, wanted)
    return out


def evaluate(claim: Claim, results: Path, *, quick: bool, root: Path) -> Outcome:
    """Read the claim's results and judge it; missing results are reported, not guessed."""
    from grucli.claims import evidence

    dirs = results_dirs(claim, results, quick, root)
    out = Outcome(claim, dirs)
    out.missing = [d for d in dirs if not _has_results(d)]
    if out.missing:
        return out
    try:
        parts = [progress(claim, p, results, quick) for p in claim.paths(root)]
    except GrucliError as e:  # e.g. a study made from another version of the file: said, never mixed
        out.error = str(e)
        return out
    done, total = sum(d for d, *_ in parts), sum(t for _, t, _ in parts)
    if done < total:
        out.incomplete = f"{done} of {total} runs finished"
    sources = [evidence.Source(d, ids) for d, (_, _, ids) in zip(dirs, parts)]
    try:
        out.evidence = evidence.EVALUATORS[claim.id](sources, claim.cells)
    except FileNotFoundError as e:
        out.missing = [Path(str(e).split(":")[0])]
    except (KeyError, ValueError, IndexError) as e:  # results of another shape (e.g. an edited file)
        out.error = f"{type(e).__name__}: {e}"
    return out


def progress(claim: Claim, path: Path, results: Path, quick: bool) -> tuple[int, int, frozenset[str] | None]:
    """(finished, planned, the grid's run ids) of one experiment, read from its results
    folder without training: trials and final runs for a study (run ids None: its manifest
    says which), a bench counts as one."""
    kind = kind_of(path)
    if kind == "bench":
        return int((results / name_of(path, quick) / "bench.csv").is_file()), 1, None
    if kind == "tune":
        from grucli import store
        from grucli.tune.run import open_tune

        tr, _ = open_tune(path, overrides(claim, kind, quick, path), results)
        s = tr.search
        finals = sum(store.read_summary(tr.exp_dir / rid) is not None for a in tr.arms for rid in a.finals)
        return (sum(min(a.done, s.trials) for a in tr.arms) + finals,
                len(tr.arms) * (s.trials + len(s.final_seed_list())), None)
    from grucli.experiment import open_experiment

    er = open_experiment(path, overrides(claim, kind, quick, path), results)
    return er.finished, len(er.runs), frozenset(er.run_ids)


def _has_results(d: Path) -> bool:
    if (d / "bench.csv").is_file():
        return True
    from grucli.store import reader

    return d.is_dir() and any(reader.is_run_dir(p) for p in d.iterdir())
