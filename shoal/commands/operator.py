"""`shoal operator`: run the Kubernetes operator (kopf inside, imported only here)."""

from __future__ import annotations

import click


@click.command()
@click.option("--namespace", "namespaces", multiple=True, metavar="NS",
              help="Watch this namespace (repeatable); none = every namespace.")  # fmt: skip
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    show_envvar=True,
    help="Default Redis of pools without spec.redis (REDIS_PASSWORD: its password; "
    "REDIS_CA_FILE: the PEM CA bundle of a rediss:// URL; SHOAL_KEY_PREFIX: the default key "
    "prefix, shoal).",
)
@click.option("--tick-seconds", type=float, default=1.0, show_default=True,
              help="Period of the scaling loop.")  # fmt: skip
@click.option("--liveness-port", type=int, help="Serve kopf's liveness probe at /healthz.")
@click.option("--liveness-host", default="0.0.0.0", show_default=True)
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics at /metrics.")
@click.option("--metrics-host", default="0.0.0.0", show_default=True)
@click.option("--worker-heartbeat-seconds", type=int, default=5, show_default=True,
              help="WORKER_HEARTBEAT_INTERVAL given to worker pods.")  # fmt: skip
@click.option("--log-level", envvar="LOG_LEVEL", default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default="json",
              envvar="LOG_FORMAT", show_default=True)  # fmt: skip
@click.option("--leader-election/--no-leader-election", default=True, show_default=True,
              help="Act only while holding a coordination.k8s.io Lease.")  # fmt: skip
@click.option("--lease-name", default="shoal-operator", show_default=True)
@click.option("--lease-namespace", envvar="LEASE_NAMESPACE",
              help="Lease namespace; default: POD_NAMESPACE, else the one watched.")  # fmt: skip
@click.option("--lease-seconds", type=float, default=10.0, show_default=True,
              help="A dead leader's Lease is taken over after this long.")  # fmt: skip
def command(
    namespaces: tuple[str, ...],
    redis_url: str | None,
    tick_seconds: float,
    liveness_port: int | None,
    liveness_host: str,
    metrics_port: int | None,
    metrics_host: str,
    worker_heartbeat_seconds: int,
    log_level: str,
    log_format: str,
    leader_election: bool,
    lease_name: str,
    lease_namespace: str | None,
    lease_seconds: float,
) -> None:
    """Run the operator: WorkerPools become Deployments sized to their queues."""
    import os

    # Imported here so other subcommands never load kopf or the Kubernetes client.
    from shoal_operator.main import run
    from shoal_operator.settings import SettingsError, load_settings
    from worker_runtime.observing.logs import InvalidLogSetting, level_number

    try:
        level_number(log_level)
        settings = load_settings(
            namespaces=namespaces,
            redis_url=redis_url,
            redis_password=os.environ.get("REDIS_PASSWORD") or None,
            redis_ca_file=os.environ.get("REDIS_CA_FILE") or None,
            **({"key_prefix": p} if (p := os.environ.get("SHOAL_KEY_PREFIX")) else {}),
            tick_seconds=tick_seconds,
            liveness_port=liveness_port,
            liveness_host=liveness_host,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            worker_heartbeat_seconds=worker_heartbeat_seconds,
            log_level=log_level,
            log_format=log_format,
            pod_name=os.environ.get("POD_NAME") or None,
            pod_namespace=os.environ.get("POD_NAMESPACE") or None,
            leader_election=leader_election,
            lease_name=lease_name,
            lease_namespace=lease_namespace or None,
            lease_seconds=lease_seconds,
        )
    except (SettingsError, InvalidLogSetting) as exc:
        raise click.ClickException(str(exc)) from None
    run(settings)
