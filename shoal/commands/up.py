"""`shoal up -f pool.yaml`: run a WorkerPool on this machine, scaled as the operator would."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import click

from shoal.commands._local import local_redis, output_option
from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.core.spec import ManifestError, WorkerPool
from worker_runtime.supervisor.local_pool import load_local_pool, local_warnings
from worker_runtime.supervisor.process_pool import PoolSettings
from worker_runtime.supervisor.redis_target import choose_redis
from worker_runtime.supervisor.run_local import supervise
from worker_runtime.supervisor.supervisor import SupervisorOptions
from worker_runtime.supervisor.view import OutputMode, open_view

#: Exit status of a bad manifest (as for a bad command line).
EXIT_INVALID = 2


def read_pool(path: str) -> WorkerPool:
    """The manifest at ``path`` (``-``: stdin), or exit 2 naming every bad field."""
    label = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        click.echo(f"Error: cannot read {path}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)
    try:
        return load_local_pool(text)
    except ManifestError as exc:
        click.echo(f"Error: {label}: {exc}", err=True)
        sys.exit(EXIT_INVALID)


def note(message: str) -> None:
    """Information for people goes to stderr: stdout is the view (or its JSON lines)."""
    click.echo(f"shoal up: {message}", err=True)


@click.command()
@click.option(
    "-f",
    "--file",
    "manifest",
    required=True,
    metavar="FILE",
    help="WorkerPool manifest (YAML or JSON; - for stdin).",
)
@click.option(
    "--redis-url",
    default=None,
    help="Use this Redis (over spec.redis). Default: spec.redis, else REDIS_URL, "
    "else a private redis-server.",
)
@click.option(
    "--tick",
    type=click.FloatRange(0.1, 60),
    default=1.0,
    show_default=True,
    help="Seconds between autoscaler decisions.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where worker logs go (one file per worker). Default: a new temp dir.",
)
@output_option
def command(
    manifest: str, redis_url: str | None, tick: float, log_dir: Path | None, output: OutputMode
) -> None:
    """Run a WorkerPool locally: worker processes sized by the autoscaler, drained on exit."""
    pool = read_pool(manifest)
    env = dict(os.environ)
    target = choose_redis(
        pool.spec.redis,
        flag=redis_url,
        env_url=env.get("REDIS_URL"),
        env_password=env.get("REDIS_PASSWORD"),
        env_ca_file=env.get("REDIS_CA_FILE"),
    )
    for warning in local_warnings(pool, target, env):
        note(f"warning: {warning}")
    name = pool.metadata.name
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix=f"shoal-up-{name}-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    options = SupervisorOptions(
        tick_seconds=tick,
        processes=PoolSettings(),
        redis_password=env.get("REDIS_PASSWORD"),
        redis_ca_file=env.get("REDIS_CA_FILE") or None,
        # What the workers inherit when the manifest sets no spec.redis.keyPrefix.
        key_prefix=env.get("SHOAL_KEY_PREFIX") or DEFAULT_PREFIX,
    )
    with local_redis(target, note) as url:
        note(
            f"pool {name}: {pool.spec.app} on {', '.join(pool.spec.queues)}; "
            f"Redis {url} ({target.source}); worker logs in {log_dir}"
        )
        with open_view(output, title="shoal up") as view:

            async def main() -> int:
                summary, supervisor = await supervise(
                    pool, redis_url=url, log_dir=log_dir, view=view, options=options
                )
                forced = summary.kills > 0 and supervisor.stop_requests > 1
                message = (
                    f"pool {name} stopped after {summary.seconds:.0f} s: peak "
                    f"{summary.peak_replicas} worker(s), {summary.starts} start(s), "
                    f"{summary.crashes} crash(es), {summary.kills} killed"
                )
                view.summary(summary.model_copy(update={"message": message}))
                return 1 if forced else 0

            status = asyncio.run(main())
    sys.exit(status)
