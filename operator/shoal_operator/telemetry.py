"""The operator's Prometheus metrics and structured (structlog, JSON) logs.

Metrics live in their own registry, served on ``--metrics-port`` at ``/metrics``:

- ``shoal_operator_reconciles_total{result}``: child reconciles, ``ok`` or ``error``
- ``shoal_operator_errors_total{kind}``: failures by kind (reconcile, observe, scale, status, ...)
- ``shoal_operator_scale_decisions_total{direction}``: replica changes made, ``up`` or ``down``
- ``shoal_pool_desired_replicas{namespace,pool}``: the autoscaler's last decision per pool
- ``shoal_pool_replicas{namespace,pool}``: the pool's Deployment size
- ``shoal_operator_tick_duration_seconds``: one pass of the scaling loop over all pools
- ``shoal_operator_ticks_total``, ``shoal_operator_pools``, ``shoal_operator_pools_decided``,
  ``shoal_operator_status_writes_total``, ``shoal_operator_api_retries_total`` (a Counter),
  ``shoal_operator_leader`` (1 on the replica holding the Lease)
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, TextIO

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from worker_runtime.observing.logs import LogFormat, configure_logging, level_number

TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "shoal_operator_reconciles", "Child reconciles of WorkerPools.", ["result"], registry=r
        )
        self.errors = Counter(
            "shoal_operator_errors", "Operator failures, by kind.", ["kind"], registry=r
        )
        self.decisions = Counter(
            "shoal_operator_scale_decisions",
            "Replica changes made by the scaling loop.",
            ["direction"],
            registry=r,
        )
        self.desired = Gauge(
            "shoal_pool_desired_replicas",
            "The autoscaler's last decision for a pool.",
            ["namespace", "pool"],
            registry=r,
        )
        self.replicas = Gauge(
            "shoal_pool_replicas", "The pool Deployment's replicas.", ["namespace", "pool"],
            registry=r,
        )  # fmt: skip
        self.tick = Histogram(
            "shoal_operator_tick_duration_seconds",
            "One pass of the scaling loop over all pools.",
            buckets=TICK_BUCKETS,
            registry=r,
        )
        self.ticks = Counter("shoal_operator_ticks", "Scaling loop passes.", registry=r)
        self.pools = Gauge("shoal_operator_pools", "WorkerPools known.", registry=r)
        self.decided = Gauge(
            "shoal_operator_pools_decided",
            "Pools decided in the last pass (the others were asleep with nothing new).",
            registry=r,
        )
        self.api_retries = Counter(
            "shoal_operator_api_retries",
            "Kubernetes API requests retried after a transient failure.",
            registry=r,
        )
        self.status_writes = Counter(
            "shoal_operator_status_writes",
            "WorkerPool status patches sent (live figures are paced: status_pacing.py).",
            registry=r,
        )
        self.leader = Gauge(
            "shoal_operator_leader",
            "1 while this replica holds the leader Lease (and acts), else 0.",
            registry=r,
        )

    def forget_pool(self, namespace: str, pool: str) -> None:
        for gauge in (self.desired, self.replicas):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, pool)

    def serve(self, *, host: str, port: int) -> Any:
        """Serve /metrics from a daemon thread (prometheus_client's own server)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


def setup_logging(*, level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """structlog JSON lines (the worker's setup: no local variables in tracebacks); kopf's and
    aiohttp's stdlib loggers go through the same renderer."""
    configure_logging(log_format=log_format, level=level, stream=stream)
    # kopf's per-object loggers are chatty at INFO (one line per watch event and handler).
    logging.getLogger("kopf.objects").setLevel(max(level_number(level), logging.WARNING))


def logger(name: str = "shoal.operator") -> Any:
    return structlog.get_logger(name)
