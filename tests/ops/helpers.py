"""Reading Prometheus metrics the way Prometheus does: the text exposition, parsed."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "metrics-token-0123456789abcdef"  # the ``settings`` fixture's


@dataclass(frozen=True)
class Scrape:
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` with exactly ``labels`` (0 when it was never recorded)."""
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def names(self) -> set[str]:
        return {s.name for f in text_string_to_metric_families(self.text) for s in f.samples}


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return Scrape(response.text)


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much a counter moved between two scrapes (the registry is shared by the process:
    only differences mean anything)."""
    return after.value(name, **labels) - before.value(name, **labels)
