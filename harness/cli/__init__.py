"""``python -m harness``: the command-line map of the package.

Each subcommand lives in its own module under ``harness.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning the exit status). This module only wires them together; a command
whose optional dependency is missing (say matplotlib) is listed as unavailable instead of
taking the other commands down. Heavy imports (pandas, h5py, matplotlib) wait until a command
runs; numpy is loaded for the dtype choices of ``measure`` (about 50 ms).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Subcommand name -> module under harness.cli that registers it (in --help order).
COMMANDS: dict[str, str] = {
    "machine": "harness.cli.machine_cmd",
    "measure": "harness.cli.measure_cmd",
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
            "Benchmark and profile matrix-vector products y = A @ x where A lives in RAM, "
            "a memory map, an HDF5 file or a sparse format; and report asv results."
        ),
    )
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
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `python -m harness report | head`: the reader left; that is not our failure. Point
        # stdout at devnull so that the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
