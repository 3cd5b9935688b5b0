"""``python -m harness``: the command-line map of the package.

Each subcommand lives in its own module under ``harness.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning the exit status). This module only wires them together; a command
whose optional dependency is missing (say matplotlib) is listed as unavailable instead of
taking the other commands down. Heavy imports (pandas, h5py, matplotlib) wait until a command
runs; numpy is loaded for the dtype choices of ``measure`` (about 50 ms).

Every ``--help`` is plain terminal text: a command may use its module docstring (reST) as its
description, and ``plain_text`` takes the markup out when the help is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import re
import sys
import traceback

# Subcommand name -> module under harness.cli that registers it (in --help order).
COMMANDS: dict[str, str] = {
    "machine": "harness.cli.machine_cmd",
    "measure": "harness.cli.measure_cmd",
    "sweep": "harness.cli.sweep_cmd",
    "notebook": "harness.cli.notebook_cmd",
    "report": "harness.cli.report_cmd",
    "compare": "harness.cli.compare_cmd",
    "history": "harness.cli.history_cmd",
    "summary": "harness.cli.summary_cmd",
    "publish": "harness.cli.publish_cmd",
    "envs": "harness.cli.envs_cmd",
    "gate": "harness.cli.gate_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description=(
            "Benchmark and profile matrix-vector products y = A @ x where A lives in RAM, in "
            "a memory map, in an HDF5 file, in a sparse format or in a zarr store, multiplied "
            "in one process or by the workers of a dask cluster; and report asv results. "
            "Each command has its own --help."
        ),
        formatter_class=plain_formatter(argparse.HelpFormatter),
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                # The command exists but needs a package that is not installed: say which.
                unavailable = sub.add_parser(name, help=f"(unavailable: {exc.name} is not installed)")
                unavailable.set_defaults(func=_unavailable(name, exc.name))
            continue
        module.register(sub)
    for command_parser in sub.choices.values():
        command_parser.formatter_class = plain_formatter(command_parser.formatter_class)
    return parser


# reST inline markup as the docstrings use it: :role:`text`, ``literal``, `interpreted`.
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_INTERPRETED = re.compile(r"`([^`]+)`")


def plain_text(text: str) -> str:
    """``text`` without reST inline markup, for a terminal: roles and double backquotes are
    dropped (``--file PATH`` -> --file PATH), single backquotes become quotes."""
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    return _INTERPRETED.sub(r"'\1'", text)


def plain_formatter(base: type[argparse.HelpFormatter]) -> type[argparse.HelpFormatter]:
    """``base`` (an argparse formatter class) printing descriptions and argument help as
    ``plain_text``, before it wraps them."""

    class PlainFormatter(base):  # type: ignore[valid-type, misc]
        def add_text(self, text: str | None) -> None:
            super().add_text(plain_text(text) if text and text != argparse.SUPPRESS else text)

        def _get_help_string(self, action: argparse.Action) -> str | None:
            help_string = super()._get_help_string(action)
            return plain_text(help_string) if help_string else help_string

    PlainFormatter.__name__ = f"Plain{base.__name__}"
    return PlainFormatter


def _unavailable(command: str, package: str | None):
    def run(_args: argparse.Namespace) -> int:
        print(
            f"error: 'python -m harness {command}' needs the Python package {package!r}; "
            "install the project with its report extra: pip install -e '.[report]'",
            file=sys.stderr,
        )
        return 2

    return run


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. Whatever goes wrong inside a command (bad input, a
    full disk, a bug) ends as one line on stderr and status 2, never a traceback, unless
    ``--debug`` asks for it: status 1 stays reserved for the verdicts that mean "found a
    regression" (``gate``, ``compare --fail-on``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    if args.debug:  # the measuring child processes show their tracebacks too
        os.environ["HARNESS_DEBUG"] = "1"
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `python -m harness report | head`: the reader left; that is not our failure. Point
        # stdout at devnull so that the interpreter's final flush does not raise again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into a line
        if args.debug:
            traceback.print_exc()
        # --debug belongs before the command (it is the top-level parser's).
        print(f"error: {one_line(exc)}" + ("" if args.debug else
                                          " (for the traceback: python -m harness --debug "
                                          f"{args.command} ...)"),
              file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    """What went wrong as one printable line: the exception's message (its type when the
    message alone would not say it), a full disk said in words."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"the disk is full{where}; free some space and run the command again"
    message = " ".join(str(exc).split())
    if not message or type(exc).__module__ == "builtins" and not isinstance(exc, ValueError):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return "".join(c if c.isprintable() else "?" for c in message)
