"""The page "What the notes say, what we measured": one section per claim (the quote, the
experiment, the evidence with its numbers and one figure, the verdict at the stated budget,
the command that reproduces it), a summary table first, and claims.csv (one row per
finding) for pandas. Figures go to figures/<claim>.png and .svg, the numbers behind each figure to
data/<claim>.csv; every file is written atomically (grucli.store)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from grucli.claims.run import Outcome
from grucli.claims.verdict import overall

NOT_MEASURED = "not measured yet"


def verdict_of(o: Outcome, short: bool = False) -> str:
    if o.missing:
        return NOT_MEASURED
    if o.error:
        return "could not evaluate"
    if o.incomplete:
        return f"incomplete ({o.incomplete}); so far: {overall(o.evidence.findings, short)}"
    return overall(o.evidence.findings, short)


def write(outcomes: list[Outcome], out: Path, *, quick: bool, root: Path) -> Path:
    from grucli.report.figure import Drawn, save
    from grucli.store import atomic_write_text

    rows = []
    for o in outcomes:
        ev = o.evidence
        if ev is None:
            rows.append({"claim": o.claim.id, "finding": "", "verdict": verdict_of(o), "evidence": o.error or "",
                         "budget": "", "complete": False})
            continue
        for f in ev.findings:
            rows.append({"claim": o.claim.id, "finding": f.label, "verdict": f.verdict, "evidence": f.evidence,
                         "budget": ev.budget, "complete": not o.incomplete})
        if ev.figure is not None:  # PNG for the page, SVG for a paper, as the report writes them
            save(Drawn(o.claim.id, ev.figure, ev.caption), out / "figures")
        if ev.table is not None:
            atomic_write_text(out / "data" / f"{o.claim.id}.csv", ev.table.to_csv(index=False))
    for name, fig, text in forests(outcomes):
        save(Drawn(name, fig, text), out / "figures")
    atomic_write_text(out / "claims.csv", pd.DataFrame(rows).to_csv(index=False))
    atomic_write_text(out / "claims.md", render(outcomes, quick=quick, root=root))
    return out / "claims.md"


FOREST_KINDS = {"ratio": ("forest_ratio", "claims on log-scale metrics"),
                "difference": ("forest_difference", "claims on other metrics")}


def forest_frame(outcomes: list[Outcome]) -> dict[str, pd.DataFrame]:
    """The findings that compare two cells, as head-to-head rows (one frame per kind of
    effect: ratios and differences need their own axes) for grucli.report.forest."""
    frames: dict[str, list[dict]] = {}
    for o in outcomes:
        for f in (o.evidence.findings if o.evidence is not None else []):
            if f.effect is None or f.pair is None or f.word is None:
                continue
            e = f.effect
            kind = "ratio" if e.scale == "log" else "difference"
            frames.setdefault(kind, []).append({
                "family": "metric",  # the label, unless it only repeats the pair ("gru vs lstm")
                "setting": o.claim.id if not f.label or f.label == f"{f.pair[0]} vs {f.pair[1]}" else f"{o.claim.id}: {f.label}",
                "a": f.pair[0], "b": f.pair[1], "effect": kind, "value": e.value, "lo": e.lo, "hi": e.hi,
                "margin": e.margin, "verdict": f.word})
    return {k: pd.DataFrame(v) for k, v in frames.items()}


def forests(outcomes: list[Outcome]) -> list[tuple[str, object, str]]:
    """(name, figure, caption) of the claims' forest plots."""
    from grucli.report import forest

    out = []
    for kind, frame in forest_frame(outcomes).items():
        name, title = FOREST_KINDS[kind]
        drawn, cut = forest.rows(frame)
        if drawn:
            out.append((name, forest.figure(title, drawn, "metric", "min"),
                        f"Every finding that compares two cells, as its effect with the 95% interval "
                        f"({'ratio a / b, log axis' if kind == 'ratio' else 'difference a − b'}), coloured by the "
                        f"verdict from a's side; the margin shaded where the claim declares one."))
    return out


