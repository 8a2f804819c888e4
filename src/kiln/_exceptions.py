"""Every error kiln raises on purpose, in one hierarchy.

```
KilnError
├── ConfigurationError          a setting, URL or option is wrong
│   └── MissingExtraError       an optional dependency is not installed
├── StoreError                  the metadata store cannot be used
│   ├── StoreUnavailableError   the store URL cannot be opened
│   └── SchemaVersionError      the store's schema does not match this client
├── ArtifactError               an artifact cannot be stored or read
│   └── ArtifactIntegrityError  an artifact's bytes do not match its recorded sha256
├── TrackingError               a tracking call was given bad input
│   ├── InvalidMetricError      a metric value is NaN, infinite or not a number
│   ├── ParamConflictError      a param is logged again with a different value
│   ├── NoActiveRunError        a logging call made outside any run
│   └── FilterSyntaxError       a run filter or order-by cannot be parsed
└── NotFoundError               an experiment, run or artifact does not exist
    ├── ExperimentNotFoundError
    ├── RunNotFoundError
    └── ArtifactNotFoundError
```

Messages say what was wrong, what was expected and how to fix it. Errors that wrap a
third-party exception chain it (`raise ... from exc`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ConfigurationError",
    "ExperimentNotFoundError",
    "FilterSyntaxError",
    "InvalidMetricError",
    "KilnError",
    "MissingExtraError",
    "NoActiveRunError",
    "NotFoundError",
    "ParamConflictError",
    "RunNotFoundError",
    "SchemaVersionError",
    "StoreError",
    "StoreUnavailableError",
    "TrackingError",
]


class KilnError(Exception):
    """Root of every error kiln raises on purpose."""


class ConfigurationError(KilnError):
    """A setting, URL or option has a value kiln cannot use."""


class MissingExtraError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message gives the exact install line."""

    def __init__(self, module: str, extra: str, feature: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{feature} needs the Python package '{module}', which is not installed.\n"
            f"Install it with:  pip install 'kiln-ml[{extra}]'"
        )


class StoreError(KilnError):
    """The metadata store cannot be used."""


class StoreUnavailableError(StoreError):
    """The store URL cannot be opened (bad URL, server down, permission denied)."""


class SchemaVersionError(StoreError):
    """The store's schema version differs from the one this client understands."""


class ArtifactError(KilnError):
    """An artifact cannot be stored or read."""


class ArtifactIntegrityError(ArtifactError):
    """An artifact's bytes no longer match the sha256 recorded when it was logged."""


class TrackingError(KilnError, ValueError):
    """A tracking call was given input it cannot record."""


class InvalidMetricError(TrackingError):
    """A metric value is NaN, infinite or not a real number."""


class ParamConflictError(TrackingError):
    """A param was logged again on the same run with a different value."""


class NoActiveRunError(TrackingError):
    """A logging call was made with no active run and no run id."""


class FilterSyntaxError(TrackingError):
    """A run filter or order-by expression cannot be parsed.

    Attributes:
        expression: The text that was parsed.
        position: Zero-based offset of the offending character.
    """

    def __init__(self, message: str, expression: str, position: int) -> None:
        self.expression = expression
        self.position = position
        caret = " " * position + "^"
        super().__init__(f"{message} (at position {position})\n  {expression}\n  {caret}")


class NotFoundError(KilnError, LookupError):
    """Something asked for by name or id does not exist."""


class ExperimentNotFoundError(NotFoundError):
    """No experiment has the given name."""


class RunNotFoundError(NotFoundError):
    """No run has the given id (or id prefix)."""


class ArtifactNotFoundError(NotFoundError, ArtifactError):
    """The run has no artifact at the given path."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
