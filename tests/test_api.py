"""The public API: its export list is pinned, and every public name is documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import kiln
from kiln import MissingExtraError
from kiln._extras import require
from test_exports import EXPECTED

EXPECTED_KILN = {
    "SignatureError",
    "RegistryError",
    "AccessError",
    "PlotError",
    "ModelVersionNotFoundError",
    "ModelNotFoundError",
    "EvaluationError",
    "AliasNotFoundError",
    "ActiveRun",
    "ArtifactError",
    "ArtifactInfo",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ArtifactPathError",
    "CellExecutionError",
    "CellTimeoutError",
    "ConfigurationError",
    "DataFileError",
    "DatasetInfo",
    "Experiment",
    "ExperimentNotFoundError",
    "FilterSyntaxError",
    "InvalidMetricError",
    "KernelDiedError",
    "KilnError",
    "KilnWarning",
    "Metric",
    "MissingExtraError",
    "Model",
    "ModelError",
    "ModelFormatError",
    "NoActiveRunError",
    "NotFittedError",
    "NotFoundError",
    "NotebookError",
    "NotebookResult",
    "ParamConflictError",
    "Pipeline",
    "PipelineError",
    "ParameterError",
    "PredictionError",
    "Run",
    "RunNotFoundError",
    "SchemaVersionError",
    "StepFailedError",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "TrackingClient",
    "TrackingError",
    "UnknownFilterKeyWarning",
    "UntrustedCodeError",
    "ValidationError",
    "__version__",
    "active_run",
    "autolog",
    "configure",
    "end_run",
    "evaluate",
    "flush",
    "get_client",
    "get_run",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "metric_history",
    "prediction_log",
    "notebook_results",
    "record",
    "register",
    "run_notebook",
    "runs",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
    "sweep",
}
PUBLIC_MODULES = ["kiln", *sorted(EXPECTED)]  # the root and every subpackage


def test_exported_members_are_pinned() -> None:
    assert set(kiln.__all__) == EXPECTED_KILN
    assert len(kiln.__all__) == len(set(kiln.__all__))


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_exported_name_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module_name}.{name}"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = kiln.nope  # type: ignore[attr-defined]


def _public_members(obj: type) -> list[tuple[str, object]]:
    found = []
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or isinstance(member, (property, classmethod, staticmethod)):
            found.append((name, member))
    return found


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"module {module_name} has no docstring"
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if name == "__version__" or not (inspect.isclass(obj) or callable(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            for member_name, member in _public_members(obj):
                target = member.fget if isinstance(member, property) else member
                target = getattr(target, "__func__", target)
                if not (getattr(target, "__doc__", None) or "").strip():
                    missing.append(f"{module_name}.{name}.{member_name}")
    assert not missing, f"public names without a docstring: {missing}"


def test_missing_extra_names_the_exact_install_line() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'kiln-ml\[ray\]'") as info:
        require("kiln_no_such_module_xyz", "ray", "Running a pipeline on Ray")
    assert "Running a pipeline on Ray needs the Python package 'kiln_no_such_module_xyz'" in str(
        info.value
    )
    assert isinstance(info.value, ImportError)


def test_every_kiln_error_is_exported_from_the_root() -> None:
    import kiln._exceptions as exceptions

    classes = [n for n in exceptions.__all__ if inspect.isclass(getattr(exceptions, n))]
    assert sorted(set(classes) - set(kiln.__all__)) == []


def test_exception_hierarchy_is_rooted_in_kilnerror() -> None:
    for name in kiln.__all__:
        obj = getattr(kiln, name)
        if inspect.isclass(obj) and issubclass(obj, Warning):
            assert issubclass(obj, kiln.KilnWarning), name
        elif inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, kiln.KilnError), name
