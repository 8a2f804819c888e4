"""MLflow's model registry REST API over kiln's registry (`kiln.registry`).

A registered model is kiln's registered model; a model version is kiln's version. When a
version's source (`runs:/<run id>/<path>`) is a kiln-saved model (a folder holding
`kiln-model.json` in a run of this store), it is registered as `kiln.registry.register`
would; any other source (`mlflow-artifacts:/...`, `models:/m-...`, a run's MLflow
model) is recorded as it is (`RegistryClient.record_version`): listed, aliased and
tagged, but kiln's loaders refuse it, saying why.

What kiln's registry does not have is answered with a clear error: stages (kiln has
aliases: every version's `current_stage` is `"None"`), and tags on registered models
(versions have tags). A version's description is kept in its lineage.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kiln._exceptions import NotFoundError, RegistryError
from kiln.server._filter import MlflowRequestError

if TYPE_CHECKING:
    from kiln.registry import ModelVersion, RegistryClient
    from kiln.tracking import TrackingClient

__all__ = ["ENDPOINTS", "RegistryApi"]

_MAX_RESULTS = 200_000  # MLflow asks for up to 10,000 versions by default
_NO_STAGES = (
    "kiln's registry has no stages: it uses aliases instead. Point an alias at the "
    "version: MlflowClient().set_registered_model_alias(name, 'production', version) "
    "(or kiln models alias NAME production VERSION), and load models:/NAME@production."
)
_NO_MODEL_TAGS = (
    "kiln's registry has no tags on registered models, only on their versions: use "
    "set_model_version_tag, or the model's description (update_registered_model)."
)


def _required(body: Mapping[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise MlflowRequestError(f"Missing value for required parameter '{name}'.")
    return value


def _tags(body: Mapping[str, Any]) -> dict[str, str]:
    tags = body.get("tags") or []
    if not isinstance(tags, list):
        raise MlflowRequestError(f"'tags' must be a list of {{key, value}}; got {tags!r}.")
    return {str(t.get("key")): str(t.get("value", "")) for t in tags if isinstance(t, dict)}


def _version_json(v: ModelVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.created_at,
        "last_updated_timestamp": v.created_at,
        "user_id": v.user or "",
        "current_stage": "None",
        "description": v.description or "",
        "source": v.source,
        "run_id": v.run_id or "",
        "status": "READY",
        "tags": [{"key": k, "value": val} for k, val in sorted(v.tags.items())],
        "aliases": list(v.aliases),
        "run_link": "",
    }


# ----------------------------------------------------------------- filters
_CLAUSE = re.compile(
    r"\s*(?:attributes\.)?(?P<key>name|run_id|source_path|source|tags?\.(?:`[^`]+`|[\w.]+))\s*"
    r"(?P<op>!=|=|LIKE|ILIKE|IN)\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\((?:[^)]*)\))\s*",
    re.IGNORECASE,
)


def _unquote(text: str) -> str:
    return text[1:-1]


def _parse_filter(text: Any, keys: tuple[str, ...]) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for `name = 'x'`, `name LIKE 'x%'`, `run_id IN ('a', 'b')`... joined
    by AND, over the fields `keys` allows."""
    if not text or not str(text).strip():
        return lambda _row: True
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for part in re.split(r"\s+AND\s+", str(text), flags=re.IGNORECASE):
        m = _CLAUSE.fullmatch(part)
        key = m.group("key") if m else None
        if key is not None and not key.lower().startswith("tag"):
            key = key.lower()
        elif key is not None:  # tag.`mlflow.prompt.is_prompt`, tags.team
            key = "tag:" + key.split(".", 1)[1].strip("`")
        if m is None or key is None or not (key in keys or key.startswith("tag:")):
            allowed = ", ".join(f"{k} = 'x'" for k in keys)
            raise MlflowRequestError(
                f"kiln's MLflow API filters here by {allowed} and tags.`key` = 'x' (also "
                f"!=, LIKE 'x%', IN ('a', 'b')), joined by AND; cannot read {part.strip()!r}."
            )
        op, raw = m.group("op").upper(), m.group("value")
        if key == "source_path":
            key = "source"
        checks.append(_clause(key, op, raw))
    return lambda row: all(check(row) for check in checks)


