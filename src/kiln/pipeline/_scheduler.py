"""One pass over a pipeline: cache keys, hits, dispatch to a runner, the tracked runs.

Steps are taken in dependency order; a step is ready when every input finished. Its
key is computed from its code hash, the params it reads, its input files' and its
inputs' content hashes. A failing step skips only its dependants.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kiln._exceptions import PipelineError
from kiln.artifacts import sha256_file
from kiln.pipeline._graph import Step
from kiln.pipeline._hash import code_hash, value_digest
from kiln.pipeline._noop import step_tags
from kiln.pipeline._outputs import CacheIndex
from kiln.pipeline._project import flatten
from kiln.pipeline._record import load_project_params, save_state, step_key
from kiln.pipeline._result import PipelineResult, StepOutcome
from kiln.pipeline._signing import signed
from kiln.pipeline._state import read_state, state_dir
from kiln.tracking import configured_store, flush, get_client, param_text, start_run

if TYPE_CHECKING:
    from kiln.pipeline._runners import Runner

__all__ = ["Schedule"]

_TAG = "kiln.pipeline"


class _Pipeline(Protocol):
    """What a schedule reads of a `Pipeline` (typed so, the scheduler need not import it)."""

    name: str
    steps: dict[str, Step]

    def project_root(self) -> Path: ...

    def resolve(self, params: Mapping[str, Any]) -> dict[str, dict[str, tuple[str, str, Any]]]: ...

    def _selection(
        self, force: Iterable[str], from_step: str | None, only: Iterable[str] | None
    ) -> tuple[set[str], dict[str, str]]: ...


def _relative(path: str, root: Any) -> str:
    """A path relative to the project root when inside it (keys survive a move)."""
    import os

    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel


def _git_prefix(root: Any) -> str:
    """The project folder's path inside its git repository ("" at the top or outside git)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-prefix"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


