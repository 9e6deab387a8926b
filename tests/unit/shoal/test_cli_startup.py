"""`shoal --help` answers from a table, without importing the commands (or the runtime)."""

from __future__ import annotations

import re
import subprocess
import sys

import click

from shoal.cli import SUMMARIES, _command_modules, cli


def test_every_command_has_a_summary_that_starts_its_own_help() -> None:
    ctx = click.Context(cli)
    assert set(SUMMARIES) == set(_command_modules())
    for name, summary in SUMMARIES.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.help is not None
        assert " ".join(command.help.split()).startswith(summary.rstrip(".")), name


def test_help_imports_no_command_and_no_runtime() -> None:
    probe = (
        "import sys; from shoal.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "heavy = sorted(m for m in sys.modules if m.startswith("
        "('shoal.commands.', 'worker_runtime', 'sqlalchemy', 'redis', 'kopf', 'pydantic')))\n"
        "print('LOADED', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "LOADED []" in out, out
    assert re.search(r"\n  enqueue +Add a job to QUEUE and print its id\.\n", out), out


def _loaded_after(statement: str, prefixes: tuple[str, ...]) -> list[str]:
    probe = (
        f"import sys\n{statement}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return list(eval(out))  # a printed list of str


def test_a_producer_loads_neither_the_worker_stack_nor_the_settings() -> None:
    # What `shoal enqueue` and a producer's `from worker_runtime import Queue` pay for at start:
    # Redis and pydantic, not the worker's observability, the SQL store or the settings loader.
    heavy = ("sqlalchemy", "alembic", "structlog", "prometheus_client", "pydantic_settings",
             "kopf", "kubernetes", "yaml", "rich", "httpx")  # fmt: skip
    assert _loaded_after("import shoal.commands.enqueue", heavy) == []
    assert _loaded_after("from worker_runtime import Queue", heavy) == []
    assert _loaded_after("import worker_runtime", ("redis", "pydantic")) == []
