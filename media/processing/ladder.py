"""The HLS ladder of a video: one decode, then one H.264/AAC encoder and fMP4 HLS muxer per rung.

Keyframes are forced at the same instants in every rung (each segment boundary, from the
decoded timestamps every rung shares), so segments line up across renditions and a player can
switch between them at any boundary. FFmpeg's hls muxer writes files by name only: everything
goes into a folder of the job's scratch space, and the caller uploads what `make_ladder` lists.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from media.models import ProbeResult
from media.processing.playlist import (
    AAC_LC,
    PLAYLIST_TYPE,
    SEGMENT_TYPE,
    StreamInf,
    avc_codec,
    average_bandwidth,
    lift_target_duration,
    master_playlist,
    parse_variant,
    peak_bandwidth,
)
from media.processing.probe import AV_OPTIONS, DEMUXERS, invalid, local_file
from media.processing.rendition import AUDIO_RATE, MAX_FPS, filter_graph, pulled
from media.telemetry.stages import stage

SEGMENT_S = 4  # RFC 8216 leaves it open; 4 s starts fast and switches often, Apple suggests 6
SHORT_S = 10.0  # a shorter video gets one rung: switching needs a few segments to matter
MASTER = "master.m3u8"
PLAYLIST = "index.m3u8"
INIT = "init.mp4"
CRF = "23"
PRESET = "veryfast"
LADDER_FAILED = "video could not be prepared for adaptive streaming"
# Peak rate of a rung in bits per pixel per frame at 30 fps: 3 b/px caps 1080p near 6 Mbit/s,
# 720p near 2.8 and 360p near 0.7, where CRF alone would let busy scenes spike far above.
_PEAK_BITS_PER_PIXEL = 3


@dataclass(frozen=True, slots=True)
class Rung:
    """One rendition of the ladder: its folder name and encoded size."""

    name: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class LadderFile:
    """A file the ladder wrote: its name under the ladder (what URLs say), path and type."""

    name: str
    path: Path
    content_type: str


def plan_rungs(result: ProbeResult, heights: tuple[int, ...]) -> tuple[Rung, ...]:
    """The rungs for a video: the ladder heights (short side) up to the source's, lowest first.

    A video smaller than every rung gets one at its own size; a short one only its top rung."""
    assert result.width is not None and result.height is not None
    width, height = result.width, result.height
    short = min(width, height)
    fitting = [h for h in sorted(set(heights)) if h <= short]
    if not fitting:
        fitting = [max(2, short // 2 * 2)]
    if (result.duration_seconds or 0.0) < SHORT_S:
        fitting = fitting[-1:]
    rungs = []
    for target in fitting:
        scale = target / short
        size = (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))
        rungs.append(Rung(f"{target}p", *size))
    return tuple(rungs)


@stage("hls")
def make_ladder(
    src: Path, result: ProbeResult, rungs: tuple[Rung, ...], folder: Path
) -> tuple[LadderFile, ...]:
    """Write the ladder of src into folder (created; removed again on failure); list its files,
    the master playlist first. InvalidInput when the video cannot be turned into a ladder."""
    folder.mkdir(parents=True)
    try:
        encoded = _encode(local_file(src), result, rungs, folder)
        return _collect(folder, encoded)
    except av.FFmpegError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise invalid(LADDER_FAILED) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@dataclass(frozen=True, slots=True)
class _Encoded:
    rung: Rung
    video_codec: str
    has_audio: bool
    frame_rate: Fraction


def _encode(
    source: str, result: ProbeResult, rungs: tuple[Rung, ...], folder: Path
) -> list[_Encoded]:
    """Demux and decode source once, feeding every rung; the rungs as _Encoded, lowest first."""
    with contextlib.ExitStack() as stack:
        src: Any = stack.enter_context(
            av.open(source, format=DEMUXERS[result.mime_type], options=AV_OPTIONS)
        )
        video_in = src.streams.video[0]
        audio_in = src.streams.audio[0] if src.streams.audio else None
        rate = video_in.average_rate or video_in.guessed_rate or Fraction(30)
        outputs = [
            stack.enter_context(_Output(folder / rung.name, rung, video_in, audio_in, rate))
            for rung in rungs
        ]
        # Turning, square pixels and HDR to SDR once, at the top rung's size; each rung then
        # only scales.
        needs_graph = result.rotation != 0 or result.sample_aspect != (1, 1) or result.hdr
        top = rungs[-1]
        graph = (
            filter_graph(video_in, result.rotation, (top.width, top.height))
            if needs_graph
            else None
        )
        keys = _Keyframes(video_in.time_base)
        budget = int(((result.duration_seconds or 0) + 10) * MAX_FPS)
        frames = 0
        inputs = [video_in] + ([audio_in] if audio_in is not None else [])
        for packet in src.demux(inputs):
            if packet.stream is video_in:
                for frame in _pictures(packet.decode(), graph):
                    forced = keys.due(frame.pts)
                    for output in outputs:
                        output.video(frame, forced)
                    frames += 1
                    if frames > budget:
                        raise invalid("video has more frames than its duration allows")
            else:
                for sound in packet.decode():
                    for output in outputs:
                        output.audio(sound)
        if graph is not None:
            graph.push(None)
            for frame in pulled(graph):
                forced = keys.due(frame.pts)
                for output in outputs:
                    output.video(frame, forced)
        if frames == 0:
            raise invalid(LADDER_FAILED)
        encoded = []
        for output in outputs:
            output.finish()
            encoded.append(_Encoded(output.rung, output.codec(), audio_in is not None, rate))
        return encoded


def _pictures(frames: Any, graph: Any) -> Iterator[Any]:
    """Decoded frames, turned upright with square pixels when a graph is given."""
    for frame in frames:
        if graph is None:
            yield frame
            continue
        graph.push(frame)
        yield from pulled(graph)


class _Keyframes:
    """Decides which frames start a segment: the first at or after each multiple of SEGMENT_S
    from the first frame. Every rung sees the same timestamps, so the same frames."""

    def __init__(self, time_base: Fraction | None) -> None:
        self._time_base = time_base or Fraction(1, 90_000)
        self._start: int | None = None
        self._next = 0.0

    def due(self, pts: int | None) -> bool:
        if pts is None:
            return False
        if self._start is None:
            self._start = pts
        seconds = float((pts - self._start) * self._time_base)
        if seconds + 1e-6 < self._next:
            return False
        while self._next <= seconds + 1e-6:
            self._next += SEGMENT_S
        return True


class _Output:
    """One rung: a libx264 encoder, an AAC encoder and the hls muxer writing into `folder`."""

    def __init__(
        self, folder: Path, rung: Rung, video_in: Any, audio_in: Any, rate: Fraction
    ) -> None:
        self.rung, self.folder = rung, folder
        self._video_in, self._audio_in, self._rate = video_in, audio_in, rate

    def __enter__(self) -> _Output:
        folder, rung = self.folder, self.rung
        folder.mkdir()
        self.dst: Any = av.open(
            str(folder / PLAYLIST),
            mode="w",
            format="hls",
            options={
                "hls_time": str(SEGMENT_S),
                "hls_playlist_type": "vod",
                "hls_segment_type": "fmp4",
                "hls_fmp4_init_filename": INIT,
                "hls_segment_filename": str(folder / "seg_%05d.m4s"),
                "hls_flags": "independent_segments",
                "start_number": "1",
                **AV_OPTIONS,
            },
        )
        gop = max(1, round(float(self._rate) * SEGMENT_S))
        peak = rung.width * rung.height * _PEAK_BITS_PER_PIXEL * min(2.0, float(self._rate) / 30)
        video = self.dst.add_stream("libx264", rate=self._rate)
        video.width, video.height, video.pix_fmt = rung.width, rung.height, "yuv420p"
        video.codec_context.time_base = self._video_in.time_base
        video.time_base = self._video_in.time_base
        video.options = {
            "crf": CRF,
            "preset": PRESET,
            "profile": "high",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "forced-idr": "1",
            "maxrate": str(max(200_000, int(peak))),
            "bufsize": str(max(400_000, int(2 * peak))),
        }
        self._video = video
        self._audio = None
        if self._audio_in is not None:
            audio = self.dst.add_stream("aac", rate=self._audio_in.rate or AUDIO_RATE)
            channels = self._audio_in.codec_context.channels or 2
            audio.layout = "mono" if channels == 1 else "stereo"
            self._audio = audio
        return self

    def video(self, frame: Any, keyframe: bool) -> None:
        # May be the shared frame itself (same size and format): the encoder copies the frame's
        # properties when it takes it, so setting them per rung is safe.
        scaled = frame.reformat(self.rung.width, self.rung.height, "yuv420p")
        scaled.pts, scaled.time_base = frame.pts, frame.time_base
        scaled.pict_type = (
            av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        )
        self.dst.mux(self._video.encode(scaled))

    def audio(self, frame: Any) -> None:
        if self._audio is None:
            return
        frame.pts = None  # the encoder's resampler counts samples itself
        self.dst.mux(self._audio.encode(frame))

    def finish(self) -> None:
        self.dst.mux(self._video.encode(None))
        if self._audio is not None:
            self.dst.mux(self._audio.encode(None))
        self.dst.close()

    def codec(self) -> str:
        return avc_codec(bytes(self._video.codec_context.extradata or b""))

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.dst.close()


def _collect(folder: Path, encoded: list[_Encoded]) -> tuple[LadderFile, ...]:
    """Every file the playlists name (and nothing else), with the master playlist written."""
    files: list[LadderFile] = []
    streams: list[StreamInf] = []
    for item in encoded:
        rung = item.rung
        playlist = folder / rung.name / PLAYLIST
        written = _read(playlist)
        served = lift_target_duration(written)
        if served != written:
            playlist.write_text(served, encoding="utf-8")
        variant = parse_variant(served)
        sizes = [_size(folder / rung.name / segment.name) for segment in variant.segments]
        _size(folder / rung.name / variant.init)
        files.append(LadderFile(f"{rung.name}/{PLAYLIST}", playlist, PLAYLIST_TYPE))
        for name in (variant.init, *(segment.name for segment in variant.segments)):
            files.append(LadderFile(f"{rung.name}/{name}", folder / rung.name / name, SEGMENT_TYPE))
        codecs = f"{item.video_codec},{AAC_LC}" if item.has_audio else item.video_codec
        streams.append(
            StreamInf(
                uri=f"{rung.name}/{PLAYLIST}",
                bandwidth=peak_bandwidth(variant, sizes),
                average_bandwidth=average_bandwidth(variant, sizes),
                width=rung.width,
                height=rung.height,
                codecs=codecs,
                frame_rate=item.frame_rate,
            )
        )
    master = folder / MASTER
    master.write_text(master_playlist(streams), encoding="ascii")
    return (LadderFile(MASTER, master, PLAYLIST_TYPE), *files)


def _read(path: Path) -> str:
    with open(local_file(path), encoding="utf-8") as handle:
        return handle.read(1024 * 1024)


def _size(path: Path) -> int:
    local_file(path)  # a regular file, not a link the muxer could not have made
    return path.stat().st_size
