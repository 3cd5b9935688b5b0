"""``python -m harness measure``: one matrix, every strategy, side by side.

Each (strategy, cache state) runs in a fresh subprocess; the figures are put against the
``dense`` strategy of the same run (``x dense``) and against this machine's roofline,
measured in the same run (memory bandwidth when warm, disk bandwidth when cold). The work is
``harness.measuring.plan.compare_strategies``; this module parses and prints.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.cli.arg_types import parse_bytes
from harness.measuring.codecs import HDF5_NAMES
from harness.measuring.datasets import DTYPES, Problem, parse_chunks, parse_shape
from harness.measuring.values import DEFAULT_KIND, KINDS


def _argument_type(parse):
    """An argparse type from a parser that raises ValueError."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__  # argparse names the type in its errors
    return convert


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "measure", help="time and meter every matvec strategy on one matrix, side by side",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=_argument_type(parse_shape), default=(1000, 100000),
                   help="ROWSxCOLS (default 1000x100000)")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--density", type=float, default=None, help="fraction of nonzeros (default: dense)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunks", type=_argument_type(parse_chunks), default=None,
                   help="HDF5 chunk shape ROWSxCOLS, 'auto' (h5py's guess) or 'none' (contiguous, default)")
    p.add_argument("--compression", default=None, choices=[n for n in HDF5_NAMES if n],
                   metavar="CODEC",
                   help="HDF5 compression: " + ", ".join(n for n in HDF5_NAMES if n))
    p.add_argument("--values", choices=KINDS, default=DEFAULT_KIND,
                   help="the matrix's values: uniform random (incompressible), smooth (a "
                        "field plus small noise) or quantized (12-bit sensor counts)")
    p.add_argument("--strategies", default=None,
                   help="comma-separated names (default: every strategy that accepts the matrix)")
    p.add_argument("--cache", choices=("warm", "cold", "both"), default="warm")
    p.add_argument("--repeat", type=int, default=5, help="timed passes per strategy (default 5)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every strategy this many times, interleaved, each in a fresh process, "
                        "and pool the passes (evens out load that comes and goes; default 1)")
    p.add_argument("--block-rows", type=int, default=None)
    p.add_argument("--memory-budget", type=parse_bytes, default=None, help="bytes, e.g. 64MiB (default)")
    p.add_argument("--chunk-cache-bytes", type=parse_bytes, default=None,
                   help="HDF5 rdcc_nbytes, e.g. 1MiB (HDF5 1.x default) or 8MiB (HDF5 2.0 default)")
    p.add_argument("--data-dir", default=None, help="where datasets are cached (default $HARNESS_DATA_DIR)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with a float64 reference")
    p.add_argument("--no-roofline", action="store_true", help="skip the roofline probes (a few seconds)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per strategy subprocess")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.measuring.plan import compare_strategies

    # Refuse bad numbers before generating files or probing: both can take minutes.
    if args.rounds < 1 or args.repeat < 1:
        print("error: --rounds and --repeat must be >= 1", file=sys.stderr)
        return 2
    if not args.timeout > 0:
        print(f"error: --timeout must be a positive number of seconds, got {args.timeout}",
              file=sys.stderr)
        return 2
    try:
        problem = Problem(args.shape, args.dtype, args.density, args.seed, args.chunks,
                          args.compression, args.values)
        comparison = compare_strategies(
            problem, args.strategies.split(",") if args.strategies else None,
            cache=args.cache, repeat=args.repeat, rounds=args.rounds, root=args.data_dir,
            check=not args.no_check, roofline=not args.no_roofline,
            timeout_seconds=args.timeout, progress=_to_stderr, block_rows=args.block_rows,
            memory_budget=args.memory_budget, chunk_cache_bytes=args.chunk_cache_bytes)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # no space, unwritable data directory: the message names the fix
        print(f"error: {exc.strerror if exc.strerror and exc.filename is None else exc}",
              file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(comparison.records, indent=1))
    else:
        print(comparison.table())
    return 1 if comparison.failures else 0


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
