"""`shoal operator`'s body: logging, the API client, the runtime, and kopf running standalone."""

from __future__ import annotations

import asyncio

import kopf

from shoal_operator.handlers import build_registry
from shoal_operator.kube import KubeApi, load_configuration
from shoal_operator.runtime import OperatorRuntime
from shoal_operator.settings import OperatorSettings
from shoal_operator.telemetry import logger, setup_logging


async def operate(settings: OperatorSettings) -> None:
    """Run until SIGTERM/SIGINT (kopf handles both and returns after its cleanup handlers)."""
    api = KubeApi(load_configuration(), concurrency=settings.api_concurrency)
    runtime = OperatorRuntime(settings, api)
    await kopf.operator(
        registry=build_registry(runtime),
        # One operator, no peering: the chart runs one replica with Recreate.
        standalone=True,
        clusterwide=settings.clusterwide,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness_endpoint,
    )


def run(settings: OperatorSettings) -> None:
    setup_logging(level=settings.log_level, log_format=settings.log_format)
    logger().info("starting", version=_version())
    asyncio.run(operate(settings))


def _version() -> str:
    from worker_runtime import __version__

    return __version__
