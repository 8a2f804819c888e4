"""MLflow's run search syntax (`filter_string`, `order_by`) translated to kiln's filter
language, which is close to a superset of it.

```
metrics.acc > 0.9 and params.model = 'rf'          ->  same in kiln
attributes.status = 'FINISHED'                     ->  status = 'finished'
tags."mlflow.runName" LIKE 'sweep%'                ->  name like 'sweep%'
metrics.`val loss` < 0.2                           ->  metrics.`val loss` < 0.2
attributes.run_id IN ('ab12...', 'cd34...')        ->  id in ('ab12...', 'cd34...')
```

What has no kiln counterpart (`datasets.*`, `attributes.artifact_uri`, ...) is refused
with an `MlflowRequestError`, never dropped: a search must not quietly match more runs
than it was asked for.
"""

from __future__ import annotations

import re

__all__ = ["MlflowRequestError", "translate_filter", "translate_order_by"]


class MlflowRequestError(Exception):
    """A request the MLflow API answers with an error: `code` is MLflow's error code
    (INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ...), `status` the HTTP status."""

    def __init__(self, message: str, code: str = "INVALID_PARAMETER_VALUE", status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<backquoted>`[^`]*`)
    | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),.])
    | (?P<word>[A-Za-z_][A-Za-z0-9_\-:/]*)
    )""",
    re.VERBOSE,
)
_NAMESPACES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "parameter": "params",
    "tags": "tags",
    "tag": "tags",
}
_ATTRIBUTE_PREFIXES = ("attributes", "attribute", "attr", "run")
#: MLflow run attributes and the kiln attribute each is.
_ATTRIBUTES = {
    "run_id": "id",
    "run_name": "name",
    "status": "status",
    "start_time": "start_time",
    "created": "start_time",
    "end_time": "end_time",
    "user_id": "user",
}
_STATUSES = {"running", "finished", "failed", "killed", "scheduled"}
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise MlflowRequestError(
                f"Could not parse the filter {text!r} at position {pos} ({text[pos : pos + 20]!r})."
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _quote_key(key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return key
    if "`" in key:
        raise MlflowRequestError(f"A key with a back-quote cannot be searched: {key!r}.")
    return f"`{key}`"


def _unquote(kind: str, text: str) -> str:
    if kind in ("string", "backquoted"):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _field(toks: list[tuple[str, str]], i: int) -> tuple[str, str | None, int]:
    """The kiln field starting at toks[i]; its kiln attribute name (None for a key);
    the index after it."""
    kind, text = toks[i]
    word = text.lower() if kind == "word" else None
    if word in _NAMESPACES and i + 2 < len(toks) and toks[i + 1] == ("punct", "."):
        ns = _NAMESPACES[word]
        # An unquoted key may contain dots (tags.mlflow.runName): take every word.piece.
        j = i + 2
        key_kind, key_text = toks[j]
        if key_kind not in ("word", "string", "backquoted", "number"):
            raise MlflowRequestError(f"Expected a key after {text}. in the filter.")
        key = _unquote(key_kind, key_text)
        j += 1
        while key_kind == "word" and j + 1 < len(toks) and toks[j] == ("punct", "."):
            if toks[j + 1][0] != "word":
                break
            key += "." + toks[j + 1][1]
            j += 2
        if ns == "tags" and key == "mlflow.runName":
            return "name", "name", j
        return f"{ns}.{_quote_key(key)}", None, j
    if word in _ATTRIBUTE_PREFIXES and i + 2 < len(toks) and toks[i + 1] == ("punct", "."):
        i += 2
        kind, text = toks[i]
        word = _unquote(kind, text).lower()
    if word is not None and word in _ATTRIBUTES:
        return _ATTRIBUTES[word], _ATTRIBUTES[word], i + 1
    if word and word.startswith("dataset"):
        raise MlflowRequestError("kiln's MLflow API cannot search runs by datasets.* yet.")
    raise MlflowRequestError(
        f"Unknown field {text!r} in the filter: expected metrics.<key>, params.<key>, "
        f"tags.<key> or an attribute ({', '.join(sorted(_ATTRIBUTES))})."
    )


