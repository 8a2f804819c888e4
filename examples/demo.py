"""kiln's demo: train a model on a dataset that ships with scikit-learn and track it.

Run with `make demo` (or `python examples/demo.py` in the project's env). It logs to the
embedded store (the nearest .kiln/ folder) unless KILN_STORE or KILN_HOME say otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

import kiln
from kiln.registry import set_alias

PARAMS = {"n_estimators": 200, "max_depth": 6, "min_samples_leaf": 2, "folds": 5, "seed": 42}


def main() -> str:
    console = Console()
    data = load_breast_cancer(as_frame=True)
    X: pd.DataFrame = data.data
    y: pd.Series = data.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=PARAMS["seed"]
    )

    with kiln.start_run(name="breast-cancer-rf", experiment="demo", params=PARAMS) as run:
        kiln.set_tags({"dataset": "sklearn.datasets.load_breast_cancer", "model": "RandomForest"})
        kiln.log_dataset(X_train.assign(target=y_train), role="train", name="breast_cancer")
        kiln.log_dataset(X_test.assign(target=y_test), role="test", name="breast_cancer")

        folds = StratifiedKFold(PARAMS["folds"], shuffle=True, random_state=PARAMS["seed"])
        with console.status("Cross-validating...") as status:
            for fold, (tr, va) in enumerate(folds.split(X_train, y_train)):
                status.update(f"Cross-validating: fold {fold + 1}/{PARAMS['folds']}")
                model = _model().fit(X_train.iloc[tr], y_train.iloc[tr])
                proba = model.predict_proba(X_train.iloc[va])[:, 1]
                kiln.log_metrics(
                    {
                        "fold_auc": roc_auc_score(y_train.iloc[va], proba),
                        "fold_accuracy": accuracy_score(y_train.iloc[va], proba > 0.5),
                    },
                    step=fold,
                )
        # One value per fold (step) above; the cross-validated score is their mean.
        for name in ("auc", "accuracy"):
            folds_seen = kiln.metric_history(run.id, f"fold_{name}")
            kiln.log_metric(f"cv_{name}", float(np.mean([m.value for m in folds_seen])))

        # kiln.Model logs the estimator's params, the fit time and the training data.
        model = kiln.Model(_model()).fit(X_train, y_train)
        proba = model.predict_proba(X_test)[:, 1]
        kiln.log_metrics(
            {
                "test_auc": roc_auc_score(y_test, proba),
                "test_accuracy": accuracy_score(y_test, proba > 0.5),
            }
        )
        importances = pd.DataFrame(
            {"feature": X.columns, "importance": model.estimator_.feature_importances_}
        ).sort_values("importance", ascending=False)
        kiln.log_artifact(importances, name="feature_importance.parquet")
        # The saved model: skops file, signature, reference profile, file hashes.
        uri = model.save()

    version = kiln.register(uri, "breast-cancer")
    set_alias("breast-cancer", "production", version.version)
    _report(console, run.id, version.version)
    return run.id


def _model() -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=PARAMS["n_estimators"],
        max_depth=PARAMS["max_depth"],
        min_samples_leaf=PARAMS["min_samples_leaf"],
        random_state=PARAMS["seed"],
        n_jobs=-1,
    )


def _report(console: Console, run_id: str, version: int) -> None:
    run = kiln.get_run(run_id)
    history = kiln.metric_history(run_id, "fold_auc")
    console.print(
        f"\n[bold green]Tracked run {run.id}[/] ({run.name}) in experiment {run.experiment!r}"
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("logged")
    table.add_column("what")
    table.add_row("params", ", ".join(f"{k}={v}" for k, v in run.params.items()))
    table.add_row(
        "metrics",
        ", ".join(f"{k}={v:.4f}" for k, v in run.metrics.items())
        + f"\nauc per fold: {', '.join(f'{m.value:.4f}' for m in history)}"
        + f" (their mean is cv_auc={run.metrics['cv_auc']:.4f})",
    )
    table.add_row("datasets", ", ".join(f"{d.role}: {d.n_rows}x{d.n_cols}" for d in run.datasets))
    table.add_row("artifacts", ", ".join(f"{a.path} ({a.size:,} B)" for a in run.artifacts))
    table.add_row("registry", f"breast-cancer version {version}, alias production")
    git = run.environment.get("git_commit")
    table.add_row(
        "environment", f"{run.environment.get('python_version')}, git {git[:12] if git else 'none'}"
    )
    console.print(table)
    console.print("\nSee it again with:")
    console.print(
        f"  kiln runs list --experiment demo\n  kiln runs show {run.id[:12]}\n"
        "  kiln models show breast-cancer@production",
        markup=False,
    )
    console.print("(inside the env: .venv/bin/kiln, or `source .venv/bin/activate` first)")


if __name__ == "__main__":
    main()