def _clause(key: str, op: str, raw: str) -> Callable[[Mapping[str, Any]], bool]:
    if key.startswith("tag:"):  # a tag a row lacks is None: `!= 'x'` keeps it, as in MLflow
        tag = key[4:]
        inner = _clause("value", op, raw)
        return lambda row: inner({"value": (row.get("tags") or {}).get(tag)})
    if op == "IN":
        if not raw.startswith("("):
            raise MlflowRequestError(f"IN takes a list, such as ('a', 'b'); got {raw!r}.")
        values = {_unquote(v.strip()) for v in raw[1:-1].split(",") if v.strip()}
        return lambda row: row.get(key) in values
    if raw.startswith("("):
        raise MlflowRequestError(f"{op} takes one quoted value; got {raw!r}.")
    value = _unquote(raw)
    if op == "=":
        return lambda row: row.get(key) == value
    if op == "!=":
        return lambda row: row.get(key) != value
    pattern = fnmatch.translate(value.replace("%", "*").replace("_", "?"))
    compiled = re.compile(pattern, re.IGNORECASE if op == "ILIKE" else 0)
    return lambda row: compiled.match(str(row.get(key) or "")) is not None


def _order(rows: list[dict[str, Any]], order_by: Any, default: list[str]) -> list[dict[str, Any]]:
    """Sort by MLflow's `order_by` clauses (`name ASC`, `creation_timestamp DESC`...)."""
    clauses = order_by if isinstance(order_by, list) else [order_by] if order_by else []
    aliases = {"timestamp": "last_updated_timestamp", "version_number": "version"}
    for clause in reversed([*clauses, *default]):
        parts = str(clause).split()
        if not parts or len(parts) > 2:
            raise MlflowRequestError(f"Cannot order by {clause!r}: expected 'field [ASC|DESC]'.")
        key = aliases.get(parts[0], parts[0])
        if key not in {"name", "version", "creation_timestamp", "last_updated_timestamp"}:
            raise MlflowRequestError(
                f"Cannot order by {parts[0]!r}: kiln orders registered models and versions "
                "by name, version_number, creation_timestamp or last_updated_timestamp."
            )
        desc = len(parts) == 2 and parts[1].upper() == "DESC"
        rows.sort(key=functools.partial(_sort_key, key), reverse=desc)
    return rows


def _sort_key(key: str, row: Mapping[str, Any]) -> Any:
    return int(row[key]) if key == "version" else row[key]


def _page(rows: list[dict[str, Any]], body: Mapping[str, Any], key: str) -> dict[str, Any]:
    try:
        size = int(body.get("max_results") or 100)
        start = int(body.get("page_token") or 0)
    except (TypeError, ValueError):
        raise MlflowRequestError(
            "max_results must be an integer and page_token one this server returned."
        ) from None
    if not 1 <= size <= _MAX_RESULTS:
        raise MlflowRequestError(f"max_results must be between 1 and {_MAX_RESULTS}; got {size}.")
    out: dict[str, Any] = {key: rows[start : start + size]}
    if start + size < len(rows):
        out["next_page_token"] = str(start + size)
    return out


