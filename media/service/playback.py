"""Where a read URL points and how long a playback URL lives, for owners and share links alike."""

from __future__ import annotations

import math

from media.models import Purpose
from media.processing.ladder import MASTER

# A video's URL must outlive its playback: every range request and every HLS segment checks it.
PLAYBACK_MARGIN_S = 600


def playback_ttl(default_s: int, duration_seconds: float | None) -> int:
    """The longer of `default_s` and the video's duration plus the margin (callers cap it).

    The trade-off (docs/hls.md): a URL that outlives the film keeps working that long for
    whoever holds it, so revocation (`revokeMediaUrls`, a revoked link) is what ends it early."""
    if not duration_seconds:
        return default_s
    return max(default_s, math.ceil(duration_seconds) + PLAYBACK_MARGIN_S)


def url_path(purpose: Purpose, token: str) -> str:
    """The path of a read URL: `/media/{token}`, or the HLS master playlist under its token."""
    if purpose is Purpose.HLS:
        return f"/hls/{token}/{MASTER}"  # the name the ladder writes its master under
    return f"/media/{token}"
