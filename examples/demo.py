"""kiln's demo: from an exploration notebook to a served, monitored model, on one machine.

Run with `make demo` (or `python examples/demo.py` in the project's env). On the
breast-cancer data that ships with scikit-learn, step by step:

1. the exploration notebook (examples/demo/explore.py), run with parameters;
2. the pipeline (examples/demo/demo_steps.py), twice: the second run comes from the cache;
3. a small sweep of the pipeline's `train.C`;
4. the winner refitted and evaluated on the test rows, with the standard plots;
5. registered as a new version of `breast-cancer`, with the alias `production`;
6. `kiln serve` started, real traffic sent, then drifted traffic; the server stopped;
7. `kiln monitor` on each window of traffic: the drifted one alerts, with a report;
8. the `kiln ui` command, and the page that shows each result.

Runs and models land in the embedded store (the nearest .kiln/ folder) unless KILN_STORE
or KILN_HOME say otherwise; files (the executed notebook, the reports, the server's log)
in examples/demo/out/ (or --out DIR). Run it again: the pipeline comes from the cache and
the model gets a new version.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

import kiln
from kiln.registry import set_alias

DEMO = Path(__file__).resolve().parent / "demo"
sys.path.insert(0, str(DEMO))
import demo_steps  # noqa: E402 - the pipeline's steps live beside the demo's other files

EXPERIMENT = "demo"
MODEL = "breast-cancer"
URI = f"models:/{MODEL}@production"
GRID = [0.01, 0.1, 1.0, 10.0]
# The drifted traffic: the scanner was recalibrated and every size reads 30% high.
SIZES = ["mean radius", "mean perimeter", "mean area", "worst radius", "worst perimeter"]
UI = "http://127.0.0.1:5000"
STAGES = (
    "Explore: the notebook, run with parameters",
    "Pipeline: load, split, train, score; then again, from the cache",
    "Sweep: the pipeline's train.C, scored on the validation rows",
    "Evaluate: the winner, refitted, on the test rows, with plots",
    "Register: a new version of breast-cancer, alias production",
    "Serve: kiln serve, real traffic, then drifted traffic",
    "Monitor: kiln monitor on each window of traffic",
    "Look: the dashboard",
)

console = Console(highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEMO / "out", help="folder for the demo's files"
    )
    out: Path = parser.parse_args(argv).out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    # A SIGTERM (a CI job cancelled, `timeout`) ends the demo through its `finally`s too,
    # so the server it started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    params = yaml.safe_load((DEMO / "params.yaml").read_text(encoding="utf-8"))
    seen: dict[str, Any] = {}

    heading(1)
    explore(params, out, seen)
    heading(2)
    pipeline = kiln.Pipeline.from_module(demo_steps, name=MODEL, root=DEMO)
    splits = run_pipeline(pipeline, seen)
    heading(3)
    best_c = sweep(pipeline, seen)
    heading(4)
    uri, X_test = evaluate(best_c, splits, out, seen)
    heading(5)
    register(uri, seen)
    heading(6)
    windows = serve(X_test, out, seen)
    heading(7)
    monitor(windows, out, seen)
    heading(8)
    summary(out, seen, time.perf_counter() - started)
    return 0


def heading(n: int) -> None:
    console.print(f"\n[bold cyan]{n}/{len(STAGES)}  {STAGES[n - 1]}[/]")


def say(line: str, *, markup: bool = True) -> None:
    """A detail line under the heading; never wrapped, so paths and URLs stay whole."""
    console.print(f"  {line}", soft_wrap=True, markup=markup)


def short(run_id: str) -> str:
    return run_id[:12]


def shown(path: Path) -> str:
    """A path as the user can type it: relative to the working directory when below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------ 1. explore
