"""kiln's project templates: where they live and which version each is.

A template is a Copier template folder (`copier.yml` at its top) holding a `VERSION`
file (a PEP 440 version, left out of the rendered project). kiln ships `default` inside
the package; a folder path works too (a template of your own, or a copy of kiln's).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kiln._exceptions import ConfigurationError, did_you_mean

__all__ = ["TEMPLATES", "TEMPLATE_VERSION", "resolve_template"]

#: The version of kiln's `default` template; `kiln init --update` moves a project to it.
TEMPLATE_VERSION = "1.0.0"

_HERE = Path(__file__).resolve().parent / "template"
TEMPLATES = ("default",)
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*([ab]|rc)?[0-9]*")


def resolve_template(template: str | os.PathLike[str]) -> tuple[Path, str]:
    """The template folder and its version, for a shipped name or a folder path.

    Raises:
        ConfigurationError: No such template, or a folder without copier.yml or VERSION.
    """
    text = os.fspath(template)
    if text in TEMPLATES:
        folder = _HERE / text
    elif os.sep in text or "/" in text or Path(text).is_dir():
        folder = Path(text).expanduser().resolve()
    else:
        raise ConfigurationError(
            f"No kiln template named {text!r}; kiln ships {', '.join(TEMPLATES)}."
            f"{did_you_mean(text, TEMPLATES)} A folder path (with copier.yml) works too."
        )
    if not (folder / "copier.yml").is_file():
        raise ConfigurationError(
            f"{folder} is not a template folder: expected copier.yml in it (a Copier template)."
        )
    version_file = folder / "VERSION"
    version = version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else ""
    if not _VERSION.fullmatch(version):
        raise ConfigurationError(
            f"{version_file} must hold the template's version, such as 1.0.0 (a PEP 440 "
            f"version that `kiln init --update` compares); it holds {version!r}."
        )
    return folder, version
