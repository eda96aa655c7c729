"""Capture details: QuickTime tags and EXIF values as phones write them, and malformed ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PIL import Image

from media.processing.exif import exif_capture, parse_exif_datetime, quicktime_capture

PARIS = (48.8584, 2.2945)


@pytest.mark.parametrize(
    ("tags", "taken", "where"),
    [
        (
            {
                "creation_time": "2022-03-04T05:06:07.000000Z",
                "com.apple.quicktime.creationdate": "2022-03-04T08:06:07+0200",
                "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
            },
            datetime(2022, 3, 4, 6, 6, 7, tzinfo=UTC),  # the local date with its offset wins
            PARIS,
        ),
        (
            {"creation_time": "2022-03-04T05:06:07.000000Z", "location": "-33.8568+151.2153/"},
            datetime(2022, 3, 4, 5, 6, 7, tzinfo=UTC),
            (-33.8568, 151.2153),
        ),
        ({"creation_time": "1970-01-01T00:00:00.000000Z"}, None, (None, None)),
        ({"creation_time": "yesterday", "location": "+99.0+000.0/"}, None, (None, None)),
        ({"location": "somewhere"}, None, (None, None)),
        ({}, None, (None, None)),
    ],
)
def test_quicktime_tags(tags: dict[str, str], taken: datetime | None, where: tuple) -> None:
    capture = quicktime_capture(tags)
    assert capture.taken_at == taken
    assert (capture.latitude, capture.longitude) == where


def test_quicktime_camera_is_printable_and_bounded() -> None:
    capture = quicktime_capture(
        {"com.apple.quicktime.make": "Ap\x00ple\n", "com.apple.quicktime.model": "x" * 400}
    )
    assert capture.camera_make == "Apple" and capture.camera_model == "x" * 255


def test_exif_gps_signs_and_refusals() -> None:
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "S", (33.0, 51.0, 24.48), "W", (70.0, 40.0, 12.0)
    capture = exif_capture(exif)
    assert capture.latitude == pytest.approx(-33.8568, abs=1e-4)
    assert capture.longitude == pytest.approx(-70.67, abs=1e-4)
    gps[2] = (95.0, 0.0, 0.0)  # no such latitude
    assert (exif_capture(exif).latitude, exif_capture(exif).longitude) == (None, None)
    del gps[2]
    assert exif_capture(exif).latitude is None


@pytest.mark.parametrize(
    ("value", "offset", "expected"),
    [
        ("2021:06:01 12:30:00", None, datetime(2021, 6, 1, 12, 30, tzinfo=UTC)),
        ("2021:06:01 12:30:00", "+02:00", datetime(2021, 6, 1, 10, 30, tzinfo=UTC)),
        ("2021:06:01 12:30:00", "-05:30", datetime(2021, 6, 1, 18, 0, tzinfo=UTC)),
        (b"2021:06:01 12:30:00\x00", b"+09:00", datetime(2021, 6, 1, 3, 30, tzinfo=UTC)),
        ("2021:06:01 12:30:00", "bogus", datetime(2021, 6, 1, 12, 30, tzinfo=UTC)),
        ("    :  :     :  :  ", None, None),
        (None, None, None),
    ],
)
def test_exif_dates(value: object, offset: object, expected: datetime | None) -> None:
    assert parse_exif_datetime(value, offset) == expected
