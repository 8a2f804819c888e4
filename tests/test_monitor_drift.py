"""kiln.monitor.drift: scipy's numbers, the issue's acceptance scenario, honest error rates."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

import kiln
from kiln.monitor import drift

CATS = [f"c{k}" for k in range(10)]
ZIPF = 1 / np.arange(1, 11) ** 1.5
ZIPF /= ZIPF.sum()
LOGNORMAL_SD = float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)))  # lognormal(0, 0.5)
SD = {"normal": 1.0, "lognormal": LOGNORMAL_SD, "uniform": float(np.sqrt(1 / 12))}
DRIFTED = ["normal0", "normal1", "lognormal0", "uniform0", "uniform1", "cat_uniform"]


def _approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=0)


def _row(result: kiln.monitor.DriftResult, column: str) -> dict:
    table = result.table
    return table.loc[table["column"] == column].iloc[0].to_dict()


# ---------------------------------------------------------------- equal to scipy

numbers = st.one_of(
    st.lists(st.integers(-5, 5), min_size=2, max_size=80),  # many ties
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=80),
)


@seed(16)
@settings(max_examples=80, deadline=None)
@given(ref=numbers, cur=numbers)
def test_numeric_statistics_equal_scipy(ref: list[float], cur: list[float]) -> None:
    row = _row(drift({"x": ref}, {"x": cur}, config={"columns": {"x": {"kind": "numeric"}}}), "x")
    with warnings.catch_warnings():  # scipy's exact p-value may fall back to asymptotic
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.ks_2samp(ref, cur)

    assert row["statistic"] == _approx(expected.statistic)
    assert row["p_value"] == _approx(expected.pvalue)
    std = np.std(ref)
    if std > 0:
        assert row["distance"] == _approx(stats.wasserstein_distance(ref, cur) / std)


def test_numeric_statistics_equal_scipy_asymptotic_with_ties() -> None:
    rng = np.random.default_rng(160)
    ref = np.round(rng.normal(0, 1, 12_000), 1)
    cur = np.round(rng.normal(0.02, 1.1, 15_000), 1)

    # 12,000 values per side: a distance decides, so the p-value is computed on request.
    row = _row(drift({"x": ref}, {"x": cur}, config={"p_values": "all"}), "x")
    expected = stats.ks_2samp(ref, cur)

    assert row["statistic"] == _approx(expected.statistic)
    assert row["p_value"] == _approx(expected.pvalue)
    assert row["distance"] == _approx(stats.wasserstein_distance(ref, cur) / ref.std())


labels = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=60)


@seed(1616)
@settings(max_examples=80, deadline=None)
@given(ref=labels, cur=labels, only_current=st.lists(st.sampled_from(["x", "y"]), max_size=5))
def test_categorical_statistics_equal_scipy(
    ref: list[str], cur: list[str], only_current: list[str]
) -> None:
    cur = cur + only_current  # categories on one side only are part of the table
    row = _row(drift({"x": ref}, {"x": cur}), "x")
    categories = sorted(set(ref) | set(cur))
    table = np.array([[ref.count(c) for c in categories], [cur.count(c) for c in categories]])

    if len(categories) > 1:
        expected = stats.chi2_contingency(table, correction=False)
        assert row["statistic"] == _approx(expected.statistic)
        assert row["p_value"] == _approx(expected.pvalue)
    else:
        assert (row["statistic"], row["p_value"]) == (0.0, 1.0)
    assert row["distance"] == pytest.approx(
        jensenshannon(table[0], table[1], base=2), rel=1e-9, abs=1e-15
    )


def test_categorical_chi_square_is_two_sample_not_goodness_of_fit() -> None:
    ref = ["a"] * 30 + ["b"] * 20
    cur = ["a"] * 20 + ["b"] * 30 + ["c"] * 5

    row = _row(drift({"x": ref}, {"x": cur}), "x")
    two_sample = stats.chi2_contingency([[30, 20, 0], [20, 30, 5]], correction=False)

    assert row["statistic"] == _approx(two_sample.statistic)
    assert row["p_value"] == _approx(two_sample.pvalue)


def test_unused_categories_of_a_category_dtype_are_left_out() -> None:
    dtype = pd.CategoricalDtype(["a", "b", "c", "never"])
    ref = pd.Series(["a", "b", "a", "c"] * 10, dtype=dtype)
    cur = pd.Series(["a", "b", "b", "c"] * 10, dtype=dtype)

    row = _row(drift({"x": ref}, {"x": cur}), "x")
    expected = stats.chi2_contingency([[20, 10, 10], [10, 20, 10]], correction=False)

    assert row["p_value"] == _approx(expected.pvalue)


def test_psi_uses_reference_deciles_and_an_epsilon_for_empty_bins() -> None:
    ref = np.arange(1000, dtype=float)
    row = _row(drift({"x": ref}, {"x": ref}), "x")
    assert row["psi"] == 0.0

    shifted = _row(drift({"x": ref}, {"x": ref + 2000}), "x")  # all in the top bin
    top = (1 - 0.1) * np.log(1 / 0.1)
    rest = 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert shifted["psi"] == pytest.approx(top + rest, rel=1e-6)


# ---------------------------------------------------------------- the acceptance


def _sample(n: int, rng: np.random.Generator, *, drifted: bool) -> pd.DataFrame:
    data: dict[str, object] = {}
    for i in range(10):
        data[f"normal{i}"] = rng.normal(0, 1, n)
    for i in range(5):
        data[f"lognormal{i}"] = rng.lognormal(0, 0.5, n)
    for i in range(5):
        data[f"uniform{i}"] = rng.uniform(0, 1, n)
    uniform = np.array([0.3] + [0.7 / 9] * 9) if drifted else np.full(10, 0.1)
    data["cat_uniform"] = rng.choice(CATS, n, p=uniform)
    data["cat_zipf"] = rng.choice(CATS, n, p=ZIPF)
    frame = pd.DataFrame(data)
    if drifted:
        for name in DRIFTED[:5]:
            frame[name] += 0.5 * SD[name.rstrip("0123456789")]
    return frame


@pytest.mark.parametrize("n", [1_000, 100_000])
def test_exactly_the_drifted_columns_are_flagged(n: int) -> None:
    rng = np.random.default_rng(2016 + n)
    reference, current = _sample(n, rng, drifted=False), _sample(n, rng, drifted=True)

    result = drift(reference, current)

    assert result.drifted
    assert result.drifted_columns == DRIFTED
    rule = "p_value" if n < 10_000 else "distance"
    assert set(result.table["rule"]) == {rule}
    assert all(result.table["reason"].str.len() > 0)


# ---------------------------------------------------------------- statistical honesty


def _false_alarm_rate(n: int, kind: str, columns: int, repeats: int, base_seed: int) -> float:
    """The share of `repeats` no-drift comparisons where any of `columns` is flagged."""
    alarms = 0
    for repeat in range(repeats):
        rng = np.random.default_rng([base_seed, n, repeat])
        sides = []
        for _ in range(2):
            if kind == "numeric":
                makers = [
                    lambda r: r.normal(0, 1, n),
                    lambda r: r.lognormal(0, 0.5, n),
                    lambda r: r.uniform(0, 1, n),
                ]
                sides.append({f"x{i}": makers[i % 3](rng) for i in range(columns)})
            else:
                probs = [np.full(10, 0.1), ZIPF]
                sides.append({f"x{i}": rng.choice(10, n, p=probs[i % 2]) for i in range(columns)})
        kinds = {f"x{i}": {"kind": kind} for i in range(columns)}
        alarms += drift(sides[0], sides[1], config={"columns": kinds}).drifted
    return alarms / repeats


# The family-wise rate is at most alpha = 0.05 in theory; 500 repetitions at 500 rows make
# its standard error about 1%, so 8% is far from a chance failure. At 100,000 rows the
# distance rule decides, and 200 single-column repetitions keep the test to seconds.
@pytest.mark.parametrize(("n", "columns", "repeats"), [(500, 2, 500), (100_000, 1, 200)])
@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_no_drift_is_rarely_flagged(n: int, columns: int, repeats: int, kind: str) -> None:
    rate = _false_alarm_rate(n, kind, columns, repeats, base_seed=16)

    assert rate <= 0.08


# ---------------------------------------------------------------- config and errors


def test_a_configured_test_and_threshold_decide() -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(0, 1, 2000), rng.normal(0.3, 1, 2000)
    config = {"columns": {"x": {"test": "wasserstein", "threshold": 0.5}}}

    row = _row(drift({"x": ref}, {"x": cur}, config=config), "x")

    assert (row["rule"], row["test"], row["threshold"], row["drifted"]) == (
        "distance",
        "wasserstein",
        0.5,
        False,
    )
    assert "configured" in row["reason"]


def test_large_sample_is_configurable() -> None:
    rng = np.random.default_rng(8)
    ref, cur = rng.normal(0, 1, 500), rng.normal(0, 1, 500)

    result = drift({"x": ref}, {"x": cur}, config={"large_sample": 100})

    assert list(result.table["rule"]) == ["distance"]


def test_nulls_are_dropped_and_results_serialise() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, None, 3.0], "c": ["a", None, "b", "a"]})
    cur = pd.DataFrame({"x": [1.0, None, 2.5, 3.0], "c": ["a", "b", "b", None]})

    result = drift(ref, cur)
    data = json.loads(result.to_json())

    assert list(result.table["n_reference"]) == [3, 3]
    assert data["drifted"] is False
    assert [c["column"] for c in data["columns"]] == ["x", "c"]


def test_an_all_null_column_is_skipped_not_a_crash() -> None:
    result = drift({"x": [1.0, 2.0]}, {"x": [None, None]})

    assert list(result.table["rule"]) == ["skipped"]
    assert not result.drifted


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"alpah": 0.1}, r"Unknown key 'alpah' in the drift config.*Did you mean 'alpha'"),
        ({"alpha": 2}, r"config\['alpha'\] is 2; expected a number between 0.0 and 1.0"),
        ({"thresholds": {"wasserstien": 1}}, r"'wasserstien'.*Did you mean 'wasserstein'"),
        ({"columns": {"x": {"kidn": "numeric"}}}, r"Unknown key 'kidn'.*Did you mean 'kind'"),
        ({"columns": {"x": {"kind": "numerical"}}}, r"expected 'numeric' or 'categorical'"),
        ({"columns": {"x": {"test": "chi2"}}}, r"'chi2', which is not a test for a numeric"),
        ({"columns": {"y": {"kind": "numeric"}}}, r"names 'y', which is not a compared"),
    ],
)
def test_bad_config_names_the_key(config: dict, message: str) -> None:
    with pytest.raises(kiln.ConfigurationError, match=message):
        drift({"x": [1.0, 2.0]}, {"x": [1.0, 3.0]}, config=config)


def test_data_errors_say_what_and_how_to_fix() -> None:
    with pytest.raises(kiln.DataFileError, match=r"current data has no rows"):
        drift({"x": [1.0]}, pd.DataFrame({"x": []}))
    with pytest.raises(kiln.DataFileError, match=r"no column in common.*Rename"):
        drift({"x": [1.0]}, {"y": [1.0]})
    with pytest.raises(kiln.DataFileError, match=r"'age' is missing from the current.*'agee'"):
        drift({"age": [1.0]}, {"agee": [1.0]}, columns=["age"])
    with pytest.raises(kiln.DataFileError, match=r"'x' of the current data.*not numbers"):
        drift({"x": [1.0, 2.0]}, {"x": ["a", "b"]})


# ---------------------------------------------------------------- the G-test option


@seed(1617)
@settings(max_examples=60, deadline=None)
@given(ref=labels, cur=labels, only_current=st.lists(st.sampled_from(["x", "y"]), max_size=5))
def test_g_test_equals_scipy(ref: list[str], cur: list[str], only_current: list[str]) -> None:
    cur = cur + only_current
    row = _row(drift({"x": ref}, {"x": cur}, config={"columns": {"x": {"test": "g"}}}), "x")
    categories = sorted(set(ref) | set(cur))
    table = np.array([[ref.count(c) for c in categories], [cur.count(c) for c in categories]])

    assert (row["test"], row["rule"]) == ("g", "p_value")
    if len(categories) > 1:
        expected = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
        assert row["statistic"] == _approx(expected.statistic)
        assert row["p_value"] == _approx(expected.pvalue)
    else:
        assert (row["statistic"], row["p_value"]) == (0.0, 1.0)


def test_g_test_at_the_acceptance_scenario_flags_the_drifted_category() -> None:
    rng = np.random.default_rng(1618)
    reference, current = _sample(1_000, rng, drifted=False), _sample(1_000, rng, drifted=True)
    config = {"columns": {name: {"test": "g"} for name in ("cat_uniform", "cat_zipf")}}

    result = drift(reference, current, config=config)

    assert result.drifted_columns == DRIFTED
    assert list(result.table.loc[20:, "test"]) == ["g", "g"]


# ---------------------------------------------------------------- p-values where they decide


def test_p_values_are_computed_where_they_decide_or_on_request() -> None:
    rng = np.random.default_rng(1619)
    reference, current = _sample(12_000, rng, drifted=False), _sample(12_000, rng, drifted=True)

    lazy = drift(reference, current).table
    full = drift(reference, current, config={"p_values": "all"}).table

    assert lazy["p_value"].isna().all()
    assert lazy["adjusted_p_value"].isna().all()
    expected = stats.ks_2samp(reference["normal3"], current["normal3"])
    assert full.loc[3, "p_value"] == _approx(expected.pvalue)
    expected = stats.chi2_contingency(
        pd.crosstab(
            np.r_[np.zeros(12_000), np.ones(12_000)],
            np.r_[reference["cat_zipf"], current["cat_zipf"]],
        ),
        correction=False,
    )
    assert full.loc[21, "p_value"] == _approx(expected.pvalue)
    assert full["adjusted_p_value"].isna().all()  # Holm's family: the p-value-ruled columns
    same = ["column", "test", "statistic", "distance", "drifted", "rule", "reason", "psi"]
    pd.testing.assert_frame_equal(lazy[same], full[same])


def test_holm_runs_across_the_columns_the_p_value_rule_decides() -> None:
    rng = np.random.default_rng(1620)
    ref = {f"x{i}": rng.normal(0, 1, 300) for i in range(3)}
    cur = {f"x{i}": rng.normal(0.2 * i, 1, 300) for i in range(3)}
    config = {"columns": {"x2": {"test": "wasserstein"}}}

    table = drift(ref, cur, config=config).table

    p = [stats.ks_2samp(ref[f"x{i}"], cur[f"x{i}"]).pvalue for i in range(2)]
    holm = [min(1.0, 2 * min(p)), max(min(1.0, 2 * min(p)), max(p))]
    assert list(table.loc[:1, "adjusted_p_value"]) == [
        _approx(holm[int(p[0] > p[1])]),
        _approx(holm[int(p[1] >= p[0])]),
    ]
    assert np.isnan(table.loc[2, "adjusted_p_value"])


# ---------------------------------------------------------------- files, threads, wide input


def _files(tmp_path, reference: pd.DataFrame, current: pd.DataFrame, suffix: str) -> list:
    paths = [tmp_path / f"reference{suffix}", tmp_path / f"current{suffix}"]
    for frame, path in zip((reference, current), paths, strict=True):
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, row_group_size=700)  # several row groups per column
    return paths


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("n", [1_000, 20_000])
def test_file_paths_give_the_same_table_as_frames(tmp_path, suffix: str, n: int) -> None:
    rng = np.random.default_rng(1621 + n)
    reference, current = _sample(n, rng, drifted=False), _sample(n, rng, drifted=True)
    reference.loc[::7, "normal9"] = np.nan  # nulls survive the file
    current.loc[::5, "cat_zipf"] = None
    ref_path, cur_path = _files(tmp_path, reference, current, suffix)

    from_frames = drift(reference, current).table
    from_files = drift(ref_path, str(cur_path)).table  # a Path and a str

    pd.testing.assert_frame_equal(from_files, from_frames)
    assert list(from_files.loc[from_files["drifted"], "column"]) == DRIFTED


def test_a_pandas_index_column_in_parquet_is_not_compared(tmp_path) -> None:
    frame = pd.DataFrame({"x": np.arange(50.0)}, index=pd.Index(np.arange(50) * 2, name="id"))
    frame.to_parquet(tmp_path / "a.parquet")

    result = drift(tmp_path / "a.parquet", tmp_path / "a.parquet")

    assert list(result.table["column"]) == ["x"]


def test_one_or_two_workers_give_identical_results(tmp_path) -> None:
    rng = np.random.default_rng(1622)
    reference, current = _sample(3_000, rng, drifted=False), _sample(3_000, rng, drifted=True)
    paths = _files(tmp_path, reference, current, ".parquet")

    one = drift(*paths, workers=1, config={"p_values": "all"}).table
    two = drift(*paths, workers=2, config={"p_values": "all"}).table
    four = drift(reference, current, workers=4, config={"p_values": "all"}).table

    assert list(one["column"]) == list(reference.columns)
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(one, four)


def test_wide_parquet_input(tmp_path) -> None:
    rng = np.random.default_rng(1623)
    names = [f"f{i:03d}" for i in range(300)]
    shift = {name: 0.5 if i % 50 == 0 else 0.0 for i, name in enumerate(names)}
    for side, path in (("reference", "ref.parquet"), ("current", "cur.parquet")):
        data = {
            name: rng.normal(shift[name] if side == "current" else 0.0, 1, 2_000) for name in names
        }
        pd.DataFrame(data).to_parquet(tmp_path / path)

    result = drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet", progress=True)

    assert list(result.table["column"]) == names
    assert result.drifted_columns == [n for n in names if shift[n]]


def test_progress_bar_leaves_the_result_alone(capsys) -> None:
    rng = np.random.default_rng(1624)
    data = {f"x{i}": rng.normal(0, 1, 200) for i in range(5)}

    shown = drift(data, data, progress=True).table
    hidden = drift(data, data, progress=False).table

    pd.testing.assert_frame_equal(shown, hidden)
    assert capsys.readouterr().out == ""  # the bar goes to stderr only


def test_file_errors_say_what_and_how_to_fix(tmp_path) -> None:
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "bad.parquet").write_text("not parquet")
    pd.DataFrame({"y": []}).to_parquet(tmp_path / "empty.parquet")
    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "x.parquet")

    with pytest.raises(kiln.DataFileError, match=r"reference data '.*missing.parquet' is not a"):
        drift(tmp_path / "missing.parquet", {"x": [1.0]})
    with pytest.raises(kiln.DataFileError, match=r"neither Parquet nor CSV.*\.parquet"):
        drift({"x": [1.0]}, tmp_path / "notes.json")
    with pytest.raises(kiln.DataFileError, match=r"Cannot read the current data .* as Parquet"):
        drift({"x": [1.0]}, tmp_path / "bad.parquet")
    with pytest.raises(kiln.DataFileError, match=r"current data has no rows"):
        drift({"y": [1.0]}, tmp_path / "empty.parquet")
    with pytest.raises(kiln.DataFileError, match=r"'xx' is missing from the reference.*'x'\?"):
        drift(tmp_path / "x.parquet", {"xx": [1.0]}, columns=["xx"])
    with pytest.raises(kiln.ConfigurationError, match=r"workers is 0; expected a whole number"):
        drift({"x": [1.0]}, {"x": [1.0]}, workers=0)
    with pytest.raises(kiln.ConfigurationError, match=r"p_values'\] is 'some'.*'decisive'"):
        drift({"x": [1.0]}, {"x": [1.0]}, config={"p_values": "some"})
