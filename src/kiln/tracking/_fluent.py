"""The module-level tracking API: `kiln.start_run`, `kiln.log_metric`, `kiln.runs`, ...

One process-wide stack of active runs: a run started inside another becomes its child.
The store is chosen by `kiln.configure(store=...)`, else `KILN_STORE`, else the embedded
default. A logging call made outside any run starts one (as MLflow's fluent API does).
Runs started without `with` are ended at interpreter exit: `failed` (with the traceback)
when a script ends on an uncaught exception, `killed` on Ctrl-C, else `finished`.

A process started on behalf of a run (a notebook kernel run by `kiln notebook run`) gets
the run's id in `KILN_RUN_ID`: with no run of its own active, its logging calls attach to
that run, and its first `start_run()` joins it (a notebook written for plain Jupyter,
`with kiln.start_run(): ...`, logs to the notebook's run); this process never ends that
run (its owner does).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kiln._exceptions import NoActiveRunError, TrackingError
from kiln._settings import get_setting

if TYPE_CHECKING:
    import pandas as pd

    from kiln.tracking._client import TrackingClient
    from kiln.tracking._records import ArtifactInfo, DatasetInfo, Metric, Run

__all__ = [
    "ActiveRun",
    "active_run",
    "configure",
    "end_run",
    "flush",
    "get_client",
    "get_run",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "metric_history",
    "runs",
    "set_tag",
    "set_tags",
    "start_run",
]

_lock = threading.RLock()
_stack: list[ActiveRun] = []
_store: str | None = None
_client: TrackingClient | None = None
_client_pid: int | None = None


def configure(store: str | os.PathLike[str] | None = None) -> None:
    """Choose the store the module-level API uses in this process.

    Args:
        store: A store URL or path; None goes back to `KILN_STORE` or the embedded default.
    """
    global _store, _client
    with _lock:
        if _stack:
            raise TrackingError("Cannot change the store while a run is active; end the run first.")
        _store = os.fspath(store) if store is not None else None
        _client = None


def configured_store() -> str | None:
    """The store URL or path chosen by `configure()` in this process (None: the default)."""
    return _store


def get_client() -> TrackingClient:
    """The `TrackingClient` behind the module-level API (opened on first use)."""
    global _client, _client_pid
    with _lock:
        if _client is None or _client_pid != os.getpid():
            from kiln.tracking._client import TrackingClient

            _client = TrackingClient(_store)
            _client_pid = os.getpid()
        return _client


class ActiveRun:
    """A run in progress; a context manager that ends it.

    On a normal exit the run is `finished`; on an exception `failed`, with the traceback
    recorded; on Ctrl-C `killed`. The exception is never swallowed.

    Attributes:
        id: The run id.
        name: The run's name.
        experiment: The experiment's name.
        parent_id: The parent run's id, for a nested run.
    """

    def __init__(
        self, client: TrackingClient, run_id: str, name: str, experiment: str, parent_id: str | None
    ) -> None:
        self.client = client
        self.id = run_id
        self.name = name
        self.experiment = experiment
        self.parent_id = parent_id
        self.ended = False
        self._pid = os.getpid()  # a forked child inherits the stack, not the run
        self._sampled = False
        self._attached = False  # a run of another process (KILN_RUN_ID): never ended here
        self._joined = False  # an attached run that start_run() returned, until it "ends"

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id[:12]} {self.name!r} experiment={self.experiment!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("finished")  # raises when the store cannot take the run's records
            return
        try:
            if issubclass(exc_type, KeyboardInterrupt):
                self.end("killed", error="KeyboardInterrupt")
            else:
                self.end("failed", error="".join(traceback.format_exception(exc_type, exc, tb)))
        except TrackingError:
            # The block's own exception is the one to see; the records stay queued and
            # what is still unwritten at exit is saved for recovery (exit status 1).
            pass

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """End the run (and any runs nested in it that are still active)."""
        if status not in ("finished", "failed", "killed"):
            # Refuse before popping the stack: the run must stay active and endable.
            raise TrackingError(f"A run ends as finished, failed or killed; got {status!r}.")
        failure: TrackingError | None = None
        with _lock:
            if self.ended:
                return
            if self._attached:
                # Its owner ends it; the runs this process nested in it end here.
                self._joined = False
                while self in _stack and _stack[-1] is not self:
                    _stack[-1].end(status)
                return
            while self in _stack:
                top = _stack.pop()
                top.ended = True
                if top._sampled:
                    from kiln.tracking._sysmetrics import unwatch

                    unwatch(top.id)
                try:
                    top.client.end_run(top.id, status, error if top is self else None)
                except TrackingError as exc:  # the store is failing: end them all, then say so
                    failure = failure or exc
        if failure is not None:
            raise failure

    # The same logging calls as the module-level API, bound to this run.
    def log_param(self, key: str, value: Any) -> None:
        """Record one param on this run."""
        self.client.log_params(self.id, {key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params on this run."""
        self.client.log_params(self.id, params)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record one metric value on this run."""
        self.client.log_metric(self.id, key, value, step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metric values (at one step) on this run."""
        _check_mapping(metrics, "log_metrics")
        self.client.log_metrics(self.id, [(k, v, step, None) for k, v in metrics.items()])

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag on this run."""
        self.client.set_tags(self.id, {key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags on this run."""
        self.client.set_tags(self.id, tags)

    def log_artifact(self, obj: Any, name: str | None = None) -> list[ArtifactInfo]:
        """Store a file, folder or object as artifacts of this run."""
        return self.client.log_artifact(self.id, obj, name)

    def log_text(self, text: str, name: str) -> ArtifactInfo:
        """Store a string as a text artifact of this run."""
        return self.client.log_text(self.id, text, name)

    def log_dataset(self, data: Any, role: str = "train", **kwargs: Any) -> DatasetInfo:
        """Record a dataset read (or, with `direction="output"`, written) by this run."""
        return self.client.log_dataset(self.id, data, role=role, **kwargs)

    def info(self) -> Run:
        """A snapshot of this run as stored so far."""
        return self.client.get_run(self.id)


