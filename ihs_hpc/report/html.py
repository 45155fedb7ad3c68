"""The run report as one self-describing HTML page and the same content as Markdown.

Images are referenced by relative path (``figures/<name>.png``), so the ``report/`` folder can be
moved or zipped as a whole; tables are written inline.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..stats.tables import to_markdown

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #b2182b; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
table { border-collapse: collapse; font-size: .85em; margin: .6em 0 1.4em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { font-size: .9em; color: #555; }
.scroll { overflow-x: auto; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .92em; background: #f4f4f4;
       padding: 0 .25em; border-radius: 3px; }
.links a { font-weight: 600; }
"""


@dataclass
class Section:
    """One section of the HTML report: a title, Markdown text, figures (path, caption) and tables."""
    title: str
    text: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)


def _cell(value, digits: int) -> tuple[str, bool]:
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, np.integer)):
        return str(int(value)), True
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not np.isfinite(v):
            return "–", True
        if v != 0 and abs(v) < 10 ** (-digits):
            return f"{v:.{digits}e}", True
        return f"{v:.{digits}f}", True
    text = "" if value is None else str(value)
    return ("–" if text in ("nan", "None", "") else html.escape(text)), False


def table_html(df: pd.DataFrame, digits: int = 2) -> str:
    """A plain HTML table (numbers right-aligned, NaN as ``–``)."""
    frame = df.reset_index() if (df.index.name or not isinstance(df.index, pd.RangeIndex)) else df
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            text, num = _cell(v, digits)
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


_CODE_SPAN = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    """Escape ``text`` for HTML, turning Markdown code spans (`` `RUN/stats` ``) into ``<code>`` elements."""
    return _CODE_SPAN.sub(lambda m: f"<code>{m[1]}</code>", html.escape(text))


def _paragraphs(text: str) -> str:
    out = []
    for para in text.strip().split("\n\n"):
        lines = [line.strip() for line in para.splitlines() if line.strip()]
        if lines and all(line.startswith("* ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>")
        elif lines:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def write_html(path, title: str, intro: str, sections: list[Section], digits: int = 2,
               links: list[tuple[str, str]] = ()) -> Path:
    """Write ``index.html``: title, introduction, ``links`` (relative href, text), then every section's
    text, figures and tables."""
    path = Path(path)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>", _paragraphs(intro)]
    if links:
        parts.append('<p class="links">' + " · ".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a>'
                                                       for href, text in links) + "</p>")
    toc = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections))
    parts.append(f"<nav><ol>{toc}</ol></nav>")
    for i, section in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{html.escape(section.title)}</h2>')
        if section.text:
            parts.append(_paragraphs(section.text))
        for src, caption in section.figures:
            parts.append(f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for caption, df in section.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(table_html(df, digits))
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_markdown(path, title: str, intro: str, sections: list[Section], digits: int = 2) -> Path:
    """The same report as Markdown (``report.md``), images by relative path."""
    path = Path(path)
    lines = [f"# {title}", "", intro.strip(), ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text.strip(), ""]
        for src, caption in section.figures:
            lines += [f"![{caption}]({src})", "", f"*{caption}*", ""]
        for caption, df in section.tables:
            lines += [f"### {caption}", "", to_markdown(df, digits=digits), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
