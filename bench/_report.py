"""bench/RESULTS.md: the machine, the versions, and one table per scenario.

A run of some scenarios (`--only g`) keeps the other scenarios' summary rows, sections
and per-repetition tables from the existing file; every section says when and how it
was measured, so figures from different runs are never mistaken for one run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from _harness import KILN_PY, MLFLOW_PY, ROOT, child_env
from _scenarios import SCENARIOS, Row, Scenario, Stats


def _out(cmd: list[str], cwd: Path = ROOT) -> str:
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=60, env=child_env()
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


_VERSIONS = """
import importlib.metadata as md, json, platform, sqlite3, sys
print(json.dumps({"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                  "version": md.version(sys.argv[1])}))
"""


def tool_versions(python: Path, dist: str) -> dict[str, str]:
    """The Python, SQLite and package version in one env."""
    text = _out([str(python), "-c", _VERSIONS, dist])
    return json.loads(text) if text else {"python": "?", "sqlite": "?", "version": "?"}


def machine(tmp: Path) -> list[str]:
    """Lines describing the machine the benchmark ran on."""
    mem_kb = _proc_field("/proc/meminfo", "MemTotal").split()[0]
    ram = f"{int(mem_kb) / 1024**2:.1f} GB" if mem_kb.isdigit() else "unknown"
    fs = _out(["df", "--output=fstype", str(tmp)]).splitlines()[-1:] or ["unknown"]
    return [
        f"{os.cpu_count()} cores, {ram} RAM, CPU: {_proc_field('/proc/cpuinfo', 'model name')}",
        f"{platform.system()} {platform.release()}; temp folders on {fs[0]}",
    ]


@dataclass
class Report:
    """Everything RESULTS.md shows."""

    date: str
    command: str
    machine: list[str]
    reps: int
    quick: bool
    seconds: float = 0.0
    load: list[str] = field(default_factory=list)
    scenario_load: dict[str, str] = field(default_factory=dict)  # key -> before/after
    tables: list[tuple[Scenario, list[Row], list[str]]] = field(default_factory=list)
    failures: list[tuple[Scenario, str]] = field(default_factory=list)
    per_rep: list[tuple[str, dict[str, list[float]]]] = field(default_factory=list)


def _ratio(r: Row) -> str:
    return "—" if r.ratio is None else f"{r.ratio:,.2f}x" if r.ratio < 10 else f"{r.ratio:,.0f}x"


def _met(r: Row) -> str:
    return "" if r.met is None else "met" if r.met else "**not met**"


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _line(r: Row) -> str:
    return f"{r.measure} | {r.kiln} | {r.anchor} | {_ratio(r)} | {r.target} | {_met(r)} |"


@dataclass
class Kept:
    """One scenario's lines in an existing RESULTS.md, carried into the next."""

    summary: list[str] = field(default_factory=list)
    section: list[str] = field(default_factory=list)
    per_rep: list[str] = field(default_factory=list)


_SECTION = re.compile(r"^## ([a-z])\. ")
_SUMMARY_ROW = re.compile(r"^\| ([a-z]) \|")
_PER_REP = re.compile(r"^\| ([a-z])\. figure \|")
_MEASURED = "_Measured "


def _header_measured(lines: list[str]) -> str:
    """A measured line for sections of a file written before sections had their own."""
    field_of = {}
    for line in lines:
        for name in ("Date", "Command", "Load average", "kiln", "Method"):
            if line.startswith(f"- **{name}"):
                field_of[name] = line.split("**", 2)[2].lstrip(":").strip()
    reps = re.search(r"median of (\d+)", field_of.get("Method", ""))
    commit = re.search(r"\(commit ([^)]*)\)", field_of.get("kiln", ""))
    load = field_of.get("Load average", "").removeprefix("(1/5/15 min)").strip()
    parts = [
        field_of.get("Date", "at an unknown date")
        + (f" with {field_of['Command']}" if "Command" in field_of else ""),
        f"{reps.group(1)} repetitions" if reps else "",
        f"load average (1/5/15 min) for the whole run {load}" if load else "",
        f"kiln commit {commit.group(1)}" if commit else "",
    ]
    return _MEASURED + "; ".join(p for p in parts if p) + "._"


def _previous(path: Path) -> dict[str, Kept]:
    """The scenarios of an existing RESULTS.md, by key ({} when there is none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    kept: dict[str, Kept] = {}
    default = _header_measured(lines)
    heading = ""
    section: list[str] | None = None  # the scenario section being read
    table: list[str] | None = None  # the per-repetition table being read
    for line in lines:
        if line.startswith("## "):
            heading, table = line, None
            match = _SECTION.match(line)
            section = kept.setdefault(match.group(1), Kept()).section if match else None
            if section is not None:
                section.append(line)
        elif section is not None:
            section.append(line)
        elif heading == "## Summary" and (m := _SUMMARY_ROW.match(line)):
            kept.setdefault(m.group(1), Kept()).summary.append(line)
        elif heading == "## Per-repetition figures":
            if m := _PER_REP.match(line):
                table = kept.setdefault(m.group(1), Kept()).per_rep
                table.append(line)
            elif table is not None and line.startswith("|"):
                table.append(line)
            else:
                table = None
    for k in kept.values():
        while k.section and not k.section[-1].strip():
            k.section.pop()
        if k.section and not any(line.startswith(_MEASURED) for line in k.section):
            k.section[1:1] = ["", default]
    return kept


def _section(scenario: Scenario, rows: list[Row], notes: list[str], measured: str) -> list[str]:
    lines = [f"## {scenario.key}. {scenario.title}", "", measured, ""]
    lines += [
        f"| measure | kiln | {scenario.anchor} | kiln vs {scenario.anchor} | target | |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [
        f"| {r.measure} | {r.kiln} | {r.anchor} | {_ratio(r)} | {r.target} | {_met(r)} |"
        for r in rows
    ]
    return lines + [""] + [f"- {n}" for n in notes]


def _mlflow_line(mlflow: dict[str, str], path: Path) -> str:
    """The header's MLflow line; without an MLflow env here (a run of scenarios that need
    none), the existing file's line, which the kept sections were measured with."""
    line = (
        f"- **MLflow** {mlflow['version']} in `bench/.envs/mlflow`, SQLite backend, Python "
        f"{mlflow['python']}, SQLite {mlflow['sqlite']}"
    )
    if mlflow["version"] != "?":
        return line
    with contextlib.suppress(OSError):
        for old in path.read_text(encoding="utf-8").splitlines():
            if old.startswith("- **MLflow** ") and "**MLflow** ?" not in old:
                return old
    return line


def write(report: Report, path: Path) -> None:
    """Write RESULTS.md, keeping the scenarios this run did not measure."""
    kiln = tool_versions(KILN_PY, "kiln-ml")
    mlflow = tool_versions(MLFLOW_PY, "mlflow")
    commit = _out(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = (
        " with uncommitted changes" if _out(["git", "status", "--porcelain", "--", "src"]) else ""
    )
    previous = _previous(path)
    ran = {s.key for s, _, _ in report.tables} | {s.key for s, _ in report.failures}
    kept = {k: v for k, v in previous.items() if k not in ran and v.section}
    order = {s.key: i for i, s in enumerate(SCENARIOS)}

    def measured(key: str) -> str:
        load = report.scenario_load.get(key, "; ".join(report.load))
        return (
            f"{_MEASURED}{report.date} with `{report.command}`"
            + (" (quick: smaller sizes)" if report.quick else "")
            + f"; {report.reps} repetitions; load average (1/5/15 min) {load}; "
            f"kiln commit {commit}{dirty}._"
        )

    summary: dict[str, list[str]] = {k: v.summary for k, v in kept.items()}
    sections: dict[str, list[str]] = {k: v.section for k, v in kept.items()}
    per_rep: dict[str, list[str]] = {k: v.per_rep for k, v in kept.items()}
    for scenario, rows, notes in report.tables:
        summary[scenario.key] = [
            f"| {scenario.key} | {_line(r)}" for r in rows if r.met is not None
        ]
        sections[scenario.key] = _section(scenario, rows, notes, measured(scenario.key))
    for scenario, message in report.failures:
        summary[scenario.key] = [
            f"| {scenario.key} | {scenario.title} | | | failed | | **not measured** |"
        ]
        sections[scenario.key] = [
            f"## {scenario.key}. {scenario.title}: FAILED",
            "",
            measured(scenario.key),
            "",
            "```",
            message,
            "```",
        ]
    for key, figures in report.per_rep:
        reps = max(len(v) for v in figures.values())
        table = ["| " + " | ".join([f"{key}. figure", *map(str, range(1, reps + 1))]) + " |"]
        table.append("| --- |" + " ---: |" * reps)
        table += [f"| {n} | " + " | ".join(map(_num, vals)) + " |" for n, vals in figures.items()]
        per_rep[key] = table
    keys = sorted(sections, key=lambda k: (order.get(k, len(order)), k))
    this_run = ", ".join(sorted(ran, key=lambda k: order.get(k, len(order))))
    older = ", ".join(k for k in keys if k not in ran)

    lines = [
        "# kiln benchmark results",
        "",
        "Written by `bench/run.py` (`make bench`); rerun it rather than editing this file.",
        "",
        f"- **Date:** {report.date}",
        f"- **Command:** `{report.command}`" + (" (quick: smaller sizes)" if report.quick else ""),
        f"- **Scenarios:** this run measured {this_run or 'none'}"
        + (
            f"; {older} are kept from earlier runs (each section says when it was measured)."
            if older
            else "."
        ),
        f"- **Machine:** {'; '.join(report.machine)}",
        f"- **Load average** (1/5/15 min) {'; '.join(report.load)}",
        f"- **kiln** {kiln['version']} (commit {commit}{dirty}), Python {kiln['python']}, "
        f"SQLite {kiln['sqlite']}",
        _mlflow_line(mlflow, path),
        f"- **Method:** every figure is the median of {report.reps} interleaved repetitions (kiln, "
        "MLflow, kiln, MLflow, ...), min-max in brackets; each repetition is a fresh process "
        "with a fresh temporary folder and store. Ratios are kiln's advantage, from the medians: "
        "kiln's rate ÷ MLflow's, or MLflow's time ÷ kiln's (below 1, kiln is slower).",
        f"- **Duration:** {report.seconds / 60:.1f} min",
        "",
        "## Summary",
        "",
        "| | measure | kiln | MLflow | kiln vs MLflow | target | |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for key in keys:
        lines += summary.get(key, [])
    for key in keys:
        lines += ["", *sections[key]]
    lines += [
        "",
        "## How the children run",
        "",
        "- Scenario scripts (`bench/scenarios/`) run as fresh subprocesses: kiln's with "
        "`.venv/bin/python`, MLflow's with `bench/.envs/mlflow/bin/python`. They are copied "
        "to a temporary folder outside the git checkout, and run in a fresh temporary folder, "
        "so neither tool finds a git repository to record.",
        "- In-process figures use `time.perf_counter` inside the child; `--help`, hello "
        "world and model loading are wall times of the whole process. Peak RSS comes from "
        "`wait4` on each child.",
        "- Children get no `KILN_*`, `MLFLOW_*` or `PYTHON*` variables from the caller; MLflow "
        "runs with `MLFLOW_DISABLE_TELEMETRY=true` (no internet here: its telemetry calls "
        "would be timed instead of MLflow).",
        "- Before measuring, both tools run once untimed (hello world and `--help`) so that "
        "imports come from a warm page cache for both.",
        "",
        "## Per-repetition figures",
        "",
        "In the order measured; rates per second, times in seconds, latencies in ms, RSS in MB.",
    ]
    for key in keys:
        if per_rep.get(key):
            lines += ["", *per_rep[key]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def stats(values: dict[str, list[float]]) -> Stats:
    """Median, min and max of each figure."""
    from statistics import median

    return {k: (median(v), min(v), max(v)) for k, v in values.items()}
