"""Every subpackage's public surface is pinned (as httpx's test_exported_members.py does),
and the API reference documents exactly that surface.

Changing a package's `__all__` is a change to kiln's API: update the table below in the
same commit, and say so in docs/changelog.md. The root's list is pinned in test_api.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXPECTED: dict[str, set[str]] = {
    "kiln.tracking": {
        "ActiveRun",
        "ArtifactInfo",
        "DEFAULT_EXPERIMENT",
        "SERVING_EXPERIMENT",
        "SERVING_URI_TAG",
        "DatasetInfo",
        "Experiment",
        "LoggedRequest",
        "MAX_PARAM",
        "Metric",
        "PredictionLogWriter",
        "RUNS_PREFIX",
        "Run",
        "TrackingClient",
        "active_run",
        "as_frame",
        "canonical_name",
        "capture_environment",
        "clear_caches",
        "computed_by",
        "configure",
        "configured_store",
        "download_run_artifacts",
        "end_run",
        "flush",
        "get_client",
        "get_run",
        "installed_packages",
        "log_artifact",
        "log_dataset",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "log_text",
        "metric_direction",
        "metric_history",
        "new_run_name",
        "param_number",
        "param_text",
        "parse_runs_uri",
        "prediction_log",
        "runs",
        "scoped_filter",
        "set_tag",
        "set_tags",
        "shorten",
        "start_run",
    },
    "kiln.store": {
        "SCHEMA_REVISIONS",
        "Store",
        "find_home",
        "resolve_url",
        "schema",
        "write_turn",
    },
    "kiln.artifacts": {
        "ArtifactStore",
        "check_relative_path",
        "hash_folder",
        "inside",
        "sha256_file",
    },
    "kiln.cli": {
        "cli",
        "main",
    },
    "kiln.models": {
        "ColumnSpec",
        "DataDriftWarning",
        "Model",
        "ModelFormatError",
        "ModelVersionWarning",
        "NotFittedError",
        "Signature",
        "TorchEstimator",
        "UnsafeSerializationWarning",
        "ValidationResult",
        "Validator",
        "infer_signature",
        "load_model",
        "model_folder",
        "quiet_drift",
        "read_manifest",
        "reference_profile",
        "resolve_device",
        "resolve_model_uri",
    },
    "kiln.registry": {
        "AliasChange",
        "AliasNotFoundError",
        "MODEL_MANIFEST",
        "ModelNotFoundError",
        "ModelVersion",
        "ModelVersionNotFoundError",
        "RegisteredModel",
        "RegistryClient",
        "RegistryError",
        "alias_history",
        "delete_alias",
        "get_model_version",
        "get_registry",
        "list_models",
        "list_versions",
        "parse_model_ref",
        "parse_models_uri",
        "register",
        "resolve_uri",
        "set_alias",
    },
    "kiln.ui": {"create_app", "create_notebook_app", "notebook_app", "ui"},
    "kiln.server": {"Grant", "Token", "User", "Users", "create_app", "server"},
    "kiln.importer": {"IMPORTED_FROM", "ImportReport", "SkippedItem", "import_mlflow"},
    "kiln.project": {
        "ANSWERS_FILE",
        "TEMPLATES",
        "TEMPLATE_VERSION",
        "UpdateResult",
        "init",
        "package_name",
        "update",
    },
    "kiln.monitor": {
        "CHECKS",
        "DEFAULTS",
        "EXPERIMENT",
        "PERFORMANCE_DEFAULTS",
        "QUALITY_DEFAULTS",
        "SEVERITIES",
        "TESTS",
        "DriftResult",
        "Finding",
        "MonitorReport",
        "PerformanceResult",
        "drift",
        "load_config",
        "monitor",
        "monitor_windows",
        "parse_duration",
        "parse_time",
        "performance",
        "quality",
        "reference_metrics",
    },
    "kiln.evaluate": {
        "Comparison",
        "Evaluation",
        "HIGHER_IS_BETTER",
        "MetricComparison",
        "TASKS",
        "compare",
        "detect_task",
        "evaluate",
        "fairness",
        "metrics",
    },
    "kiln.plots": {
        "Figure",
        "PALETTE",
        "Trace",
        "calibration",
        "confusion_matrix",
        "fairness",
        "feature_importance",
        "gain",
        "lift",
        "precision_recall",
        "predicted_vs_actual",
        "residuals",
        "roc",
    },
    "kiln.report": {
        "Report",
        "Section",
    },
    "kiln.pipeline": {
        "PickledOutputWarning",
        "Pipeline",
        "PipelineResult",
        "Step",
        "StepOutcome",
        "SweepResult",
        "Trial",
        "add_to_path",
        "digest",
        "find_root",
        "lineage",
        "load_output",
        "load_target",
        "parse_overrides",
        "read_state",
        "record_noop",
        "reproduce",
        "save_output",
        "step",
        "sweep",
        "tool_config",
        "up_to_date",
    },
    "kiln.notebooks": {
        "FormField",
        "NotebookResult",
        "ParametersCellWarning",
        "RunControl",
        "WarmRunner",
        "SweepResult",
        "check_notebook",
        "codify",
        "diff_notebooks",
        "export_notebook",
        "notebook_form",
        "notebook_results",
        "notebook_step",
        "notebook_text",
        "pair_notebook",
        "parse_value",
        "record",
        "render_html",
        "run_grid",
        "run_notebook",
        "step",
        "step_input",
        "translate",
    },
    "kiln.serving": {
        "Limits",
        "ServeConfig",
        "build_package",
        "create_app",
        "in_sample",
        "is_loopback",
        "predict_file",
        "prediction_log",
        "run_app",
        "serve",
    },
    "kiln.autolog": {
        "AutologWarning",
        "autolog",
        "is_enabled",
    },
    "kiln.testing": {
        "assert_all_features_used",
        "assert_deterministic",
        "assert_outputs_in_range",
        "assert_params_change",
        "assert_params_frozen",
        "assert_signature_compatible",
        "check_model",
        "learned_state",
        "model_checks",
        "train_step",
    },
}


def docs_build() -> ModuleType:
    """docs/build.py, loaded as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("kiln_docs_build", ROOT / "docs" / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_cover_the_root_and_every_subpackage() -> None:
    packages = sorted(
        f"kiln.{p.name}"
        for p in (ROOT / "src" / "kiln").iterdir()
        if (p / "__init__.py").exists() and not p.name.startswith("_")
    )
    documented = docs_build().PUBLIC_MODULES

    assert documented[0] == "kiln"
    assert sorted(documented[1:]) == packages
    assert sorted(EXPECTED) == packages


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exported_members_are_pinned(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)

    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    assert set(exported) == EXPECTED[name]
    for member in exported:
        assert getattr(module, member) is not None, f"{name}.{member}"


def test_the_api_reference_documents_exactly_each_all() -> None:
    pdoc = pytest.importorskip("pdoc")
    del pdoc
    for page in docs_build().api_modules():
        module = page.obj
        exported = set(module.__all__)
        # pdoc lists a subpackage named in __all__ (kiln.evaluate) as its own page, not
        # as a member of its parent's page.
        submodules = {n for n in exported if inspect.ismodule(getattr(module, n))}
        assert set(page.members) == exported - submodules, page.modulename
