"""`shoal dashboard`: the web dashboard (docs/dashboard.md)."""

from __future__ import annotations

import click
from pydantic import ValidationError

from shoal.commands._common import redis_url_option
from worker_runtime.core.keys import InvalidQueueName, validate_queue_name


def _queues(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(validate_queue_name(v) for v in value)
    except InvalidQueueName as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@redis_url_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--queue", "queues", multiple=True, callback=_queues,
              help="A queue to show even before it has jobs (repeatable).")  # fmt: skip
@click.option("--kube", is_flag=True, help="Show WorkerPools (kubeconfig or in-cluster).")
@click.option("--namespace", "namespaces", multiple=True,
              help="With --kube: only these namespaces (repeatable; default all).")  # fmt: skip
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    type=click.Path(dir_okay=False),
    help="With --kube: kubeconfig file (default: in-cluster, else ~/.kube/config).",
)
@click.option("--allow-writes", is_flag=True, help="Enable replay and purge (need the token).")
@click.option("--token", envvar="SHOAL_DASHBOARD_TOKEN", show_envvar=True,
              help="The write token (16+ characters).")  # fmt: skip
@click.option("--show-payloads", is_flag=True, help="Show job payloads (may hold personal data).")
def command(
    redis_url: str,
    host: str,
    port: int,
    queues: tuple[str, ...],
    kube: bool,
    namespaces: tuple[str, ...],
    kubeconfig: str | None,
    allow_writes: bool,
    token: str | None,
    show_payloads: bool,
) -> None:
    """Serve the web dashboard: queues, workers, jobs, dead letters and WorkerPools.

    Read-only and on loopback by default; see docs/dashboard.md.
    """
    import os

    from aiohttp import web

    from shoal.dashboard.app import create_app
    from shoal.dashboard.settings import DashboardSettings
    from worker_runtime.config import with_password

    try:
        settings = DashboardSettings(
            # REDIS_PASSWORD: how the chart passes its Secret; never shown on the pages.
            redis_url=with_password(redis_url, os.environ.get("REDIS_PASSWORD")),
            host=host, port=port, queues=queues, kube=kube,
            namespaces=namespaces, kubeconfig=kubeconfig, allow_writes=allow_writes, token=token,
            show_payloads=show_payloads,
        )  # fmt: skip
    except ValidationError as exc:
        raise click.ClickException(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    click.echo(f"shoal dashboard on http://{host}:{port}/ (Redis {redis_url})", err=True)
    web.run_app(create_app(settings), host=host, port=port, print=None, shutdown_timeout=2)
