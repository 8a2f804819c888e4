"""Scenario n: running a parameterized notebook, kiln vs papermill 2.7.0.

The notebook has 10 code cells (a `parameters` cell, numpy and scikit-learn imports, a
seeded regression fitted and scored). Every case is a fresh process tree, spawn to exit.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _harness import BENCH, KILN_CLI, BenchError, run
from _scenarios import FULL, Context, Figures, Row, Scenario, Stats, _cell, _sec

PAPERMILL_ENV = BENCH / ".envs" / "papermill"
PAPERMILL_PY = PAPERMILL_ENV / "bin" / "python"
PAPERMILL_CLI = PAPERMILL_ENV / "bin" / "papermill"

CELLS = [
    "alpha = 1.0\nn = 500\nseed = 0",
    "import numpy as np",
    "from sklearn.linear_model import Ridge\nfrom sklearn.model_selection import train_test_split",
    "rng = np.random.default_rng(seed)\nX = rng.normal(size=(n, 5))\n"
    "y = X @ np.arange(5) + rng.normal(size=n)",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)",
    "model = Ridge(alpha=alpha).fit(X_train, y_train)",
    "score = model.score(X_test, y_test)\nscore",
    "coef = model.coef_.round(2)\nprint(coef)",
    "residuals = y_test - model.predict(X_test)\nfloat(np.abs(residuals).mean())",
    "print('done', n)",
]


def write_notebook(path: Path) -> None:
    """The benchmark notebook, as nbformat 4 JSON (no nbformat needed)."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"c{i}",
            "metadata": {"tags": ["parameters"]} if i == 0 else {},
            "outputs": [],
            "source": src,
        }
        for i, src in enumerate(CELLS)
    ]
    meta = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    path.write_text(
        json.dumps({"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5})
    )


class Notebooks(Scenario):
    key, title = "n", "a parameterized notebook: one execution and a sweep, vs papermill"
    setup = ("papermill",)
    anchor = "papermill"
    steps = 8

    def _count(self, ctx: Context) -> int:
        return 10 if ctx.sizes == FULL else 4

    def prepare(self, ctx: Context) -> None:
        if not PAPERMILL_CLI.exists():
            raise BenchError(f"No papermill env at {PAPERMILL_ENV}: run bench/setup_anchors.sh.")
        nb = ctx.ws.root / "bench.ipynb"
        write_notebook(nb)
        ctx.prepared["n"] = nb

    def _timed(self, ctx: Context, label: str, cmds: list[list[str]], check: str) -> float:
        ctx.step(f"{self.key}. {label}")
        with ctx.ws.fresh(f"{self.key}-{label.replace(' ', '-')}") as wd:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(len(cmds)) as pool:
                futures = [
                    pool.submit(run, f"{self.key}. {label}", c, cwd=wd, timeout=ctx.timeout, want_json=False)
                    for c in cmds
                ]  # fmt: skip
                for f in futures:
                    f.result()
            wall = time.perf_counter() - t0
            outs = sorted(p.name for p in wd.glob("*.ipynb"))
            if not outs or check not in (wd / outs[0]).read_text():
                raise BenchError(
                    f"{self.key}. {label}: no executed notebook with {check!r} in {wd}."
                )
        return wall

    def rep(self, ctx: Context) -> Figures:
        nb = str(ctx.prepared["n"])
        k = self._count(ctx)
        alphas = [str(float(a)) for a in range(1, k + 1)]
        kiln = [str(KILN_CLI), "notebook", "run", nb]
        sweep_py = ctx.ws.script("papermill_sweep.py")
        half = k // 2
        f: Figures = {}
        f["kiln_one"] = self._timed(
            ctx, "kiln one", [[*kiln, "-p", "alpha=0.5", "-o", "out.ipynb"]], "done 500"
        )
        f["pm_one"] = self._timed(
            ctx, "papermill one",
            [[str(PAPERMILL_CLI), "--no-progress-bar", nb, "out.ipynb", "-p", "alpha", "0.5"]], "done 500",
        )  # fmt: skip
        f["kiln_one_nopre"] = self._timed(
            ctx, "kiln one no-preload", [[*kiln, "-p", "alpha=0.5", "-o", "out.ipynb", "--no-preload"]], "done 500"
        )  # fmt: skip
        grid = ["--grid", "alpha=" + ",".join(alphas), "-o", "out-{alpha}.ipynb"]
        f["kiln_j1"] = self._timed(
            ctx, "kiln sweep jobs 1", [[*kiln, *grid, "--jobs", "1"]], "done 500"
        )
        f["pm_j1"] = self._timed(
            ctx, "papermill sweep sequential", [[str(PAPERMILL_PY), sweep_py, ".", nb, *alphas]], "done 500"
        )  # fmt: skip
        f["kiln_j2"] = self._timed(
            ctx, "kiln sweep jobs 2", [[*kiln, *grid, "--jobs", "2"]], "done 500"
        )
        f["kiln_j2_nofork"] = self._timed(
            ctx, "kiln sweep jobs 2 no-fork", [[*kiln, *grid, "--jobs", "2", "--no-fork"]], "done 500"
        )  # fmt: skip
        f["pm_j2"] = self._timed(
            ctx, "papermill sweep 2 processes",
            [[str(PAPERMILL_PY), sweep_py, ".", nb, *alphas[:half]],
             [str(PAPERMILL_PY), sweep_py, ".", nb, *alphas[half:]]],
            "done 500",
        )  # fmt: skip
        return f

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        k = self._count(ctx)

        def at_most(measure: str, kiln: str, pm: str, limit: float) -> Row:
            share = s[kiln][0] / s[pm][0]
            return Row(
                measure, _cell(s, kiln, _sec), _cell(s, pm, _sec), s[pm][0] / s[kiln][0],
                f"kiln ≤ {limit:g}x papermill (is {share:.2f}x)", share <= limit,
            )  # fmt: skip

        return [
            at_most("one execution, fresh process, wall s", "kiln_one", "pm_one", 1.0),
            Row(
                "one execution with `--no-preload`, wall s",
                _cell(s, "kiln_one_nopre", _sec),
                _cell(s, "pm_one", _sec),
                s["pm_one"][0] / s["kiln_one_nopre"][0],
            ),
            at_most(
                f"{k} parameterizations, `--jobs 1` vs one after another, wall s",
                "kiln_j1",
                "pm_j1",
                0.75,
            ),
            at_most(
                f"{k} parameterizations, `--jobs 2` vs two papermill processes, wall s",
                "kiln_j2",
                "pm_j2",
                0.75,
            ),
            Row(
                f"{k} parameterizations, `--jobs 2 --no-fork` (every kernel started from scratch), wall s",
                _cell(s, "kiln_j2_nofork", _sec),
                _cell(s, "pm_j2", _sec),
                s["pm_j2"][0] / s["kiln_j2_nofork"][0],
            ),
        ]

    def describe(self, ctx: Context) -> list[str]:
        k = self._count(ctx)
        return [
            "The anchor is papermill 2.7.0, in "
            "`bench/.envs/papermill` with numpy, pandas, scikit-learn, ipykernel and nbclient "
            "pinned to kiln's versions; both tools run the notebook in a `python3` kernel of "
            "their own env, and both kernels import pandas when scikit-learn loads, as in any "
            "data-science env.",
            "Notebook: 10 code cells, the first tagged `parameters`; numpy and scikit-learn "
            "imports, a seeded 500-row Ridge regression fitted, scored and printed. Every case "
            "checks the executed notebook's output.",
            "One execution: `kiln notebook run nb.ipynb -p alpha=0.5 -o out.ipynb` (a tracked "
            "run in a new embedded store, created in the timed process; the executed notebook "
            "and kiln's HTML page of it stored as artifacts, timed) vs `papermill "
            "--no-progress-bar nb.ipynb out.ipynb -p alpha 0.5`. kiln's default preloads the "
            "notebook's imports in the fresh kernel while it boots; the `--no-preload` row "
            "turns that off.",
            f"Sweep: {k} values of alpha. kiln: `kiln notebook run --grid alpha=... --jobs N` "
            "(a sweep run with one child run each, a fresh kernel process per notebook, forked "
            "from a fork server that imported ipykernel, numpy and scikit-learn once, never "
            "reused; the `--no-fork` row starts every kernel from its spec instead). "
            "papermill: `papermill.execute_notebook` in a "
            f"loop in one process ({k} in a row), or two such processes at once ({k // 2} each), "
            "each execution starting its own kernel. Wall time spawn to exit of all processes.",
        ]
