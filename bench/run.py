"""kiln's benchmarks against MLflow, the tool users would otherwise pick for tracking.

    python bench/run.py                     # everything, 5 repetitions (make bench)
    python bench/run.py --only a,c --reps 7
    python bench/run.py --quick             # 3 repetitions, smaller sizes, for development

Scenarios: a. log_metric rate; b. concurrent writers; c. creating runs; d. search over
10,000 runs; e. `--help`; f. hello world and reading it back; g. loading a saved model
and predicting; h. evaluating a classifier on 100,000 rows (vs `mlflow.models.evaluate`);
u. the dashboard's runs pages over 100,000 runs (`kiln ui` vs `mlflow server`); v. a
notebook as a web app (vs Voila); w. the team server driven by MLflow's client (`kiln
server` vs `mlflow server`). Each figure is the median of interleaved repetitions (kiln, MLflow,
kiln, ...), each a fresh process with a fresh store. MLflow gets its own env, created by
bench/setup_anchors.sh on first use. The results go to bench/RESULTS.md; scenarios not
run this time keep their earlier sections there, each with the date it was measured.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from _harness import BENCH, KILN_CLI, KILN_PY, MLFLOW_CLI, ROOT, BenchError, Workspace, run
from _report import Report, machine, stats, write
from _scenarios import FULL, QUICK, SCENARIOS, Context, Row, Scenario
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    keys = [s.key for s in SCENARIOS]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", default=",".join(keys), help=f"scenarios to run, e.g. a,c (of {','.join(keys)})"
    )
    parser.add_argument(
        "--reps", type=int, help="repetitions per figure (default 5; 3 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds before a child is killed"
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH / "RESULTS.md", help="where to write results"
    )
    args = parser.parse_args(argv)
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in args.only if k not in keys]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(keys)}")
    args.reps = args.reps or (3 if args.quick else 5)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def set_up(anchors: str = "all") -> None:
    """Check kiln's env and create the anchors' envs (idempotent)."""
    if not KILN_PY.exists() or not KILN_CLI.exists():
        sys.exit(f"No kiln env at {KILN_PY.parent.parent}: run `make env-dev` first.")
    env = {**os.environ, "KILN_BENCH_ANCHORS": anchors}
    done = subprocess.run(["bash", str(BENCH / "setup_anchors.sh")], check=False, env=env)
    if done.returncode != 0:
        sys.exit("bench/setup_anchors.sh could not create the anchors' envs (see above).")


def warm_up(ctx: Context, tools: tuple[str, ...] = ("kiln", "mlflow")) -> None:
    """Run each tool once, untimed, so neither pays for a cold page cache."""
    for tool in tools:
        with ctx.ws.fresh(f"warm-{tool}") as wd:
            ctx.step(f"warm-up: {tool} hello world")
            run(
                f"warm-up: {tool} hello",
                [*ctx.script(tool, "hello"), str(wd)],
                cwd=wd,
                timeout=ctx.timeout,
            )
            ctx.step(f"warm-up: {tool} --help")
            cli = KILN_CLI if tool == "kiln" else MLFLOW_CLI
            run(
                f"warm-up: {tool} --help",
                [str(cli), "--help"],
                cwd=wd,
                timeout=ctx.timeout,
                want_json=False,
            )


def measure(ctx: Context, scenario: Scenario, reps: int) -> dict[str, list[float]]:
    """Every figure of a scenario over `reps` interleaved repetitions."""
    scenario.prepare(ctx)
    figures: dict[str, list[float]] = {}
    for _ in range(reps):
        for name, value in scenario.rep(ctx).items():
            figures.setdefault(name, []).append(value)
    return figures


def _command() -> str:
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    python = (
        os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else "python"
    )
    cmd = shlex.join([python, script, *sys.argv[1:]])
    return f"make bench  →  {cmd}" if os.environ.get("MAKELEVEL") else cmd


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


class Steps:
    """The progress bar of the scenario being measured: one step per child process."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("warm-up", total=None)
        self.pending = False

    def start(self, title: str, total: int) -> None:
        self.progress.reset(self.task, total=total, description=title)
        self.pending = False

    def __call__(self, label: str) -> None:
        """A child is about to run: count the previous one as done."""
        self.progress.update(self.task, description=f"[cyan]{label}", advance=int(self.pending))
        self.pending = True

    def finish(self) -> None:
        self.progress.update(self.task, advance=int(self.pending))
        self.pending = False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _print_rows(scenario: Scenario, rows: list[Row]) -> None:
    for r in rows:
        if r.ratio is None and r.met is None:
            continue
        flag = "" if r.met is None else " [green]met[/]" if r.met else " [red]not met[/]"
        ratio = f" -> {r.ratio:,.2f}x" if r.ratio is not None else ""
        console.print(f"{scenario.key}. {r.measure}: kiln {r.kiln} | {r.anchor}{ratio}{flag}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
    console.rule("kiln benchmarks")
    chosen = [s for s in SCENARIOS if s.key in args.only]
    needs = sorted({name for s in chosen for name in s.setup})  # anchor envs to install
    mlflow = "mlflow" in needs
    set_up(",".join(needs))
    started = time.perf_counter()
    date = subprocess.run(
        ["date", "-u"], capture_output=True, text=True, check=False
    ).stdout.strip()
    ws = Workspace()
    report = Report(
        date, _command(), machine(ws.root), args.reps, args.quick, load=[f"before {_load()}"]
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            overall = progress.add_task("all scenarios", total=len(chosen))
            steps = Steps(progress)
            ctx = Context(ws, QUICK if args.quick else FULL, args.timeout, steps)
            warm_up(ctx, ("kiln", "mlflow") if mlflow else ("kiln",))
            for scenario in chosen:
                steps.start(
                    f"{scenario.key}. {scenario.title}",
                    scenario.steps * args.reps + scenario.prepare_steps,
                )
                load_before = _load()
                try:
                    figures = measure(ctx, scenario, args.reps)
                except BenchError as exc:
                    report.failures.append((scenario, str(exc)))
                    console.print(
                        f"[red]Scenario {scenario.key} ({scenario.title}) failed:[/red] {exc}"
                    )
                else:
                    rows = scenario.rows(ctx, stats(figures))
                    notes = scenario.describe(ctx) + ctx.notes.get(scenario.key, [])
                    report.tables.append((scenario, rows, notes))
                    report.per_rep.append((scenario.key, figures))
                    _print_rows(scenario, rows)
                report.scenario_load[scenario.key] = f"before {load_before}; after {_load()}"
                steps.finish()
                progress.advance(overall)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; cleaning up (RESULTS.md not written).[/yellow]")
        return 130
    finally:
        ws.close()
    report.seconds = time.perf_counter() - started
    report.load.append(f"after {_load()}")
    write(report, args.output)
    console.print(
        f"Results written to {os.path.relpath(args.output)} in {report.seconds / 60:.1f} min."
    )
    if report.failures:
        console.print(
            f"[red]{len(report.failures)} scenario(s) failed: {', '.join(s.key for s, _ in report.failures)}"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
