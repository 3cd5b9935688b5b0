"""Every --help of python -m harness is plain terminal text, and the map names every storage."""

from __future__ import annotations

import pytest

from harness.cli import COMMANDS, main, plain_text

# What reST inline markup, or a description's unformatted '%%', looks like once printed.
MARKUP = ("``", ":func:", ":class:", ":mod:", ":meth:", "%%")


def printed_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_is_plain_text(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = printed_help(capsys, [command, "--help"])
    assert f"usage: python -m harness {command}" in text
    found = [markup for markup in MARKUP if markup in text]
    assert not found, f"{command} --help prints markup {found}:\n{text}"


def test_top_level_help_is_plain_and_names_zarr_and_dask(
        capsys: pytest.CaptureFixture[str]) -> None:
    text = printed_help(capsys, ["--help"])
    assert not [markup for markup in MARKUP if markup in text], text
    assert "zarr" in text and "dask" in text
    assert all(command in text for command in COMMANDS)


def test_plain_text_drops_roles_and_double_backquotes_and_quotes_single_ones() -> None:
    assert plain_text("With ``--file PATH``, see :func:`compare` and `asv run`.") == (
        "With --file PATH, see compare and 'asv run'.")
