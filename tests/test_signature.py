"""Model signatures: inference from training data, the JSON round trip, the OpenAPI schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kiln import ModelError, SignatureError
from kiln.models import ColumnSpec, Signature, infer_signature


def _training() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20, 35, 50, 65],
            "income": [1.5, np.nan, 3.0, 10.25],
            "city": ["Oslo", "Lima", "Oslo", "Pune"],
            "member": [True, False, True, True],
            "plan": pd.Categorical(["b", "a", "b", "a"], categories=["a", "b", "c"], ordered=True),
            "visits": pd.array([1, None, 3, 4], dtype="Int64"),
            "note": pd.array(["x", None, "y", "x"], dtype="string"),
            "joined": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
            "seen": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-04-01"], utc=True),
        }
    )


def _spec(sig: Signature, name: str) -> ColumnSpec:
    return sig.input(name)


def test_infer_signature_describes_each_column_kind_dtype_range_and_categories() -> None:
    sig = infer_signature(_training())

    assert [s.name for s in sig.inputs] == [
        "age",
        "income",
        "city",
        "member",
        "plan",
        "visits",
        "note",
        "joined",
        "seen",
    ]
    age = _spec(sig, "age")
    assert (age.kind, age.dtype, age.nullable, age.min, age.max) == ("int", "int64", False, 20, 65)
    assert age.categories is None
    income = _spec(sig, "income")
    assert (income.kind, income.dtype, income.nullable) == ("float", "float64", True)
    assert (income.min, income.max) == (1.5, 10.25)
    city = _spec(sig, "city")
    assert (city.kind, city.dtype, city.nullable) == ("str", "str", False)
    assert city.categories == ("Lima", "Oslo", "Pune")
    member = _spec(sig, "member")
    assert (member.kind, member.dtype, member.categories) == ("bool", "bool", (False, True))
    plan = _spec(sig, "plan")
    assert (plan.kind, plan.dtype, plan.ordered) == ("category", "category", True)
    assert plan.levels == ("a", "b", "c")
    assert plan.categories == ("a", "b")  # seen, not declared
    joined = _spec(sig, "joined")
    assert (joined.kind, joined.dtype, joined.nullable) == (
        "datetime",
        str(_training()["joined"].dtype),
        False,
    )
    seen = _spec(sig, "seen")
    assert seen.kind == "datetime"
    assert seen.dtype.endswith(", UTC]")
    assert seen.nullable
    assert sig.outputs == ()
    assert sig.input_type == "dataframe"


def test_nullable_extension_dtypes_are_nullable_without_nulls_but_default_str_is_not() -> None:
    frame = pd.DataFrame(
        {
            "count": pd.array([1, 2], dtype="Int64"),
            "flag": pd.array([True, False], dtype="boolean"),
            "text": pd.array(["a", "b"], dtype="string"),
            "plain": ["a", "b"],  # pandas 3 default "str"
            "plain_with_null": ["a", None],
        }
    )

    sig = infer_signature(frame)

    assert [(s.dtype, s.nullable) for s in sig.inputs] == [
        ("Int64", True),
        ("boolean", True),
        ("string", True),
        ("str", False),
        ("str", True),
    ]


def test_infinite_training_values_leave_that_side_of_the_range_open() -> None:
    sig = infer_signature(pd.DataFrame({"x": [1.0, np.inf, 3.0], "y": [-np.inf, 0.5, 2.0]}))

    assert (sig.input("x").min, sig.input("x").max) == (1.0, None)
    assert (sig.input("y").min, sig.input("y").max) == (None, 2.0)


def test_more_than_1000_distinct_strings_records_no_categories() -> None:
    many = pd.DataFrame({"id": [f"user{i}" for i in range(1001)], "few": ["a"] * 1001})

    sig = infer_signature(many)

    assert sig.input("id").categories is None
    assert sig.input("few").categories == ("a",)


@pytest.mark.parametrize(
    ("distinct", "rows", "categorical"),
    [
        (3, 200, True),  # a "plan" column
        (20, 20, True),  # few values: categorical however often they repeat
        (21, 42, True),  # half as many distinct values as rows
        (21, 41, False),
        (40, 60, False),  # free text
        (40, 1000, True),
        (300, 300, False),  # every value new: documents, comments
        (1000, 2000, True),
        (1001, 5000, False),  # over 1000 distinct values: never
    ],
)
def test_str_columns_record_categories_only_when_they_look_categorical(
    distinct: int, rows: int, categorical: bool
) -> None:
    values = [f"value {i % distinct}" for i in range(rows)] + [None] * rows  # nulls don't count

    spec = infer_signature(pd.DataFrame({"text": values})).input("text")

    assert spec.kind == "str"
    if categorical:
        assert spec.categories is not None
        assert len(spec.categories) == distinct
    else:
        assert spec.categories is None


def test_category_and_bool_columns_always_record_the_values_seen() -> None:
    labels = [f"level {i}" for i in range(1500)]
    few = pd.DataFrame({"unique": pd.Categorical(labels[:40]), "flag": [True] * 39 + [False]})
    many = pd.DataFrame({"many": pd.Categorical(labels[:1200], categories=labels)})

    sig = infer_signature(few)
    spec = infer_signature(many).input("many")

    assert sig.input("unique").categories == tuple(sorted(labels[:40]))  # 40 in 40 rows
    assert sig.input("flag").categories == (False, True)
    assert spec.categories == tuple(sorted(labels[:1200]))  # over 1000
    assert spec.levels == tuple(labels)


def test_str_outputs_follow_the_same_rule() -> None:
    X = pd.DataFrame({"question": range(30)})
    answers = pd.Series([f"answer number {i}" for i in range(30)], name="answer")
    classes = pd.Series(["yes", "no", "maybe"] * 10, name="answer")

    (free,) = infer_signature(X, y=answers).outputs
    (labelled,) = infer_signature(X, y=classes).outputs

    assert (free.kind, free.categories) == ("str", None)
    assert labelled.categories == ("maybe", "no", "yes")


def test_integer_column_names_are_kept_and_survive_json() -> None:
    frame = pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"], "name": [3, 4]})

    sig = infer_signature(frame)
    back = Signature.from_dict(json.loads(json.dumps(sig.to_dict())))

    assert [(s.name, s.name_is_int, s.label) for s in sig.inputs] == [
        ("0", True, 0),
        ("1", True, 1),
        ("name", False, "name"),
    ]
    assert back == sig
    assert [s.label for s in back.inputs] == [0, 1, "name"]


def test_a_numpy_array_gets_x_names_and_remembers_it_was_an_array() -> None:
    sig = infer_signature(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))

    assert sig.input_type == "ndarray"
    assert [s.name for s in sig.inputs] == ["x0", "x1", "x2"]
    assert sig.input("x2").max == 6.0


def test_one_dimensional_inputs_are_series_signatures() -> None:
    from_series = infer_signature(pd.Series(["good", "bad"], name="text"))
    unnamed = infer_signature(np.array([1, 2, 3]))

    assert (from_series.input_type, [s.name for s in from_series.inputs]) == ("series", ["text"])
    assert (unnamed.input_type, [s.name for s in unnamed.inputs]) == ("series", ["x0"])


def test_a_dict_of_columns_is_a_dataframe() -> None:
    sig = infer_signature({"a": [1, 2], "b": ["x", "y"]})

    assert [(s.name, s.kind) for s in sig.inputs] == [("a", "int"), ("b", "str")]
    assert sig.input_type == "dataframe"


def test_outputs_from_a_named_target_record_the_class_labels() -> None:
    sig = infer_signature(_training(), y=pd.Series(["no", "yes", "no", "no"], name="churned"))

    (out,) = sig.outputs
    assert (out.name, out.kind, out.categories) == ("churned", "str", ("no", "yes"))


def test_outputs_from_unnamed_arrays_are_called_prediction() -> None:
    one = infer_signature(_training(), y=np.array([0, 1, 1, 2]))
    two = infer_signature(_training(), predictions=np.array([[0.1, 0.9]] * 4))

    assert [(o.name, o.kind, o.categories) for o in one.outputs] == [
        ("prediction", "int", (0, 1, 2))
    ]
    assert [o.name for o in two.outputs] == ["prediction_0", "prediction_1"]


def test_predictions_decide_the_dtype_and_the_target_lends_name_and_labels() -> None:
    y = pd.Series([0, 1, 2, 1], name="label")
    predictions = np.array([0, 1, 1, 1])

    sig = infer_signature(_training(), y=y, predictions=predictions)
    regression = infer_signature(_training(), y=y, predictions=np.array([0.2, 1.1, 1.9, 0.7]))

    assert [(o.name, o.kind, o.categories) for o in sig.outputs] == [("label", "int", (0, 1, 2))]
    assert [(o.name, o.kind, o.categories) for o in regression.outputs] == [
        ("label", "float", None)
    ]


def test_to_dict_from_dict_is_exact_and_nan_free() -> None:
    sig = infer_signature(_training(), y=pd.Series([0.5, 1.5, 2.5, 3.5], name="target"))

    text = json.dumps(sig.to_dict(), allow_nan=False)
    back = Signature.from_dict(json.loads(text))

    assert back == sig
    assert back.to_dict() == sig.to_dict()
    assert json.loads(text)["format_version"] == 1


def test_from_dict_rejects_a_newer_format_with_an_upgrade_hint() -> None:
    data = infer_signature(_training()).to_dict()
    data["format_version"] = 2

    with pytest.raises(SignatureError, match=r"format_version 2 is not supported.*upgrade kiln"):
        Signature.from_dict(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"outputs": []}, "expected a JSON object with 'inputs'"),
        ({"inputs": [{"name": "a", "kind": "int"}]}, "column 'a' lacks dtype"),
        ({"inputs": [{"name": "a", "kind": "complex", "dtype": "c"}]}, "kind must be one of"),
        ({"inputs": [{"name": "a", "kind": "category", "dtype": "category"}]}, "needs its levels"),
        ({"inputs": ["a"]}, "a column must be a JSON object"),
    ],
)
def test_from_dict_reports_what_is_wrong_with_a_damaged_signature(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(SignatureError, match=message) as caught:
        Signature.from_dict(data)
    assert isinstance(caught.value, ModelError)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("Cannot read the model signature: ")


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pd.Series([1, "a", 2.5], dtype=object), "'bad' holds values of types float, int, str"),
        (pd.Series([None, None], dtype=object), "'bad' has only nulls"),
        (pd.Series(pd.to_timedelta([1, 2], unit="s")), "'bad' has dtype timedelta64"),
        (pd.Series([b"x", b"y"], dtype=object), "'bad' holds values of types bytes"),
    ],
)
def test_unsupported_columns_are_named_with_a_fix(column: pd.Series, message: str) -> None:
    frame = pd.DataFrame({"ok": [1.0] * len(column), "bad": column})

    with pytest.raises(SignatureError, match=message):
        infer_signature(frame)


def test_column_names_must_stay_unique_as_text() -> None:
    frame = pd.DataFrame([[1, 2]], columns=pd.Index([0, "0"], dtype=object))

    with pytest.raises(SignatureError, match="two columns named 0 and '0'"):
        infer_signature(frame)


def test_column_names_must_be_strings_or_integers() -> None:
    frame = pd.DataFrame([[1, 2]], columns=pd.Index([1.5, "a"], dtype=object))

    with pytest.raises(SignatureError, match=r"column named 1\.5 \(float\)"):
        infer_signature(frame)


def test_three_dimensional_arrays_are_rejected() -> None:
    with pytest.raises(SignatureError, match="X is a 3-dimensional array"):
        infer_signature(np.zeros((2, 2, 2)))


def test_column_spec_checks_its_fields() -> None:
    with pytest.raises(SignatureError, match="kind must be one of"):
        ColumnSpec(name="a", kind="decimal", dtype="object")
    with pytest.raises(SignatureError, match="has name_is_int=True but its name is not an"):
        ColumnSpec(name="a", kind="int", dtype="int64", name_is_int=True)


def test_signature_rejects_repeated_input_names() -> None:
    spec = ColumnSpec(name="a", kind="int", dtype="int64")

    with pytest.raises(SignatureError, match="input column 'a' appears twice"):
        Signature(inputs=(spec, spec))


def test_input_lookup_accepts_int_names_as_int_or_text() -> None:
    sig = infer_signature(pd.DataFrame({3: [1.0]}))

    assert sig.input(3) is sig.input("3")
    with pytest.raises(KeyError, match="no input column 'zz'"):
        sig.input("zz")


def test_openapi_schema_describes_one_record() -> None:
    schema = infer_signature(_training()).openapi_schema()

    json.dumps(schema, allow_nan=False)
    assert schema["type"] == "object"
    assert schema["required"] == [s.name for s in infer_signature(_training()).inputs]
    props = schema["properties"]
    assert props["age"]["type"] == "integer"
    assert (props["age"]["minimum"], props["age"]["maximum"]) == (20, 65)
    assert props["income"]["type"] == ["number", "null"]
    assert props["city"]["enum"] == ["Lima", "Oslo", "Pune"]
    assert props["member"]["type"] == "boolean"
    assert props["plan"]["type"] == "string"
    assert props["plan"]["enum"] == ["a", "b"]
    assert props["visits"]["type"] == ["integer", "null"]
    assert props["note"]["enum"] == ["x", "y", None]
    assert (props["joined"]["type"], props["joined"]["format"]) == ("string", "date-time")


def test_openapi_schema_without_strict_leaves_out_ranges_and_enums() -> None:
    props = infer_signature(_training()).openapi_schema(strict=False)["properties"]

    assert "minimum" not in props["age"]
    assert "enum" not in props["city"]
    assert "training range 20 to 65" in props["age"]["description"]


def test_openapi_schema_names_int_columns_as_text() -> None:
    schema = infer_signature(np.array([[1.0, 2.0]])).openapi_schema()
    int_named = infer_signature(pd.DataFrame({0: [1.0]})).openapi_schema()

    assert list(schema["properties"]) == ["x0", "x1"]
    assert list(int_named["properties"]) == ["0"]
