"""Terminal output: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

__all__ = ["console", "echo_json", "fmt_time", "print_error", "table"]


def console(stderr: bool = False) -> Any:
    """A Rich console (imported lazily; Rich costs ~30 ms to import)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output is for grep and less: do not fold it at 80 columns.
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def print_error(exc: BaseException) -> None:
    """Print a kiln error as `Error: ...` in red on stderr."""
    from rich.markup import escape

    # soft_wrap: never fold the message, or a command it suggests breaks when copied.
    console(stderr=True).print(f"[bold red]Error:[/] {escape(str(exc))}", soft_wrap=True)


def echo_json(data: Any) -> None:
    """Write `data` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


def fmt_time(ms: int | None) -> str:
    """A millisecond timestamp as local 'YYYY-MM-DD HH:MM:SS'."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_value(value: Any) -> str:
    """A compact rendering of a metric or param value."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a Rich table."""
    from rich.table import Table

    t = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        show_header=any(columns),
    )
    for col in columns:
        t.add_column(col, no_wrap=True, overflow="ellipsis")
    for row in rows:
        t.add_row(*(fmt_value(v) for v in row))
    console().print(t)


def is_tty() -> bool:
    """Whether stdout is a terminal."""
    return sys.stdout.isatty()
