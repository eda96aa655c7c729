"""A process-wide memory budget for image decodes, and giving freed memory back to the system.

A 155 KB PNG can hold 40 megapixels of RGBA: 160 MB once decoded. Decodes reserve their pixel
bytes here first, so however many uploads are processed at once, the decoded pixels stay within
MEDIA_PROCESSING_MEMORY_MB (a decode larger than the whole budget runs alone)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from typing import cast

from PIL import Image

DEFAULT_BUDGET_BYTES = 512 * 1024**2
# Bytes per pixel of Pillow's image memory; the other modes take four (RGB is stored as RGBX).
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})


def pixel_bytes(size: tuple[int, int], mode: str) -> int:
    """What Pillow allocates to hold an image of this size and mode."""
    width, height = size
    return width * height * (1 if mode in _ONE_BYTE_MODES else 4)


class DecodeBudget:
    """Bytes of decoded pixels allowed at once across the threads of this process."""

    def __init__(self, limit_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._limit = limit_bytes
        self._used = 0
        self._changed = threading.Condition()

    def configure(self, limit_bytes: int) -> None:
        """Set the budget (MEDIA_PROCESSING_MEMORY_MB), waking waiters if it grew."""
        with self._changed:
            self._limit = max(1, limit_bytes)
            self._changed.notify_all()

    @property
    def in_use(self) -> int:
        """Bytes reserved right now."""
        return self._used

    @contextlib.contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Wait until `nbytes` fit, hold them for the block, then give memory back."""
        with self._changed:
            need = min(max(0, nbytes), self._limit)
            while self._used + need > self._limit:
                self._changed.wait()
            self._used += need
        try:
            yield
        finally:
            with self._changed:
                self._used -= need
                self._changed.notify_all()
            give_back_memory()


DECODE_BUDGET = DecodeBudget()


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


_TRIM = _load_trim()


def give_back_memory() -> None:
    """Return freed heap memory to the system (glibc keeps big freed blocks otherwise: 1 GB
    stayed held after four large decodes). Pillow's own block cache is emptied first."""
    Image.core.clear_cache()  # type: ignore[attr-defined]
    if _TRIM is not None:
        _TRIM(0)
