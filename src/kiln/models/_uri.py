"""Model URIs: `runs:/<run id>/<path>`, `models:/<name>/<version>`, `models:/<name>@<alias>`,
or a folder path; and `load_model`, which accepts all of them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.tracking import parse_runs_uri

if TYPE_CHECKING:
    from kiln.models._model import Model

__all__ = ["load_model", "model_folder", "parse_runs_uri", "resolve_model_uri"]


def resolve_model_uri(uri: str | os.PathLike[str], *, store: str | None = None) -> str:
    """Where a model URI's files are: a registry URI resolved to its version's source.

    Args:
        uri: `models:/churn/3`, `models:/churn@production`, `models:/churn/latest`,
            `runs:/<run id>/model`, or a folder path.
        store: The store to resolve registry URIs in (default: the configured one).

    Returns:
        `runs:/<run id>/<path>` or a folder path: the registered version's source for a
        `models:/` URI, else `uri` as given.

    Raises:
        RegistryError: A `models:/` URI is malformed.
        NotFoundError: The registered model, version or alias does not exist.
    """
    text = os.fspath(uri)
    if text.startswith("models:/"):
        from kiln.registry import resolve_uri

        return resolve_uri(text, store=store)
    return text


@contextlib.contextmanager
def model_folder(uri: str | os.PathLike[str], *, store: str | None = None) -> Iterator[Path]:
    """The local saved-model folder a URI names, for the duration of a `with` block.

    A `models:/` URI is resolved in the registry (`resolve_model_uri`); a `runs:/` URI
    is downloaded into a temporary folder, removed when the block ends, each file
    checked against the sha256 the metadata store recorded (an embedded store is read
    without importing SQLAlchemy); anything else is a local folder, used in place.
    `runs:/<run id>/model` of a pipeline step's run that reused a cached output (and so
    saved nothing itself) is the model saved by the run of that step that computed it.
    Nothing is loaded and the manifest is not read: `kiln.load_model` does both.

    ```python
    with kiln.models.model_folder("models:/churn@production") as folder:
        shutil.copytree(folder, "bundle/model")
    ```

    Raises:
        ConfigurationError: A `runs:/` URI is malformed.
        NotFoundError: The run, artifact, registered model, version or alias does not
            exist.
        ArtifactIntegrityError: A downloaded file changed since it was logged.
    """
    text = resolve_model_uri(uri, store=store)
    if not text.startswith("runs:/"):
        yield Path(text).expanduser()
        return
    from kiln._exceptions import ArtifactNotFoundError
    from kiln.tracking import download_run_artifacts

    run_id, path = parse_runs_uri(text)
    with tempfile.TemporaryDirectory(prefix="kiln-model-") as tmp:
        try:
            folder = download_run_artifacts(run_id, path, tmp, store=store)
        except ArtifactNotFoundError as exc:
            maker = _computed_by(run_id, path, store, exc)
            folder = download_run_artifacts(maker, path, tmp, store=store)
        yield folder


def _computed_by(run_id: str, path: str, store: str | None, missing: Exception) -> str:
    """The id of the run that saved a pipeline step's model, when `run_id` is a run of
    that step that reused the cached output (and so logged nothing itself).

    Raises:
        ArtifactNotFoundError: `missing`, with the run's saved models (or how to save
            one), for any other run; for a cache hit whose computing run is gone, with
            what to do about it.
    """
    from kiln._exceptions import ArtifactNotFoundError
    from kiln.tracking import TrackingClient, computed_by, get_client

    client = get_client() if store is None else TrackingClient(store)
    run = client.get_run(client.resolve_run_id(run_id))
    maker = computed_by(client, run, path.strip("/") + "/kiln-model.json")
    if maker is not None:
        return maker.id
    if run.tags.get("kiln.pipeline.cache") == "hit":
        step = run.tags.get("kiln.pipeline.step")
        raise ArtifactNotFoundError(
            f"{missing} It is a run of pipeline step {step!r} that reused a cached output, "
            f"and no run of that step that computed it holds {path!r} any more: re-run "
            f"the step (kiln run --force {step}) and use its run."
        ) from missing
    models = sorted(
        a.path[: -len("/kiln-model.json")]
        for a in run.artifacts
        if a.path.endswith("/kiln-model.json")
    )
    if models:
        uris = ", ".join(f"runs:/{run.id}/{m}" for m in models[:5])
        hint = f" Its saved models: {uris}."
    else:
        hint = (
            " It holds no saved model: save one to the run with model.save() inside "
            "kiln.start_run(), or log a saved model's folder with "
            "kiln.log_artifact(folder, name='model')."
        )
    raise ArtifactNotFoundError(f"{missing}{hint}") from missing


def load_model(
    uri: str | os.PathLike[str],
    *,
    store: str | None = None,
    compiled: bool = True,
    trust_pickle: bool = False,
    device: str = "cpu",
) -> Model:
    """Load a saved model from a URI or folder, after checking every file's sha256.

    Nothing in the folder runs code unless the caller trusts it: a model saved with
    pickle (kiln's warned fallback), or a skops file naming types outside kiln's
    allow-list, is refused unless `trust_pickle` is True. The folder's own manifest
    can never make that choice (see docs/security.md).

    Args:
        uri: `runs:/<run id>/model`, `models:/churn/3`, `models:/churn@production`, or a
            folder written by `Model.save(path)`.
        store: The store to read run and registry URIs from (default: the configured one).
        compiled: Use the model's compiled inference when it has one (scikit-learn
            pipelines of common steps, checked against the estimator when saved): no
            scikit-learn import until `estimator_` is read, and a faster `predict`.
            False always calls the library estimator.
        trust_pickle: Load a model whose files run code when loaded (pickle, skops types
            outside kiln's allow-list). Pass True only for a model from a source you
            trust as you trust your own code.
        device: Where a PyTorch model's module runs: "cpu" (the default), "cuda",
            "cuda:N", "mps", or "auto" (CUDA when available, else the CPU). Other
            flavors run on the CPU and accept only "cpu" and "auto".

    Raises:
        ArtifactIntegrityError: A file changed since it was logged; it is named.
        ArtifactPathError: A stored artifact path would reach outside the download folder.
        NotFoundError: The run, model, version or alias does not exist.
        UntrustedCodeError: Loading would run code and `trust_pickle` is False; the
            message names the flag.
        ConfigurationError: `device` is unknown or not available here, or a `runs:/`
            URI is malformed.
    """
    from kiln.models._format import read_manifest
    from kiln.models._model import Model

    resolved = resolve_model_uri(uri, store=store)  # one registry query, not two
    with model_folder(resolved, store=store) as folder:
        manifest = read_manifest(folder)
        # Where the model came from: the URI given, or the folder's absolute path.
        source = os.fspath(uri) if resolved.startswith("runs:/") else str(folder.resolve())
        model = Model._from_folder(
            folder, manifest, source, compiled=compiled, trust_pickle=trust_pickle
        )
        return _on_device(model, device)  # while a downloaded folder still exists


def _on_device(model: Model, device: str) -> Model:
    if device == "cpu" and model.flavor_ != "torch":
        return model  # nothing to move, and no torch import
    from kiln.models._torch import place_model

    return place_model(model, device)
