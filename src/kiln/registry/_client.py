"""The registry client: versions, aliases and their history in one store.

Every write takes the registered model's row lock first (`SELECT ... FOR UPDATE` on
PostgreSQL; on SQLite `Store.write` begins with `BEGIN IMMEDIATE`, which already
serializes writers), so versions of one model are numbered without gaps or duplicates
and alias changes are applied and recorded one at a time, in the order of their history.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.registry._errors import RegistryError
from kiln.registry._lineage import find_origin
from kiln.registry._names import (
    MODELS_PREFIX,
    check_alias,
    check_model_name,
    parse_models_uri,
    parse_version_ref,
)
from kiln.registry._reads import RegistryReads, schema
from kiln.registry._records import EXTERNAL_FLAVOR, AliasChange, ModelVersion
from kiln.store import Store

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kiln.tracking import TrackingClient

__all__ = ["RegistryClient"]

_MAX_TAG_KEY = 250


def _now_ms() -> int:
    return int(time.time() * 1000)


@functools.cache
def _who() -> tuple[str | None, str]:
    """The user and host recorded with registrations and alias changes."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return user, socket.gethostname()


class RegistryClient(RegistryReads):
    """Registers model versions and moves their aliases, in one store.

    The module-level functions (`kiln.registry.register`, ...) use one of these on the
    store chosen by `kiln.configure`, `KILN_STORE` or the embedded default.

    Args:
        store: A store URL or path, an open `Store`, or a `TrackingClient` to share
            (its store is used, and runs are read through it). None means
            `KILN_STORE`, then the embedded default.

    Attributes:
        tracking: The `TrackingClient` runs are read through.
        store: The open `Store`.
    """

    def __init__(self, store: str | os.PathLike[str] | Store | TrackingClient | None = None):
        from kiln.tracking import TrackingClient

        self.tracking = store if isinstance(store, TrackingClient) else TrackingClient(store)
        self.store = self.tracking.store

    def __repr__(self) -> str:
        return f"<RegistryClient {self.store.display_url}>"

    # -------------------------------------------------------------- register
    def register(
        self,
        model: Any,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        if_changed: bool = False,
    ) -> ModelVersion:
        """Register a saved model as the next version of `name` (1 for a new name).

        Args:
            model: What to register: a model URI `runs:/<run id>/<path>`; a run id (or
                unique prefix), or a run object with an `id` (such as the `ActiveRun`
                from `kiln.start_run`), meaning the run's artifact folder `model/`; a
                local folder holding `kiln-model.json`; or a `models:/` URI, to register
                an existing version again (under another name, say).
            name: The registered model's name; created on first registration.
            description: The model's description (replaces the old one when given).
            tags: Tags for this version.
            if_changed: Register only when the model differs from `name`'s latest
                version (another source or other files, or other tags); when it is the
                same, return that latest version (registered before this call, as its
                `created_at` shows) and add none. Registering on every deploy then adds
                a version only for a new model.

        Returns:
            The new version, with a lineage snapshot of its run (with `if_changed`, the
            latest version when it already is this model).

        Raises:
            RegistryError: `name` is not a valid model name, or `model` holds no saved
                model (the message lists what it does hold).
            RunNotFoundError: The run does not exist.
        """
        from sqlalchemy import select

        check_model_name(name)
        if description is not None and not isinstance(description, str):
            raise RegistryError(f"A description must be a string; got {description!r}.")
        tag_values = _check_tags(tags)
        if isinstance(model, str) and model.startswith(MODELS_PREFIX):
            base = self.get_model_version(*parse_models_uri(model))
            source, run_id = base.source, base.run_id
            lineage = {**base.lineage, "registered_from": base.uri}
        else:
            source, run_id, lineage = find_origin(self.tracking, model)
        s = schema()
        v = s.model_versions
        user, _ = _who()
        with self.store.write() as conn:
            stamp = _now_ms()
            self._lock_model(conn, name, create_at=stamp)
            if description is not None:
                conn.execute(
                    s.registered_models.update()
                    .where(s.registered_models.c.name == name)
                    .values(description=description)
                )
            if if_changed:
                latest = conn.execute(
                    select(v.c.version, v.c.source, v.c.lineage, v.c.tags)
                    .where(v.c.name == name)
                    .order_by(v.c.version.desc())
                    .limit(1)
                ).first()
                if (
                    latest is not None
                    and latest.source == source
                    and json.loads(latest.lineage or "{}").get("model_files")
                    == lineage.get("model_files")
                    and json.loads(latest.tags or "{}") == tag_values
                ):
                    return self._load_versions(conn, name, [latest.version])[0]
            version = _insert_version(conn, name, source, run_id, stamp, user, lineage, tag_values)
        return ModelVersion(name, version, source, run_id, stamp, user, lineage, [], tag_values)

    def record_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Record a version that is not a kiln-saved model: one registered through
        MLflow's API (`kiln server`) whose source kiln cannot read as `kiln-model.json`.

        The version is listed, aliased and tagged like any other, but kiln's loaders
        refuse it (`ModelVersion.require_kiln_model` says why). Its lineage marks it
        `{"flavor": "external", "format": "mlflow"}`.

        Args:
            name: The registered model's name; created when new.
            source: Where MLflow says the model is (`runs:/...`, `models:/m-...`, ...).
            run_id: The run it came from (a run of this store, or None).
            description: The version's description.
            tags: Tags for this version.

        Returns:
            The new version.

        Raises:
            RegistryError: A bad name, source or tags.
            RunNotFoundError: `run_id` is not a run of this store.
        """
        check_model_name(name)
        if not isinstance(source, str) or not source:
            raise RegistryError(f"A version's source must be a non-empty string; got {source!r}.")
        tag_values = _check_tags(tags)
        if run_id is not None:
            run_id = self.tracking.get_run(run_id).id  # its queued writes committed first
        lineage: dict[str, Any] = {"flavor": EXTERNAL_FLAVOR, "format": "mlflow"}
        if description:
            lineage["description"] = str(description)
        user, _ = _who()
        with self.store.write() as conn:
            stamp = _now_ms()
            self._lock_model(conn, name, create_at=stamp)
            version = _insert_version(conn, name, source, run_id, stamp, user, lineage, tag_values)
        return ModelVersion(name, version, source, run_id, stamp, user, lineage, [], tag_values)

    # ------------------------------------------------------------------ edits
    def create_model(self, name: str, description: str | None = None) -> None:
        """Create a registered model with no versions yet.

        Raises:
            RegistryError: A bad name, or a model of that name already exists.
        """
        check_model_name(name)
        m = schema().registered_models
        from sqlalchemy import select

        with self.store.write() as conn:
            if conn.execute(select(m.c.name).where(m.c.name == name)).first() is not None:
                raise RegistryError(f"A registered model named {name!r} already exists.")
            conn.execute(
                m.insert().values(name=name, description=description, created_at=_now_ms())
            )

    def update_model(self, name: str, description: str | None) -> None:
        """Set a registered model's description.

        Raises:
            ModelNotFoundError: No model has that name.
        """
        check_model_name(name)
        m = schema().registered_models
        with self.store.write() as conn:
            self._lock_model(conn, name)
            conn.execute(m.update().where(m.c.name == name).values(description=description))

    def rename_model(self, name: str, new_name: str) -> None:
        """Rename a registered model, with its versions, aliases and alias history.

        Raises:
            ModelNotFoundError: No model has that name.
            RegistryError: `new_name` is not valid or is taken.
        """
        from sqlalchemy import select

        check_model_name(name)
        check_model_name(new_name)
        s = schema()
        m, v, a, h = s.registered_models, s.model_versions, s.model_aliases, s.model_alias_history
        with self.store.write() as conn:
            self._lock_model(conn, name)
            if conn.execute(select(m.c.name).where(m.c.name == new_name)).first() is not None:
                raise RegistryError(
                    f"Cannot rename {name!r} to {new_name!r}: a model of that name exists."
                )
            row = conn.execute(select(m).where(m.c.name == name)).one()
            aliases = conn.execute(select(a.c.alias, a.c.version).where(a.c.name == name)).all()
            # Children first, then parents, so no foreign key is ever left dangling.
            conn.execute(m.insert().values(**{**row._asdict(), "name": new_name}))
            conn.execute(a.delete().where(a.c.name == name))
            conn.execute(v.update().where(v.c.name == name).values(name=new_name))
            conn.execute(h.update().where(h.c.name == name).values(name=new_name))
            for alias, number in aliases:
                conn.execute(a.insert().values(name=new_name, alias=alias, version=number))
            conn.execute(m.delete().where(m.c.name == name))

    def delete_model(self, name: str) -> None:
        """Delete a registered model with all its versions, aliases and alias history.

        Raises:
            ModelNotFoundError: No model has that name.
        """
        check_model_name(name)
        s = schema()
        with self.store.write() as conn:
            self._lock_model(conn, name)
            for table in (s.model_aliases, s.model_alias_history, s.model_versions):
                conn.execute(table.delete().where(table.c.name == name))
            conn.execute(s.registered_models.delete().where(s.registered_models.c.name == name))

    def delete_version(self, name: str, version: int | str) -> None:
        """Delete one version; the aliases that pointed at it are removed (and recorded).

        Raises:
            ModelNotFoundError: No model has that name.
            ModelVersionNotFoundError: It has no such version.
        """
        from sqlalchemy import select

        check_model_name(name)
        ref = parse_version_ref(version)
        s = schema()
        v, a = s.model_versions, s.model_aliases
        user, host = _who()
        with self.store.write() as conn:
            self._lock_model(conn, name)
            number = self._resolve(conn, name, ref)
            for alias in conn.execute(
                select(a.c.alias).where(a.c.name == name, a.c.version == number)
            ).scalars():
                conn.execute(a.delete().where(a.c.name == name, a.c.alias == alias))
                change = AliasChange(name, alias, "remove", number, None, user, host, _now_ms())
                self._record(conn, change)
            conn.execute(v.delete().where(v.c.name == name, v.c.version == number))

    def update_version(
        self,
        name: str,
        version: int | str,
        *,
        description: str | None = None,
        set_tags: Mapping[str, Any] | None = None,
        delete_tags: list[str] | None = None,
    ) -> ModelVersion:
        """Change a version's description (kept in its lineage as `description`) or tags.

        Raises:
            ModelNotFoundError: No model has that name.
            ModelVersionNotFoundError: It has no such version.
        """
        from sqlalchemy import select

        check_model_name(name)
        ref = parse_version_ref(version)
        added = _check_tags(set_tags)
        v = schema().model_versions
        with self.store.write() as conn:
            self._lock_model(conn, name)
            number = self._resolve(conn, name, ref)
            row = conn.execute(
                select(v.c.lineage, v.c.tags).where(v.c.name == name, v.c.version == number)
            ).one()
            lineage, tags = json.loads(row.lineage or "{}"), json.loads(row.tags or "{}")
            if description is not None:
                lineage["description"] = description
            tags.update(added)
            for key in delete_tags or []:
                tags.pop(key, None)
            conn.execute(
                v.update()
                .where(v.c.name == name, v.c.version == number)
                .values(
                    lineage=json.dumps(lineage, sort_keys=True, default=str),
                    tags=json.dumps(dict(sorted(tags.items())), sort_keys=True),
                )
            )
            return self._load_versions(conn, name, [number])[0]

    def _lock_model(self, conn: Connection, name: str, *, create_at: int | None = None) -> None:
        """Lock the model's row for this transaction, creating it when `create_at` is given.

        Raises:
            ModelNotFoundError: There is no such model (and `create_at` is None).
        """
        from sqlalchemy import select

        m = schema().registered_models
        if create_at is not None:
            if self.store.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
            # Waits for a concurrent transaction inserting the same name, then does nothing.
            conn.execute(
                insert(m)
                .values(name=name, created_at=create_at)
                .on_conflict_do_nothing(index_elements=["name"])
            )
        # FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock.
        found = conn.execute(select(m.c.name).where(m.c.name == name).with_for_update()).first()
        if found is None:
            raise self._model_not_found(conn, name)

    # --------------------------------------------------------------- aliases
    def set_alias(self, name: str, alias: str, version: int | str) -> AliasChange:
        """Point `alias` at a version of `name`, creating the alias or moving it, atomically.

        Args:
            name: The registered model's name.
            alias: Letters, digits, `-` and `_`; not all digits; not `latest`.
            version: A version number, `"latest"`, or another alias (whose version it
                takes, as read in the same transaction).

        Returns:
            The change: `set`, `move`, or `unchanged` when the alias already pointed
            there (which is not recorded in the history).

        Raises:
            RegistryError: The alias name is not valid.
            ModelNotFoundError: No model has that name.
            ModelVersionNotFoundError: It has no such version.
        """
        check_model_name(name)
        check_alias(alias)
        ref = parse_version_ref(version)
        a = schema().model_aliases
        user, host = _who()
        from sqlalchemy import select

        with self.store.write() as conn:
            self._lock_model(conn, name)
            target = self._resolve(conn, name, ref)
            current = conn.execute(
                select(a.c.version).where(a.c.name == name, a.c.alias == alias)
            ).scalar()
            stamp = _now_ms()
            if current == target:
                return AliasChange(name, alias, "unchanged", target, target, user, host, stamp)
            if current is None:
                conn.execute(a.insert().values(name=name, alias=alias, version=target))
                action = "set"
            else:
                conn.execute(
                    a.update().where(a.c.name == name, a.c.alias == alias).values(version=target)
                )
                action = "move"
            change = AliasChange(name, alias, action, current, target, user, host, stamp)
            self._record(conn, change)
        return change

    def delete_alias(self, name: str, alias: str) -> AliasChange:
        """Remove an alias; the version it pointed at stays.

        Returns:
            The change, recorded in the history as `remove`.

        Raises:
            ModelNotFoundError: No model has that name.
            AliasNotFoundError: The model has no such alias.
        """
        check_model_name(name)
        check_alias(alias)
        a = schema().model_aliases
        user, host = _who()
        from sqlalchemy import select

        with self.store.write() as conn:
            self._lock_model(conn, name)
            current = conn.execute(
                select(a.c.version).where(a.c.name == name, a.c.alias == alias)
            ).scalar()
            if current is None:
                raise self._alias_not_found(conn, name, alias)
            conn.execute(a.delete().where(a.c.name == name, a.c.alias == alias))
            change = AliasChange(name, alias, "remove", current, None, user, host, _now_ms())
            self._record(conn, change)
        return change

    def _record(self, conn: Connection, change: AliasChange) -> None:
        conn.execute(
            schema()
            .model_alias_history.insert()
            .values(
                name=change.name,
                alias=change.alias,
                old_version=change.old_version,
                new_version=change.new_version,
                user=change.user,
                host=change.host,
                at=change.at,
                action=change.action,
            )
        )


def _check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise RegistryError(f"tags must be a dict of name -> value; got {type(tags).__name__}.")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip() or len(key) > _MAX_TAG_KEY:
            raise RegistryError(
                f"A tag key must be a non-empty string of at most {_MAX_TAG_KEY} characters; "
                f"got {key!r}."
            )
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (list, tuple, dict)):
            out[key] = json.dumps(value, default=str, sort_keys=isinstance(value, dict))
        else:
            out[key] = str(value)
    return dict(sorted(out.items()))


def _insert_version(
    conn: Connection,
    name: str,
    source: str,
    run_id: str | None,
    stamp: int,
    user: str | None,
    lineage: Mapping[str, Any],
    tag_values: Mapping[str, str],
) -> int:
    """Write the next version of `name` (its model row locked by the caller); its number."""
    from sqlalchemy import func, select

    v = schema().model_versions
    version = int(
        conn.execute(
            select(func.coalesce(func.max(v.c.version), 0) + 1).where(v.c.name == name)
        ).scalar_one()
    )
    conn.execute(
        v.insert().values(
            name=name,
            version=version,
            source=source,
            run_id=run_id,
            created_at=stamp,
            user=user,
            lineage=json.dumps(lineage, sort_keys=True, default=str),
            tags=json.dumps(dict(tag_values), sort_keys=True),
            status="ready",
        )
    )
    return version
