"""Scenario h's generated projects: one chain of steps, as kiln, Kedro and DVC see it.

The same module (`bench_steps.py`) serves all three: it imports pandas and scikit-learn
at the top like a real project, and each step sleeps `work_ms` (work that takes the same
time on a loaded machine) and returns its input plus one. Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

STEPS_HEAD = '''"""A generated chain of {n} steps, each about {work_ms} ms of work."""

import time

import pandas as pd  # noqa: F401 - real projects import these at the top
from sklearn.preprocessing import StandardScaler  # noqa: F401

WORK = {work_s!r}


def _work():
    time.sleep(WORK)


def s0(seed):
    _work()
    return seed
'''

STEP = """

def s{i}(s{p}):
    _work()
    return s{p} + 1
"""

MAIN = """

if __name__ == "__main__":  # DVC runs each stage as a command
    import json
    import sys

    name = sys.argv[1]
    index = int(name[1:])
    if index == 0:
        value = s0(int(sys.argv[2]))
    else:
        with open(f"out/s{index - 1}.json") as fh:
            value = globals()[name](json.load(fh))
    with open(f"out/{name}.json", "w") as fh:
        json.dump(value, fh)
"""


def steps_source(n: int, work_ms: float) -> str:
    """The shared step module."""
    text = STEPS_HEAD.format(n=n, work_ms=work_ms, work_s=work_ms / 1000)
    text += "".join(STEP.format(i=i, p=i - 1) for i in range(1, n))
    return text + MAIN


def make_kiln(root: Path, n: int, work_ms: float) -> None:
    """A kiln project: pyproject.toml names the module; params.yaml holds the seed."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "bench_steps.py").write_text(steps_source(n, work_ms))
    (root / "params.yaml").write_text("seed: 1\n")
    (root / "pyproject.toml").write_text('[tool.kiln]\npipeline = "bench_steps"\n')


def make_kedro(root: Path, n: int, work_ms: float) -> None:
    """A Kedro project (the layout `kedro new` makes, cut to what `kedro run` reads)."""
    pkg = root / "src" / "benchkedro"
    pkg.mkdir(parents=True, exist_ok=True)
    (root / "conf" / "base").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "base" / "parameters.yml").write_text("seed: 1\n")
    (root / "conf" / "base" / "catalog.yml").write_text("{}\n")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "benchkedro"\nversion = "0.1"\n\n'
        '[tool.kedro]\npackage_name = "benchkedro"\nproject_name = "benchkedro"\n'
        'kedro_init_version = "1.7.0"\nsource_dir = "src"\n'
    )
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text("")
    (pkg / "bench_steps.py").write_text(steps_source(n, work_ms))
    nodes = ['        node(bench_steps.s0, "params:seed", "s0", name="s0"),']
    nodes += [
        f'        node(bench_steps.s{i}, "s{i - 1}", "s{i}", name="s{i}"),' for i in range(1, n)
    ]
    (pkg / "pipeline_registry.py").write_text(
        "from kedro.pipeline import node, pipeline\n\nfrom benchkedro import bench_steps\n\n\n"
        "def register_pipelines():\n    p = pipeline([\n" + "\n".join(nodes) + "\n    ])\n"
        '    return {"__default__": p}\n'
    )


def make_dvc(root: Path, n: int, work_ms: float, python: str) -> None:
    """A DVC project: one stage per step, each a command with its deps and outs."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    (root / "bench_steps.py").write_text(steps_source(n, work_ms))
    (root / "params.yaml").write_text("seed: 1\n")
    lines = ["stages:"]
    for i in range(n):
        lines += [f"  s{i}:"]
        if i == 0:
            lines += [f"    cmd: {python} bench_steps.py s0 1", "    params:", "      - seed"]
            deps = ["bench_steps.py"]
        else:
            lines += [f"    cmd: {python} bench_steps.py s{i}"]
            deps = ["bench_steps.py", f"out/s{i - 1}.json"]
        lines += ["    deps:", *[f"      - {d}" for d in deps]]
        lines += ["    outs:", f"      - out/s{i}.json"]
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    tool, folder, count, work = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if tool == "kiln":
        make_kiln(folder, count, work)
    elif tool == "kedro":
        make_kedro(folder, count, work)
    else:
        make_dvc(folder, count, work, sys.argv[5])
    print(json.dumps({"made": str(folder)}))
