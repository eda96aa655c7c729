"""ThumbHash: a ~25-byte picture placeholder a client decodes before any image request.

The encoder follows the reference algorithm (github.com/evanw/thumbhash, `rgbaToThumbHash`):
average colour, then low DCT terms of luminance, two chroma channels and, if any, alpha.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

from PIL import Image

# The reference caps the input at 100x100; a quarter of that keeps pure Python fast and
# changes nothing a placeholder shows.
SAMPLE_SIDE = 32


def thumbhash_of(image: Image.Image) -> str:
    """The base64 ThumbHash of an image (any mode, any size)."""
    sample = image.convert("RGBA")
    sample.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.BOX)
    width, height = sample.size
    return base64.b64encode(encode(width, height, sample.tobytes())).decode("ascii")


def encode(width: int, height: int, rgba: bytes) -> bytes:
    """The ThumbHash bytes of width x height RGBA pixels (at most 100x100)."""
    if not (0 < width <= 100 and 0 < height <= 100) or len(rgba) != width * height * 4:
        raise ValueError("thumbhash needs at most 100x100 RGBA pixels")
    count = width * height
    alphas = [rgba[i + 3] / 255 for i in range(0, count * 4, 4)]
    total_alpha = sum(alphas)
    average = [0.0, 0.0, 0.0]
    for index, alpha in enumerate(alphas):
        for channel in range(3):
            average[channel] += alpha / 255 * rgba[index * 4 + channel]
    if total_alpha:
        average = [value / total_alpha for value in average]
    has_alpha = total_alpha < count
    l_limit = 5 if has_alpha else 7  # fewer luminance terms leave room for alpha
    longest = max(width, height)
    lx = max(1, round(l_limit * width / longest))
    ly = max(1, round(l_limit * height / longest))
    lum, yellow_blue, red_green = [], [], []
    for index, alpha in enumerate(alphas):
        # Composite atop the average colour, then RGB -> LPQ.
        r, g, b = (average[c] * (1 - alpha) + alpha / 255 * rgba[index * 4 + c] for c in range(3))
        lum.append((r + g + b) / 3)
        yellow_blue.append((r + g) / 2 - b)
        red_green.append(r - g)
    l_dc, l_ac, l_scale = _channel(lum, width, height, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _channel(yellow_blue, width, height, 3, 3)
    q_dc, q_ac, q_scale = _channel(red_green, width, height, 3, 3)
    landscape = width > height
    header24 = (
        round(63 * l_dc)
        | (round(31.5 + 31.5 * p_dc) << 6)
        | (round(31.5 + 31.5 * q_dc) << 12)
        | (round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (round(63 * p_scale) << 3)
        | (round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    groups = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _channel(alphas, width, height, 5, 5)
        out.append(round(15 * a_dc) | (round(15 * a_scale) << 4))
        groups.append(a_ac)
    start = len(out)
    terms = [value for group in groups for value in group]
    out += [0] * ((len(terms) + 1) // 2)
    for index, value in enumerate(terms):
        out[start + (index >> 1)] |= round(15 * value) << ((index & 1) << 2)
    return bytes(out)


def _channel(
    values: Sequence[float], width: int, height: int, nx: int, ny: int
) -> tuple[float, list[float], float]:
    """DC term, AC terms normalised to 0..1, and their scale, of one channel's DCT."""
    dc, ac, scale = 0.0, [], 0.0
    for cy in range(ny):
        fy = [math.cos(math.pi / height * cy * (y + 0.5)) for y in range(height)]
        cx = 0
        while cx * ny < nx * (ny - cy):
            fx = [math.cos(math.pi / width * cx * (x + 0.5)) for x in range(width)]
            total = 0.0
            for y in range(height):
                row = y * width
                total += fy[y] * sum(values[row + x] * fx[x] for x in range(width))
            term = total / (width * height)
            if cx or cy:
                ac.append(term)
                scale = max(scale, abs(term))
            else:
                dc = term
            cx += 1
    if scale:
        ac = [0.5 + 0.5 / scale * term for term in ac]
    return dc, ac, scale
