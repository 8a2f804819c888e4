"""v. A notebook served as a web app: `kiln notebook app` vs Voilà 0.5.13.

The same 10-cell notebook (bench/scenarios/sales_report.ipynb: a `parameters` cell,
pandas, a matplotlib plot) behind each server, each in its own env. Each repetition
starts each server afresh (bench/scenarios/app_bench.py) and times, from the client:
a first visit (kiln: submit the defaults, a fresh execution, to the rendered result;
Voilà: its page, which executes the notebook), a repeated visit with the same
parameters (kiln answers from its cache), and 20 concurrent viewers of one result.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess

from _harness import BENCH, KILN_CLI, KILN_PY, BenchError, child_env, run
from _scenarios import Context, Figures, Row, Scenario, Stats, _cell

VOILA_ENV = BENCH / ".envs" / "voila"
VOILA_PY = VOILA_ENV / "bin" / "python"
NOTEBOOK = "sales_report.ipynb"
TOOLS = ("kiln", "voila")
FIRST = 2  # first visits per repetition and server
REPEATS = {"kiln": 20, "voila": 2}  # repeated visits (Voilà executes the notebook each time)
VIEWERS = 20
SECONDS = 3.0  # each concurrent-viewer phase of kiln
CACHED_MS = 50.0  # the goal for a cached result's server time
LIBS = ("pandas", "matplotlib", "numpy", "ipykernel")


def _ms(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}" if v < 10 else f"{v:,.1f}"


def _busy(seconds: float = 1.0) -> float:
    """How many cores were busy, on average, over the next `seconds` (/proc/stat)."""
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]
    share = (busy1 - busy0) / max(1, total1 - total0)
    return share * (os.cpu_count() or 1)


def _versions(python: str, *dists: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as md, json, sys\n"
        "print(json.dumps({d: md.version(d) for d in sys.argv[1:]}))"
    )
    try:
        done = subprocess.run(
            [python, "-c", code, *dists],
            capture_output=True, text=True, timeout=60, env=child_env(), check=True,
        )  # fmt: skip
        versions: dict[str, str] = json.loads(done.stdout)
        return versions
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}


class NotebookApp(Scenario):
    key, title = "v", "a notebook as a web app: kiln notebook app vs Voilà"
    setup = ("voila",)
    anchor = "Voilà"
    steps = 2

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, str]] = {}
        self.checks: dict[str, list[str]] = {"kiln": [], "voila": []}
        self.loads: list[float] = []
        self.page_kb: dict[str, float] = {}
        self.ttfb: list[float] = []  # Voilà's first byte, ms, per repetition
        self.slowest_cached = 0.0  # kiln's slowest cached answer (server time), ms
        self.crowd_server: list[float] = []  # kiln's median Server-Timing under the viewers

    def prepare(self, ctx: Context) -> None:
        if not (VOILA_ENV / "bin" / "voila").exists():
            raise BenchError(
                f"No Voilà env at {VOILA_ENV}: run KILN_BENCH_ANCHORS=voila bash "
                "bench/setup_anchors.sh."
            )
        self.versions = {
            "kiln": _versions(str(KILN_PY), *LIBS),
            "voila": _versions(str(VOILA_PY), *LIBS, "voila"),
        }

    def _server(self, ctx: Context, tool: str) -> dict:
        label = f"{self.key}. {tool}"
        ctx.step(label)
        self.loads.append(_busy())
        with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
            cmd = [
                str(KILN_PY),
                ctx.ws.script("app_bench.py"),
                str(wd),
                tool,
                ctx.ws.script(NOTEBOOK),
                str(KILN_CLI),
                str(VOILA_ENV),
                str(FIRST),
                str(REPEATS[tool]),
                str(VIEWERS),
                str(SECONDS),
                str(VIEWERS if tool == "voila" else 0),
            ]
            return run(label, cmd, cwd=wd, timeout=ctx.timeout).data

    def rep(self, ctx: Context) -> Figures:
        k = self._server(ctx, "kiln")
        v = self._server(ctx, "voila")
        med = statistics.median
        if any(n != 1 for n in k["first_kernels"] + v["first_kernels"]):
            raise BenchError(
                f"{self.key}: a first visit started {k['first_kernels']} kernels (kiln), "
                f"{v['first_kernels']} (Voilà), expected 1 each: the kernel count is off."
            )
        if k["runs_in_store"] != k["runs_expected"]:
            self.checks["kiln"].append(
                f"{k['runs_in_store']} runs in the store, {k['runs_expected']} expected"
            )
        self.page_kb = {"kiln": k["page_bytes"] / 1024, "voila": v["page_bytes"] / 1024}
        shared, submits, crowd = k["shared"], k["submits"], v["crowd"]
        self.ttfb.append(med(v["first_ttfb_ms"]))
        self.slowest_cached = max(self.slowest_cached, *k["again_server_ms"])
        self.crowd_server.append(shared["server_ms"])
        marks = k["first_marks"]
        return {
            "kiln_first": med(k["first_ms"]),
            "kiln_first_boot": med(m["first_cell"] for m in marks),
            "kiln_first_cells": med(m["cells"] - m["first_cell"] for m in marks),
            "kiln_first_store": med(m["finished"] - m["cells"] for m in marks),
            "kiln_first_output": med(
                w - m["finished"] for w, m in zip(k["first_ms"], marks, strict=True)
            ),
            "voila_first": med(v["first_ms"]),
            "voila_page": med(v["first_ms"] + v["again_ms"]),
            "kiln_again_wall": med(k["again_ms"]),
            "kiln_again_server": med(k["again_server_ms"]),
            "voila_again": med(v["again_ms"]),
            "kiln_again_kernels": float(k["again_kernels"]),
            "voila_again_kernels": float(v["again_kernels"]),
            "kiln_view_rps": shared["requests_per_s"],
            "kiln_view_p50": shared["p50_ms"],
            "kiln_view_p99": shared["p99_ms"],
            "kiln_view_server": shared["server_ms"],
            "kiln_visit_vps": submits["views_per_s"],
            "kiln_visit_p50": submits["p50_ms"],
            "kiln_visit_p99": submits["p99_ms"],
            "kiln_crowd_kernels": float(k["crowd_kernels"]),
            "kiln_crowd_requests": float(shared["views"] + 2 * submits["views"]),
            "voila_crowd_pps": crowd["pages_per_s"],
            "voila_crowd_p50": crowd["p50_ms"],
            "voila_crowd_max": crowd["max_ms"],
            "voila_crowd_kernels": float(crowd["kernels"]),
            "kiln_start": k["start_s"],
            "voila_start": v["start_s"],
        }

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        def med(name: str) -> float:
            return s[name][0]

        def ms(name: str) -> str:
            return _cell(s, name, _ms)

        share = med("kiln_first") / med("voila_page")
        kernels = s["kiln_crowd_kernels"][2]  # the most any repetition saw
        return [
            Row(
                "first visit: kiln submit with the defaults (a fresh execution) to its "
                "rendered result vs Voilà's page (it executes the notebook), ms",
                ms("kiln_first"),
                ms("voila_page"),
                med("voila_page") / med("kiln_first"),
                f"kiln ≤ 0.5x Voilà (is {share:.2f}x)",
                share <= 0.5,
            ),
            Row(
                "… of which: submit to the parameters cell done (the spare kernel connected, "
                "run created), ms",
                ms("kiln_first_boot"),
                "—",
            ),
            Row("… the other 9 cells, ms", ms("kiln_first_cells"), "—"),
            Row(
                "… after the last cell until the job is finished (notebook and result page "
                "stored), ms",
                ms("kiln_first_store"),
                "—",
            ),
            Row("… then reading the result page, ms", ms("kiln_first_output"), "—"),
            Row(
                "repeated visit, same parameters: server time (kiln's `Server-Timing`, "
                "submit + result page), ms",
                ms("kiln_again_server"),
                "—",
                None,
                f"kiln ≤ {CACHED_MS:g} ms",
                med("kiln_again_server") <= CACHED_MS,
            ),
            Row(
                "repeated visit, same parameters: client wall time, ms (Voilà executes "
                "the notebook again)",
                ms("kiln_again_wall"),
                ms("voila_again"),
                med("voila_again") / med("kiln_again_wall"),
            ),
            Row(
                f"{VIEWERS} concurrent viewers of one cached result (`GET /r/<run>/output`), "
                "requests/s",
                _cell(s, "kiln_view_rps", _rate),
                f"{_cell(s, 'voila_crowd_pps', _rate)} pages/s ({VIEWERS} pages at once)",
                med("kiln_view_rps") / med("voila_crowd_pps"),
            ),
            Row(
                f"… kernels started while the {VIEWERS} viewers read and resubmitted it",
                f"{kernels:.0f}",
                f"{_cell(s, 'voila_crowd_kernels', lambda v: f'{v:.0f}')} (one per page)",
                None,
                "kiln: none",
                kernels == 0 and not self.checks["kiln"],
            ),
            Row(
                f"… p50 / p99 latency of the {VIEWERS} viewers, ms",
                f"{_ms(med('kiln_view_p50'))} / {_ms(med('kiln_view_p99'))}",
                f"{_ms(med('voila_crowd_p50'))} / {_ms(med('voila_crowd_max'))} (p50 / slowest)",
            ),
            Row(
                f"{VIEWERS} concurrent repeated visits (submit, cached, + result page), visits/s",
                _cell(s, "kiln_visit_vps", _rate),
                "—",
            ),
            Row(
                "server start to its first answer, s",
                _cell(s, "kiln_start", lambda v: f"{v:.2f}"),
                _cell(s, "voila_start", lambda v: f"{v:.2f}"),
                med("voila_start") / med("kiln_start"),
            ),
        ]

    def describe(self, ctx: Context) -> list[str]:
        kv, vv = self.versions.get("kiln", {}), self.versions.get("voila", {})

        def libs(v: dict[str, str]) -> str:
            return ", ".join(f"{d} {v.get(d, '?')}" for d in LIBS)

        cores = os.cpu_count() or 1
        loads = sorted(self.loads) or [_busy()]
        spread = (
            f"the cores busy in the second before each server started ranged "
            f"{loads[0]:.1f}-{loads[-1]:.1f} of {cores} (median "
            f"{statistics.median(loads):.1f}; the load average is no guide here: "
            "Voilà's 20 kernels of the step before raise it for minutes after they end)"
        )
        notes = [
            f"Notebook: bench/scenarios/{NOTEBOOK}, 10 code cells: a `parameters` cell "
            "(rows=5000, seed=0, window=7), numpy and pandas, matplotlib, a seeded "
            "5,000-row DataFrame, `head()`, `describe()`, a groupby, a daily resample "
            "with a rolling mean, one matplotlib figure (inline PNG), a printed total. "
            "Each server's page must hold the last cell's output and the PNG. "
            f"Rendered result: kiln {self.page_kb.get('kiln', 0):,.0f} KiB, Voilà "
            f"{self.page_kb.get('voila', 0):,.0f} KiB.",
            f"Envs: kiln's `.venv` ({libs(kv)}); Voilà {vv.get('voila', '?')} in "
            f"`bench/.envs/voila` ({libs(vv)}), whose own `python3` kernel runs the "
            "notebook. Each execution gets a new kernel process in both: kiln forks one "
            "from its fork server (which imported ipykernel and the notebook's imports "
            "once) and keeps one such kernel started ahead of the next execution (each "
            "execution takes it and forks the next one, which boots while nobody waits; "
            "kiln's default, `WarmRunner(spare=True)`); Voilà starts one from the kernel "
            "spec per page (its default: no pre-heated kernels, no progressive "
            "rendering). Voilà's `--preheat_kernel=True` would keep kernels that have "
            "already executed the notebook with its defaults: a page answered from work "
            "done before the visit, which is what kiln's cache measures below, not a "
            "fresh execution.",
            "Servers, one process each, started afresh each repetition on a loopback port: "
            f"`kiln --store <fresh store> notebook app {NOTEBOOK} --port 0 --port-file F` "
            f"(one worker) and `voila {NOTEBOOK} --no-browser --port P`. Each gets one "
            "untimed visit first (kiln: a submit with another seed, polled to its result; "
            "Voilà: one page), so neither pays a one-time cost in the timed part.",
            f"First visit ({FIRST} per repetition): kiln `POST /api/n/sales_report/runs "
            '{"parameters": {}, "again": true}` (the defaults, fresh execution forced; '
            "202), `GET /api/jobs/<job>` every 10 ms until finished, then "
            "`GET /r/<run>/output`, timed from the POST to the output page's last byte; the "
            "'… of which' rows split it at what the polls saw first (the job's count of code "
            "cells done; the 10 ms polls make each mark up to ~15 ms late). The visits "
            "are 2 s apart, as a viewer's would be at least, so the spare kernel forked "
            "by the last execution has booted. kiln's own job "
            "page polls every 300 ms, so a browser shows the result up to 300 ms after "
            "these figures. "
            "Voilà: `GET /` timed to the page's last byte: by default Voilà executes the "
            "notebook while it streams the page, so the page is complete when its last "
            "cell's outputs are in it (its first byte came after "
            f"{_ms(statistics.median(self.ttfb or [0]))} ms, median). "
            "Voilà's page time is the median of its first and repeated pages (the same "
            "work each time); after each page its kernel is shut down as the browser does "
            "on leaving (`POST /voila/api/shutdown/<kernel>`), untimed.",
            f"Repeated visit (kiln {REPEATS['kiln']}, Voilà {REPEATS['voila']} per "
            "repetition): the same submit without `again` (200, answered from the cache) "
            "and the output page; server time is the two answers' `Server-Timing: "
            "app;dur=` added up (slowest of the session "
            f"{_ms(self.slowest_cached)} ms). Voilà "
            "has no cache: its repeated page executes the notebook again in a new kernel.",
            f"Concurrent viewers: kiln, {VIEWERS} keep-alive connections in a closed loop "
            f"for {SECONDS:g} s each (after 0.5 s untimed): first `GET /r/<run>/output` "
            "of the cached result, then the full repeated visit (submit + output page). "
            f"Voilà: {VIEWERS} viewers `GET /` at once, once each (every page executes the "
            "notebook in its own kernel); pages/s = 20 ÷ the seconds until the last page. "
            "Under the 20 viewers kiln's `Server-Timing` for the output page was "
            f"{_ms(statistics.median(self.crowd_server or [0]))} ms (median; requests "
            "waiting for the app's one process included). "
            "The load generator (bench/scenarios/loadgen.py's raw sockets) shares the "
            "cores with the server.",
            "Kernels are counted, not assumed: a thread lists the server's descendant "
            "processes every 20 ms (/proc/<pid>/task/*/children) and counts the new ones "
            "whose command line is a kernel's (`ipykernel_launcher`; kiln's forked kernels "
            "keep its fork server's, `kiln.notebooks._zygote`) and whose parent is not a "
            "new kernel (a kernel's own children, other children such as `git` or `uname`, "
            "are not counted). Each first visit must count exactly one "
            "kernel for both servers (the check that the counter sees kernels); kiln's "
            "store must hold only the warm-up's and the first visits' runs at the end"
            + (": " + "; ".join(self.checks["kiln"]) if self.checks["kiln"] else " (it did)")
            + ".",
        ]
        if statistics.median(loads) > 0.25 * cores:
            notes.append(
                f"The machine was shared with other work during this run: {spread}, so "
                "absolute figures are noisy. Re-run `.venv/bin/python bench/run.py --only v "
                "--reps 3` on a quiet machine for clean ones."
            )
        else:
            notes.append(f"Load during this run: {spread}.")
        return notes
