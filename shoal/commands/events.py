"""`shoal events QUEUE`: follow the queue's job events, one JSON object per line."""

from __future__ import annotations

import json

import click

from shoal.commands._common import redis_url_option, run_async
from worker_runtime.core.keys import InvalidQueueName
from worker_runtime.producing.events import follow
from worker_runtime.producing.queue import Queue


@click.command()
@click.argument("queue")
@click.option(
    "--from-start", is_flag=True, help="Begin with the oldest event still kept, not new ones."
)
@click.option("--job", "job_id", default=None, help="Only this job's events.")
@click.option(
    "-n", "--count", type=click.IntRange(min=1), default=None, help="Exit after N events."
)
@redis_url_option
@run_async
async def command(
    queue: str, from_start: bool, job_id: str | None, count: int | None, redis_url: str
) -> None:
    """Follow QUEUE's job events (progress, completed, retried, failed, dead, cancelled) and
    print each as a JSON line: {"event", "queue", "id", "at_ms", ...}. Stops on Ctrl-C."""
    try:
        q = Queue(queue, redis_url=redis_url)
    except InvalidQueueName as exc:
        raise click.ClickException(str(exc)) from None
    printed = 0
    async with q:
        async for event in follow(q, after="0-0" if from_start else "$"):
            if job_id is not None and event.job_id != job_id:
                continue
            click.echo(json.dumps(event.to_json()))
            printed += 1
            if count is not None and printed >= count:
                return
