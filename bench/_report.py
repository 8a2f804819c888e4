"""bench/RESULTS.md: the machine, the versions, and one table per scenario."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from _harness import KILN_PY, MLFLOW_PY, ROOT, child_env
from _scenarios import Row, Scenario, Stats


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


def write(report: Report, path: Path) -> None:
    """Write RESULTS.md."""
    kiln = tool_versions(KILN_PY, "kiln-ml")
    mlflow = tool_versions(MLFLOW_PY, "mlflow")
    commit = _out(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = (
        " with uncommitted changes" if _out(["git", "status", "--porcelain", "--", "src"]) else ""
    )
    lines = [
        "# kiln benchmark results",
        "",
        "Written by `bench/run.py` (`make bench`); rerun it rather than editing this file.",
        "",
        f"- **Date:** {report.date}",
        f"- **Command:** `{report.command}`" + (" (quick: smaller sizes)" if report.quick else ""),
        f"- **Machine:** {'; '.join(report.machine)}",
        f"- **Load average** (1/5/15 min) {'; '.join(report.load)}",
        f"- **kiln** {kiln['version']} (commit {commit}{dirty}), Python {kiln['python']}, "
        f"SQLite {kiln['sqlite']}",
        f"- **MLflow** {mlflow['version']} in `bench/.envs/mlflow`, SQLite backend, Python "
        f"{mlflow['python']}, SQLite {mlflow['sqlite']}",
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
    for scenario, rows, _ in report.tables:
        lines += [f"| {scenario.key} | {_line(r)}" for r in rows if r.met is not None]
    for scenario, _ in report.failures:
        lines.append(f"| {scenario.key} | {scenario.title} | | | failed | | **not measured** |")
    for scenario, rows, notes in report.tables:
        lines += ["", f"## {scenario.key}. {scenario.title}", ""]
        lines += [
            "| measure | kiln | MLflow | kiln vs MLflow | target | |",
            "| --- | ---: | ---: | ---: | --- | --- |",
        ]
        lines += [
            f"| {r.measure} | {r.kiln} | {r.anchor} | {_ratio(r)} | {r.target} | {_met(r)} |"
            for r in rows
        ]
        lines += [""] + [f"- {n}" for n in notes]
    for scenario, message in report.failures:
        lines += ["", f"## {scenario.key}. {scenario.title}: FAILED", "", "```", message, "```"]
    lines += [
        "",
        "## How the children run",
        "",
        "- Scenario scripts (`bench/scenarios/`) run as fresh subprocesses: kiln's with "
        "`.venv/bin/python`, MLflow's with `bench/.envs/mlflow/bin/python`. They are copied "
        "to a temporary folder outside the git checkout, and run in a fresh temporary folder, "
        "so neither tool finds a git repository to record.",
        "- In-process figures use `time.perf_counter` inside the child; `--help` and hello "
        "world are wall times of the whole process. Peak RSS comes from `wait4` on each child.",
        "- Children get no `KILN_*`, `MLFLOW_*` or `PYTHON*` variables from the caller; MLflow "
        "runs with `MLFLOW_DISABLE_TELEMETRY=true` (no internet here: its telemetry calls "
        "would be timed instead of MLflow).",
        "- Before measuring, both tools run once untimed (hello world and `--help`) so that "
        "imports come from a warm page cache for both.",
        "",
        "## Per-repetition figures",
        "",
        "In the order measured; rates per second, times in seconds, RSS in MB.",
    ]
    for key, figures in report.per_rep:
        reps = max(len(v) for v in figures.values())
        lines += ["", "| " + " | ".join([f"{key}. figure", *map(str, range(1, reps + 1))]) + " |"]
        lines.append("| --- |" + " ---: |" * reps)
        lines += [f"| {n} | " + " | ".join(map(_num, vals)) + " |" for n, vals in figures.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def stats(values: dict[str, list[float]]) -> Stats:
    """Median, min and max of each figure."""
    from statistics import median

    return {k: (median(v), min(v), max(v)) for k, v in values.items()}
