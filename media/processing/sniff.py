"""Media type detection from magic bytes; the client's declared type is never trusted."""

from __future__ import annotations

from media.models import ACCEPTED_TYPES

SNIFF_BYTES = 4096

MP4 = "video/mp4"
QUICKTIME = "video/quicktime"
WEBM = "video/webm"
MATROSKA = "video/x-matroska"
PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
GIF = "image/gif"
HEIC = "image/heic"
HEIF = "image/heif"
AVIF = "image/avif"

ALLOWED_TYPES = frozenset(accepted.mime_type for accepted in ACCEPTED_TYPES)
# A declared type that names the same content as the sniffed one: phones label HEVC-coded
# HEIF files either way.
SAME_CONTENT = {HEIC: frozenset({HEIF}), HEIF: frozenset({HEIC})}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
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
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis", b"avio"})
_HEIF_BRANDS = frozenset({b"mif1", b"mif2", b"msf1", b"miaf", b"jpgs"})
_IMAGE_BRANDS = _HEIC_BRANDS | _AVIF_BRANDS | _HEIF_BRANDS
# Apple QuickTime (QTFF): the major brand of every .mov an iPhone writes.
_QUICKTIME_BRAND = b"qt  "


def sniff(head: bytes) -> str | None:
    """The allowed MIME type the first bytes of a file prove, or None."""
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head.startswith(_JPEG_SOI):
        return JPEG
    if head.startswith(_GIF_SIGNATURES):
        return GIF
    if head[0:4] == b"RIFF" and head[8:12] == b"WEBP":  # RIFF container (RFC 9649 §2.5)
        return WEBP
    if head.startswith(_EBML_MAGIC):
        return {b"webm": WEBM, b"matroska": MATROSKA}.get(_ebml_doctype(head) or b"")
    if head[4:8] == b"ftyp":
        return _ftyp_type(head)
    return None


def _ftyp_type(head: bytes) -> str | None:
    """The type an ftyp box's brands name: a still image brand wins over video brands."""
    size = int.from_bytes(head[0:4], "big")
    # ftyp = size, type, major brand, minor version, then 4-byte compatible brands.
    if size < 16 or size > len(head) or (size - 16) % 4:
        return None
    major = head[8:12]
    compatible = {head[offset : offset + 4] for offset in range(16, size, 4)}
    if major == _QUICKTIME_BRAND:
        return QUICKTIME
    if major in _IMAGE_BRANDS:
        brands = compatible | {major}
        if brands & _AVIF_BRANDS:
            return AVIF
        return HEIC if brands & _HEIC_BRANDS else HEIF
    if major not in _MP4_BRANDS or compatible & _IMAGE_BRANDS:
        return None
    return MP4


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
