"""The metrics folder several server processes share (prometheus-client's multiprocess mode)."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

from media.config import Settings

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_metrics(settings: Settings, environ: MutableMapping[str, str]) -> Path:
    """Before the worker processes start: their shared folder, emptied of an earlier run's files.

    PROMETHEUS_MULTIPROC_DIR when set, else `<data dir>/prometheus`; written into `environ`, which
    the workers inherit (prometheus-client reads it when it is first imported). Values of a
    previous run would otherwise be added to this run's."""
    folder = settings.metrics_multiproc_dir or settings.data_dir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    environ[VARIABLE] = str(folder)
    return folder
