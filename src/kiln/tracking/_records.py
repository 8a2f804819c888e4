"""Plain records returned by the tracking API (no database objects leak out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["ArtifactInfo", "DatasetInfo", "Experiment", "Metric", "Run", "RunStatus"]

#: The statuses a run can have. `crashed` is computed when a run is read (never written).
RunStatus = ("running", "finished", "failed", "killed", "crashed")


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    created_at: int
    n_runs: int = 0


@dataclass(frozen=True)
class Metric:
    """One logged metric value."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact logged to a run: its logical path, sha256 and size in bytes."""

    path: str
    sha256: str
    size: int
    created_at: int


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset a run read (input) or wrote (output)."""

    fingerprint: str
    name: str | None
    role: str
    direction: str
    n_rows: int
    n_cols: int
    schema: list[dict[str, Any]]
    summary: dict[str, Any]
    source: str | None = None


@dataclass(frozen=True)
class Run:
    """A snapshot of a run, as read from the store.

    Attributes:
        id: The run id (32 hex characters); commands also accept a unique prefix.
        experiment: The experiment's name.
        status: running, finished, failed, killed or crashed.
        metrics: The latest value of each metric (at its highest step).
        environment: User, host, command, git state, Python and package versions.
    """

    id: str
    name: str
    experiment: str
    status: str
    start_time: int
    end_time: int | None
    parent_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list[DatasetInfo] = field(default_factory=list)
    artifacts: list[ArtifactInfo] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (None while running)."""
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 strings in UTC)."""
        out = asdict(self)
        out["start_time"] = _iso(self.start_time)
        out["end_time"] = _iso(self.end_time)
        out["duration"] = self.duration
        return out
