"""`grucli report`: results folders -> tables, figures, report.md and report.html.

    grucli.store.reader (read run folders, note problems) -> grucli.tables (pure)
    -> plots (the one registry of figures, drawn with figure.py) -> compose (document blocks) -> render (Markdown, self-contained HTML)

Reads only: it never trains and never writes inside run folders. Output goes to
`<experiment>/report/` (or `--out`):

    report.md, report.html     the report (HTML: images embedded, sortable tables)
    tables/*.csv               summary, params, head_to_head, runs, not_averaged
    figures/*.png, *.svg       every figure, PNG for the report and SVG for papers
    .grucli-report.json        what this report wrote: the next build removes exactly those
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from grucli.errors import GrucliError
from grucli import results, tables
from grucli.report import compose, figure, inspected, plots, tuned
from grucli.store.reader import collect, experiment_dirs
from grucli.report.render import Block, Heading, Image, Para, Table, to_html, to_markdown
from grucli.store import StoreError, atomic_write_text

FORMATS = ("md", "html")
MANIFEST = ".grucli-report.json"  # the files the last report wrote into its folder
HINT = "nothing was trained or changed in the results; run it again once the folder can be written"


@dataclass
class ReportOutput:
    out: Path
    files: list[Path] = field(default_factory=list)  # report.md / report.html, first
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: int = 0
    plots: dict[str, list[str]] = field(default_factory=dict)  # task -> selected plot names


def default_out(paths: list[Path]) -> Path:
    """<experiment>/report for one experiment; <shared parent>/report for several."""
    dirs = experiment_dirs(paths)
    if len(dirs) == 1:
        return dirs[0] / "report"
    parents = {d.parent for d in dirs}
    if len(parents) == 1:
        return parents.pop() / "report"
    raise GrucliError("these experiments live in different folders: say where the report goes with --out DIR")


def build_report(paths: list[Path], out: Path | None = None, formats: tuple[str, ...] = FORMATS,
                 figure_formats: tuple[str, ...] = ("png", "svg")) -> ReportOutput:
    """Read the experiment folders in `paths`, write the report into `out` (default:
    `default_out`). Problems with single runs become notes; raises GrucliError only when
    there is nothing to report. The report is written into a temporary sibling folder and
    moved into place only when complete: a failure leaves the previous report (or none),
    never half of one."""
    out = Path(out) if out is not None else default_out(paths)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        res = _write_report(paths, staging, formats, figure_formats)
        _publish(staging, out)
    except StoreError as e:  # a full disk, a read-only or vanished folder: one line, the old report stays
        e.hint = e.hint or HINT
        raise
    except OSError as e:  # (a folder made or renamed outside the atomic writer)
        raise _fault(Path(e.filename) if e.filename else out, e) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    moved = lambda ps: [out / p.relative_to(staging) for p in ps]  # noqa: E731
    res.out, res.files, res.tables, res.figures = out, moved(res.files), moved(res.tables), moved(res.figures)
    return res


def _fault(path: Path, error: OSError) -> StoreError:
    e = StoreError(path, error)
    e.hint = HINT
    return e


def _publish(staging: Path, out: Path) -> None:
    """Put a complete report in `staging` at `out`. A folder holding only the previous
    report's files is swapped whole (two renames); one holding other files too (the user's)
    keeps them: the previous report's files are removed and the new ones moved in."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
        return
    previous = set(_previous(out))
    others = [p for p in out.rglob("*") if p.is_file() and p.relative_to(out).as_posix() not in previous]
    if not others:
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        return
    _remove_previous(out)
    for path in sorted(p for p in staging.rglob("*") if p.is_file() and p.name != MANIFEST):
        target = out / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    os.replace(staging / MANIFEST, out / MANIFEST)


