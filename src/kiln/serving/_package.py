"""`kiln package`: a model as an installable wheel that serves it, plus a Dockerfile.

The wheel `kiln_model_<name>-<version>-py3-none-any.whl` holds the saved-model folder
(checked against its recorded hashes first) and a console script of the same name
that runs `kiln serve` on it. It requires `kiln-ml[serve]` at the running kiln's
version and the model library at the version it was saved with. The Dockerfile
installs every wheel in its folder (put a kiln-ml wheel there when kiln is not on your
package index) and serves on port 8000, with the token from `KILN_TOKEN`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from kiln._exceptions import ConfigurationError

__all__ = ["build_package"]

_EXTRAS = {"sklearn": "sklearn", "lightgbm": "lightgbm", "xgboost": "xgboost"}


def _normal(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def _model_folder(uri: str, dest: Path, store: str | None) -> Path:
    """The saved-model folder of a URI, copied to `dest`, its hashes checked."""
    from kiln.models._format import read_manifest

    text = uri
    if text.startswith("models:/"):
        from kiln.registry import resolve_uri

        text = resolve_uri(text, store=store)
    if text.startswith("runs:/"):
        from kiln.models._uri import parse_runs_uri
        from kiln.tracking import TrackingClient

        run_id, path = parse_runs_uri(text)
        folder = TrackingClient(store).download_artifacts(run_id, path, dest / "dl")
    else:
        folder = Path(text).expanduser()
    read_manifest(folder)  # raises unless every file matches its recorded sha256
    target = dest / "model"
    shutil.copytree(folder, target)
    return target


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_package(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str] = "dist",
    *,
    name: str | None = None,
    version: str = "1.0.0",
    store: str | None = None,
) -> dict[str, str]:
    """Write a wheel that serves `model`, and a Dockerfile, into `output`.

    Args:
        model: A model URI or saved-model folder.
        output: The folder to write into (created when missing).
        name: The distribution name (default: `kiln-model-<registered name or folder>`).
        version: The distribution's version.
        store: The store to read a URI from.

    Returns:
        Paths of the `wheel` and `dockerfile`, and the `command` the wheel installs.
    """
    import json

    from kiln._version import __version__

    uri = os.fspath(model)
    if name is None:
        base = uri.split("@", 1)[0].rstrip("/")
        if uri.startswith("models:/"):
            base = base[len("models:/") :].split("/", 1)[0]
        elif uri.startswith("runs:/"):
            base = uri[len("runs:/") :].split("/", 1)[0][:8]
        name = f"kiln-model-{Path(base).name}"
    module = _normal(name)
    if not module or not re.fullmatch(r"[a-z_][a-z0-9_]*", module):
        raise ConfigurationError(
            f"{name!r} cannot be a package name: use letters, digits, '-' and '_'."
        )
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise ConfigurationError(f"version {version!r}: expected numbers like 1.0.0.")
    script = module.replace("_", "-")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiln-package-") as tmp:
        folder = _model_folder(uri, Path(tmp), store)
        manifest = json.loads((folder / "kiln-model.json").read_text(encoding="utf-8"))
        extra = _EXTRAS.get(manifest.get("flavor", ""), "")
        requires = [f"kiln-ml[serve{',' + extra if extra else ''}]=={__version__}"]
        requires += [r for r in manifest.get("requirements", []) if not r.startswith("kiln-ml")]
        files: dict[str, bytes] = {
            f"{module}/__init__.py": _INIT.format(uri=uri).encode(),
            f"{module}/__main__.py": b"from . import main\n\nmain()\n",
        }
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            files[f"{module}/model/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
        info = f"{module}-{version}.dist-info"
        metadata = [
            "Metadata-Version: 2.1",
            f"Name: {name}",
            f"Version: {version}",
            f"Summary: The model {uri}, served by kiln",
            "Requires-Python: >=3.11",
            *(f"Requires-Dist: {r}" for r in requires),
        ]
        files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
        files[f"{info}/WHEEL"] = (
            b"Wheel-Version: 1.0\nGenerator: kiln package\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        )
        files[f"{info}/entry_points.txt"] = (
            f"[console_scripts]\n{script} = {module}:main\n"
        ).encode()
        record = [_record_line(n, data) for n, data in files.items()]
        record.append(f"{info}/RECORD,,")
        files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
        wheel = out / f"{module}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, data in files.items():
                zf.writestr(n, data)
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(_DOCKERFILE.format(script=script, wheel=wheel.name), encoding="utf-8")
    return {"wheel": str(wheel), "dockerfile": str(dockerfile), "command": script}


_INIT = '''"""The model {uri}, packaged by `kiln package`. Run `main()` to serve it."""

import sys
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"


def main(argv=None):
    """Serve the packaged model: the options of `kiln serve` (--host, --port, ...)."""
    from kiln.cli import main as kiln_main

    args = list(sys.argv[1:] if argv is None else argv)
    return kiln_main(["serve", str(MODEL_DIR), *args])
'''

_DOCKERFILE = """# Serves the packaged model on port 8000. Build next to the wheels:
#   docker build -t {script} .
#   docker run -p 8000:8000 -e KILN_TOKEN=change-me {script}
# Off loopback kiln needs a token (KILN_TOKEN); health endpoints stay open.
# Every *.whl in this folder is installed: add a kiln-ml wheel when kiln-ml is not on
# your package index.
FROM python:3.11-slim
RUN useradd --create-home kiln
WORKDIR /home/kiln
COPY *.whl /tmp/wheels/
RUN pip install --no-cache-dir --find-links /tmp/wheels /tmp/wheels/{wheel} && rm -rf /tmp/wheels
USER kiln
ENV KILN_HOME=/home/kiln/.kiln
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["{script}", "--host", "0.0.0.0", "--port", "8000"]
"""
