"""The run filter language: parser errors with positions, semantics on both backends, order-by.

The property test logs random runs and compares `search_runs(filter=...)` with a reference
evaluator written here from the documented semantics (`kiln.tracking` and `_filter`
docstrings): a comparison on a missing metric, param or tag is false, only `is null`
matches it; params compare as numbers when the literal is a number and the param parses
as one, else as text; `like` ignores case.
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import kiln
from kiln import FilterSyntaxError, TrackingError
from kiln.tracking import TrackingClient
from kiln.tracking._filter import And, Compare, Field, Not, Or, parse_filter, parse_order_by

# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("expression", "position", "message"),
    [
        ("metrics.acc >", 13, r"Expected a value \(a number or a 'quoted string'\)"),
        ("metrics.acc > 0.9 and", 21, r"Expected a field such as metrics\.acc"),
        ("metrics.acc > 0.9 and or", 22, r"Unknown run attribute 'or'"),
        ("(metrics.acc > 0.9", 0, r"Missing '\)' to close the '\(' here"),
        ("((metrics.acc > 0.9)", 0, r"Missing '\)' to close the '\(' here"),
        ("metrics.acc > 0.9)", 17, r"Unbalanced '\)': no '\(' opens it"),
        ("(metrics.acc > 0.9 status = 'x')", 19, r"Expected '\)', found 'status'"),
        ("staus = 'finished'", 0, r"Unknown run attribute 'staus'.*Did you mean 'status'\?"),
        ("metrics.acc > 0.5 and strat_time > 0", 22, r"Did you mean 'start_time'\?"),
        ("metric.acc > 0.5", 0, r"Unknown namespace 'metric'.*Did you mean 'metrics'\?"),
        ("params.model = rf", 15, r"found 'rf'\. Quote strings: 'rf'\."),
        ("params.model = 'rf", 15, r"Unterminated quoted string"),
        ("metrics.acc > 0.9 & status = 'x'", 18, r"Unexpected character '&'"),
        ("metrics.acc 0.9", 12, r"Expected an operator .*found '0\.9'"),
        ("metrics.acc", 11, r"Expected an operator \(=, !=, <, <=, >, >=, like, in, is null\)"),
        ("metrics. > 1", 9, r"Expected a key after the '\.'"),
        ("tags.note is nul", 13, r"Expected 'null' after 'is'"),
        ("tags.note not between 1", 14, r"Expected 'like' or 'in' after 'not'"),
        ("params.alpha in 0.1", 16, r"Expected '\(' to start the list after 'in'"),
        ("params.alpha in (0.1, 0.3", 25, r"Expected ',' or '\)' in the list"),
        ("params.alpha in ()", 17, r"Expected a value"),
        ("tags.note like 3", 15, r"'like' needs a quoted pattern such as 'rf%'"),
        ("status = 'x' status = 'y'", 13, r"Expected 'and', 'or' or the end, found 'status'"),
        ("= 1", 0, r"Expected a field .*found '='"),
    ],
)
def test_parse_errors_name_the_position(expression: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError, match=message) as info:
        parse_filter(expression)
    err = info.value
    assert err.position == position
    assert err.expression == expression
    text = str(err)
    assert f"(at position {position})" in text
    # The message repeats the expression with a caret under the offending character.
    assert f"\n  {expression}\n  {' ' * position}^" in text


@pytest.mark.parametrize(
    ("order_by", "position", "message"),
    [
        ("metrics.acc sideways", 12, r"Expected ',', 'asc', 'desc' or the end, found 'sideways'"),
        ("metrics.acc desc,", 17, r"Expected a field such as metrics\.acc"),
        ("durration desc", 0, r"Did you mean 'duration'\?"),
    ],
)
def test_order_by_errors_name_the_position(order_by: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError, match=message) as info:
        parse_order_by(order_by)
    assert info.value.position == position
    assert f"(at position {position})" in str(info.value)


def test_empty_filter_is_no_filter() -> None:
    assert parse_filter("") is None
    assert parse_filter("   ") is None
    assert parse_order_by("") == []


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    a = Compare(Field("metrics", "a"), ">", 1.0)
    b = Compare(Field("params", "b"), "=", "x")
    c = Compare(Field("attribute", "status"), "=", "finished")
    assert parse_filter("metrics.a > 1 or params.b = 'x' and status = 'finished'") == Or(
        a, And(b, c)
    )
    assert parse_filter("(metrics.a > 1 or params.b = 'x') and status = 'finished'") == And(
        Or(a, b), c
    )
    assert parse_filter("not metrics.a > 1 and params.b = 'x'") == And(Not(a), b)
    assert parse_filter("not (metrics.a > 1 and params.b = 'x')") == Not(And(a, b))
    # Chains are left-associative.
    assert parse_filter("metrics.a > 1 and params.b = 'x' and status = 'finished'") == And(
        And(a, b), c
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("METRICS.acc >= 1 AND Status == 'finished'", None),
        ("metrics.`val loss` < 0.2", Compare(Field("metrics", "val loss"), "<", 0.2)),
        ('metrics."val loss" < 0.2', Compare(Field("metrics", "val loss"), "<", 0.2)),
        ("metrics.val.loss < .5", Compare(Field("metrics", "val.loss"), "<", 0.5)),
        ("metrics.layer.0 > 1", Compare(Field("metrics", "layer.0"), ">", 1.0)),
        ("metrics.layer.0.bias > 1", Compare(Field("metrics", "layer.0.bias"), ">", 1.0)),
        ("metrics.lr.0.5 > 1", Compare(Field("metrics", "lr.0.5"), ">", 1.0)),
        ("metrics.loss > -1e-3", Compare(Field("metrics", "loss"), ">", -0.001)),
        ("params.note = 'it''s'", Compare(Field("params", "note"), "=", "it's")),
        ("params.note = 'a\\'b'", Compare(Field("params", "note"), "=", "a'b")),
        ('params.note = "say \\"hi\\""', Compare(Field("params", "note"), "=", 'say "hi"')),
        ("params.flag = TRUE", Compare(Field("params", "flag"), "=", True)),
        ("params.a <> 1", Compare(Field("params", "a"), "!=", 1.0)),
        ("params.a in (0.1, 'x')", Compare(Field("params", "a"), "in", (0.1, "x"))),
        ("params.a not in (1)", Compare(Field("params", "a"), "notin", (1.0,))),
        ("tags.t not like 'd%'", Compare(Field("tags", "t"), "notlike", "d%")),
        ("tags.t ilike 'd%'", Compare(Field("tags", "t"), "like", "d%")),
        ("tags.t is not null", Compare(Field("tags", "t"), "notnull", None)),
        ("tags.t IS NULL", Compare(Field("tags", "t"), "isnull", None)),
        ("run.status = 'x'", Compare(Field("attribute", "status"), "=", "x")),
        ("attributes.name = 'x'", Compare(Field("attribute", "name"), "=", "x")),
    ],
)
def test_parses(expression: str, expected: Compare | None) -> None:
    node = parse_filter(expression)
    if expected is not None:
        assert node == expected
    else:
        assert node == And(
            Compare(Field("metrics", "acc"), ">=", 1.0),
            Compare(Field("attribute", "status"), "=", "finished"),
        )


# --------------------------------------------------------- semantics on a real store


def _names(client: TrackingClient, expression: str, **kw: Any) -> list[str]:
    return sorted(r.name for r in client.search_runs(filter=expression, **kw))


@pytest.fixture
def sample(client: TrackingClient) -> TrackingClient:
    """Four runs with overlapping, partly missing params, metrics and tags."""
    a = client.create_run(experiment="exp", name="a", tags={"note": "Debug run"})
    client.log_params(a, {"model": "rf", "alpha": 0.1, "depth": "10"})
    client.log_metrics(a, [("acc", 0.9, None, None), ("val loss", 0.3, None, None)])
    client.end_run(a)
    b = client.create_run(experiment="exp", name="b", tags={"note": "final"})
    client.log_params(b, {"model": "gbm", "alpha": 0.3, "depth": "9"})
    client.log_metrics(b, [("acc", 0.7, None, None)])
    client.end_run(b, "failed")
    c = client.create_run(experiment="other", name="c")
    client.log_params(c, {"alpha": "auto", "depth": "deep"})
    d = client.create_run(experiment="exp", name="d", parent_id=a)
    client.log_metrics(d, [("acc", 0.95, 0, None), ("acc", 0.5, 3, None), ("acc", 0.99, 1, None)])
    client.end_run(d, "killed")
    return client


# (filter, names of the matching runs of `sample`)
SEMANTICS: list[tuple[str, list[str]]] = [
    ("", ["a", "b", "c", "d"]),
    ("metrics.acc > 0.8", ["a"]),  # d's acc is 0.5: the value at its highest step
    ("metrics.acc >= 0.5 and metrics.acc < 0.8", ["b", "d"]),
    ("metrics.acc != 0.9", ["b", "d"]),  # c has no acc: a comparison on it is false
    ("not metrics.acc = 0.9", ["b", "c", "d"]),
    ("metrics.acc is null", ["c"]),
    ("metrics.acc is not null", ["a", "b", "d"]),
    ("metrics.`val loss` < 0.5", ["a"]),
    ("metrics.acc in (0.7, 0.5)", ["b", "d"]),
    ("metrics.acc not in (0.7, 0.5)", ["a"]),
    ("params.model = 'rf'", ["a"]),
    ("params.model != 'rf'", ["b"]),
    ("params.alpha > 0.2", ["b", "c"]),  # 0.3 > 0.2; 'auto' is text: 'auto' > '0.2'
    ("params.alpha != 0.1", ["b", "c"]),  # 'auto' compares as text: 'auto' != '0.1'
    ("params.alpha = 0.10", ["a"]),
    ("params.alpha = '0.10'", []),  # a quoted literal compares as text
    ("params.depth > 9", ["a", "c"]),  # numerically 10 > 9 (as text '10' < '9'); 'deep' > '9'
    ("params.depth > '9'", ["c"]),  # text: 'deep' > '9'; '10' < '9'
    ("params.depth in (9, 10)", ["a", "b"]),
    ("params.alpha in (0.1, 'auto')", ["a", "c"]),  # a mixed list compares as text
    ("params.model like 'R%'", ["a"]),  # like ignores case on both backends
    ("params.model not like '%b%'", ["a"]),
    ("params.model like '_bm'", ["b"]),
    ("tags.note like 'debug%'", ["a"]),
    ("tags.note = 'debug run'", []),  # = is exact
    ("tags.note is null", ["c", "d"]),
    ("status = 'finished'", ["a"]),
    ("status in ('failed', 'killed')", ["b", "d"]),
    ("status != 'running'", ["a", "b", "d"]),
    ("experiment = 'other'", ["c"]),
    ("name = 'b' or name = 'c'", ["b", "c"]),
    ("parent_id is not null", ["d"]),
    ("parent_id is null", ["a", "b", "c"]),
    ("not parent_id = 'nothing'", ["a", "b", "c", "d"]),
    ("end_time is null", ["c"]),
    ("not end_time > 0", ["c"]),  # a running run has no end time
    ("duration >= 0", ["a", "b", "d"]),
    ("start_time > '2000-01-01'", ["a", "b", "c", "d"]),
    ("start_time < '2000-01-01T00:00'", []),
    ("start_time > 946684800000", ["a", "b", "c", "d"]),
    ("(status = 'finished' or status = 'killed') and not tags.note like 'debug%'", ["d"]),
]


def test_filter_semantics(sample: TrackingClient) -> None:
    # One store per backend for the whole table; every mismatch is reported at once.
    wrong = {}
    for expression, expected in SEMANTICS:
        got = _names(sample, expression)
        if got != expected:
            wrong[expression] = {"got": got, "expected": expected}
    assert wrong == {}


def test_filter_by_id_experiment_and_number_literal_on_text(client: TrackingClient) -> None:
    rid = client.create_run(experiment="x", name="42")
    client.create_run(experiment="x", name="other")
    assert _names(client, f"id = '{rid}'") == ["42"]
    assert _names(client, "name = 42") == ["42"]  # a number compares as its text
    assert _names(client, "name in (42, 'other')") == ["42", "other"]
    assert _names(client, "status = 'running'", experiment="x") == ["42", "other"]


COMPILE_ERRORS: list[tuple[str, int, str]] = [
    ("metrics.acc > 'high'", 0, r"metrics\.acc is a number; compare it with a number"),
    ("status = 'x' or metrics.acc like 'a%'", 16, r"metrics\.acc is a number"),
    ("metrics.acc in (1, 'a')", 0, r"metrics\.acc is a number"),
    ("duration > 'long'", 0, r"duration is a number; compare it with a number"),
    ("start_time > 'yesterday'", 0, r"'yesterday' is not an ISO date such as '2026-11-01'"),
    ("end_time < true", 0, r"Times compare with a number \(ms\) or an ISO date"),
]


def test_type_errors_found_when_compiling(client: TrackingClient) -> None:
    client.create_run(experiment="e")
    for expression, position, message in COMPILE_ERRORS:
        with pytest.raises(FilterSyntaxError, match=message) as info:
            client.search_runs(filter=expression)
        assert info.value.position == position, expression
        assert f"(at position {position})" in str(info.value)


def test_runs_filter_errors_reach_the_module_api(tracked: str) -> None:
    with kiln.start_run(experiment="e"):
        kiln.log_metric("acc", 0.5)
    with pytest.raises(FilterSyntaxError, match=r"at position 14") as info:
        kiln.runs(filter="metrics.acc > ")
    assert info.value.position == 14
    # A refused filter changes nothing.
    assert len(kiln.runs(experiment="e")) == 1


def test_thousands_of_terms_run_on_both_backends(client: TrackingClient) -> None:
    # Each `or` once cost a level of recursion in the compiler, and SQLite refuses an
    # expression tree deeper than 1000: 3,000 terms were a RecursionError.
    names = [f"r{i}" for i in range(5)]
    for name in names:
        client.create_run(experiment="many", name=name)
    wanted = " or ".join(f"name = 'r{i % 7}'" for i in range(3000))
    assert _names(client, wanted) == names
    both = " and ".join(f"name != 'x{i}'" for i in range(3000))
    assert _names(client, both) == names
    mixed = " or ".join(
        f"(name = 'r1' and duration is null and params.p{i} is null)" for i in range(1500)
    )
    assert _names(client, mixed) == ["r1"]


@pytest.mark.parametrize(
    ("expression", "position"),
    [
        ("(" * 1000 + "name = 'a'" + ")" * 1000, 16),
        ("not " * 300 + "name = 'a'", 64),
        ("not (" * 60 + "name = 'a'" + ")" * 60, 40),
    ],
)
@pytest.mark.filterwarnings("ignore::kiln.UnknownFilterKeyWarning")  # keys no run has, on purpose
def test_deep_nesting_is_refused_with_the_limit(
    client: TrackingClient, expression: str, position: int
) -> None:
    client.create_run(experiment="deep", name="a")
    with pytest.raises(
        FilterSyntaxError, match=r"nests parentheses and 'not' more than 16 levels deep"
    ) as info:
        client.search_runs(filter=expression)
    assert info.value.position == position
    assert len(str(info.value)) < 400  # an excerpt around the position, not 2,000 characters
    # At the limit, the deepest shape (and/or alternating at every level, each level with
    # more terms than one SQL group, on metric subqueries) runs on both backends.
    term = "metrics.m > 1"
    deepest = "".join(
        f"({' and '.join([term] * 300)} {'or' if i % 2 else 'and'} " for i in range(16)
    )
    assert _names(client, deepest + term + ")" * 16) == []
    assert _names(client, "not " * 16 + "name = 'b'") == []
    assert _names(client, "not (" * 7 + "name = 'b'" + ")" * 7) == ["a"]


# ------------------------------------------------------------------ order by, limit


def test_order_by_metric_puts_missing_values_last(client: TrackingClient) -> None:
    values = {"a": 0.5, "b": None, "c": 0.9, "d": 0.1, "e": None}
    for name, acc in values.items():
        rid = client.create_run(experiment="o", name=name)
        if acc is not None:
            client.log_metrics(rid, [("acc", acc, None, None)])

    def order(by: str | list[str], limit: int | None = None) -> list[str]:
        return [r.name for r in client.search_runs(order_by=by, limit=limit)]

    desc = order("metrics.acc desc")
    assert desc[:3] == ["c", "a", "d"]
    assert sorted(desc[3:]) == ["b", "e"]
    asc = order("metrics.acc ASC")
    assert asc[:3] == ["d", "a", "c"]
    assert sorted(asc[3:]) == ["b", "e"]
    assert order("metrics.acc") == asc  # ascending by default
    assert order("metrics.acc desc", limit=2) == ["c", "a"]
    assert order(["metrics.acc desc"], limit=10) == desc
    assert order("name desc") == ["e", "d", "c", "b", "a"]


def test_order_by_params_numeric_then_text_and_several_keys(client: TrackingClient) -> None:
    for name, depth, group in [
        ("a", "9", "x"),
        ("b", "10", "y"),
        ("c", "deep", "x"),
        ("d", None, "y"),
        ("e", "2", "y"),
    ]:
        rid = client.create_run(experiment="o", name=name, tags={"group": group})
        if depth is not None:
            client.log_params(rid, {"depth": depth})
    by_depth = [r.name for r in client.search_runs(order_by="params.depth")]
    assert by_depth == ["e", "a", "b", "c", "d"]  # 2 < 9 < 10 numerically, text, missing
    by_two = [r.name for r in client.search_runs(order_by="tags.group, params.depth desc")]
    assert by_two == ["a", "c", "b", "e", "d"]
    by_list = [r.name for r in client.search_runs(order_by=["tags.group desc", "name"])]
    assert by_list == ["b", "d", "e", "a", "c"]


def test_default_order_is_newest_first_and_limit(tracked: str) -> None:
    for i in range(4):
        with kiln.start_run(name=f"r{i}", experiment="lim"):
            kiln.log_metric("i", i)
    df = kiln.runs(experiment="lim")
    # Runs started in the same millisecond tie on start_time; the id breaks the tie, so
    # compare start times rather than names.
    assert list(df["start_time"]) == sorted(df["start_time"], reverse=True)
    assert len(kiln.runs(experiment="lim", limit=2)) == 2
    assert list(kiln.runs(order_by="metrics.i desc", limit=3)["name"]) == ["r3", "r2", "r1"]
    assert list(kiln.runs(order_by="metrics.i", limit=100)["name"]) == ["r0", "r1", "r2", "r3"]


def test_limit_must_be_a_positive_integer(client: TrackingClient) -> None:
    client.create_run()
    for limit in (0, -1, True, 2.5, "3"):
        with pytest.raises(
            TrackingError, match="limit must be a positive integer; got " + re.escape(repr(limit))
        ):
            client.search_runs(limit=limit)
    assert len(client.search_runs(limit=1)) == 1


# ------------------------------------------------------------ the property test

METRIC_KEYS = ("acc", "val loss")
PARAM_KEYS = ("p", "q")
TAG_KEYS = ("t",)
METRIC_VALUES = (-1.0, 0.0, 0.1, 0.5, 0.9, 1.0, 2.5, 10.0)
PARAM_VALUES = ("1", "2.5", "10", "-1", "0.1", "1e1", "rf", "RF", "Rf", "True")
TAG_VALUES = ("a", "A", "ab", "aB", "b", "10", "9", "o'k", "")
STATUSES = ("running", "finished", "failed", "killed")
NUMBER_LITERALS = ("0", "1", "-1", "0.5", "0.9", "2.5", "10", "1e1", "0.1", ".5")
STRING_LITERALS = (*PARAM_VALUES, *TAG_VALUES, *STATUSES, "x", "fin")
PATTERNS = ("a%", "A_", "%b", "%B", "r_", "R%", "_", "%", "%'%", "%1%", "%E%")


@dataclass
class RunSpec:
    status: str
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def latest(self, key: str) -> float:
        return max(self.metrics[key])[1]  # the value at the highest step


@st.composite
def run_specs(draw: st.DrawFn) -> RunSpec:
    spec = RunSpec(status=draw(st.sampled_from(STATUSES)))
    present = st.sampled_from((True, True, False))  # most keys present, some missing
    for key in METRIC_KEYS:
        if draw(present):
            steps = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
            spec.metrics[key] = [(s, draw(st.sampled_from(METRIC_VALUES))) for s in steps]
    for key in PARAM_KEYS:
        if draw(present):
            spec.params[key] = draw(st.sampled_from(PARAM_VALUES))
    for key in TAG_KEYS:
        if draw(present):
            spec.tags[key] = draw(st.sampled_from(TAG_VALUES))
    return spec


# A literal is ("num", text) or ("str", value); a leaf is ("cmp", kind, key, op, literals).
_num = st.sampled_from(NUMBER_LITERALS).map(lambda t: ("num", t))
_ops = st.sampled_from(("=", "!=", "<", "<=", ">", ">="))


@functools.cache
def filters(seen: tuple[str, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Filter trees whose string literals come mostly from `seen` (the runs' values).

    Patterns for `like` are fixed ones or seen values with their case flipped and a
    wildcard added, so that matches differing only in case are common.
    """
    words = tuple(dict.fromkeys((*seen, *STRING_LITERALS)))
    strings = (
        st.one_of(st.sampled_from(seen), st.sampled_from(words)) if seen else st.sampled_from(words)
    )
    string = strings.map(lambda v: ("str", v))
    pattern = st.one_of(
        st.sampled_from(PATTERNS),
        st.builds(
            lambda value, flip, wildcard: (value.swapcase() if flip else value) + wildcard,
            strings,
            st.booleans(),
            st.sampled_from(("", "%", "_")),
        ),
    ).map(lambda v: ("str", v))

    @st.composite
    def leaves(draw: st.DrawFn) -> tuple[Any, ...]:
        kind = draw(st.sampled_from(("metrics", "params", "tags", "status")))
        key = draw(
            {
                "metrics": st.sampled_from(METRIC_KEYS),
                "params": st.sampled_from(PARAM_KEYS),
                "tags": st.sampled_from(TAG_KEYS),
                "status": st.just("status"),
            }[kind]
        )
        form = draw(st.sampled_from(("op", "op", "op", "in", "notin", "null", "like", "notlike")))
        if form == "null" and kind != "status":
            return ("cmp", kind, key, draw(st.sampled_from(("isnull", "notnull"))), ())
        if form in ("like", "notlike") and kind != "metrics":
            return ("cmp", kind, key, form, (draw(pattern),))
        literal = _num if kind == "metrics" else st.one_of(_num, string)
        if form in ("in", "notin"):
            items = draw(st.lists(literal, min_size=1, max_size=3))
            return ("cmp", kind, key, form, tuple(items))
        return ("cmp", kind, key, draw(_ops), (draw(literal),))

    return st.recursive(
        leaves(),
        lambda inner: st.one_of(
            st.tuples(st.just("and"), inner, inner),
            st.tuples(st.just("or"), inner, inner),
            st.tuples(st.just("not"), inner),
        ),
        max_leaves=5,
    )


