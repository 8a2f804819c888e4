"""The team server's users, API tokens and per-experiment permissions, kept in the store.

A token is shown once, when it is made, and stored only as its sha256: the store never
holds a token's text. Roles and levels (what each allows is `kiln.server._perms`):

- roles: `admin` (everything, and managing users), `editor` (creates experiments and
  writes to the ones it created or was granted; reads the rest), `viewer` (reads).
- levels of a grant on one experiment, as MLflow's: `READ`, `EDIT` (also write runs),
  `MANAGE` (also delete runs), and `NONE` (hide it from that user).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln._exceptions import AccessError, ExperimentNotFoundError

if TYPE_CHECKING:
    from kiln.store import Store

__all__ = ["LEVELS", "ROLES", "Grant", "Principal", "Token", "User", "Users", "token_hash"]

#: The roles a user can have, most powerful first.
ROLES = ("admin", "editor", "viewer")
#: Permission levels on an experiment, weakest first (MLflow's, with NONE to hide one).
LEVELS = ("NONE", "READ", "EDIT", "MANAGE")
#: How often a token's `last_used_at` is written, at most (milliseconds).
LAST_USED_EVERY_MS = 60_000
_PREFIX = "kiln_"


def _now_ms() -> int:
    return int(time.time() * 1000)


def token_hash(token: str) -> str:
    """The sha256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    """A user of the team server.

    Attributes:
        id: The user's id in the store.
        name: The unique name (MLflow's client sends it as MLFLOW_TRACKING_USERNAME).
        role: `admin`, `editor` or `viewer`.
        created_at: Milliseconds since the epoch.
        disabled: A disabled user's tokens are refused.
    """

    id: int
    name: str
    role: str
    created_at: int
    disabled: bool


@dataclass(frozen=True)
class Token:
    """An API token's record (never its text).

    Attributes:
        id: The token's id in the store.
        user: The name of the user it belongs to.
        name: Its label, unique per user.
        created_at: Milliseconds since the epoch.
        expires_at: When it stops working, or None for never.
        last_used_at: When it was last used (to the minute), or None.
        revoked_at: When it was revoked, or None.
    """

    id: int
    user: str
    name: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None

    @property
    def state(self) -> str:
        """`active`, `revoked` or `expired`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= _now_ms():
            return "expired"
        return "active"


@dataclass(frozen=True)
class Grant:
    """A user's permission level on one experiment.

    Attributes:
        user: The user's name.
        experiment: The experiment's name.
        experiment_id: The experiment's id.
        level: `NONE`, `READ`, `EDIT` or `MANAGE`.
    """

    user: str
    experiment: str
    experiment_id: int
    level: str


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a user, or the server's own `--token` (an admin).

    Attributes:
        name: The user's name (`token` for the server's `--token`).
        role: `admin`, `editor` or `viewer`.
        user_id: The user's id, or None for the server's `--token`.
    """

    name: str
    role: str
    user_id: int | None


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccessError(f"Unknown role {role!r}: a role is one of {', '.join(ROLES)}.")
    return role


def check_level(level: str) -> str:
    """`level` upper-cased, checked to be one of `LEVELS`."""
    upper = str(level).upper()
    if upper not in LEVELS:
        raise AccessError(
            f"Unknown permission level {level!r}: a level is one of {', '.join(LEVELS)}."
        )
    return upper


