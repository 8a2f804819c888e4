"""`make demo`'s job, as a newcomer runs it: it trains, tracks and registers a model, and
the CLI shows it afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KILN = str(Path(sys.executable).parent / "kiln")


@pytest.mark.slow
def test_the_demo_tracks_a_run_the_cli_can_show(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env["KILN_HOME"] = str(tmp_path / ".kiln")
    env["PYTHONPYCACHEPREFIX"] = str(ROOT / ".pytest_cache" / "d" / "kiln-pycache")

    demo = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr
    assert "kiln runs show" in demo.stdout

    listed = subprocess.run(
        [KILN, "runs", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    [run] = json.loads(listed.stdout)
    shown = json.loads(
        subprocess.run(
            [KILN, "runs", "show", run["id"][:8], "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )
    assert shown["params"]["n_estimators"] == "200"
    assert {"cv_auc", "test_auc", "fit_seconds"} <= set(shown["metrics"])
    # cv_auc is the mean over the folds, not the last fold's value
    folds = [
        float(x) for x in re.search(r"auc per fold: ([\d., ]+) \(", demo.stdout)[1].split(", ")
    ]
    assert len(folds) == 5
    assert shown["metrics"]["cv_auc"] == pytest.approx(sum(folds) / 5, abs=1e-4)
    assert f"cv_auc={shown['metrics']['cv_auc']:.4f}" in demo.stdout
    assert "DataDriftWarning" not in demo.stderr
    assert {d["role"] for d in shown["datasets"]} == {"train", "test"}
    paths = {a["path"] for a in shown["artifacts"]}
    assert {"model/kiln-model.json", "model/model.skops", "model/signature.json"} <= paths
    version = json.loads(
        subprocess.run(
            [KILN, "models", "show", "breast-cancer@production", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )
    assert version["run_id"] == run["id"]
