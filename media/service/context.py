"""The parts every use case shares, wired once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from media.auth import Verifier
from media.clock import utc_now
from media.config import Settings
from media.repository import Repository
from media.signing import UrlSigner
from media.storage import Storage


@dataclass(frozen=True, slots=True)
class Parts:
    """Shared collaborators of the use cases."""

    settings: Settings
    repository: Repository
    storage: Storage
    signer: UrlSigner
    verifier: Verifier
    public_url: str
    scratch: Path  # this process's scratch folder for processing (media/service/scratch.py)
    clock: Callable[[], datetime] = utc_now