def _check_mapping(value: Any, fn: str) -> None:
    if not isinstance(value, Mapping):
        raise TrackingError(f"{fn} expects a dict of name -> value; got {type(value).__name__}.")


def start_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: str | None = None,
    system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run and make it the active one; use it as a context manager.

    ```python
    with kiln.start_run(experiment="churn", params={"alpha": 0.1}) as run:
        kiln.log_metric("auc", 0.91)
    ```

    In a process started for a run (`KILN_RUN_ID`, as in a notebook under `kiln notebook
    run`), the first `start_run()` joins that run instead: what the block logs lands on
    it, its name and experiment stay as its owner made them, and leaving the block does
    not end it (its owner does). A `start_run()` inside the joined block makes a child.

    Args:
        name: A human name (a memorable one is made up when omitted).
        experiment: The experiment, created on first use. Nested runs default to the
            parent's experiment; others to "Default".
        params: Params to record at once.
        tags: Tags to set at once.
        parent: The parent run id. By default a run started while another is active
            is nested in it.
        system_metrics: Sample CPU, memory and GPU use into `system/*` metrics, every
            `KILN_SYSTEM_METRICS_INTERVAL` seconds from 5 seconds in (so short runs record
            none). Default: `KILN_SYSTEM_METRICS` (on) for top-level runs.

    Returns:
        The `ActiveRun`.
    """
    from kiln.tracking._client import DEFAULT_EXPERIMENT, new_run_name
    from kiln.tracking._env import capture_environment

    client = get_client()
    attached = _attach()
    with _lock:
        if (
            parent is None
            and attached is not None
            and attached._attached
            and not attached._joined
            and _stack == [attached]
        ):
            # In a process run for a run (a notebook under `kiln notebook run`): join it.
            attached._joined = True
            if tags:
                client.set_tags(attached.id, tags)
            if params:
                client.log_params(attached.id, params)
            return attached
        parent_run = _stack[-1] if _stack else None
        if parent is not None:
            parent_id: str | None = client.resolve_run_id(parent)
        else:
            parent_id = parent_run.id if parent_run else None
        if experiment is None:
            if parent is not None:
                experiment = client.get_run(parent).experiment
            elif parent_run is not None:
                experiment = parent_run.experiment
            else:
                experiment = DEFAULT_EXPERIMENT
        name = name or new_run_name()
        environment = capture_environment(
            packages=parent_id is None and bool(get_setting("capture_packages")),
            git=parent_id is None,
        )
        run_id = client.create_run(
            experiment=experiment,
            name=name,
            parent_id=parent_id,
            tags=tags,
            environment=environment,
        )
        run = ActiveRun(client, run_id, name, experiment, parent_id)
        _stack.append(run)
    if system_metrics is None:
        system_metrics = parent_id is None and bool(get_setting("system_metrics"))
    if system_metrics:
        _sample(client, run_id)
        run._sampled = True
    if params:
        try:
            client.log_params(run_id, params)
        except BaseException:
            run.end("failed", error="The params given to start_run were refused.")
            raise
    return run


def _sample(client: TrackingClient, run_id: str) -> None:
    from kiln.tracking._sysmetrics import watch

    def emit(values: dict[str, float], step: int) -> None:
        client.log_metrics(run_id, [(k, v, step, None) for k, v in values.items()])

    watch(run_id, emit, every=float(get_setting("system_metrics_interval")))


def flush() -> None:
    """Write everything logged so far to the store before returning.

    Logging calls return at once and a background thread writes within
    `KILN_FLUSH_INTERVAL` seconds; a run's end, reads, and interpreter exit flush too.
    Call this before handing a run id to another process that reads it.
    """
    from kiln.tracking._writer import flush_all

    if _client is not None:
        _client.flush()
    flush_all()


def active_run() -> ActiveRun | None:
    """The innermost active run (or the run named by `KILN_RUN_ID`), or None."""
    with _lock:
        return _stack[-1] if _stack else _attach()


def _attach() -> ActiveRun | None:
    """With no run active, adopt the run named by `KILN_RUN_ID`, if any, as the active one.

    Its writes are queued like this process's own (flushed at exit and by `kiln.flush()`);
    it is never ended here.
    """
    run_id = get_setting("run_id")
    if not run_id:
        return None
    with _lock:
        if _stack:
            return _stack[-1]
        from kiln.tracking._client import _OwnRun

        client = get_client()
        info = client.get_run(run_id)
        client._own[info.id] = _OwnRun(info.experiment)
        run = ActiveRun(client, info.id, info.name, info.experiment, info.parent_id)
        run._attached = True
        _stack.append(run)
        return run


def end_run(status: str = "finished") -> None:
    """End the innermost active run (for runs started without `with`).

    A run this process attached to or joined (`KILN_RUN_ID`) is left to its owner: only
    the runs nested in it end.
    """
    run = active_run()
    if run is None:
        raise NoActiveRunError("kiln.end_run() was called, but no run is active.")
    run.end(status)


def _active(fn: str) -> ActiveRun:
    """The run a logging call `fn` logs to: the active one, else one started now."""
    try:
        return _stack[-1]  # a list read is atomic: no lock on the logging hot path
    except IndexError:
        pass
    attached = _attach()
    if attached is not None:
        return attached
    with _lock:
        if _stack:  # another thread started one meanwhile
            return _stack[-1]
        # As MLflow's fluent API does: a run in the default experiment, ended at exit.
        return start_run()


def log_param(key: str, value: Any) -> None:
    """Record a param (an input of the run; it cannot change once logged).

    This and the other logging calls (`log_params`, `log_metric`, `log_metrics`,
    `set_tag`, `set_tags`, `log_artifact`, `log_text`, `log_dataset`, `kiln.record`) log
    to the active run; outside any run they start one (in the default experiment), which
    stays active until `kiln.end_run()` or interpreter exit (see `start_run`).
    """
    _active("log_param").log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Record several params."""
    _active("log_params").log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record a metric value; without `step`, the key's series continues (0, 1, 2, ...)."""
    run = _stack[-1] if _stack else _active("log_metric")
    run.client.log_metric(run.id, key, value, step)  # the hot path: no extra call layer


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Record several metric values at one step."""
    _active("log_metrics").log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    """Set a tag (tags, unlike params, may change)."""
    _active("set_tag").set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags."""
    _active("set_tags").set_tags(tags)


