"""The HTML page stored with every notebook run: one file, no scripts of its own, made in ms.

Why not nbconvert for every execution: importing nbconvert and rendering with its
templates costs 1-2 s of CPU per notebook, which a 10-notebook sweep on two cores pays
ten times, on the critical path or (in a background process) competing with the next
kernels. This page needs only the standard library (and markdown-it-py, which kiln's
Rich already installs, when the notebook has markdown cells): a few milliseconds, in the
run's own process, so the page is there when the run ends, reliably, every time.

It shows what a reviewer needs: the parameters, each cell's source with its execution
count, and its outputs (text, errors without ANSI colours, PNG/JPEG/SVG images, and the
HTML that libraries such as pandas display, embedded as nbconvert embeds it). For the
full nbconvert render (syntax highlighting, widgets, nbconvert templates) pass
`html=True` to `run_notebook` (`--html`), or call `render_html(run_id, nbconvert=True)`
(`kiln notebook html RUN --nbconvert`) later.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

__all__ = ["render_page"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
header{border-bottom:1px solid #ddd;margin-bottom:1em}header h1{font-size:1.4em;margin:.2em 0}
.meta{color:#555;font-size:.9em}.meta code{background:#f3f3f3;padding:0 .25em}
.cell{display:grid;grid-template-columns:5.5em 1fr;gap:.2em .6em;margin:.8em 0}
.prompt{color:#307fc1;font:12px monospace;text-align:right;padding-top:.45em}
.outp{color:#bf5b3d}.md{grid-column:2}
pre{margin:0;padding:.4em .6em;overflow-x:auto;font:12.5px/1.4 ui-monospace,monospace;
white-space:pre-wrap}.src pre{background:#f7f7f7;border:1px solid #e3e3e3;border-radius:3px}
.stderr{background:#fdd}.error{background:#fdd}.injected pre{background:#eef6ff}
.tag{font-size:.8em;color:#777}img{max-width:100%}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em}
.failed{background:#fdd;padding:.5em;border-radius:3px}
"""


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _markdown(source: str) -> str:
    from markdown_it import MarkdownIt

    # Raw HTML in markdown is shown as text: the page runs nothing it was not made with.
    return str(MarkdownIt("commonmark", {"html": False}).enable("table").render(source))


def _pre(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}>{html.escape(_ANSI.sub('', text))}</pre>"


def _data(data: dict[str, Any]) -> str:
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            b64 = _text(data[mime]).replace("\n", "")
            return f'<img src="data:{mime};base64,{b64}" alt="{mime} output">'
    if "image/svg+xml" in data:
        svg = base64.b64encode(_text(data["image/svg+xml"]).encode("utf-8")).decode("ascii")
        return f'<img src="data:image/svg+xml;base64,{svg}" alt="svg output">'
    if "text/html" in data:
        return f'<div class="html">{_text(data["text/html"])}</div>'
    if "text/markdown" in data:
        return _markdown(_text(data["text/markdown"]))
    for mime in ("text/plain", "text/latex", "application/json"):
        if mime in data:
            return _pre(_text(data[mime]))
    return _pre(f"[{', '.join(sorted(data))} output]")


def _output(out: Any) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return _pre(_text(out.get("text")), "stderr" if out.get("name") == "stderr" else "")
    if kind == "error":
        return _pre("\n".join(out.get("traceback") or [f"{out.get('ename')}: {out.get('evalue')}"]), "error")  # fmt: skip
    return _data(dict(out.get("data") or {}))


def render_page(nb: Any, *, title: str, run_id: str, error: str | None = None) -> str:
    """One self-contained HTML page of an executed notebook (see the module docstring)."""
    meta = nb.metadata.get("kiln") or {}
    params = meta.get("parameters") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><p class=meta>run <code>{html.escape(run_id)}</code>",
    ]  # fmt: skip
    if params:
        shown = ", ".join(
            f"{html.escape(str(k))} = {html.escape(repr(v))}" for k, v in params.items()
        )
        parts.append(f" · parameters: <code>{shown}</code>")
    parts.append("</p>")
    if error:
        parts.append(f'<div class="failed">{_pre(error)}</div>')
    parts.append("</header>")
    for cell in nb.cells:
        source = _text(cell.get("source"))
        if cell.get("cell_type") == "markdown":
            parts.append(f'<div class="cell"><div class="md">{_markdown(source)}</div></div>')
            continue
        if cell.get("cell_type") != "code":
            parts.append(f'<div class="cell"><div class="md">{_pre(source)}</div></div>')
            continue
        count = cell.get("execution_count")
        tags = (cell.get("metadata") or {}).get("tags") or []
        cls = "src injected" if "injected-parameters" in tags else "src"
        label = "" if not tags else f'<div class="tag">{html.escape(", ".join(tags))}</div>'
        parts.append(
            f'<div class="cell"><div class="prompt">In [{count if count is not None else " "}]:</div>'
            f'<div class="{cls}">{label}{_pre(source)}</div>'
        )  # fmt: skip
        for out in cell.get("outputs") or []:
            n = out.get("execution_count")
            prompt = f"Out[{n}]:" if out.get("output_type") == "execute_result" else ""
            parts.append(f'<div class="prompt outp">{prompt}</div><div>{_output(out)}</div>')
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
