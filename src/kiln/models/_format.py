"""The saved-model folder: its manifest, and the checks made before anything is loaded.

```
model/
  kiln-model.json            the manifest (format version, flavor, versions, file hashes)
  signature.json             input and output schema (see `Signature`)
  profile.json               reference profile for monitoring
  reference_sample.parquet   seeded sample of training rows (<= 10,000)
  model.skops | model.txt | model.ubj | weights.safetensors | function.json | model.pkl
```

The manifest lists the sha256 of every other file. Loading through a URI also checks
each file against the hash the metadata store recorded when it was logged, which an
edit to the folder (manifest included) cannot forge.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from kiln._exceptions import ArtifactIntegrityError, ModelFormatError
from kiln._version import __version__
from kiln.registry import MODEL_MANIFEST

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "ModelFormatError",
    "model_file",
    "read_manifest",
    "write_manifest",
]

FORMAT_VERSION = 1
MANIFEST = MODEL_MANIFEST


def write_manifest(folder: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Hash every file in `folder` and write the manifest next to them."""
    from kiln.artifacts import hash_folder

    files = hash_folder(folder, skip={MANIFEST})
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": int(time.time() * 1000),
        "kiln_version": __version__,
        "python_version": platform.python_version(),
        **fields,
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return manifest


def read_manifest(folder: Path, *, verify: bool = True) -> dict[str, Any]:
    """Read a saved model's manifest and check every listed file against its sha256.

    Raises:
        ModelFormatError: No manifest, or a newer format version than this kiln reads.
        ArtifactIntegrityError: A listed file is missing or its bytes changed (named).
        ArtifactPathError: A listed file's path reaches outside the folder.
    """
    from kiln.artifacts import sha256_file

    path = folder / MANIFEST
    if not path.is_file():
        raise ModelFormatError(
            f"{folder} is not a kiln saved model: it has no {MANIFEST}. Save models with "
            "kiln.Model(...).save() and load them with kiln.load_model(uri)."
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelFormatError(f"{path} is not valid JSON: {exc}") from exc
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{folder} was saved in kiln model format {version!r}; this kiln reads up to "
            f"{FORMAT_VERSION}. Upgrade kiln (pip install -U kiln-ml) to load it."
        )
    if verify:
        from kiln.artifacts import inside

        listed = manifest.get("files", {})
        for rel, file in zip(listed, inside(folder, listed, "Saved model file"), strict=True):
            expected = listed[rel]
            if not file.is_file():
                raise ArtifactIntegrityError(f"Saved model file {rel!r} is missing from {folder}.")
            actual = sha256_file(file)[0]
            if actual != expected:
                raise ArtifactIntegrityError(
                    f"Saved model file {rel!r} in {folder} has been changed: its sha256 is "
                    f"{actual}, but the manifest recorded {expected}. It will not be loaded."
                )
    return manifest


def model_file(manifest: dict[str, Any]) -> str:
    """The manifest's model file: a plain file name inside the model folder.

    Raises:
        ModelFormatError: The name is empty, a path or reaches outside the folder.
    """
    name = manifest.get("model_file")
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ModelFormatError(
            f"The manifest's model_file {name!r} is not a file name inside the model folder; "
            "expected a plain name such as model.skops. The folder was not written by kiln."
        )
    return name
