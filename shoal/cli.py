"""The `shoal` console script: a click group whose subcommands live in `shoal.commands`.

Each module in `shoal.commands` exposes ``command`` (a click command or group); modules are
imported lazily, only for the subcommand being run, so `shoal enqueue` never loads kopf.
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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_command_modules())

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
