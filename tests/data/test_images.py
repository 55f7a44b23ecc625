"""Reading one image: an image file, or an array holding one image without its batch axis."""

import numpy as np
import pytest
from PIL import Image

from vaekit.data.images import is_one_image, read_images
from vaekit.errors import DataError


def test_a_single_image_file_is_one_image(tmp_path):
    pixels = (np.arange(30).reshape(5, 6) * 8).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    x, y = read_images(tmp_path / "a.png")
    assert x.shape == (1, 1, 5, 6) and y is None
    assert np.allclose(x[0, 0], pixels / 255.0)
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(tmp_path / "b.JPG")
    assert read_images(tmp_path / "b.JPG")[0].shape == (1, 3, 5, 6)


def test_an_image_file_takes_the_channels_of_the_model(tmp_path):
    Image.fromarray(np.full((5, 6, 3), 200, np.uint8)).save(tmp_path / "rgb.png")
    assert read_images(tmp_path / "rgb.png", (1, 5, 6))[0].shape == (1, 1, 5, 6)
    Image.fromarray(np.full((5, 6), 200, np.uint8)).save(tmp_path / "grey.png")
    assert read_images(tmp_path / "grey.png", (3, 5, 6))[0].shape == (1, 3, 5, 6)


def test_a_damaged_image_file_is_named(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*bad.png"):
        read_images(tmp_path / "bad.png")


@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8), (1, 1, 8, 8)])
def test_an_array_of_one_image_is_one_image_for_a_model_shape(tmp_path, shape):
    np.save(tmp_path / "one.npy", np.random.default_rng(0).random(shape).astype(np.float32))
    assert read_images(tmp_path / "one.npy", (1, 8, 8))[0].shape == (1, 1, 8, 8)


def test_without_a_model_shape_a_2d_array_is_rows(tmp_path):
    np.save(tmp_path / "rows.npy", np.zeros((8, 8), np.float32))
    assert read_images(tmp_path / "rows.npy")[0].shape == (8, 8)
    assert read_images(tmp_path / "rows.npy", (8,))[0].shape == (8, 8)


def test_is_one_image():
    assert is_one_image((28, 28), (1, 28, 28))
    assert is_one_image((1, 28, 28), (1, 28, 28))
    assert is_one_image((32, 32, 3), (3, 32, 32))
    assert is_one_image((3, 32, 32), (3, 32, 32))
    assert is_one_image((64,), (64,))
    assert not is_one_image((32, 32), (3, 32, 32))
    assert not is_one_image((5, 28, 28), (1, 28, 28))
    assert not is_one_image((5, 64), (64,))


def test_an_unsupported_file_lists_what_is_read(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"unsupported data file \(use an image file \(.*\.png\)"):
        read_images(tmp_path / "t.csv")
