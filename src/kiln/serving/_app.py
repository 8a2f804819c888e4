"""The ASGI app: a plain Starlette app with orjson on the request path.

Every error, on every endpoint, has one JSON shape (`error_body`):

```json
{"error": "...", "error_code": "INVALID_PARAMETER_VALUE", "message": "...",
 "errors": [{"column": "age", "problem": "type", "expected": "...", "found": "...",
             "rows": [0], "count": 1}],
 "request_id": "..."}
```

`error` is what Open Inference (V2) clients read, `error_code` and `message` what MLflow
clients read, and `errors` names each bad column and why. Bodies are never echoed
whole (`kiln.serving._errors` bounds every string) and stack traces never leave the
server.

A body without a Content-Type is read as JSON (Open Inference clients such as
`tritonclient.http` send none); an explicit non-JSON type is answered 415. Bodies over
`PARSE_INLINE` bytes are decoded, parsed and validated on a worker thread, so health
probes and small requests keep answering while large ones are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from kiln.serving._batcher import Batcher, Overloaded
from kiln.serving._config import ServeConfig
from kiln.serving._errors import CODES as _CODES
from kiln.serving._errors import clip, error_body
from kiln.serving._metrics import Metrics
from kiln.serving._openapi import docs_page, openapi
from kiln.serving._predlog import PredictionLog
from kiln.serving._protocols import (
    RequestError,
    parse_csv,
    parse_predict,
    parse_v2,
    v2_datatype,
    v2_outputs,
)
from kiln.serving._runtime import Entry, Holder, load_entry, predict_frame
from kiln.serving._threads import limit_pools, pool_sizes, set_n_jobs

if TYPE_CHECKING:
    import os

    import pandas as pd

    from kiln.models import Model
    from kiln.serving._types import Endpoint, Handler, Problems

__all__ = ["ServeConfig", "create_app", "error_body"]

log = logging.getLogger("kiln.serving")
_PUBLIC = frozenset({"health", "ready", "v2_live", "v2_ready"})
PARSE_INLINE = 64 * 1024  # bytes; larger bodies are parsed and validated on a thread
T = TypeVar("T")


class Valid(NamedTuple):
    """Input the validator accepted: the frame to predict, and the drift let through."""

    frame: pd.DataFrame
    warnings: Problems


class Problem(Exception):
    """An error answer: status, code, message, field errors, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.code = code or _CODES.get(status, "ERROR")
        self.headers = headers or {}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(data, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status, headers, media_type="application/json")


def _problem_response(p: Problem, rid: str) -> Response:
    return _json(error_body(p.message, p.code, p.errors, rid), p.status, p.headers)


def _tolist(values: Any) -> Any:
    return values.tolist() if hasattr(values, "tolist") else list(values)


