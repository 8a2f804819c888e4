"""`kiln package`: a model as an installable wheel that serves it, plus a Dockerfile.

The wheel `kiln_model_<name>-<version>-py3-none-any.whl` holds the saved-model folder
(checked against its recorded hashes first) and a console script of the same name
that serves it. Its version is the registry version for a `models:/` URI (the alias, if
any, is in its metadata), else 1.0.0, unless given. It requires `kiln-ml[serve]` at the
running kiln's version and the model library at the version it was saved with.

kiln-ml is not on a public index yet, so its wheel is put beside the model's: built
from the running kiln's source tree (an editable or source install, with `uv build`),
or copied from `kiln_wheel` or from the wheel file kiln was installed from, or kept when
the folder already holds it. Then
`pip install --find-links dist dist/kiln_model_<name>-*.whl` finds kiln-ml offline, and
the Dockerfile installs every wheel in its folder the same way and serves on port 8000,
with the token from `KILN_TOKEN`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from kiln._exceptions import ConfigurationError
from kiln._wheel import installed_wheel, source_tree, uv_executable

__all__ = ["build_package"]

_EXTRAS = {"sklearn": "sklearn", "lightgbm": "lightgbm", "xgboost": "xgboost"}


def _normal(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def _model_folder(uri: str, dest: Path, store: str | None) -> Path:
    """The saved-model folder of a URI, copied to `dest`, its hashes checked."""
    from kiln.models import model_folder, read_manifest

    target = dest / "model"
    with model_folder(uri, store=store) as folder:
        read_manifest(folder)  # raises unless every file matches its recorded sha256
        shutil.copytree(folder, target)
    return target


def _registry_version(uri: str, store: str | None) -> tuple[str, str, list[str]]:
    """(version number, source, aliases) of a `models:/` URI, from the registry."""
    from kiln.registry import RegistryClient, parse_models_uri

    name, ref = parse_models_uri(uri)
    found = RegistryClient(store).get_model_version(name, ref)
    found.require_kiln_model()
    return str(found.version), found.source, list(found.aliases)


def _kiln_wheel(out: Path, given: str | os.PathLike[str] | None) -> Path | None:
    """Put the kiln-ml wheel of the running version into `out`; None when there is none
    to put (kiln-ml installed from a package index, which will serve it again)."""
    from kiln._version import __version__

    pattern = f"kiln_ml-{__version__}-*.whl"
    if given is not None:
        path = Path(given)
        found = sorted(path.glob(pattern)) if path.is_dir() else [path]
        if (
            not found
            or not found[0].is_file()
            or not found[0].name.startswith(f"kiln_ml-{__version__}-")
        ):
            raise ConfigurationError(
                f"kiln_wheel {str(path)!r} is not a kiln-ml {__version__} wheel (or a folder "
                f"holding one): expected a file named {pattern}. Build it with `make dist` "
                "in a clone of kiln at that version."
            )
        target = out / found[0].name
        if found[0].resolve() != target.resolve():
            shutil.copyfile(found[0], target)
        return target
    kept = sorted(out.glob(pattern))
    if kept:
        return kept[0]
    wheel = installed_wheel()
    if wheel is not None and wheel.name.startswith(f"kiln_ml-{__version__}-"):
        return _kiln_wheel(out, wheel)
    root = source_tree()
    if root is None:
        return None
    with tempfile.TemporaryDirectory(prefix="kiln-wheel-") as tmp:
        uv = uv_executable()
        command = (
            [uv, "build", "--wheel", "--out-dir", tmp, str(root)]
            if uv
            else [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp, str(root)]
        )
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigurationError(
                f"Could not build kiln-ml's wheel from {root} ({exc}). Build it with "
                "`make dist` there and pass it with --kiln-wheel."
            ) from exc
        built = sorted(Path(tmp).glob(pattern))
        if done.returncode != 0 or not built:
            raise ConfigurationError(
                f"Could not build kiln-ml's wheel from {root}: {' '.join(command[:2])} said "
                f"{(done.stderr or done.stdout).strip()[-800:]!r}. Build it with `make dist` "
                "there and pass it with --kiln-wheel."
            )
        target = out / built[0].name
        shutil.copyfile(built[0], target)
    return target


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_package(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str] = "dist",
    *,
    name: str | None = None,
    version: str | None = None,
    store: str | None = None,
    kiln_wheel: str | os.PathLike[str] | None = None,
) -> dict[str, str | None]:
    """Write a wheel that serves `model`, kiln-ml's wheel and a Dockerfile into `output`.

    Args:
        model: A model URI or saved-model folder.
        output: The folder to write into (created when missing).
        name: The distribution name (default: `kiln-model-<registered name or folder>`).
        version: The distribution's version (default: the registry version of a
            `models:/` URI, else 1.0.0).
        store: The store to read a URI from.
        kiln_wheel: A kiln-ml wheel (or a folder holding one) of the running version to
            put beside the model's; by default it is built from kiln's source tree when
            kiln runs from one, or none is put when kiln-ml came from a package index.

    Returns:
        Paths of the `wheel`, the `kiln_wheel` (None when kiln-ml comes from a package
        index) and the `dockerfile`, the `command` the wheel installs, and the model's
        registry `version` and `aliases` (None for a folder or a run).

    Raises:
        ConfigurationError: A bad name or version, or kiln-ml's wheel cannot be made.
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
    registered: tuple[str, str, list[str]] | None = None
    if uri.startswith("models:/"):
        registered = _registry_version(uri, store)
    if version is None:
        version = registered[0] if registered else "1.0.0"
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise ConfigurationError(f"version {version!r}: expected numbers like 1.0.0.")
    script = module.replace("_", "-")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiln-package-") as tmp:
        folder = _model_folder(registered[1] if registered else uri, Path(tmp), store)
        manifest = json.loads((folder / "kiln-model.json").read_text(encoding="utf-8"))
        extra = _EXTRAS.get(manifest.get("flavor", ""), "")
        requires = [f"kiln-ml[serve{',' + extra if extra else ''}]=={__version__}"]
        requires += [r for r in manifest.get("requirements", []) if not r.startswith("kiln-ml")]
        about = uri
        if registered:
            from kiln.registry import parse_models_uri

            about = f"models:/{parse_models_uri(uri)[0]} version {registered[0]}"
            if registered[2]:
                about += f" (aliases: {', '.join(registered[2])})"
        files: dict[str, bytes] = {
            f"{module}/__init__.py": _INIT.format(
                about=about.replace('"', "'"),
                uri=json.dumps(uri),
                version=json.dumps(registered[0] if registered else None),
                aliases=json.dumps(registered[2] if registered else []),
                dist=json.dumps(name),
                dist_version=json.dumps(version),
                script=json.dumps(script),
            ).encode(),
            f"{module}/__main__.py": b"from . import main\n\nmain()\n",
        }
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            files[f"{module}/model/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
        info = f"{module}-{version}.dist-info"
        metadata = [
            "Metadata-Version: 2.1",
            f"Name: {name}",
            f"Version: {version}",
            f"Summary: The model {about}, served by kiln",
            "Requires-Python: >=3.11",
            *(
                [f"Keywords: kiln-model,{','.join(['version-' + registered[0], *registered[2]])}"]
                if registered
                else []
            ),
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
    kiln = _kiln_wheel(out, kiln_wheel)
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(_DOCKERFILE.format(script=script, wheel=wheel.name), encoding="utf-8")
    return {
        "wheel": str(wheel),
        "kiln_wheel": None if kiln is None else str(kiln),
        "dockerfile": str(dockerfile),
        "command": script,
        "version": registered[0] if registered else None,
        "aliases": ", ".join(registered[2]) if registered else None,
    }


_INIT = '''"""The model {about}, packaged by `kiln package`. Run `main()` to serve it."""

import sys
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_URI = {uri}
MODEL_VERSION = {version}
MODEL_ALIASES = {aliases}
DISTRIBUTION = {dist}
DISTRIBUTION_VERSION = {dist_version}


def main(argv=None):
    """Serve the packaged model: --host, --port, --workers, ... (see --help)."""
    from kiln.cli.serve import serve_packaged

    args = list(sys.argv[1:] if argv is None else argv)
    return serve_packaged(
        MODEL_DIR,
        args,
        prog={script},
        about="The model " + {about!r} + " (" + DISTRIBUTION + " " + DISTRIBUTION_VERSION + ")",
    )
'''

_DOCKERFILE = """# Serves the packaged model on port 8000. Build next to the wheels:
#   docker build -t {script} .
#   docker run -p 8000:8000 -e KILN_TOKEN=change-me {script}
# Off loopback kiln needs a token (KILN_TOKEN); health endpoints stay open.
# Every *.whl in this folder is installed from here (kiln package put kiln-ml's wheel
# beside the model's), so kiln-ml need not be on a package index.
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