def explore(params: dict[str, Any], out: Path, seen: dict[str, Any]) -> None:
    given = {"test_size": params["test_size"], "seed": params["seed"]}
    with console.status("Running explore.py top to bottom in a fresh kernel..."):
        result = kiln.run_notebook(
            DEMO / "explore.py",
            given,
            output=out / "explore.ipynb",
            experiment=EXPERIMENT,
            name="explore",
        )
    metrics = kiln.get_run(result.run_id).metrics
    recorded = kiln.notebook_results(result.run_id)
    seen["notebook"] = result.run_id
    say(
        f"explore.py with {', '.join(f'{k}={v}' for k, v in given.items())}: "
        f"run {short(result.run_id)} ({result.seconds:.1f} s)"
    )
    say(
        f"{metrics['rows']:.0f} tumours, {metrics['features']:.0f} measurements, "
        f"{metrics['benign_share']:.0%} benign"
    )
    say(f"baseline, a scaled logistic regression: AUC {metrics['baseline_cv_auc']:.3f} (5-fold)")
    say(f"best separated by: {', '.join(recorded['top_features'][:2])}, ...")
    say(f"the executed notebook: {shown(out / 'explore.ipynb')}")


# ----------------------------------------------------------------- 2. pipeline
def run_pipeline(pipeline: kiln.Pipeline, seen: dict[str, Any]) -> dict[str, pd.DataFrame]:
    with console.status("Running the pipeline..."):
        first = pipeline.run(experiment=EXPERIMENT)
    with console.status("Running it again..."):
        second = pipeline.run(experiment=EXPERIMENT)
    assert second.run_id is not None
    seen["pipeline"] = second.run_id

    def cell(outcome: Any) -> str:
        if outcome.status == "cached":
            return "[green]cached[/]"
        return f"ran ({outcome.seconds or 0:.2f} s)"

    table = Table("step", "reads", "first run", "second run", box=None, padding=(0, 2))
    for name, step in pipeline.graph().items():
        reads = ", ".join(step) or "the dataset"
        table.add_row(name, reads, cell(first.steps[name]), cell(second.steps[name]))
    console.print(table)
    if not first.ran:
        say("(cached the first time too: an earlier demo ran these steps)")
    say("a step's cache key: its code, the params it reads, its inputs' content")
    say(f"pipeline run {short(second.run_id)}, a child run per step")
    return second["split"]


# -------------------------------------------------------------------- 3. sweep
def sweep(pipeline: kiln.Pipeline, seen: dict[str, Any]) -> float:
    with console.status(f"Sweeping train.C over {GRID}..."):
        found = pipeline.sweep(
            {"train.C": GRID}, objective="auc", experiment=EXPERIMENT, name="sweep train.C"
        )
    best = found.best
    assert best is not None, "every trial of the sweep failed"
    seen["sweep"] = found.run_id
    seen["trials"] = [t.run_id for t in found.trials]
    table = Table("train.C", "validation AUC", "accuracy", "", box=None, padding=(0, 2))
    for trial in found.trials:
        mark = "[bold green]best[/]" if trial.run_id == best.run_id else ""
        table.add_row(
            f"{trial.params['train.C']:g}",
            f"{trial.metrics['auc']:.4f}",
            f"{trial.metrics['accuracy']:.4f}",
            mark,
        )
    console.print(table)
    say(
        f"{len(found.trials)} trials ({found.seconds:.1f} s), each a pipeline run, load and split cached"
    )
    say(f"sweep run {short(found.run_id)}, a child run per trial")
    return float(best.params["train.C"])


