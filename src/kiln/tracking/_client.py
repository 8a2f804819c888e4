"""The tracking client: every read and write of runs, explicit about which run.

The module-level API (`kiln.start_run`, `kiln.log_metric`, ...) is a thin layer over one
`TrackingClient` per store. Use a client directly to work with several stores, or with
runs other than the active one.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kiln._exceptions import (
    ArtifactError,
    ArtifactNotFoundError,
    ExperimentNotFoundError,
    InvalidMetricError,
    ParamConflictError,
    RunNotFoundError,
    TrackingError,
    did_you_mean,
)
from kiln.store import Store
from kiln.tracking._records import ArtifactInfo, DatasetInfo, Experiment, Metric, Run

__all__ = ["DEFAULT_EXPERIMENT", "TrackingClient"]

DEFAULT_EXPERIMENT = "Default"
_MAX_KEY = 250
_MAX_PARAM = 8000
_STATUSES = ("running", "finished", "failed", "killed")
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


def new_run_name() -> str:
    """A memorable run name such as `swift-otter-42`."""
    rng = random.Random()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(1, 99)}"


def _check_key(key: Any, what: str) -> str:
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
    return key


def param_text(value: Any) -> str:
    """How a param value is stored: text, with lists and dicts as JSON."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str, sort_keys=isinstance(value, dict))
    return str(value)


def _param_number(text: str, value: Any) -> float | None:
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
    _check_key(key, "metric")
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