def _literal(kind: str, text: str, attribute: str | None) -> str:
    if kind == "number":
        return text
    if kind != "string":
        raise MlflowRequestError(f"Expected a value (a number or a quoted string), got {text!r}.")
    value = _unquote(kind, text)
    if attribute == "status":
        if value.lower() not in _STATUSES:
            raise MlflowRequestError(
                f"Unknown run status {value!r}: expected RUNNING, FINISHED, FAILED or KILLED."
            )
        value = value.lower()
    return _string(value)


def translate_filter(text: str | None) -> str | None:
    """Translate an MLflow `filter_string` into kiln's filter language (None if empty).

    Raises:
        MlflowRequestError: Something kiln cannot search by, or a syntax error.
    """
    if not text or not text.strip():
        return None
    toks = _tokens(text)
    out: list[str] = []
    i = 0
    while i < len(toks):
        kind, tok = toks[i]
        low = tok.lower()
        if kind == "punct" and tok in "()":
            out.append(tok)
            i += 1
            continue
        if kind == "word" and low in ("and", "or", "not"):
            out.append(low)
            i += 1
            continue
        field, attribute, i = _field(toks, i)
        out.append(field)
        if i >= len(toks):
            raise MlflowRequestError(
                f"The filter {text!r} ends after {field}; expected a comparison."
            )
        kind, tok = toks[i]
        low = tok.lower()
        if kind == "op":
            if i + 1 >= len(toks):
                raise MlflowRequestError(f"The filter {text!r} ends before a value.")
            out += [tok, _literal(*toks[i + 1], attribute)]
            i += 2
        elif kind == "word" and low in ("like", "ilike"):
            # kiln's like ignores case, as MLflow's ILIKE; MLflow's LIKE does not.
            if i + 1 >= len(toks):
                raise MlflowRequestError(f"The filter {text!r} ends before a value.")
            out += ["like", _literal(*toks[i + 1], attribute)]
            i += 2
        elif kind == "word" and low == "is":
            negate = i + 1 < len(toks) and toks[i + 1][1].lower() == "not"
            j = i + (2 if negate else 1)
            if j >= len(toks) or toks[j][1].lower() != "null":
                raise MlflowRequestError("Expected IS NULL or IS NOT NULL in the filter.")
            out += ["is", "not", "null"] if negate else ["is", "null"]
            i = j + 1
        elif kind == "word" and low in ("in", "not"):
            if low == "not":
                if i + 1 >= len(toks) or toks[i + 1][1].lower() not in ("in", "like", "ilike"):
                    raise MlflowRequestError("Expected NOT IN or NOT LIKE in the filter.")
                out.append("not")
                i += 1
                low = toks[i][1].lower()
                if low in ("like", "ilike"):
                    out += ["like", _literal(*toks[i + 1], attribute)]
                    i += 2
                    continue
            if i + 1 >= len(toks) or toks[i + 1] != ("punct", "("):
                raise MlflowRequestError("Expected a parenthesized list after IN in the filter.")
            out += ["in", "("]
            i += 2
            while i < len(toks) and toks[i] != ("punct", ")"):
                if toks[i] == ("punct", ","):
                    out.append(",")
                else:
                    out.append(_literal(*toks[i], attribute))
                i += 1
            if i >= len(toks):
                raise MlflowRequestError("An IN list in the filter lacks its closing ')'.")
            out.append(")")
            i += 1
        else:
            raise MlflowRequestError(
                f"Expected a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS NULL) after "
                f"{field}, got {tok!r}."
            )
    return " ".join(out).replace("( ", "(").replace(" )", ")").replace(" ,", ",")


def translate_order_by(items: list[str] | None) -> str | None:
    """Translate MLflow's `order_by` (`["metrics.acc DESC", "start_time"]`) into kiln's."""
    keys: list[str] = []
    for item in items or []:
        toks = _tokens(item)
        if not toks:
            continue
        field, _attribute, i = _field(toks, 0)
        rest = [t[1].lower() for t in toks[i:]]
        if rest not in ([], ["asc"], ["desc"]):
            raise MlflowRequestError(
                f"Cannot order by {item!r}: expected a field, then ASC or DESC."
            )
        keys.append(" ".join([field, *rest]))
    return ", ".join(keys) or None
