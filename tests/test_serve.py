"""`kiln serve` over real HTTP: every input format, every error case, KServe V2, metrics.

One server per module, started with the `kiln` command on a free loopback port and
always stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve_helpers import KILN, breast_cancer, child_env, register, running, set_alias, train

pytestmark = pytest.mark.slow

ERROR_KEYS = {"error", "error_code", "message", "errors", "request_id"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import kiln

    root = tmp_path_factory.mktemp("serve")
    store = f"sqlite:///{root / 'store' / 'kiln.db'}"
    folder = train(root / "model")
    version = register(store, folder, "bc")
    set_alias(store, "bc", "production", version)
    X, _y = breast_cancer()
    env = child_env(
        {k: v for k, v in os.environ.items() if k != "KILN_STORE"},
        KILN_HOME=str(root / "home"),
        KILN_CAPTURE_PACKAGES="0",
    )
    local = kiln.load_model(folder)
    args = ["models:/bc@production", "--max-body", "200000", "--token", "s3cret"]
    with running(args, env, store=store) as (url, _proc):
        yield {
            "url": url,
            "X": X,
            "model": local,
            "env": env,
            "store": store,
            "folder": folder,
            "headers": {"Authorization": "Bearer s3cret"},
        }


@pytest.fixture(scope="module")
def http(setup: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=setup["url"], headers=setup["headers"], timeout=30) as client:
        yield client


def _rows(X: Any, n: int) -> Any:
    return X.iloc[:n]


def _bodies(X: Any) -> dict[str, tuple[str, Any, int]]:
    one, three = _rows(X, 1), _rows(X, 3)
    split = json.loads(three.to_json(orient="split"))
    split.pop("index")
    return {
        "record": ("/predict", one.iloc[0].to_dict(), 1),
        "columns": ("/predict", three.to_dict(orient="list"), 3),
        "records": ("/predict", three.to_dict(orient="records"), 3),
        "dataframe_split": ("/invocations", {"dataframe_split": split}, 3),
        "dataframe_records": (
            "/invocations",
            {"dataframe_records": three.to_dict(orient="records")},
            3,
        ),
        "instances_rows": ("/invocations", {"instances": three.to_numpy().tolist()}, 3),
        "instances_records": ("/invocations", {"instances": three.to_dict(orient="records")}, 3),
        "inputs_columns": ("/invocations", {"inputs": three.to_dict(orient="list")}, 3),
        "inputs_rows": ("/invocations", {"inputs": three.to_numpy().tolist()}, 3),
        "reordered": ("/predict", dict(reversed(list(one.iloc[0].to_dict().items()))), 1),
    }


FORMATS = list(_bodies(breast_cancer()[0]))


@pytest.mark.parametrize("form", FORMATS)
def test_every_input_format_predicts_like_the_model(
    setup: dict[str, Any], http: httpx.Client, form: str
) -> None:
    path, body, n = _bodies(setup["X"])[form]
    r = http.post(path, json=body)
    assert r.status_code == 200, r.text
    expected = setup["model"].predict(_rows(setup["X"], n)).tolist()
    assert r.json() == {"predictions": expected}
    assert r.headers["x-kiln-model-version"] == "1"
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("how", ["query", "mlflow_params"])
def test_probabilities_on_request(setup: dict[str, Any], http: httpx.Client, how: str) -> None:
    rows = _rows(setup["X"], 2)
    if how == "query":
        r = http.post("/predict?proba=true", json=rows.to_dict(orient="records"))
    else:
        body = {
            "dataframe_records": rows.to_dict(orient="records"),
            "params": {"predict_proba": True},
        }
        r = http.post("/invocations", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["classes"] == [0, 1]
    expected = setup["model"].predict_proba(rows)
    assert np.allclose(data["probabilities"], expected)


def _check_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert set(data) == ERROR_KEYS
    assert data["error"] == data["message"]
    assert data["message"]
    assert data["error_code"] == code
    assert data["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text
    assert isinstance(data["errors"], list)
    return data


def test_a_bad_value_names_its_column_and_does_not_echo_the_input(
    setup: dict[str, Any], http: httpx.Client
) -> None:
    record = setup["X"].iloc[0].to_dict()
    record["mean radius"] = "abc"
    record["worst area"] = "zzz"
    record["padding"] = "x" * 5000
    data = _check_error(http.post("/predict", json=record), 422, "INVALID_PARAMETER_VALUE")
    columns = {e["column"]: e["problem"] for e in data["errors"]}
    assert columns == {"mean radius": "type", "worst area": "type"}
    assert "x" * 100 not in json.dumps(data)


def test_a_null_the_model_cannot_take_is_a_422(setup: dict[str, Any], http: httpx.Client) -> None:
    record = setup["X"].iloc[0].to_dict()
    record["worst area"] = None  # "warn" mode lets it through; the scaler refuses NaN
    data = _check_error(http.post("/predict", json=record), 422, "INVALID_PARAMETER_VALUE")
    assert data["errors"][0]["problem"] == "predict"


def test_a_missing_column_is_named(setup: dict[str, Any], http: httpx.Client) -> None:
    record = setup["X"].iloc[0].to_dict()
    del record["mean texture"]
    data = _check_error(http.post("/predict", json=record), 422, "INVALID_PARAMETER_VALUE")
    assert [(e["column"], e["problem"]) for e in data["errors"]] == [("mean texture", "missing")]


def test_invocations_takes_mlflow_csv(setup: dict[str, Any], http: httpx.Client) -> None:
    # Issue 14 item 22: MLflow's scoring server takes `Content-Type: text/csv` with a
    # header row (what DataFrame.to_csv writes); so does kiln's /invocations.
    X = setup["X"].head(4)
    body = X.to_csv(index=False).encode()
    r = http.post("/invocations", content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": setup["model"].predict(X).tolist()}
    r = http.post(
        "/invocations?proba=true",
        content=X[list(reversed(X.columns))].to_csv(index=False).encode(),
        headers={"content-type": "text/csv; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["probabilities"], setup["model"].predict_proba(X))
    missing = X.drop(columns="mean texture").to_csv(index=False).encode()
    r = http.post("/invocations", content=missing, headers={"content-type": "text/csv"})
    data = _check_error(r, 422, "INVALID_PARAMETER_VALUE")
    assert [(e["column"], e["problem"]) for e in data["errors"]] == [("mean texture", "missing")]


ERROR_CASES: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    # name: (method, path, request kwargs, status, error_code)
    "malformed_json": (
        "POST",
        "/predict",
        {"content": b'{"a": ', "json_ct": True},
        400,
        "BAD_REQUEST",
    ),
    "wrong_content_type": (
        "POST",
        "/predict",
        {"content": b"a,b\n1,2", "headers": {"content-type": "text/csv"}},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    # No Content-Type is read as JSON (Open Inference clients send none): {} is then a 422.
    "no_content_type": ("POST", "/invocations", {"content": b"{}"}, 422, "INVALID_PARAMETER_VALUE"),
    "too_large": (
        "POST",
        "/predict",
        {"content": b"[" + b"1," * 150_000 + b"1]", "json_ct": True},
        413,
        "REQUEST_TOO_LARGE",
    ),
    "json_scalar": ("POST", "/predict", {"json": 3}, 422, "INVALID_PARAMETER_VALUE"),
    "empty_object": ("POST", "/predict", {"json": {}}, 422, "INVALID_PARAMETER_VALUE"),
    "empty_list": ("POST", "/predict", {"json": []}, 422, "INVALID_PARAMETER_VALUE"),
    "two_mlflow_keys": (
        "POST",
        "/invocations",
        {"json": {"instances": [[1]], "inputs": [[1]]}},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "split_without_data": (
        "POST",
        "/invocations",
        {"json": {"dataframe_split": {"columns": ["a"]}}},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "rows_too_short": (
        "POST",
        "/invocations",
        {"json": {"instances": [[1.0, 2.0]]}},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "nested_values": (
        "POST",
        "/predict",
        {"json": [{"mean radius": {"a": 1}}, {"b": [1]}]},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "unknown_endpoint": ("GET", "/nope", {}, 404, "NOT_FOUND"),
    "wrong_method": ("GET", "/predict", {}, 405, "METHOD_NOT_ALLOWED"),
    "v2_unknown_model": ("GET", "/v2/models/other", {}, 404, "NOT_FOUND"),
    "v2_no_inputs": (
        "POST",
        "/v2/models/bc/infer",
        {"json": {"inputs": []}},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "v2_bad_shape": (
        "POST",
        "/v2/models/bc/infer",
        {"json": {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": [1.0]}]}},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "csv_not_utf8": (
        "POST",
        "/invocations",
        {"content": b"a,b\n1,2", "headers": {"content-type": "text/csv; charset=latin-1"}},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "invocations_xml": (
        "POST",
        "/invocations",
        {"content": b"<a/>", "headers": {"content-type": "text/xml"}},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "csv_empty": (
        "POST",
        "/invocations",
        {"content": b"", "headers": {"content-type": "text/csv"}},
        400,
        "BAD_REQUEST",
    ),
    "csv_ragged": (
        "POST",
        "/invocations",
        {"content": b"a,b\n1,2,3,4\n", "headers": {"content-type": "text/csv"}},
        400,
        "BAD_REQUEST",
    ),
    "csv_header_only": (
        "POST",
        "/invocations",
        {"content": b"mean radius,mean texture\n", "headers": {"content-type": "text/csv"}},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "v2_bad_datatype": (
        "POST",
        "/v2/models/bc/infer",
        {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": "FP99", "data": [1.0]}]}},
        422,
        "INVALID_PARAMETER_VALUE",
    ),
    "v2_missing_columns": (
        "POST",
        "/v2/models/bc/infer",
        {
            "json": {
                "inputs": [{"name": "mean radius", "shape": [1], "datatype": "FP64", "data": [1.0]}]
            }
        },
        422,
        "INVALID_PARAMETER_VALUE",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_one_error_shape_for_every_endpoint(http: httpx.Client, case: str) -> None:
    method, path, kwargs, status, code = ERROR_CASES[case]
    kwargs = dict(kwargs)
    if kwargs.pop("json_ct", False):
        kwargs["headers"] = {"content-type": "application/json"}
    data = _check_error(http.request(method, path, **kwargs), status, code)
    if status == 422:
        assert data["errors"], "a 422 lists what is wrong"
        assert all({"column", "problem", "expected"} <= set(e) for e in data["errors"])


def test_a_token_is_needed_except_for_health(setup: dict[str, Any]) -> None:
    url = setup["url"]
    record = setup["X"].iloc[0].to_dict()
    r = httpx.post(f"{url}/predict", json=record)
    data = _check_error(r, 401, "UNAUTHENTICATED")
    assert "Authorization: Bearer" in data["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(f"{url}/predict", json=record, headers={"Authorization": "Bearer nope"})
    _check_error(wrong, 401, "UNAUTHENTICATED")
    for path in ("/health", "/ready", "/v2/health/live", "/v2/health/ready"):
        assert httpx.get(f"{url}{path}").status_code == 200, path


def test_binding_beyond_loopback_needs_a_token(setup: dict[str, Any]) -> None:
    import subprocess

    env = {k: v for k, v in setup["env"].items() if k != "KILN_TOKEN"}
    proc = subprocess.run(
        [KILN, "serve", setup["folder"], "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "needs a token" in proc.stderr
    assert "--no-auth" in proc.stderr


# ------------------------------------------------------------------ KServe V2


def test_v2_health_and_metadata(setup: dict[str, Any], http: httpx.Client) -> None:
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert http.get("/v2/models/bc/ready").json() == {"name": "bc", "ready": True}
    assert http.get("/v2").json()["name"] == "kiln"
    meta = http.get("/v2/models/bc").json()
    assert meta["name"] == "bc"
    assert meta["versions"] == ["1"]
    assert meta["platform"] == "kiln-sklearn"
    assert [i["name"] for i in meta["inputs"]] == list(setup["X"].columns)
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]


def test_v2_infer_one_tensor_per_column(setup: dict[str, Any], http: httpx.Client) -> None:
    rows = _rows(setup["X"], 4)
    inputs = [{"name": c, "shape": [4], "datatype": "FP64", "data": rows[c].tolist()} for c in rows]
    r = http.post("/v2/models/bc/infer", json={"id": "req-1", "inputs": inputs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "bc"
    assert body["model_version"] == "1"
    assert body["id"] == "req-1"
    (out,) = body["outputs"]
    assert out["name"] == "predict"
    assert out["shape"] == [4]
    assert out["datatype"] == "INT64"
    assert out["data"] == setup["model"].predict(rows).tolist()


def test_v2_infer_one_2d_tensor_with_probabilities(
    setup: dict[str, Any], http: httpx.Client
) -> None:
    rows = _rows(setup["X"], 2)
    tensor = {
        "name": "input-0",
        "shape": [2, 30],
        "datatype": "FP32",
        "data": rows.to_numpy().tolist(),
    }
    body = {"inputs": [tensor], "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    r = http.post("/v2/models/bc/versions/1/infer", json=body)
    assert r.status_code == 200, r.text
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["predict"]["data"] == setup["model"].predict(rows).tolist()
    assert outs["predict_proba"]["shape"] == [2, 2]
    expected = setup["model"].predict_proba(rows).ravel().tolist()
    assert outs["predict_proba"]["data"] == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------ metrics, docs


def test_metrics_count_requests_latency_batches_and_errors(
    http: httpx.Client, setup: dict[str, Any]
) -> None:
    http.post("/predict", json=setup["X"].iloc[0].to_dict())
    http.post("/predict", json={"nope": 1})
    r = http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for needle in (
        'kiln_requests_total{endpoint="predict",status="200"}',
        'kiln_requests_total{endpoint="predict",status="422"}',
        'kiln_request_seconds_bucket{endpoint="predict",le="0.005"}',
        "kiln_batch_size_count",
        "kiln_queue_depth 0.0",
        'kiln_errors_total{kind="INVALID_PARAMETER_VALUE"}',
        'kiln_model_info{version="1"} 1.0',
        "kiln_predictions_total",
    ):
        assert needle in text, needle


def test_openapi_and_offline_docs(setup: dict[str, Any], http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == list(setup["X"].columns)
    assert {"/predict", "/invocations", "/v2/models/{name}/infer"} <= set(doc["paths"])
    bodies = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(bodies) == {"application/json", "text/csv"}
    assert set(doc["paths"]["/predict"]["post"]["requestBody"]["content"]) == {"application/json"}
    page = http.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "mean radius" in page.text
    assert "src=" not in page.text
    assert "https://" not in page.text


def test_request_ids_are_echoed(http: httpx.Client, setup: dict[str, Any]) -> None:
    r = http.post("/predict", json=setup["X"].iloc[0].to_dict(), headers={"x-request-id": "abc-1"})
    assert r.headers["x-request-id"] == "abc-1"


_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    changes=st.dictionaries(
        st.sampled_from([*FORMATS[:1], "mean radius", "worst area", "extra"]), _values, max_size=3
    )
)
def test_random_values_get_200_or_422_never_5xx(
    setup: dict[str, Any], http: httpx.Client, changes: dict[str, Any]
) -> None:
    record = {**setup["X"].iloc[0].to_dict(), **changes}
    r = http.post("/predict", json=record)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        _check_error(r, 422, "INVALID_PARAMETER_VALUE")


def test_cli_help_lists_the_serving_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kiln.cli import cli

    out = CliRunner().invoke(cli, ["--help"]).output
    for name in ("serve", "package", "predict"):
        assert name in out


# ------------------------------------------- issue 13: bad input is 4xx, right answers


def _v2_inputs(rows: Any) -> list[dict[str, Any]]:
    return [
        {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
        for c in rows
    ]


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"datatype": ["INT64"]}, 422, "unknown datatype"),
        ({"datatype": {"a": 1}}, 422, "unknown datatype"),
        ({"datatype": None}, 422, "unknown datatype"),
    ],
)
def test_v2_a_datatype_that_is_not_a_string_is_a_4xx(
    setup: dict[str, Any], http: httpx.Client, change: dict[str, Any], status: int, needle: str
) -> None:
    inputs = _v2_inputs(_rows(setup["X"], 1))
    inputs[0] = {**inputs[0], **change}
    data = _check_error(
        http.post("/v2/models/bc/infer", json={"inputs": inputs}), status, "INVALID_PARAMETER_VALUE"
    )
    assert needle in data["message"]


@pytest.mark.parametrize("outputs", [1, "predict", {"name": "predict"}, [1], [{"name": 2}]])
def test_v2_outputs_that_are_not_a_list_of_named_objects_are_a_422(
    setup: dict[str, Any], http: httpx.Client, outputs: Any
) -> None:
    body = {"inputs": _v2_inputs(_rows(setup["X"], 1)), "outputs": outputs}
    data = _check_error(http.post("/v2/models/bc/infer", json=body), 422, "INVALID_PARAMETER_VALUE")
    assert "'outputs' must be a list of objects" in data["message"]


@pytest.mark.parametrize("header", ["Bearer s3crét", "Bearer \u00ff\u00fe", "Bearér s3cret"])
def test_a_non_ascii_authorization_header_is_a_401(setup: dict[str, Any], header: str) -> None:
    record = setup["X"].iloc[0].to_dict()
    r = httpx.post(
        f"{setup['url']}/predict",
        content=json.dumps(record).encode(),
        headers={"Authorization": header.encode("latin-1"), "content-type": "application/json"},
    )
    _check_error(r, 401, "UNAUTHENTICATED")


def test_v2_another_version_is_a_404(setup: dict[str, Any], http: httpx.Client) -> None:
    body = {"inputs": _v2_inputs(_rows(setup["X"], 1))}
    data = _check_error(http.post("/v2/models/bc/versions/99/infer", json=body), 404, "NOT_FOUND")
    assert "no version '99'" in data["message"]
    assert "version '1'" in data["message"]
    assert http.post("/v2/models/bc/versions/1/infer", json=body).status_code == 200


def test_v2_a_repeated_input_tensor_is_a_400(setup: dict[str, Any], http: httpx.Client) -> None:
    inputs = _v2_inputs(_rows(setup["X"], 1))
    inputs.append({**inputs[0], "data": [999.0]})
    data = _check_error(
        http.post("/v2/models/bc/infer", json={"inputs": inputs}), 400, "BAD_REQUEST"
    )
    assert "'mean radius' appears more than once" in data["message"]


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_a_single_value_beside_columns_is_refused_not_broadcast(
    setup: dict[str, Any], http: httpx.Client, path: str
) -> None:
    columns = _rows(setup["X"], 3).to_dict(orient="list")
    columns["worst area"] = columns["worst area"][0]  # one value beside lists of three
    body = columns if path == "/predict" else {"inputs": columns}
    data = _check_error(http.post(path, json=body), 422, "INVALID_PARAMETER_VALUE")
    assert "'worst area' is a single value beside columns sent as lists" in data["message"]
    assert "not broadcast" in data["message"]


@pytest.mark.parametrize("extra", [[], ["x", "y"]])
def test_a_list_in_an_extra_field_of_a_record_is_dropped(
    setup: dict[str, Any], http: httpx.Client, extra: list[str]
) -> None:
    # schemathesis found it: a record with an extra field holding [] was read as zero
    # rows of columns, and asking for probabilities of zero rows was a 500.
    record = {**_rows(setup["X"], 1).iloc[0].to_dict(), "": extra}

    r = http.post("/predict?proba=true", json=[record])

    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == setup["model"].predict(_rows(setup["X"], 1)).tolist()


def test_a_bare_record_with_a_list_field_is_ambiguous_and_says_so(
    setup: dict[str, Any], http: httpx.Client
) -> None:
    # Without the brackets of a list of records, one list beside single values could be
    # columns: a 422 that names the list, never a guess.
    record = {**_rows(setup["X"], 1).iloc[0].to_dict(), "tags": ["x"]}

    data = _check_error(http.post("/predict", json=record), 422, "INVALID_PARAMETER_VALUE")

    assert "(such as 'tags')" in data["message"]


@pytest.mark.parametrize("proba", [False, True])
def test_zero_rows_predict_nothing(setup: dict[str, Any], http: httpx.Client, proba: bool) -> None:
    columns = {c: [] for c in setup["X"].columns}
    r = http.post("/predict" + ("?proba=true" if proba else ""), json=columns)

    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == []
    assert r.json().get("probabilities", []) == []


@pytest.mark.parametrize("flag", ["yes", 1, "true", None, [True]])
def test_predict_proba_must_be_a_json_boolean(
    setup: dict[str, Any], http: httpx.Client, flag: Any
) -> None:
    body = {
        "dataframe_records": _rows(setup["X"], 1).to_dict(orient="records"),
        "params": {"predict_proba": flag},
    }
    data = _check_error(http.post("/invocations", json=body), 422, "INVALID_PARAMETER_VALUE")
    assert "must be a JSON boolean" in data["message"]
    body["params"] = {"predict_proba": False}
    r = http.post("/invocations", json=body)
    assert r.status_code == 200
    assert "probabilities" not in r.json()


def test_error_bodies_echo_only_a_short_excerpt_of_the_input(
    setup: dict[str, Any], http: httpx.Client
) -> None:
    huge = "n" * 150_000
    inputs = _v2_inputs(_rows(setup["X"], 1))
    for case in (
        [{**inputs[0], "name": huge, "datatype": "FP99"}],
        [{**inputs[0], "name": huge}, {**inputs[0], "name": huge}],
        [{**inputs[0], "name": huge, "shape": "x"}],
        [{**inputs[0], "name": huge, "shape": [7]}],
        [*inputs, {**inputs[0], "name": huge}],
    ):
        r = http.post("/v2/models/bc/infer", json={"inputs": case})
        assert r.status_code < 500, r.text[:300]
        assert len(r.content) < 5000, (r.status_code, r.text[:300])
    record = {**setup["X"].iloc[0].to_dict(), huge: 1.0}
    r = http.post("/predict", json=record)
    assert len(r.content) < 5000, (r.status_code, r.text[:300])
    r = http.post("/v2/models/" + "m" * 5000, json={"inputs": inputs})
    assert len(r.content) < 5000, (r.status_code, r.text[:300])


def test_a_request_that_is_not_http_gets_the_json_error_shape(setup: dict[str, Any]) -> None:
    import socket

    host, port = setup["url"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), raw[:200]
    assert b"content-type: application/json" in head.lower()
    data = json.loads(body)
    assert set(data) == ERROR_KEYS
    assert data["error_code"] == "BAD_REQUEST"
    assert "not valid HTTP" in data["message"]


# ------------------------------------------ Open Inference Protocol: tritonclient


def test_tritonclient_drives_the_v2_endpoints(setup: dict[str, Any]) -> None:
    import tritonclient.http as triton

    rows = _rows(setup["X"], 5)
    url = setup["url"].removeprefix("http://")
    client = triton.InferenceServerClient(url=url, connection_timeout=30, network_timeout=30)
    try:
        headers = setup["headers"]
        assert client.is_server_live()
        assert client.is_model_ready("bc", headers=headers)
        meta = client.get_model_metadata("bc", headers=headers)
        assert [i["name"] for i in meta["inputs"]] == list(rows.columns)
        assert client.get_model_metadata("bc", model_version="1", headers=headers) == meta
        assert client.is_model_ready("bc", model_version="1", headers=headers)
        assert not client.is_model_ready("bc", model_version="99", headers=headers)
        inputs = []
        for column in rows:
            tensor = triton.InferInput(column, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[column].to_numpy(dtype=np.float64), binary_data=False)
            inputs.append(tensor)
        outputs = [
            triton.InferRequestedOutput("predict", binary_data=False),
            triton.InferRequestedOutput("predict_proba", binary_data=False),
        ]
        result = client.infer("bc", inputs, outputs=outputs, headers=headers, request_id="t-1")
        assert result.get_response()["id"] == "t-1"
        np.testing.assert_array_equal(result.as_numpy("predict"), setup["model"].predict(rows))
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), setup["model"].predict_proba(rows), rtol=1e-12
        )
        # Without requested outputs the client asks for binary outputs; the JSON answer
        # is still one it reads.
        plain = client.infer("bc", inputs, headers=headers, model_version="1")
        np.testing.assert_array_equal(plain.as_numpy("predict"), setup["model"].predict(rows))
    finally:
        client.close()


def test_binary_tensor_data_is_refused_with_a_way_out(setup: dict[str, Any]) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    rows = _rows(setup["X"], 1)
    client = triton.InferenceServerClient(url=setup["url"].removeprefix("http://"))
    try:
        inputs = []
        for column in rows:
            tensor = triton.InferInput(column, [1], "FP64")
            tensor.set_data_from_numpy(rows[column].to_numpy(dtype=np.float64))  # binary
            inputs.append(tensor)
        with pytest.raises(InferenceServerException, match="binary_data=False"):
            client.infer("bc", inputs, headers=setup["headers"])
    finally:
        client.close()


@pytest.mark.parametrize(("rid", "status"), [(7, 200), ("r-7", 200), ({"a": 1}, 422), (True, 422)])
def test_v2_request_id_is_a_string_or_a_number(
    setup: dict[str, Any], http: httpx.Client, rid: Any, status: int
) -> None:
    body = {"id": rid, "inputs": _v2_inputs(_rows(setup["X"], 1))}
    r = http.post("/v2/models/bc/infer", json=body)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["id"] == str(rid)
    else:
        assert "'id' must be a string" in _check_error(r, 422, "INVALID_PARAMETER_VALUE")["message"]
