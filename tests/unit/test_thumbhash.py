"""ThumbHash encoding: header fields read back as the reference decoder reads them."""

from __future__ import annotations

import base64

import pytest
from PIL import Image

from media.processing.thumbhash import encode, thumbhash_of


def average_rgb(hash_bytes: bytes) -> tuple[float, float, float]:
    """The average colour a ThumbHash header carries (reference `thumbHashToAverageRGBA`)."""
    header = hash_bytes[0] | hash_bytes[1] << 8 | hash_bytes[2] << 16
    lum = (header & 63) / 63
    p = ((header >> 6) & 63) / 31.5 - 1
    q = ((header >> 12) & 63) / 31.5 - 1
    blue = lum - 2 / 3 * p
    red = (3 * lum - blue + q) / 2
    return red, red - q, blue


@pytest.mark.parametrize(
    "colour", [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (200, 120, 40)]
)
def test_solid_colours_come_back_as_the_average(colour: tuple[int, int, int]) -> None:
    encoded = thumbhash_of(Image.new("RGB", (60, 40), colour))
    raw = base64.b64decode(encoded)
    assert raw[2] >> 7 == 0  # no alpha
    for got, want in zip(average_rgb(raw), colour, strict=True):
        assert got == pytest.approx(want / 255, abs=0.04)


def test_orientation_and_alpha_bits() -> None:
    landscape = base64.b64decode(thumbhash_of(Image.new("RGB", (80, 20), (9, 9, 9))))
    portrait = base64.b64decode(thumbhash_of(Image.new("RGB", (20, 80), (9, 9, 9))))
    assert landscape[4] >> 7 == 1 and portrait[4] >> 7 == 0
    clear = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    clear.paste((0, 0, 255, 255), (0, 0, 16, 32))
    with_alpha = base64.b64decode(thumbhash_of(clear))
    assert with_alpha[2] >> 7 == 1
    assert len(with_alpha) > len(landscape)  # alpha adds its own terms


def test_a_picture_is_about_25_bytes_and_deterministic() -> None:
    picture = Image.linear_gradient("L").resize((64, 48)).convert("RGB")
    first, second = thumbhash_of(picture), thumbhash_of(picture)
    assert first == second and 20 <= len(base64.b64decode(first)) <= 30


def test_bounds() -> None:
    with pytest.raises(ValueError, match="100x100"):
        encode(101, 1, bytes(404))
    with pytest.raises(ValueError, match="100x100"):
        encode(2, 2, bytes(3))
