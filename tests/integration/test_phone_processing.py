"""Processing of every format phones write: display size, renditions, capture details, bounds."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from PIL import Image

from media.errors import InvalidInput
from media.models import MediaKind, ProcessingStage
from media.processing import Limits, Processed, process
from tests.support.phone_media import PhoneMedia, make_clip, make_hlg_clip, rotate_mp4

ROOT = Path(__file__).resolve().parents[2]
PARIS = (48.8584, 2.2945)
PHOTO_TAKEN = datetime(2023, 7, 14, 16, 5, 9, tzinfo=UTC)  # 18:05:09 at +02:00


@dataclass(frozen=True, slots=True)
class Case:
    """One phone file and what processing must make of it."""

    attr: str
    declared: str
    shown: tuple[int, int]
    playback: str | None  # the rendition's type; None when the original is shown as is


CASES = [
    Case("mov", "video/quicktime", (64, 48), "video/mp4"),
    Case("hevc_mp4", "video/mp4", (64, 48), "video/mp4"),
    Case("av1_mp4", "video/mp4", (64, 48), "video/mp4"),
    Case("mkv", "video/x-matroska", (64, 48), "video/mp4"),
    Case("webm", "video/webm", (64, 48), "video/mp4"),
    Case("portrait_mp4", "video/mp4", (48, 64), "video/mp4"),
    Case("anamorphic_mp4", "video/mp4", (128, 48), "video/mp4"),
    Case("jpeg", "image/jpeg", (48, 64), "image/jpeg"),  # located: a preview without EXIF
    Case("heic", "image/heic", (64, 48), "image/jpeg"),
    Case("heic", "image/heif", (64, 48), "image/jpeg"),  # phones label HEIC either way
    Case("avif", "image/avif", (64, 48), "image/jpeg"),
    Case("webp", "image/webp", (64, 48), "image/jpeg"),
    Case("gif", "image/gif", (64, 48), None),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def first_frame(path: Path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.attr}-{c.declared}" for c in CASES])
def test_each_phone_format(phone_media: PhoneMedia, tmp_path: Path, case: Case) -> None:
    source: Path = getattr(phone_media, case.attr)
    before = sha256(source)
    stages: list[ProcessingStage] = []
    processed = process(source, case.declared, tmp_path, on_stage=stages.append)
    assert stages == [ProcessingStage.PROBE, ProcessingStage.RENDITION, ProcessingStage.THUMBNAIL]
    assert sha256(source) == before == processed.sha256  # the original is only read
    result = processed.probe
    assert (result.width, result.height) == case.shown
    assert processed.thumbnail_size == case.shown  # small: the thumbnail is never upscaled
    assert processed.thumbhash and len(processed.thumbhash) <= 40
    if case.playback is None:
        assert processed.rendition is None
        return
    rendition = processed.rendition
    assert rendition is not None and rendition.media_type == case.playback
    if result.kind is MediaKind.IMAGE:
        with Image.open(rendition.path) as preview:
            assert preview.format == "JPEG" and preview.size == case.shown
            assert not preview.getexif()  # no location, no orientation left to apply
        return
    with av.open(str(rendition.path)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        if container.streams.audio:
            assert container.streams.audio[0].codec_context.name == "aac"
    assert rendition.path.read_bytes().index(b"moov") < rendition.path.read_bytes().index(b"mdat")


def test_video_details(phone_media: PhoneMedia, tmp_path: Path) -> None:
    result = process(phone_media.mov, "video/quicktime", tmp_path).probe
    assert (result.mime_type, result.container) == ("video/quicktime", "mov")
    assert (result.video_codec, result.audio_codec) == ("h264", "aac")
    assert result.captured_at == datetime(2022, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert (result.camera_make, result.camera_model) == ("Apple", "iPhone 15 Pro")
    assert (result.latitude, result.longitude) == PARIS
    assert result.duration_seconds == pytest.approx(8 / 24, abs=0.05)
    hevc = process(phone_media.hevc_mp4, "video/mp4", tmp_path).probe
    assert (hevc.video_codec, hevc.audio_codec, hevc.latitude) == ("hevc", "aac", None)
    av1 = process(phone_media.av1_mp4, "video/mp4", tmp_path).probe
    assert (av1.video_codec, av1.audio_codec) == ("av1", "aac")  # the codec, not the decoder
    mkv = process(phone_media.mkv, "video/x-matroska", tmp_path).probe
    assert (mkv.container, mkv.video_codec, mkv.audio_codec) == ("matroska", "h264", "opus")


@pytest.mark.parametrize("attr", ["jpeg", "heic", "avif", "webp"])
def test_photo_details(phone_media: PhoneMedia, tmp_path: Path, attr: str) -> None:
    source: Path = getattr(phone_media, attr)
    result = process(source, f"image/{attr}", tmp_path).probe
    assert result.captured_at == PHOTO_TAKEN
    assert (result.camera_make, result.camera_model) == ("Google", "Pixel 8")
    assert result.latitude == pytest.approx(PARIS[0], abs=1e-4)
    assert result.longitude == pytest.approx(PARIS[1], abs=1e-4)


def test_a_heic_cut_after_its_picture_is_refused(phone_media: PhoneMedia, tmp_path: Path) -> None:
    """The picture decodes whole without the file's last bytes (its Exif item): the date,
    camera and place would be lost without a word, so the file is refused as cut short."""
    cut = tmp_path / "cut.heic"
    cut.write_bytes(phone_media.heic.read_bytes()[:-1])
    with pytest.raises(InvalidInput, match="truncated image"):
        process(cut, "image/heic", tmp_path / "work")
    with Image.open(cut) as picture:  # what makes the case: the picture itself still decodes
        picture.load()


@pytest.mark.parametrize("ten_bit", [True, False])
def test_hdr_video_is_mapped_to_sdr_everywhere(tmp_path: Path, ten_bit: bool) -> None:
    """HDR (HLG; HEVC 10-bit as iPhones record, H.264 8-bit as some cameras do): reference
    white stays white in the rendition, the thumbnail and the HLS rungs, instead of the dim
    grey of HLG values read as SDR. The H.264 one is transcoded for it, not copied."""
    source = make_hlg_clip(tmp_path / "hdr.mov", ten_bit=ten_bit)
    with av.open(str(source)) as container:  # what makes the case: an HDR transfer
        assert container.streams.video[0].codec_context.color_trc == 18
    processed = process(
        source, "video/quicktime", tmp_path / "work", limits=Limits(hls_ladder=(360,))
    )
    assert processed.rendition is not None
    first = tmp_path / "first-segment.mp4"  # an fMP4 segment plays after its init segment
    ladder = {file.name.rpartition("/")[2]: file.path for file in processed.ladder}
    first.write_bytes(ladder["init.mp4"].read_bytes() + ladder["seg_00001.m4s"].read_bytes())
    pictures = {"rendition": processed.rendition.path, "hls": first}
    for name, path in pictures.items():
        with av.open(str(path)) as container:
            picture = next(container.decode(video=0)).to_image()
        assert min(picture.getpixel((8, 8))) >= 240, (name, picture.getpixel((8, 8)))
    with Image.open(processed.thumbnail_path) as thumbnail:
        assert min(thumbnail.convert("RGB").getpixel((8, 8))) >= 240, thumbnail.getpixel((8, 8))


def test_portrait_copy_keeps_the_display_matrix_and_thumbnail_is_upright(
    phone_media: PhoneMedia, tmp_path: Path
) -> None:
    processed = process(phone_media.portrait_mp4, "video/mp4", tmp_path)
    assert processed.rendition is not None
    frame = first_frame(processed.rendition.path)
    # H.264 yuv420p: a stream copy, and players turn it upright from the matrix.
    assert (frame.width, frame.height, frame.rotation) == (64, 48, -90)
    assert_upright_thumbnail(processed)


def test_portrait_transcode_turns_the_pictures(tmp_path: Path) -> None:
    clip = rotate_mp4(make_clip(tmp_path / "portrait-hevc.mp4", codec="libx265"), 90)
    processed = process(clip, "video/mp4", tmp_path / "work")
    assert (processed.probe.width, processed.probe.height) == (48, 64)
    assert processed.rendition is not None and processed.rendition.size == (48, 64)
    frame = first_frame(processed.rendition.path)
    assert (frame.width, frame.height, frame.rotation) == (48, 64, 0)
    assert_upright_thumbnail(processed)


def assert_upright_thumbnail(processed: Processed) -> None:
    """The pattern's blue disc sits top-left of the picture; upright it stays in the top half."""
    assert processed.thumbnail_path is not None
    with Image.open(processed.thumbnail_path) as thumb:
        assert thumb.size == (48, 64)
        rgb = thumb.convert("RGB")
        blue = [
            (x, y)
            for x in range(48)
            for y in range(64)
            if (pixel := rgb.getpixel((x, y)))[2] > 150 and pixel[0] < 100  # type: ignore[index]
        ]
    assert blue and all(y < 32 for _, y in blue), blue[:5]