class Users:
    """The users, tokens and grants of one store.

    ```python
    from kiln.server import Users
    users = Users("postgresql+psycopg://kiln@db/kiln")
    users.add("ana", role="editor")
    token = users.create_token("ana", name="laptop")   # shown once; stored as sha256
    users.grant("ana", "churn", "EDIT")
    ```

    Args:
        store: A store URL or path (default: the configured store), or an open `Store`.
    """

    def __init__(self, store: str | os.PathLike[str] | Store | None = None) -> None:
        from kiln.store import Store

        self.store = store if isinstance(store, Store) else Store.open(store)

    # ------------------------------------------------------------------ users
    def add(self, name: str, *, role: str = "editor") -> User:
        """Add a user.

        Raises:
            AccessError: The name is empty or taken, or the role is unknown.
        """
        from sqlalchemy import insert

        from kiln.store.schema import users

        _check_role(role)
        name = name.strip()
        if not name or ":" in name:
            raise AccessError(
                f"A user name must be non-empty and without ':' (HTTP Basic splits on it); "
                f"got {name!r}."
            )
        with self.store.write() as conn:
            if self._user_row(conn, name) is not None:
                raise AccessError(
                    f"A user named {name!r} already exists; choose another name, or see "
                    "kiln server users list."
                )
            conn.execute(
                insert(users).values(name=name, role=role, created_at=_now_ms(), disabled=False)
            )
            row = self._user_row(conn, name)
        assert row is not None
        return _user(row)

    def get(self, name: str) -> User:
        """The user called `name`.

        Raises:
            AccessError: No such user (the message lists who there is).
        """
        with self.store.read() as conn:
            return _user(self._need_user(conn, name))

    def list(self) -> builtins.list[User]:
        """Every user, by name."""
        from sqlalchemy import select

        from kiln.store.schema import users

        with self.store.read() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [_user(r) for r in rows]

    def any(self) -> bool:
        """Whether the store has any user (then the server needs every request signed in)."""
        from sqlalchemy import select

        from kiln.store.schema import users

        with self.store.read() as conn:
            return conn.execute(select(users.c.id).limit(1)).first() is not None

    def set_disabled(self, name: str, disabled: bool = True) -> User:
        """Disable (or enable again) a user: a disabled user's tokens are refused."""
        from sqlalchemy import update

        from kiln.store.schema import users

        with self.store.write() as conn:
            row = self._need_user(conn, name)
            conn.execute(update(users).where(users.c.id == row.id).values(disabled=disabled))
            return _user(self._need_user(conn, name))

    def set_role(self, name: str, role: str) -> User:
        """Change a user's role."""
        from sqlalchemy import update

        from kiln.store.schema import users

        _check_role(role)
        with self.store.write() as conn:
            row = self._need_user(conn, name)
            conn.execute(update(users).where(users.c.id == row.id).values(role=role))
            return _user(self._need_user(conn, name))

    # ----------------------------------------------------------------- tokens
    def create_token(
        self, user: str, *, name: str | None = None, expires_in_days: float | None = None
    ) -> str:
        """Make a token for `user` and return its text: the only time it is seen.

        Args:
            user: The user's name.
            name: A label, unique per user (default: `token-N`).
            expires_in_days: Days until it stops working (default: never).

        Raises:
            AccessError: Unknown user, a label the user already has, or a non-positive
                expiry.
        """
        from sqlalchemy import func, insert, select

        from kiln.store.schema import tokens

        if expires_in_days is not None and expires_in_days <= 0:
            raise AccessError(f"expires_in_days must be positive; got {expires_in_days}.")
        text = _PREFIX + secrets.token_urlsafe(32)
        now = _now_ms()
        with self.store.write() as conn:
            row = self._need_user(conn, user)
            if name is None:
                count = conn.execute(
                    select(func.count()).select_from(tokens).where(tokens.c.user_id == row.id)
                ).scalar_one()
                name = f"token-{count + 1}"
            taken = conn.execute(
                select(tokens.c.id).where(tokens.c.user_id == row.id, tokens.c.name == name)
            ).first()
            if taken is not None:
                raise AccessError(
                    f"User {row.name!r} already has a token named {name!r}; choose another "
                    "--name (kiln server tokens list shows them)."
                )
            conn.execute(
                insert(tokens).values(
                    user_id=row.id,
                    name=name,
                    sha256=token_hash(text),
                    created_at=now,
                    expires_at=None
                    if expires_in_days is None
                    else now + int(expires_in_days * 86_400_000),
                    last_used_at=None,
                    revoked_at=None,
                )
            )
        return text

    def tokens(self, user: str | None = None) -> builtins.list[Token]:
        """The tokens of `user` (default: everyone's), oldest first; never their text."""
        from sqlalchemy import select

        from kiln.store.schema import tokens, users

        query = (
            select(tokens, users.c.name.label("user_name"))
            .join(users, users.c.id == tokens.c.user_id)
            .order_by(tokens.c.id)
        )
        with self.store.read() as conn:
            if user is not None:
                query = query.where(tokens.c.user_id == self._need_user(conn, user).id)
            rows = conn.execute(query).all()
        return [_token(r) for r in rows]

    def revoke_token(self, user: str, name: str) -> Token:
        """Revoke `user`'s token labelled `name`: it is refused from then on.

        Raises:
            AccessError: Unknown user, or no token of theirs has that label.
        """
        from sqlalchemy import select, update

        from kiln.store.schema import tokens, users

        with self.store.write() as conn:
            row = self._need_user(conn, user)
            found = conn.execute(
                select(tokens.c.id, tokens.c.revoked_at).where(
                    tokens.c.user_id == row.id, tokens.c.name == name
                )
            ).first()
            if found is None:
                have = conn.execute(
                    select(tokens.c.name).where(tokens.c.user_id == row.id)
                ).scalars()
                raise AccessError(
                    f"User {row.name!r} has no token named {name!r}; theirs: "
                    f"{', '.join(have) or '(none)'}."
                )
            if found.revoked_at is None:
                conn.execute(
                    update(tokens).where(tokens.c.id == found.id).values(revoked_at=_now_ms())
                )
            got = conn.execute(
                select(tokens, users.c.name.label("user_name"))
                .join(users, users.c.id == tokens.c.user_id)
                .where(tokens.c.id == found.id)
            ).one()
        return _token(got)

    def authenticate(self, token: str, *, user: str | None = None) -> Principal | str:
        """Who `token` belongs to, or why it is refused (a sentence).

        Found by its sha256, compared in constant time; `last_used_at` is written at
        most once a minute per token.

        Args:
            token: The token's text.
            user: The name the request gave with it (HTTP Basic), which must be its owner's.
        """
        from sqlalchemy import select, update

        from kiln.store.schema import tokens, users

        digest = token_hash(token)
        with self.store.read() as conn:
            row = conn.execute(
                select(
                    tokens.c.id,
                    tokens.c.sha256,
                    tokens.c.expires_at,
                    tokens.c.last_used_at,
                    tokens.c.revoked_at,
                    users.c.id.label("user_id"),
                    users.c.name,
                    users.c.role,
                    users.c.disabled,
                )
                .join(users, users.c.id == tokens.c.user_id)
                .where(tokens.c.sha256 == digest)
            ).first()
        if row is None or not hmac.compare_digest(row.sha256, digest):
            return "The token is not one this server knows (mistyped, or never made)."
        if user is not None and user != row.name:
            return f"The token given as the password is not one of user {user!r}'s."
        now = _now_ms()
        if row.revoked_at is not None:
            return f"User {row.name!r}'s token was revoked; ask an admin for a new one."
        if row.expires_at is not None and row.expires_at <= now:
            return f"User {row.name!r}'s token has expired; ask an admin for a new one."
        if row.disabled:
            return f"User {row.name!r} is disabled."
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY_MS:
            with self.store.write() as conn:
                conn.execute(update(tokens).where(tokens.c.id == row.id).values(last_used_at=now))
        return Principal(row.name, row.role, int(row.user_id))

    # ------------------------------------------------------------ permissions
    def grant(self, user: str, experiment: str | int, level: str) -> Grant:
        """Give `user` `level` on `experiment` (its name or id), replacing any grant.

        Raises:
            AccessError: Unknown user or level.
            ExperimentNotFoundError: No live experiment has that name or id.
        """
        level = check_level(level)
        with self.store.write() as conn:
            row = self._need_user(conn, user)
            exp_id, exp_name = self._need_experiment(conn, experiment)
            self._put_grant(conn, row.id, exp_id, level)
        return Grant(row.name, exp_name, exp_id, level)

    def grant_id(self, user_id: int, experiment_id: int, level: str) -> None:
        """`grant` by ids (the server gives an experiment's creator MANAGE with it)."""
        with self.store.write() as conn:
            self._put_grant(conn, user_id, experiment_id, check_level(level))

    def revoke(self, user: str, experiment: str | int) -> bool:
        """Remove `user`'s grant on `experiment`; True when there was one."""
        from sqlalchemy import delete

        from kiln.store.schema import experiment_permissions as p

        with self.store.write() as conn:
            row = self._need_user(conn, user)
            exp_id, _name = self._need_experiment(conn, experiment)
            done = conn.execute(delete(p).where(p.c.user_id == row.id, p.c.experiment_id == exp_id))
        return bool(done.rowcount)

    def grants(self, user: str | None = None) -> builtins.list[Grant]:
        """The grants of `user` (default: everyone's), by user and experiment."""
        from sqlalchemy import select

        from kiln.store.schema import experiment_permissions as p
        from kiln.store.schema import experiments as e
        from kiln.store.schema import users as u

        query = (
            select(u.c.name, e.c.name.label("experiment"), p.c.experiment_id, p.c.level)
            .join(u, u.c.id == p.c.user_id)
            .join(e, e.c.id == p.c.experiment_id)
            .where(e.c.deleted_at.is_(None))
            .order_by(u.c.name, e.c.name)
        )
        with self.store.read() as conn:
            if user is not None:
                query = query.where(p.c.user_id == self._need_user(conn, user).id)
            rows = conn.execute(query).all()
        return [Grant(r.name, r.experiment, int(r.experiment_id), r.level) for r in rows]

    def levels_of(self, user_id: int) -> dict[int, str]:
        """A user's grants as {experiment id: level}."""
        from sqlalchemy import select

        from kiln.store.schema import experiment_permissions as p

        with self.store.read() as conn:
            rows = conn.execute(
                select(p.c.experiment_id, p.c.level).where(p.c.user_id == user_id)
            ).all()
        return {int(i): str(level) for i, level in rows}

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _put_grant(conn: Any, user_id: int, experiment_id: int, level: str) -> None:
        from sqlalchemy import delete, insert

        from kiln.store.schema import experiment_permissions as p

        conn.execute(delete(p).where(p.c.user_id == user_id, p.c.experiment_id == experiment_id))
        conn.execute(insert(p).values(user_id=user_id, experiment_id=experiment_id, level=level))

    @staticmethod
    def _user_row(conn: Any, name: str) -> Any:
        from sqlalchemy import select

        from kiln.store.schema import users

        return conn.execute(select(users).where(users.c.name == name)).first()

    def _need_user(self, conn: Any, name: str) -> Any:
        from sqlalchemy import select

        from kiln.store.schema import users

        row = self._user_row(conn, name)
        if row is None:
            known = list(conn.execute(select(users.c.name).order_by(users.c.name)).scalars())
            raise AccessError(
                f"No user named {name!r}; the users are: {', '.join(known) or '(none yet)'}. "
                "Add one with: kiln server users add NAME --role editor"
            )
        return row

    @staticmethod
    def _need_experiment(conn: Any, experiment: str | int) -> tuple[int, str]:
        from sqlalchemy import select

        from kiln.store.schema import experiments as e

        live = select(e.c.id, e.c.name).where(e.c.deleted_at.is_(None))
        row = conn.execute(live.where(e.c.name == str(experiment))).first()
        if row is None and str(experiment).isdigit():
            row = conn.execute(live.where(e.c.id == int(experiment))).first()
        if row is None:
            raise ExperimentNotFoundError(
                f"No experiment named {experiment!r} in this store; a permission is granted "
                "on an existing experiment (kiln experiments list shows them)."
            )
        return int(row.id), str(row.name)


def _user(row: Any) -> User:
    return User(int(row.id), row.name, row.role, int(row.created_at), bool(row.disabled))


def _token(row: Any) -> Token:
    return Token(
        int(row.id),
        row.user_name,
        row.name,
        int(row.created_at),
        row.expires_at,
        row.last_used_at,
        row.revoked_at,
    )
