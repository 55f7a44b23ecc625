"""read_json: every JSON side file of a model (config.json, vocab.json, detector.json,
recommender.json) is read through it, so a damaged one is one clear ModelFileError."""

import json

import pytest

from vaekit.errors import ModelFileError
from vaekit.train.checkpoint import read_json


def test_reads_a_document(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"kind": "text", "n": [1, 2]}))
    assert read_json(tmp_path / "a.json") == {"kind": "text", "n": [1, 2]}


@pytest.mark.parametrize("make, message", [
    (lambda p: None, r"a\.json is missing: not a run"),
    (lambda p: p.mkdir(), r"a\.json is a directory, not a file"),
    (lambda p: p.write_bytes(b"\xab\xcd{}"), r"a\.json is not valid JSON: not UTF-8 text"),
    (lambda p: p.write_text("{not json"), r"a\.json is not valid JSON: Expecting"),
    (lambda p: p.write_text("[" * 200_000 + "]" * 200_000), r"a\.json .*nested too deeply"),
    (lambda p: p.write_text('{"a":' * 200_000 + "1" + "}" * 200_000), r"a\.json .*nested too deeply"),
])
def test_a_damaged_file_is_one_clear_error(tmp_path, make, message):
    path = tmp_path / "a.json"
    make(path)
    with pytest.raises(ModelFileError, match=message):
        read_json(path, missing="not a run")
