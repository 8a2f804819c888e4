"""Input validation against a signature: every input form, error kind and mode, and fuzzing."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln import ConfigurationError, KilnError, ValidationError
from kiln.models import DataDriftWarning, ValidationResult, Validator, infer_signature


def _training() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "f": [0.0, 50.0, 100.0],
            "i": [1, 5, 10],
            "s": ["a", "b", "c"],
            "b": [True, False, True],
            "c": pd.Categorical(["x", "y", "x"], categories=["x", "y", "z"]),
            "n": pd.array([1, None, 3], dtype="Int64"),
            0: [0.5, 1.5, np.nan],
            "d": pd.to_datetime(["2024-01-01", "2024-06-01", "2024-12-31"]),
            "dz": pd.to_datetime(["2024-01-01", "2024-06-01", "2024-12-31"], utc=True),
            "t": pd.array(["p", None, "q"], dtype="string"),
            "u": np.array([1, 2, 3], dtype=np.int32),
            "g": np.array([1.0, 2.0, 3.0], dtype=np.float32),
        }
    )


TRAIN = _training()
SIG = infer_signature(TRAIN)
STRICT = Validator(SIG)
WARN = Validator(SIG, mode="warn")
OFF = Validator(SIG, mode="off")


def _record(**changes: Any) -> dict[Any, Any]:
    record: dict[Any, Any] = {
        "f": 25.0,
        "i": 5,
        "s": "a",
        "b": False,
        "c": "y",
        "n": None,
        "0": 1.0,
        "d": "2024-03-01T12:00:00",
        "dz": "2024-03-01T12:00:00+01:00",
        "t": None,
        "u": 2,
        "g": 1.5,
    }
    record.update(changes)
    return record


def _problems(error: ValidationError) -> list[tuple[Any, str]]:
    return [(e["column"], e["problem"]) for e in error.errors]


# ---------------------------------------------------------------- round trips and forms


def test_the_training_frame_validates_to_itself() -> None:
    out = STRICT.validate(TRAIN)

    pd.testing.assert_frame_equal(out, TRAIN)


def test_records_and_dict_of_columns_give_the_training_frame() -> None:
    records = TRAIN.to_dict("records")
    columns = {str(k): list(v) for k, v in TRAIN.to_dict("list").items()}

    pd.testing.assert_frame_equal(STRICT.validate(records), TRAIN)
    pd.testing.assert_frame_equal(STRICT.validate(columns), TRAIN)


def test_a_single_record_becomes_one_row_in_training_dtypes() -> None:
    out = STRICT.validate(_record())

    assert list(out.columns) == list(TRAIN.columns)
    assert out.dtypes.tolist() == TRAIN.dtypes.tolist()
    row = out.iloc[0]
    assert (row["f"], row["i"], row["s"], row["c"], row[0]) == (25.0, 5, "a", "y", 1.0)
    assert pd.isna(row["n"])
    assert pd.isna(row["t"])
    assert row["d"] == pd.Timestamp("2024-03-01T12:00:00")
    assert row["dz"] == pd.Timestamp("2024-03-01T11:00:00", tz="UTC")


def test_column_order_does_not_matter() -> None:
    shuffled = TRAIN[list(reversed(TRAIN.columns))]
    record = dict(reversed(list(_record().items())))

    pd.testing.assert_frame_equal(STRICT.validate(shuffled), TRAIN)
    assert list(STRICT.validate(record).columns) == list(TRAIN.columns)


def test_int_column_names_accept_text_keys_and_come_back_as_ints() -> None:
    out = STRICT.validate({**_record(), "0": 0.75})
    frame_with_text_name = TRAIN.rename(columns={0: "0"})

    assert out.columns[6] == 0
    assert out[0].iloc[0] == 0.75
    pd.testing.assert_frame_equal(STRICT.validate(frame_with_text_name), TRAIN)


def test_a_one_row_frame_keeps_its_index() -> None:
    row = TRAIN.iloc[[2]]

    out = STRICT.validate(row)

    pd.testing.assert_frame_equal(out, row)


def test_the_output_does_not_share_memory_with_the_input() -> None:
    frame = TRAIN.copy()

    out = STRICT.validate(frame)
    out.loc[0, "f"] = 99.0
    out.loc[0, "c"] = "z"

    pd.testing.assert_frame_equal(frame, TRAIN)


def test_extra_columns_are_dropped_with_a_note() -> None:
    result = STRICT.check({**_record(), "unused": 1, "other": "x"})
    frame_result = STRICT.check(TRAIN.assign(target=1))

    assert isinstance(result, ValidationResult)
    assert result.ok
    assert result.notes == ["dropped 2 column(s) not in the signature: 'unused', 'other'"]
    assert frame_result.notes == ["dropped 1 column(s) not in the signature: 'target'"]
    assert list(STRICT.validate(TRAIN.assign(target=1)).columns) == list(TRAIN.columns)


@pytest.mark.parametrize("extra", [[], ["x", "y"], {"k": [1, 2, 3]}, ()])
def test_a_record_with_a_list_in_an_extra_field_is_still_one_row(extra: Any) -> None:
    # A request's metadata field holding a list made the record a dict of columns, of
    # that list's length: an empty one gave zero rows (and a 500 in kiln serve).
    alone = STRICT.check({**_record(), "tags": extra})
    listed = STRICT.check([{**_record(), "": extra}])

    for result in (alone, listed):
        assert result.ok, result.errors
        assert result.frame is not None
        assert len(result.frame) == 1
        assert result.notes
        assert "dropped 1 column(s)" in result.notes[0]


def test_the_signature_columns_decide_the_rows_of_a_dict_of_columns() -> None:
    columns = {str(k) if k == 0 else k: TRAIN[k].tolist() for k in TRAIN.columns}

    result = STRICT.check({**columns, "extra": [1]})

    assert result.ok, result.errors
    assert result.frame is not None
    assert len(result.frame) == len(TRAIN)


def test_a_list_in_a_signature_column_of_one_record_is_a_problem() -> None:
    result = STRICT.check([_record(f=[1.0, 2.0])])

    assert not result.ok
    assert [e["column"] for e in result.errors] == ["f"]


def test_an_empty_list_gives_an_empty_frame_in_training_dtypes() -> None:
    out = STRICT.validate([])

    assert len(out) == 0
    assert out.dtypes.tolist() == TRAIN.dtypes.tolist()


def test_arrays_are_accepted_for_array_signatures() -> None:
    train = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    validator = Validator(infer_signature(train))

    out = validator.validate(np.array([[1.5, 15.0], [2.5, 25.0]]))
    one = validator.validate(np.array([1.5, 15.0]))
    rows = validator.validate([[1, 15], [2, 25]])

    assert list(out.columns) == ["x0", "x1"]
    assert out.to_numpy().tolist() == [[1.5, 15.0], [2.5, 25.0]]
    assert one.to_numpy().tolist() == [[1.5, 15.0]]
    assert rows.to_numpy().tolist() == [[1.0, 15.0], [2.0, 25.0]]


def test_arrays_are_accepted_when_every_column_is_numeric() -> None:
    validator = Validator(infer_signature(pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})))

    out = validator.validate(np.array([[2.0, 1.0]]))

    assert out.dtypes.tolist() == [np.dtype("int64"), np.dtype("float64")]
    assert out.iloc[0].tolist() == [2, 1.0]


def test_arrays_are_refused_when_columns_must_be_matched_by_name() -> None:
    with pytest.raises(ValidationError, match="matched by name") as caught:
        STRICT.validate(np.zeros((1, 12)))
    assert _problems(caught.value) == [(None, "input")]


def test_an_array_of_the_wrong_width_is_a_shape_error() -> None:
    validator = Validator(infer_signature(np.zeros((2, 3))))

    with pytest.raises(
        ValidationError, match=r"3 columns per row \(x0, x1, x2\); found 2"
    ) as caught:
        validator.validate(np.zeros((1, 2)))
    assert _problems(caught.value) == [(None, "shape")]


def test_series_signatures_take_a_series_or_a_list_as_the_column() -> None:
    sig = infer_signature(pd.Series(["good film", "bad film"], name="text"))
    validator = Validator(sig, mode="off")  # free text: every new value is an unseen category

    out = validator.validate(pd.Series(["fine", "meh"]))
    from_list = validator.validate(["fine", "meh", "ok"])

    assert out["text"].tolist() == ["fine", "meh"]
    assert len(from_list) == 3


def test_a_series_is_refused_for_a_dataframe_signature_with_a_hint() -> None:
    with pytest.raises(ValidationError, match=r"series\.to_frame\(\)\.T for a record"):
        STRICT.validate(TRAIN["f"])


def test_unsupported_input_types_are_refused() -> None:
    with pytest.raises(ValidationError, match="expected a DataFrame, a list of records") as caught:
        STRICT.validate("f=1")
    assert _problems(caught.value) == [(None, "input")]


def test_repeated_frame_columns_are_refused() -> None:
    frame = pd.concat([TRAIN, TRAIN[["f"]]], axis=1)

    with pytest.raises(ValidationError, match="repeated columns f"):
        STRICT.validate(frame)


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValidationError, match="columns of one length"):
        STRICT.validate({"f": [1.0, 2.0], "i": [1]})


def test_mode_must_be_known() -> None:
    with pytest.raises(ConfigurationError, match="mode must be one of strict, warn, off"):
        Validator(SIG, mode="lenient")


# ---------------------------------------------------------------- coercions


def test_safe_coercions_int_to_float_whole_floats_to_int_and_zero_one_to_bool() -> None:
    out = STRICT.validate(_record(f=7, i=3.0, b=1, u=2.0, g=2))

    assert (out["f"].dtype, out["f"].iloc[0]) == (np.dtype("float64"), 7.0)
    assert (out["i"].dtype, out["i"].iloc[0]) == (np.dtype("int64"), 3)
    assert (out["b"].dtype, out["b"].iloc[0]) == (np.dtype("bool"), True)
    assert (out["u"].dtype, out["g"].dtype) == (np.dtype("int32"), np.dtype("float32"))


def test_numeric_strings_are_not_read_as_numbers() -> None:
    with pytest.raises(
        ValidationError, match=r"column 'f' \[type\]: expected numbers \(float64\); found '1\.5'"
    ):
        STRICT.validate(_record(f="1.5"))


@pytest.mark.parametrize(
    ("column", "value", "found"),
    [
        ("f", "abc", "'abc'"),
        ("f", True, "True"),
        ("i", 2.5, "numbers that are not whole: 2.5"),
        ("i", 2**63, "whole numbers outside int64's limits: 9223372036854775808"),
        ("u", 2**40, "whole numbers outside int32's limits"),
        ("g", 1e300, "numbers too large for float32: 1e+300"),
        ("s", 5, "5"),
        ("b", "yes", "'yes'"),
        ("b", 2, "2"),
        ("c", 1, "1"),
        ("d", "next tuesday", "'next tuesday'"),
        ("d", 1700000000, "1700000000"),
        ("n", "1", "'1'"),
        ("t", {"p"}, "{'p'}"),
    ],
)
def test_wrong_types_are_errors_in_every_mode(column: str, value: Any, found: str) -> None:
    for validator in (STRICT, WARN, OFF):
        with pytest.raises(ValidationError, match=rf"column '{column}' \[type\]") as caught:
            validator.validate(_record(**{column: value}))
        (error,) = caught.value.errors
        assert (error["column"], error["problem"]) == (column, "type")
        assert found in error["found"]
        assert error["rows"] == [0]


def test_missing_columns_are_errors_in_every_mode_with_a_suggestion() -> None:
    record = _record()
    record["F"] = record.pop("f")
    del record["i"]

    for validator in (STRICT, WARN, OFF):
        with pytest.raises(ValidationError, match=r"column 'f' \[missing\]") as caught:
            validator.validate(record)
        assert _problems(caught.value) == [("f", "missing"), ("i", "missing")]
        assert "did you mean 'F'?" in caught.value.errors[0]["found"]


# ---------------------------------------------------------------- drift: null, category, range


def test_nulls_not_seen_in_training_by_mode() -> None:
    record = _record(f=None)

    with pytest.raises(ValidationError, match=r"column 'f' \[null\]: expected no nulls") as caught:
        STRICT.validate(record)
    assert _problems(caught.value) == [("f", "null")]
    with pytest.warns(DataDriftWarning, match=r"column 'f' \[null\]") as caught_warning:
        out = WARN.validate(record)
    assert np.isnan(out["f"].iloc[0])
    assert caught_warning[0].message.problems[0]["problem"] == "null"  # type: ignore[union-attr]
    assert np.isnan(OFF.validate(record)["f"].iloc[0])


def test_nulls_the_training_dtype_cannot_hold_are_errors_in_every_mode() -> None:
    for validator in (STRICT, WARN, OFF):
        with pytest.raises(
            ValidationError, match=r"'i' \[null\]: expected no nulls \(int64 cannot hold them\)"
        ):
            validator.validate(_record(i=None))


def test_nullable_columns_take_nulls_quietly() -> None:
    out = STRICT.validate(_record(n=None, t=None, **{"0": None}))

    assert out["n"].isna().all()
    assert out["t"].isna().all()
    assert out[0].isna().all()
    assert (str(out["n"].dtype), str(out["t"].dtype)) == ("Int64", "string")


def test_unseen_categories_by_mode() -> None:
    record = _record(s="zz", c="z")

    with pytest.raises(ValidationError, match=r"column 's' \[category\]") as caught:
        STRICT.validate(record)
    assert _problems(caught.value) == [("s", "category"), ("c", "category")]
    assert "'a', 'b', 'c'" in caught.value.errors[0]["expected"]
    with pytest.warns(DataDriftWarning, match=r"column 'c' \[category\]"):
        out = WARN.validate(record)
    assert out["s"].iloc[0] == "zz"  # a string passes as it is
    assert out["c"].iloc[0] == "z"  # declared in the dtype, though not seen in training
    assert OFF.validate(record)["s"].iloc[0] == "zz"


def test_values_outside_a_categorical_dtype_become_null_when_let_through() -> None:
    with pytest.warns(DataDriftWarning, match=r"column 'c' \[category\]"):
        out = WARN.validate(_record(c="new"))

    assert pd.isna(out["c"].iloc[0])
    assert pd.isna(OFF.validate(_record(c="new"))["c"].iloc[0])


def test_out_of_range_numbers_by_mode() -> None:
    record = _record(f=150.0, i=-3)

    with pytest.raises(
        ValidationError,
        match=r"'f' \[range\]: expected values within the training range \[0\.0, 100\.0\]; found 150\.0",
    ) as caught:
        STRICT.validate(record)
    assert _problems(caught.value) == [("f", "range"), ("i", "range")]
    with pytest.warns(DataDriftWarning, match=r"column 'i' \[range\]"):
        out = WARN.validate(record)
    assert (out["f"].iloc[0], out["i"].iloc[0]) == (150.0, -3)
    assert OFF.validate(record)["f"].iloc[0] == 150.0


def test_training_values_that_went_through_text_stay_in_range() -> None:
    validator = Validator(
        infer_signature(pd.DataFrame({"x": [12.27724843877266, 80.66036739048897]}))
    )

    text = pd.DataFrame({"x": [80.66036739048897]}).to_json()  # 10 significant digits
    out = validator.validate(pd.read_json(io.StringIO(text)))
    printed = validator.validate({"x": float(f"{80.66036739048897:.7g}")})

    assert out["x"].iloc[0] == pytest.approx(80.66036739048897)
    assert printed["x"].iloc[0] == 80.66037
    with pytest.raises(ValidationError, match=r"'x' \[range\]"):
        validator.validate({"x": 80.661})


def test_infinity_is_out_of_a_finite_training_range() -> None:
    with pytest.raises(ValidationError, match=r"'f' \[range\]"):
        STRICT.validate(_record(f=float("inf")))


def test_unseen_bool_values_are_categories() -> None:
    validator = Validator(infer_signature(pd.DataFrame({"on": [True, True]})))

    with pytest.raises(ValidationError, match=r"'on' \[category\]"):
        validator.validate({"on": False})


def test_free_text_columns_accept_new_text_in_strict_mode() -> None:
    rng = np.random.default_rng(0)
    words = ["late", "delivery", "great", "price", "broken", "box", "support", "fast"]
    reviews = [f"Review {i}: " + " ".join(rng.choice(words, size=6)) + "." for i in range(300)]
    notes = pd.array([f"note {i}" for i in range(300)], dtype="string[python]")
    validator = Validator(infer_signature(pd.DataFrame({"review": reviews, "note": notes})))
    new = {"review": "A sentence nobody wrote in training.", "note": "a new note"}

    one = validator.validate(new)  # the one-record path
    batch = validator.validate([new, {"review": reviews[0], "note": "note 0"}])

    assert [s.categories for s in validator.signature.inputs] == [None, None]
    assert one.iloc[0].tolist() == list(new.values())
    pd.testing.assert_frame_equal(one, batch.iloc[[0]])
    assert batch["review"].tolist() == [new["review"], reviews[0]]
    assert "enum" not in validator.signature.openapi_schema()["properties"]["review"]


def test_categorical_str_columns_still_reject_unseen_levels_in_strict_mode() -> None:
    plans = np.random.default_rng(0).choice(["basic", "pro", "team"], size=200)
    validator = Validator(infer_signature(pd.DataFrame({"plan": plans})))

    assert validator.validate({"plan": "pro"})["plan"].iloc[0] == "pro"
    with pytest.raises(ValidationError, match=r"'plan' \[category\]: .*'basic', 'pro', 'team'"):
        validator.validate({"plan": "enterprise"})
    with pytest.raises(ValidationError, match=r"'plan' \[category\]"):
        validator.validate([{"plan": "pro"}, {"plan": "enterprise"}])


# ---------------------------------------------------------------- errors and messages


def test_errors_have_the_documented_shape() -> None:
    with pytest.raises(ValidationError, match="3 problems") as caught:
        STRICT.validate(_record(f="x", i=None, s="zz"))

    assert isinstance(caught.value, KilnError)
    assert isinstance(caught.value, ValueError)
    for error in caught.value.errors:
        assert set(error) == {"column", "problem", "expected", "found", "rows", "count"}
    assert _problems(caught.value) == [("f", "type"), ("i", "null"), ("s", "category")]


def test_the_message_names_every_bad_column_and_stays_short_for_large_inputs() -> None:
    rng = np.random.default_rng(0)
    big = pd.concat([TRAIN] * 400, ignore_index=True)
    big["f"] = big["f"].astype(object)
    big.loc[::2, "f"] = [f"text-{i}-" + "x" * 200 for i in range(600)]
    big["s"] = rng.choice(["a", "zz", "yy", "ww"], size=len(big))

    with pytest.raises(ValidationError, match="column 'f'") as caught:
        STRICT.validate(big)

    message = str(caught.value)
    assert "column 's'" in message
    assert len(message) < 1500
    assert "text-5-" not in message  # at most 3 examples, each cut short
    f_error = caught.value.errors[0]
    assert (f_error["count"], f_error["rows"]) == (600, [0, 2, 4, 6, 8])
    assert len(f_error["found"]) < 200


def test_check_reports_instead_of_raising() -> None:
    result = STRICT.check(_record(f="x"))
    warned = WARN.check(_record(f=500.0))

    assert result.frame is None
    assert not result.ok
    assert [e["problem"] for e in result.errors] == ["type"]
    assert warned.ok
    assert warned.frame is not None
    assert [w["problem"] for w in warned.warnings] == ["range"]


def test_batches_report_row_positions() -> None:
    records = [_record(), _record(f="bad"), _record(), _record(f="worse")]

    with pytest.raises(ValidationError, match=r"\(2 rows: 1, 3\)") as caught:
        STRICT.validate(records)
    assert caught.value.errors[0]["rows"] == [1, 3]
    assert caught.value.errors[0]["count"] == 2


# ---------------------------------------------------------------- datetimes


def test_datetime_strings_time_zones_and_objects() -> None:
    out = STRICT.validate(
        [
            _record(d="2024-05-01T10:00:00+02:00", dz="2024-05-01T10:00:00"),
            _record(d=pd.Timestamp("2024-05-02"), dz=pd.Timestamp("2024-05-02", tz="Europe/Oslo")),
        ]
    )

    assert out["d"].tolist() == [pd.Timestamp("2024-05-01T08:00:00"), pd.Timestamp("2024-05-02")]
    assert out["dz"].tolist() == [
        pd.Timestamp("2024-05-01T10:00:00", tz="UTC"),
        pd.Timestamp("2024-05-01T22:00:00", tz="UTC"),
    ]
    assert out["d"].dtype == TRAIN["d"].dtype
    assert out["dz"].dtype == TRAIN["dz"].dtype


def test_datetimes_beyond_the_nanosecond_range_are_type_errors() -> None:
    validator = Validator(
        infer_signature(pd.DataFrame({"at": pd.to_datetime(["2024-01-01"]).as_unit("ns")}))
    )

    with pytest.raises(ValidationError, match=r"date-times outside datetime64\[ns\]'s range"):
        validator.validate({"at": "2500-01-01"})


# ---------------------------------------------------------------- fuzzing

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(
        [
            "a",
            "x",
            "z",
            "p",
            "1.5",
            "2024-01-01",
            "2024-02-30",
            "2024-03-01T12:00:00Z",
            "2024-03-01 12:00:00.123456+05:30",
            "2024-03-01T12:00",
            "2024-03-01T12:00:00.1234567",
            "2024-03-01T25:00:00",
            "1500-01-01T00:00:00",
            "9999-12-31T23:59:59-01:00",
            "20240301",
            float("nan"),
            pd.NA,
            pd.NaT,
            pd.Timestamp("2024-05-05"),
            2**64,
            -(2**63),
            1e308,
            [1, 2],
            {"k": 1},
            b"bytes",
        ]
    ),
)
_DTYPES = st.sampled_from(
    [None, object, "float64", "Int64", "string", "str", "category", "bool", "datetime64[ns]"]
)


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    """Training rows with columns dropped, added, re-typed or given odd values."""
    n = draw(st.integers(min_value=1, max_value=4))
    rows = draw(st.lists(st.integers(0, len(TRAIN) - 1), min_size=n, max_size=n))
    columns: dict[Any, Any] = {}
    for name in TRAIN.columns:
        action = draw(st.integers(0, 29))  # 29: drop, 26-27: odd value, 27-28: re-type
        if action == 29:
            continue
        column = TRAIN[name].iloc[rows].reset_index(drop=True)
        if action in (26, 27):
            values = np.empty(n, dtype=object)
            values[:] = list(column)
            values[draw(st.integers(0, n - 1))] = draw(_VALUES)
            column = pd.Series(values, dtype=object)
        if action in (27, 28):
            column = _retyped(column, draw(_DTYPES))
        columns[name] = column.array
    for extra in draw(st.lists(st.sampled_from(["extra", 99]), unique=True)):
        columns[extra] = draw(st.lists(_VALUES, min_size=n, max_size=n))
    return pd.DataFrame(columns)


def _retyped(column: pd.Series, dtype: Any) -> pd.Series:
    """The column cast to `dtype` when pandas can, else as objects."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return column.astype(dtype)
    except (TypeError, ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return column.astype(object)


def _assert_valid_outcome(validator: Validator, data: Any) -> pd.DataFrame | None:
    """The property: a frame matching the signature, or a ValidationError naming columns."""
    names = {s.name for s in SIG.inputs}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        errors: list[dict[str, Any]] = []
        try:
            out = validator.validate(data)
        except ValidationError as exc:  # the only exception allowed
            errors, out = exc.errors, None
    if out is None:
        assert errors
        assert all(error["column"] in names for error in errors), errors
    assert all(issubclass(w.category, DataDriftWarning) for w in seen), [
        str(w.message) for w in seen
    ]
    if out is not None:
        assert list(out.columns) == [s.label for s in SIG.inputs]
        assert [str(t) for t in out.dtypes] == [s.dtype for s in SIG.inputs]
    return out


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    frame=_frames(),
    mode=st.sampled_from(["strict", "warn", "off"]),
    form=st.sampled_from(["frame", "records", "columns"]),
)
def test_random_frames_give_a_valid_frame_or_a_validation_error(
    frame: pd.DataFrame, mode: str, form: str
) -> None:
    data: Any = frame
    if form == "records":
        data = frame.to_dict("records")
    elif form == "columns":
        data = {name: frame[name].array for name in frame.columns}
    _assert_valid_outcome(Validator(SIG, mode=mode), data)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    changes=st.dictionaries(
        st.sampled_from([s.name for s in SIG.inputs]),
        _VALUES.filter(lambda v: not isinstance(v, list)),  # a list value makes a column
        max_size=4,
    ),
    mode=st.sampled_from(["strict", "warn", "off"]),
)
def test_the_single_record_path_agrees_with_the_column_path(
    changes: dict[str, Any], mode: str
) -> None:
    """A record validated alone (scalar fast path) and as a column of two (vectorised)."""
    validator = Validator(SIG, mode=mode)
    record = _record(**changes)
    columns = {}
    for key, value in record.items():
        array = np.empty(2, dtype=object)
        array[:] = [value, value]
        columns[key] = array

    one = validator.check(record)
    two = validator.check(columns)

    assert [(e["column"], e["problem"]) for e in one.errors] == [
        (e["column"], e["problem"]) for e in two.errors
    ]
    assert [(w["column"], w["problem"]) for w in one.warnings] == [
        (w["column"], w["problem"]) for w in two.warnings
    ]
    if one.frame is not None:
        assert two.frame is not None
        pd.testing.assert_frame_equal(one.frame, two.frame.iloc[[0]])
    _assert_valid_outcome(validator, record)
