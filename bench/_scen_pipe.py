"""Scenario h: pipelines, kiln against Kedro (100-step chain) and DVC (20-step chain).

The projects come from `scenarios/pipe_project.py`: one generated module whose steps
each sleep 20 ms (work that takes the same time on a loaded machine) and which imports
pandas and scikit-learn at the top, like real projects. CLI against CLI, wall time of
the whole process:

- no-op: kiln's `kiln run` when nothing changed vs `kedro run` (Kedro re-runs every
  node, it has no cache) on the 100-step chain; vs DVC's no-op `dvc repro` on 20 steps.
- per-step overhead on a full run: (time of the 100-step chain - time of a 1-step
  chain) / 99 - 20 ms, for `kiln run` on a fresh project (which stores every output and
  records a run per step) and for `kedro run`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from _harness import BENCH, KILN_CLI, KILN_PY, BenchError, run
from _scenarios import Context, Figures, Row, Scenario, Stats, _cell, _goal, _sec

sys.path.insert(0, str(Path(__file__).resolve().parent / "scenarios"))
from pipe_project import make_dvc, make_kedro, make_kiln

KEDRO_CLI = BENCH / ".envs" / "kedro" / "bin" / "kedro"
DVC_CLI = BENCH / ".envs" / "dvc" / "bin" / "dvc"
WORK_MS = 20.0
LONG, SHORT, DVC_STEPS = 100, 1, 20


def _ms(v: float) -> str:
    return f"{v * 1000:.2f}"


class Pipelines(Scenario):
    key, title = "h", "pipelines: no-op re-runs and per-step overhead (vs Kedro, DVC)"
    setup = ("pipelines",)
    anchor = "Kedro / DVC"
    steps = 8
    prepare_steps = 4

    def prepare(self, ctx: Context) -> None:
        for cli in (KEDRO_CLI, DVC_CLI):
            if not cli.exists():
                raise BenchError(
                    f"{cli} is missing: run `KILN_BENCH_ANCHORS=pipelines bash "
                    "bench/setup_anchors.sh`."
                )
        os.environ["DVC_NO_ANALYTICS"] = "1"
        os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
        os.environ["DO_NOT_TRACK"] = "1"
        # The no-op cases re-use one project per tool, run once here (untimed).
        base = ctx.ws.root / "h-projects"
        self.kiln100 = base / "kiln100"
        make_kiln(self.kiln100, LONG, WORK_MS)
        self._run(ctx, "kiln first run (100 steps)", [KILN_CLI, "run"], self.kiln100)
        self.kiln20 = base / "kiln20"
        make_kiln(self.kiln20, DVC_STEPS, WORK_MS)
        self._run(ctx, "kiln first run (20 steps)", [KILN_CLI, "run"], self.kiln20)
        self.dvc20 = base / "dvc20"
        make_dvc(self.dvc20, DVC_STEPS, WORK_MS, str(KILN_PY))
        self._run(ctx, "dvc init", [DVC_CLI, "init", "--no-scm", "-q"], self.dvc20)
        self._run(ctx, "dvc first repro (20 stages)", [DVC_CLI, "repro", "-q"], self.dvc20)

    def _run(self, ctx: Context, what: str, cmd: list[object], cwd: Path) -> float:
        label = f"{self.key}. {what}"
        ctx.step(label)
        child = run(label, [str(c) for c in cmd], cwd=cwd, timeout=ctx.timeout, want_json=False)
        return child.wall

    def _fresh_full(self, ctx: Context, tool: str, n: int) -> float:
        with ctx.ws.fresh(f"{self.key}-{tool}-{n}") as wd:
            if tool == "kiln":
                make_kiln(wd, n, WORK_MS)
                return self._run(ctx, f"kiln full run ({n})", [KILN_CLI, "run"], wd)
            make_kedro(wd, n, WORK_MS)
            return self._run(ctx, f"kedro run ({n})", [KEDRO_CLI, "run"], wd)

    def rep(self, ctx: Context) -> Figures:
        out: Figures = {}
        out["kiln_noop100"] = self._run(ctx, "kiln no-op (100)", [KILN_CLI, "run"], self.kiln100)
        out["kedro_run100"] = self._fresh_full(ctx, "kedro", LONG)
        out["kiln_noop20"] = self._run(ctx, "kiln no-op (20)", [KILN_CLI, "run"], self.kiln20)
        out["dvc_noop20"] = self._run(ctx, "dvc no-op repro (20)", [DVC_CLI, "repro"], self.dvc20)
        out["kiln_full100"] = self._fresh_full(ctx, "kiln", LONG)
        out["kedro_full1"] = self._fresh_full(ctx, "kedro", SHORT)
        out["kiln_full1"] = self._fresh_full(ctx, "kiln", SHORT)
        out["kedro_full100"] = out["kedro_run100"]
        ctx.step(f"{self.key}. (kedro 100 reused)")
        for tool in ("kiln", "kedro"):
            full, one = out[f"{tool}_full100"], out[f"{tool}_full1"]
            out[f"{tool}_per_step"] = (full - one) / (LONG - SHORT) - WORK_MS / 1000
        return out

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        kiln_step, kedro_step = s["kiln_per_step"][0], s["kedro_per_step"][0]
        return [
            _goal(
                "100-step chain: kiln no-op `kiln run` vs `kedro run` (re-runs all), s",
                _cell(s, "kiln_noop100", _sec),
                "Kedro " + _cell(s, "kedro_run100", _sec),
                s["kedro_run100"][0] / s["kiln_noop100"][0],
                20,
                "x faster",
            ),
            Row(
                "100-step chain: per-step overhead of a full run, ms (kiln stores every output)",
                _cell(s, "kiln_per_step", _ms),
                "Kedro " + _cell(s, "kedro_per_step", _ms),
                kedro_step / kiln_step if kiln_step > 0 else None,
                "kiln ≤ Kedro",
                kiln_step <= kedro_step,
            ),
            _goal(
                "20-step chain: kiln no-op `kiln run` vs DVC no-op `dvc repro`, s",
                _cell(s, "kiln_noop20", _sec),
                "DVC " + _cell(s, "dvc_noop20", _sec),
                s["dvc_noop20"][0] / s["kiln_noop20"][0],
                2,
                "x faster (kiln <= 0.5x DVC)",
            ),
        ]

    def describe(self, ctx: Context) -> list[str]:
        return [
            "kedro==1.7.0 and dvc==3.67.1, each in its own env (bench/.envs/, made by "
            "`KILN_BENCH_ANCHORS=pipelines bash bench/setup_anchors.sh`); DVC's stages run "
            "with kiln's python (only its first, untimed repro runs them).",
            "One generated module for all three tools (`scenarios/pipe_project.py`): it imports "
            "pandas and scikit-learn; each step sleeps 20 ms and returns its input + 1.",
            "No-op cases re-run an already-run project (made once, untimed); full runs start "
            "from a fresh folder (kiln: a fresh store too). Kedro's 100-step `kedro run` is "
            "both its re-run and its full run. Per-step overhead = (100-step time - 1-step "
            "time) / 99 - 20 ms.",
            "Wall time of each CLI process, spawn to exit (the load average above says how "
            "quiet the machine was).",
        ]
