"""Reference profiles for monitoring: statistics per column and a seeded sample of rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiln import ConfigurationError, SignatureError
from kiln.models._profile import QUANTILES, reference_profile


def _frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 10_000, size=n)
    income[:5] = np.nan
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "income": income,
            "children": rng.integers(0, 4, size=n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], size=n, p=[0.5, 0.3, 0.2]),
            "member": rng.random(n) < 0.25,
            "plan": pd.Categorical(rng.choice(["a", "b"], size=n), categories=["a", "b", "c"]),
            "joined": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
        }
    )


def test_the_profile_is_json_without_nan_and_deterministic() -> None:
    frame = _frame()

    profile, sample = reference_profile(frame, seed=3, sample_size=100)
    again, sample_again = reference_profile(frame, seed=3, sample_size=100)

    assert json.loads(json.dumps(profile, allow_nan=False)) == profile
    assert profile == again
    pd.testing.assert_frame_equal(sample, sample_again)
    assert (profile["n_rows"], profile["seed"], profile["sample_rows"]) == (500, 3, 100)
    assert list(profile["columns"]) == list(frame.columns)


def test_numeric_columns_have_quantiles_moments_nulls_and_a_histogram() -> None:
    frame = _frame()
    income = frame["income"].dropna()

    stats = reference_profile(frame)[0]["columns"]["income"]

    assert (stats["kind"], stats["dtype"], stats["nulls"], stats["count"]) == (
        "float",
        "float64",
        5,
        495,
    )
    assert stats["quantiles"]["probs"] == list(QUANTILES)
    assert stats["quantiles"]["values"] == pytest.approx(np.quantile(income, QUANTILES).tolist())
    assert stats["quantiles"]["values"][0] == stats["min"] == income.min()
    assert stats["mean"] == pytest.approx(income.mean())
    assert stats["std"] == pytest.approx(income.std())
    assert len(stats["histogram"]["edges"]) == 21
    assert len(stats["histogram"]["counts"]) == 20
    assert sum(stats["histogram"]["counts"]) == 495
    assert stats["value_counts"] is None


def test_whole_number_columns_with_few_values_get_exact_counts() -> None:
    frame = _frame()

    stats = reference_profile(frame)[0]["columns"]["children"]

    expected = frame["children"].value_counts().sort_index()
    assert stats["value_counts"] == {
        "values": expected.index.tolist(),
        "counts": expected.tolist(),
    }
    assert stats["histogram"] is None
    assert (stats["min"], stats["max"]) == (0, 3)


def test_infinite_values_are_counted_apart_from_the_statistics() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, np.inf, -np.inf, np.nan, 3.0]})

    stats = reference_profile(frame)[0]["columns"]["x"]

    assert (stats["count"], stats["nulls"], stats["infinite"]) == (5, 1, 2)
    assert (stats["min"], stats["max"], stats["mean"]) == (1.0, 3.0, 2.0)


def test_an_all_null_numeric_column_has_no_statistics() -> None:
    profile = reference_profile(pd.DataFrame({"x": [np.nan, np.nan]}))[0]

    stats = profile["columns"]["x"]
    assert (stats["count"], stats["nulls"], stats["mean"], stats["histogram"]) == (0, 2, None, None)
    json.dumps(profile, allow_nan=False)


def test_categorical_columns_have_exact_counts_of_every_category() -> None:
    frame = _frame()

    columns = reference_profile(frame)[0]["columns"]

    city = columns["city"]
    expected = frame["city"].value_counts()
    assert city["categories"] == {"values": expected.index.tolist(), "counts": expected.tolist()}
    assert (city["distinct"], city["truncated"], city["other_count"]) == (3, False, 0)
    member = columns["member"]
    assert member["categories"]["values"] == [False, True]
    plan = columns["plan"]
    assert plan["categories"]["values"][-1] == "c"  # declared but unused: counted as 0
    assert plan["categories"]["counts"][-1] == 0
    assert plan["distinct"] == 2


def test_more_than_10000_categories_keeps_the_most_frequent_and_says_so() -> None:
    values = [f"id{i}" for i in range(10_050)] + ["common"] * 5
    frame = pd.DataFrame({"id": values})

    stats = reference_profile(frame)[0]["columns"]["id"]

    assert stats["truncated"] is True
    assert stats["distinct"] == 10_051
    assert len(stats["categories"]["values"]) == 10_000
    assert stats["categories"]["values"][0] == "common"
    assert stats["categories"]["counts"][0] == 5
    assert stats["other_count"] == 51


def test_datetime_columns_have_their_range() -> None:
    frame = _frame()

    stats = reference_profile(frame)[0]["columns"]["joined"]

    assert stats["kind"] == "datetime"
    assert stats["min"] == frame["joined"].min().isoformat()
    assert stats["max"] == frame["joined"].max().isoformat()


def test_the_sample_is_seeded_and_takes_the_same_rows_for_every_column() -> None:
    frame = _frame(n=2_000)

    _, sample = reference_profile(frame, seed=1, sample_size=300)
    _, other = reference_profile(frame, seed=2, sample_size=300)

    assert len(sample) == 300
    assert sample["row"].is_monotonic_increasing
    expected = frame.set_index("row").loc[sample["row"]].reset_index()
    pd.testing.assert_frame_equal(sample, expected[list(frame.columns)])
    assert sample["row"].tolist() != other["row"].tolist()


def test_a_small_frame_is_sampled_whole() -> None:
    frame = _frame(n=50)

    profile, sample = reference_profile(frame, sample_size=10_000)

    assert profile["sample_rows"] == 50
    pd.testing.assert_frame_equal(sample, frame)


def test_the_sample_saves_as_parquet_even_with_integer_column_names(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3))  # columns 0, 1, 2

    profile, sample = reference_profile(frame)
    sample.to_parquet(tmp_path / "sample.parquet")

    assert list(sample.columns) == ["0", "1", "2"]
    assert [c["name_is_int"] for c in profile["columns"].values()] == [True, True, True]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sample.parquet"), sample)


def test_arrays_are_profiled_with_x_names() -> None:
    profile, sample = reference_profile(np.array([[1.0, 2.0], [3.0, 4.0]]))

    assert list(profile["columns"]) == ["x0", "x1"]
    assert list(sample.columns) == ["x0", "x1"]


def test_unsupported_columns_are_refused_as_for_signatures() -> None:
    frame = pd.DataFrame({"mixed": [1, "a"]})

    with pytest.raises(SignatureError, match="'mixed' holds values of types int, str"):
        reference_profile(frame)


def test_a_negative_sample_size_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="sample_size must be 0 or more"):
        reference_profile(_frame(), sample_size=-1)
