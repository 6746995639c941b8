"""One report document, two renderings: Markdown and a self-contained HTML page.

The document is a flat list of blocks. Text may use `**bold**` and `` `code` ``; both
renderers understand that much. The HTML embeds every image as base64 and carries a tiny
inline script that sorts a table by the clicked column: no network needed to view it.
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from grucli.numbers import NONE, missing


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame  # display strings
    caption: str = ""


@dataclass
class Image:
    png: Path
    caption: str


Block = Heading | Para | Bullets | Table | Image


# --------------------------------------------------------------------------- Markdown
def to_markdown(blocks: list[Block], base: Path) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            out.append(_md_table(b))
        elif isinstance(b, Image):
            rel = Path(os.path.relpath(b.png, base)).as_posix()
            out.append(f"![{b.caption}]({rel})\n\n*{b.caption}*")
    return "\n\n".join(out) + "\n"


def _md_table(t: Table) -> str:
    cell = lambda v: _text(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(cell(c) for c in t.frame.columns) + " |",
             "|" + "|".join("---" for _ in t.frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in t.frame.itertuples(index=False)]
    return "\n".join(([f"*{t.caption}*", ""] if t.caption else []) + lines)


# --------------------------------------------------------------------------- HTML
CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;max-width:1180px;
margin:2rem auto;padding:0 1.2rem}
h1{font-size:1.7rem;border-bottom:2px solid #ddd;padding-bottom:.3rem}h2{margin-top:2.2rem;
border-bottom:1px solid #e5e5e5}h3{margin-top:1.6rem}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px;font-size:.92em}
.tw{overflow-x:auto;margin:.6rem 0 1.2rem}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right;white-space:nowrap}
td.t{text-align:left;white-space:normal;min-width:7em}
th{background:#f6f6f6;cursor:pointer;position:sticky;top:0}th:hover{background:#eaeaea}
th{text-align:left}tr:nth-child(even) td{background:#fafafa}
caption{caption-side:top;text-align:left;font-style:italic;color:#555;padding-bottom:.3em}
figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.92em}
.better{color:#0a7d2c;font-weight:600}.none{color:#777}
"""

def _text(v) -> str:
    """A table cell as text; a missing value (None, NaN) as the one mark for no value."""
    return NONE if missing(v) else str(v)


NUMERIC = re.compile(r"^[-+–<]?\s*[\d.,]*\d[\d.,e+-]*( ± .*)?( \[.*\])?$|^–$|^\d+/\d+$")

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.title='click to sort';
th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,
asc=th.dataset.dir!=='asc';t.querySelectorAll('th').forEach(function(h){delete h.dataset.dir});
th.dataset.dir=asc?'asc':'desc';var key=function(r){var s=r.cells[i].textContent.trim(),
n=parseFloat(s.replace(/,/g,''));return isNaN(n)?s.toLowerCase():n};
Array.from(b.rows).sort(function(x,y){var a=key(x),c=key(y);if(typeof a!==typeof c){a=String(a);c=String(c)}
return (a<c?-1:a>c?1:0)*(asc?1:-1)}).forEach(function(r){b.appendChild(r)})})});
"""


def _inline(text: str) -> str:
    s = html.escape(text, quote=False)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.frame.columns)
    rows = []
    for row in t.frame.itertuples(index=False):
        cells = []
        for v in row:
            s = _text(v)
            kind = "" if NUMERIC.match(s) else "t"
            if " better" in s or " faster" in s:
                kind += " better"
            elif s.startswith("no significant difference"):
                kind += " none"
            cls = f' class="{kind.strip()}"' if kind.strip() else ""
            cells.append(f"<td{cls}>{html.escape(s)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{_inline(t.caption)}</caption>" if t.caption else ""
    return (f'<div class="tw"><table class="sortable">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def to_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            body.append(_html_table(b))
        elif isinstance(b, Image):
            data = base64.b64encode(Path(b.png).read_bytes()).decode()
            alt = html.escape(b.caption)
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
                        f"<figcaption>{_inline(b.caption)}</figcaption></figure>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{SORT_JS}</script>\n</body></html>\n")
