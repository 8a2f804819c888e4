"""Checking and normalising what users log: keys, param values, metric values, names."""

from __future__ import annotations

import json
import math
import numbers
import random
import time
from typing import Any

from kiln._exceptions import InvalidMetricError, TrackingError

__all__ = [
    "DEFAULT_EXPERIMENT",
    "MAX_PARAM",
    "STATUSES",
    "check_key",
    "check_metric",
    "check_text",
    "clean_text",
    "new_run_name",
    "now_ms",
    "param_number",
    "param_text",
]

DEFAULT_EXPERIMENT = "Default"
_MAX_KEY = 250
MAX_PARAM = 8000
STATUSES = ("running", "finished", "failed", "killed")
_ADJECTIVES = [
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fair",
    "fleet",
    "gentle",
    "glad",
    "grand",
    "hardy",
    "jolly",
    "keen",
    "lively",
    "lucid",
    "merry",
    "nimble",
    "noble",
    "plucky",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "ready",
    "serene",
    "sharp",
    "shiny",
    "sleek",
    "smart",
    "snappy",
    "steady",
    "stout",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
]
_NOUNS = [
    "badger",
    "bison",
    "crane",
    "dingo",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "gecko",
    "heron",
    "ibex",
    "jackal",
    "koala",
    "lemur",
    "lynx",
    "marten",
    "moose",
    "newt",
    "otter",
    "owl",
    "panda",
    "puffin",
    "quail",
    "raven",
    "robin",
    "salmon",
    "seal",
    "shrew",
    "stork",
    "swan",
    "tapir",
    "tiger",
    "toucan",
    "trout",
    "viper",
    "walrus",
    "wombat",
    "yak",
    "zebra",
]


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return int(time.time() * 1000)


_rng = random.Random()  # kiln's own: never draws from (or reseeds) the user's random


def new_run_name() -> str:
    """A memorable run name such as `swift-otter-42`."""
    rng = _rng
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(1, 99)}"


_valid_keys: set[str] = set()  # keys already checked: logging in a loop checks each once


def check_text(text: str, what: str) -> str:
    """Return `text` if it can be stored (encoded as UTF-8); raise `TrackingError` otherwise.

    A lone surrogate (what `os.fsdecode()` makes of a file name that is not UTF-8) cannot
    be encoded: refused here, at the call, it cannot reach the writer and block the
    records queued after it.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        shown = text[:80] + ("..." if len(text) > 80 else "")
        raise TrackingError(
            f"The {what} {shown!r} contains {bad!r} at position {exc.start}, a lone "
            "surrogate that cannot be stored as UTF-8 text. It usually comes from "
            "os.fsdecode() or os.listdir() on a file name that is not UTF-8: make the text "
            "valid first, for example name.encode('utf-8', 'backslashreplace').decode()."
        ) from None
    return text


def clean_text(text: str) -> str:
    """`text` with anything UTF-8 cannot hold (lone surrogates) escaped as `\\udcxx`.

    For text kiln captures itself (the command line, git state), where refusing is not
    an option.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def check_key(key: Any, what: str) -> str:
    """Return `key` if it is a usable key (non-empty text, at most 250 characters, no
    control characters); raise `TrackingError` saying what is wrong otherwise."""
    if key in _valid_keys and type(key) is str:
        return key
    if not isinstance(key, str) or not key.strip():
        raise TrackingError(f"A {what} key must be a non-empty string; got {key!r}.")
    if len(key) > _MAX_KEY:
        raise TrackingError(
            f"The {what} key {key[:40]!r}... is {len(key)} characters; the limit is {_MAX_KEY}."
        )
    if any(ord(c) < 32 for c in key):
        raise TrackingError(
            f"The {what} key {key!r} contains a control character (newline, tab...)."
        )
    check_text(key, f"{what} key")
    if len(_valid_keys) < 100_000:
        _valid_keys.add(key)
    return key


def param_text(value: Any, what: str = "value") -> str:
    """How a param value is stored: text, with lists and dicts as JSON."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, str):
        return check_text(value, what)
    if isinstance(value, (list, tuple, dict)):
        # JSON escapes a lone surrogate (ensure_ascii), so the text is always storable.
        return json.dumps(value, default=str, sort_keys=isinstance(value, dict))
    return check_text(str(value), what)


def param_number(text: str, value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        num = float(text)
    except ValueError:
        return None
    return num if math.isfinite(num) else None


def check_metric(key: Any, value: Any, step: Any = None) -> float:
    """Validate a metric value; return it as a float.

    NaN and infinite values are refused rather than stored: SQLite stores NaN as NULL and
    comparisons on them are meaningless. Stop a diverged run or record the event as a tag.
    """
    check_key(key, "metric")
    kind = type(value)
    if (kind is float or kind is int) and (step is None or type(step) is int):
        number = float(value)
        if math.isfinite(number):
            return number  # the common case, checked without ABC lookups
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            return check_metric(key, value.item(), step)
        raise InvalidMetricError(
            f"Metric {key!r} got {value!r} ({type(value).__name__}); expected a real number "
            "(int or float). Log text with kiln.set_tag or kiln.log_param."
        )
    number = float(value)
    if not math.isfinite(number):
        where = f" at step {step}" if step is not None else ""
        raise InvalidMetricError(
            f"Metric {key!r}{where} is {number}; kiln stores only finite numbers. A NaN or "
            "infinite loss usually means training diverged: stop the run, or record it with "
            "kiln.set_tag('diverged', 'true')."
        )
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise InvalidMetricError(f"Metric {key!r}: step must be an integer; got {step!r}.")
    return number
