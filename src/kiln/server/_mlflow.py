"""MLflow's tracking REST API 2.0 over a kiln store: what the `mlflow` client calls.

Each endpoint is a method taking the request's fields (JSON body or query string) and
returning the JSON body of MLflow's answer; errors are `MlflowRequestError`s, which the
app answers as `{"error_code": ..., "message": ...}` as MLflow's server does.

Ids: an experiment's id is kiln's integer id as a string ("0" also names kiln's
`Default` experiment, the id MLflow's client uses when none is set); a run's id is
kiln's 32-hex run id, as MLflow's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from kiln._exceptions import (
    ExperimentNotFoundError,
    FilterSyntaxError,
    KilnError,
    NotFoundError,
    ParamConflictError,
    RunNotFoundError,
)
from kiln.server._filter import MlflowRequestError, translate_filter, translate_order_by
from kiln.tracking import DEFAULT_EXPERIMENT, Experiment, Run, TrackingClient

__all__ = ["ENDPOINTS", "MlflowApi"]

#: kiln's run statuses as MLflow's (a crashed run, one whose process died, is FAILED).
_TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
    "crashed": "FAILED",
}
_ENDED = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
_MAX_RESULTS = 50_000
#: Which experiment ids the caller may read (see kiln.server._perms).
Readable = Callable[[int], bool]


def _missing(what: str) -> MlflowRequestError:
    return MlflowRequestError(what, "RESOURCE_DOES_NOT_EXIST", 404)


def _required(body: Mapping[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise MlflowRequestError(f"Missing value for required parameter '{name}'.")
    return value


def _int(body: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MlflowRequestError(f"Parameter '{name}' must be an integer; got {value!r}.") from None


class MlflowApi:
    """The MLflow endpoints over one `TrackingClient`. Calls are serialized by a lock:
    each answers only once its writes are committed, so the client sees every error."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client
        self.lock = threading.Lock()

    # ------------------------------------------------------------ experiments
    def _experiments(self) -> dict[int, Experiment]:
        """The live experiments by id: one read of the experiments table (kiln's
        `list_experiments` also counts every experiment's runs, which a run's JSON does not
        need)."""
        from sqlalchemy import select

        from kiln.store import schema as s

        e = s.experiments
        self.client.flush()
        with self.client.store.read() as conn:
            rows = conn.execute(
                select(e.c.id, e.c.name, e.c.created_at).where(e.c.deleted_at.is_(None))
            ).all()
        return {int(i): Experiment(int(i), n, int(c)) for i, n, c in rows}

    def _experiment(self, experiment_id: Any) -> Experiment:
        text = str(experiment_id)
        if text == "0":
            name = DEFAULT_EXPERIMENT
            self.client.experiment_id(name, create=True)
            return next(e for e in self._experiments().values() if e.name == name)
        try:
            found = self._experiments().get(int(text))
        except ValueError:
            found = None
        if found is None:
            raise _missing(f"No experiment with id {text!r} in this kiln store.")
        return found

    @staticmethod
    def _experiment_json(e: Experiment) -> dict[str, Any]:
        return {
            "experiment_id": str(e.id),
            "name": e.name,
            "artifact_location": f"mlflow-artifacts:/{e.id}",
            "lifecycle_stage": "active",
            "creation_time": e.created_at,
            "last_update_time": e.created_at,
            "tags": [],
        }

    def create_experiment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _required(body, "name")
        if body.get("artifact_location"):
            raise MlflowRequestError(
                "kiln keeps artifacts in its store's artifact root; an experiment cannot "
                "name its own artifact_location. Leave it out."
            )
        if body.get("tags"):
            raise MlflowRequestError("kiln experiments have no tags yet; leave tags out.")
        if name in {e.name for e in self._experiments().values()}:
            raise MlflowRequestError(
                f"Experiment(name={name}) already exists.", "RESOURCE_ALREADY_EXISTS"
            )
        return {"experiment_id": str(self.client.experiment_id(name, create=True))}

    def get_experiment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "experiment": self._experiment_json(self._experiment(_required(body, "experiment_id")))
        }

    def get_experiment_by_name(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _required(body, "experiment_name")
        for e in self._experiments().values():
            if e.name == name:
                return {"experiment": self._experiment_json(e)}
        raise _missing(f"Could not find experiment with name '{name}'.")

    def search_experiments(
        self, body: Mapping[str, Any], readable: Readable | None = None
    ) -> dict[str, Any]:
        if body.get("view_type", "ACTIVE_ONLY") not in ("ACTIVE_ONLY", 1, "1"):
            raise MlflowRequestError(
                "kiln's MLflow API lists live experiments only (view_type ACTIVE_ONLY)."
            )
        name_filter = _experiment_filter(body.get("filter"))
        if body.get("order_by"):
            raise MlflowRequestError("kiln's MLflow API cannot order experiments yet.")
        found = [
            e
            for e in self._experiments().values()
            if name_filter(e.name) and (readable is None or readable(e.id))
        ]
        found.sort(key=lambda e: -e.id)  # MLflow: newest first
        start = _int(body, "page_token", 0) or 0
        size = _int(body, "max_results", 1000) or 1000
        page = found[start : start + size]
        out: dict[str, Any] = {"experiments": [self._experiment_json(e) for e in page]}
        if start + size < len(found):
            out["next_page_token"] = str(start + size)
        return out

    # ------------------------------------------------------------------- runs
    def _run_id(self, run_id: Any) -> str:
        """`run_id`, checked to be a live run's whole id (MLflow knows no prefixes, and no
        'latest')."""
        run_id = str(run_id)
        try:
            full = self.client.resolve_run_id(run_id)
        except NotFoundError:
            full = None
        if full != run_id:
            raise _missing(f"Run '{run_id}' not found.")
        return run_id

    def _run(self, run_id: Any) -> Run:
        return self.client.get_run(self._run_id(run_id))

    def _latest(self, runs: list[Run]) -> dict[str, dict[str, tuple[float, int, int]]]:
        """Each run's latest metric values with their step and timestamp."""
        from sqlalchemy import select

        from kiln.store import schema as s

        m = s.latest_metrics
        out: dict[str, dict[str, tuple[float, int, int]]] = {r.id: {} for r in runs}
        ids = list(out)
        with self.client.store.read() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(
                    select(m.c.run_id, m.c.key, m.c.value, m.c.step, m.c.timestamp).where(
                        m.c.run_id.in_(ids[start : start + 500])
                    )
                )
                for run_id, key, value, step, ts in rows:
                    out[run_id][key] = (float(value), int(step), int(ts))
        return out

    def _run_json(
        self, run: Run, experiment_ids: dict[str, int], latest: dict[str, tuple[float, int, int]]
    ) -> dict[str, Any]:
        exp_id = str(experiment_ids.get(run.experiment, ""))
        tags = dict(run.tags)
        tags.setdefault("mlflow.runName", run.name)
        if run.parent_id:
            tags.setdefault("mlflow.parentRunId", run.parent_id)
        return {
            "info": self._info_json(run, exp_id),
            "data": {
                "metrics": [
                    {"key": k, "value": v, "step": step, "timestamp": ts}
                    for k, (v, step, ts) in sorted(latest.items())
                ],
                "params": [{"key": k, "value": v} for k, v in sorted(run.params.items())],
                "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
            },
            "inputs": {},
        }

    @staticmethod
    def _info_json(run: Run, exp_id: str) -> dict[str, Any]:
        info = {
            "run_id": run.id,
            "run_uuid": run.id,
            "run_name": run.name,
            "experiment_id": exp_id,
            "user_id": str(run.environment.get("user") or ""),
            "status": _TO_MLFLOW.get(run.status, "FAILED"),
            "start_time": run.start_time,
            "artifact_uri": f"mlflow-artifacts:/{exp_id}/{run.id}/artifacts",
            "lifecycle_stage": "active",
        }
        if run.end_time is not None:
            info["end_time"] = run.end_time
        return info

    def _exp_ids(self) -> dict[str, int]:
        return {e.name: e.id for e in self._experiments().values()}

    def create_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        experiment = self._experiment(body.get("experiment_id") or "0")
        tags = {t["key"]: t.get("value", "") for t in body.get("tags") or []}
        name = body.get("run_name") or tags.get("mlflow.runName") or None
        environment = {
            "user": tags.get("mlflow.user") or body.get("user_id") or None,
            "git_commit": tags.get("mlflow.source.git.commit"),
            "entry_point": tags.get("mlflow.source.name"),
        }
        parent = tags.get("mlflow.parentRunId")
        run_id = self.client.create_run(
            experiment=experiment.name,
            name=name,
            parent_id=str(parent) if parent else None,
            tags=tags or None,
            environment={k: v for k, v in environment.items() if v},
        )
        self.client.flush()
        return {"run": self._run_json(self.client.get_run(run_id), self._exp_ids(), {})}

    def get_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run = self._run(body.get("run_id") or _required(body, "run_uuid"))
        return {"run": self._run_json(run, self._exp_ids(), self._latest([run])[run.id])}

    def update_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run = self._run(body.get("run_id") or _required(body, "run_uuid"))
        new_name = body.get("run_name")
        if new_name and new_name != run.name:
            raise MlflowRequestError(
                f"kiln cannot rename runs yet: run {run.id} is called {run.name!r}; "
                f"{new_name!r} was asked for."
            )
        status = body.get("status")
        if status in _ENDED:
            self.client.end_run(run.id, _ENDED[status])
            self.client.flush()
            run = self.client.get_run(run.id)
        elif status not in (None, "", "RUNNING") or (
            status == "RUNNING" and run.status != "running"
        ):
            raise MlflowRequestError(
                f"kiln cannot set run {run.id} to {status!r} (it is {run.status}); a run "
                "ends as FINISHED, FAILED or KILLED, once."
            )
        return {"run_info": self._info_json(run, str(self._exp_ids().get(run.experiment, "")))}

    def delete_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.client.delete_runs([self._run_id(_required(body, "run_id"))])
        return {}

    def search_runs(
        self, body: Mapping[str, Any], readable: Readable | None = None
    ) -> dict[str, Any]:
        if body.get("run_view_type", "ACTIVE_ONLY") not in ("ACTIVE_ONLY", 1, "1"):
            raise MlflowRequestError(
                "kiln's MLflow API searches live runs only (run_view_type ACTIVE_ONLY); "
                "deleted runs are not kept for restoring."
            )
        ids = body.get("experiment_ids") or []
        names = [self._experiment(i).name for i in ids] if ids else None
        if readable is not None:  # only what the user can read; the rest is not there
            live = self._experiments().values()
            allowed = {e.name for e in live if readable(e.id)}
            names = [n for n in names if n in allowed] if names is not None else sorted(allowed)
            if not names:
                return {"runs": []}
        limit = _int(body, "max_results", 1000) or 1000
        if not 1 <= limit <= _MAX_RESULTS:
            raise MlflowRequestError(
                f"max_results must be between 1 and {_MAX_RESULTS}; got {limit}."
            )
        kiln_filter = translate_filter(body.get("filter"))
        order_by = translate_order_by(list(body.get("order_by") or []))
        try:
            runs, cursor = self.client.search_runs_page(
                names, kiln_filter, order_by, limit, after=body.get("page_token") or None
            )
        except FilterSyntaxError as exc:
            raise MlflowRequestError(
                f"{exc} (the filter {body.get('filter')!r} read as kiln's {kiln_filter!r})"
            ) from exc
        exp_ids = self._exp_ids()
        latest = self._latest(runs)
        out: dict[str, Any] = {"runs": [self._run_json(r, exp_ids, latest[r.id]) for r in runs]}
        if cursor:
            out["next_page_token"] = cursor
        return out

    # ---------------------------------------------------------------- logging
    def log_metric(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(body.get("run_id") or _required(body, "run_uuid"))
        key = _required(body, "key")
        value = _required(body, "value")
        self.client.log_metric(
            run_id, key, float(value), _int(body, "step", 0), _int(body, "timestamp")
        )
        self.client.flush()
        return {}

    def log_param(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(body.get("run_id") or _required(body, "run_uuid"))
        self.client.log_params(run_id, {_required(body, "key"): body.get("value", "")})
        self.client.flush()
        return {}

    def set_tag(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(body.get("run_id") or _required(body, "run_uuid"))
        self.client.set_tags(run_id, {_required(body, "key"): body.get("value", "")})
        self.client.flush()
        return {}

    def log_batch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(_required(body, "run_id"))
        params = {p["key"]: p.get("value", "") for p in body.get("params") or []}
        tags = {t["key"]: t.get("value", "") for t in body.get("tags") or []}
        metrics = [
            (m["key"], float(m["value"]), _int(m, "step", 0), _int(m, "timestamp"))
            for m in body.get("metrics") or []
        ]
        if params:
            self.client.log_params(run_id, params)
        if metrics:
            self.client.log_metrics(run_id, metrics)
        if tags:
            self.client.set_tags(run_id, tags)
        self.client.flush()
        return {}

    def get_metric_history(self, body: Mapping[str, Any]) -> dict[str, Any]:
        run = self._run(body.get("run_id") or _required(body, "run_uuid"))
        key = _required(body, "metric_key")
        if key not in self._latest([run])[run.id]:
            return {"metrics": []}
        history = self.client.metric_history(run.id, key)
        start = _int(body, "page_token", 0) or 0
        size = _int(body, "max_results", len(history) or 1) or len(history)
        page = history[start : start + size]
        out: dict[str, Any] = {
            "metrics": [
                {"key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp}
                for m in page
            ]
        }
        if start + size < len(history):
            out["next_page_token"] = str(start + size)
        return out

    def search_logged_models(
        self, body: Mapping[str, Any], *, readable: Readable | None = None
    ) -> dict[str, Any]:
        """None: kiln keeps no MLflow 3 logged models. MLflow's client searches them when
        it lists a run's artifact folder (a model of that name would be listed too)."""
        return {"models": []}

    # ------------------------------------------------------------- dispatch
    def call(
        self, name: str, body: Mapping[str, Any], *, readable: Readable | None = None
    ) -> dict[str, Any]:
        """Run endpoint `name` on `body`, with kiln's errors as MLflow's.

        Args:
            name: The endpoint's name (a value of `ENDPOINTS`).
            body: The request's fields.
            readable: For a search, which experiment ids the caller may read (None: all).
        """
        extra = {} if readable is None else {"readable": readable}
        with self.lock:
            try:
                result: dict[str, Any] = getattr(self, name)(body, **extra)
                return result
            except MlflowRequestError:
                raise
            except (RunNotFoundError, ExperimentNotFoundError) as exc:
                raise _missing(str(exc)) from exc
            except ParamConflictError as exc:
                raise MlflowRequestError(str(exc)) from exc
            except (KilnError, KeyError, TypeError, ValueError) as exc:
                raise MlflowRequestError(f"{type(exc).__name__}: {exc}") from exc


def _experiment_filter(text: Any) -> Callable[[str], bool]:
    """`name = 'x'`, `name != 'x'`, `name LIKE 'x%'`, `name ILIKE 'x%'`, or nothing."""
    import fnmatch
    import re

    if not text or not str(text).strip():
        return lambda _name: True
    m = re.fullmatch(
        r"\s*(?:attributes\.)?name\s*(=|!=|LIKE|ILIKE)\s*(['\"])(.*)\2\s*",
        str(text),
        re.IGNORECASE,
    )
    if m is None:
        raise MlflowRequestError(
            f"kiln's MLflow API filters experiments only by name (name = 'x', name LIKE "
            f"'x%'); got {text!r}."
        )
    op, value = m.group(1).upper(), m.group(3)
    if op == "=":
        return lambda name: name == value
    if op == "!=":
        return lambda name: name != value
    pattern = fnmatch.translate(value.replace("%", "*").replace("_", "?"))
    flags = re.IGNORECASE if op == "ILIKE" else 0
    compiled = re.compile(pattern, flags)
    return lambda name: compiled.match(name) is not None


#: (HTTP method, path under /api/2.0/mlflow/) -> MlflowApi method.
ENDPOINTS: dict[tuple[str, str], str] = {
    ("POST", "experiments/create"): "create_experiment",
    ("GET", "experiments/get"): "get_experiment",
    ("GET", "experiments/get-by-name"): "get_experiment_by_name",
    ("POST", "experiments/search"): "search_experiments",
    ("GET", "experiments/search"): "search_experiments",
    ("POST", "runs/create"): "create_run",
    ("GET", "runs/get"): "get_run",
    ("POST", "runs/update"): "update_run",
    ("POST", "runs/delete"): "delete_run",
    ("POST", "runs/search"): "search_runs",
    ("POST", "runs/log-metric"): "log_metric",
    ("POST", "runs/log-parameter"): "log_param",
    ("POST", "runs/set-tag"): "set_tag",
    ("POST", "runs/log-batch"): "log_batch",
    ("GET", "metrics/get-history"): "get_metric_history",
    ("POST", "logged-models/search"): "search_logged_models",
}
