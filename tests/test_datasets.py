"""Datasets logged with runs: fingerprint, schema and summary statistics, on both backends."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import kiln
from kiln import TrackingError
from kiln.tracking import DatasetInfo, TrackingClient


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20, 30, 40, 50],
            "income": [1.0, np.nan, 3.0, 5.0],
            "city": ["a", "b", "a", None],
            "churned": [True, False, True, True],
        }
    )


def test_log_dataset_records_fingerprint_schema_and_summary(tracked: str) -> None:
    df = _frame()
    with kiln.start_run() as run:
        info = kiln.log_dataset(df, name="customers", source="s3://bucket/customers.csv")
    assert isinstance(info, DatasetInfo)
    assert re.fullmatch(r"[0-9a-f]{64}", info.fingerprint)
    assert (info.name, info.role, info.direction, info.source) == (
        "customers",
        "train",
        "input",
        "s3://bucket/customers.csv",
    )
    assert (info.n_rows, info.n_cols) == (4, 4)
    assert info.schema == [
        {"name": "age", "dtype": str(df["age"].dtype), "nullable": False},
        {"name": "income", "dtype": "float64", "nullable": True},
        {"name": "city", "dtype": str(df["city"].dtype), "nullable": True},
        {"name": "churned", "dtype": "bool", "nullable": False},
    ]
    age = info.summary["age"]
    assert age == {
        "count": 4,
        "nulls": 0,
        "mean": 35.0,
        "std": pytest.approx(12.909944487358056),
        "min": 20.0,
        "25": 27.5,
        "50": 35.0,
        "75": 42.5,
        "max": 50.0,
    }
    assert info.summary["income"]["count"] == 3
    assert info.summary["income"]["nulls"] == 1
    assert info.summary["income"]["mean"] == 3.0
    assert info.summary["city"] == {"count": 3, "nulls": 1, "unique": 2, "top": {"a": 2, "b": 1}}
    assert info.summary["churned"] == {"count": 4, "nulls": 0, "mean": 0.75}
    # What the store returns is what was logged.
    assert kiln.get_run(run.id).datasets == [info]


def test_fingerprint_is_stable_and_changes_with_the_data(tracked: str) -> None:
    df = _frame()
    variants = {
        "cell": df.assign(age=[20, 30, 40, 51]),
        "renamed": df.rename(columns={"age": "years"}),
        "dtype": df.astype({"age": "float64"}),
        "rows": df.iloc[::-1],
        "index": df.set_axis([10, 11, 12, 13]),
        "fewer rows": df.head(3),
        "extra column": df.assign(z=0),
    }
    with kiln.start_run() as run:
        base = kiln.log_dataset(df, role="a").fingerprint
        again = kiln.log_dataset(_frame(), role="b").fingerprint
        prints = {k: kiln.log_dataset(v, role=k).fingerprint for k, v in variants.items()}
    assert again == base  # the same data gives the same fingerprint
    assert base not in prints.values()
    assert len(set(prints.values())) == len(prints)
    assert len(kiln.get_run(run.id).datasets) == 2 + len(variants)


def test_other_kinds_of_data(tracked: str) -> None:
    with kiln.start_run() as run:
        named = kiln.log_dataset(pd.Series([1, 2, 3], name="y"), role="series")
        unnamed = kiln.log_dataset(pd.Series([1.5, 2.5]), role="unnamed")
        flat = kiln.log_dataset(np.arange(5), role="1d")
        matrix = kiln.log_dataset(np.zeros((3, 2)), role="2d")
        columns = kiln.log_dataset({"a": [1, 2], "b": ["x", "y"]}, role="dict")
        frame = kiln.log_dataset(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), role="frame")
        rows = kiln.log_dataset([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], role="rows")
        with pytest.raises(
            TrackingError, match=r"log_dataset's data is a 3-dimensional array; expected 1 or 2"
        ):
            kiln.log_dataset(np.zeros((2, 2, 2)), role="3d")
        with pytest.raises(TrackingError, match=r"log_dataset's data is a set; expected a pandas"):
            kiln.log_dataset({1, 2, 3}, role="set")
    assert [c["name"] for c in named.schema] == ["y"]
    assert [c["name"] for c in unnamed.schema] == ["value"]
    assert (flat.n_rows, [c["name"] for c in flat.schema]) == (5, ["value"])
    assert (matrix.n_rows, matrix.n_cols) == (3, 2)
    assert [c["name"] for c in matrix.schema] == ["x0", "x1"]
    # A list of rows is a 2-D array, as signature inference reads it.
    assert (rows.n_rows, [c["name"] for c in rows.schema]) == (3, ["x0", "x1"])
    assert columns.fingerprint == frame.fingerprint  # a dict of columns is a DataFrame
    assert columns.summary["a"]["mean"] == 1.5
    roles = [d.role for d in kiln.get_run(run.id).datasets]
    assert sorted(roles) == ["1d", "2d", "dict", "frame", "rows", "series", "unnamed"]


def test_roles_directions_and_bad_arguments(tracked: str) -> None:
    train, test = _frame().head(2), _frame().tail(2)
    with kiln.start_run() as run:
        kiln.log_dataset(train, "train", name="first name")
        kiln.log_dataset(train, "train", name="second name")  # same data and role: one entry
        kiln.log_dataset(train, "reference")  # same data, another role: another entry
        kiln.log_dataset(test, role="test")
        run.log_dataset(train.assign(p=0.5), role="predictions", direction="output")
        with pytest.raises(TrackingError, match=r"direction must be 'input' or 'output'; got 'in'"):
            kiln.log_dataset(test, role="x", direction="in")
        with pytest.raises(TrackingError, match=r"A dataset role key must be a non-empty string"):
            kiln.log_dataset(test, role="")
    datasets = kiln.get_run(run.id).datasets
    assert [(d.direction, d.role, d.name) for d in datasets] == [
        ("input", "reference", None),
        ("input", "test", None),
        ("input", "train", "second name"),
        ("output", "predictions", None),
    ]
    assert datasets[0].fingerprint == datasets[2].fingerprint


def test_a_dataset_shared_by_runs_is_stored_once(client: TrackingClient) -> None:
    a = client.create_run()
    b = client.create_run()
    fa = client.log_dataset(a, _frame(), role="train", name="from a").fingerprint
    fb = client.log_dataset(b, _frame(), role="test", name="from b").fingerprint
    assert fa == fb
    assert client.info()["datasets"] == 1
    assert [(d.role, d.name) for d in client.get_run(a).datasets] == [("train", "from a")]
    assert [(d.role, d.name) for d in client.get_run(b).datasets] == [("test", "from b")]


def test_empty_and_unhashable_data(tracked: str) -> None:
    empty = pd.DataFrame({"a": pd.Series([], dtype="float64"), "b": pd.Series([], dtype=object)})
    cells = pd.DataFrame({"tokens": [["a", "b"], ["c"]], "meta": [{"k": 1}, {"k": 2}]})
    with kiln.start_run() as run:
        e = kiln.log_dataset(empty, role="empty")
        first = kiln.log_dataset(cells, role="cells")
        second = kiln.log_dataset(cells.copy(), role="cells again")
    assert (e.n_rows, e.n_cols) == (0, 2)
    assert e.summary == {
        "a": {"count": 0, "nulls": 0},
        "b": {"count": 0, "nulls": 0, "unique": 0, "top": {}},
    }
    assert first.fingerprint == second.fingerprint
    assert first.summary["tokens"]["count"] == 2
    assert len(kiln.get_run(run.id).datasets) == 3
