"""`shoal dlq list|replay|purge QUEUE`: the dead-letter store."""

from __future__ import annotations

import json

import click

from shoal.commands._common import key_prefix_option, redis_url_option, run_async
from worker_runtime.core.keys import InvalidQueueName
from worker_runtime.producing.queue import Queue


def _queue(name: str, redis_url: str, key_prefix: str) -> Queue:
    try:
        return Queue(name, redis_url=redis_url, prefix=key_prefix)
    except InvalidQueueName as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def command() -> None:
    """Inspect, replay or purge dead-lettered jobs."""


@command.command("list")
@click.argument("queue")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one job each, all fields.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@redis_url_option
@key_prefix_option
@run_async
async def list_(queue: str, as_json: bool, limit: int, redis_url: str, key_prefix: str) -> None:
    """List dead-lettered jobs (oldest first) with their error."""
    async with _queue(queue, redis_url, key_prefix) as q:
        jobs = await q.dead_letters(limit=limit)
    for job in jobs:
        if as_json:
            click.echo(job.model_dump_json())
        else:
            error = (job.error or "").splitlines()[0] if job.error else ""
            click.echo(f"{job.id}  attempts={job.attempts}  {error}  data={json.dumps(job.data)}")


@command.command()
@click.argument("queue")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Replay every dead-lettered job.")
@redis_url_option
@key_prefix_option
@run_async
async def replay(
    queue: str, ids: tuple[str, ...], all_: bool, redis_url: str, key_prefix: str
) -> None:
    """Move jobs (IDS, or --all) back to the queue with a fresh attempt budget."""
    if bool(ids) == all_:
        raise click.ClickException("give job IDS or --all (not both)")
    async with _queue(queue, redis_url, key_prefix) as q:
        n = await q.replay_dead(None if all_ else list(ids))
    click.echo(f"replayed {n} job(s)")


@command.command()
@click.argument("queue")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Delete every dead-lettered job.")
@redis_url_option
@key_prefix_option
@run_async
async def purge(
    queue: str, ids: tuple[str, ...], all_: bool, redis_url: str, key_prefix: str
) -> None:
    """Delete dead-lettered jobs (IDS, or --all) for good."""
    if bool(ids) == all_:
        raise click.ClickException("give job IDS or --all (not both)")
    async with _queue(queue, redis_url, key_prefix) as q:
        n = await q.purge_dead(None if all_ else list(ids))
    click.echo(f"purged {n} job(s)")
