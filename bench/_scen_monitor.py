"""m. Drift monitoring: kiln.monitor.drift vs Evidently's data drift report vs a numpy floor.

Per repetition and size, three fresh processes on the same two Parquet files (22 columns
per side, drift injected in 6; bench/scenarios/monitor_data.py): kiln's `drift` on the
file paths, Evidently 0.7.23's `Report([DataDriftPreset()]).run(...)` on the two files
read as DataFrames (in its own env, bench/.envs/evidently), and a plain numpy floor. Then
kiln alone on a wide pair of files (100,000 rows x 1,000 columns per side).
"""

from __future__ import annotations

import json
import os

from _harness import BENCH, KILN_PY, BenchError, run
from _scenarios import FULL, Context, Figures, Row, Scenario, Stats, _cell, _mb, _sec

EVIDENTLY_ENV = BENCH / ".envs" / "evidently"
EVIDENTLY_PY = EVIDENTLY_ENV / "bin" / "python"
EVIDENTLY_VERSION = "0.7.23"

TOOLS = ("kiln", "evidently", "numpy")


class Monitor(Scenario):
    key, title = "m", "drift monitoring: 22 columns of two Parquet files, vs Evidently"
    anchor = "Evidently"
    setup = ("evidently",)

    def __init__(self) -> None:
        self.files: dict[str, dict[str, object]] = {}
        self.methods: set[str] = set()
        self.loads: list[float] = []  # 1-minute load average before each child

    def _sizes(self, ctx: Context) -> tuple[list[int], tuple[int, int]]:
        """Rows per side of the 22-column cases, and (rows, columns) of the wide case."""
        if ctx.sizes == FULL:
            return [10_000, 100_000, 1_000_000], (100_000, 1_000)
        return [10_000, 100_000], (100_000, 200)

    steps = 3 * 3 + 1  # 3 sizes x 3 tools, and the wide case (--quick: 2 sizes)
    prepare_steps = 4

    def prepare(self, ctx: Context) -> None:
        if not EVIDENTLY_PY.exists():
            raise BenchError(
                f"No Evidently env at {EVIDENTLY_ENV}: run "
                "KILN_BENCH_ANCHORS=evidently bash bench/setup_anchors.sh."
            )
        data = ctx.ws.root / "monitor-data"
        data.mkdir(exist_ok=True)
        rows, wide = self._sizes(ctx)
        for n, columns in [(n, 22) for n in rows] + [wide]:
            label = f"{self.key}. data {n:,} x {columns}"
            ctx.step(label)
            child = run(
                label,
                [str(KILN_PY), ctx.ws.script("monitor_data.py"), str(data), str(n), str(columns)],
                cwd=data,
                timeout=ctx.timeout,
            )
            self.files[f"{n}x{columns}"] = child.data

    def _tool(self, ctx: Context, tool: str, case: str, *extra: str) -> dict[str, object]:
        files = self.files[case]
        python = EVIDENTLY_PY if tool == "evidently" else KILN_PY
        label = f"{self.key}. {tool} {case}"
        ctx.step(label)
        self.loads.append(os.getloadavg()[0])
        with ctx.ws.fresh(f"{self.key}-{tool}-{case}") as wd:
            child = run(
                label,
                [
                    str(python),
                    ctx.ws.script(f"{tool}_monitor.py"),
                    str(wd),
                    str(files["reference"]),
                    str(files["current"]),
                    *extra,
                ],
                cwd=wd,
                timeout=ctx.timeout,
            )
        if child.data["drifted"] != files["drifted"]:
            ctx.notes.setdefault(self.key, []).append(
                f"{tool} on {case} flagged {json.dumps(child.data['drifted'])}, not the "
                f"injected {json.dumps(files['drifted'])}."
            )
        self.methods.update(child.data.get("methods", []))
        return {**child.data, "wall": child.wall, "rss": child.rss_mb}

    def rep(self, ctx: Context) -> Figures:
        rows, (wide_rows, wide_columns) = self._sizes(ctx)
        out: Figures = {}
        for n in rows:
            case = f"{n}x22"
            found = {}
            for tool in TOOLS:
                d = self._tool(ctx, tool, case)
                for name in ("seconds", "wall", "rss"):
                    out[f"{tool}_{n}_{name}"] = float(d[name])  # type: ignore[arg-type]
                found[tool] = d["drifted"]
            same = found["kiln"] == found["evidently"] == self.files[case]["drifted"]
            out[f"agree_{n}"] = float(same)
        case = f"{wide_rows}x{wide_columns}"
        d = self._tool(ctx, "kiln", case, "progress")
        for name in ("seconds", "wall", "rss"):
            out[f"wide_{name}"] = float(d[name])  # type: ignore[arg-type]
        out["wide_agree"] = float(d["drifted"] == self.files[case]["drifted"])
        return out

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        sizes, (wide_rows, wide_columns) = self._sizes(ctx)
        med = {k: v[0] for k, v in s.items()}
        top = sizes[-1]
        out: list[Row] = []
        for n in sizes:
            goal = n == top == 1_000_000
            k, e, f = (f"{tool}_{n}" for tool in TOOLS)
            speed = med[f"{e}_seconds"] / med[f"{k}_seconds"]
            out.append(
                Row(
                    f"{n:,} rows x 22 columns: the drift call, s",
                    _cell(s, f"{k}_seconds", _sec),
                    "Evidently " + _cell(s, f"{e}_seconds", _sec),
                    speed,
                    "≥ 20x faster" if goal else "",
                    speed >= 20 if goal else None,
                )
            )
            share = med[f"{k}_rss"] / med[f"{e}_rss"]
            out.append(
                Row(
                    f"{n:,} rows: peak RSS of the process, MB",
                    _cell(s, f"{k}_rss", _mb),
                    "Evidently " + _cell(s, f"{e}_rss", _mb),
                    1 / share,
                    f"kiln ≤ 0.5x Evidently (is {share:.2f}x)" if goal else "",
                    share <= 0.5 if goal else None,
                )
            )
            floor = med[f"{k}_seconds"] / med[f"{f}_seconds"]
            out.append(
                Row(
                    f"{n:,} rows: the drift call vs the numpy floor, s",
                    _cell(s, f"{k}_seconds", _sec),
                    "numpy " + _cell(s, f"{f}_seconds", _sec),
                    1 / floor,
                    f"kiln ≤ 2x the floor (is {floor:.2f}x)" if goal else "",
                    floor <= 2 if goal else None,
                )
            )
            agree = med[f"agree_{n}"] == 1 and s[f"agree_{n}"][1] == 1
            out.append(
                Row(
                    f"{n:,} rows: drifted columns found (6 injected)",
                    "the 6" if agree else "differ (see notes)",
                    "Evidently: the same 6" if agree else "differ (see notes)",
                    None,
                    "the same columns" if n == top else "",
                    agree if n == top else None,
                )
            )
            out.append(
                Row(
                    f"{n:,} rows: fresh process, spawn to exit (imports, reading), wall s",
                    _cell(s, f"{k}_wall", _sec),
                    "Evidently " + _cell(s, f"{e}_wall", _sec),
                    med[f"{e}_wall"] / med[f"{k}_wall"],
                )
            )
        small = f"kiln_{sizes[1]}_rss" if wide_rows == sizes[1] else f"kiln_{top}_rss"
        growth = med["wide_rss"] / med[small]
        out += [
            Row(
                f"{wide_rows:,} rows x {wide_columns:,} columns, kiln alone (progress bar on): "
                "the drift call, s",
                _cell(s, "wide_seconds", _sec),
                "—",
                None,
                "< 60 s",
                med["wide_seconds"] < 60,
            ),
            Row(
                f"{wide_rows:,} x {wide_columns:,}: peak RSS, MB (anchor: kiln at "
                f"{wide_rows:,} x 22)",
                _cell(s, "wide_rss", _mb),
                "kiln " + _cell(s, small, _mb),
                None,
                f"≤ 1.5x the 22-column figure (is {growth:.2f}x)",
                growth <= 1.5,
            ),
            Row(
                f"{wide_rows:,} x {wide_columns:,}: drifted columns found are the injected ones",
                "yes" if s["wide_agree"][1] == 1 else "no",
                "—",
            ),
        ]
        return out

    def describe(self, ctx: Context) -> list[str]:
        sizes, (wide_rows, wide_columns) = self._sizes(ctx)
        cores = os.cpu_count() or 1
        loads = sorted(self.loads) or [os.getloadavg()[0]]
        notes = [
            "Data (bench/scenarios/monitor_data.py, numpy's seeded PCG64, Parquet written "
            "50,000 rows per row group): 22 columns per side: 10 normal(0, 1), 5 "
            "lognormal(0, 0.5), 5 uniform(0, 1), a 10-category string column with uniform "
            "shares and one with Zipf shares. The current side has the issue's drift: the "
            "means of normal0, normal1, lognormal0, uniform0, uniform1 shifted by +0.5 "
            "standard deviation; category c0 of cat_uniform raised from 10% to 30%. "
            f"Sizes: {', '.join(f'{n:,}' for n in sizes)} rows per side. The wide case: "
            f"{wide_rows:,} rows x {wide_columns:,} columns per side ({wide_columns - 2:,} "
            "numeric columns cycling through the same 20, a quarter of them drifted, and the "
            "two categoricals).",
            "kiln: `kiln.monitor.drift(reference_path, current_path)` at default settings "
            "(the timed call reads each column from the two Parquet files with pyarrow, on "
            "up to 2 threads; at these sizes the distance rule decides: normalised "
            "Wasserstein and Jensen-Shannon >= 0.1). The wide case passes `progress=True`.",
            f"Evidently {EVIDENTLY_VERSION} (with pandas<3, in bench/.envs/evidently): the two "
            "files read with `pandas.read_parquet` (untimed: its API takes DataFrames), then, "
            "timed, `Report([DataDriftPreset()]).run(reference_data=ref, "
            "current_data=cur)`; its drifted columns read from the snapshot. Methods it chose: "
            f"{', '.join(sorted(self.methods)) or 'none reported'} (threshold 0.1). Its "
            "process's peak RSS includes the two DataFrames its API needs.",
            "numpy floor (bench/scenarios/numpy_monitor.py, kiln's env, one thread): each "
            "column read with pyarrow; numeric: each side sorted once, the sorted runs merged "
            "by `np.sort`, both CDFs by `searchsorted`, KS and Wasserstein / reference std; "
            "categorical: counts by `pyarrow.compute.value_counts`, Jensen-Shannon. No PSI, "
            "p-values, nulls or checks.",
            "Every timed figure is inside one fresh process per tool, spawn to exit also "
            "shown; peak RSS from `wait4`. The three tools run one after another per size.",
        ]
        # The bench itself keeps about one core busy; more than that is someone else.
        spread = (
            f"the 1-minute load average before the children ranged {loads[0]:.1f}-"
            f"{loads[-1]:.1f} (median {loads[len(loads) // 2]:.1f}) on {cores} cores"
        )
        if loads[-1] > 0.75 * cores:
            notes.append(
                f"The machine was shared with other work during this run: {spread}, so "
                "absolute figures are noisy. Re-run `.venv/bin/python bench/run.py --only m "
                "--reps 3` on a quiet machine for clean ones."
            )
        else:
            notes.append(f"Load during this run: {spread}.")
        return notes
