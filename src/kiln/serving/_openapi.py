"""The server's OpenAPI 3.1 document, generated from the model signature, and `/docs`.

The `/docs` page is one self-contained HTML page (no CDN, no external assets): the
endpoints, the input columns and a form that posts a record to `/predict`.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["docs_page", "openapi"]

_V2_DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)

_ERROR = {
    "type": "object",
    "required": ["error", "error_code", "message", "errors"],
    "properties": {
        "error": {"type": "string", "description": "The message (for Open Inference clients)."},
        "error_code": {"type": "string", "description": "A code (for MLflow clients)."},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One item per problem, naming the column (null for the whole input).",
            "items": {"type": "object"},
        },
        "request_id": {"type": "string"},
    },
}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    why = {
        400: "Malformed JSON",
        401: "Missing or wrong token",
        404: "Unknown model or version",
        413: "Body too large",
        415: "Not JSON",
        422: "Input does not match the signature",
        503: "Overloaded; retry after Retry-After seconds",
    }
    for code in codes:
        out[str(code)] = {"description": why[code], **err}
    return out


def openapi(signature: Any, name: str, version: str, strict: bool) -> dict[str, Any]:
    """The OpenAPI document of a server for a model with this signature."""
    from kiln._version import __version__

    record = signature.openapi_schema(strict=strict)
    columns = {
        "type": "object",
        "properties": {k: {"type": "array", "items": v} for k, v in record["properties"].items()},
        "required": record["required"],
    }
    records = {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, "minItems": 1}
    body = {
        "oneOf": [
            {"$ref": "#/components/schemas/Record"},
            {"$ref": "#/components/schemas/Records"},
            {
                "type": "object",
                "required": ["dataframe_records"],
                "properties": {"dataframe_records": {"$ref": "#/components/schemas/Records"}},
            },
            {
                "type": "object",
                "required": ["dataframe_split"],
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "required": ["columns", "data"],
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}},
                        },
                    }
                },
            },
            {
                "type": "object",
                "required": ["inputs"],
                "properties": {"inputs": {"$ref": "#/components/schemas/Columns"}},
            },
        ]
    }
    predictions = {
        "type": "object",
        "required": ["predictions"],
        "properties": {
            "predictions": {"type": "array"},
            "probabilities": {"type": "array", "items": {"type": "array"}},
            "classes": {"type": "array"},
        },
    }
    json_body: dict[str, Any] = {
        "required": True,
        "content": {"application/json": {"schema": body}},
    }
    proba = {
        "name": "proba",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean"},
        "description": "Add class probabilities (classifiers).",
    }
    predict_op = {
        "summary": "Predict",
        "parameters": [proba],
        "requestBody": json_body,
        "responses": _responses(predictions, 400, 401, 413, 415, 422, 503),
    }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(_V2_DATATYPES)},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    output = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "enum": ["predict", "predict_proba"]}},
    }
    infer = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1},
            "outputs": {"type": "array", "items": output},
            "parameters": {"type": "object"},
        },
    }
    obj = {"type": "object"}
    model_param = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    version_param = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    infer_op = {
        "parameters": model_param,
        "requestBody": {"required": True, "content": {"application/json": {"schema": infer}}},
        "responses": _responses(obj, 400, 401, 404, 413, 415, 422, 503),
    }
    paths: dict[str, Any] = {
        "/predict": {"post": {**predict_op, "operationId": "predict"}},
        "/invocations": {
            "post": {
                **predict_op,
                "operationId": "invocations",
                "description": "MLflow's scoring endpoint: the JSON bodies of /predict, or "
                "CSV with a header row (text/csv, UTF-8).",
                "requestBody": {
                    "required": True,
                    "content": {
                        **json_body["content"],
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
            }
        },
        "/health": {"get": {"summary": "Alive", "responses": _responses(obj)}},
        "/ready": {"get": {"summary": "Model loaded", "responses": _responses(obj, 503)}},
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OK"}}}
        },
        "/v2": {"get": {"summary": "Server metadata", "responses": _responses(obj, 401)}},
        "/v2/health/live": {"get": {"responses": _responses(obj)}},
        "/v2/health/ready": {"get": {"responses": _responses(obj, 503)}},
        "/v2/models/{name}": {
            "get": {"parameters": model_param, "responses": _responses(obj, 404)}
        },
        "/v2/models/{name}/ready": {
            "get": {"parameters": model_param, "responses": _responses(obj, 404)}
        },
        "/v2/models/{name}/versions/{version}": {
            "get": {
                "parameters": [*model_param, version_param],
                "responses": _responses(obj, 401, 404),
            }
        },
        "/v2/models/{name}/versions/{version}/ready": {
            "get": {
                "parameters": [*model_param, version_param],
                "responses": _responses(obj, 401, 404),
            }
        },
        "/v2/models/{name}/infer": {"post": infer_op},
        "/v2/models/{name}/versions/{version}/infer": {
            "post": {**infer_op, "parameters": [*model_param, version_param]}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"kiln serve: {name}",
            "version": __version__,
            "description": f"Model {name}, version {version}.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Record": record, "Records": records, "Columns": columns, "Error": _ERROR},
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }


def docs_page(doc: dict[str, Any], signature: Any) -> str:
    """A self-contained HTML page describing the API, with a form to try `/predict`."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(s.name)}</td><td>{esc(s.kind)}</td><td>{esc(s.dtype)}</td>"
        f"<td>{'' if s.min is None else esc(str(s.min))}</td>"
        f"<td>{'' if s.max is None else esc(str(s.max))}</td></tr>"
        for s in signature.inputs
    )
    ops = "".join(
        f"<li><code>{esc(m.upper())} {esc(p)}</code> {esc(op.get('summary', ''))}</li>"
        for p, item in doc["paths"].items()
        for m, op in item.items()
    )
    example = {s.name: s.min if s.min is not None else "" for s in signature.inputs}
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{esc(doc["info"]["title"])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}
td,th{{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}}
textarea{{width:100%;height:12em;font:12px monospace}}pre{{background:#f4f4f4;padding:8px}}</style>
</head><body><h1>{esc(doc["info"]["title"])}</h1><p>{esc(doc["info"]["description"])}
The OpenAPI document is at <a href="openapi.json">openapi.json</a>.</p>
<h2>Endpoints</h2><ul>{ops}</ul>
<h2>Input columns</h2><table><tr><th>name</th><th>kind</th><th>dtype</th><th>min</th>
<th>max</th></tr>{rows}</table>
<h2>Try it</h2><textarea id="body">{esc(json.dumps(example, indent=1))}</textarea>
<button onclick="go()">POST /predict</button><pre id="out"></pre>
<script>async function go(){{const r=await fetch("predict",{{method:"POST",
headers:{{"content-type":"application/json"}},body:document.getElementById("body").value}});
document.getElementById("out").textContent=r.status+"\\n"+await r.text();}}</script>
</body></html>"""
