"""Dashboard settings: writes need a token; `shoal dashboard` says so in one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from shoal.commands.dashboard import command
from shoal.dashboard.settings import DashboardSettings


def test_defaults_are_read_only_on_loopback_without_payloads() -> None:
    settings = DashboardSettings()
    assert (settings.host, settings.allow_writes, settings.show_payloads) == (
        "127.0.0.1", False, False,
    )  # fmt: skip


def test_writes_need_a_long_enough_token() -> None:
    with pytest.raises(ValidationError, match="needs a token"):
        DashboardSettings(allow_writes=True)
    with pytest.raises(ValidationError, match="at least 16"):
        DashboardSettings(allow_writes=True, token="short")


def test_cli_refuses_allow_writes_without_token_in_one_line() -> None:
    result = CliRunner().invoke(command, ["--allow-writes"], env={"SHOAL_DASHBOARD_TOKEN": ""})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --allow-writes needs a token (--token or SHOAL_DASHBOARD_TOKEN), "
        "at least 16 characters"
    ]
    bad = CliRunner().invoke(command, ["--queue", "Bad Name"])
    assert bad.exit_code == 2
    assert "invalid queue name" in bad.output