def log_artifact(obj: Any, name: str | None = None) -> list[ArtifactInfo]:
    """Store a file, a folder, or (with `name`) bytes, a dict, a DataFrame or a figure."""
    return _active("log_artifact").log_artifact(obj, name)


def log_text(text: str, name: str) -> ArtifactInfo:
    """Store a string as a text artifact."""
    return _active("log_text").log_text(text, name)


def log_dataset(
    data: Any,
    role: str = "train",
    *,
    name: str | None = None,
    source: str | None = None,
    direction: str = "input",
) -> DatasetInfo:
    """Record a dataset's fingerprint, schema and summary statistics with the active run.

    Args:
        data: A pandas DataFrame or Series, a numpy array or a dict of columns.
        role: What the run used it for: train, test, validation, ...
        name: A human name for the dataset.
        source: Where it came from (a path or URL).
        direction: "input" (read by the run) or "output" (written by it).
    """
    return _active("log_dataset").log_dataset(
        data, role, name=name, source=source, direction=direction
    )


def get_run(run_id: str) -> Run:
    """A run with its params, metrics, tags, datasets, artifacts and environment.

    Args:
        run_id: The id or a unique prefix of it.
    """
    return get_client().get_run(run_id)


def metric_history(run_id: str, key: str) -> list[Metric]:
    """Every value logged for one metric of a run, in step order."""
    return get_client().metric_history(run_id, key)


