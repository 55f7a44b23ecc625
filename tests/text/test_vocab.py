"""The vocabulary: specials first, most frequent words, <unk> for the rest, JSON round trip."""

import pytest

from vaekit.errors import DataError, ModelFileError
from vaekit.text.vocab import EOS_ID, SPECIALS, UNK_ID, Vocabulary


def test_build_keeps_the_most_frequent_words():
    v = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"]], max_size=6)
    assert v.tokens == list(SPECIALS) + ["a", "b"]
    ids, unknown = v.encode(["a", "c", "<unk>"])
    assert ids == [4, UNK_ID, UNK_ID] and unknown == 1  # the literal <unk> is not counted
    assert v.decode(ids + [EOS_ID, 5]) == ["a", "<unk>", "<unk>"]


def test_min_count_and_bad_sizes():
    v = Vocabulary.build([["a", "a", "b"]], min_count=2)
    assert v.tokens[4:] == ["a"]
    with pytest.raises(DataError, match="vocabulary size must be > 4"):
        Vocabulary.build([["a"]], max_size=4)
    with pytest.raises(DataError, match="no word occurs often enough"):
        Vocabulary.build([["a"]], min_count=5)


def test_save_and_load(tmp_path):
    v = Vocabulary.build([["x", "y"]], lowercase=True)
    v.save(tmp_path)
    again = Vocabulary.load(tmp_path)
    assert again.tokens == v.tokens and again.lowercase
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not a valid vocabulary"):
        Vocabulary.load(tmp_path)
    with pytest.raises(ModelFileError, match="is missing"):
        Vocabulary.load(tmp_path / "nowhere")
