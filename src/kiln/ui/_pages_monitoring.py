"""Dashboard pages: monitoring (routes to come, issue 17)."""

from __future__ import annotations

from typing import Any

__all__ = ["ROUTES"]

ROUTES: list[Any] = []
