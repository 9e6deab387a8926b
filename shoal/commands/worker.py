"""`shoal worker APP`: run processors until SIGTERM, then drain."""

from __future__ import annotations

import os

import click

from shoal.commands._common import redis_url_option
from worker_runtime.config import WorkerSettings
from worker_runtime.consuming.app_loader import AppLoadError, build_worker, load_attribute
from worker_runtime.consuming.process import run_worker_process
from worker_runtime.observing.logs import InvalidLogSetting, configure_logging
from worker_runtime.observing.observability import Observability


@click.command()
@click.argument("app")
@redis_url_option
@click.option("--concurrency", type=click.IntRange(1, 10_000), envvar="WORKER_CONCURRENCY",
              help="Default jobs in parallel per queue.")  # fmt: skip
@click.option("--max-jobs-per-worker", type=click.IntRange(1, 100_000),
              envvar="WORKER_MAX_JOBS_PER_WORKER", help="Cap across all queues.")  # fmt: skip
@click.option("--queue", "queues", multiple=True, help="Only these queues (repeatable).")
def command(
    app: str,
    redis_url: str,
    concurrency: int | None,
    max_jobs_per_worker: int | None,
    queues: tuple[str, ...],
) -> None:
    """Run the processors named by APP (module:attribute: a Worker or Processors)."""
    try:
        settings = WorkerSettings()
        if queues:
            settings = settings.model_copy(update={"queues": list(queues)})
        configure_logging(log_format=settings.log_format, level=settings.log_level)
        worker = build_worker(
            load_attribute(app),
            redis_url=redis_url,
            settings=settings,
            concurrency=concurrency,
            max_jobs_per_worker=max_jobs_per_worker,
        )
        # Heartbeats, /livez /readyz /healthz /metrics, job logs, alerts and the status store,
        # each as the settings (environment) enable it.
        if "WORKER_GC_FREEZE" not in os.environ:  # this process runs one worker for its life
            worker.settings = worker.settings.model_copy(update={"gc_freeze": True})
        Observability.from_settings(worker.settings).install(worker)
        run_worker_process(worker)  # asyncio.run, with a bound on stubborn processors
    except (AppLoadError, InvalidLogSetting, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
