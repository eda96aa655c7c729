"""EXIF capture dates: parsed when sane, ignored (never a failed upload) at the calendar's edges."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from media.processing.exif import parse_exif_datetime
from media.processing.probe import probe_image

DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL, EXIF_IFD = 0x9003, 0x9011, 0x8769


@pytest.mark.parametrize(
    ("value", "offset", "expected"),
    [
        ("2024:06:01 12:00:00", "+02:00", datetime(2024, 6, 1, 10, tzinfo=UTC)),
        ("2024:06:01 12:00:00", None, datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("0001:01:01 00:00:00", "+14:00", None),  # before year 1 in UTC
        ("9999:12:31 23:59:59", "-14:00", None),  # year 10000 in UTC
        ("0001:01:01 00:00:00", "-01:00", datetime(1, 1, 1, 1, tzinfo=UTC)),
        ("0000:00:00 00:00:00", None, None),
        ("garbage", None, None),
        (b"2024:06:01 12:00:00\x00", b"+00:00", datetime(2024, 6, 1, 12, tzinfo=UTC)),
    ],
)
def test_parse_exif_datetime(value: object, offset: object, expected: datetime | None) -> None:
    assert parse_exif_datetime(value, offset) == expected


@pytest.mark.parametrize(
    ("value", "offset"), [("0001:01:01 00:00:00", "+14:00"), ("9999:12:31 23:59:59", "-14:00")]
)
def test_a_jpeg_with_an_edge_date_probes_without_one(
    tmp_path: Path, value: str, offset: str
) -> None:
    path = tmp_path / "edge.jpg"
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD).update({DATE_TIME_ORIGINAL: value, OFFSET_TIME_ORIGINAL: offset})
    Image.new("RGB", (32, 24), (10, 20, 30)).save(path, "JPEG", exif=exif.tobytes())
    probe = probe_image(path, "image/jpeg")
    assert (probe.width, probe.height, probe.captured_at) == (32, 24, None)
