"""`python -m bench.decode PIPELINE PNG COUNT`: decode a PNG COUNT times at once in this process
and print its memory as JSON: {"idle_kib", "peak_kib", "after_kib"} (VmRSS/VmHWM from /proc).

PIPELINE `service` is media.processing's probe and thumbnail (reduced decode, memory budget);
`baseline` is the pipeline before that work, kept here as the same-run yardstick: a full
decode, a full-size upright copy, full-size RGBA and RGB conversions, then the thumbnail."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from PIL import Image, ImageOps

from media.models import MediaKind
from media.processing.probe import probe_image
from media.processing.thumbnail import render_thumbnail

STATUS = Path("/proc/self/status")


def _memory() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in STATUS.read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def _baseline(path: Path, out: Path) -> None:
    with Image.open(path, formats=["PNG"]) as img:
        img.verify()
    with Image.open(path, formats=["PNG"]) as img:
        img.load()  # the old probe: a full decode
    with Image.open(path, formats=["PNG"]) as img:
        upright = ImageOps.exif_transpose(img)
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    flat.thumbnail((320, 320), Image.Resampling.LANCZOS)
    flat.save(out, format="JPEG", quality=85)


def _service(path: Path, out: Path) -> None:
    probe_image(path, "image/png")
    render_thumbnail(path, MediaKind.IMAGE, out)


def main() -> int:
    """Run COUNT decodes in threads; print the memory figures."""
    pipeline, png, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    decode = _service if pipeline == "service" else _baseline
    idle = _memory()["VmRSS"]
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    threads = [
        threading.Thread(target=decode, args=(png, png.with_name(f"{pipeline}-{n}.jpg")))
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = _memory()["VmHWM"]
    # The service pipeline already gave memory back as each decode released its budget.
    print(json.dumps({"idle_kib": idle, "peak_kib": peak, "after_kib": _memory()["VmRSS"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
