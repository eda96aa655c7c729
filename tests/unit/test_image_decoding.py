"""Image decoding: thumbnails made small before any full-size copy, within the memory budget."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from media.models import MediaKind
from media.processing.budget import DECODE_BUDGET, DecodeBudget, pixel_bytes
from media.processing.probe import probe_image
from media.processing.thumbnail import render_thumbnail

WAIT_S = 5.0


def _save(path: Path, img: Image.Image, fmt: str, **options: object) -> Path:
    img.save(path, fmt, **options)
    return path


def _oriented_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    return _save(path, Image.new("RGB", (400, 200), (200, 30, 30)), "JPEG", exif=exif.tobytes())


def _transparent_palette(path: Path) -> Path:
    img = Image.new("P", (300, 200), 0)
    img.putpalette([0, 0, 0] * 256)
    img.info["transparency"] = 0
    return _save(path, img, "PNG", transparency=0)


# name -> (maker, expected thumbnail size, expected centre colour)
CASES: dict[str, tuple[Callable[[Path], Path], tuple[int, int], tuple[int, int, int]]] = {
    "1-bit": (lambda p: _save(p, Image.new("1", (1000, 500), 1), "PNG"), (320, 160), (255,) * 3),
    "grey": (lambda p: _save(p, Image.new("L", (500, 1000), 90), "PNG"), (160, 320), (90,) * 3),
    "grey+alpha": (
        lambda p: _save(p, Image.new("LA", (640, 640), (0, 0)), "PNG"),
        (320, 320),
        (255,) * 3,  # transparent composes over white
    ),
    "rgba": (
        lambda p: _save(p, Image.new("RGBA", (1000, 700), (10, 200, 10, 255)), "PNG"),
        (320, 224),
        (10, 200, 10),
    ),
    "palette, transparent": (_transparent_palette, (300, 200), (255,) * 3),
    "16-bit grey": (
        lambda p: _save(p, Image.new("I;16", (700, 700), 65535), "PNG"),
        (320, 320),
        (255,) * 3,
    ),
    "cmyk jpeg": (
        lambda p: _save(p, Image.new("CMYK", (800, 400), (0, 0, 0, 0)), "JPEG"),
        (320, 160),
        (255,) * 3,
    ),
    "rotated jpeg": (_oriented_jpeg, (160, 320), (200, 30, 30)),
    "small": (
        lambda p: _save(p, Image.new("RGB", (20, 10), (1, 2, 3)), "PNG"),
        (20, 10),
        (1, 2, 3),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_thumbnails_of_every_mode(tmp_path: Path, case: str) -> None:
    make, size, colour = CASES[case]
    source = make(tmp_path / ("in.jpg" if "jpeg" in case else "in.png"))
    out = tmp_path / "thumb.jpg"
    assert render_thumbnail(source, MediaKind.IMAGE, out) == size
    with Image.open(out) as thumb:
        assert thumb.size == size and thumb.mode == "RGB"
        centre = thumb.getpixel((size[0] // 2, size[1] // 2))
    assert all(abs(a - b) <= 6 for a, b in zip(centre, colour, strict=True)), centre


@pytest.fixture
def small_budget() -> Iterator[int]:
    limit = 64 * 1024 * 1024
    DECODE_BUDGET.configure(limit)
    yield limit
    DECODE_BUDGET.configure(512 * 1024 * 1024)


@pytest.mark.parametrize(
    "decode",
    [
        lambda path: render_thumbnail(path, MediaKind.IMAGE, path.with_suffix(".jpg")),
        lambda path: probe_image(path, "image/png"),
    ],
    ids=["thumbnail", "probe"],
)
def test_decodes_wait_for_the_memory_budget(
    tmp_path: Path, small_budget: int, decode: Callable[[Path], object]
) -> None:
    source = _save(tmp_path / "big.png", Image.new("RGBA", (1500, 1000), (1, 2, 3, 4)), "PNG")
    done = threading.Event()

    def run() -> None:
        decode(source)
        done.set()

    with DECODE_BUDGET.reserve(small_budget):  # another decode holds the whole budget
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        assert not done.wait(2.0), "decoded while the budget was spent"
        assert DECODE_BUDGET.in_use == small_budget
    assert done.wait(WAIT_S)
    worker.join(WAIT_S)
    assert DECODE_BUDGET.in_use == 0


def test_a_reservation_larger_than_the_budget_runs_alone() -> None:
    budget = DecodeBudget(100)
    with budget.reserve(10_000):
        assert budget.in_use == 100
        started = threading.Event()

        def other() -> None:
            with budget.reserve(1):
                started.set()

        thread = threading.Thread(target=other, daemon=True)
        thread.start()
        assert not started.wait(0.2)
    assert started.wait(WAIT_S)
    thread.join(WAIT_S)


@pytest.mark.parametrize(
    ("size", "mode", "expected"),
    [((10, 10), "1", 100), ((10, 10), "P", 100), ((10, 10), "RGB", 400), ((10, 10), "RGBA", 400)],
)
def test_pixel_bytes(size: tuple[int, int], mode: str, expected: int) -> None:
    assert pixel_bytes(size, mode) == expected
