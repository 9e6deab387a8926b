"""The `shoal` console script: a click group whose subcommands live in `shoal.commands`.

Each module in `shoal.commands` exposes ``command`` (a click command or group); modules are
imported lazily, only for the subcommand being run, so `shoal enqueue` never loads kopf, and
`shoal --help` lists the commands from `SUMMARIES` without importing any of them (importing
them all cost ≈1 s; a unit test keeps the table equal to each command's own help).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click

import shoal.commands


def _command_modules() -> dict[str, str]:
    names = {}
    for info in pkgutil.iter_modules(shoal.commands.__path__):
        if not info.name.startswith("_"):
            names[info.name.replace("_", "-")] = f"shoal.commands.{info.name}"
    return names


#: Each command's one-line summary: the start of its own help text.
SUMMARIES = {
    "crd": "Print the WorkerPool CRD as YAML (pipe it to `kubectl apply -f -`).",
    "dashboard": "Serve the web dashboard: queues, workers, jobs, dead letters and WorkerPools.",
    "demo": "Run the demo pool (worker_runtime.demo:app, 0..N workers) against bursts of jobs.",
    "dlq": "Inspect, replay or purge dead-lettered jobs.",
    "enqueue": "Add a job to QUEUE and print its id.",
    "events": "Follow QUEUE's job events.",
    "operator": "Run the operator: WorkerPools become Deployments sized to their queues.",
    "stats": "Print QUEUE's counts.",
    "up": "Run a WorkerPool locally: worker processes sized by the autoscaler.",
    "worker": "Run the processors named by APP.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_command_modules())

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            summary = SUMMARIES.get(name)
            if summary is None:  # a command without an entry: ask it (imports it)
                command = self.get_command(ctx, name)
                summary = command.get_short_help_str(limit=200) if command else ""
            rows.append((name, summary))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _command_modules().get(cmd_name)
        if module is None:
            return None
        command: click.Command = importlib.import_module(module).command
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shoal")
def cli() -> None:
    """Shoal: Kubernetes-native job-queue workers for Python, on Redis."""


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="shoal", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
