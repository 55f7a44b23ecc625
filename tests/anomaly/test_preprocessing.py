"""TabularPreprocessor: robust scaling, one-hot categories, missing values, column checks."""

import numpy as np
import pandas as pd
import pytest

from vaekit.anomaly.preprocessing import OTHER, TabularPreprocessor
from vaekit.errors import DataError

from .conftest import mixed_table


def test_robust_scaling_and_one_hot():
    df = mixed_table(200)
    p = TabularPreprocessor().fit(df)
    enc = p.transform(df)
    assert p.numeric_ == ["a", "b", "c"] and list(p.categories_) == ["proto"]
    assert p.constant_columns_ == ["const"]
    assert p.encoded_names_[:4] == ["a", "b", "c", "proto=tcp"]
    a = enc.values[:, 0]
    assert np.median(a) == pytest.approx(0, abs=1e-6)
    q1, q3 = np.percentile(a, [25, 75])
    assert (q3 - q1) / 1.349 == pytest.approx(1, rel=1e-5)
    onehot = enc.values[:, 3:]
    assert np.allclose(onehot.sum(1), 1) and enc.observed.min() == 1
    assert enc.constant_changed.shape == (200, 1) and enc.constant_changed.sum() == 0
    assert p.group_matrix().shape == (7, 5)  # 6 encoded + 1 constant -> 5 columns


def test_a_constant_column_that_changes_is_reported():
    df = mixed_table(50)
    p = TabularPreprocessor().fit(df)
    later = df.head(4).assign(const=[5.0, 6.0, 5.0, 7.0])
    enc = p.transform(later)
    assert enc.report["constant_columns_changed"] == {"const": 2}
    assert enc.constant_changed[:, 0].tolist() == [0, 1, 0, 1]


def test_iqr_zero_falls_back_to_std():
    x = np.r_[np.zeros(90), np.arange(1, 11)]
    p = TabularPreprocessor().fit(x[:, None])
    assert p.scale_[0] == pytest.approx(np.std(x))


def test_unknown_and_rare_categories():
    df = pd.DataFrame({"v": np.arange(8.0), "k": ["a", "a", "a", "b", "b", "c", "d", "a"]})
    p = TabularPreprocessor(max_categories=2).fit(df)
    assert p.categories_["k"] == ["a", "b", OTHER]
    enc = p.transform(pd.DataFrame({"v": [1.0, 2.0, 3.0], "k": ["c", "zzz", "a"]}))
    block = enc.values[:, 1:]
    assert block[0].tolist() == [0, 0, 1]  # rare in training: the "other" slot
    assert block[1].tolist() == [0, 0, 0]  # never seen: no slot, reported
    assert enc.report["unknown_categories"] == {"k": 1}


def test_a_whole_number_is_one_category_however_it_is_stored():
    df = pd.DataFrame({"v": np.arange(6.0), "zone": [1, 2, 3, 1, 2, 3]})
    p = TabularPreprocessor(categorical=["zone"]).fit(df)
    assert p.categories_["zone"] == ["1", "2", "3"]
    # a missing cell makes a CSV reader return floats: 2.0 must still be category "2"
    enc = p.transform(pd.DataFrame({"v": [1.0, 2.0, 3.0], "zone": [2.0, np.nan, 3.0]}))
    assert enc.report["unknown_categories"] == {} and enc.report["missing_values"] == {"zone": 1}
    assert enc.values[:, 1:].tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert p.transform(pd.DataFrame({"v": [1.0], "zone": ["2"]})).values[0, 1:].tolist() == [0, 1, 0]


def test_float_category_names_of_saved_detectors_still_match():
    p = TabularPreprocessor(categorical=["zone"]).fit(pd.DataFrame({"v": np.arange(4.0), "zone": [1, 2, 1, 2]}))
    saved = p.to_dict()
    saved["categories"] = {"zone": ["1.0", "2.0"]}  # as written before whole numbers were named as integers
    old = TabularPreprocessor.from_dict(saved)
    enc = old.transform(pd.DataFrame({"v": [0.0, 1.0], "zone": [2, 1.0]}))
    assert enc.report["unknown_categories"] == {} and enc.values[:, 1:].tolist() == [[0, 1], [1, 0]]


def test_missing_values_are_masked_and_reported():
    df = mixed_table(50)
    df.loc[3, "a"] = np.nan
    df.loc[4, "b"] = np.inf
    df.loc[5, "proto"] = None
    p = TabularPreprocessor().fit(df)
    enc = p.transform(df)
    assert enc.report["missing_values"] == {"a": 1, "b": 1, "proto": 1}
    assert enc.observed[3, 0] == 0 and enc.values[3, 0] == 0
    assert enc.observed[5, 3:].sum() == 0
    assert enc.report["rows_with_missing"] == 3
    with pytest.raises(DataError, match="column 'a' has 1 missing or infinite value.*row 3"):
        TabularPreprocessor(missing="error").fit(df).transform(df)


def test_text_in_a_numeric_column_is_named():
    df = pd.DataFrame({"x": [str(v) for v in np.arange(40.0)], "y": np.arange(40.0)})
    df.loc[17, "x"] = "12,5kg"
    with pytest.raises(DataError, match=r"column 'x' is numeric but row 17 holds '12,5kg'"):
        TabularPreprocessor().fit(df)
    p = TabularPreprocessor().fit(pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0)}))
    with pytest.raises(DataError, match="row 17 holds '12,5kg'"):
        p.transform(df)


def test_columns_are_aligned_by_name():
    df = mixed_table(60)
    p = TabularPreprocessor().fit(df)
    base = p.transform(df).values
    shuffled = df[["proto", "c", "const", "b", "a"]].assign(extra=1.0)
    enc = p.transform(shuffled)
    assert np.array_equal(enc.values, base)
    assert enc.report["ignored_columns"] == ["extra"]
    with pytest.raises(DataError, match="columns missing from the data.*: b"):
        p.transform(df.drop(columns=["b"]))


def test_arrays_are_positional():
    X = np.random.default_rng(0).normal(size=(30, 4))
    p = TabularPreprocessor().fit(X)
    assert p.columns_ == ["x0", "x1", "x2", "x3"]
    with pytest.raises(DataError, match="3 columns, the detector was fitted on 4"):
        p.transform(X[:, :3])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 3)), "no rows"),
    (np.zeros(5), "2-D table"),
    (np.ones((5, 2)) * 3.0, "every column is constant"),
    (pd.DataFrame({"a": [np.nan, np.nan]}), "no finite value"),
])
def test_unusable_tables(bad, message):
    with pytest.raises(DataError, match=message):
        TabularPreprocessor().fit(bad)


def test_round_trip_through_a_dict():
    df = mixed_table(80)
    p = TabularPreprocessor().fit(df)
    q = TabularPreprocessor.from_dict(p.to_dict())
    assert np.array_equal(q.transform(df).values, p.transform(df).values)