def _write_report(paths: list[Path], out: Path, formats: tuple[str, ...],
                  figure_formats: tuple[str, ...]) -> ReportOutput:
    """Write the whole report into the folder `out`."""
    for f in formats:
        if f not in FORMATS:
            raise GrucliError(f"unknown report format '{f}'; valid: {', '.join(FORMATS)}")
    col = collect(paths)
    if col.runs.empty:
        raise GrucliError(f"{', '.join(map(str, paths))}: no run folders to report on")
    out = Path(out) if out is not None else default_out(paths)
    res = ReportOutput(out=out, notes=col.notes, runs=len(col.runs))
    _remove_previous(out)
    table_dir, fig_dir = out / "tables", out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)

    judged = results.judge(col)
    tunes, views, summaries, h2h = judged.tunes, judged.views, judged.summaries, judged.head_to_head
    params = {v.task: tables.params_table(v) for v in views}
    excluded = tables.not_averaged(col.runs)
    insp = inspected.collect_inspect(col.runs, col.experiments)
    tune_frames = {t.manifest["name"]: tuned.tables_of(t) for t in tunes}
    frames = [("summary", _concat(summaries)), ("params", _concat(params)), ("head_to_head", _concat(h2h)),
              ("not_averaged", excluded), ("runs", col.runs), ("inspect", insp.rows),
              *[(name, f) for fs in tune_frames.values() for name, f in fs.items()]]
    for name, frame in frames:
        if name == "inspect" and frame.empty:
            continue
        path = table_dir / f"{name}.csv"
        atomic_write_text(path, frame.to_csv(index=False))
        res.tables.append(path)

    figures: dict[str, list] = {}
    for v in views:
        res.plots[v.task] = plots.select(v, col.histories)
        figures[v.task] = []
        for drawn in plots.draw(v, col.histories):
            saved = figure.save(drawn, fig_dir, ("png", *[f for f in figure_formats if f != "png"]))
            res.figures += list(saved.values())
            drawn.png = saved["png"]
            figures[v.task].append(drawn)

    tune_blocks = []
    for t in tunes:
        drawn = []
        for d in plots.draw_tuned(t):
            saved = figure.save(d, fig_dir, ("png", *[f for f in figure_formats if f != "png"]))
            res.figures += list(saved.values())
            d.png = saved["png"]
            drawn.append(d)
        tune_blocks += tuned.blocks(t, tune_frames[t.manifest["name"]], drawn)

    res.notes = [*compose.notes(col, views, summaries), *judged.notes]
    blocks = _document(col, res.notes, views, summaries, params, h2h, excluded, figures, insp, judged.answers,
                       tune_blocks)
    title = f"grucli report: {', '.join(e['name'] for e in col.experiments)}"
    if "md" in formats:
        atomic_write_text(out / "report.md", to_markdown(blocks, out))
        res.files.append(out / "report.md")
    if "html" in formats:
        atomic_write_text(out / "report.html", to_html(blocks, title))
        res.files.append(out / "report.html")
    written = [p.relative_to(out).as_posix() for p in [*res.files, *res.tables, *res.figures]]
    atomic_write_text(out / MANIFEST, json.dumps(written, indent=0))
    return res


def _document(col, notes, views, summaries, params, h2h, excluded, figures, insp, answers, tune_blocks) -> list[Block]:
    blocks: list[Block] = [*compose.header(col)]
    if answers or tune_blocks:
        blocks += [Heading(2, "Answer"), Para(compose.ANSWER)]
        if answers:
            blocks.append(compose.Bullets(answers))
        blocks += compose.figure_blocks([f for v in views for f in figures[v.task] if f.answer])  # forest plots
    if tune_blocks:
        blocks += [Heading(2, "Tuned comparison"), *tune_blocks]
    blocks += compose.what_was_run(col)
    if notes:
        blocks += [Heading(2, "Notes"), compose.Bullets(notes)]
    blocks.append(Heading(2, "Head-to-head verdicts"))
    for v in views:
        blocks += compose.verdicts(v, h2h[v.task])
    blocks.append(Para(compose.METHOD))
    blocks.append(Heading(2, "Tables"))
    for v in views:
        blocks.append(Heading(3, f"{v.task}: summary per setting and cell"))
        blocks.append(Table(compose.summary_display(summaries[v.task], v),
                            compose.summary_caption(v, tables.packed_runs(v.ok) > 0)))
        if len(params[v.task]):
            blocks += [Heading(3, f"{v.task}: parameters"),
                       Table(compose.params_display(params[v.task]),
                             "exact trainable parameters and the ratio to the LSTM of the same size")]
        if len(h2h[v.task]):
            blocks += [Heading(3, f"{v.task}: head-to-head details"), Table(compose.h2h_display(h2h[v.task]))]
    blocks.append(Heading(2, "Figures"))
    for v in views:
        if rest := [f for f in figures[v.task] if not f.answer]:
            blocks += [Heading(3, v.task), *compose.figure_blocks(rest)]
        elif not figures[v.task]:
            blocks.append(Para(f"**{v.task}**: no figures (no finished runs)."))
    if len(insp.rows) or insp.figures:
        blocks += [Heading(2, "Inside the cells (grucli inspect)"),
                   Para("Gradient ratio: ‖∂L/∂h‖ at the first step over the last (< 1: the gradient shrinks "
                        "going back in time), for the trained weights and at initialisation. Gates: mean "
                        "activation and the shares below 0.1 and above 0.9 over the test set.")]
        if len(insp.rows):
            blocks.append(Table(inspected.display(insp.rows)))
        blocks += [Image(png, caption) for png, caption in insp.figures]
    blocks.append(Heading(2, "Runs not averaged in"))
    blocks.append(Table(compose.excluded_display(excluded)) if len(excluded) else Para("None: every run finished ok."))
    return blocks


def _previous(out: Path) -> list[str]:
    """The files the previous report in `out` wrote (its manifest, with the manifest)."""
    try:
        previous = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    return [*map(str, previous), MANIFEST] if isinstance(previous, list) else []


def _remove_previous(out: Path) -> None:
    """Delete what the previous report in `out` wrote (listed in its manifest), so no stale
    figure survives; never anything else in that folder."""
    for rel in _previous(out):
        path = out / str(rel)
        if path.resolve().is_relative_to(out.resolve()) and path.is_file():
            path.unlink()


def _concat(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames.values() if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
