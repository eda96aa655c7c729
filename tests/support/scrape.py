"""Reading one sample of a service's /metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def sample_in(text: str, name: str, **labels: str) -> float:
    """The value of sample `name` with exactly `labels` in an exposition; 0.0 when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def sample(base_url: str, name: str, **labels: str) -> float:
    """Scrape `base_url`/metrics and read one sample."""
    response = httpx.get(f"{base_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return sample_in(response.text, name, **labels)
