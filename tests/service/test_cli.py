"""The CLI's own surface: the localnet command's fault flags and the error contract."""

from __future__ import annotations

from click.testing import CliRunner

from keeper.service.cli import main


def test_bad_fault_switch_is_a_config_error() -> None:
    result = CliRunner().invoke(main, ["localnet", "--fault", "no_such_switch=1", "--port", "0"])
    assert result.exit_code == 2
    assert "error:" in result.stderr
    assert "fix:" in result.stderr


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    for command in ("run", "check", "demo", "localnet"):
        assert command in result.stdout


def test_scale_world_options_reach_the_world_and_are_checked() -> None:
    too_due = ["localnet", "--world", "scale", "--jobs", "10", "--due-fraction", "1.5"]
    result = CliRunner().invoke(main, [*too_due, "--markets", "50", "--port", "0"])
    assert result.exit_code == 2
    assert "due_fraction" in result.stderr


def test_a_world_option_the_world_does_not_take_is_a_config_error() -> None:
    result = CliRunner().invoke(main, ["localnet", "--world", "demo", "--markets", "3"])
    assert result.exit_code == 2
    assert "takes no markets" in result.stderr