class TrackingClient:
    """Reads and writes runs in one store.

    Args:
        store: A store URL or path; None means `KILN_STORE`, then the embedded default.
    """

    def __init__(self, store: str | os.PathLike[str] | Store | None = None) -> None:
        self.store = store if isinstance(store, Store) else Store.open(store)
        self._artifacts: Any = None
        self._steps: dict[tuple[str, str], int] = {}

    @property
    def artifacts(self) -> Any:
        """The store's `ArtifactStore`."""
        if self._artifacts is None:
            from kiln.artifacts import ArtifactStore

            self._artifacts = ArtifactStore(self.store.artifact_root)
        return self._artifacts

    # ------------------------------------------------------------ experiments
    def experiment_id(self, name: str, *, create: bool = False) -> int:
        """The id of the live experiment called `name`, created when `create` is true."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from kiln.store import _schema as s

        if not isinstance(name, str) or not name.strip():
            raise TrackingError(f"An experiment name must be a non-empty string; got {name!r}.")
        query = select(s.experiments.c.id).where(
            s.experiments.c.name == name, s.experiments.c.deleted_at.is_(None)
        )
        with self.store.read() as conn:
            found = conn.execute(query).scalar()
        if found is not None:
            return int(found)
        if not create:
            raise ExperimentNotFoundError(
                f"No experiment named {name!r}.{did_you_mean(name, self._experiment_names())}"
                " List them with: kiln experiments list"
            )
        try:
            with self.store.write() as conn:
                new = conn.execute(
                    s.experiments.insert()
                    .values(name=name, created_at=now_ms())
                    .returning(s.experiments.c.id)
                ).scalar_one()
                return int(new)
        except IntegrityError:  # created by another process meanwhile
            with self.store.read() as conn:
                return int(conn.execute(query).scalar_one())

    def _experiment_names(self) -> list[str]:
        from sqlalchemy import select

        from kiln.store import _schema as s

        with self.store.read() as conn:
            return list(
                conn.execute(
                    select(s.experiments.c.name).where(s.experiments.c.deleted_at.is_(None))
                ).scalars()
            )

    def list_experiments(self) -> list[Experiment]:
        """Live experiments with their number of live runs, oldest first."""
        from sqlalchemy import and_, func, select

        from kiln.store import _schema as s

        query = (
            select(
                s.experiments.c.id,
                s.experiments.c.name,
                s.experiments.c.created_at,
                func.count(s.runs.c.id),
            )
            .select_from(
                s.experiments.outerjoin(
                    s.runs,
                    and_(
                        s.runs.c.experiment_id == s.experiments.c.id, s.runs.c.deleted_at.is_(None)
                    ),
                )
            )
            .where(s.experiments.c.deleted_at.is_(None))
            .group_by(s.experiments.c.id, s.experiments.c.name, s.experiments.c.created_at)
            .order_by(s.experiments.c.id)
        )
        with self.store.read() as conn:
            return [Experiment(int(i), n, int(c), int(k)) for i, n, c, k in conn.execute(query)]

    def rename_experiment(self, old: str, new: str) -> None:
        """Rename a live experiment; the new name must be free."""
        from sqlalchemy import update
        from sqlalchemy.exc import IntegrityError

        from kiln.store import _schema as s

        exp_id = self.experiment_id(old)
        if not isinstance(new, str) or not new.strip():
            raise TrackingError(f"An experiment name must be a non-empty string; got {new!r}.")
        try:
            with self.store.write() as conn:
                conn.execute(
                    update(s.experiments).where(s.experiments.c.id == exp_id).values(name=new)
                )
        except IntegrityError as exc:
            raise TrackingError(
                f"Cannot rename {old!r} to {new!r}: an experiment called {new!r} already exists."
            ) from exc

    def delete_experiment(self, name: str) -> int:
        """Delete an experiment and its runs (artifacts are freed by `gc`); its name can be reused.

        Returns:
            The number of runs deleted.
        """
        from sqlalchemy import update

        from kiln.store import _schema as s

        exp_id = self.experiment_id(name)
        stamp = now_ms()
        with self.store.write() as conn:
            n = conn.execute(
                update(s.runs)
                .where(s.runs.c.experiment_id == exp_id, s.runs.c.deleted_at.is_(None))
                .values(deleted_at=stamp)
            ).rowcount
            conn.execute(
                update(s.experiments).where(s.experiments.c.id == exp_id).values(deleted_at=stamp)
            )
        return int(n or 0)

    # ------------------------------------------------------------------- runs
    def create_run(
        self,
        *,
        experiment: str | None = None,
        name: str | None = None,
        parent_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a run in status `running` and return its id.

        Args:
            experiment: Experiment name, created if needed (default: the parent's, else "Default").
            name: A human name; a memorable one is made up when omitted.
            parent_id: The parent run, for nested runs.
            tags: Tags to set at once.
            environment: Columns from `capture_environment` (user, host, git state, ...).
        """
        from sqlalchemy import select

        from kiln.store import _schema as s

        if parent_id is not None:
            parent_id = self.resolve_run_id(parent_id)
        if experiment is None and parent_id is not None:
            with self.store.read() as conn:
                exp_id = int(
                    conn.execute(
                        select(s.runs.c.experiment_id).where(s.runs.c.id == parent_id)
                    ).scalar_one()
                )
        else:
            exp_id = self.experiment_id(experiment or DEFAULT_EXPERIMENT, create=True)
        run_id = uuid.uuid4().hex
        start = now_ms()
        row = {
            "id": run_id,
            "experiment_id": exp_id,
            "name": name or new_run_name(),
            "status": "running",
            "start_time": start,
            "heartbeat_at": start,
            "parent_id": parent_id,
            **dict(environment or {}),
        }
        with self.store.write() as conn:
            conn.execute(s.runs.insert().values(**row))
        if tags:
            self.set_tags(run_id, tags)
        return run_id

    def end_run(self, run_id: str, status: str = "finished", error: str | None = None) -> None:
        """Mark a run ended with `status` (finished, failed or killed)."""
        from sqlalchemy import update

        from kiln.store import _schema as s

        if status not in _STATUSES[1:]:
            raise TrackingError(f"A run ends as finished, failed or killed; got {status!r}.")
        with self.store.write() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id)
                .values(status=status, end_time=now_ms(), error=error)
            )

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of the live run whose id is or starts with `run_id`.

        Raises:
            RunNotFoundError: None matches, or the prefix is ambiguous.
        """
        from sqlalchemy import select

        from kiln.store import _schema as s

        if not isinstance(run_id, str) or not run_id.strip():
            raise RunNotFoundError(f"A run id must be a non-empty string; got {run_id!r}.")
        run_id = run_id.strip().lower()
        live = s.runs.c.deleted_at.is_(None)
        with self.store.read() as conn:
            if len(run_id) == 32:
                if conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id, live)).first():
                    return run_id
                matches: list[str] = []
            elif any(c not in "0123456789abcdef" for c in run_id):
                matches = []  # not a hex prefix (and '%' or '_' would be LIKE wildcards)
            else:
                matches = list(
                    conn.execute(
                        select(s.runs.c.id).where(s.runs.c.id.like(run_id + "%"), live).limit(6)
                    ).scalars()
                )
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise RunNotFoundError(
                    f"Run id prefix {run_id!r} matches several runs ({', '.join(m[:12] for m in matches[:5])}"
                    f"{', ...' if len(matches) > 5 else ''}); give more characters."
                )
            recent = conn.execute(
                select(s.runs.c.id).where(live).order_by(s.runs.c.start_time.desc()).limit(2000)
            ).scalars()
            hint = did_you_mean(run_id, [r[: len(run_id)] for r in recent])
        raise RunNotFoundError(
            f"No run with id {run_id!r} in the store at {self.store.display_url}.{hint} "
            "List runs with: kiln runs list"
        )

    # ---------------------------------------------------------------- logging
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record params; logging a key again with the same value is a no-op.

        Raises:
            ParamConflictError: A key already has a different value on this run.
        """
        from sqlalchemy import select

        from kiln.store import _schema as s

        if not isinstance(params, Mapping):
            raise TrackingError(
                f"log_params expects a dict of name -> value; got {type(params).__name__}."
            )
        if not params:
            return
        rows: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            _check_key(key, "param")
            text = param_text(value)
            if len(text) > _MAX_PARAM:
                raise TrackingError(
                    f"Param {key!r} is {len(text)} characters long; the limit is {_MAX_PARAM}. "
                    "Log large values as an artifact (kiln.log_artifact)."
                )
            rows[key] = {
                "run_id": run_id,
                "key": key,
                "value": text,
                "value_num": _param_number(text, value),
            }
        with self.store.write() as conn:
            existing = dict(
                conn.execute(
                    select(s.params.c.key, s.params.c.value).where(
                        s.params.c.run_id == run_id, s.params.c.key.in_(list(rows))
                    )
                ).all()
            )
            for key, old in existing.items():
                if old != rows[key]["value"]:
                    raise ParamConflictError(
                        f"Param {key!r} of run {run_id[:12]} is already {old!r}; it cannot become "
                        f"{rows[key]['value']!r}. Params record a run's inputs and never change: "
                        "use another key, or start a new run for the new value."
                    )
            new = [row for key, row in rows.items() if key not in existing]
            if new:
                conn.execute(s.params.insert(), new)

    def log_metrics(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, Any, int | None, int | None]],
    ) -> None:
        """Record metric values as `(key, value, step, timestamp_ms)` tuples.

        A `None` step continues the key's series (0, 1, 2, ...); a `None` timestamp means now.
        """
        rows: list[dict[str, Any]] = []
        stamp = now_ms()
        # Validate the whole batch first: a refused value must not advance any series.
        checked = [(k, check_metric(k, v, step), step, ts) for k, v, step, ts in metrics]
        for key, number, step, ts in checked:
            if step is None:
                step = self._next_step(run_id, key)
            else:
                step = int(step)
                self._steps[(run_id, key)] = max(self._peek_step(run_id, key), step + 1)
            rows.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": number,
                    "step": step,
                    "timestamp": ts or stamp,
                }
            )
        if rows:
            self.write_metric_rows(rows)

    def _peek_step(self, run_id: str, key: str) -> int:
        """The step the key's series continues at (one past the highest stored step)."""
        from sqlalchemy import func, select

        from kiln.store import _schema as s

        step = self._steps.get((run_id, key))
        if step is None:
            with self.store.read() as conn:
                last = conn.execute(
                    select(func.max(s.metrics.c.step)).where(
                        s.metrics.c.run_id == run_id, s.metrics.c.key == key
                    )
                ).scalar()
            step = 0 if last is None else int(last) + 1
        return step

    def _next_step(self, run_id: str, key: str) -> int:
        step = self._peek_step(run_id, key)
        self._steps[(run_id, key)] = step + 1
        return step

    def write_metric_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert validated metric rows and update each key's latest value, in one transaction."""
        from kiln.store import _schema as s

        latest: dict[tuple[str, str], Mapping[str, Any]] = {}
        for row in rows:
            k = (row["run_id"], row["key"])
            cur = latest.get(k)
            if cur is None or (row["step"], row["timestamp"]) >= (cur["step"], cur["timestamp"]):
                latest[k] = row
        with self.store.write() as conn:
            conn.execute(s.metrics.insert(), list(rows))
            conn.execute(self._upsert_latest(), list(latest.values()))

    def _upsert_latest(self) -> Any:
        from sqlalchemy import or_

        from kiln.store import _schema as s

        t = s.latest_metrics
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(t)
        ex = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[t.c.run_id, t.c.key],
            set_={"value": ex.value, "step": ex.step, "timestamp": ex.timestamp},
            where=or_(ex.step > t.c.step, (ex.step == t.c.step) & (ex.timestamp >= t.c.timestamp)),
        )

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags (a tag, unlike a param, may be changed)."""
        from kiln.store import _schema as s

        if not isinstance(tags, Mapping):
            raise TrackingError(
                f"set_tags expects a dict of name -> value; got {type(tags).__name__}."
            )
        rows = [
            {"run_id": run_id, "key": _check_key(k, "tag"), "value": param_text(v)}
            for k, v in tags.items()
        ]
        if not rows:
            return
        t = s.tags
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.run_id, t.c.key], set_={"value": stmt.excluded.value}
        )
        with self.store.write() as conn:
            conn.execute(stmt, rows)

    def heartbeat(self, run_id: str) -> None:
        """Record that the run's process is alive."""
        from sqlalchemy import update

        from kiln.store import _schema as s

        with self.store.write() as conn:
            conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(heartbeat_at=now_ms()))

    # -------------------------------------------------------------- artifacts
    def log_artifact(self, run_id: str, obj: Any, name: str | None = None) -> list[ArtifactInfo]:
        """Store a file, a folder (recursively) or an object as artifacts of a run.

        Args:
            run_id: The run.
            obj: A path to a file or folder; or, together with `name`, `bytes`, a dict or
                list (JSON), a pandas DataFrame (Parquet) or a matplotlib figure (PNG).
            name: The artifact's path within the run (default: the file's or folder's name).

        Returns:
            One `ArtifactInfo` per stored file.
        """
        items: list[tuple[str, str, int]] = []  # (logical path, sha, size)
        if isinstance(obj, (str, os.PathLike)):
            path = Path(obj)
            if not path.exists():
                raise ArtifactError(
                    f"No file or folder at {str(path)!r} to log (working directory: "
                    f"{os.getcwd()}). To log text rather than a file, use "
                    "kiln.log_text('some text', name='notes.txt')."
                )
            base = _clean_name(name or path.name)
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file())
                for file in files:
                    sha, size = self.artifacts.put_file(file)
                    items.append((f"{base}/{file.relative_to(path).as_posix()}", sha, size))
            else:
                sha, size = self.artifacts.put_file(path)
                items.append((base, sha, size))
        else:
            if not name:
                raise ArtifactError(
                    f"Logging a {type(obj).__name__} needs a name, for example "
                    "kiln.log_artifact(df, name='features.parquet')."
                )
            with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
                file = Path(tmp) / "obj"
                _serialize(obj, file, name)
                sha, size = self.artifacts.put_file(file)
            items.append((_clean_name(name), sha, size))
        return self._record_artifacts(run_id, items)

    def log_text(self, run_id: str, text: str, name: str) -> ArtifactInfo:
        """Store a string as a UTF-8 text artifact called `name`."""
        if not isinstance(text, str):
            raise ArtifactError(f"log_text expects a str; got {type(text).__name__}.")
        return self.log_artifact(run_id, text.encode("utf-8"), name=name)[0]

    def _record_artifacts(
        self, run_id: str, items: list[tuple[str, str, int]]
    ) -> list[ArtifactInfo]:
        from sqlalchemy import delete

        from kiln.store import _schema as s

        stamp = now_ms()
        rows = [
            {"run_id": run_id, "path": p, "sha256": sha, "size": size, "created_at": stamp}
            for p, sha, size in items
        ]
        with self.store.write() as conn:
            conn.execute(
                delete(s.artifacts).where(
                    s.artifacts.c.run_id == run_id, s.artifacts.c.path.in_([p for p, _, _ in items])
                )
            )
            if rows:
                conn.execute(s.artifacts.insert(), rows)
        return [ArtifactInfo(p, sha, size, stamp) for p, sha, size in items]

    def _artifact(self, run_id: str, path: str) -> ArtifactInfo:
        from sqlalchemy import select

        from kiln.store import _schema as s

        run_id = self.resolve_run_id(run_id)
        a = s.artifacts
        with self.store.read() as conn:
            row = conn.execute(
                select(a.c.path, a.c.sha256, a.c.size, a.c.created_at).where(
                    a.c.run_id == run_id, a.c.path == path
                )
            ).first()
            if row is None:
                names = list(conn.execute(select(a.c.path).where(a.c.run_id == run_id)).scalars())
        if row is None:
            listing = f" It has: {', '.join(names[:10])}." if names else " It has no artifacts."
            raise ArtifactNotFoundError(
                f"Run {run_id[:12]} has no artifact {path!r}.{did_you_mean(path, names)}{listing}"
            )
        return ArtifactInfo(*row)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of an artifact, checked against the sha256 recorded when it was logged."""
        info = self._artifact(run_id, path)
        return bytes(self.artifacts.read_bytes(info.sha256, label=f"{path!r} of run {run_id[:12]}"))

    def download_artifacts(
        self, run_id: str, path: str = "", dest: str | os.PathLike[str] | None = None
    ) -> Path:
        """Copy an artifact, or every artifact under a folder path, to a local folder.

        Every file is checked against its recorded sha256. Returns the local path of the
        artifact (or folder).
        """
        from sqlalchemy import or_, select

        from kiln.store import _schema as s

        run_id = self.resolve_run_id(run_id)
        target = (
            Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="kiln-artifacts-"))
        )
        a = s.artifacts
        prefix = path.rstrip("/")
        cond = a.c.run_id == run_id
        if prefix:
            inside = a.c.path.startswith(prefix + "/", autoescape=True)  # not a LIKE pattern
            cond = cond & or_(a.c.path == prefix, inside)
        with self.store.read() as conn:
            rows = conn.execute(select(a.c.path, a.c.sha256).where(cond)).all()
        if not rows:
            self._artifact(run_id, prefix)  # raises a helpful not-found error
        for rel, sha in rows:
            self.artifacts.get_file(sha, target / rel, label=f"{rel!r} of run {run_id[:12]}")
        return target / prefix if prefix else target

    # --------------------------------------------------------------- datasets
    def log_dataset(
        self,
        run_id: str,
        data: Any,
        *,
        role: str = "train",
        name: str | None = None,
        source: str | None = None,
        direction: str = "input",
    ) -> DatasetInfo:
        """Record a dataset's fingerprint, schema and summary as an input or output of a run."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from kiln.store import _schema as s
        from kiln.tracking._dataset import describe_dataset

        if direction not in ("input", "output"):
            raise TrackingError(f"direction must be 'input' or 'output'; got {direction!r}.")
        _check_key(role, "dataset role")
        desc = describe_dataset(data)
        d = s.datasets
        row = {
            "fingerprint": desc["fingerprint"],
            "name": name,
            "n_rows": desc["n_rows"],
            "n_cols": desc["n_cols"],
            "schema": json.dumps(desc["schema"]),
            "summary": json.dumps(desc["summary"]),
            "source": source,
            "created_at": now_ms(),
        }
        find = select(d.c.id).where(d.c.fingerprint == desc["fingerprint"])
        with self.store.read() as conn:
            ds_id = conn.execute(find).scalar()
        if ds_id is None:
            try:
                with self.store.write() as conn:
                    ds_id = conn.execute(d.insert().values(**row).returning(d.c.id)).scalar_one()
            except IntegrityError:
                with self.store.read() as conn:
                    ds_id = conn.execute(find).scalar_one()
        link = s.run_datasets
        with self.store.write() as conn:
            conn.execute(
                link.delete().where(
                    link.c.run_id == run_id, link.c.dataset_id == ds_id, link.c.role == role
                )
            )
            conn.execute(
                link.insert().values(
                    run_id=run_id, dataset_id=ds_id, role=role, direction=direction, name=name
                )
            )
        return DatasetInfo(
            desc["fingerprint"],
            name,
            role,
            direction,
            desc["n_rows"],
            desc["n_cols"],
            desc["schema"],
            desc["summary"],
            source,
        )

    # ---------------------------------------------------------------- reading
    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags, datasets, artifacts and environment."""
        from sqlalchemy import select

        from kiln.store import _schema as s

        run_id = self.resolve_run_id(run_id)
        runs = self._load_runs([run_id], full=True)
        run = runs[0]
        d, link, a = s.datasets, s.run_datasets, s.artifacts
        with self.store.read() as conn:
            ds = conn.execute(
                select(
                    d.c.fingerprint,
                    link.c.name,
                    link.c.role,
                    link.c.direction,
                    d.c.n_rows,
                    d.c.n_cols,
                    d.c.schema,
                    d.c.summary,
                    d.c.source,
                )
                .select_from(link.join(d, d.c.id == link.c.dataset_id))
                .where(link.c.run_id == run_id)
                .order_by(link.c.direction, link.c.role)
            ).all()
            arts = conn.execute(
                select(a.c.path, a.c.sha256, a.c.size, a.c.created_at)
                .where(a.c.run_id == run_id)
                .order_by(a.c.path)
            ).all()
        datasets = [
            DatasetInfo(fp, nm, role, dr, int(nr), int(nc), json.loads(sc), json.loads(sm), src)
            for fp, nm, role, dr, nr, nc, sc, sm, src in ds
        ]
        artifacts = [ArtifactInfo(p, sha, int(sz), int(ts)) for p, sha, sz, ts in arts]
        return Run(**{**run.__dict__, "datasets": datasets, "artifacts": artifacts})

    def _load_runs(self, ids: Sequence[str], *, full: bool) -> list[Run]:
        from sqlalchemy import select

        from kiln.store import _schema as s

        if not ids:
            return []
        r = s.runs
        cols = [
            r.c.id,
            r.c.name,
            s.experiments.c.name,
            r.c.status,
            r.c.start_time,
            r.c.end_time,
            r.c.parent_id,
            r.c.error,
            r.c.heartbeat_at,
        ]
        env_cols = [
            r.c.user,
            r.c.host,
            r.c.pid,
            r.c.entry_point,
            r.c.command,
            r.c.git_commit,
            r.c.git_branch,
            r.c.git_dirty,
            r.c.python_version,
        ]
        if full:
            env_cols += [r.c.git_diff, r.c.packages]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        out: dict[str, Run] = {}
        with self.store.read() as conn:
            for chunk_start in range(0, len(ids), 500):
                chunk = list(ids[chunk_start : chunk_start + 500])
                for rid, k, v in conn.execute(
                    select(s.params.c.run_id, s.params.c.key, s.params.c.value).where(
                        s.params.c.run_id.in_(chunk)
                    )
                ):
                    params[rid][k] = v
                lm = s.latest_metrics
                for rid, k, v in conn.execute(
                    select(lm.c.run_id, lm.c.key, lm.c.value).where(lm.c.run_id.in_(chunk))
                ):
                    metrics[rid][k] = float(v)
                for rid, k, v in conn.execute(
                    select(s.tags.c.run_id, s.tags.c.key, s.tags.c.value).where(
                        s.tags.c.run_id.in_(chunk)
                    )
                ):
                    tags[rid][k] = v
                rows = conn.execute(
                    select(*cols, *env_cols)
                    .select_from(r.join(s.experiments, s.experiments.c.id == r.c.experiment_id))
                    .where(r.c.id.in_(chunk))
                ).all()
                for row in rows:
                    rid, name, exp, status, start, end, parent, error, _hb = row[: len(cols)]
                    env = dict(zip([c.name for c in env_cols], row[len(cols) :], strict=True))
                    if env.get("packages"):
                        env["packages"] = json.loads(env["packages"])
                    out[rid] = Run(
                        id=rid,
                        name=name,
                        experiment=exp,
                        status=status,
                        start_time=int(start),
                        end_time=None if end is None else int(end),
                        parent_id=parent,
                        params=dict(sorted(params[rid].items())),
                        metrics=dict(sorted(metrics[rid].items())),
                        tags=dict(sorted(tags[rid].items())),
                        environment=env,
                        error=error,
                    )
        return [out[i] for i in ids if i in out]

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs matching a filter, newest first unless `order_by` says otherwise.

        Args:
            experiment: One experiment name or several; None means all.
            filter: An expression in the filter language (see `kiln.tracking` docs), e.g.
                `"metrics.acc > 0.9 and params.model = 'rf'"`.
            order_by: e.g. `"metrics.acc desc"`; several keys separated by commas.
            limit: At most this many runs.
        """
        from sqlalchemy import select

        from kiln.store import _schema as s
        from kiln.tracking._filter import parse_filter, parse_order_by
        from kiln.tracking._query import compile_filter, order_clauses

        where = compile_filter(parse_filter(filter or ""), filter or "")
        keys = parse_order_by(
            order_by if isinstance(order_by, (str, type(None))) else list(order_by)
        )
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise TrackingError(f"limit must be a positive integer; got {limit!r}.")
        query = select(s.runs.c.id).select_from(
            s.runs.join(s.experiments, s.experiments.c.id == s.runs.c.experiment_id)
        )
        conds = [s.runs.c.deleted_at.is_(None), where]
        if experiment is not None:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            exp_ids = [self.experiment_id(n) for n in names]
            conds.append(s.runs.c.experiment_id.in_(exp_ids))
        query, terms = order_clauses(keys, query)
        query = query.where(*conds).order_by(*terms)
        if limit:
            query = query.limit(limit)
        with self.store.read() as conn:
            ids = list(conn.execute(query).scalars())
        return self._load_runs(ids, full=False)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for a metric, by step then time."""
        from sqlalchemy import select

        from kiln.store import _schema as s

        run_id = self.resolve_run_id(run_id)
        m = s.metrics
        with self.store.read() as conn:
            rows = conn.execute(
                select(m.c.key, m.c.value, m.c.step, m.c.timestamp)
                .where(m.c.run_id == run_id, m.c.key == key)
                .order_by(m.c.step, m.c.timestamp, m.c.id)
            ).all()
            if not rows:
                keys = list(
                    conn.execute(select(m.c.key).where(m.c.run_id == run_id).distinct()).scalars()
                )
        if not rows:
            have = f" It has: {', '.join(sorted(keys))}." if keys else " It has no metrics."
            raise TrackingError(
                f"Run {run_id[:12]} has no metric {key!r}.{did_you_mean(key, keys)}{have}"
            )
        return [Metric(k, float(v), int(st), int(ts)) for k, v, st, ts in rows]

    # ------------------------------------------------------------ maintenance
    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Delete runs and their descendants (their artifacts are freed by `gc`).

        Returns:
            The full ids deleted, children included.
        """
        from sqlalchemy import select, update

        from kiln.store import _schema as s

        todo = [self.resolve_run_id(r) for r in run_ids]
        seen: list[str] = []
        with self.store.write() as conn:
            while todo:
                seen.extend(i for i in todo if i not in seen)
                todo = [
                    c
                    for c in conn.execute(
                        select(s.runs.c.id).where(
                            s.runs.c.parent_id.in_(todo), s.runs.c.deleted_at.is_(None)
                        )
                    ).scalars()
                    if c not in seen
                ]
            conn.execute(update(s.runs).where(s.runs.c.id.in_(seen)).values(deleted_at=now_ms()))
        return seen

    def gc(self, *, dry_run: bool = False) -> dict[str, int]:
        """Purge deleted runs and experiments, then remove artifacts no run references.

        Returns:
            `runs_purged`, `blobs_removed` and `bytes_freed`.
        """
        from sqlalchemy import delete, select, update

        from kiln.store import _schema as s

        with self.store.read() as conn:
            dead = list(
                conn.execute(select(s.runs.c.id).where(s.runs.c.deleted_at.is_not(None))).scalars()
            )
            live_blobs = set(
                conn.execute(
                    select(s.artifacts.c.sha256)
                    .select_from(s.artifacts.join(s.runs, s.runs.c.id == s.artifacts.c.run_id))
                    .where(s.runs.c.deleted_at.is_(None))
                ).scalars()
            )
        if not dry_run and dead:
            with self.store.write() as conn:
                conn.execute(
                    update(s.runs).where(s.runs.c.parent_id.in_(dead)).values(parent_id=None)
                )
                for table in (
                    s.params,
                    s.metrics,
                    s.latest_metrics,
                    s.tags,
                    s.artifacts,
                    s.run_datasets,
                ):
                    for i in range(0, len(dead), 500):
                        conn.execute(delete(table).where(table.c.run_id.in_(dead[i : i + 500])))
                for i in range(0, len(dead), 500):
                    conn.execute(delete(s.runs).where(s.runs.c.id.in_(dead[i : i + 500])))
                conn.execute(
                    delete(s.experiments).where(
                        s.experiments.c.deleted_at.is_not(None),
                        ~s.experiments.c.id.in_(select(s.runs.c.experiment_id)),
                    )
                )
        removed = freed = 0
        for sha, size in list(self.artifacts.iter_digests()):
            if sha in live_blobs:
                continue
            removed += 1
            freed += size
            if not dry_run:
                # Re-check: a run may have logged this blob since we read the table.
                with self.store.read() as conn:
                    if conn.execute(
                        select(s.artifacts.c.id).where(s.artifacts.c.sha256 == sha).limit(1)
                    ).first():
                        removed -= 1
                        freed -= size
                        continue
                self.artifacts.delete(sha)
        return {"runs_purged": len(dead), "blobs_removed": removed, "bytes_freed": freed}

    def info(self) -> dict[str, Any]:
        """The store's URL, backend, schema revision, artifact root and counts."""
        from sqlalchemy import func, select

        from kiln.store import SCHEMA_REVISIONS
        from kiln.store import _schema as s

        counts: dict[str, int] = {}
        with self.store.read() as conn:
            for label, table, cond in (
                ("experiments", s.experiments, s.experiments.c.deleted_at.is_(None)),
                ("runs", s.runs, s.runs.c.deleted_at.is_(None)),
                ("deleted_runs", s.runs, s.runs.c.deleted_at.is_not(None)),
                ("metrics", s.metrics, None),
                ("artifacts", s.artifacts, None),
                ("datasets", s.datasets, None),
            ):
                q = select(func.count()).select_from(table)
                if cond is not None:
                    q = q.where(cond)
                counts[label] = int(conn.execute(q).scalar() or 0)
            size = conn.execute(select(func.coalesce(func.sum(s.artifacts.c.size), 0))).scalar()
        meta = self.store.meta()
        return {
            "url": self.store.display_url,
            "backend": self.store.dialect,
            "schema_revision": self.store.revision,
            "client_schema_revision": SCHEMA_REVISIONS[-1],
            "artifact_root": self.store.artifact_root,
            "store_id": meta.get("store_id"),
            "created_at": int(meta["created_at"]) if "created_at" in meta else None,
            "artifact_bytes": int(size or 0),
            **counts,
        }


def _clean_name(name: str) -> str:
    parts = [p for p in str(name).replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ArtifactError(
            f"Artifact name {name!r} is not a relative path inside the run (no '..', not empty)."
        )
    return "/".join(parts)


def _serialize(obj: Any, file: Path, name: str) -> None:
    if isinstance(obj, bytes):
        file.write_bytes(obj)
        return
    if isinstance(obj, str):
        file.write_text(obj, encoding="utf-8")
        return
    if isinstance(obj, (dict, list)):
        file.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
        return
    kind = type(obj).__module__.split(".")[0] + "." + type(obj).__name__
    if kind in ("pandas.DataFrame",):
        obj.to_parquet(file)
        return
    if hasattr(obj, "savefig"):  # matplotlib figure
        fmt = Path(name).suffix.lstrip(".") or "png"
        obj.savefig(file, format=fmt, bbox_inches="tight")
        return
    if hasattr(obj, "to_json") and type(obj).__module__.startswith("plotly"):
        file.write_text(obj.to_json(), encoding="utf-8")
        return
    raise ArtifactError(
        f"Cannot log a {kind} as an artifact: expected a path, bytes, text, a dict or list, "
        "a pandas DataFrame or a matplotlib figure. Save it to a file and log the path."
    )
