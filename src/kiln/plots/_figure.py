"""`Figure`: what a plot shows, drawn two ways (a matplotlib PNG and Plotly JSON).

Every kiln plot is first a plain description: a title, axis labels and traces holding
the values plotted. The two renderers draw that description in one house style, so
the PNG and the interactive chart always show the same thing, and tests can check the
values themselves.
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln._exceptions import ConfigurationError, PlotError

__all__ = ["PALETTE", "Figure", "Trace"]

# One palette for every plot (colour-blind safe, Okabe-Ito order).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
GREY = "#8c8c8c"
_KINDS = ("line", "scatter", "bar", "barh", "heatmap")


@dataclass
class Trace:
    """One series of a figure.

    Attributes:
        kind: "line", "scatter", "bar" (vertical), "barh" (horizontal) or "heatmap".
        x: The x values (category labels for bars and heatmaps).
        y: The y values (category labels for horizontal bars and heatmaps).
        name: The legend entry (empty for none).
        z: For a heatmap, rows of cell values (len(y) rows of len(x)).
        text: For a heatmap, the label printed in each cell.
        color: A colour; by default the palette's next one.
        dash: Draw a dashed line (references such as the chance diagonal).
        error: For bars, an error bar length per bar.
    """

    kind: str
    x: list[Any]
    y: list[Any]
    name: str = ""
    z: list[list[float]] | None = None
    text: list[list[str]] | None = None
    color: str | None = None
    dash: bool = False
    error: list[float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise PlotError(f"Trace kind {self.kind!r} is not one of {', '.join(_KINDS)}.")


@dataclass
class Figure:
    """A plot: title, axis labels and traces, renderable as PNG or Plotly JSON.

    In a notebook a `Figure` displays itself (as PNG). `values` holds the key numbers
    the plot is about (the AUC of a ROC curve, say), computed exactly on all the data
    even when the drawn curve is thinned for speed.

    Attributes:
        kind: The plot's name ("roc", "confusion_matrix", ...).
        title: The title.
        x_label: The x axis label.
        y_label: The y axis label.
        traces: The series drawn, in order.
        values: The key numbers shown (name -> value).
        x_range: Fixed x limits, or None.
        y_range: Fixed y limits, or None.
        square: Draw with equal aspect (ROC, calibration).
    """

    kind: str
    title: str
    x_label: str
    y_label: str
    traces: list[Trace] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    square: bool = False

    def __repr__(self) -> str:
        return f"<kiln.plots.Figure {self.kind} {self.title!r}: {len(self.traces)} traces>"

    # --------------------------------------------------------------- matplotlib
    def to_matplotlib(self, *, width: float = 6.4, height: float = 4.8) -> Any:
        """Draw with matplotlib's Agg backend; return a `matplotlib.figure.Figure`.

        The figure is made without pyplot, so nothing global changes and no window opens.
        """
        from kiln._extras import require

        require("matplotlib", "evaluate", "Drawing a plot")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure as MplFigure

        # Fixed margins rather than a layout engine: constrained layout measures every
        # label twice per save and took a third of the drawing time.
        if self.square:
            width = min(width, height * 1.1)
        fig = MplFigure(figsize=(width, height), dpi=100)
        FigureCanvasAgg(fig)
        longest = max(
            (len(str(v)) for t in self.traces if t.kind in ("barh", "heatmap") for v in t.y),
            default=0,
        )
        left = min(0.45, 0.1 + 0.012 * max(0, longest - 4))
        right = 0.88 if any(t.kind == "heatmap" for t in self.traces) else 0.96
        fig.subplots_adjust(left=left, right=right, top=0.9, bottom=0.12)
        ax = fig.add_subplot()
        colors = iter(PALETTE * 4)
        bars = [t for t in self.traces if t.kind in ("bar", "barh")]
        for trace in self.traces:
            color = trace.color or (GREY if trace.dash else next(colors))
            _draw_mpl(ax, fig, trace, color, bars)
        ax.set_title(self.title, fontsize=12, loc="left")
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(self.y_label)
        if self.x_range:
            ax.set_xlim(*self.x_range)
        if self.y_range:
            ax.set_ylim(*self.y_range)
        if self.square:
            ax.set_aspect("equal", adjustable="box")
        if any(t.kind != "heatmap" for t in self.traces):
            ax.grid(True, color="#e5e5e5", linewidth=0.8)
            ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if any(t.name for t in self.traces if t.kind != "heatmap"):
            ax.legend(loc="best", frameon=False, fontsize=9)
        return fig

    def to_png(self, *, dpi: int = 100) -> bytes:
        """The plot as PNG bytes."""
        fig = self.to_matplotlib()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.to_png()

    # ------------------------------------------------------------------- plotly
    def to_plotly(self) -> dict[str, Any]:
        """The plot as a Plotly figure dict (`{"data": [...], "layout": {...}}`)."""
        colors = iter(PALETTE * 4)
        data = []
        for trace in self.traces:
            color = trace.color or (GREY if trace.dash else next(colors))
            data.append(_plotly_trace(trace, color))
        layout: dict[str, Any] = {
            "title": {"text": self.title, "x": 0.01, "xanchor": "left"},
            "xaxis": {"title": {"text": self.x_label}, "gridcolor": "#e5e5e5", "zeroline": False},
            "yaxis": {"title": {"text": self.y_label}, "gridcolor": "#e5e5e5", "zeroline": False},
            "template": "none",
            "plot_bgcolor": "white",
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "legend": {"bgcolor": "rgba(255,255,255,0.6)"},
            "barmode": "group",
            "font": {"family": "DejaVu Sans, Arial, sans-serif", "size": 12},
        }
        if self.x_range:
            layout["xaxis"]["range"] = list(self.x_range)
        if self.y_range:
            layout["yaxis"]["range"] = list(self.y_range)
        if self.square:
            layout["yaxis"]["scaleanchor"] = "x"
            layout["yaxis"]["scaleratio"] = 1
        if any(t.kind == "barh" for t in self.traces):
            layout["yaxis"]["autorange"] = "reversed"  # the first bar on top
        if any(t.kind == "heatmap" for t in self.traces):
            layout["yaxis"]["autorange"] = "reversed"
            layout["xaxis"]["type"] = layout["yaxis"]["type"] = "category"
        return {"data": data, "layout": layout}

    def to_json(self) -> str:
        """The Plotly figure as JSON (written by plotly's own `plotly.io.to_json`)."""
        from kiln._extras import require

        pio = require("plotly.io", "evaluate", "Writing a Plotly chart")
        return str(pio.to_json(self.to_plotly(), validate=False))

    # ------------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the plot to `path`: `.png` (PNG), `.json` (Plotly) or `.html` (a report).

        Returns:
            The path written.
        """
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".png":
            target.write_bytes(self.to_png())
        elif suffix == ".json":
            target.write_text(self.to_json(), encoding="utf-8")
        elif suffix in (".html", ".htm"):
            from kiln.report import Report

            report = Report(self.title)
            report.section(self.title).figure(self)
            report.save(target)
        else:
            raise ConfigurationError(
                f"Cannot save a plot as {target.name!r}: use a .png, .json or .html file name."
            )
        return target

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: kind, title, labels, values and traces."""
        return json.loads(json.dumps(self.__dict__, default=_plain_default))


def _plain_default(value: Any) -> Any:
    if hasattr(value, "__dict__"):
        return value.__dict__
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _draw_mpl(ax: Any, fig: Any, trace: Trace, color: str, bars: list[Trace]) -> None:
    label = trace.name or None
    if trace.kind == "line":
        ax.plot(
            trace.x,
            trace.y,
            color=color,
            linewidth=1.2 if trace.dash else 2.0,
            linestyle="--" if trace.dash else "-",
            label=label,
        )
    elif trace.kind == "scatter":
        ax.scatter(trace.x, trace.y, s=8, alpha=0.5, color=color, label=label, linewidths=0)
    elif trace.kind in ("bar", "barh"):
        n, i = len(bars), bars.index(trace)
        width = 0.8 / n
        positions = [p - 0.4 + width * (i + 0.5) for p in range(len(trace.x))]
        if trace.kind == "bar":
            ax.bar(positions, trace.y, width, color=color, label=label, yerr=trace.error)
            ax.set_xticks(range(len(trace.x)), [str(v) for v in trace.x])
        else:
            positions = [p - 0.4 + width * (i + 0.5) for p in range(len(trace.y))]
            ax.barh(positions, trace.x, width, color=color, label=label, xerr=trace.error)
            ax.set_yticks(range(len(trace.y)), [str(v) for v in trace.y])
            if i == 0:
                ax.invert_yaxis()  # the first bar on top
    else:  # heatmap
        z = trace.z or []
        image = ax.imshow(z, cmap="Blues", aspect="auto")
        ax.set_xticks(range(len(trace.x)), [str(v) for v in trace.x])
        ax.set_yticks(range(len(trace.y)), [str(v) for v in trace.y])
        finite = [v for row in z for v in row if not math.isnan(v)]
        middle = (max(finite) + min(finite)) / 2 if finite else 0
        for r, row in enumerate(z):
            for c, value in enumerate(row):
                cell = trace.text[r][c] if trace.text else f"{value:g}"
                ink = "white" if value > middle else "black"
                ax.text(c, r, cell, ha="center", va="center", color=ink, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03)


def _plotly_trace(trace: Trace, color: str) -> dict[str, Any]:
    name = trace.name
    if trace.kind in ("line", "scatter"):
        out: dict[str, Any] = {
            "type": "scattergl" if trace.kind == "scatter" and len(trace.x) > 5000 else "scatter",
            "x": list(trace.x),
            "y": list(trace.y),
            "name": name,
            "showlegend": bool(name),
        }
        if trace.kind == "line":
            out["mode"] = "lines"
            out["line"] = {"color": color, "width": 1.5 if trace.dash else 2.5}
            if trace.dash:
                out["line"]["dash"] = "dash"
        else:
            out["mode"] = "markers"
            out["marker"] = {"color": color, "size": 5, "opacity": 0.5}
        return out
    if trace.kind in ("bar", "barh"):
        out = {
            "type": "bar",
            "x": list(trace.x),
            "y": list(trace.y),
            "name": name,
            "showlegend": bool(name),
            "marker": {"color": color},
        }
        if trace.kind == "barh":
            out["orientation"] = "h"
        if trace.error is not None:
            out["error_x" if trace.kind == "barh" else "error_y"] = {
                "type": "data",
                "array": list(trace.error),
            }
        return out
    return {
        "type": "heatmap",
        "x": [str(v) for v in trace.x],
        "y": [str(v) for v in trace.y],
        "z": trace.z,
        "text": trace.text,
        "texttemplate": "%{text}",
        "colorscale": "Blues",
        "name": name,
    }
