"""`grucli tune`: every arm of a grid (e.g. each cell) tuned at the same budget of trials,
then its best configuration re-trained on fresh seeds and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from grucli.commands.common import ProgressReporter, at_least_one, clean_errors, console, device_overrides, PACK_HELP
from grucli.errors import GrucliError
from grucli.numbers import NONE, interval, num


def print_study(tr, pack: int | None = 1, jobs: int | None = None) -> None:
    """What a study will do: its arms, budget, space, and each arm's trials done and to run."""
    from grucli import runtime
    from grucli.train import packing
    from grucli.tune.run import trial_shapes

    s = tr.search
    guard = ", held while every trial sits on the baseline" if s.plateau == "wait" else ""
    prune = "no pruning" if s.pruner == "none" else f"{s.pruner} pruning{guard}"
    size = packing.size(pack, trial_shapes(tr), jobs or runtime.usable_cores())
    packed = f"; packs of up to {size} trials of one shape" if size > 1 else ""
    console.print(f"{tr.experiment.name}: {len(tr.arms)} arm(s) x {s.trials} trials ({s.sampler} sampler, {prune}), "
                  f"then {len(s.final_seed_list())} final seeds per arm{packed}; study: {tr.exp_dir / 'tune.db'}")
    for key, dist in s.space.items():
        console.print(f"  search {key}: {dist.describe()}")
    for a in tr.arms:
        extra = f" ({a.interrupted} interrupted by a kill: retried with the same parameters)" if a.interrupted else ""
        best = "" if not a.best else f"; best so far trial {a.best['trial']}: validation {num(a.best['value'], 4)}"
        console.print(f"  arm {a.arm.label}: {a.done}/{s.trials} trials done, {max(0, s.trials - a.done)} to run"
                      f"{extra}{best}")


def render_tuned(exp_dir: Path) -> None:
    """The tuned comparison: one row per arm, then the verdict lines with their budget."""
    from grucli.tune import analysis

    t = analysis.load(exp_dir)
    comp = analysis.comparison(t)
    if comp.empty:
        return
    keys = [c for c in comp.columns if c.startswith("best.")]
    table = Table(title=f"tuned comparison, {t.manifest['name']}: each arm at its best", title_justify="left")
    for col in ("arm", "trials", "pruned", "failed", f"best val {t.select}",
                *[k.removeprefix("best.").split(".")[-1] for k in keys], "params", f"test {t.metric} [95% CI]", "n"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for r in comp.to_dict("records"):
        table.add_row(analysis.short_label(r["arm"]), str(r["trials"]), str(r["pruned"]), str(r["failed"] + r["diverged"]),
                      num(r["best_val"], 4), *[num(r[k]) for k in keys], num(r["params"]),
                      interval(r["test_centre"], r["test_lo"], r["test_hi"]) if r["final_n"] else NONE, str(r["final_n"]))
    console.print(table)
    console.print(f"[bold]Answer[/], at an equal budget of {escape(analysis.budget_text(t))}:")
    for line in analysis.answer(t):
        console.print(f"  {escape(line)}")


@clean_errors
def tune(
    experiment: Path = typer.Argument(..., help="Experiment YAML with a search: section (see experiments/tune_adding.yaml)."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a key: --set search.trials=8 (repeatable)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Parallel workers (default: usable cores)."),
    executor: str = typer.Option("local", "--executor", "-e", help="local (process pool) | ray."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address HOST:PORT (with --executor ray)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each arm, the space and trials done / to run; train nothing."),
    results: Path = typer.Option(Path("results"), "--results", "-o", help="Results root folder."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (overrides train.device)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per worker (default 1)."),
    pack: str = typer.Option("auto", "--pack", help=PACK_HELP),
    until_decided: bool = typer.Option(False, "--until-decided", help=(
        "Final seeds in the looks of the experiment's verdict: section (default 4, 6, 9, 12 per arm), stopping at "
        "the first look where every pair of arms is decided (Pocock's per-look level).")),
) -> None:
    """Tune each cell (every arm of the grid) with the same budget of trials, then compare.

    Every arm of the grid (model.cell: [rnn, gru, lstm], say) gets the same number
    of trials from the same search space (Optuna: TPE / random / grid sampler, ASHA,
    Hyperband or median pruning, held while every trial of the arm still sits on the trivial
    baseline; one study per arm in results/<name>/tune.db), then train each arm's
    best configuration on fresh seeds and compare them at that equal budget.

    Every trial is an ordinary run folder. Killed (even with kill -9), the same command
    resumes: finished trials are kept, a trial left running is retried.

    Example:

        grucli tune experiments/tune_adding.yaml --jobs 2
        grucli report results/tune_adding
    """
    from grucli.tune import run as tuning

    from grucli.train import packing

    at_least_one(jobs=jobs, threads=threads)
    k = packing.parse(pack)
    if executor not in ("local", "ray"):
        raise GrucliError(f"--executor {executor}: unknown executor; valid: local, ray")
    if address and executor != "ray":
        raise GrucliError("--address is the address of a Ray cluster: use it with --executor ray")
    with ProgressReporter(header=lambda tr: print_study(tr, k, jobs)) as reporter:
        tr = tuning.run(experiment, [*set_, *device_overrides(device, None)], results=results, executor=executor,
                        jobs=jobs, threads=threads, address=address, dry_run=dry_run, reporter=reporter, pack=k,
                        until_decided=until_decided)
    if dry_run:
        return
    render_tuned(tr.exp_dir)
    console.print(f"results: {tr.exp_dir}  (trials.csv: one row per trial; tune.json; `grucli report {tr.exp_dir}`)")
