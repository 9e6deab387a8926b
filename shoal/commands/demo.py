"""`shoal demo`: a local pool that wakes on bursts of jobs, scales up, and returns to zero."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import click

from shoal.commands._local import local_redis, output_option, shown_option
from worker_runtime.supervisor.demo import DEMO_MANIFEST, run_demo
from worker_runtime.supervisor.redis_target import RedisTarget
from worker_runtime.supervisor.supervisor import SupervisorOptions
from worker_runtime.supervisor.view import OutputMode, open_view


def note(message: str) -> None:
    click.echo(f"shoal demo: {message}", err=True)


@click.command()
@shown_option(
    "--jobs", click.IntRange(1, 1_000_000), 2000, "Jobs in all, enqueued in three bursts."
)
@shown_option("--duration", click.FloatRange(0, 600), 10.0, "Seconds the bursts are spread over.")
@shown_option("--job-ms", click.IntRange(0, 60_000), 200, "How long each job sleeps.")
@shown_option("--max-replicas", click.IntRange(1, 64), 4)
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    default=None,
    show_envvar=True,
    help="Use this Redis instead of starting a private one.",
)
@output_option
def command(
    jobs: int,
    duration: float,
    job_ms: int,
    max_replicas: int,
    redis_url: str | None,
    output: OutputMode,
) -> None:
    """Run the demo pool (worker_runtime.demo:app, 0..N workers) against bursts of jobs."""
    target = RedisTarget(redis_url, "REDIS_URL" if redis_url else "private")
    log_dir = Path(tempfile.mkdtemp(prefix="shoal-demo-"))
    # Workers keep their job-status database with their logs, not in the current directory.
    options = SupervisorOptions(
        extra_env={"STATUS_STORE_URL": f"sqlite+aiosqlite:///{log_dir / 'status.db'}"}
    )
    scaling = DEMO_MANIFEST["spec"]["scaling"]
    # Room for the work itself at full size, plus the way back down to zero.
    work = jobs * job_ms / 1000 / (max_replicas * DEMO_MANIFEST["spec"]["concurrency"])
    back_to_zero = scaling["scaleDownStabilizationSeconds"] + scaling["cooldownSeconds"]
    deadline = duration + work + back_to_zero + 60
    with local_redis(target, note) as url:
        note(
            f"{jobs:,} jobs of {job_ms} ms in bursts over {duration:g} s on queue 'demo', "
            f"0..{max_replicas} workers; worker logs in {log_dir}"
        )
        with open_view(output, title="shoal demo") as view:
            result = asyncio.run(
                run_demo(
                    redis_url=url,
                    jobs=jobs,
                    duration=duration,
                    job_ms=job_ms,
                    max_replicas=max_replicas,
                    log_dir=log_dir,
                    view=view,
                    options=options,
                    deadline_seconds=deadline,
                )
            )
            s = result.summary
            if result.timed_out:
                message = f"demo: not back to zero workers within {deadline:.0f} s"
            else:
                message = (
                    f"demo: {result.completed:,} jobs done; workers 0 -> {s.peak_replicas} "
                    f"-> 0 in {s.seconds:.1f} s ({s.crashes} crashes)"
                )
            view.summary(s.model_copy(update={"jobs": result.completed, "message": message}))
    if result.timed_out or s.kills:
        note(f"worker logs kept in {log_dir}")
        sys.exit(1)
    shutil.rmtree(log_dir, ignore_errors=True)