class _Server:
    """The state and endpoints of one app."""

    def __init__(self, uri: str | os.PathLike[str] | Model, config: ServeConfig) -> None:
        from kiln.models import Model

        self.config = config
        entry = load_entry(
            uri,
            store=config.store,
            validation=config.validation,
            trust_pickle=config.trust_pickle,
            device=config.device,
        )
        if config.model_threads is not None:
            set_n_jobs(entry.model, config.model_threads)
            limit_pools(config.model_threads)  # for this worker process, kept
        self.uri = uri if isinstance(uri, str) else getattr(uri, "source_uri_", "in-memory")
        if isinstance(uri, Model):
            self.uri = "in-memory"
        self.name = _model_name(self.uri)
        self.holder = Holder(
            self.uri,
            entry,
            store=config.store,
            interval=config.reload_interval,
            validation=config.validation,
            on_swap=self._swapped,
            trust_pickle=config.trust_pickle,
            device=config.device,
            threads=config.model_threads,
        )
        self.batcher = Batcher(
            predict_frame,
            max_batch=config.max_batch,
            max_wait=config.max_wait_ms / 1000,
            max_queue=config.max_queue,
            observe=self._observe,
        )
        self.metrics = Metrics(lambda: self.batcher.depth)
        self.metrics.version(None, entry.version)
        self.metrics.threads(pool_sizes(entry.model))
        self.predlog = PredictionLog(
            self.uri, config.log_rate, store=config.store, flush_seconds=config.log_flush_seconds
        )
        self.ready = False
        self._docs: dict[str, Any] = {}
        self._warnings = contextlib.ExitStack()

    def _swapped(self, old: str, new: str) -> None:
        self.metrics.swaps.inc()
        self.metrics.version(old, new)
        self.metrics.threads(pool_sizes(self.holder.current.model))

    def _observe(self, size: int, depth: int) -> None:
        self.metrics.batch.observe(size)

    # ---------------------------------------------------------------- plumbing
    def wrap(self, name: str, fn: Handler) -> Endpoint:
        public = name in _PUBLIC
        token = self.config.token
        metrics = self.metrics

        async def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            rid = request.headers.get("x-request-id") or uuid.uuid4().hex
            try:
                if token is not None and not public:
                    _check_token(request, token)
                response = await fn(request, rid)
            except Problem as p:
                metrics.errors.labels(p.code).inc()
                response = _problem_response(p, rid)
            except Exception:
                log.exception("Request %s to %s failed", rid, name)
                metrics.errors.labels("INTERNAL_ERROR").inc()
                response = _problem_response(
                    Problem(500, f"The server failed on this request (id {rid}); see its log."),
                    rid,
                )
            response.headers["x-request-id"] = rid
            metrics.request(name, response.status_code, time.perf_counter() - start)
            return response

        return endpoint

    async def body(self, request: Request, rid: str, *, csv: bool = False) -> bytes:
        """The raw body, once its Content-Type and size are checked (`csv`: text/csv is
        accepted too, in UTF-8, as MLflow's scoring server does on /invocations)."""
        ctype = request.headers.get("content-type", "")
        main, _, rest = (part.strip().lower() for part in ctype.partition(";"))
        if csv and main == "text/csv":
            params = dict(p.strip().partition("=")[::2] for p in rest.split(";") if p.strip())
            charset = params.get("charset", "utf-8").strip('"')
            if charset not in ("utf-8", "utf8"):
                raise Problem(
                    415,
                    f"A CSV body must be UTF-8 (Content-Type: text/csv; charset=utf-8); got "
                    f"charset {clip(charset, 40)}.",
                )
        elif main and main != "application/json" and not main.endswith("+json"):
            raise Problem(
                415,
                "The body must be JSON (Content-Type: application/json, or none)"
                + (" or CSV with a header row (text/csv)" if csv else "")
                + f"; got {clip(ctype)}.",
            )
        if "inference-header-content-length" in request.headers:
            raise Problem(
                415,
                "Binary tensor data (the Inference-Header-Content-Length extension) is not "
                "supported; send the tensors as JSON (tritonclient: binary_data=False).",
            )
        limit = self.config.max_body
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise Problem(413, f"The body has {int(length)} bytes; the limit is {limit}.")
        chunks = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Problem(413, f"The body is over the limit of {limit} bytes.")
                chunks.append(chunk)
        except ClientDisconnect:
            log.warning(
                "Request %s to %s: the client disconnected after %d bytes of the body.",
                rid,
                request.url.path[:100],
                size,
            )
            raise Problem(400, "The client disconnected before the whole body arrived.") from None
        return b"".join(chunks)

    async def off_loop(self, raw: bytes, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` inline for a small body, on a worker thread for a large one."""
        if len(raw) <= PARSE_INLINE:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def validate(self, entry: Entry, data: Any) -> Valid:
        """The validator's result for `data`; Problem(422) when it does not match."""
        try:
            result = entry.validator.check(data)
        except Exception as exc:  # noqa: BLE001 - a form the validator cannot read
            problem: dict[str, Any] = {
                "column": None,
                "problem": "input",
                "expected": "records, columns or rows of scalar values",
                "found": type(exc).__name__,
                "rows": [],
                "count": 0,
            }
            raise Problem(422, "The input cannot be read as a table.", [problem]) from None
        if not result.ok or result.frame is None:
            from kiln._exceptions import describe

            raise Problem(
                422,
                describe(result.errors, "The input does not match the model signature"),
                result.errors,
            )
        return Valid(result.frame, result.warnings)

    async def run(self, entry: Entry, frame: pd.DataFrame, proba: bool) -> tuple[Any, Any]:
        if proba and entry.model.task_ == "regression":
            raise Problem(422, "Probabilities were asked for, but this model does regression.")
        try:
            preds, probs = await self.batcher.submit(entry, frame, proba)
        except Overloaded:
            raise Problem(
                503, "The server is overloaded; retry shortly.", headers={"Retry-After": "1"}
            ) from None
        except (ValueError, TypeError) as exc:
            # Valid for the signature, refused by the model (a null it cannot take, say).
            found = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            problem: dict[str, Any] = {
                "column": None,
                "problem": "predict",
                "expected": "input the model can score (validation mode "
                f"{entry.validator.mode!r} let this through)",
                "found": found,
                "rows": [],
                "count": 0,
            }
            raise Problem(
                422, f"The model could not score this input: {found}", [problem]
            ) from None
        self.metrics.predictions.inc(len(frame))
        return preds, probs

    # --------------------------------------------------------------- endpoints
    def _refuse_when_full(self) -> None:
        if self.batcher.full:  # before parsing and validating: refusing must stay cheap
            raise Problem(
                503, "The server is overloaded; retry shortly.", headers={"Retry-After": "1"}
            )

    def _prepare_predict(self, raw: bytes, proba: bool) -> tuple[Entry, Valid, bool]:
        data = _decode(raw)
        try:
            parsed = parse_predict(data, proba=proba)
        except RequestError as exc:
            raise Problem(422, str(exc), [exc.problem]) from None
        entry = self.holder.current
        return entry, self.validate(entry, parsed.data), parsed.proba

    def _prepare_csv(self, raw: bytes, proba: bool) -> tuple[Entry, Valid, bool]:
        entry = self.holder.current
        try:
            frame = parse_csv(raw, entry.model.signature_.inputs)
        except RequestError as exc:
            raise Problem(exc.status, str(exc), [exc.problem]) from None
        return entry, self.validate(entry, frame), proba

    async def invocations(self, request: Request, rid: str) -> Response:
        """MLflow's scoring endpoint: /predict's JSON bodies, or CSV with a header row."""
        return await self.predict(request, rid, csv=True)

    async def predict(self, request: Request, rid: str, *, csv: bool = False) -> Response:
        raw = await self.body(request, rid, csv=csv)
        self._refuse_when_full()
        query = request.scope.get("query_string", b"")
        proba = bool(query) and request.query_params.get("proba", "").lower() in (
            "1",
            "true",
            "yes",
        )
        ctype = request.headers.get("content-type", "")
        prepare = (
            self._prepare_csv
            if csv and ctype.partition(";")[0].strip().lower() == "text/csv"
            else self._prepare_predict
        )
        entry, result, proba = await self.off_loop(raw, prepare, raw, proba)
        preds, probs = await self.run(entry, result.frame, proba)
        self.predlog.add(rid, entry.version, result.frame, preds)
        out: dict[str, Any] = {"predictions": _tolist(preds)}
        if probs is not None:
            out["probabilities"] = _tolist(probs)
            out["classes"] = entry.model.classes_
        warnings = list(result.warnings) + _non_finite(preds, probs)
        if warnings:
            out["warnings"] = warnings
        return _json(out, headers={"x-kiln-model-version": entry.version})

    def _model(self, request: Request) -> Entry:
        name = request.path_params["name"]
        if name != self.name:
            raise Problem(404, f"No model {clip(name)} here; this server serves {self.name!r}.")
        entry = self.holder.current
        version = request.path_params.get("version")
        if version is not None and version != entry.version:
            raise Problem(
                404,
                f"Model {self.name!r} has no version {clip(version)} here; this server serves "
                f"version {entry.version!r} (POST /v2/models/{self.name}/infer, or "
                f"/versions/{entry.version}/infer).",
            )
        return entry

    async def v2_meta(self, request: Request, rid: str) -> Response:
        entry = self._model(request)
        sig = entry.model.signature_
        inputs = [
            {"name": s.name, "datatype": v2_datatype(s.kind, s.dtype), "shape": [-1]}
            for s in sig.inputs
        ]
        outputs = [{"name": "predict", "datatype": _out_type(sig), "shape": [-1]}]
        if entry.model.task_ == "classification":
            n = len(entry.model.classes_ or [])
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, n]})
        return _json(
            {
                "name": self.name,
                "versions": [entry.version],
                "platform": f"kiln-{entry.model.flavor_}",
                "inputs": inputs,
                "outputs": outputs,
            }
        )

    async def v2_model_ready(self, request: Request, rid: str) -> Response:
        self._model(request)
        return _json({"name": self.name, "ready": self.ready})

    def _prepare_v2(self, raw: bytes, entry: Entry) -> tuple[Valid, str | None, set[str]]:
        data = _decode(raw)
        try:
            tensors, body_id, wanted = parse_v2(data, entry.columns, entry.positional)
        except RequestError as exc:
            raise Problem(exc.status, str(exc), [exc.problem]) from None
        return self.validate(entry, tensors), body_id, wanted

    async def v2_infer(self, request: Request, rid: str) -> Response:
        entry = self._model(request)
        raw = await self.body(request, rid)
        self._refuse_when_full()
        result, body_id, wanted = await self.off_loop(raw, self._prepare_v2, raw, entry)
        rid = str(body_id) if body_id is not None else rid
        preds, probs = await self.run(entry, result.frame, "predict_proba" in wanted)
        self.predlog.add(rid, entry.version, result.frame, preds)
        outputs = v2_outputs(preds, probs, entry.model.classes_, wanted)
        out: dict[str, Any] = {
            "model_name": self.name,
            "model_version": entry.version,
            "id": rid,
            "outputs": outputs,
        }
        bad = _non_finite(preds, probs)
        if bad:
            out["parameters"] = {"warnings": "; ".join(w["message"] for w in bad)}
        return _json(out)

    async def health(self, request: Request, rid: str) -> Response:
        return _json({"status": "ok"})

    async def ready_(self, request: Request, rid: str) -> Response:
        entry = self.holder.current
        body = {"ready": self.ready, "model": self.uri, "version": entry.version}
        return _json(body, 200 if self.ready else 503)

    async def v2_live(self, request: Request, rid: str) -> Response:
        return _json({"live": True})

    async def v2_ready(self, request: Request, rid: str) -> Response:
        return _json({"ready": self.ready}, 200 if self.ready else 503)

    async def v2_server(self, request: Request, rid: str) -> Response:
        from kiln._version import __version__

        return _json({"name": "kiln", "version": __version__, "extensions": []})

    async def metrics_(self, request: Request, rid: str) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def _doc(self) -> dict[str, Any]:
        entry = self.holder.current
        if self._docs.get("version") != entry.version:
            strict = entry.validator.mode == "strict"
            self._docs = {
                "version": entry.version,
                "doc": openapi(entry.model.signature_, self.name, entry.version, strict),
            }
        return dict(self._docs["doc"])

    async def openapi_(self, request: Request, rid: str) -> Response:
        return _json(self._doc())

    async def docs(self, request: Request, rid: str) -> Response:
        return HTMLResponse(docs_page(self._doc(), self.holder.current.model.signature_))

    # --------------------------------------------------------------- lifecycle
    async def startup(self) -> None:
        from kiln.serving._warnings import shown_once

        # Before any thread that predicts starts: see kiln.serving._warnings.
        self._warnings = contextlib.ExitStack()
        self._warnings.enter_context(shown_once())
        self.batcher.start()
        self.holder.start()
        self.predlog.start()
        self.ready = True

    async def shutdown(self) -> None:
        import asyncio

        self.ready = False
        try:
            await self.batcher.stop()
            await self.holder.stop()
            await asyncio.get_running_loop().run_in_executor(None, self.predlog.close)
        finally:
            self._warnings.close()


def _out_type(sig: Any) -> str:
    if not sig.outputs:
        return "BYTES"
    spec = sig.outputs[0]
    return v2_datatype(spec.kind, spec.dtype)


def _model_name(uri: str) -> str:
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :]
        return rest.split("@", 1)[0].split("/", 1)[0]
    return "model"


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"The body is not valid JSON: {str(exc)[:200]}") from None


def _non_finite(preds: Any, probs: Any) -> list[dict[str, Any]]:
    """A warning for each output with NaN or infinite values (JSON sends them as null)."""
    import numpy as np

    out = []
    for name, values in (("predictions", preds), ("probabilities", probs)):
        if values is None:
            continue
        array = np.asarray(values)
        if array.dtype.kind != "f" or not array.size:
            continue
        bad = ~np.isfinite(array)
        if array.ndim > 1:
            bad = bad.reshape(len(array), -1).any(axis=1)
        if not bad.any():
            continue
        rows = np.flatnonzero(bad)
        kinds = sorted(
            {
                "nan" if math.isnan(v) else "inf"
                for v in array[rows].ravel().tolist()
                if not math.isfinite(v)
            }
        )
        message = (
            f"The model returned {' and '.join(kinds)} in the {name} of {len(rows)} row(s); "
            "JSON has no such numbers, so they are sent as null."
        )
        out.append(
            {
                "column": None,
                "problem": "non_finite_output",
                "expected": "finite numbers",
                "found": ", ".join(kinds),
                "rows": rows[:20].tolist(),
                "count": len(rows),
                "message": message,
            }
        )
    return out


def _check_token(request: Request, token: str) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    # Header values arrive as latin-1 text: compare bytes, as compare_digest refuses
    # non-ASCII str.
    expected = token.encode("utf-8")
    supplied = given.strip().encode("latin-1", "replace")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied, expected):
        raise Problem(
            401,
            "This server needs a token: send the header 'Authorization: Bearer <token>' "
            "with the token it was started with (--token or KILN_TOKEN).",
            headers={"WWW-Authenticate": "Bearer"},
        )


def create_app(model: Any, config: ServeConfig | None = None) -> Starlette:
    """The ASGI app serving `model`.

    Args:
        model: A model URI (`runs:/...`, `models:/name@alias`), a saved-model folder,
            or a `kiln.Model`.
        config: Batching, limits, logging and auth (`ServeConfig`).

    Returns:
        A Starlette app; run it with any ASGI server, or use `kiln.serving.serve`.
    """
    from contextlib import asynccontextmanager

    server = _Server(model, config or ServeConfig())
    w = server.wrap
    routes = [
        Route("/predict", w("predict", server.predict), methods=["POST"]),
        Route("/invocations", w("invocations", server.invocations), methods=["POST"]),
        Route("/health", w("health", server.health), methods=["GET"]),
        Route("/ping", w("health", server.health), methods=["GET"]),
        Route("/ready", w("ready", server.ready_), methods=["GET"]),
        Route("/metrics", w("metrics", server.metrics_), methods=["GET"]),
        Route("/openapi.json", w("openapi", server.openapi_), methods=["GET"]),
        Route("/docs", w("docs", server.docs), methods=["GET"]),
        Route("/v2", w("v2_server", server.v2_server), methods=["GET"]),
        Route("/v2/health/live", w("v2_live", server.v2_live), methods=["GET"]),
        Route("/v2/health/ready", w("v2_ready", server.v2_ready), methods=["GET"]),
        Route("/v2/models/{name}", w("v2_meta", server.v2_meta), methods=["GET"]),
        Route(
            "/v2/models/{name}/ready", w("v2_model_ready", server.v2_model_ready), methods=["GET"]
        ),
        Route(
            "/v2/models/{name}/versions/{version}", w("v2_meta", server.v2_meta), methods=["GET"]
        ),
        Route(
            "/v2/models/{name}/versions/{version}/ready",
            w("v2_model_ready", server.v2_model_ready),
            methods=["GET"],
        ),
        Route("/v2/models/{name}/infer", w("v2_infer", server.v2_infer), methods=["POST"]),
        Route(
            "/v2/models/{name}/versions/{version}/infer",
            w("v2_infer", server.v2_infer),
            methods=["POST"],
        ),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        message = {
            404: f"No endpoint {request.url.path[:100]!r}; see /docs for the endpoints.",
            405: f"{request.method} is not allowed on {request.url.path[:100]!r}.",
        }.get(status, str(getattr(exc, "detail", "")) or "Error")
        server.metrics.errors.labels(_CODES.get(status, "ERROR")).inc()
        headers = dict(getattr(exc, "headers", None) or {})
        headers["x-request-id"] = rid
        return _problem_response(Problem(status, message, headers=headers), rid)

    async def crash(request: Request, exc: Exception) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        log.error("Unhandled error on %s", request.url.path, exc_info=exc)
        problem = Problem(500, "The server failed on this request.", headers={"x-request-id": rid})
        return _problem_response(problem, rid)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await server.startup()
        try:
            yield
        finally:
            await server.shutdown()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: crash},
    )
    app.state.kiln = server
    return app
