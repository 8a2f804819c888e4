"""The one table of kiln's settings.

Each setting has a name, a type, a default, a help text and an environment variable.
The CLI's global options, the environment and the docs are all derived from `SETTINGS`,
so they cannot drift apart. Explicit function arguments always win over the
environment, which wins over the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kiln._exceptions import ConfigurationError

__all__ = ["SETTINGS", "Setting", "find_setting", "get_setting"]


@dataclass(frozen=True)
class Setting:
    """One configurable value.

    Attributes:
        name: The setting's name, as used in Python (`store`).
        type: `str`, `int`, `float` or `bool`.
        default: Value when neither an argument nor the environment sets it.
        help: One sentence for `--help` and the docs.
        env: The environment variable that sets it.
    """

    name: str
    type: type
    default: Any
    help: str
    env: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "store",
        str,
        None,
        "Metadata store URL (sqlite:///path/kiln.db or postgresql+psycopg://...) or a "
        "path to a SQLite file. Default: the embedded store in the nearest .kiln/ folder.",
        "KILN_STORE",
    ),
    Setting(
        "home",
        str,
        None,
        "Folder of the embedded store (holds kiln.db and artifacts/). Default: the nearest "
        ".kiln/ walking up from the working directory, else <git root>/.kiln, else ./.kiln.",
        "KILN_HOME",
    ),
    Setting(
        "artifacts",
        str,
        None,
        "Artifact root (a folder or any fsspec URL such as s3://bucket/kiln) used when a "
        "store is created; afterwards the root recorded in the store is used.",
        "KILN_ARTIFACTS",
    ),
    Setting(
        "flush_interval",
        float,
        0.5,
        "Longest time (seconds) a logged value waits in memory before it is written.",
        "KILN_FLUSH_INTERVAL",
    ),
    Setting(
        "heartbeat_interval",
        float,
        10.0,
        "Seconds between a running run's heartbeats; three missed ones read as crashed.",
        "KILN_HEARTBEAT_INTERVAL",
    ),
    Setting(
        "system_metrics",
        bool,
        True,
        "Sample CPU, memory and GPU use into runs that last longer than a few seconds.",
        "KILN_SYSTEM_METRICS",
    ),
    Setting(
        "system_metrics_interval",
        float,
        10.0,
        "Seconds between system-metric samples (the first is taken after 5 seconds).",
        "KILN_SYSTEM_METRICS_INTERVAL",
    ),
    Setting(
        "gc_freeze",
        bool,
        True,
        "When kiln opens its store, move the objects alive then (imported modules, mostly) "
        "to the garbage collector's permanent generation, so collections and exit skip them.",
        "KILN_GC_FREEZE",
    ),
    Setting(
        "capture_packages",
        bool,
        True,
        "Record the installed packages' versions on every top-level run.",
        "KILN_CAPTURE_PACKAGES",
    ),
    Setting(
        "token",
        str,
        None,
        "Bearer token: kiln serve, kiln ui, kiln server and kiln notebook app, bound off loopback, "
        "require it from their clients.",
        "KILN_TOKEN",
    ),
    Setting(
        "max_artifact_size",
        int,
        5 * 2**30,
        "The largest artifact upload kiln server accepts through MLflow's artifact API, "
        "bytes (a bigger one gets 413 and nothing is stored).",
        "KILN_MAX_ARTIFACT_SIZE",
    ),
    Setting(
        "run_id",
        str,
        None,
        "A run started by another process (a notebook kernel's, say) that the module-level "
        "logging calls of this process attach to when no run of its own is active.",
        "KILN_RUN_ID",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def find_setting(name: str) -> Setting:
    """The row of `SETTINGS` called `name` (for building CLI options and docs from it).

    Raises:
        ConfigurationError: No setting has that name.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        from kiln._exceptions import did_you_mean

        raise ConfigurationError(
            f"kiln has no setting {name!r}.{did_you_mean(name, list(_BY_NAME))} "
            f"Settings: {', '.join(_BY_NAME)}."
        ) from None


def get_setting(name: str, value: Any = None) -> Any:
    """Resolve a setting: an explicit `value` first, then its env variable, then the default.

    Args:
        name: The setting's name in `SETTINGS`.
        value: An explicit value; returned as-is when not None.

    Returns:
        The resolved value, converted to the setting's type.

    Raises:
        ConfigurationError: `name` is not a setting, or its environment variable cannot
            be converted.
    """
    setting = find_setting(name)
    if value is not None:
        return value
    raw = os.environ.get(setting.env)
    if raw is None:
        return setting.default
    if setting.type is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigurationError(
            f"{setting.env}={raw!r} is not a boolean; expected one of 1/0, true/false, yes/no."
        )
    if setting.type is str:
        return raw
    try:
        return setting.type(raw)
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting.env}={raw!r} is not a valid {setting.type.__name__}."
        ) from exc
