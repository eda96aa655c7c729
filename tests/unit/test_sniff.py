"""Magic-byte sniffing: a table of positive and negative heads."""

from __future__ import annotations

import pytest

from media.processing.sniff import (
    AVIF,
    GIF,
    HEIC,
    HEIF,
    JPEG,
    MATROSKA,
    MP4,
    PNG,
    QUICKTIME,
    SNIFF_BYTES,
    WEBM,
    WEBP,
    sniff,
)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """An ISO BMFF ftyp box followed by the start of an mdat box."""
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08mdat"


def ebml(doctype: bytes) -> bytes:
    """An EBML header (RFC 8794) with the given DocType, then a Segment ID."""
    version = b"\x42\x86\x81\x01"  # EBMLVersion = 1
    doc = b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    body = version + doc + b"\x42\x87\x81\x04"  # DocTypeVersion = 4
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body + b"\x18\x53\x80\x67"


def ebml_long_size(doctype: bytes) -> bytes:
    """An EBML header whose size is written as an 8-byte vint, as mkvmerge does."""
    doc = b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    return b"\x1a\x45\xdf\xa3" + b"\x01" + len(doc).to_bytes(7, "big") + doc


PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

CASES = [
    ("png", PNG_HEAD, PNG),
    ("jpeg jfif", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", JPEG),
    ("jpeg exif", b"\xff\xd8\xff\xe1\x00\x16Exif\x00\x00", JPEG),
    ("mp4 isom", ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), MP4),
    ("mp4 mp42", ftyp(b"mp42", b"mp42", b"mp41"), MP4),
    ("mp4 M4V", ftyp(b"M4V ", b"M4V ", b"M4A ", b"mp42", b"isom"), MP4),
    ("mp4 no compatible brands", ftyp(b"iso5"), MP4),
    ("mp4 dash", ftyp(b"dash", b"iso6", b"mp41"), MP4),
    ("webm", ebml(b"webm"), WEBM),
    ("webm 8-byte size", ebml_long_size(b"webm"), WEBM),
    ("heic", ftyp(b"heic", b"mif1", b"heic"), HEIC),
    ("heic under mif1", ftyp(b"mif1", b"mif1", b"heic", b"miaf"), HEIC),
    ("heif generic", ftyp(b"mif1", b"mif1", b"miaf"), HEIF),
    ("avif", ftyp(b"avif", b"avif", b"mif1", b"miaf"), AVIF),
    ("avif under mif1", ftyp(b"mif1", b"avif", b"mif1", b"miaf"), AVIF),
    ("isom major with heif image brand", ftyp(b"isom", b"mif1", b"miaf"), None),
    ("quicktime", ftyp(b"qt  ", b"qt  "), QUICKTIME),
    ("m4a audio", ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), None),
    ("3gp", ftyp(b"3gp4", b"3gp4", b"isom"), None),
    ("ftyp box too short", b"\x00\x00\x00\x0cftypisom", None),
    ("ftyp box larger than head", b"\x00\x00\x10\x00ftypisom\x00\x00\x00\x00", None),
    ("ftyp box misaligned brands", b"\x00\x00\x00\x13ftypisom\x00\x00\x00\x00iso", None),
    ("matroska", ebml(b"matroska"), MATROSKA),
    ("ebml other doctype", ebml(b"mka"), None),
    ("webp lossy", b"RIFF\x24\x00\x00\x00WEBPVP8 ", WEBP),
    ("riff wave", b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
    ("ebml cut before doctype", ebml(b"webm")[:8], None),
    ("ebml zero vint", b"\x1a\x45\xdf\xa3\x00\x00", None),
    ("svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', None),
    ("bare svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>", None),
    ("html", b"<!DOCTYPE html><html><body>hi</body></html>", None),
    ("gif89a", b"GIF89a\x01\x00\x01\x00", GIF),
    ("gif87a", b"GIF87a\x01\x00\x01\x00", GIF),
    ("gif other version", b"GIF90a\x01\x00\x01\x00", None),
    ("pdf", b"%PDF-1.7\n", None),
    ("png signature cut", PNG_HEAD[:7], None),
    ("jpeg soi only", b"\xff\xd8", None),
    ("empty", b"", None),
    ("short", b"\x00\x00", None),
    ("zeros", bytes(64), None),
]


@pytest.mark.parametrize(("head", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sniff(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


def test_sniff_reads_a_head_of_4_kib() -> None:
    assert SNIFF_BYTES == 4096


def test_long_compatible_brand_list_is_read_within_the_head() -> None:
    brands = [b"mp41"] * 200 + [b"heic"]
    assert sniff(ftyp(b"isom", *brands)) is None
    assert sniff(ftyp(b"isom", *brands[:-1])) == MP4
