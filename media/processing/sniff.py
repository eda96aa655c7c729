"""Media type detection from magic bytes; the client's declared type is never trusted."""

from __future__ import annotations

SNIFF_BYTES = 4096

MP4 = "video/mp4"
WEBM = "video/webm"
PNG = "image/png"
JPEG = "image/jpeg"

ALLOWED_TYPES = frozenset({MP4, WEBM, PNG, JPEG})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = 0x4282

# ISO/IEC 14496-12 brands of MP4 video files (major or compatible brand of the ftyp box).
_MP4_BRANDS = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"iso7",
        b"iso8",
        b"iso9",
        b"mp41",
        b"mp42",
        b"mp71",
        b"avc1",
        b"M4V ",
        b"M4VH",
        b"M4VP",
        b"dash",
        b"mmp4",
        b"MSNV",
    }
)
# HEIF/HEIC/AVIF still images share the ISO BMFF container (ISO/IEC 23008-12); they are not video.
_IMAGE_BRANDS = frozenset(
    {
        b"mif1",
        b"mif2",
        b"msf1",
        b"miaf",
        b"heic",
        b"heix",
        b"heim",
        b"heis",
        b"hevc",
        b"hevx",
        b"hevm",
        b"hevs",
        b"avif",
        b"avis",
        b"avio",
        b"jpgs",
    }
)


def sniff(head: bytes) -> str | None:
    """The allowed MIME type the first bytes of a file prove, or None."""
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head.startswith(_JPEG_SOI):
        return JPEG
    if head.startswith(_EBML_MAGIC):
        return WEBM if _ebml_doctype(head) == b"webm" else None
    if head[4:8] == b"ftyp":
        return MP4 if _is_mp4_ftyp(head) else None
    return None


def _is_mp4_ftyp(head: bytes) -> bool:
    """True for an ftyp box whose brands say MP4 video and none says still image."""
    size = int.from_bytes(head[0:4], "big")
    # ftyp = size, type, major brand, minor version, then 4-byte compatible brands.
    if size < 16 or size > len(head) or (size - 16) % 4:
        return False
    major = head[8:12]
    compatible = {head[offset : offset + 4] for offset in range(16, size, 4)}
    if major not in _MP4_BRANDS:
        return False
    return not (compatible & _IMAGE_BRANDS)


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType of the EBML header at the start of head (RFC 8794 §11.2.6), or None."""
    parsed = _element(head, 0)
    if parsed is None:
        return None
    _, start, end = parsed
    position = start
    while position < min(end, len(head)):
        child = _element(head, position)
        if child is None:
            return None
        element_id, data_start, data_end = child
        if element_id == _EBML_DOCTYPE_ID:
            return head[data_start:data_end].rstrip(b"\x00") if data_end <= len(head) else None
        position = data_end
    return None


def _element(data: bytes, position: int) -> tuple[int, int, int] | None:
    """One EBML element at position: (id, data start, data end), or None when cut short."""
    element_id = _vint(data, position, keep_marker=True)
    if element_id is None:
        return None
    value, position = element_id
    size = _vint(data, position, keep_marker=False)
    if size is None:
        return None
    length, start = size
    return value, start, start + length


def _vint(data: bytes, position: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-size integer (RFC 8794 §4): (value, position after it), or None."""
    if position >= len(data) or data[position] == 0:
        return None
    first = data[position]
    length = 8 - first.bit_length() + 1
    if position + length > len(data):
        return None
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[position + 1 : position + length]:
        value = (value << 8) | byte
    return value, position + length
