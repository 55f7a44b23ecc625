"""The vocabulary: specials first, most frequent words, <unk> for the rest, JSON round trip."""

import json

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
    with pytest.raises(ModelFileError, match="vocab.json is not valid JSON"):
        Vocabulary.load(tmp_path)
    with pytest.raises(ModelFileError, match="is missing: .* is not a text or molecule run directory"):
        Vocabulary.load(tmp_path / "nowhere")


@pytest.mark.parametrize("doc, message", [
    ({"tokens": ["<pad>", "<bos>", "<eos>", "<unk>", "a"], "lowercase": "false"}, "'lowercase' must be true or false"),
    ({"tokens": ["<pad>", "<bos>", "<eos>", "<unk>", 7]}, "'tokens' must be a list of strings"),
    ({"tokens": "abc"}, "'tokens' must be a list of strings"),
    (["<pad>"], "not a valid vocabulary"),
    ({"words": []}, "not a valid vocabulary"),
])
def test_a_damaged_vocabulary_is_refused_with_its_problem(tmp_path, doc, message):
    (tmp_path / "vocab.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match=message):
        Vocabulary.load(tmp_path)


def test_a_vocabulary_that_does_not_fit_the_model_is_refused(tmp_path):
    v = Vocabulary.build([["x", "y", "z"]])
    v.save(tmp_path)
    fits = {"vocab_size": len(v), "vocab_sha256": v.fingerprint()}
    assert Vocabulary.load(tmp_path, fits).tokens == v.tokens
    assert Vocabulary.load(tmp_path, {"vocab_size": len(v)}).tokens == v.tokens  # runs saved before the fingerprint
    with pytest.raises(ModelFileError, match="holds 7 tokens but the model .* was trained on 9"):
        Vocabulary.load(tmp_path, {"vocab_size": 9})
    other = Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>", "z", "y", "x"])  # same size, other order
    other.save(tmp_path)
    with pytest.raises(ModelFileError, match="not the vocabulary the model .* was trained with"):
        Vocabulary.load(tmp_path, fits)
    assert Vocabulary(v.tokens, lowercase=True).fingerprint() != v.fingerprint()