_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4}


def _render_literal(lit: tuple[str, str]) -> str:
    kind, text = lit
    return text if kind == "num" else "'" + text.replace("'", "''") + "'"


def _render_field(kind: str, key: str) -> str:
    if kind == "status":
        return "status"
    return f"{kind}.`{key}`" if " " in key else f"{kind}.{key}"


def render(node: tuple[Any, ...], parent: int = 0) -> str:
    """Filter text with only the parentheses precedence needs (plus a few keyword cases)."""
    tag = node[0]
    if tag == "cmp":
        _, kind, key, op, lits = node
        lhs = _render_field(kind, key)
        if op in ("isnull", "notnull"):
            return f"{lhs} is {'not ' if op == 'notnull' else ''}null"
        if op in ("in", "notin"):
            items = ", ".join(_render_literal(v) for v in lits)
            return f"{lhs} {'not in' if op == 'notin' else 'in'} ({items})"
        if op in ("like", "notlike"):
            return f"{lhs} {'not like' if op == 'notlike' else 'LIKE'} {_render_literal(lits[0])}"
        return f"{lhs} {op} {_render_literal(lits[0])}"
    if tag == "not":
        text = "not " + render(node[1], _PREC["not"])
    else:
        word = "and" if tag == "and" else "OR"
        text = f"{render(node[1], _PREC[tag])} {word} {render(node[2], _PREC[tag] + 1)}"
    return f"({text})" if _PREC[tag] < parent else text


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _literal_text(lit: tuple[str, str]) -> str:
    kind, text = lit
    if kind == "str":
        return text
    value = float(text)
    return str(int(value)) if value.is_integer() else str(value)


