"""The hot-path histogram scrapes exactly like prometheus_client's own Histogram."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from worker_runtime.observing.histogram import HotHistogram
from worker_runtime.observing.metrics import DURATION_BUCKETS

SAMPLES = [0.0, 0.0004, 0.001, 0.0011, 0.25, 3.0, 59.99, 1800.0, 1800.5, 7200.0]


def test_exposition_matches_prometheus_client() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram(
        "d_seconds", "Durations", ["queue"], buckets=DURATION_BUCKETS, registry=theirs
    )
    hot = HotHistogram("d_seconds", "Durations", "queue", DURATION_BUCKETS)
    ours.register(hot)
    for i, value in enumerate(SAMPLES):
        queue = "a" if i % 3 else "b"
        reference.labels(queue).observe(value)
        hot.observe(queue, value)
    reference.labels("batch")
    for value in SAMPLES:
        reference.labels("batch").observe(value)
    hot.observe_many("batch", SAMPLES)
    reference.labels("idle")
    hot.add_label("idle")  # scraped at zero before its first job
    assert _comparable(generate_latest(ours)) == _comparable(generate_latest(theirs))


def _comparable(text: bytes) -> list[str]:
    """The exposition's lines, sorted, with the `_created` timestamps' values left out."""
    lines = text.decode().splitlines()
    return sorted(line.rsplit(" ", 1)[0] if "_created{" in line else line for line in lines)
