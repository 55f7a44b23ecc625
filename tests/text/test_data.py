"""Reading sentences: bad files named with their line; truncation counted; batches trimmed."""

import pytest
import torch

from vaekit.errors import DataError
from vaekit.text.data import SequenceTensors, by_length, encode, read_sentences
from vaekit.text.vocab import EOS_ID, PAD_ID, Vocabulary


def test_reads_lines_and_a_last_line_without_newline(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("the cat sat\n\n  a dog  \nno newline at the end")
    assert read_sentences(p) == [["the", "cat", "sat"], ["a", "dog"], ["no", "newline", "at", "the", "end"]]
    assert read_sentences(p, lowercase=True)[0] == ["the", "cat", "sat"]


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"  \n\n", "the file is empty"),
    (b"fine\nbad \xff\xfe here\n", "line 2 is not UTF-8"),
    (b"ok\nok\n\x00\x01\x02binary", "line 3 holds NUL bytes"),
])
def test_bad_files_are_named(tmp_path, content, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_sentences(p)
    with pytest.raises(DataError, match="no such file"):
        read_sentences(tmp_path / "missing.txt")


def test_encode_truncates_and_counts():
    v = Vocabulary.build([["a", "b", "c"]])
    enc = encode([["a", "b", "c", "a"], ["b"], ["zz"]], v, max_len=3)
    assert enc.report["truncated_sentences"] == 1 and enc.report["unknown_words"] == 1
    assert enc.rows.shape == (3, 4)
    assert enc.rows[0].tolist()[-1] == EOS_ID and enc.rows[1].tolist() == [5, EOS_ID, PAD_ID, PAD_ID]
    with pytest.raises(DataError, match="max_len must be >= 1"):
        encode([["a"]], v, 0)


def test_batches_are_trimmed_to_their_longest_sentence():
    rows = torch.tensor([[4, 5, 2, 0, 0], [4, 2, 0, 0, 0], [4, 5, 6, 7, 2]])
    data = SequenceTensors(rows)
    x, _ = data.batch(torch.tensor([0, 1]))
    assert x.shape == (2, 3)
    assert by_length(rows)[0].tolist() == [4, 2, 0, 0, 0]


def test_epoch_order_is_a_permutation_of_length_buckets():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 40, (1000,))
    rows = torch.zeros(1000, 41, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        rows[i, :n] = 5
        rows[i, n] = EOS_ID
    data = SequenceTensors(rows)
    order = data.epoch_order(32, g)
    assert sorted(order.tolist()) == list(range(1000))
    padded = sum(int(data.batch(order[i:i + 32])[0].numel()) for i in range(0, 1000, 32))
    random = sum(int(data.batch(torch.arange(i, min(i + 32, 1000)))[0].numel()) for i in range(0, 1000, 32))
    assert padded < 0.7 * random  # similar lengths share a batch
    again = data.epoch_order(32, torch.Generator().manual_seed(0))
    assert torch.equal(order, again)  # the same generator state, the same order (resumable)
