"""The one JSON error shape, shared by the app and the HTTP protocol under it.

```json
{"error": "...", "error_code": "INVALID_PARAMETER_VALUE", "message": "...",
 "errors": [{"column": "age", "problem": "type", "expected": "...", "found": "...",
             "rows": [0], "count": 1}],
 "request_id": "..."}
```

Nothing in an error body echoes more than a short excerpt of the request: `clip_errors`
bounds every string and list in `errors`, whatever produced them.
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["CODES", "clip", "clip_errors", "error_body", "error_bytes"]

CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_PARAMETER_VALUE",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}
_MESSAGE = 1000  # characters of a message
_FIELD = 200  # characters of one string in `errors`
_ITEMS = 20  # items of one list in `errors`, and problems in `errors`


def clip(text: str, limit: int = 60) -> str:
    """`repr(text)`, cut to about `limit` characters (with the full length when cut)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def _bound(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _FIELD else value[:_FIELD] + "..."
    if isinstance(value, list):
        return [_bound(v) for v in value[:_ITEMS]]
    if isinstance(value, dict):
        return {k: _bound(v) for k, v in list(value.items())[:_ITEMS]}
    return value


def clip_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`errors` with every string and list bounded (at most 20 problems)."""
    return [_bound(e) for e in errors[:_ITEMS]]


def error_body(message: str, code: str, errors: list[dict[str, Any]], rid: str) -> dict[str, Any]:
    """The one error shape every endpoint answers with."""
    if len(message) > _MESSAGE:
        message = message[:_MESSAGE] + "..."
    return {
        "error": message,
        "error_code": code,
        "message": message,
        "errors": clip_errors(errors),
        "request_id": rid,
    }


def error_bytes(status: int, message: str, rid: str | None = None) -> bytes:
    """A whole HTTP/1.1 error response (JSON, `Connection: close`), for the protocol layer."""
    import json

    rid = rid or uuid.uuid4().hex
    body = json.dumps(error_body(message, CODES.get(status, "ERROR"), [], rid)).encode()
    reason = {
        400: "Bad Request",
        408: "Request Timeout",
        413: "Content Too Large",
        503: "Service Unavailable",
    }.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-request-id: {rid}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
