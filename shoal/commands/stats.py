"""`shoal stats QUEUE [--json]`: job counts by state."""

from __future__ import annotations

import json

import click

from shoal.commands._common import key_prefix_option, redis_url_option, run_async
from worker_runtime.core.keys import InvalidQueueName
from worker_runtime.producing.queue import Queue


@click.command()
@click.argument("queue")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@redis_url_option
@key_prefix_option
@run_async
async def command(queue: str, as_json: bool, redis_url: str, key_prefix: str) -> None:
    """Print QUEUE's counts: waiting, active, delayed, completed, failed, dead."""
    try:
        q = Queue(queue, redis_url=redis_url, prefix=key_prefix)
    except InvalidQueueName as exc:
        raise click.ClickException(str(exc)) from None
    async with q:
        counts = await q.counts()
    if as_json:
        click.echo(json.dumps(counts))
    else:
        for state, n in counts.items():
            click.echo(f"{state:<10} {n}")
