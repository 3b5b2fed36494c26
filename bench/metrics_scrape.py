"""Reading a voxgate server's ``/metrics`` from the benchmarks.

``scrape(base_url)`` returns a :class:`Scrape` (every sample, keyed by name and labels). Two scrapes give
the histogram observations made between them (:meth:`Scrape.histogram_since`), from which
:class:`HistogramDelta` estimates quantiles the way Prometheus' ``histogram_quantile`` does (linear within
a bucket) and reads exact fractions at bucket boundaries (e.g. the share of frames under 50 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class HistogramDelta:
    buckets: tuple[tuple[float, float], ...]
    """(upper bound, cumulative count), ascending, ending with +Inf."""
    count: float
    total: float

    def quantile(self, q: float) -> float | None:
        """Estimated q-quantile in the histogram's unit; None without observations."""
        if self.count <= 0:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower_bound  # beyond the last finite bucket: report its bound
                width = cumulative - lower_count
                fraction = (rank - lower_count) / width if width > 0 else 1.0
                return lower_bound + (bound - lower_bound) * fraction
            lower_bound, lower_count = bound, cumulative
        return lower_bound

    def fraction_at_most(self, bound: float) -> float | None:
        """Share of observations <= ``bound`` (exact when ``bound`` is a bucket boundary)."""
        if self.count <= 0:
            return None
        for upper, cumulative in self.buckets:
            if upper >= bound - 1e-12:
                return cumulative / self.count
        return 1.0

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None


class Scrape:
    def __init__(self, samples: dict[tuple[str, Labels], float]) -> None:
        self.samples = samples

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name: str) -> float:
        """Sum of every sample of ``name`` over all label sets."""
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def labelled(self, name: str, label: str) -> dict[str, float]:
        return {
            dict(labels)[label]: value
            for (n, labels), value in self.samples.items()
            if n == name and label in dict(labels)
        }

    def _buckets(self, name: str, labels: dict[str, str]) -> dict[float, float]:
        found: dict[float, float] = {}
        for (sample, sample_labels), value in self.samples.items():
            if sample != f"{name}_bucket":
                continue
            as_dict = dict(sample_labels)
            le = as_dict.pop("le", None)
            if le is not None and as_dict == labels:
                found[float(le)] = value
        return found

    def histogram_since(self, earlier: Scrape | None, name: str, **labels: str) -> HistogramDelta:
        now = self._buckets(name, labels)
        before = earlier._buckets(name, labels) if earlier is not None else {}
        buckets = tuple((bound, now[bound] - before.get(bound, 0.0)) for bound in sorted(now))
        key = frozenset(labels.items())
        count = self.samples.get((f"{name}_count", key), 0.0)
        total = self.samples.get((f"{name}_sum", key), 0.0)
        if earlier is not None:
            count -= earlier.samples.get((f"{name}_count", key), 0.0)
            total -= earlier.samples.get((f"{name}_sum", key), 0.0)
        return HistogramDelta(buckets, count, total)


def parse(text: str) -> Scrape:
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return Scrape(samples)


def scrape(base_url: str, client: httpx.Client | None = None) -> Scrape:
    if client is not None:
        response = client.get(f"{base_url}/metrics")
    else:
        response = httpx.get(f"{base_url}/metrics", timeout=10.0)
    response.raise_for_status()
    return parse(response.text)


async def scrape_async(base_url: str, client: httpx.AsyncClient) -> Scrape:
    response = await client.get(f"{base_url}/metrics")
    response.raise_for_status()
    return parse(response.text)
