"""What each team-server endpoint needs, and who has it.

Every endpoint name (the values of `kiln.server._mlflow.ENDPOINTS`, and of any other
module's endpoint map) is declared in `PERMISSIONS`; a name missing from it is refused
with 403 whoever asks, and a test fails. Declaring a new endpoint is one line:

```python
"get_registered_model": role("viewer"),
"log_artifact": experiment("EDIT", by_run_id),
```

Rules (a user's level on an experiment, weakest to strongest NONE < READ < EDIT < MANAGE):

- `admin`: MANAGE on every experiment, and every `role("admin")` endpoint.
- A grant (`kiln server permissions grant`) sets that user's level on that experiment,
  up or down (NONE hides it); an experiment's creator is granted MANAGE.
- Without a grant: `editor` has EDIT on the `Default` experiment (where MLflow's client
  logs when no experiment is set) and READ elsewhere; `viewer` has READ.
- Creating an experiment needs the `editor` role (or `admin`).
- Searches answer only what the user can READ, never 403.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kiln.server._filter import MlflowRequestError
from kiln.server._users import LEVELS, ROLES, Principal, Users

__all__ = [
    "PERMISSIONS",
    "ExperimentRef",
    "Need",
    "authorize",
    "by_experiment_id",
    "by_experiment_name",
    "by_run_id",
    "effective_level",
    "experiment",
    "filtered",
    "role",
]


@dataclass(frozen=True)
class ExperimentRef:
    """An experiment a request names: its id (None for a `Default` not made yet) and name."""

    id: int | None
    name: str


#: Finds the experiment a request is about from its fields (None: no such experiment,
#: which the endpoint itself answers as 404).
Locate = Callable[[Any, Mapping[str, Any]], ExperimentRef | None]


@dataclass(frozen=True)
class Need:
    """What an endpoint needs.

    Attributes:
        kind: `experiment` (a level on the experiment `locate` finds), `role` (at
            least that role) or `filtered` (any user; the results are filtered to what
            they can read).
        level: For `experiment`: READ, EDIT or MANAGE.
        role: For `role`: admin, editor or viewer.
        locate: For `experiment`: how to find it from the request.
    """

    kind: str
    level: str = "READ"
    role: str = "viewer"
    locate: Locate | None = None

    def describe(self) -> str:
        """What it needs, in words."""
        if self.kind == "experiment":
            return f"{self.level} on the experiment"
        if self.kind == "role":
            return f"the {self.role} role"
        return "a signed-in user"


def experiment(level: str, locate: Locate) -> Need:
    """Needs `level` on the experiment `locate` finds in the request."""
    assert level in LEVELS[1:], level
    return Need("experiment", level=level, locate=locate)


def role(name: str) -> Need:
    """Needs at least role `name` (admin > editor > viewer)."""
    assert name in ROLES, name
    return Need("role", role=name)


def filtered() -> Need:
    """Any signed-in user; the endpoint answers only what they can read."""
    return Need("filtered")


# ------------------------------------------------------------------- locators
def _default(conn: Any) -> ExperimentRef:
    from sqlalchemy import select

    from kiln.store.schema import experiments as e
    from kiln.tracking import DEFAULT_EXPERIMENT

    found = conn.execute(
        select(e.c.id).where(e.c.name == DEFAULT_EXPERIMENT, e.c.deleted_at.is_(None))
    ).scalar()
    return ExperimentRef(None if found is None else int(found), DEFAULT_EXPERIMENT)


def _by(api: Any, column: str, value: Any) -> ExperimentRef | None:
    from sqlalchemy import select

    from kiln.store.schema import experiments as e

    with api.client.store.read() as conn:
        row = conn.execute(
            select(e.c.id, e.c.name).where(e.c.deleted_at.is_(None), e.c[column] == value)
        ).first()
    return None if row is None else ExperimentRef(int(row.id), str(row.name))


def by_experiment_id(api: Any, body: Mapping[str, Any]) -> ExperimentRef | None:
    """`experiment_id` ("0", or none, is MLflow's default experiment: kiln's `Default`)."""
    text = str(body.get("experiment_id") or "0")
    if text == "0":
        with api.client.store.read() as conn:
            return _default(conn)
    return _by(api, "id", int(text)) if text.isdigit() else None


def by_experiment_name(api: Any, body: Mapping[str, Any]) -> ExperimentRef | None:
    """`experiment_name`."""
    name = body.get("experiment_name")
    return _by(api, "name", str(name)) if name else None


def by_run_id(api: Any, body: Mapping[str, Any]) -> ExperimentRef | None:
    """The experiment of the run `run_id` (or `run_uuid`)."""
    from sqlalchemy import select

    from kiln.store.schema import experiments as e
    from kiln.store.schema import runs as r

    run_id = body.get("run_id") or body.get("run_uuid")
    if not run_id:
        return None
    # No flush: every endpoint that writes a run commits before it answers.
    with api.client.store.read() as conn:
        row = conn.execute(
            select(e.c.id, e.c.name)
            .join(r, r.c.experiment_id == e.c.id)
            .where(r.c.id == str(run_id), r.c.deleted_at.is_(None))
        ).first()
    return None if row is None else ExperimentRef(int(row.id), str(row.name))


# ------------------------------------------------------------------ the table
#: Endpoint name -> what it needs. A name that is not here is refused.
PERMISSIONS: dict[str, Need] = {
    # experiments
    "create_experiment": role("editor"),  # and its creator is granted MANAGE
    "get_experiment": experiment("READ", by_experiment_id),
    "get_experiment_by_name": experiment("READ", by_experiment_name),
    "search_experiments": filtered(),
    # runs
    "create_run": experiment("EDIT", by_experiment_id),
    "get_run": experiment("READ", by_run_id),
    "update_run": experiment("EDIT", by_run_id),
    "delete_run": experiment("MANAGE", by_run_id),  # as MLflow: deleting needs MANAGE
    "search_runs": filtered(),
    "log_metric": experiment("EDIT", by_run_id),
    "log_param": experiment("EDIT", by_run_id),
    "set_tag": experiment("EDIT", by_run_id),
    "log_batch": experiment("EDIT", by_run_id),
    "get_metric_history": experiment("READ", by_run_id),
    # artifacts (kiln.server._artifacts; streamed routes call authorize themselves)
    "upload_artifact": experiment("EDIT", by_run_id),
    "download_artifact": experiment("READ", by_run_id),
    "list_artifacts": experiment("READ", by_run_id),
    "search_logged_models": filtered(),  # always empty: kiln keeps no logged models
    # the model registry (no per-model permissions: viewers read, editors write)
    "get_registered_model": role("viewer"),
    "search_registered_models": role("viewer"),
    "get_model_version_by_alias": role("viewer"),
    "get_latest_versions": role("viewer"),
    "get_model_version": role("viewer"),
    "search_model_versions": role("viewer"),
    "get_model_version_download_uri": role("viewer"),
    "create_registered_model": role("editor"),
    "rename_registered_model": role("editor"),
    "update_registered_model": role("editor"),
    "delete_registered_model": role("editor"),
    "set_registered_model_tag": role("editor"),
    "delete_registered_model_tag": role("editor"),
    "set_registered_model_alias": role("editor"),
    "delete_registered_model_alias": role("editor"),
    "create_model_version": role("editor"),
    "update_model_version": role("editor"),
    "delete_model_version": role("editor"),
    "set_model_version_tag": role("editor"),
    "delete_model_version_tag": role("editor"),
    "transition_model_version_stage": role("editor"),
}


def effective_level(role_name: str, granted: str | None, *, is_default: bool) -> str:
    """A user's level on one experiment from their role and their grant on it, if any."""
    if role_name == "admin":
        return "MANAGE"
    if granted is not None:
        return granted
    if role_name == "editor" and is_default:
        return "EDIT"
    return "READ"