class Schedule:
    """Everything one run (or dry run) of a pipeline needs, resolved up front."""

    def __init__(
        self,
        pipeline: _Pipeline,
        params: Mapping[str, Any] | None,
        overrides: Mapping[str, Any] | None,
        force: Iterable[str],
        from_step: str | None,
        only: Iterable[str] | None,
        no_cache: bool,
    ) -> None:
        self.p = pipeline
        self.root = pipeline.project_root()
        self.overrides = dict(overrides or {})
        self.params = load_project_params(self.root, params, self.overrides)
        self.args = pipeline.resolve(self.params)
        self.selected, self.forced = pipeline._selection(force, from_step, only)
        self.no_cache = no_cache
        self.codes = {n: code_hash(s.fn) for n, s in pipeline.steps.items()}
        folder = state_dir(self.root)
        self.cache = CacheIndex(folder / "cache")
        self.models_dir = folder / "models"
        self.prev: dict[str, Any] = (read_state(self.root) or {}).get("steps", {})
        self._file_shas: dict[str, str] = {}
        self._unsigned: set[str] = set()

    # ------------------------------------------------------------ keys
    def _file_sha(self, path: str) -> str:
        if path not in self._file_shas:
            self._file_shas[path] = sha256_file(path)[0]
        return self._file_shas[path]

    def key_parts(
        self, name: str, outcomes: Mapping[str, StepOutcome]
    ) -> tuple[str, dict[str, Any], dict[str, str], dict[str, str]]:
        """The step's key, the params it reads, its inputs' and files' hashes."""
        params: dict[str, Any] = {}
        files: dict[str, str] = {}
        inputs: dict[str, str] = {}
        for arg, (kind, key, value) in self.args[name].items():
            if kind == "param":
                params[key] = value
            elif kind == "file":
                params[key] = _relative(value, self.root)
                files[arg] = self._file_sha(value)
            elif kind == "dep":
                output = outcomes[arg].output
                assert output is not None
                inputs[arg] = output["sha"]
        key = step_key(name, self.codes[name], params, inputs, files)
        return key, params, inputs, files

    def why(
        self,
        name: str,
        key: str,
        params: Mapping[str, Any],
        inputs: Mapping[str, str],
        files: Mapping[str, str],
    ) -> str:
        """Why a step runs: forced, first run, code, a param, an input file or an input."""
        if name in self.forced:
            return self.forced[name]
        if self.no_cache:
            return "forced (--no-cache)"
        if not self.p.steps[name].cache:
            return "not cached (cache=False)"
        if name in self._unsigned:
            return "its cached output has no valid kiln signature"
        prev = self.prev.get(name)
        if not prev or not prev.get("key"):
            return "first run"
        if prev.get("code_hash") != self.codes[name]:
            return "code changed"
        old = prev.get("params") or {}
        for k in sorted(set(old) | set(params)):
            if value_digest(old.get(k)) != value_digest(params.get(k)):
                return f"param {k} changed ({old.get(k)!r} -> {params.get(k)!r})"
        old_files = prev.get("files") or {}
        for arg, sha in files.items():
            if old_files.get(arg) != sha:
                return f"input file {_relative(self.args[name][arg][2], self.root)} changed"
        old_inputs = prev.get("inputs") or {}
        for arg, sha in inputs.items():
            if old_inputs.get(arg) != sha:
                return f"input {arg!r} changed"
        if prev.get("key") == key:
            return "its cached output is missing"
        return "cache key changed"

    def lookup(self, name: str, key: str, artifacts: Any) -> dict[str, Any] | None:
        """The cache entry for `key` when its output is still stored."""
        if self.no_cache or name in self.forced or not self.p.steps[name].cache:
            return None
        entry = self.cache.get(key)
        if entry is None:
            return None
        if artifacts is not None and not artifacts.exists(entry["output"]["sha"]):
            return None
        if artifacts is not None and not signed(artifacts, entry["output"]):
            # A pickled output kiln did not sign with this store's key: never unpickled.
            self._unsigned.add(name)
            return None
        return entry

    # ------------------------------------------------------------ dry run
    def dry_run(self) -> PipelineResult:
        """Which steps would run and why; nothing runs."""
        outcomes: dict[str, StepOutcome] = {}
        for name, s in self.p.steps.items():
            later = [d for d in s.deps if outcomes[d].output is None]
            if later:
                status = "would run" if name in self.selected else "not run"
                outcomes[name] = StepOutcome(
                    name, status, reason=f"input {later[0]!r} will be recomputed first"
                )
                continue
            key, params, inputs, files = self.key_parts(name, outcomes)
            o = StepOutcome(
                name, "cached", key=key, code_hash=self.codes[name], params=params, inputs=inputs
            )
            entry = self.lookup(name, key, None)
            if entry is not None:
                o.output = entry["output"]
                o.run_id = entry.get("run_id")
            if name not in self.selected:
                o.status, o.reason = "not run", "not selected (--only)"
            elif entry is None:
                o.status, o.reason = "would run", self.why(name, key, params, inputs, files)
            outcomes[name] = o
        return PipelineResult(None, outcomes)

    # ------------------------------------------------------------ run
    def execute(
        self,
        runner: Runner,
        *,
        experiment: str,
        on_event: Callable[[StepOutcome], None] | None,
        target: str | None,
    ) -> PipelineResult:
        """Run the pipeline on `runner`; record runs, cache entries and the state file."""
        from kiln.pipeline._runners import InProcessRunner

        def emit(o: StepOutcome) -> None:
            if on_event is not None:
                on_event(o)

        client = get_client()
        artifacts = client.artifacts
        tags = {
            _TAG: self.p.name,
            f"{_TAG}.target": target or "",
            f"{_TAG}.overrides": json.dumps(self.overrides, sort_keys=True, default=repr),
            f"{_TAG}.root": str(self.root),
            f"{_TAG}.subdir": _git_prefix(self.root),
        }
        flat = {k: v for k, v in flatten(self.params).items() if k}
        outcomes: dict[str, StepOutcome] = {}
        with start_run(self.p.name, experiment=experiment, tags=tags, params=flat or None) as prun:
            if not isinstance(runner, InProcessRunner):
                flush()  # workers read the pipeline run as their parent
            pending = list(self.p.steps)
            running: dict[str, StepOutcome] = {}
            # In this process, outputs pass to dependants in memory (as well as being
            # stored); each is dropped once its last dependant has started.
            memo: dict[str, Any] | None = getattr(runner, "memo", None)
            readers = dict.fromkeys(self.p.steps, 0)
            for s in self.p.steps.values():
                for d in s.deps:
                    readers[d] += 1
            while pending or running:
                for name in list(pending):
                    if len(running) >= runner.jobs:
                        break
                    deps = self.p.steps[name].deps
                    if any(d not in outcomes for d in deps):
                        continue
                    pending.remove(name)
                    o = self._ready(name, outcomes, artifacts)
                    if o.status == "running":
                        running[name] = o
                        emit(o)
                        runner.submit(
                            name,
                            self._task(name, o, outcomes, client, prun.id),
                            self.p.steps[name].fn,
                        )
                    for d in deps:
                        readers[d] -= 1
                        done = outcomes[d].output
                        if memo is not None and readers[d] == 0 and done is not None:
                            memo.pop(done["sha"], None)
                    if o.status == "running":
                        continue
                    if o.status == "cached":
                        o.start = time.time()
                        child = start_run(
                            name, tags=self._tags(name, o, "hit"), params=o.params or None
                        )
                        child.end()
                        o.run_id, o.end = child.id, time.time()
                    outcomes[name] = o
                    emit(o)
                if running:
                    for name, res in runner.wait():
                        o = running.pop(name)
                        self._finish(o, res)
                        outcomes[name] = o
                        emit(o)
                elif pending and all(
                    any(d not in outcomes for d in self.p.steps[n].deps) for n in pending
                ):
                    raise PipelineError(f"Steps {pending} can never become ready (a kiln bug).")
            self.cache.close()
            counts = {
                s: sum(o.status == s for o in outcomes.values())
                for s in ("done", "cached", "failed")
            }
            prun.log_metrics({f"{_TAG}.steps_{k}": float(v) for k, v in counts.items()})
            failed = [n for n, o in outcomes.items() if o.status == "failed"]
            if failed:
                prun.end("failed", error="\n\n".join(outcomes[n].error or n for n in failed))
        result = PipelineResult(
            prun.id, {n: outcomes[n] for n in self.p.steps}, artifacts, self.models_dir
        )
        files = [v for a in self.args.values() for k, _, v in a.values() if k == "file"]
        files += [f for s in self.p.steps.values() for f in getattr(s.fn, "__kiln_files__", ())]
        save_state(
            self.root,
            target=target,
            overrides=self.overrides,
            result=result,
            complete=result.ok and not result.with_status("not run"),
            input_files=files,
            store=configured_store(),
            record={
                "experiment": experiment,
                "name": self.p.name,
                "tags": tags,
                "params": {k: param_text(v) for k, v in flat.items()},
            },
        )
        return result

    def _ready(self, name: str, outcomes: Mapping[str, StepOutcome], artifacts: Any) -> StepOutcome:
        s = self.p.steps[name]
        bad = [d for d in s.deps if outcomes[d].status in ("failed", "skipped")]
        if bad:
            return StepOutcome(name, "skipped", reason=f"input {bad[0]!r} failed")
        missing = [d for d in s.deps if outcomes[d].output is None]
        if missing and name not in self.selected:
            return StepOutcome(name, "not run", reason="not selected (--only)")
        if missing:
            return StepOutcome(
                name,
                "failed",
                error=f"Step {name!r} needs the output of step {missing[0]!r}, which is not in "
                "the cache. Run the pipeline once without --only first.",
            )
        key, params, inputs, files = self.key_parts(name, outcomes)
        o = StepOutcome(
            name, "running", key=key, code_hash=self.codes[name], params=params, inputs=inputs
        )
        o.files = files
        entry = self.lookup(name, key, artifacts)
        if name not in self.selected:
            o.status, o.reason = "not run", "not selected (--only)"
            o.output = entry["output"] if entry else None
        elif entry is not None:
            o.status, o.output, o.reason = "cached", entry["output"], "unchanged"
        else:
            o.reason = self.why(name, key, params, inputs, files)
        return o

    def _tags(self, name: str, o: StepOutcome, cache: str) -> dict[str, str]:
        return step_tags(
            name,
            cache,
            key=o.key,
            code=o.code_hash,
            reason=o.reason,
            inputs=o.inputs,
            output=o.output,
        )

    def _task(
        self,
        name: str,
        o: StepOutcome,
        outcomes: Mapping[str, StepOutcome],
        client: Any,
        parent_id: str,
    ) -> dict[str, Any]:
        args: dict[str, tuple[str, Any]] = {}
        for arg, (kind, _, value) in self.args[name].items():
            if kind == "dep":
                args[arg] = ("output", outcomes[arg].output)
            elif kind in ("param", "file"):
                args[arg] = (kind, value)
        return {
            "name": name,
            "ref": self.p.steps[name].ref,
            "root": str(self.root),
            "store": client.store.url,
            "parent_id": parent_id,
            "tags": self._tags(name, o, "miss"),
            "params": o.params,
            "args": args,
            "models_dir": str(self.models_dir),
        }

    def _finish(self, o: StepOutcome, res: Mapping[str, Any]) -> None:
        o.status = res["status"]
        o.run_id = res.get("run_id")
        o.output = res.get("output")
        o.error = res.get("error")
        o.start, o.end = res.get("start"), res.get("end")
        if o.status == "done" and self.p.steps[o.name].cache and o.key and o.output:
            self.cache.put(
                {
                    "key": o.key,
                    "step": o.name,
                    "code_hash": o.code_hash,
                    "params": o.params,
                    "inputs": o.inputs,
                    "files": o.files,
                    "output": o.output,
                    "run_id": o.run_id,
                    "created": time.time(),
                },
            )
