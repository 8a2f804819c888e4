"""Who a team-server request comes from: `Authorization: Bearer TOKEN` (MLflow's client
sends MLFLOW_TRACKING_TOKEN so) or HTTP Basic (MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD, the password being a token of that user).

A server with neither users in its store nor a `--token` is open (it is bound to
loopback unless told otherwise). Once it has either, every request but /health and
/ready must be signed in, or is answered 401 with MLflow's error JSON. The server's own
`--token` signs in as an admin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

from kiln.server._users import Principal, Users

__all__ = ["OPEN_PATHS", "PRINCIPAL", "AuthMiddleware", "Authenticator"]

#: Paths answered without signing in.
OPEN_PATHS = ("/health", "/ready")
#: The ASGI scope key holding the request's `Principal` (None on an open server).
PRINCIPAL = "kiln.principal"
#: While the store has no users, how often to look again (seconds).
_RECHECK_S = 1.0
_NEEDS_TOKEN = (
    "This kiln server needs a token: set MLFLOW_TRACKING_TOKEN (MLflow's client then sends "
    "Authorization: Bearer TOKEN), or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
    "(a token of that user). An admin makes one with: kiln server tokens create USER. A "
    "server started with --token or KILN_TOKEN also takes that token."
)


class Unauthenticated(Exception):
    """A request that must sign in did not, or with credentials that are refused."""


class Authenticator:
    """Turns a request's Authorization header into a `Principal`.

    Args:
        users: The store's users.
        token: The server's own token (an admin), if any.
    """

    def __init__(self, users: Users, token: str | None) -> None:
        self.users = users
        self._token = None if token is None else hashlib.sha256(token.encode()).digest()
        self._has_users = False
        self._checked_at = float("-inf")

    def required(self) -> bool:
        """Whether requests must sign in: a server token, or users in the store (once
        there are, that is remembered; until then the store is asked at most once a second)."""
        if self._token is not None or self._has_users:
            return True
        now = time.monotonic()
        if now - self._checked_at >= _RECHECK_S:
            self._has_users = self.users.any()
            self._checked_at = now
        return self._has_users

    def known_open(self) -> bool:
        """Whether the server is open, as last seen under a second ago (no store read)."""
        return (
            self._token is None
            and not self._has_users
            and time.monotonic() - self._checked_at < _RECHECK_S
        )

    def principal(self, header: bytes) -> Principal | None:
        """Who signs in with `header` (None: the server is open).

        Raises:
            Unauthenticated: Signing in is required and `header` does not.
        """
        if not self.required():
            return None
        scheme, _, value = header.decode("latin-1").strip().partition(" ")
        user: str | None = None
        if scheme.lower() == "bearer":
            secret = value.strip()
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated(
                    "The HTTP Basic credentials are not base64 of user:password."
                ) from None
            user, _, secret = decoded.partition(":")
        else:
            raise Unauthenticated(_NEEDS_TOKEN)
        if not secret:
            raise Unauthenticated(_NEEDS_TOKEN)
        given = hashlib.sha256(secret.encode()).digest()
        if self._token is not None and hmac.compare_digest(given, self._token):
            return Principal(user or "token", "admin", None)
        found = self.users.authenticate(secret, user=user)
        if isinstance(found, str):
            raise Unauthenticated(found)
        return found


class AuthMiddleware:
    """Pure ASGI middleware: signs each request in (off the event loop, as it reads the
    store) and puts its `Principal` in the scope under `PRINCIPAL`, or answers 401."""

    def __init__(self, app: Any, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        if self.auth.known_open():  # no users, no token: no thread hop per request
            scope[PRINCIPAL] = None
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        try:
            scope[PRINCIPAL] = await run_in_threadpool(self.auth.principal, header)
        except Unauthenticated as exc:
            response = JSONResponse(
                {"error_code": "UNAUTHENTICATED", "message": str(exc)},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="kiln", Basic realm="kiln"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
