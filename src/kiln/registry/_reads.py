"""Reading the registry: models, versions, aliases, history, and not-found messages."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from kiln._exceptions import did_you_mean
from kiln.registry._errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryError,
)
from kiln.registry._names import (
    LATEST,
    MODELS_PREFIX,
    VersionRef,
    check_alias,
    check_model_name,
    parse_models_uri,
    parse_version_ref,
)
from kiln.registry._records import AliasChange, ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kiln.store import Store

__all__ = ["RegistryReads", "schema"]

_SHOWN = 10  # names listed in a not-found message


def schema() -> Any:
    """`kiln.store.schema`, imported when first needed (it loads SQLAlchemy)."""
    from kiln.store import schema as s

    return s


class RegistryReads:
    """Read methods of `RegistryClient`."""

    store: Store

    # ----------------------------------------------------------------- reads
    def get_model_version(self, name: str, version_or_alias: int | str) -> ModelVersion:
        """One version of a model, by number, by alias, or `"latest"` (the highest).

        Args:
            name: The registered model's name.
            version_or_alias: A version number (int or digits), an alias such as
                `"production"` (or `"@production"`), or `"latest"`.

        Raises:
            ModelNotFoundError: No model has that name (the message suggests close ones).
            ModelVersionNotFoundError: It has no such version; `AliasNotFoundError` when
                it has no such alias.
        """
        check_model_name(name)
        ref = parse_version_ref(version_or_alias)
        with self.store.read() as conn:
            self._require_model(conn, name)
            version = self._resolve(conn, name, ref)
            return self._load_versions(conn, name, [version])[0]

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model: its description, versions count, latest version and aliases.

        Raises:
            ModelNotFoundError: No model has that name.
        """
        check_model_name(name)
        with self.store.read() as conn:
            self._require_model(conn, name)
            return self._load_models(conn, name)[0]

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self.store.read() as conn:
            return self._load_models(conn, None)

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first, with its aliases.

        Raises:
            ModelNotFoundError: No model has that name.
        """
        check_model_name(name)
        with self.store.read() as conn:
            self._require_model(conn, name)
            return self._load_versions(conn, name, None)

    def resolve_uri(self, uri: str | os.PathLike[str]) -> str:
        """The source a `models:/` URI stands for; any other URI or path is returned as is.

        `models:/churn/3`, `models:/churn@production` and `models:/churn/latest` become
        the version's source, such as `runs:/<run id>/model`.

        Raises:
            RegistryError: A malformed `models:/` URI.
            ModelNotFoundError: No model has that name.
            ModelVersionNotFoundError: It has no such version or alias.
            RegistryError: The version was recorded through MLflow's API and is not a
                kiln-saved model (`ModelVersion.require_kiln_model`).
        """
        if isinstance(uri, os.PathLike):
            return os.fspath(uri)
        if not isinstance(uri, str):
            raise RegistryError(f"A model URI must be a string; got {type(uri).__name__}.")
        if not uri.startswith(MODELS_PREFIX):
            return uri
        version = self.get_model_version(*parse_models_uri(uri))
        version.require_kiln_model()
        return version.source

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every set, move and removal of the model's aliases (or of one), oldest first.

        Each change's `old_version` is the previous change's `new_version`, and the
        last change of an alias says where it points now.

        Raises:
            ModelNotFoundError: No model has that name.
            AliasNotFoundError: `alias` was never set on the model.
        """
        check_model_name(name)
        if alias is not None:
            check_alias(alias)
        h = schema().model_alias_history
        from sqlalchemy import select

        with self.store.read() as conn:
            self._require_model(conn, name)
            query = select(
                h.c.name,
                h.c.alias,
                h.c.action,
                h.c.old_version,
                h.c.new_version,
                h.c.user,
                h.c.host,
                h.c.at,
            ).where(h.c.name == name)
            if alias is not None:
                query = query.where(h.c.alias == alias)
            rows = conn.execute(query.order_by(h.c.id)).all()
            if alias is not None and not rows:
                raise self._alias_not_found(conn, name, alias, ever=True)
        return [AliasChange(*row) for row in rows]

    # --------------------------------------------------------------- helpers
    def _require_model(self, conn: Connection, name: str) -> None:
        from sqlalchemy import select

        m = schema().registered_models
        if conn.execute(select(m.c.name).where(m.c.name == name)).first() is None:
            raise self._model_not_found(conn, name)

    def _model_not_found(self, conn: Connection, name: str) -> ModelNotFoundError:
        from sqlalchemy import select

        m = schema().registered_models
        names = list(conn.execute(select(m.c.name).order_by(m.c.name)).scalars())
        if names:
            more = ", ..." if len(names) > _SHOWN else ""
            listing = f" Registered models: {', '.join(names[:_SHOWN])}{more}."
        else:
            listing = (
                " No model is registered yet: register one with "
                "kiln.registry.register(run, name) or kiln models register RUN_ID NAME."
            )
        return ModelNotFoundError(
            f"No registered model named {name!r} in the store at {self.store.display_url}."
            f"{did_you_mean(name, names)}{listing}"
        )

    def _aliases(self, conn: Connection, name: str) -> dict[str, int]:
        from sqlalchemy import select

        a = schema().model_aliases
        rows = conn.execute(
            select(a.c.alias, a.c.version).where(a.c.name == name).order_by(a.c.alias)
        ).all()
        return {alias: int(v) for alias, v in rows}

    def _alias_not_found(
        self, conn: Connection, name: str, alias: str, *, ever: bool = False
    ) -> AliasNotFoundError:
        from sqlalchemy import select

        aliases = self._aliases(conn, name)
        candidates = list(aliases)
        if ever:
            h = schema().model_alias_history
            candidates = sorted(
                set(conn.execute(select(h.c.alias).where(h.c.name == name).distinct()).scalars())
            )
        if aliases:
            shown = ", ".join(f"{k} -> {v}" for k, v in list(aliases.items())[:_SHOWN])
            listing = f" Its aliases: {shown}."
        else:
            listing = f" It has no aliases; set one with: kiln models alias {name} {alias} VERSION"
        never = " and never had one" if ever else ""
        return AliasNotFoundError(
            f"Model {name!r} has no alias {alias!r}{never}.{did_you_mean(alias, candidates)}"
            f"{listing}"
        )

    def _resolve(self, conn: Connection, name: str, ref: VersionRef) -> int:
        """The version number `ref` stands for (the model is known to exist)."""
        from sqlalchemy import func, select

        v, a = schema().model_versions, schema().model_aliases
        if ref == LATEST:
            found = conn.execute(select(func.max(v.c.version)).where(v.c.name == name)).scalar()
        elif isinstance(ref, int):
            found = conn.execute(
                select(v.c.version).where(v.c.name == name, v.c.version == ref)
            ).scalar()
        else:
            found = conn.execute(
                select(a.c.version).where(a.c.name == name, a.c.alias == ref)
            ).scalar()
            if found is None:
                raise self._alias_not_found(conn, name, ref)
        if found is not None:
            return int(found)
        versions = sorted(
            int(x) for x in conn.execute(select(v.c.version).where(v.c.name == name)).scalars()
        )
        if not versions:
            raise ModelVersionNotFoundError(f"Model {name!r} has no versions.")
        raise ModelVersionNotFoundError(
            f"Model {name!r} has no version {ref}. Its versions: {_ranges(versions)} "
            f"(latest: {versions[-1]})."
        )

    def _load_versions(
        self, conn: Connection, name: str, versions: list[int] | None
    ) -> list[ModelVersion]:
        from sqlalchemy import select

        v = schema().model_versions
        query = select(
            v.c.version,
            v.c.source,
            v.c.run_id,
            v.c.created_at,
            v.c.user,
            v.c.lineage,
            v.c.tags,
            v.c.status,
        ).where(v.c.name == name)
        if versions is not None:
            query = query.where(v.c.version.in_(versions))
        by_version: dict[int, list[str]] = {}
        for alias, number in self._aliases(conn, name).items():
            by_version.setdefault(number, []).append(alias)
        return [
            ModelVersion(
                name=name,
                version=int(number),
                source=source,
                run_id=run_id,
                created_at=int(created),
                user=user,
                lineage=json.loads(lineage),
                aliases=sorted(by_version.get(int(number), [])),
                tags=json.loads(tags),
                status=status,
            )
            for number, source, run_id, created, user, lineage, tags, status in conn.execute(
                query.order_by(v.c.version)
            ).all()
        ]

    def _load_models(self, conn: Connection, name: str | None) -> list[RegisteredModel]:
        from sqlalchemy import func, select

        s = schema()
        m, v, a = s.registered_models, s.model_versions, s.model_aliases
        query = (
            select(
                m.c.name,
                m.c.description,
                m.c.created_at,
                func.max(v.c.version),
                func.count(v.c.version),
            )
            .select_from(m.outerjoin(v, v.c.name == m.c.name))
            .group_by(m.c.name, m.c.description, m.c.created_at)
            .order_by(m.c.name)
        )
        aliases_query = select(a.c.name, a.c.alias, a.c.version).order_by(a.c.alias)
        if name is not None:
            query = query.where(m.c.name == name)
            aliases_query = aliases_query.where(a.c.name == name)
        aliases: dict[str, dict[str, int]] = {}
        for model, alias, number in conn.execute(aliases_query).all():
            aliases.setdefault(model, {})[alias] = int(number)
        return [
            RegisteredModel(
                name=n,
                description=desc,
                created_at=int(created),
                latest_version=None if latest is None else int(latest),
                n_versions=int(count),
                aliases=aliases.get(n, {}),
            )
            for n, desc, created, latest, count in conn.execute(query).all()
        ]


def _ranges(numbers: list[int]) -> str:
    """`[1, 2, 3, 5, 7, 8]` as `1-3, 5, 7-8` (sorted input)."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)