def _like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


_CMP = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def evaluate(node: tuple[Any, ...], run: RunSpec) -> bool:
    """The documented semantics, in plain Python."""
    tag = node[0]
    if tag == "and":
        return evaluate(node[1], run) and evaluate(node[2], run)
    if tag == "or":
        return evaluate(node[1], run) or evaluate(node[2], run)
    if tag == "not":
        return not evaluate(node[1], run)
    _, kind, key, op, lits = node
    value: Any
    if kind == "status":
        present, value = True, run.status
    elif kind == "metrics":
        present = key in run.metrics
        value = run.latest(key) if present else None
    else:
        store = run.params if kind == "params" else run.tags
        present, value = key in store, store.get(key)
    if op == "isnull":
        return not present
    if op == "notnull":
        return present
    if not present:
        return False  # a comparison on a missing metric, param or tag is false
    if kind == "metrics":
        wanted: list[Any] = [float(text) for _, text in lits]
    elif (
        kind == "params"
        and all(k == "num" for k, _ in lits)
        and (number := _as_number(value)) is not None
    ):
        value, wanted = number, [float(text) for _, text in lits]
    else:
        wanted = [_literal_text(lit) for lit in lits]
    if op == "in":
        return value in wanted
    if op == "notin":
        return value not in wanted
    if op == "like":
        return _like(value, wanted[0])
    if op == "notlike":
        return not _like(value, wanted[0])
    return bool(_CMP[op](value, wanted[0]))


