"""Model URIs: `runs:/<run id>/<path>`, `models:/<name>/<version>`, `models:/<name>@<alias>`,
or a folder path; and `load_model`, which accepts all of them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError

if TYPE_CHECKING:
    from kiln.models._model import Model

__all__ = ["load_model", "parse_runs_uri"]


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """Split `runs:/<run id>/<path>` into the run id and the artifact path."""
    rest = uri[len("runs:/") :].strip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise ConfigurationError(f"{uri!r} is not a run URI; expected runs:/<run id>/<path>.")
    return run_id, path or "model"


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
        ConfigurationError: `device` is unknown or not available here.
    """
    from kiln.models._format import read_manifest
    from kiln.models._model import Model

    text = os.fspath(uri)
    if text.startswith("models:/"):
        from kiln.registry import resolve_uri

        text = resolve_uri(text, store=store)
    if text.startswith("runs:/"):
        from kiln.store._lite import download_run_files

        run_id, path = parse_runs_uri(text)
        with tempfile.TemporaryDirectory(prefix="kiln-load-") as tmp:
            # Each file is checked against the sha256 the metadata store recorded; an
            # embedded store is read without SQLAlchemy when nothing else needs it.
            folder = download_run_files(store, run_id, path, Path(tmp))
            if folder is None:
                folder = _client(store).download_artifacts(run_id, path, Path(tmp))
            manifest = read_manifest(folder)
            model = Model._from_folder(
                folder, manifest, os.fspath(uri), compiled=compiled, trust_pickle=trust_pickle
            )
            return _on_device(model, device)
    folder = Path(text).expanduser()
    manifest = read_manifest(folder)
    model = Model._from_folder(
        folder, manifest, str(folder.resolve()), compiled=compiled, trust_pickle=trust_pickle
    )
    return _on_device(model, device)


def _on_device(model: Model, device: str) -> Model:
    if device == "cpu" and model.flavor_ != "torch":
        return model  # nothing to move, and no torch import
    from kiln.models._torch import place_model

    return place_model(model, device)


def _client(store: str | None) -> Any:
    if store is None:
        from kiln.tracking import get_client

        return get_client()
    from kiln.tracking import TrackingClient

    return TrackingClient(store)