# ----------------------------------------------------------------- 4. evaluate
def evaluate(
    best_c: float, splits: dict[str, pd.DataFrame], out: Path, seen: dict[str, Any]
) -> tuple[str, pd.DataFrame]:
    target = demo_steps.TARGET
    fit_rows = pd.concat([splits["train"], splits["valid"]])
    test = splits["test"]
    X_test = test.drop(columns=target)
    with (
        console.status(f"Refitting C={best_c:g} on the train and validation rows..."),
        kiln.start_run(
            name=f"{MODEL} C={best_c:g}",
            experiment=EXPERIMENT,
            params={"C": best_c},
            tags={"demo.sweep": seen["sweep"], "demo.pipeline": seen["pipeline"]},
        ) as run,
    ):
        kiln.log_dataset(fit_rows, role="train", name="breast_cancer")
        kiln.log_dataset(test, role="test", name="breast_cancer")
        # kiln.Model logs the estimator's params, the fit time and the training data.
        model = kiln.Model(demo_steps._model(best_c)).fit(
            fit_rows.drop(columns=target), fit_rows[target]
        )
        result = kiln.evaluate(model, X_test, test[target], title=f"{MODEL}, C={best_c:g}")
        # The saved model: its files, signature, reference profile and sha256 hashes.
        uri = model.save()
    result.save_report(out / "evaluation.html")
    seen["release"] = run.id
    m = result.metrics
    say(f"C={best_c:g}, refitted on {len(fit_rows)} rows: run {short(run.id)}")
    say(
        f"{len(test)} test rows: AUC {m['roc_auc']:.4f}, accuracy {m['accuracy']:.4f}, "
        f"recall {m['recall']:.4f}"
    )
    say(f"{len(result.figures)} plots: {', '.join(list(result.figures)[:4])}, ...")
    say(f"logged under evaluation/; the report: {shown(out / 'evaluation.html')}")
    return uri, X_test


# ----------------------------------------------------------------- 5. register
def register(uri: str, seen: dict[str, Any]) -> None:
    version = kiln.register(
        uri, MODEL, description="Benign (1) or malignant (0), from 30 tumour measurements."
    )
    set_alias(MODEL, "production", version.version)
    seen["version"] = version.version
    say(f"{MODEL} version {version.version}: {uri}")
    say(f"{URI} -> version {version.version}")


# -------------------------------------------------------------------- 6. serve
def kiln_command() -> list[str]:
    """The `kiln` of this env (the demo runs in the project's env)."""
    beside = Path(sys.executable).with_name("kiln")
    found = str(beside) if beside.exists() else shutil.which("kiln")
    if found is None:
        raise SystemExit(
            "The `kiln` command is not installed in this Python env. Run the demo with "
            "`make demo`, or install kiln there: pip install -e '.[all]'."
        )
    return [found]


@contextmanager
def served(out: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`kiln serve` on a free loopback port, stopped (gracefully) however the block ends."""
    port_file = out / "serve.port"
    port_file.unlink(missing_ok=True)
    log = (out / "serve.log").open("wb")
    command = [
        *kiln_command(),
        "serve",
        URI,
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--log-rate",
        "1",
        "--log-flush",
        "0.2",
    ]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text().strip()):
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise SystemExit(
                    f"kiln serve did not start (exit status {server.poll()}); its log:\n"
                    + (out / "serve.log").read_text(encoding="utf-8", errors="replace")
                )
            time.sleep(0.1)
        yield server, f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        stop(server)
        log.close()
        port_file.unlink(missing_ok=True)


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()  # graceful: in-flight requests finish, the log is flushed
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def send(client: http.client.HTTPConnection, rows: pd.DataFrame) -> list[int]:
    """One request per tumour, as the clinic's software would send them."""
    answers = []
    for record in rows.to_dict("records"):
        client.request("POST", "/predict", json.dumps(record), {"content-type": "application/json"})
        response = client.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"kiln serve answered {response.status}: {body.decode()}")
        answers.append(int(json.loads(body)["predictions"][0]))
    return answers


def serve(X_test: pd.DataFrame, out: Path, seen: dict[str, Any]) -> list[tuple[str, str]]:
    drifted = X_test.assign(**{c: X_test[c] * 1.3 for c in SIZES})
    with console.status("Starting kiln serve..."), served(out) as (server, url):
        say(f"$ kiln serve {URI} --port 0 --log-rate 1: pid {server.pid}, {url}", markup=False)
        seen["server"] = (server.pid, url)
        client = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
        marks = [now()]
        for what, rows in (("real", X_test), ("drifted", drifted)):
            answers = send(client, rows)
            # The prediction log stamps each request to the millisecond: a pause on each
            # side of a window's end keeps every request in its own window.
            time.sleep(0.2)
            marks.append(now())
            time.sleep(0.2 if what == "real" else 0)
            malignant = answers.count(0) / len(answers)
            say(f"{len(answers)} {what} requests to /predict: {malignant:.0%} predicted malignant")
        client.close()
    say(f"(drifted: the scanner reads sizes 30% high: {', '.join(SIZES[:2])}, ...)")
    say(f"kiln serve stopped (exit status {server.returncode}); the prediction log is in the store")
    say(f"its output: {shown(out / 'serve.log')}")
    return [(marks[0], marks[1]), (marks[1], marks[2])]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ 7. monitor
