"""require_file: the data readers' first check names what is wrong with the path."""

import pytest

from vaekit.anomaly.data import read_table as read_anomaly_table
from vaekit.data import require_file
from vaekit.data.ratings import read_table
from vaekit.errors import DataError
from vaekit.molecules.data import read_smiles
from vaekit.text.data import read_sentences


@pytest.mark.parametrize("read", [read_sentences, read_smiles, read_table, read_anomaly_table])
def test_a_directory_or_a_missing_path_is_refused_saying_which(read, tmp_path):
    with pytest.raises(DataError, match="a directory, not a file"):
        read(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        read(tmp_path / "missing.csv")


def test_a_file_is_returned_as_a_path(tmp_path):
    (tmp_path / "a.txt").write_text("x\n")
    assert require_file(str(tmp_path / "a.txt")) == tmp_path / "a.txt"
