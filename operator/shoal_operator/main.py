"""`shoal operator`'s body: logging, the API client, the runtime, and kopf running standalone."""

from __future__ import annotations

import asyncio
import os
import socket

import kopf

from shoal_operator.handlers import build_registry
from shoal_operator.kube import KubeApi, load_configuration
from shoal_operator.leader import Leadership, LeaseElector, Timing
from shoal_operator.runtime import OperatorRuntime
from shoal_operator.settings import OperatorSettings
from shoal_operator.telemetry import logger, setup_logging


async def operate(settings: OperatorSettings) -> None:
    """Run until SIGTERM/SIGINT (kopf handles both and returns after its cleanup handlers)."""
    api = KubeApi(load_configuration(), concurrency=settings.api_concurrency)
    runtime = OperatorRuntime(settings, api, leadership(settings))
    await kopf.operator(
        registry=build_registry(runtime),
        # No kopf peering: every replica watches, the Lease holder alone acts (leader.py).
        standalone=True,
        clusterwide=settings.clusterwide,
        namespaces=list(settings.namespaces),
        # /healthz is served by the runtime's own thread (health.py), not on the event loop.
        liveness_endpoint=None,
    )


def leadership(settings: OperatorSettings) -> Leadership:
    if not settings.leader_election:
        return Leadership()
    lease = settings.lease_seconds
    return LeaseElector(
        # Its own connection: a renewal must never queue behind a burst of reconciles (a
        # thousand new pools) in the shared client's slots, or the leader would lose its Lease.
        KubeApi(load_configuration(), concurrency=2, timeout=min(5.0, lease / 4), attempts=1),
        namespace=settings.lease_home,
        name=settings.lease_name,
        identity=identity(settings),
        timing=Timing(
            lease_seconds=lease, renew_seconds=0.7 * lease, retry_seconds=min(2.0, lease / 10)
        ),
    )


def identity(settings: OperatorSettings) -> str:
    """Unique per process: the pod name, or host and pid outside a cluster."""
    if settings.pod_name:
        return settings.pod_name
    return f"{socket.gethostname()}-{os.getpid()}"


def run(settings: OperatorSettings) -> None:
    setup_logging(level=settings.log_level, log_format=settings.log_format)
    logger().info("starting", version=_version())
    asyncio.run(operate(settings))


def _version() -> str:
    from worker_runtime import __version__

    return __version__
