"""`shoal enqueue QUEUE --data JSON [--id ID]`: add a job and print its id."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import click

from shoal.commands._common import key_prefix_option, redis_url_option, run_async
from worker_runtime.core.keys import InvalidQueueName
from worker_runtime.producing.queue import JobSpec, Queue

BULK_BATCH = 5000


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{where} is not valid JSON: {exc}") from None


@click.command()
@click.argument("queue")
@click.option("--data", default="{}", show_default=True, help="Payload as JSON.")
@click.option("--id", "job_id", help="Job id; an existing id is not added again (dedup).")
@click.option("--delay", type=click.FloatRange(0), default=0.0, help="Seconds before it may run.")
@click.option("--jsonl", type=click.File("r"), help="Enqueue one job per line of FILE (- = stdin).")
@redis_url_option
@key_prefix_option
@run_async
async def command(
    queue: str,
    data: str,
    job_id: str | None,
    delay: float,
    jsonl: TextIO | None,
    redis_url: str,
    key_prefix: str,
) -> None:
    """Add a job to QUEUE and print its id (with --jsonl: print how many were added)."""
    try:
        q = Queue(queue, redis_url=redis_url, prefix=key_prefix)
    except InvalidQueueName as exc:
        raise click.ClickException(str(exc)) from None
    async with q:
        if jsonl is None:
            job = await q.enqueue(_parse(data, "--data"), id=job_id, delay_seconds=delay)
            click.echo(job.id)
            return
        added = total = 0
        batch: list[JobSpec] = []
        for lineno, line in enumerate(jsonl, start=1):
            if line.strip():
                batch.append(JobSpec(data=_parse(line, f"line {lineno}"), delay_seconds=delay))
            if len(batch) >= BULK_BATCH:
                added += sum(j.added for j in await q.enqueue_many(batch))
                total += len(batch)
                batch = []
        if batch:
            added += sum(j.added for j in await q.enqueue_many(batch))
            total += len(batch)
        click.echo(f"enqueued {added} of {total} jobs", file=sys.stderr)
        click.echo(added)
