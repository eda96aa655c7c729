"""HLS playlists of the ladder: reading the variant playlists the muxer wrote, writing the master.

RFC 8216 §4.3.4.2 defines the EXT-X-STREAM-INF attributes; BANDWIDTH is the peak segment bit
rate: the highest rate of any contiguous run of segments lasting 0.5 to 1.5 target durations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from media.processing.probe import invalid

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp4"
AAC_LC = "mp4a.40.2"  # FFmpeg's native AAC encoder writes AAC-LC
BAD_PLAYLIST = "video could not be prepared for adaptive streaming"
# What the muxer may name: its own playlist, the init segment and numbered media segments.
_FILE_NAME = re.compile(r"(index\.m3u8|init\.mp4|seg_[0-9]{5,9}\.m4s)")
_MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
_SPS_TYPE = 7


@dataclass(frozen=True, slots=True)
class Segment:
    """One media segment of a variant playlist."""

    name: str
    duration: float


@dataclass(frozen=True, slots=True)
class Variant:
    """What a variant playlist names: its init segment, media segments and target duration."""

    init: str
    segments: tuple[Segment, ...]
    target_duration: int


@dataclass(frozen=True, slots=True)
class StreamInf:
    """The attributes of one EXT-X-STREAM-INF line and the URI under it."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    codecs: str
    frame_rate: Fraction


def lift_target_duration(text: str) -> str:
    """A variant playlist whose EXT-X-TARGETDURATION is at least 1.

    FFmpeg writes 0 when every segment is shorter than half a second (a tap of the record
    button): RFC 8216 §4.3.3.1 allows it (durations round to 0), players do not; 1 is as valid."""
    return re.sub(r"^#EXT-X-TARGETDURATION:0+$", "#EXT-X-TARGETDURATION:1", text, flags=re.M)


def parse_variant(text: str) -> Variant:
    """The init segment and segments of a VOD fMP4 playlist; InvalidInput when it is not one."""
    init, target, segments = None, 0, []
    duration: float | None = None
    for line in (raw.strip() for raw in text.splitlines()):
        if line.startswith("#EXT-X-MAP:"):
            found = _MAP.fullmatch(line)
            init = found.group(1) if found else None
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.partition(":")[2])
        elif line.startswith("#EXTINF:"):
            duration = float(line.partition(":")[2].partition(",")[0])
        elif line and not line.startswith("#"):
            if duration is None or _FILE_NAME.fullmatch(line) is None:
                raise invalid(BAD_PLAYLIST)
            segments.append(Segment(line, duration))
            duration = None
    if init is None or _FILE_NAME.fullmatch(init) is None or not segments or target < 1:
        raise invalid(BAD_PLAYLIST)
    return Variant(init, tuple(segments), target)


def peak_bandwidth(variant: Variant, sizes: Sequence[int]) -> int:
    """The peak segment bit rate: the highest rate of any contiguous run of segments lasting
    0.5 to 1.5 times the target duration (the whole playlist when it is shorter than that)."""
    low, high = 0.5 * variant.target_duration, 1.5 * variant.target_duration
    durations = [segment.duration for segment in variant.segments]
    peak = 0.0
    for first in range(len(durations)):
        seconds, bits = 0.0, 0
        for index in range(first, len(durations)):
            seconds += durations[index]
            bits += sizes[index] * 8
            if seconds > high:
                break
            if seconds >= low:
                peak = max(peak, bits / seconds)
    if peak == 0.0:
        return average_bandwidth(variant, sizes)
    return math.ceil(peak)


def average_bandwidth(variant: Variant, sizes: Sequence[int]) -> int:
    """Bits of every media segment over the playlist's duration."""
    seconds = sum(segment.duration for segment in variant.segments)
    return math.ceil(sum(sizes) * 8 / seconds) if seconds > 0 else 0


def avc_codec(extradata: bytes) -> str:
    """The RFC 6381 `avc1.PPCCLL` of an H.264 stream from its extradata (avcC or Annex B)."""
    if len(extradata) >= 4 and extradata[0] == 1:  # AVCDecoderConfigurationRecord
        return "avc1." + extradata[1:4].hex().upper()
    for nal in re.split(b"\x00\x00\x01", extradata):
        if len(nal) >= 4 and nal[0] & 0x1F == _SPS_TYPE:
            return "avc1." + nal[1:4].hex().upper()
    raise invalid(BAD_PLAYLIST)


def master_playlist(variants: Sequence[StreamInf]) -> str:
    """The master playlist: one EXT-X-STREAM-INF per rung, lowest first (RFC 8216 §4.3.4.2)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in variants:
        lines.append(
            "#EXT-X-STREAM-INF:"
            f"BANDWIDTH={variant.bandwidth},"
            f"AVERAGE-BANDWIDTH={variant.average_bandwidth},"
            f"RESOLUTION={variant.width}x{variant.height},"
            f'CODECS="{variant.codecs}",'
            f"FRAME-RATE={float(variant.frame_rate):.3f}"
        )
        lines.append(variant.uri)
    return "\n".join(lines) + "\n"