def runs(
    experiment: str | list[str] | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
    *,
    children: bool = False,
) -> pd.DataFrame:
    """Runs as a pandas DataFrame, one row per run.

    Columns: run_id, experiment, name, status, start_time, end_time, duration, parent_id,
    user, git_commit, then `params.*`, `metrics.*` (latest values) and `tags.*`.

    ```python
    kiln.runs(experiment="churn", filter="metrics.acc > 0.9 and params.model = 'rf'",
              order_by="metrics.acc desc", limit=100)
    ```

    The runs people started: child runs (pipeline steps, sweep trials, grid-search
    candidates) only with `children=True` or a filter on `parent_id`. A pipeline run's
    steps' metrics are rolled up into it as `metrics.<step>.<metric>` (shown, not
    filterable: filter the step runs for that).
    """
    import pandas as pd

    from kiln.tracking._reads import no_gc
    from kiln.tracking._scope import scoped_filter

    client = get_client()
    with no_gc():
        found = client.search_runs(experiment, scoped_filter(filter, children), order_by, limit)
        return _runs_frame(pd, client.with_step_metrics(found))


def _runs_frame(pd: Any, found: list[Run]) -> pd.DataFrame:
    base = [
        "run_id",
        "experiment",
        "name",
        "status",
        "start_time",
        "end_time",
        "duration",
        "parent_id",
        "user",
        "git_commit",
    ]
    if not found:
        return pd.DataFrame(columns=base)
    # Built column by column: a DataFrame from one dict per run costs more than the search.
    columns: dict[str, Any] = {
        "run_id": [r.id for r in found],
        "experiment": [r.experiment for r in found],
        "name": [r.name for r in found],
        "status": [r.status for r in found],
        "start_time": _times([r.start_time for r in found], pd),
        "end_time": _times([r.end_time for r in found], pd),
        "duration": [r.duration for r in found],
        "parent_id": [r.parent_id for r in found],
        "user": [r.environment.get("user") for r in found],
        "git_commit": [r.environment.get("git_commit") for r in found],
    }
    for prefix, attr in (("params", "params"), ("metrics", "metrics"), ("tags", "tags")):
        values = [getattr(r, attr) for r in found]
        keys = sorted({k for v in values for k in v})
        missing = float("nan") if attr == "metrics" else None
        for key in keys:
            columns[f"{prefix}.{key}"] = [v.get(key, missing) for v in values]
    return pd.DataFrame(columns)


def _times(ms: list[int | None], pd: Any) -> Any:
    """Epoch milliseconds (None for missing) as a UTC datetime column."""
    return pd.to_datetime(pd.array(ms, dtype="Int64"), unit="ms", utc=True)


def _exit_status() -> tuple[str, str | None]:
    """How this process is ending: `finished`, or `failed`/`killed` (and the traceback)
    when a script ends on an uncaught exception. The interpreter keeps that exception in
    `sys.last_value` before exit; an interactive session or a Jupyter kernel keeps the
    last one shown at the prompt there, which does not end the process: not a failure."""
    exc = getattr(sys, "last_value", None)
    if exc is None or hasattr(sys, "ps1"):
        return "finished", None
    ipython = sys.modules.get("IPython")
    if ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None:
        return "finished", None
    if isinstance(exc, KeyboardInterrupt):
        return "killed", "KeyboardInterrupt"
    return "failed", "".join(traceback.format_exception(exc))


def _end_runs_at_exit() -> None:
    """End the runs still open (as `_exit_status` says), queuing their ends; never raises."""
    status, error = _exit_status() if _stack else ("finished", None)
    with _lock:
        while _stack:
            run = _stack[-1]
            if run._pid != os.getpid() or run._attached:
                # Inherited through fork, or attached: its owner ends it.
                _stack.pop()
                continue
            try:
                run.end(status, error)
            except Exception:  # noqa: BLE001 - never fail interpreter exit
                if _stack and _stack[-1] is run:
                    _stack.pop()


@atexit.register
def _end_open_runs() -> None:
    _end_runs_at_exit()
    # The writers' own exit flush may already have run (atexit runs handlers in reverse
    # order of registration): write the ends just queued now.
    try:
        flush()
    except Exception as exc:  # noqa: BLE001 - report, never fail interpreter exit
        print(f"kiln: {exc}", file=sys.stderr)
