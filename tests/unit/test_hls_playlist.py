"""The ladder's pure parts: which rungs a video gets, variant playlists, BANDWIDTH, CODECS."""

from __future__ import annotations

from fractions import Fraction

import m3u8  # type: ignore[import-untyped]
import pytest

from media.errors import InvalidInput
from media.models import MediaKind, ProbeResult
from media.processing.ladder import Rung, plan_rungs
from media.processing.playlist import (
    Segment,
    StreamInf,
    Variant,
    avc_codec,
    average_bandwidth,
    master_playlist,
    parse_variant,
    peak_bandwidth,
)

LADDER = (360, 720, 1080)


def video(width: int, height: int, seconds: float = 60.0) -> ProbeResult:
    return ProbeResult(
        mime_type="video/mp4",
        kind=MediaKind.VIDEO,
        width=width,
        height=height,
        duration_seconds=seconds,
    )


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (video(1920, 1080), ("360p", "720p", "1080p")),
        (video(3840, 2160), ("360p", "720p", "1080p")),
        (video(1280, 720), ("360p", "720p")),
        (video(1000, 700), ("360p",)),  # never above the source
        (video(1080, 1920), ("360p", "720p", "1080p")),  # portrait: the short side
        (video(1920, 1080, seconds=6.0), ("1080p",)),  # short: the top rung only
        (video(320, 240), ("240p",)),  # tiny: one rung at its own size
        (video(321, 241, seconds=3.0), ("240p",)),
    ],
)
def test_rungs(probe: ProbeResult, expected: tuple[str, ...]) -> None:
    rungs = plan_rungs(probe, LADDER)
    assert tuple(rung.name for rung in rungs) == expected
    for rung in rungs:
        assert rung.width % 2 == 0 and rung.height % 2 == 0
        assert min(rung.width, rung.height) <= min(probe.width or 0, probe.height or 0)


def test_rung_sizes_keep_the_aspect() -> None:
    assert plan_rungs(video(1920, 1080), LADDER)[0] == Rung("360p", 640, 360)
    assert plan_rungs(video(1080, 1920), LADDER)[1] == Rung("720p", 720, 1280)
    assert plan_rungs(video(320, 240), LADDER) == (Rung("240p", 320, 240),)


VARIANT = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
seg_00001.m4s
#EXTINF:4.000000,
seg_00002.m4s
#EXTINF:1.500000,
seg_00003.m4s
#EXT-X-ENDLIST
"""


def test_variant_playlist_is_read() -> None:
    variant = parse_variant(VARIANT)
    assert variant.init == "init.mp4" and variant.target_duration == 4
    assert variant.segments == (
        Segment("seg_00001.m4s", 4.0),
        Segment("seg_00002.m4s", 4.0),
        Segment("seg_00003.m4s", 1.5),
    )


@pytest.mark.parametrize(
    "text",
    [
        VARIANT.replace("seg_00002.m4s", "../seg_00002.m4s"),
        VARIANT.replace("seg_00002.m4s", "http://elsewhere.invalid/x.m4s"),
        VARIANT.replace('URI="init.mp4"', 'URI="/etc/passwd"'),
        VARIANT.replace('#EXT-X-MAP:URI="init.mp4"\n', ""),
        '#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init.mp4"\n',
    ],
)
def test_a_playlist_naming_anything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_variant(text)


def test_bandwidth_is_the_peak_of_runs_lasting_half_to_one_and_a_half_targets() -> None:
    variant = Variant(
        "init.mp4",
        (Segment("a", 4.0), Segment("b", 4.0), Segment("c", 1.0)),
        target_duration=4,
    )
    # b alone: 8 Mbit/s; b+c: 36 Mbit over 5 s; c alone (1 s) is too short to count.
    sizes = [1_000_000, 4_000_000, 500_000]
    assert peak_bandwidth(variant, sizes) == 8_000_000
    assert average_bandwidth(variant, sizes) == 4_888_889  # 44 Mbit over 9 s
    lone = Variant("init.mp4", (Segment("a", 1.0),), target_duration=4)
    assert peak_bandwidth(lone, [1000]) == average_bandwidth(lone, [1000]) == 8000


def test_avc_codec_from_annex_b_and_avcc() -> None:
    annex_b = bytes.fromhex("0000000167640028acd9") + bytes.fromhex("0000000168ebe3cb")
    assert avc_codec(annex_b) == "avc1.640028"
    assert avc_codec(bytes.fromhex("01640016ffe1")) == "avc1.640016"
    with pytest.raises(InvalidInput):
        avc_codec(b"")


def test_master_playlist_parses_with_every_attribute() -> None:
    text = master_playlist(
        [
            StreamInf("360p/index.m3u8", 800_000, 600_000, 640, 360, "avc1.64001E", Fraction(30)),
            StreamInf(
                "720p/index.m3u8",
                2_400_000,
                2_000_000,
                1280,
                720,
                "avc1.64001F,mp4a.40.2",
                Fraction(30000, 1001),
            ),
        ]
    )
    parsed = m3u8.loads(text)
    assert parsed.is_variant and parsed.is_independent_segments
    first, second = parsed.playlists
    assert first.uri == "360p/index.m3u8"
    assert first.stream_info.bandwidth == 800_000
    assert first.stream_info.average_bandwidth == 600_000
    assert first.stream_info.resolution == (640, 360)
    assert first.stream_info.codecs == "avc1.64001E"
    assert second.stream_info.codecs == "avc1.64001F,mp4a.40.2"
    assert second.stream_info.frame_rate == pytest.approx(29.97)
