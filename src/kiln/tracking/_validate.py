"""Checking and normalising what users log: keys, param values, metric values, names."""

from __future__ import annotations

import json
import math
import numbers
import random
import time
from typing import Any

from kiln._exceptions import ArtifactError, InvalidMetricError, TrackingError

__all__ = [
    "DEFAULT_EXPERIMENT",
    "MAX_PARAM",
    "STATUSES",
    "check_artifact_name",
    "check_key",
    "check_metric",
    "check_text",
    "clean_text",
    "new_run_name",
    "now_ms",
    "param_number",
    "param_text",
    "shorten",
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
    """A param's value as a number for comparisons (None: not a finite number, or a bool)."""
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
    if (kind is float or (kind is int and -_BIG < value < _BIG)) and (
        step is None or (type(step) is int and -_BIG < step < _BIG)
    ):
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
    number = _metric_float(key, value, step)
    if not math.isfinite(number):
        where = f" at step {step}" if step is not None else ""
        raise InvalidMetricError(
            f"Metric {key!r}{where} is {number}; kiln stores only finite numbers. A NaN or "
            "infinite loss usually means training diverged: stop the run, or record it with "
            "kiln.set_tag('diverged', 'true')."
        )
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise InvalidMetricError(f"Metric {key!r}: step must be an integer; got {step!r}.")
    if step is not None and not -_BIG <= int(step) < _BIG:
        raise InvalidMetricError(
            f"Metric {key!r}: step {_int_text(int(step))} does not fit in a 64-bit integer; "
            "kiln stores steps from -2**63 to 2**63-1. Use a smaller step (an epoch or batch "
            "counter)."
        )
    return number


#: Steps are stored as 64-bit integers; an int this large is also past the fast path.
_BIG = 2**63


def _int_text(number: int) -> str:
    """An int as text; one too long to print whole (over 4,300 digits) as its size."""
    if abs(number).bit_length() < 1000:
        return str(number)
    return f"of about {int(abs(number).bit_length() * math.log10(2)) + 1} digits"


def _metric_float(key: Any, value: Any, step: Any) -> float:
    """`float(value)`, with an int too large for a float refused as a metric error."""
    try:
        return float(value)
    except OverflowError as exc:
        where = f" at step {step}" if step is not None else ""
        digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1
        raise InvalidMetricError(
            f"Metric {key!r}{where} is a number of about {digits} digits, too large for a "
            "64-bit float (at most about 1.8e308); kiln stores metrics as floats. Log its "
            "logarithm, or record the exact number with kiln.log_param."
        ) from exc


# ------------------------------------------------------------------ artifact names
#: Bytes (UTF-8) a whole artifact name and each of its parts may have: a name must also
#: be a path when the artifact is downloaded, and file systems refuse a file name over
#: 255 bytes ("File name too long"). A download first writes `<part>.<32 hex>.part`, so a
#: part may have 200; 1024 in all leaves room for the download folder's own path.
MAX_ARTIFACT_NAME = 1024
MAX_ARTIFACT_PART = 200
# Characters that reorder or hide text when a name is shown (right-to-left override and
# its kin: "Trojan Source", CVE-2021-42574).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _relative_hint(absolute: str) -> str:
    relative = (absolute[2:] if absolute[1:2] == ":" else absolute).lstrip("/")
    return f" (for a path inside the run, write {relative[:60]!r})" if relative else ""


def check_artifact_name(name: Any) -> str:
    """An artifact name, checked and normalised: the path of the artifact within its run.

    The rule: a relative path of parts separated by `/` (a `\\` counts as `/`; empty and
    `.` parts are dropped), with no `..` part, not absolute (`/etc/passwd`, `C:/x`), with
    no control characters (NUL, newline, tab, ...), no bidirectional-text controls (the
    right-to-left override, U+202E, and its kin) and no unpaired surrogates, at most 200
    UTF-8 bytes per part and 1024 in all.

    Raises:
        ArtifactError: What in the name breaks the rule, and where.
    """
    if not isinstance(name, str):
        raise ArtifactError(
            f"An artifact name must be a str such as 'model/weights.bin'; got "
            f"{type(name).__name__} {name!r}."
        )
    rule = (
        "An artifact name is a relative path such as 'plots/roc.png': parts separated by "
        "'/', no '..', no control or bidirectional-text characters, at most "
        f"{MAX_ARTIFACT_PART} bytes a part and {MAX_ARTIFACT_NAME} in all."
    )
    shown = repr(name) if len(name) <= 80 else repr(name[:60]) + f"... ({len(name)} characters)"
    for index, char in enumerate(name):
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0 or char in _BIDI or 0xD800 <= code < 0xE000:
            what = "a control character" if code < 0xA0 else "a bidirectional-text control"
            if 0xD800 <= code < 0xE000:
                what = "an unpaired surrogate"
            raise ArtifactError(
                f"Artifact name {shown} has {what} (U+{code:04X}) at position {index}. {rule}"
            )
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":" and unified[0].isalpha()):
        raise ArtifactError(
            f"Artifact name {shown} is not a relative path inside the run: it is absolute"
            f"{_relative_hint(unified)}. {rule}"
        )
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ArtifactError(
            f"Artifact name {shown} is not a relative path inside the run (no '..', not "
            f"empty). {rule}"
        )
    for part in parts:
        size = len(part.encode("utf-8"))
        if size > MAX_ARTIFACT_PART:
            raise ArtifactError(
                f"Artifact name {shown} has a part of {size} bytes ({part[:40]!r}...), more "
                f"than the {MAX_ARTIFACT_PART} a file name can have when it is downloaded "
                f"(file systems refuse names over 255 bytes). {rule}"
            )
    clean = "/".join(parts)
    size = len(clean.encode("utf-8"))
    if size > MAX_ARTIFACT_NAME:
        raise ArtifactError(f"Artifact name {shown} is {size} bytes long. {rule}")
    return clean


# ------------------------------------------------------------------ long texts
#: Characters of a run's error kept in the runs table (and printed by `kiln runs show`);
#: a longer one is kept whole as the run's artifact ERROR_ARTIFACT.
MAX_ERROR = 10_000
ERROR_ARTIFACT = "kiln/error.txt"


def shorten(text: str, limit: int, where: str) -> str:
    """`text` if it has at most `limit` characters, else its head and tail around a note.

    The note says how much was cut and `where` the whole text is. The head keeps where a
    traceback starts, the tail the exception line at its end.
    """
    if len(text) <= limit:
        return text
    half = max(limit // 2 - 100, 1)
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut:,} characters cut; the whole text is {where} ...]\n{text[-half:]}"
