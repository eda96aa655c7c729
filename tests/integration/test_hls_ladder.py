"""The HLS ladder of a generated 20 s 1080p clip: rungs, segments, aligned keyframes, CODECS.

Low frame rate (5 fps) keeps the three encoders cheap on a 2-core machine; everything the test
checks depends on time, not on the number of frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import m3u8  # type: ignore[import-untyped]
import pytest

from media.processing import Limits, Processed, process
from media.processing.ladder import SEGMENT_S
from media.processing.playlist import avc_codec
from tests.support.media_files import make_mp4

LADDER = (360, 720, 1080)
SECONDS = 20.0
FPS = 5


@dataclass(frozen=True)
class Made:
    source: Path
    processed: Processed

    def path(self, name: str) -> Path:
        found = {file.name: file.path for file in self.processed.ladder}
        return found[name]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    folder = tmp_path_factory.mktemp("ladder")
    source = make_mp4(
        folder / "clip.mp4", seconds=SECONDS, fps=FPS, size=(1920, 1080), faststart=True
    )
    processed = process(source, "video/mp4", folder / "work", limits=Limits(hls_ladder=LADDER))
    return Made(source, processed)


def test_three_rungs_in_a_master_playlist_with_every_attribute(made: Made) -> None:
    names = [file.name for file in made.processed.ladder]
    assert names[0] == "master.m3u8" and len(names) == len(set(names))
    master = m3u8.loads(made.path("master.m3u8").read_text())
    assert master.is_variant and master.is_independent_segments
    rungs = [(p.uri, p.stream_info.resolution) for p in master.playlists]
    assert rungs == [
        ("360p/index.m3u8", (640, 360)),
        ("720p/index.m3u8", (1280, 720)),
        ("1080p/index.m3u8", (1920, 1080)),
    ]
    for playlist in master.playlists:
        info = playlist.stream_info
        assert 0 < info.average_bandwidth <= info.bandwidth
        assert info.frame_rate == pytest.approx(FPS)
        video_codec, audio_codec = info.codecs.split(",")
        assert audio_codec == "mp4a.40.2"
        # The CODECS string is the one the init segment's avcC record says.
        init = made.path(playlist.uri.replace("index.m3u8", "init.mp4")).read_bytes()
        at = init.index(b"avcC") + 4
        assert video_codec == avc_codec(init[at : at + 4])
        assert video_codec.startswith("avc1.64")  # High profile
        assert b"mp4a" in init


def test_every_named_file_is_listed_with_its_type_and_nothing_else(made: Made) -> None:
    listed = {file.name: file for file in made.processed.ladder}
    expected = {"master.m3u8"}
    for rung in ("360p", "720p", "1080p"):
        variant = m3u8.load(str(made.path(f"{rung}/index.m3u8")))
        assert variant.playlist_type == "vod" and variant.is_endlist
        assert variant.segment_map[0].uri == "init.mp4"
        expected |= {f"{rung}/index.m3u8", f"{rung}/init.mp4"}
        expected |= {f"{rung}/{segment.uri}" for segment in variant.segments}
    assert set(listed) == expected
    for name, file in listed.items():
        kind = "application/vnd.apple.mpegurl" if name.endswith(".m3u8") else "video/mp4"
        assert file.content_type == kind and file.path.is_file()


def test_segments_last_four_to_six_seconds(made: Made) -> None:
    for rung in ("360p", "720p", "1080p"):
        variant = m3u8.load(str(made.path(f"{rung}/index.m3u8")))
        durations = [segment.duration for segment in variant.segments]
        assert variant.segments[0].uri == "seg_00001.m4s"
        assert sum(durations) == pytest.approx(SECONDS, abs=0.5)
        assert all(4.0 <= d <= 6.0 for d in durations[:-1]), durations
        assert 0 < durations[-1] <= 6.0
        assert variant.target_duration <= 6


def _keyframe_times(made: Made, rung: str) -> Iterator[float]:
    """Times of the video keyframes of a rung, its init and segments read as one file."""
    variant = m3u8.load(str(made.path(f"{rung}/index.m3u8")))
    joined = made.path(f"{rung}/init.mp4").parent / "joined.mp4"
    with joined.open("wb") as out:
        out.write(made.path(f"{rung}/init.mp4").read_bytes())
        for segment in variant.segments:
            out.write(made.path(f"{rung}/{segment.uri}").read_bytes())
    try:
        with av.open(str(joined)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.is_keyframe and packet.pts is not None:
                    yield float(packet.pts * stream.time_base)
    finally:
        joined.unlink()


def test_keyframes_are_aligned_across_rungs_at_every_segment_start(made: Made) -> None:
    times = {rung: list(_keyframe_times(made, rung)) for rung in ("360p", "720p", "1080p")}
    assert times["360p"] == times["720p"] == times["1080p"]
    variant = m3u8.load(str(made.path("360p/index.m3u8")))
    starts, at = [], times["360p"][0]
    for segment in variant.segments:
        starts.append(at)
        at += segment.duration
    assert times["360p"] == pytest.approx(starts, abs=0.01)
    assert len(starts) == -(-int(SECONDS) // SEGMENT_S)


def test_short_and_tiny_videos_get_one_rung(tmp_path: Path) -> None:
    source = make_mp4(tmp_path / "short.mp4", seconds=2.0, fps=FPS, size=(320, 240))
    processed = process(source, "video/mp4", tmp_path / "work", limits=Limits(hls_ladder=LADDER))
    master = m3u8.loads(
        next(f.path for f in processed.ladder if f.name == "master.m3u8").read_text()
    )
    assert [(p.uri, p.stream_info.resolution) for p in master.playlists] == [
        ("240p/index.m3u8", (320, 240))
    ]


@pytest.mark.parametrize("frames", [1, 12])
def test_a_video_of_half_a_second_or_less_gets_a_playable_ladder(
    tmp_path: Path, frames: int
) -> None:
    # Every segment under half a second: the muxer writes a target duration of 0.
    source = make_mp4(tmp_path / "tap.mp4", seconds=frames / 24, fps=24, size=(320, 240))
    processed = process(source, "video/mp4", tmp_path / "work", limits=Limits(hls_ladder=LADDER))
    variant = next(f.path for f in processed.ladder if f.name == "240p/index.m3u8").read_text()
    assert "#EXT-X-TARGETDURATION:1\n" in variant
    assert m3u8.loads(variant).target_duration == 1
    assert len(m3u8.loads(variant).segments) == 1


def test_no_ladder_when_turned_off_or_for_images(tmp_path: Path) -> None:
    source = make_mp4(tmp_path / "clip.mp4", seconds=1.0, fps=FPS)
    assert process(source, "video/mp4", tmp_path / "work").ladder == ()
    png = tmp_path / "pic.png"
    from tests.support.media_files import make_png

    make_png(png)
    limits = Limits(hls_ladder=LADDER)
    assert process(png, "image/png", tmp_path / "work", limits=limits).ladder == ()


def test_a_turned_phone_video_gets_upright_rungs_named_by_the_short_side(tmp_path: Path) -> None:
    from tests.support.phone_media import rotate_mp4

    source = make_mp4(tmp_path / "turned.mp4", seconds=12.0, fps=FPS, size=(320, 240))
    rotate_mp4(source, 90)  # shown as 240x320, portrait
    limits = Limits(hls_ladder=(144, 240, 360))
    processed = process(source, "video/mp4", tmp_path / "work", limits=limits)
    found = {file.name: file.path for file in processed.ladder}
    master = m3u8.loads(found["master.m3u8"].read_text())
    sizes = [(p.uri, p.stream_info.resolution) for p in master.playlists]
    assert sizes == [("144p/index.m3u8", (144, 192)), ("240p/index.m3u8", (240, 320))]
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(
        found["240p/init.mp4"].read_bytes() + found["240p/seg_00001.m4s"].read_bytes()
    )
    with av.open(str(joined)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (240, 320)  # the pictures themselves are upright


def test_a_silent_webm_gets_a_ladder_without_audio(tmp_path: Path) -> None:
    from tests.support.media_files import make_webm

    source = make_webm(tmp_path / "silent.webm", seconds=2.0, size=(320, 240))
    processed = process(source, "video/webm", tmp_path / "work", limits=Limits(hls_ladder=LADDER))
    found = {file.name: file.path for file in processed.ladder}
    (playlist,) = m3u8.loads(found["master.m3u8"].read_text()).playlists
    assert (
        playlist.stream_info.codecs.startswith("avc1.") and "," not in playlist.stream_info.codecs
    )
    assert b"mp4a" not in found["240p/init.mp4"].read_bytes()