def _log(client: TrackingClient, experiment: str, spec: RunSpec) -> str:
    rid = client.create_run(experiment=experiment, tags=spec.tags)
    client.log_params(rid, spec.params)
    rows = [
        (key, value, step, None) for key, series in spec.metrics.items() for step, value in series
    ]
    client.log_metrics(rid, rows)
    if spec.status != "running":
        client.end_run(rid, spec.status)
    return rid


def _check_example(client: TrackingClient, data: st.DataObject) -> None:
    specs = data.draw(st.lists(run_specs(), min_size=1, max_size=6), label="runs")
    seen = sorted({v for s in specs for v in (*s.params.values(), *s.tags.values(), s.status)})
    expressions = data.draw(st.lists(filters(tuple(seen)), min_size=2, max_size=8), label="filters")
    order_key = data.draw(st.sampled_from(METRIC_KEYS), label="order by")
    descending = data.draw(st.booleans(), label="descending")
    # Each example logs its runs into an experiment of its own, in the test's one store.
    experiment = f"prop-{uuid.uuid4().hex[:12]}"
    runs = {_log(client, experiment, spec): spec for spec in specs}
    for node in expressions:
        text = render(node)
        expected = {rid for rid, spec in runs.items() if evaluate(node, spec)}
        found = [r.id for r in client.search_runs(experiment=experiment, filter=text)]
        wrong = [runs[rid] for rid in set(found) ^ expected]
        assert not wrong, f"filter {text!r} is wrong about these runs: {wrong}"
        assert len(found) == len(expected), text  # no duplicates from joins
    # Order by a metric: values sorted, runs without it last.
    direction = "desc" if descending else "asc"
    ordered = client.search_runs(
        experiment=experiment, order_by=f"metrics.`{order_key}` {direction}"
    )
    got = [
        runs[r.id].latest(order_key) if order_key in runs[r.id].metrics else None for r in ordered
    ]
    present = [v for v in got if v is not None]
    assert present == sorted(present, reverse=descending)
    assert got == present + [None] * (len(got) - len(present))
    assert {r.id for r in ordered} == set(runs)
    # The metric values reported are the values at the highest step.
    for r in ordered:
        assert r.metrics == {k: runs[r.id].latest(k) for k in runs[r.id].metrics}


