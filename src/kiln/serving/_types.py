"""The types shared by serving's modules (as `starlette/types.py` is Starlette's).

Protocols name what serving needs of `kiln.models`' validator, so an editor can follow
a call from a request to the model without serving importing a private module of
another package; everything here is imported only while type checking.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd
    from starlette.requests import Request
    from starlette.responses import Response


__all__ = ["Checked", "Endpoint", "Handler", "InputValidator", "Problems"]

Problems = list[dict[str, Any]]
"""Field errors in kiln's JSON error shape: one dict per column and problem."""


class Checked(Protocol):
    """What a validator's `check` returns (`kiln.models`' `ValidationResult`)."""

    @property
    def ok(self) -> bool:
        """True when there are no errors (and so `frame` is set)."""

    @property
    def frame(self) -> pd.DataFrame | None:
        """The validated frame in the signature's columns and dtypes; None on errors."""

    @property
    def errors(self) -> Problems:
        """Problems that make the input unusable."""

    @property
    def warnings(self) -> Problems:
        """Drift let through (mode "warn")."""


class InputValidator(Protocol):
    """A model's input validator (`kiln.models`' `Validator`)."""

    mode: str

    def check(self, data: Any) -> Checked:
        """Check `data` against the signature, without raising for bad data."""


Handler = Callable[["Request", str], Awaitable["Response"]]
"""An endpoint of `_Server`: `(request, request id) -> response`."""

Endpoint = Callable[["Request"], Awaitable["Response"]]
"""What Starlette routes to: `(request) -> response`."""
