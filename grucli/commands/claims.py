"""`grucli claims`: measure what the study notes claim, and write the page "What the notes
say, what we measured"."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from grucli.commands.common import ProgressReporter, at_least_one, clean_errors, console
from grucli.errors import GrucliError

VERDICT_STYLE = {"supported": "green", "not supported": "red", "inconclusive": "yellow"}


def _select(names: list[str], root: Path):
    """Claims by id (`speed`) or by experiment file (`experiments/claims/speed.yaml`)."""
    from grucli import claims

    if not names:
        return list(claims.CLAIMS)
    chosen = []
    for name in names:
        p = Path(name)
        if p.suffix in (".yaml", ".yml"):
            hits = [c for c in claims.CLAIMS if p.name in c.experiments]
            if not hits:
                raise GrucliError(f"{name}: not an experiment of any claim (the claims' files are in {root}/)")
            if not p.is_file():
                raise GrucliError(f"{name}: file not found")
            found = hits[0]
        else:
            found = claims.get(name)
        if found not in chosen:
            chosen.append(found)
    return chosen


@clean_errors
def claims(
    which: list[str] = typer.Argument(None, help="Claim ids (params, speed, ...) or claim files; default: every claim."),
    quick: bool = typer.Option(False, "--quick", help="A few steps and seeds per experiment: checks the pipeline in "
                                                     "minutes; results kept apart (<name>_quick)."),
    read_only: bool = typer.Option(False, "--read", help="Train nothing: judge what is in the results folder."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Parallel workers (default: usable cores)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per worker (default 1)."),
    results: Path = typer.Option(Path("results"), "--results", "-o", help="Results root folder."),
    root: Path = typer.Option(Path("experiments/claims"), "--experiments", help="Folder of the claims' experiment files."),
    until_decided: bool = typer.Option(False, "--until-decided", help=(
        "Grid claims add seeds to undecided settings at the looks their verdict: section plans (default 4, 6, 9, "
        "12 seeds per cell), judged at Pocock's per-look level; studies and benches run as they are.")),
) -> None:
    """Run each claim's experiments (what is missing: resumable, like compare and tune),
    judge each claim at its budget and write results/claims/claims.md (figures, CSVs).

    Examples:

    \b
        grucli claims --quick          # every claim at a tiny scale, minutes
        grucli claims long_range --until-decided   # seeds until its verdict is decided (or the cap)
        grucli claims memory speed     # two claims at full scale
        grucli claims --read           # the page from what is already measured
    """
    from grucli.claims import page
    from grucli.claims import run as claims_run

    at_least_one(jobs=jobs, threads=threads)
    chosen = _select(list(which or []), root)
    for c in chosen:
        for p in c.paths(root):
            if not p.is_file():
                raise GrucliError(f"{p}: the experiment of claim '{c.id}' is missing (--experiments points at the "
                                  "folder of the claims' files)")
            if not read_only:
                claims_run.check(c, p, quick)  # a bad file stops here, before any claim trains
    if not read_only:
        for i, c in enumerate(chosen, 1):
            for p in c.paths(root):
                console.print(f"[bold]claim {i}/{len(chosen)}[/] {c.id}: {escape(str(p))}"
                              f"{' (quick)' if quick else ''}")
                _run_one(claims_run, c, p, results, quick, jobs, threads, until_decided)
    from grucli.claims import CLAIMS

    # the page covers every claim: those not run (now or before) say so and give their command
    outcomes = [claims_run.evaluate(c, results, quick=quick, root=root) for c in CLAIMS]
    out = page.write(outcomes, results / ("claims" + (claims_run.QUICK_SUFFIX if quick else "")), quick=quick,
                     root=root)
    for o in outcomes:
        if o.claim not in chosen:
            continue
        v = page.verdict_of(o, short=True)
        style = VERDICT_STYLE.get(v, "yellow" if v.startswith("mixed") else "dim")
        console.print(f"  {o.claim.id:<14} [{style}]{escape(v)}[/]  {escape(o.claim.quote)}")
        if o.evidence is not None:
            console.print(f"  {'':<14} [dim]at {escape(o.evidence.budget)}[/]")
        if o.error:
            console.print(f"    [red]{escape(o.error)}[/]")
    console.print(f"page: {out}  (claims.csv: one row per finding; figures/, data/)")


def _run_one(claims_run, claim, path: Path, results: Path, quick: bool, jobs, threads,
             until_decided: bool = False) -> None:
    if claims_run.kind_of(path) == "bench":
        from rich.progress import Progress

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"timing {path.name}", total=None)
            claims_run.run_experiment(claim, path, results, quick=quick,
                                      on_round=lambda d, t: progress.update(task, completed=d, total=t))
        return
    with ProgressReporter() as reporter:
        claims_run.run_experiment(claim, path, results, quick=quick, jobs=jobs, threads=threads, reporter=reporter,
                                  until_decided=until_decided)
