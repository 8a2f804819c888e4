"""HTML reports: titled sections of metrics, tables, text, PNG images and Plotly charts.

The one place kiln renders HTML reports (evaluation, monitoring and notebooks use it).
A report is one file with every asset inlined (styles, images as data URLs, plotly.js
when it has interactive charts), so it opens offline and can be mailed or archived.

```python
report = kiln.report.Report("Churn model", subtitle="test set, 2026-11")
section = report.section("Metrics", "Computed on 10,000 held-out rows.")
section.metrics({"roc_auc": 0.91, "accuracy": 0.87})
section.table(frame)                     # a pandas DataFrame or a list of dicts
section.figure(kiln.plots.roc(y, p))     # interactive (Plotly), or PNG with interactive=False
section.image(png_bytes, alt="drift")    # any PNG
report.save("report.html")               # or report.log() into the active run
```

Needs `jinja2` (and `plotly` for interactive charts): `pip install 'kiln-ml[evaluate]'`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import functools
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kiln._exceptions import ConfigurationError
from kiln._extras import require

__all__ = ["Report", "Section"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"


class Section:
    """A titled part of a `Report`; its methods add blocks in order and return the section."""

    def __init__(self, report: Report, title: str, text: str | None = None) -> None:
        self.report = report
        self.title = title
        self.anchor = _anchor(title, len(report.sections))
        self.blocks: list[dict[str, Any]] = []
        if text:
            self.text(text)

    def __repr__(self) -> str:
        return f"<kiln.report.Section {self.title!r}: {len(self.blocks)} blocks>"

    def text(self, text: str) -> Section:
        """Add a paragraph of plain text (HTML in it is escaped)."""
        self.blocks.append({"kind": "text", "text": str(text)})
        return self

    def metrics(self, values: Mapping[str, Any], *, digits: int = 4) -> Section:
        """Add a row of metric tiles: name and value (numbers shown to `digits` places)."""
        if not isinstance(values, Mapping):
            raise ConfigurationError(
                f"Section.metrics expects a dict of name -> value; got {type(values).__name__}."
            )
        items = [(str(k), _fmt(v, digits)) for k, v in values.items()]
        self.blocks.append({"kind": "metrics", "entries": items})
        return self

    def table(
        self, data: Any, *, max_rows: int = 200, caption: str | None = None, digits: int = 4
    ) -> Section:
        """Add a table from a pandas DataFrame (its index becomes the first column when
        named or not a plain range) or a list of dicts; at most `max_rows` rows are shown."""
        columns, rows = _table(data)
        hidden = max(0, len(rows) - max_rows)
        shown = [[_fmt(v, digits) for v in row] for row in rows[:max_rows]]
        self.blocks.append(
            {
                "kind": "table",
                "columns": columns,
                "rows": shown,
                "hidden": hidden,
                "caption": caption,
            }
        )
        return self

    def image(self, png: bytes, *, alt: str = "", caption: str | None = None) -> Section:
        """Add a PNG image (inlined as a data URL)."""
        if not isinstance(png, bytes | bytearray) or not bytes(png[:8]) == b"\x89PNG\r\n\x1a\n":
            raise ConfigurationError("Section.image expects the bytes of a PNG file.")
        data = base64.b64encode(bytes(png)).decode("ascii")
        self.blocks.append({"kind": "image", "data": data, "alt": alt, "caption": caption})
        return self

    def plotly(self, figure: Any, *, alt: str = "", caption: str | None = None) -> Section:
        """Add an interactive Plotly chart: a figure dict, its JSON, or a plotly Figure."""
        if isinstance(figure, str):
            text = figure
            json.loads(text)  # refuse broken JSON here, not in the reader's browser
        else:
            pio = require("plotly.io", "evaluate", "An interactive chart in a report")
            if hasattr(figure, "to_plotly_json"):
                figure = figure.to_plotly_json()
            text = str(pio.to_json(figure, validate=False))
        self.report._interactive_blocks += 1
        block_id = f"kiln-plot-{self.report._interactive_blocks}"
        safe = text.replace("</", "<\\/")  # a JSON string never ends the <script> early
        self.blocks.append(
            {"kind": "plotly", "json": safe, "id": block_id, "alt": alt, "caption": caption}
        )
        return self

    def figure(self, figure: Any, *, caption: str | None = None) -> Section:
        """Add a `kiln.plots.Figure`: interactive when the report is, else as PNG.

        A matplotlib figure is added as PNG; a Plotly figure (or dict) as a chart.
        """
        if hasattr(figure, "to_plotly") and hasattr(figure, "to_png"):
            if self.report.interactive:
                return self.plotly(figure.to_json(), alt=figure.title, caption=caption)
            return self.image(figure.to_png(), alt=figure.title, caption=caption)
        if hasattr(figure, "savefig"):
            import io

            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            return self.image(buffer.getvalue(), caption=caption)
        return self.plotly(figure, caption=caption)


class Report:
    """A one-file HTML report made of titled sections.

    Args:
        title: The report's title (the page's heading and `<title>`).
        subtitle: A line under the title.
        interactive: Draw `kiln.plots` figures as Plotly charts (plotly.js is inlined,
            about 4.8 MB); with False they are PNG images and the file stays small.

    Attributes:
        sections: The sections, in order.
    """

    def __init__(
        self, title: str, *, subtitle: str | None = None, interactive: bool = True
    ) -> None:
        self.title = title
        self.subtitle = subtitle
        self.interactive = interactive
        self.sections: list[Section] = []
        self.created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        self._interactive_blocks = 0

    def __repr__(self) -> str:
        return f"<kiln.report.Report {self.title!r}: {len(self.sections)} sections>"

    def section(self, title: str, text: str | None = None) -> Section:
        """Add a section (with an optional first paragraph) and return it."""
        section = Section(self, title, text)
        self.sections.append(section)
        return section

    def to_html(self) -> str:
        """Render the report as one self-contained HTML document."""
        from kiln._version import __version__

        needs_plotly = any(b["kind"] == "plotly" for s in self.sections for b in s.blocks)
        template = _environment().get_template("report.html.j2")
        return str(
            template.render(
                report=self, version=__version__, plotly_js=_plotly_js() if needs_plotly else ""
            )
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report to `path` (an `.html` file); return the path."""
        target = Path(path).expanduser()
        if target.suffix.lower() not in (".html", ".htm"):
            raise ConfigurationError(
                f"A report is HTML: save it to a .html file, not {target.name!r}."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(), encoding="utf-8")
        return target

    def log(self, name: str = "report.html", *, run_id: str | None = None) -> Any:
        """Store the report as an artifact of the active run (or of `run_id`).

        Returns:
            The stored `ArtifactInfo`.
        """
        from kiln._exceptions import NoActiveRunError
        from kiln.tracking import active_run, get_client

        html = self.to_html().encode("utf-8")
        if run_id is not None:
            return get_client().log_artifact(run_id, html, name=name)[0]
        run = active_run()
        if run is None:
            raise NoActiveRunError(
                "Report.log() stores the report with the active run, and no run is active. "
                "Use `with kiln.start_run(): report.log()`, pass run_id=, or report.save(path)."
            )
        return run.log_artifact(html, name=name)[0]


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    jinja2 = require("jinja2", "evaluate", "An HTML report")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    require("plotly", "evaluate", "An interactive chart in a report")
    from importlib.resources import files

    text = (files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    return text.replace("</script", "<\\/script")


def _anchor(title: str, index: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    return f"{slug}-{index + 1}"


def _fmt(value: Any, digits: int) -> str:
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** (-digits)):
            return f"{value:.{digits}g}"
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _table(data: Any) -> tuple[list[str], list[list[Any]]]:
    if isinstance(data, list):
        if not all(isinstance(row, Mapping) for row in data):
            raise ConfigurationError("Section.table expects a DataFrame or a list of dicts.")
        columns: list[str] = []
        for row in data:
            columns.extend(str(k) for k in row if str(k) not in columns)
        return columns, [[row.get(c, "") for c in columns] for row in data]
    if hasattr(data, "columns") and hasattr(data, "itertuples"):
        frame = data
        index = frame.index
        plain = (
            index.name is None
            and getattr(index, "dtype", None) == "int64"
            and (list(index[:3]) == list(range(min(3, len(index)))))
        )
        if not plain:
            frame = frame.reset_index()
        columns = [str(c) for c in frame.columns]
        return columns, [list(row) for row in frame.itertuples(index=False)]
    raise ConfigurationError(
        f"Section.table expects a pandas DataFrame or a list of dicts; got {type(data).__name__}."
    )
