"""Reading and cleaning a library: bad lines are skipped and counted, bad files named."""

import gzip

import pytest

from vaekit.errors import DataError
from vaekit.molecules.data import clean, read_smiles
from vaekit.molecules.tokens import Representation


def test_smi_file_with_names_and_header(tmp_path):
    p = tmp_path / "lib.smi"
    p.write_text("SMILES name\nCCO ethanol\n\nc1ccccc1 benzene\n")
    assert read_smiles(p) == ["CCO", "", "c1ccccc1"]


def test_csv_column_gz_and_default_smiles_column(tmp_path):
    p = tmp_path / "lib.csv.gz"
    p.write_bytes(gzip.compress(b"id,Smiles,activity\n1,CCO,0.5\n2,CCN,0.1\n"))
    assert read_smiles(p) == ["CCO", "CCN"]
    assert read_smiles(p, "id") == ["1", "2"]


def test_missing_column_is_named_with_the_columns_found(tmp_path):
    p = tmp_path / "lib.csv"
    p.write_text("id,structure\n1,CCO\n")
    with pytest.raises(DataError, match=r"no column 'SMILES'; columns found: \['id', 'structure'\]"):
        read_smiles(p, "SMILES")


def test_wrong_delimiter_gets_a_hint(tmp_path):
    p = tmp_path / "lib.csv"
    p.write_text("id;smiles\n1;CCO\n")
    with pytest.raises(DataError, match="is the delimiter ';'"):
        read_smiles(p, "smiles")


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\x00\x01\x02CCO", "binary file"),
    (b"CCO\n\xff\xfeC\n", "line 2 is not UTF-8"),
])
def test_bad_files(tmp_path, content, message):
    p = tmp_path / "lib.smi"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_smiles(p)


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_smiles(tmp_path / "missing.smi")
    p = tmp_path / "lib.xlsx"
    p.write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        read_smiles(p)


def test_clean_skips_and_counts_invalid_empty_huge_and_long_lines():
    raw = ["CCO", "", "C1CC", "not smiles", "C" * 2000, "C" * 80, "OCC", "c1ccccc1"]
    lib = clean(raw, Representation("smiles"), max_len=60, max_chars=1000)
    assert lib.smiles == ["CCO", "CCO", "c1ccccc1"]
    assert lib.report["skipped"] == {"empty": 1, "invalid_smiles": 2, "too_long_line": 1, "too_many_tokens": 1}
    assert lib.report["kept"] == 3 and lib.report["lines"] == 8


def test_clean_refuses_a_library_without_one_molecule():
    with pytest.raises(DataError, match="no usable molecule among 2 lines"):
        clean(["xx", ""], Representation("smiles"), 60, where="lib.smi")


def test_huge_csv_field_is_skipped_as_a_long_line(tmp_path):
    p = tmp_path / "lib.csv"
    p.write_text("smiles\nCCO\n" + "C" * 200_000 + "\nCCN\n")
    raw = read_smiles(p)
    assert len(raw) == 3
    lib = clean(raw, Representation("smiles"), 60, max_chars=1000)
    assert lib.smiles == ["CCO", "CCN"] and lib.report["skipped"] == {"too_long_line": 1}