def test_non_square_pixels_are_made_square(phone_media: PhoneMedia, tmp_path: Path) -> None:
    processed = process(phone_media.anamorphic_mp4, "video/mp4", tmp_path)
    assert processed.rendition is not None
    frame = first_frame(processed.rendition.path)
    assert (frame.width, frame.height) == (128, 48)
    with av.open(str(processed.rendition.path)) as container:
        ratio = container.streams.video[0].sample_aspect_ratio
        assert ratio is None  # no sample aspect ratio written: square pixels


def test_rendition_height_is_capped(phone_media: PhoneMedia, tmp_path: Path) -> None:
    limits = Limits(playback_max_height=24)
    processed = process(phone_media.mov, "video/quicktime", tmp_path, limits=limits)
    assert processed.rendition is not None and processed.rendition.size == (32, 24)
    frame = first_frame(processed.rendition.path)
    assert (frame.width, frame.height) == (32, 24)


def test_browser_safe_faststart_mp4_is_served_as_is(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "safe.mp4", faststart=True)
    processed = process(clip, "video/mp4", tmp_path / "work")
    assert processed.rendition is None


# Each hostile file, what refuses it and in how long; all run in one child process whose address
# space is capped, so a decoder that tried to allocate a picture of 10^10 pixels would die there.
HOSTILE = [
    ("many_frame_gif", "image/gif", "animation of more than 1000 frames"),
    ("huge_mkv", "video/x-matroska", "not a decodable video"),
    ("large_mkv", "video/x-matroska", "video frame larger than 40 megapixels"),
    ("many_stream_mkv", "video/x-matroska", "video with more than 16 streams"),
    ("day_long_mkv", "video/x-matroska", "video longer than 10800 seconds"),
    ("truncated_heic", "image/heic", "truncated image"),
    ("raw_mkv", "video/x-matroska", None),  # the same hand-made container, honest: it plays
]
CHILD = """
import json, resource, sys, time
from pathlib import Path
cap = 1024 ** 3
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from media.errors import InvalidInput
from media.processing import process
for path, declared, work in json.loads(sys.argv[1]):
    start = time.monotonic()
    try:
        process(Path(path), declared, Path(work))
        reason = None
    except InvalidInput as exc:
        reason = exc.data.get("reason")
    # VmHWM: the peak of this process image (ru_maxrss would include the forking parent's).
    status = Path("/proc/self/status").read_text()
    rss = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps([reason, time.monotonic() - start, rss]), flush=True)
"""


