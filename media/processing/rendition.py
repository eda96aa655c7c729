"""The playback rendition of a video: an H.264/AAC faststart MP4 every browser plays.

The policy is "optimal" in Immich's sense: copy what browsers already play, transcode only what
the codec, pixel format, pixel aspect or size requires. A stream copy keeps the display matrix, so
players turn portrait phone videos upright; a transcode turns the pictures themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from media.models import ProbeResult
from media.processing.probe import (
    AV_OPTIONS,
    DEMUXERS,
    NOT_DECODABLE_VIDEO,
    invalid,
    is_hdr,
    local_file,
    moov_before_mdat,
)
from media.processing.sniff import MP4

MP4_TYPE = MP4
BROWSER_VIDEO_CODECS = frozenset({"h264"})
BROWSER_AUDIO_CODECS = frozenset({"aac"})
# 4:2:0 8-bit is what every browser decodes; 10-bit HDR and 4:2:2/4:4:4 are not.
BROWSER_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p"})
DEFAULT_MAX_HEIGHT = 1080
CRF = "23"
PRESET = "veryfast"
AUDIO_RATE = 48_000
# A decoded-frame budget per second of probed duration: above any real frame rate (240 fps
# slow motion), so only a file lying about its length reaches it.
MAX_FPS = 240
REMUX_FAILED = "video could not be prepared for streaming"


@dataclass(frozen=True, slots=True)
class Plan:
    """What the rendition does with each stream; size is the encoded size when transcoding."""

    transcode_video: bool
    transcode_audio: bool
    size: tuple[int, int]


def plan(result: ProbeResult, max_height: int = DEFAULT_MAX_HEIGHT) -> Plan | None:
    """The rendition to make, or None when the original is a faststart browser MP4 to serve."""
    assert result.width is not None and result.height is not None
    width, height = result.width, result.height
    # The short side is the "height" of a resolution: a portrait 1080x1920 video is 1080p.
    too_big = min(width, height) > max_height
    transcode_video = (
        result.video_codec not in BROWSER_VIDEO_CODECS
        or result.pixel_format not in BROWSER_PIXEL_FORMATS
        or result.sample_aspect != (1, 1)
        or result.hdr  # browsers show SDR everywhere; HDR copied as is looks washed out
        or too_big
    )
    transcode_audio = result.audio_codec is not None and (
        result.audio_codec not in BROWSER_AUDIO_CODECS
    )
    # The stream may be handed to others (share links): an original that says where it was
    # taken is remuxed, which leaves its container tags behind.
    located = result.latitude is not None
    copy_as_is = not (transcode_video or transcode_audio or located)
    if copy_as_is and result.mime_type == MP4 and result.faststart:
        return None
    return Plan(transcode_video, transcode_audio, _fit((width, height), max_height))


def _fit(size: tuple[int, int], max_height: int) -> tuple[int, int]:
    """The size scaled so its short side is at most max_height, both sides even (4:2:0)."""
    width, height = size
    scale = min(1.0, max_height / min(width, height))
    return (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))


def make_video_rendition(src: Path, result: ProbeResult, todo: Plan, dst: Path) -> None:
    """Write the rendition of src to dst as a faststart MP4; InvalidInput when it cannot."""
    try:
        _write(local_file(src), result, todo, str(dst.absolute()))
    except av.FFmpegError as exc:
        dst.unlink(missing_ok=True)
        raise invalid(REMUX_FAILED) from exc
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    if moov_before_mdat(dst) is not True:
        dst.unlink(missing_ok=True)
        raise invalid(REMUX_FAILED)


def _write(source: str, result: ProbeResult, todo: Plan, target: str) -> None:
    """Demux source once; copy or transcode its first video and audio streams into target."""
    with contextlib.ExitStack() as stack:
        src: Any = stack.enter_context(
            av.open(source, format=DEMUXERS[result.mime_type], options=AV_OPTIONS)
        )
        dst: Any = stack.enter_context(
            av.open(target, mode="w", format="mp4", options={"movflags": "+faststart"})
        )
        video_in = src.streams.video[0]
        audio_in = src.streams.audio[0] if src.streams.audio else None
        video = _VideoTrack(dst, video_in, result, todo)
        audio = _AudioTrack(dst, audio_in, todo.transcode_audio) if audio_in else None
        budget = int(((result.duration_seconds or 0) + 10) * MAX_FPS)
        inputs = [video_in] + ([audio_in] if audio_in is not None else [])
        for packet in src.demux(inputs):
            track = video if packet.stream is video_in else audio
            assert track is not None
            track.feed(packet)
            if video.frames > budget:
                raise invalid("video has more frames than its duration allows")
        video.finish()
        if audio is not None:
            audio.finish()
        if video.frames == 0 and not video.copied:
            raise invalid(NOT_DECODABLE_VIDEO)


class _VideoTrack:
    """The output video: packets copied, or frames turned, scaled and encoded with libx264."""

    def __init__(self, dst: Any, source: Any, result: ProbeResult, todo: Plan) -> None:
        self.dst, self.source = dst, source
        self.frames, self.copied = 0, False
        if not todo.transcode_video:
            self.stream = dst.add_stream_from_template(source)
            self.graph = None
            return
        width, height = todo.size
        rate = source.average_rate or source.guessed_rate or Fraction(30)
        stream = dst.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = source.time_base
        stream.time_base = source.time_base
        stream.options = {"crf": CRF, "preset": PRESET, "profile": "high"}
        self.stream = stream
        self.graph = filter_graph(source, result.rotation, todo.size)

    def feed(self, packet: Any) -> None:
        if self.graph is None:
            if not packet.size:  # demux flush packets carry no data
                return
            packet.stream = self.stream
            self.dst.mux(packet)
            self.copied = True
            return
        for frame in packet.decode():
            self._encode(frame)

    def _encode(self, frame: Any) -> None:
        assert self.graph is not None
        self.graph.push(frame)
        for out in pulled(self.graph):
            out.pict_type = av.video.frame.PictureType.NONE  # let the encoder place keyframes
            self.dst.mux(self.stream.encode(out))
            self.frames += 1

    def finish(self) -> None:
        if self.graph is None:
            return
        self.graph.push(None)
        for out in pulled(self.graph):
            self.dst.mux(self.stream.encode(out))
            self.frames += 1
        self.dst.mux(self.stream.encode(None))


class _AudioTrack:
    """The output audio: AAC packets copied, or anything else decoded and encoded as AAC."""

    def __init__(self, dst: Any, source: Any, transcode: bool) -> None:
        self.dst, self.transcode = dst, transcode
        if not transcode:
            self.stream = dst.add_stream_from_template(source)
            return
        stream = dst.add_stream("aac", rate=source.rate or AUDIO_RATE)
        channels = source.codec_context.channels or 2
        stream.layout = "mono" if channels == 1 else "stereo"
        self.stream = stream

    def feed(self, packet: Any) -> None:
        if not self.transcode:
            if not packet.size:
                return
            packet.stream = self.stream
            self.dst.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder's resampler counts samples itself
            self.dst.mux(self.stream.encode(frame))

    def finish(self) -> None:
        if self.transcode:
            self.dst.mux(self.stream.encode(None))


# FFmpeg's scale filter maps HDR to SDR (tone and gamut) when told the BT.709 target.
_TO_SDR = ":out_transfer=bt709:out_primaries=bt709:out_color_matrix=bt709:out_range=tv"


def filter_graph(source: Any, rotation: int, size: tuple[int, int]) -> Any:
    """buffer -> turn upright -> scale to size with square pixels (HDR mapped to SDR BT.709,
    which is what browsers show everywhere) -> yuv420p -> sink."""
    graph = av.filter.Graph()
    chain = [graph.add_buffer(template=source)]
    # FFmpeg's rotation is counterclockwise; turning the picture back is the opposite turn.
    if rotation == 90:
        chain.append(graph.add("transpose", "cclock"))
    elif rotation == 270:
        chain.append(graph.add("transpose", "clock"))
    elif rotation == 180:
        chain += [graph.add("hflip"), graph.add("vflip")]
    width, height = size
    chain.append(graph.add("scale", f"{width}:{height}" + (_TO_SDR if is_hdr(source) else "")))
    chain.append(graph.add("setsar", "1"))
    chain.append(graph.add("format", "yuv420p"))
    chain.append(graph.add("buffersink"))
    graph.link_nodes(*chain).configure()
    return graph


def pulled(graph: Any) -> Iterator[Any]:
    """Every frame the graph has ready."""
    while True:
        try:
            yield graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return