def _at_least(have: str, need: str) -> bool:
    return LEVELS.index(have) >= LEVELS.index(need)


def _denied(message: str) -> MlflowRequestError:
    return MlflowRequestError(message, "PERMISSION_DENIED", 403)


def authorize(
    who: Principal | None, name: str, body: Mapping[str, Any], api: Any, users: Users | None
) -> Callable[[int], bool] | None:
    """Check that `who` may call endpoint `name` with `body`.

    Args:
        who: The signed-in user, or None on a server without users or token (open).
        name: The endpoint's name.
        body: The request's fields.
        api: The endpoint's API object (its `client` reads the store).
        users: The store's users.

    Returns:
        For a `filtered` endpoint, which experiment ids the user can read (None: all).

    Raises:
        MlflowRequestError: 403 PERMISSION_DENIED, saying what was needed on what.
    """
    need = PERMISSIONS.get(name)
    if need is None:
        raise _denied(
            f"The endpoint {name!r} declares no permission, so this server refuses it "
            "(every endpoint must be declared in kiln.server._perms.PERMISSIONS)."
        )
    if who is None or who.role == "admin":
        return None
    if need.kind == "role":
        if ROLES.index(who.role) > ROLES.index(need.role):
            raise _denied(
                f"{name} needs the {need.role} role; user {who.name!r} is a {who.role}. An "
                f"admin can change it: kiln server users set-role {who.name} {need.role}"
            )
        return None
    grants = users.levels_of(who.user_id) if users is not None and who.user_id else {}
    if need.kind == "filtered":
        with api.client.store.read() as conn:
            default_id = _default(conn).id

        def readable(experiment_id: int) -> bool:
            level = effective_level(
                who.role, grants.get(experiment_id), is_default=experiment_id == default_id
            )
            return _at_least(level, "READ")

        return readable
    assert need.locate is not None
    ref = need.locate(api, body)
    if ref is None:
        return None  # no such experiment or run: the endpoint answers 404
    from kiln.tracking import DEFAULT_EXPERIMENT

    granted = grants.get(ref.id) if ref.id is not None else None
    level = effective_level(who.role, granted, is_default=ref.name == DEFAULT_EXPERIMENT)
    if not _at_least(level, need.level):
        where = f"experiment {ref.name!r} " + (
            f"(id {ref.id})" if ref.id is not None else "(not created yet)"
        )
        raise _denied(
            f"{name} needs {need.level} permission on {where}; user {who.name!r} ({who.role}) "
            f"has {level}. An admin can grant it: kiln server permissions grant {who.name} "
            f"{ref.name} {need.level}"
        )
    return None
