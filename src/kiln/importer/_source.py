"""Where an MLflow tracking source is, checked before MLflow's client touches it.

MLflow's client creates what it is pointed at when it does not exist (an empty
`mlflow.db`, a `mlruns/0/` folder): the importer checks first that the source exists
and is an MLflow store, so that a typo is an error and never a new, empty store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kiln._exceptions import ConfigurationError
from kiln._extras import require

__all__ = ["mlflow_client", "tracking_uri"]

_REMOTE = ("http://", "https://", "postgresql://", "postgresql+", "mysql://", "mysql+", "mssql")
_FORMS = (
    "an MLflow file store folder (./mlruns), an MLflow SQLite database "
    "(sqlite:///mlflow.db) or an MLflow server (http://host:5000)"
)


def tracking_uri(source: str | os.PathLike[str]) -> str:
    """The MLflow tracking URI for `source`, checked to exist and be an MLflow store.

    Args:
        source: A file store folder (`./mlruns`, `file:///...`), a SQLite file or URI
            (`mlflow.db`, `sqlite:///mlflow.db`), or a server or database URL
            (`http://host:5000`, `postgresql://...`), passed on as is.

    Raises:
        ConfigurationError: The source does not exist, or is not an MLflow store (the
            message says what it is and which forms are expected).
    """
    text = os.fspath(source)
    if not text.strip():
        raise ConfigurationError(f"No MLflow source given; expected {_FORMS}.")
    if text.startswith(_REMOTE):
        return text
    if text.startswith("sqlite:///"):
        path = Path(text[len("sqlite:///") :])
        _check_sqlite(path, text)
        return f"sqlite:///{path.resolve()}"
    if "://" in text and not text.startswith("file://"):
        raise ConfigurationError(f"Cannot read MLflow data from {text!r}: expected {_FORMS}.")
    path = Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()
    if not path.exists():
        raise ConfigurationError(
            f"MLflow source not found: there is no {str(path)!r} (working directory: "
            f"{os.getcwd()}). Expected {_FORMS}."
        )
    if path.is_file():
        _check_sqlite(path, text)
        return f"sqlite:///{path.resolve()}"
    if any(path.glob("*/meta.yaml")):
        return path.resolve().as_uri()
    hints = [str(path / n) for n in ("mlruns", "mlflow.db") if (path / n).exists()]
    hint = f" It holds {' and '.join(hints)}: give that instead." if hints else ""
    raise ConfigurationError(
        f"{str(path)!r} is not an MLflow file store: it has no experiment folders "
        f"(<id>/meta.yaml).{hint} Expected {_FORMS}."
    )


def _check_sqlite(path: Path, given: str) -> None:
    if not path.is_file():
        raise ConfigurationError(
            f"MLflow source not found: there is no database file {str(path)!r} (from "
            f"{given!r}; working directory: {os.getcwd()}). Expected {_FORMS}."
        )
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    except sqlite3.DatabaseError as exc:
        raise ConfigurationError(
            f"{str(path)!r} is not an MLflow store: it is not a SQLite database ({exc}). "
            f"Expected {_FORMS}."
        ) from exc
    if not {"experiments", "experiment_tags", "runs"} <= tables or "run_uuid" not in columns:
        raise ConfigurationError(
            f"{str(path)!r} is a SQLite database but not MLflow's: it has no MLflow "
            f"tables (experiments, experiment_tags, runs with run_uuid). Expected {_FORMS}."
        )


@contextlib.contextmanager
def mlflow_client(uri: str) -> Iterator[Any]:
    """An `MlflowClient` on `uri`, with MLflow's file store allowed for reading.

    MLflow 3 refuses its file store unless `MLFLOW_ALLOW_FILE_STORE` is set; reading one
    to move off it is what the variable is for. It is set only while the client is used.

    Raises:
        MissingExtraError: mlflow is not installed (the message gives the install line).
    """
    require("mlflow", "mlflow", "Importing from MLflow")
    from mlflow.tracking import MlflowClient

    settings = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # kiln shows its own
    if uri.startswith("file:"):
        settings["MLFLOW_ALLOW_FILE_STORE"] = "true"
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pages(fetch: Callable[[str | None], Any]) -> list[Any]:
    """Every item of a paged MLflow listing: `fetch(page_token)` until no token is left."""
    out: list[Any] = []
    token: str | None = None
    while True:
        page = fetch(token)
        out.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return out
