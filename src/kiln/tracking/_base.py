"""The base every `TrackingClient` mixin shares."""

from __future__ import annotations

from typing import Any

from kiln.store import Store

__all__ = ["_ClientBase"]


class _ClientBase:
    """What the mixins of `TrackingClient` rely on each other for."""

    store: Store
    _artifacts: Any

    def _flush_pending(self) -> None:
        raise NotImplementedError

    def resolve_run_id(self, run_id: str) -> str:
        raise NotImplementedError

    def experiment_id(self, name: str, *, create: bool = False) -> int:
        raise NotImplementedError

    def _write_ops(self, ops: list[tuple[str, Any]]) -> None:
        raise NotImplementedError

    def _queue(self) -> Any:
        raise NotImplementedError

    @property
    def artifacts(self) -> Any:
        raise NotImplementedError
