"""Times and durations as users write them: "7d", "12h", an ISO 8601 time, a datetime, ms.

One reading for every API and command that takes a window (`kiln.prediction_log`,
`kiln.monitor`, `kiln monitor --since`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from kiln._exceptions import ConfigurationError

__all__ = ["parse_duration", "parse_time"]

_UNITS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def parse_duration(value: Any, what: str = "every") -> timedelta:
    """A duration such as "1h", "30m", "7d", "2w" or "90s" (or a timedelta) as a timedelta.

    Raises:
        ConfigurationError: `value` is not a positive duration (the message shows the forms).
    """
    if isinstance(value, timedelta):
        delta = value
    else:
        match = _DURATION.match(str(value).lower())
        if not match or match.group(2) not in _UNITS:
            raise ConfigurationError(
                f"{what}={value!r} is not a duration; expected a number and a unit, such as "
                "'90s', '30m', '1h', '7d' or '2w'."
            )
        delta = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if delta.total_seconds() <= 0:
        raise ConfigurationError(f"{what}={value!r} is not a positive duration.")
    return delta


def parse_time(value: Any, what: str, *, now: datetime | None = None) -> datetime | None:
    """A time: a datetime, an ISO 8601 string, ms since the epoch, or a duration ago ("7d").

    Naive times are taken as UTC.

    Raises:
        ConfigurationError: `value` is none of those (the message shows the forms).
    """
    if value is None:
        return None
    now = now or datetime.now(UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        if _DURATION.match(value.lower()):
            return now - parse_duration(value, what)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ConfigurationError(
        f"{what}={value!r} is not a time; expected an ISO 8601 time such as "
        "'2026-11-22T10:00:00', a duration ago such as '7d' or '12h', a datetime, or "
        "milliseconds since the epoch."
    )