class RegistryApi:
    """The model registry endpoints over one store's `RegistryClient`.

    Args:
        client: The server's `TrackingClient` (the registry shares its store).
        lock: The lock serializing the server's calls (`MlflowApi.lock`).
    """

    def __init__(self, client: TrackingClient, lock: Any = None) -> None:
        from kiln.registry import RegistryClient

        self.client = client
        self.registry: RegistryClient = RegistryClient(client)
        self.lock = lock or threading.Lock()

    # ------------------------------------------------------- registered models
    def _model_json(self, name: str) -> dict[str, Any]:
        model = self.registry.get_model(name)
        latest = (
            [_version_json(self.registry.get_model_version(name, model.latest_version))]
            if model.latest_version is not None
            else []
        )
        return {
            "name": model.name,
            "creation_timestamp": model.created_at,
            "last_updated_timestamp": max(
                [model.created_at, *(int(v["creation_timestamp"]) for v in latest)]
            ),
            "description": model.description or "",
            "latest_versions": latest,
            "tags": [],
            "aliases": [{"alias": a, "version": str(v)} for a, v in model.aliases.items()],
        }

    def create_registered_model(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _required(body, "name")
        if _tags(body):
            raise MlflowRequestError(_NO_MODEL_TAGS)
        if name in {m.name for m in self.registry.list_models()}:
            raise MlflowRequestError(
                f"Registered Model (name={name}) already exists.", "RESOURCE_ALREADY_EXISTS"
            )
        self.registry.create_model(name, body.get("description") or None)
        return {"registered_model": self._model_json(name)}

    def get_registered_model(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"registered_model": self._model_json(_required(body, "name"))}

    def search_registered_models(self, body: Mapping[str, Any]) -> dict[str, Any]:
        keep = _parse_filter(body.get("filter"), ("name",))
        rows = [
            self._model_json(m.name) for m in self.registry.list_models() if keep({"name": m.name})
        ]
        rows = _order(rows, body.get("order_by"), ["name ASC"])
        return _page(rows, body, "registered_models")

    def rename_registered_model(self, body: Mapping[str, Any]) -> dict[str, Any]:
        new_name = _required(body, "new_name")
        self.registry.rename_model(_required(body, "name"), new_name)
        return {"registered_model": self._model_json(new_name)}

    def update_registered_model(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _required(body, "name")
        self.registry.update_model(name, body.get("description") or None)
        return {"registered_model": self._model_json(name)}

    def delete_registered_model(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.registry.delete_model(_required(body, "name"))
        return {}

    def set_registered_model_tag(self, body: Mapping[str, Any]) -> dict[str, Any]:
        raise MlflowRequestError(_NO_MODEL_TAGS)

    def delete_registered_model_tag(self, body: Mapping[str, Any]) -> dict[str, Any]:
        raise MlflowRequestError(_NO_MODEL_TAGS)

    def set_registered_model_alias(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.registry.set_alias(
            _required(body, "name"), _required(body, "alias"), int(_required(body, "version"))
        )
        return {}

    def delete_registered_model_alias(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.registry.delete_alias(_required(body, "name"), _required(body, "alias"))
        return {}

    def get_model_version_by_alias(self, body: Mapping[str, Any]) -> dict[str, Any]:
        alias = _required(body, "alias")
        version = self.registry.get_model_version(_required(body, "name"), f"@{alias}")
        return {"model_version": _version_json(version)}

    def get_latest_versions(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _required(body, "name")
        stages = body.get("stages") or []
        model = self.registry.get_model(name)
        if model.latest_version is None or (stages and "none" not in {s.lower() for s in stages}):
            return {"model_versions": []}  # kiln's versions are all in stage "None"
        return {
            "model_versions": [
                _version_json(self.registry.get_model_version(name, model.latest_version))
            ]
        }

    # ---------------------------------------------------------- model versions
    def _run_in_store(self, run_id: Any) -> str | None:
        if not run_id:
            return None
        from kiln._exceptions import RunNotFoundError

        try:
            return self.client.get_run(str(run_id)).id
        except RunNotFoundError:
            return None

    def create_model_version(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(_required(body, "name"))
        source = str(_required(body, "source"))
        tags = _tags(body)
        description = body.get("description") or None
        self.client.flush()
        try:
            if not source.startswith("runs:/"):
                raise RegistryError("not a run's model")
            version = self.registry.register(source, name, tags=tags)
            if description:
                version = self.registry.update_version(
                    name, version.version, description=description
                )
        except (RegistryError, NotFoundError):  # not a kiln-saved model: record it as is
            version = self.registry.record_version(
                name,
                source,
                run_id=self._run_in_store(body.get("run_id")),
                description=description,
                tags=tags,
            )
        return {"model_version": _version_json(version)}

    def _version(self, body: Mapping[str, Any]) -> tuple[str, int]:
        version = _required(body, "version")
        try:
            return _required(body, "name"), int(version)
        except (TypeError, ValueError):
            raise MlflowRequestError(f"A version must be a number; got {version!r}.") from None

    def get_model_version(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "model_version": _version_json(self.registry.get_model_version(*self._version(body)))
        }

    def search_model_versions(self, body: Mapping[str, Any]) -> dict[str, Any]:
        keep = _parse_filter(body.get("filter"), ("name", "run_id", "source_path", "source"))
        rows = [
            _version_json(v)
            for m in self.registry.list_models()
            for v in self.registry.list_versions(m.name)
            if keep({"name": v.name, "run_id": v.run_id or "", "source": v.source, "tags": v.tags})
        ]
        rows = _order(rows, body.get("order_by"), ["name ASC", "version DESC"])
        return _page(rows, body, "model_versions")

    def update_model_version(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name, number = self._version(body)
        version = self.registry.update_version(
            name, number, description=str(body.get("description") or "")
        )
        return {"model_version": _version_json(version)}

    def delete_model_version(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.registry.delete_version(*self._version(body))
        return {}

    def set_model_version_tag(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name, number = self._version(body)
        key = _required(body, "key")
        self.registry.update_version(name, number, set_tags={key: body.get("value") or ""})
        return {}

    def delete_model_version_tag(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name, number = self._version(body)
        self.registry.update_version(name, number, delete_tags=[_required(body, "key")])
        return {}

    def get_model_version_download_uri(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"artifact_uri": self.registry.get_model_version(*self._version(body)).source}

    def transition_model_version_stage(self, body: Mapping[str, Any]) -> dict[str, Any]:
        raise MlflowRequestError(_NO_STAGES)

    # ------------------------------------------------------------- dispatch
    def call(self, name: str, body: Mapping[str, Any], **_extra: Any) -> dict[str, Any]:
        """Run endpoint `name` on `body`, with kiln's registry errors as MLflow's."""
        with self.lock:
            try:
                result: dict[str, Any] = getattr(self, name)(body)
                return result
            except MlflowRequestError:
                raise
            except NotFoundError as exc:
                raise MlflowRequestError(str(exc), "RESOURCE_DOES_NOT_EXIST", 404) from exc
            except (RegistryError, KeyError, TypeError, ValueError) as exc:
                raise MlflowRequestError(str(exc)) from exc


#: (HTTP method, path under /api/2.0/mlflow/) -> RegistryApi method.
ENDPOINTS: dict[tuple[str, str], str] = {
    ("POST", "registered-models/create"): "create_registered_model",
    ("GET", "registered-models/get"): "get_registered_model",
    ("GET", "registered-models/search"): "search_registered_models",
    ("POST", "registered-models/rename"): "rename_registered_model",
    ("PATCH", "registered-models/update"): "update_registered_model",
    ("DELETE", "registered-models/delete"): "delete_registered_model",
    ("POST", "registered-models/set-tag"): "set_registered_model_tag",
    ("DELETE", "registered-models/delete-tag"): "delete_registered_model_tag",
    ("POST", "registered-models/alias"): "set_registered_model_alias",
    ("DELETE", "registered-models/alias"): "delete_registered_model_alias",
    ("GET", "registered-models/alias"): "get_model_version_by_alias",
    ("POST", "registered-models/get-latest-versions"): "get_latest_versions",
    ("GET", "registered-models/get-latest-versions"): "get_latest_versions",
    ("POST", "model-versions/create"): "create_model_version",
    ("GET", "model-versions/get"): "get_model_version",
    ("GET", "model-versions/search"): "search_model_versions",
    ("PATCH", "model-versions/update"): "update_model_version",
    ("DELETE", "model-versions/delete"): "delete_model_version",
    ("POST", "model-versions/set-tag"): "set_model_version_tag",
    ("DELETE", "model-versions/delete-tag"): "delete_model_version_tag",
    ("GET", "model-versions/get-download-uri"): "get_model_version_download_uri",
    ("POST", "model-versions/transition-stage"): "transition_model_version_stage",
}