def test_hostile_inputs_fail_fast_within_bounded_memory(
    phone_media: PhoneMedia, tmp_path: Path
) -> None:
    jobs = [
        (str(getattr(phone_media, attr)), declared, str(tmp_path / attr))
        for attr, declared, _ in HOSTILE
    ]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(jobs)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == len(HOSTILE), done.stderr
    for (attr, _, expected), (reason, seconds, rss_mb) in zip(HOSTILE, lines, strict=True):
        assert reason == expected or (expected and reason and reason.startswith(expected)), attr
        # Each takes well under a second alone; the bound leaves room for a loaded machine.
        assert seconds < 15, (attr, seconds)
        assert rss_mb < 300, (attr, rss_mb)


class Listener:
    """A loopback TCP port that records whether anything connected to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def contacted(self) -> bool:
        """True when something connected; closes the port either way."""
        with self.sock:
            try:
                connection, _ = self.sock.accept()
            except BlockingIOError:
                return False
            connection.close()
            return True


def test_references_inside_a_file_are_never_followed(tmp_path: Path) -> None:
    """Playlists and concat scripts, bare or behind an MP4 header, never reach another file."""
    listener = Listener()
    secret = tmp_path / "secret.mp4"
    make_clip(secret)
    playlist = (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{listener.url}/a.ts\n"
        f"#EXTINF:1,\nfile:{secret}\n#EXT-X-ENDLIST\n"
    ).encode()
    concat = f"ffconcat version 1.0\nfile '{secret}'\nfile '{listener.url}/b.mp4'\n".encode()
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41"
    hidden = ftyp + (8 + len(playlist)).to_bytes(4, "big") + b"free" + playlist
    for name, data, declared in [
        ("list.m3u8", playlist, "video/mp4"),
        ("list.txt", concat, "video/mp4"),
        ("hidden.mp4", hidden, "video/mp4"),
        ("hidden.mov", hidden.replace(b"isom", b"qt  ", 1), "video/quicktime"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(InvalidInput):
            process(path, declared, tmp_path / "work")
    assert not listener.contacted()
