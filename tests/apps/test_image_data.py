"""Dynamic binarization: the right probabilities, NaN kept, and one draw for eager and compiled steps."""

import torch

from vaekit.apps.image_data import dynamic_binarize


def test_pixels_are_one_with_their_grey_level_as_probability():
    levels = torch.tensor([0.0, 1 / 255, 0.3, 0.5, 254 / 255, 1.0])
    x = levels.repeat(200_000, 1)
    b = dynamic_binarize(x, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    freq = b.mean(0)
    # 200k draws a level: 5 standard errors is < 0.0056; the 16-bit draw is exact to 2^-16
    assert torch.allclose(freq, levels, atol=0.0056)
    assert freq[0] == 0 and freq[-1] == 1  # black stays black, white stays white


def test_the_same_seed_gives_the_same_images_and_shape_is_kept():
    x = torch.rand(7, 1, 5, 3)
    a = dynamic_binarize(x, torch.Generator().manual_seed(3))
    b = dynamic_binarize(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)


def test_split_draw_and_apply_match_the_one_call():
    x = torch.rand(9, 13)  # 117 pixels: not a multiple of the 4 pixels a 64-bit word covers
    noise = dynamic_binarize.noise(x, torch.Generator().manual_seed(5))
    assert noise.shape == x.shape and noise.dtype == torch.int32  # int32: compiled code vectorizes it
    assert noise.min() >= -32768 and noise.max() <= 32767  # 16 bits a pixel
    assert torch.equal(dynamic_binarize.apply(x, noise), dynamic_binarize(x, torch.Generator().manual_seed(5)))


def test_nan_pixels_stay_nan_for_the_trainer_guard():
    x = torch.full((4, 6), 0.5)
    x[2, 3] = float("nan")
    g = torch.Generator().manual_seed(0)
    for b in (dynamic_binarize(x, g), dynamic_binarize.apply(x, dynamic_binarize.noise(x, g))):
        assert torch.isnan(b[2, 3]) and torch.isnan(b).sum() == 1


def test_every_16_bit_draw_gives_the_grey_level_to_within_2_to_the_minus_16():
    """Exhaustive: over all 65,536 noise values, P(1) - x lies in [0, 2^-16] for every level."""
    levels = torch.cat([torch.arange(256) / 255, torch.rand(200, generator=torch.Generator().manual_seed(0))])
    noise = torch.arange(-32768, 32768, dtype=torch.int32)
    b = dynamic_binarize.apply(levels[:, None].expand(-1, len(noise)), noise[None, :].expand(len(levels), -1))
    error = b.double().mean(1) - levels.double()
    assert error.min() >= 0 and error.max() <= 2**-16
    assert b[0].sum() == 0 and b[255].all()  # exactly 0 and 1 at black and white
    x = levels[:, None].expand(-1, len(noise))
    assert torch.equal(b, (noise[None, :] < x * 65536 - 32768).float())  # the comparison it stands for