def monitor(windows: list[tuple[str, str]], out: Path, seen: dict[str, Any]) -> None:
    seen["monitoring"] = []
    for what, (since, until) in zip(("real", "drifted"), windows, strict=True):
        args = ["monitor", URI, "--since", since, "--until", until]
        if what == "drifted":
            args += ["-o", shown(out / "monitor.html")]
        say(f"$ kiln {' '.join(args)}", markup=False)
        with console.status(f"kiln monitor, the {what} traffic..."):
            done = subprocess.run(
                [*kiln_command(), *args, "--json"], capture_output=True, text=True, timeout=300
            )
        if done.returncode not in (0, 1):
            raise SystemExit(f"kiln monitor failed (exit status {done.returncode}):\n{done.stderr}")
        report = json.loads(done.stdout)
        seen["monitoring"].append(report["run_id"])
        drift = report["drift"] or {"drifted_columns": [], "columns": []}
        drifted, checked = drift["drifted_columns"], len(drift["columns"])
        state = "[bold red]ALERT[/]" if done.returncode else "[green]no alert[/]"
        say(
            f"  {what} traffic, {report['n_current']} rows against {report['n_reference']} "
            f"training rows: {state} (exit status {done.returncode})"
        )
        if drifted:
            say(f"  drifted: {', '.join(drifted)} ({len(drifted)} of {checked})")
        else:
            say(f"  no drift in {checked} measurements")
        outputs = report["prediction"]
        if outputs is not None:
            say("  the predictions " + ("drifted too" if outputs["drifted"] else "held"))
        quality = [q for q in report["quality"] if q.get("severity") in ("error", "warning")]
        if quality:
            say(f"  {len(quality)} data-quality findings")
    say(f"the report: {shown(out / 'monitor.html')}")


# ------------------------------------------------------------------ 8. summary
def summary(out: Path, seen: dict[str, Any], seconds: float) -> None:
    env = {k: os.environ[k] for k in ("KILN_STORE", "KILN_HOME") if os.environ.get(k)}
    prefix = "".join(f"{k}={v} " for k, v in env.items()) + shown(Path(kiln_command()[0]))
    say(f"the store: {kiln.get_client().store.url}", markup=False)
    say("start the dashboard:")
    say(f"  {prefix} ui", markup=False)

    trials = ",".join(short(t) for t in seen["trials"])
    rows = [
        (
            "the notebook, executed with its parameters",
            f"/runs/{short(seen['notebook'])}/artifacts/notebook/explore.html",
        ),
        ("the pipeline's graph, its second run cached", f"/pipelines/{short(seen['pipeline'])}"),
        ("the sweep's trials side by side", f"/compare?runs={trials}"),
        ("the winner's evaluation: metrics, plots, report", f"/runs/{short(seen['release'])}"),
        (f"version {seen['version']} and its production alias", f"/models/{MODEL}"),
        ("the drift kiln monitor found, window by window", f"/monitoring/{MODEL}"),
    ]
    console.print(f"\n[bold]What just happened, and where to look[/] ({seconds:.0f} s in all)")
    for what, path in rows:
        say(f"{what}:")
        say(f"  {UI}{path}", markup=False)
    say(f"files: {shown(out)}/: explore.ipynb, evaluation.html, monitor.html, serve.log")
    say("and on the command line:")
    for command in (
        f"runs list -e {EXPERIMENT}",
        f"models show {MODEL}@production",
        f"monitor {URI} --since 1h",
    ):
        say(f"  {prefix} {command}", markup=False)
    say("  (the last hour holds the drifted traffic too: it alerts, with exit status 1)")


if __name__ == "__main__":
    sys.exit(main())
