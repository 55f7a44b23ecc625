"""Interaction files: binarizing, deduplicating, filtering, and clear refusals."""

import numpy as np
import pandas as pd
import pytest

from vaekit.data.ratings import interactions_from_table, read_interactions
from vaekit.errors import DataError


def write(tmp_path, text, name="r.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_binarizes_dedups_and_filters_with_a_report(tmp_path):
    p = write(tmp_path, "user,item,rating\n1,a,5\n1,a,4\n1,b,2\n1,c,4\n2,a,5\n3,x,5\n3,y,5\n")
    inter = read_interactions(p, min_rating=4, min_user_items=2)
    assert inter.report["rows_below_min_rating"] == 1 and inter.report["duplicates"] == 1
    assert inter.report["users_below_min_items"] == 1  # user 2 has one positive
    assert list(inter.user_ids) == ["1", "3"] and list(inter.item_ids) == ["a", "c", "x", "y"]
    assert inter.matrix.toarray().tolist() == [[1, 1, 0, 0], [0, 0, 1, 1]]


def test_movielens_u_data_layout_is_read_without_a_header(tmp_path):
    p = write(tmp_path, "196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.data")
    inter = read_interactions(p)
    assert inter.n_users == 2 and inter.n_items == 2


@pytest.mark.parametrize("text, message", [
    ("user,item,rating\n1,a,five\n", "row 1: rating 'five' is not a number"),
    ("user,item,rating\n1,a,-1\n", "row 1: rating '-1' is negative"),
    ("user,item,rating\n1,a,5\n1,b,inf\n", "row 2: rating 'inf' is not a finite number"),
    ("user,item,rating\n1,a,-inf\n", "rating '-inf' is not a finite number"),
    ("u,i\n1,a\n", "no user column 'user'; columns are: u, i"),
    ("user;item;rating\n1;a;5\n", "is the delimiter right"),
])
def test_bad_tables_are_refused_naming_the_problem(tmp_path, text, message):
    with pytest.raises(DataError, match="r.csv") as e:
        read_interactions(write(tmp_path, text))
    assert message in str(e.value)


def test_nothing_left_after_filtering_reports_the_counts():
    df = pd.DataFrame({"user": ["1", "2"], "item": ["a", "b"], "rating": ["1", "2"]})
    with pytest.raises(DataError, match="no interactions left.*2 below min_rating 4"):
        interactions_from_table(df, min_rating=4)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_interactions(tmp_path / "missing.csv")
    with pytest.raises(DataError):
        read_interactions(write(tmp_path, ""))
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"user,item\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_interactions(bad)


def test_a_missing_rating_is_refused_only_when_min_rating_must_judge_it(tmp_path):
    p = write(tmp_path, "user,item,rating\n1,a,5\n1,b,\n1,c,\n")
    assert read_interactions(p).n_items == 3  # implicit feedback: the rating is not used
    with pytest.raises(DataError, match=r"r.csv: column 'rating', row 2: rating \(empty\) is missing.*2 such rows"):
        read_interactions(p, min_rating=4)
    with pytest.raises(DataError, match="min_rating must be a finite number"):
        read_interactions(p, min_rating=float("nan"))


def test_ids_spelled_like_missing_values_are_ids(tmp_path):
    p = write(tmp_path, "user,item\nNA,null\nNA,None\nnan,NA\n")
    inter = read_interactions(p)
    assert list(inter.user_ids) == ["NA", "nan"] and list(inter.item_ids) == ["NA", "None", "null"]
    assert inter.report["rows_missing_ids"] == 0


def test_parquet_integer_ids_with_a_gap_stay_integers(tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"user": [1, 1, 2, None], "item": [7.0, None, 12.0, 3.0]})
    path = tmp_path / "r.parquet"
    df.to_parquet(path)
    inter = read_interactions(path)
    assert list(inter.user_ids) == ["1", "2"] and list(inter.item_ids) == ["12", "7"]
    assert inter.report["rows_missing_ids"] == 2


def test_ratings_written_na_are_missing_and_nullable_integers_are_read(tmp_path):
    p = write(tmp_path, "user,item,rating\n1,a,5\n1,b,NA\n2,a,NULL\n")
    assert read_interactions(p).n_items == 2  # without --min-rating the ratings are not used
    with pytest.raises(DataError, match=r"row 2: rating \(empty\) is missing"):
        read_interactions(p, min_rating=4)
    df = pd.DataFrame({"user": ["1", "1", "2"], "item": ["a", "b", "a"],
                       "rating": pd.array([5, None, 4], dtype="Int64")})
    assert interactions_from_table(df).n_items == 2
    assert interactions_from_table(df.dropna(), min_rating=np.int64(5)).n_items == 1


def test_huge_whole_number_ids_are_kept_as_they_print():
    df = pd.DataFrame({"user": [1e19, 2.0], "item": [3.0, 4.0]})
    inter = interactions_from_table(df)
    assert list(inter.user_ids) == ["1e+19", "2.0"]
