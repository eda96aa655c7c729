"""Capture details written by cameras: EXIF (photos) and QuickTime metadata (videos)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from PIL import Image

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_MAKE = 0x010F
_MODEL = 0x0110
_DATE_TIME = 306
_DATE_TIME_ORIGINAL = 36867
_OFFSET_TIME = 36880
_OFFSET_TIME_ORIGINAL = 36881
# GPS IFD tags (EXIF 2.3 §4.6.6): reference letter, then degrees/minutes/seconds rationals.
_GPS_LATITUDE_REF, _GPS_LATITUDE, _GPS_LONGITUDE_REF, _GPS_LONGITUDE = 1, 2, 3, 4
TEXT_LENGTH = 255

# ISO 6709 as phones write it: "+37.3318-122.0312+010.000/" (latitude, longitude, altitude).
_ISO6709 = re.compile(r"([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class Capture:
    """When, with what and where a picture or video was taken; None where unknown."""

    taken_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def exif_capture(exif: Image.Exif) -> Capture:
    """The capture details of EXIF data."""
    latitude, longitude = _gps(exif.get_ifd(_GPS_IFD))
    return Capture(
        taken_at=captured_at(exif),
        camera_make=_text(exif.get(_MAKE)),
        camera_model=_text(exif.get(_MODEL)),
        latitude=latitude,
        longitude=longitude,
    )


def quicktime_capture(tags: Mapping[str, str]) -> Capture:
    """The capture details of container tags (QuickTime/MP4 keys as FFmpeg names them)."""
    taken = _iso_datetime(tags.get("com.apple.quicktime.creationdate"))
    if taken is None:
        taken = _iso_datetime(tags.get("creation_time"))
    location = tags.get("com.apple.quicktime.location.ISO6709") or tags.get("location")
    latitude, longitude = _iso6709(location)
    return Capture(
        taken_at=taken,
        camera_make=_text(tags.get("com.apple.quicktime.make") or tags.get("make")),
        camera_model=_text(tags.get("com.apple.quicktime.model") or tags.get("model")),
        latitude=latitude,
        longitude=longitude,
    )


def captured_at(exif: Image.Exif) -> datetime | None:
    """EXIF DateTimeOriginal, else DateTime, as UTC; dates without an offset are taken as UTC."""
    sub = exif.get_ifd(_EXIF_IFD)
    for value, offset in (
        (sub.get(_DATE_TIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL)),
        (exif.get(_DATE_TIME), sub.get(_OFFSET_TIME)),
    ):
        parsed = parse_exif_datetime(value, offset)
        if parsed is not None:
            return parsed
    return None


def parse_exif_datetime(value: object, offset: object = None) -> datetime | None:
    """Parse 'YYYY:MM:DD HH:MM:SS' (EXIF 2.3 §4.6.5) with an optional '+HH:MM' offset."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        return moment.replace(tzinfo=_offset(offset)).astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 at +14:00 is before the calendar in UTC
        return None


def _offset(raw: object) -> timezone:
    """An EXIF OffsetTime value ('+09:00') as a timezone; UTC when absent or malformed."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if not isinstance(raw, str):
        return UTC
    text = raw.strip("\x00 ")
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return UTC
    try:
        delta = timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))
    except ValueError:
        return UTC
    return timezone(-delta if text[0] == "-" else delta)


def _iso_datetime(raw: str | None) -> datetime | None:
    """An ISO 8601 instant ('2021-06-01T12:30:00.000000Z', '...+0200') as UTC; naive is UTC."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # A zero date is what some muxers write when they know nothing.
    if moment.year < 1971:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 9999 at -14:00 is past the calendar in UTC
        return None


def _iso6709(raw: str | None) -> tuple[float | None, float | None]:
    """Latitude and longitude of an ISO 6709 string in decimal degrees, or (None, None)."""
    found = _ISO6709.match(raw.strip()) if raw else None
    if found is None:
        return None, None
    return _checked(float(found.group(1)), float(found.group(2)))


def _gps(ifd: Mapping[int, object]) -> tuple[float | None, float | None]:
    """Signed decimal degrees from the GPS IFD, or (None, None) when absent or malformed."""
    latitude = _degrees(ifd.get(_GPS_LATITUDE), ifd.get(_GPS_LATITUDE_REF), "S")
    longitude = _degrees(ifd.get(_GPS_LONGITUDE), ifd.get(_GPS_LONGITUDE_REF), "W")
    if latitude is None or longitude is None:
        return None, None
    return _checked(latitude, longitude)


def _degrees(value: object, ref: object, negative: str) -> float | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    total = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -total if isinstance(ref, str) and ref.strip("\x00 ").upper() == negative else total


def _checked(latitude: float, longitude: float) -> tuple[float | None, float | None]:
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None, None
    return round(latitude, 7), round(longitude, 7)


def _text(raw: object) -> str | None:
    """A printable, trimmed, bounded string of an EXIF or tag value, or None."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return None
    text = "".join(char for char in raw if char.isprintable()).strip()
    return text[:TEXT_LENGTH] or None
