"""``python -m harness sweep``: GB/s against matrix size, from a few MB to past RAM, against
both roofs, so you see where the page cache stops helping.

For each size in ``--sizes`` the matrix has ``--rows`` rows and as many columns as hold the
size; every strategy runs on it warm and cold, each in a fresh process, as ``measure`` runs
them. The roofline (memory and cold-disk read bandwidth) is probed once, before the first
size, so every size is put against the same roofs. Default strategies: dense (the in-RAM
product, where it fits), memmap-blocked, hdf5-read and hdf5-blocked; not memmap (``mm @ x``),
whose cold pass past RAM takes over ten minutes.

A warm pass of a file the page cache could not hold is labelled "2nd pass", never "warm",
and put against the disk roof. A strategy that does not fit in RAM at a size is skipped there,
with the reason. A sweep whose files do not fit on the free disk of the data directory is
refused before anything is written. The data files stay in the data directory for the next
run. ``--plot PATH.html`` also writes the figure: one offline HTML page (plotly.js embedded).
The work is ``harness.measuring.runs.sweep.sweep``; this module parses and prints.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from harness.measuring.matrix.spec import DTYPES

DEFAULT_SIZES = "4MB,40MB,400MB,4GB"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="GB/s against matrix size, a few MB to past RAM, against both roofs",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=DEFAULT_SIZES,
                   help="comma-separated matrix sizes in bytes, with units (kB, MB, GB: 1000s; "
                        f"KiB, MiB, GiB: 1024s) (default {DEFAULT_SIZES})")
    p.add_argument("--rows", type=int, default=1000,
                   help="rows of every matrix; the columns grow with the size (default 1000)")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--strategies", default=None,
                   help="comma-separated names (default: dense,memmap-blocked,hdf5-read,"
                        "hdf5-blocked)")
    p.add_argument("--cache", choices=("warm", "cold", "both"), default="both")
    p.add_argument("--repeat", type=int, default=3, help="timed passes per strategy (default 3)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every strategy this many times per size, interleaved, each in a "
                        "fresh process, and pool the passes (default 1)")
    p.add_argument("--data-dir", default=None,
                   help="where the matrices are written and kept (default $HARNESS_DATA_DIR, else "
                        "~/.cache/harness/data)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per strategy subprocess")
    p.add_argument("--plot", default=None, metavar="PATH.html",
                   help="also write the figure there: GB/s against size, both axes log, the "
                        "memory and disk roofs, this machine's RAM (the directory must exist)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.measuring.runs.sweep import parse_sizes, sweep

    # Refuse bad input before anything is probed or written: a sweep can take many minutes.
    if args.rounds < 1 or args.repeat < 1:
        return _refuse("--rounds and --repeat must be >= 1")
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        return _refuse(f"--timeout must be a positive number of seconds, got {args.timeout}")
    try:
        sizes = parse_sizes(args.sizes)
        write_plot = _plot_writer(args.plot)
        result = sweep(sizes, rows=args.rows, dtype=args.dtype,
                       names=args.strategies.split(",") if args.strategies else None,
                       cache=args.cache, repeat=args.repeat, rounds=args.rounds,
                       root=args.data_dir, progress=_to_stderr, timeout_seconds=args.timeout)
    except (ValueError, KeyError) as exc:
        return _refuse(str(exc.args[0] if exc.args else exc))
    except OSError as exc:  # an unwritable data directory, a full disk: the line names the fix
        from harness.cli import one_line

        return _refuse(one_line(exc))
    if write_plot is not None:
        _to_stderr(f"figure: {write_plot(result.to_dict())}")
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(result.table())
    return 1 if result.failures else 0


def _plot_writer(path: str | None):
    """None without ``--plot``; else a function writing the figure of a sweep's dict to
    ``path``, once the path has been checked (ValueError naming the fix)."""
    if path is None:
        return None
    try:
        import plotly.io  # noqa: F401 - the figure needs it: say so before the sweep runs

        from harness.reporting.sweep_plot import check_plot_path, write_sweep_plot
    except ModuleNotFoundError as exc:
        raise ValueError(f"--plot needs the Python package {exc.name!r}; install the project "
                         "with its report extra: pip install -e '.[report]'") from None
    check_plot_path(path)
    return lambda sweep: write_sweep_plot(path, sweep)


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
