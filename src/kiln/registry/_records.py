"""Plain records returned by the registry (no database objects leak out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["EXTERNAL_FLAVOR", "AliasChange", "ModelVersion", "RegisteredModel"]

#: The flavor in the lineage of a version registered through MLflow's API from a
#: source that is not a kiln-saved model (`RegistryClient.record_version`).
EXTERNAL_FLAVOR = "external"


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model.

    Attributes:
        name: The registered model's name.
        version: 1, 2, 3... in the order versions were registered under `name`.
        source: Where the model's files are: `runs:/<run_id>/<path>` for a model saved
            in a run, or the absolute path of a local folder.
        run_id: The run the model came from (None for a local folder).
        created_at: When the version was registered (ms since the Unix epoch).
        user: Who registered it.
        lineage: A snapshot taken at registration: the run's id, name, experiment,
            params, metrics, datasets (fingerprint, role, shape) and git state, the
            model's flavor when `kiln-model.json` names one, and the sha256 of each of
            the model's files.
        aliases: The aliases that point at this version, sorted.
        tags: Tags given at registration.
        status: `ready`.
    """

    name: str
    version: int
    source: str
    run_id: str | None
    created_at: int
    user: str | None
    lineage: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "ready"

    @property
    def uri(self) -> str:
        """This version's registry URI, `models:/<name>/<version>`."""
        return f"models:/{self.name}/{self.version}"

    @property
    def flavor(self) -> str | None:
        """The model's flavor as recorded in its `kiln-model.json`, when known."""
        flavor = self.lineage.get("flavor")
        return flavor if isinstance(flavor, str) else None

    @property
    def external(self) -> bool:
        """Whether this version was recorded from MLflow's API without a kiln-saved model
        (kiln lists it but cannot load or serve it)."""
        return self.lineage.get("flavor") == EXTERNAL_FLAVOR

    @property
    def description(self) -> str | None:
        """The version's description, when one was given (through MLflow's API)."""
        text = self.lineage.get("description")
        return text if isinstance(text, str) else None

    def require_kiln_model(self) -> None:
        """Raise `RegistryError` when kiln cannot load this version (see `external`)."""
        if self.external:
            from kiln._exceptions import RegistryError

            raise RegistryError(
                f"Version {self.version} of {self.name} was registered through MLflow's API "
                f"from {self.source}; it is not a kiln-saved model, so kiln cannot load or "
                "serve it: save it with kiln (kiln.models.save / the flavor's log) and "
                "register that."
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 strings in UTC)."""
        out = asdict(self)
        out["created_at"] = _iso(self.created_at)
        out["uri"] = self.uri
        return out


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model: a name with numbered versions and aliases.

    Attributes:
        name: The model's name.
        description: Free text, set by `register(..., description=...)`.
        created_at: When its first version was registered (ms since the Unix epoch).
        latest_version: The highest version number (None if it has no versions).
        n_versions: How many versions it has.
        aliases: Alias name -> version number.
    """

    name: str
    description: str | None
    created_at: int
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 strings in UTC)."""
        out = asdict(self)
        out["created_at"] = _iso(self.created_at)
        return out


@dataclass(frozen=True)
class AliasChange:
    """One change of an alias, as recorded in its history.

    Attributes:
        name: The registered model's name.
        alias: The alias.
        action: `set` (created), `move` (pointed at another version) or `remove`;
            `set_alias` also returns `unchanged` when the alias already pointed at the
            version, which is not recorded.
        old_version: The version it pointed at before (None for `set`).
        new_version: The version it points at after (None for `remove`).
        user: Who made the change.
        host: The machine it was made from.
        at: When (ms since the Unix epoch).
    """

    name: str
    alias: str
    action: str
    old_version: int | None
    new_version: int | None
    user: str | None
    host: str | None
    at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 strings in UTC)."""
        out = asdict(self)
        out["at"] = _iso(self.at)
        return out
