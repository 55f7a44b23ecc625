"""Reading tables: an .npz that zipfile cannot open is a clear DataError."""

import io
import zipfile

import numpy as np
import pytest

from vaekit.anomaly.data import read_table
from vaekit.errors import DataError


def test_npz_with_an_unsupported_compression_method_is_a_data_error(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.ones((4, 3), np.float32))
    path = tmp_path / "t.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("X.npy", buf.getvalue())
    raw = bytearray(path.read_bytes())
    # compression method 99 in the local header (offset 8) and the central directory (offset 10)
    raw[8:10] = (99).to_bytes(2, "little")
    central = raw.index(b"PK\x01\x02")
    raw[central + 10 : central + 12] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="t.npz: cannot read the table"):
        read_table(path)