@pytest.mark.filterwarnings("ignore::kiln.UnknownFilterKeyWarning")  # keys no run has, on purpose
def test_search_matches_reference_semantics(client: TrackingClient) -> None:
    # SQLite is quick, so it gets more examples; PostgreSQL commits cost a round trip each.
    examples = 40 if client.store.dialect == "sqlite" else 30

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI is reproducible
        database=None,
        # Shrinking re-logs runs at every step and can take minutes; the failure message
        # names the filter and the runs it got wrong instead.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        _check_example(client, data)

    check()


def test_a_filter_on_keys_no_run_has_warns_with_the_closest(client: TrackingClient) -> None:
    from kiln import UnknownFilterKeyWarning

    rid = client.create_run(experiment="typo", name="a")
    client.log_metrics(rid, [("acc", 0.9, 0, None)])
    client.log_params(rid, {"model": "rf"})
    with pytest.warns(
        UnknownFilterKeyWarning, match=r"metrics\.accc.*did you mean 'metrics\.acc'\?"
    ):
        assert client.search_runs(filter="metrics.accc > 0.5") == []
    with pytest.warns(UnknownFilterKeyWarning, match=r"tags\.x, so the filter matched nothing"):
        assert client.search_runs("typo", filter="tags.x = 'y' or params.modle = 'rf'") == []


def test_short_run_ids_match_as_prefixes_in_id_filters(client: TrackingClient) -> None:
    a = client.create_run(experiment="short", name="a")
    b = client.create_run(experiment="short", name="b", parent_id=a)
    assert _names(client, f"parent_id = '{a[:12]}'") == ["b"]
    assert _names(client, f"parent_id = '{a[:12].upper()}'") == ["b"]
    assert _names(client, f"id in ('{b[:12]}', '{a}')") == ["a", "b"]
    assert _names(client, f"id != '{a[:12]}'") == ["b"]