def render(outcomes: list[Outcome], *, quick: bool, root: Path) -> str:
    from grucli import environment
    from grucli.claims import literature

    env = environment._static()
    lines = ["# What the notes say, what we measured", ""]
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"Written by `grucli claims{' --quick' if quick else ''}` on {when} ({environment.code_label(env) or 'no git'}, torch {env['torch']}, {env['cpu']}).")
    lines.append("")
    if quick:
        lines += ["> **Quick scale**: a few steps and seeds per experiment, to check the pipeline. These verdicts "
                  "measure almost no training; run `grucli claims` without `--quick` for the real ones.", ""]
    lines += ["Each verdict holds *at the stated budget and number of seeds*: **supported** = the measurement says "
              "what the claim says beyond its uncertainty; **not supported** = it says the opposite; "
              "**inconclusive** = the uncertainty covers both, or runs were still improving when the budget ended. "
              "Differences across seeds use Welch's test on the metric's scale (logs for error-type metrics: ratios "
              "of geometric means), Holm-corrected over the comparisons of a claim; \"comparable\" uses two "
              "one-sided tests (TOST) inside a margin declared before the data (x/÷ 1.25 on the log scale). An "
              "inconclusive finding says how many seeds per cell would decide it; `grucli claims ID "
              "--until-decided` adds them to grid claims at planned looks.", ""]
    lines += ["| # | claim | source | verdict |", "|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        lines.append(f"| {i} | [{_md(o.claim.quote)}](#{_anchor(i, o)}) | {o.claim.source} | "
                     f"**{verdict_of(o, short=True)}** |")
    lines.append("")
    for kind, frame in forest_frame(outcomes).items():
        name, title = FOREST_KINDS[kind]
        lines += [f"![{title}](figures/{name}.png)", "", f"*The findings that compare two cells ({title}): effect "
                  "and 95% interval, coloured by the verdict from the first cell's side.*", ""]
    papers = literature(root)
    for i, o in enumerate(outcomes, 1):
        lines += _section(i, o, quick, root, papers.get(o.claim.id, []))
    return "\n".join(lines).rstrip() + "\n"


def _section(i: int, o: Outcome, quick: bool, root: Path, papers: list[dict] = ()) -> list[str]:
    c = o.claim
    files = ", ".join(f"`{p}`" for p in c.paths(root))
    cmd = f"grucli claims {c.id}{' --quick' if quick else ''}"
    lines = [f"## {i}. {c.id}", "", f"> {_md(c.quote)} — *{c.source}*", "",
             f"**Verdict: {verdict_of(o)}**", "", f"- Experiment: {files}", f"- Judged by: {c.how}"]
    for p in papers:  # the paper's own numbers, beside ours (experiments/claims/literature.yaml)
        numbers = ", ".join(f"{k} {v}" for k, v in p["numbers"].items())
        lines.append(f"- The paper's numbers ({_md(p['split'])}; {_md(p['where'])}): {numbers}. Source: "
                     f"{_md(p['source'])}. Checked: {_md(p['verified'])}")
    if o.missing:
        lines += [f"- Not measured yet: no results in {', '.join(f'`{d}`' for d in o.missing)}.",
                  f"- Run it: `{cmd}`", ""]
        return lines
    if o.error:
        lines += [f"- The results could not be evaluated: {o.error}", f"- Re-run: `{cmd}`", ""]
        return lines
    ev = o.evidence
    if o.incomplete:
        lines += [f"- **Incomplete**: {o.incomplete}; judged on those so far. Finish it: `{cmd}`"]
    lines += [f"- Budget: {ev.budget}", f"- Results: {', '.join(f'`{d}`' for d in o.dirs)}",
              f"- Reproduce: `{cmd}`", "", "Evidence:", ""]
    for f in ev.findings:
        lines.append(f"- *{_md(f.label)}* — **{f.verdict}**: {_md(f.evidence)}")
    if not ev.findings:
        lines.append("- no comparison could be made from these results")
    for n in ev.notes:
        lines.append(f"- {_md(n)}")
    lines.append("")
    if ev.figure is not None:
        lines += [f"![{c.id}](figures/{c.id}.png)", "", f"*{_md(ev.caption)}* Numbers: `data/{c.id}.csv`.", ""]
    return lines


def _anchor(i: int, o: Outcome) -> str:
    return f"{i}-{o.claim.id}".lower()  # GitHub's anchor of the heading "{i}. {id}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")
