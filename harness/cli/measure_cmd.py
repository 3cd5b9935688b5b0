"""``python -m harness measure``: one matrix, every strategy, side by side.

Each (strategy, cache state) runs in a fresh subprocess; the figures are put against the
``dense`` strategy of the same run (``x dense``) and against this machine's roofline,
measured in the same run (memory bandwidth when warm, disk bandwidth when cold). The work is
``harness.measuring.runs.compare.compare``; this module parses and prints.

With ``--file PATH`` the matrix is yours: a .npy, a raw binary file (``--shape``, ``--dtype``),
an HDF5 dataset (``file.h5:/group/dataset``), a scipy.sparse .npz or a zarr store (format 3 or
2; ``store.zarr:/group/array`` for one of several arrays), opened read-only and never modified
(cold runs evict its pages from the page cache, nothing more). Every strategy that accepts its
storage runs on it in place; ``--also-as hdf5,zarr,raw,csr-hdf5`` first copies it, block by
block, into the data directory (``--chunks`` and ``--compression`` shape the HDF5 and zarr
copies).

After the table: the Pareto front of time against anonymous memory and the fastest strategy
within ``--memory-budget`` (default: the RAM available now), per cache state.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from harness.cli.arg_types import parse_bytes
from harness.measuring.matrix.spec import COMPRESSIONS as HDF5_NAMES
from harness.measuring.matrix.spec import DTYPES, Problem, parse_chunks, parse_shape
from harness.measuring.matrix.values import DEFAULT_KIND, KINDS
from harness.measuring.options import OPTIONS


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
    p.add_argument("--file", default=None,
                   help="your own matrix: file.npy, a raw binary file (with --shape and --dtype), "
                        "file.h5:/path/to/dataset, a scipy.sparse file.npz, or a zarr store "
                        "(store.zarr, store.zarr:/path/to/array); read-only")
    p.add_argument("--dataset", default=None,
                   help="with --file: the HDF5 dataset or zarr array, taken as it is (colons "
                        "included); file.h5:/path also works when the file is the longest part "
                        "before a colon that exists")
    p.add_argument("--also-as", default=None,
                   help="with --file: copy it first into these storages, comma-separated "
                        "(hdf5, zarr, raw, csr-hdf5), block by block into the data directory")
    p.add_argument("--as-dtype", default=None, choices=DTYPES,
                   help="with --also-as: the copies' dtype (default: the dtype your file is "
                        "multiplied in; a file of integers or float16 is converted block by "
                        "block to it as it is read, and a copy skips that)")
    p.add_argument("--shape", type=_argument_type(parse_shape), default=None,
                   help="ROWSxCOLS (default 1000x100000; a raw --file needs it)")
    p.add_argument("--dtype", default=None,
                   help=f"one of {', '.join(DTYPES)} (default float32); a raw --file: the dtype "
                        "of its values, any numpy name (int16, uint8, float16, >f8)")
    p.add_argument("--density", type=float, default=None, help="fraction of nonzeros (default: dense)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunks", type=_argument_type(parse_chunks), default=None,
                   help="HDF5 and zarr chunk shape ROWSxCOLS, 'auto' (h5py's guess) or 'none' "
                        "(HDF5: contiguous, default; zarr: full-width rows of about 4 MiB)")
    p.add_argument("--compression", default=None, choices=[n for n in HDF5_NAMES if n],
                   metavar="CODEC",
                   help="HDF5 compression: " + ", ".join(n for n in HDF5_NAMES if n)
                        + "; zarr stores take zstd, blosc-lz4, blosc-zstd, gzip-1, gzip-4")
    p.add_argument("--values", choices=KINDS, default=DEFAULT_KIND,
                   help="the matrix's values: uniform random (incompressible), smooth (a "
                        "field plus small noise) or quantized (12-bit sensor counts)")
    p.add_argument("--strategies", default=None,
                   help="comma-separated names (default: every strategy that accepts the matrix)")
    p.add_argument("--product", default="matvec",
                   help="comma-separated products measured side by side: matvec (A @ x), "
                        "rmatvec (Aᵀy), matmat (A @ X), rmatmat (AᵀY) (default matvec)")
    p.add_argument("--columns", default="16",
                   help="comma-separated k, the columns of X for matmat and rmatmat (default 16)")
    p.add_argument("--passes", type=int, default=None,
                   help="instead of the table: a solve's workload, this many products in a row "
                        "from a cold cache per strategy (lsqr's A @ x, Aᵀy, ...; default "
                        "strategies: the out-of-core ones), each pass timed, memory metered")
    p.add_argument("--cache", choices=("warm", "cold", "both"), default="warm")
    p.add_argument("--repeat", type=int, default=5, help="timed passes per strategy (default 5)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every strategy this many times, interleaved, each in a fresh process, "
                        "and pool the passes (evens out load that comes and goes; default 1)")
    for family, group in _option_groups(p).items():
        for option in (o for o in OPTIONS if o.family == family):
            group.add_argument(option.flag, dest=option.name, default=None,
                               type=_OPTION_TYPES[option.kind], help=option.help)
    p.add_argument("--data-dir", default=None, help="where datasets are cached (default $HARNESS_DATA_DIR)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with a float64 reference")
    p.add_argument("--no-roofline", action="store_true", help="skip the roofline probes (a few seconds)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per strategy subprocess")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Refuse bad numbers before generating files or probing: both can take minutes.
    if args.rounds < 1 or args.repeat < 1:
        print("error: --rounds and --repeat must be >= 1", file=sys.stderr)
        return 2
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        print(f"error: --timeout must be a positive number of seconds, got {args.timeout}",
              file=sys.stderr)
        return 2
    if args.passes is not None:
        return _run_passes(args)
    try:
        comparison = _compare(args)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # no space, unwritable data directory: the message names the fix
        from harness.cli import one_line

        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    from harness.measuring.runs.recommend import recommend

    # A recommendation is built on a whole comparison only: a failed row could have been the
    # fastest one.
    # Over the plain product's figures: the one a strategy is chosen on (harness.operator).
    plain = [r for r in comparison.records if r.get("product", "matvec") == "matvec"]
    advice = None if comparison.failures or not plain else \
        recommend(plain, args.memory_budget, comparison.skipped)
    if args.format == "json" and args.file is not None:
        print(json.dumps({"file": args.file, "records": comparison.records,
                          "skipped": comparison.skipped, "failures": comparison.failures,
                          "recommendation": advice.to_dict() if advice else None}, indent=1))
    elif args.format == "json":
        print(json.dumps(comparison.records, indent=1))  # a list, as before --file existed
    else:
        print(comparison.table())
        if advice is not None and comparison.records:
            print()
            print("\n".join(advice.lines()))
        elif comparison.failures:
            print(f"\nno recommendation: {len(comparison.failures)} measurement(s) failed "
                  "(above); run again without them (--strategies) for one")
    return 1 if comparison.failures else 0


#: How the command line reads an option of each kind (``harness.measuring.options``).
_OPTION_TYPES = {"count": int, "bytes": parse_bytes, "text": str}


def _option_groups(parser: argparse.ArgumentParser) -> dict:
    """One argument group per family of options, in the order the table names them."""
    families = dict.fromkeys(option.family for option in OPTIONS)
    return {family: parser.add_argument_group(f"{family} options") for family in families}


def _strategy_options(args: argparse.Namespace) -> dict:
    return {option.name: getattr(args, option.name) for option in OPTIONS}


def products(product_text: str, columns_text: str) -> list[tuple[str, int]]:
    """``--product`` and ``--columns`` as (product, columns) pairs: each multi-column product
    once per k; a ValueError naming what is wrong."""
    from harness.measuring.strategies.products import PRODUCT_KINDS, check_product

    try:
        ks = [int(k) for k in columns_text.split(",")]
    except ValueError:
        raise ValueError(f"--columns takes comma-separated integers, got {columns_text!r}") \
            from None
    pairs = []
    for product in product_text.split(","):
        check_product(product.strip())
        several = PRODUCT_KINDS[product.strip()][1]
        for k in ks if several else [1]:
            check_product(product.strip(), k)
            pairs.append((product.strip(), k))
    return pairs


def _common(args: argparse.Namespace) -> dict:
    return {"products": products(args.product, args.columns),
            "cache": args.cache, "repeat": args.repeat, "rounds": args.rounds,
            "root": args.data_dir, "check": not args.no_check, "roofline": not args.no_roofline,
            "timeout_seconds": args.timeout, "progress": _to_stderr}


def _names(args: argparse.Namespace):
    return args.strategies.split(",") if args.strategies else None


def _compare(args: argparse.Namespace):
    from harness.measuring.runs.compare import compare
    from harness.measuring.storage.copies import check_layout, parse_targets

    if args.file is None:
        if args.dataset:
            raise ValueError("--dataset names a dataset in your --file: use it with --file")
        if args.also_as or args.as_dtype:
            raise ValueError("--also-as copies your own matrix: use it with --file")
        matrix = Problem(args.shape or (1000, 100000), args.dtype or "float32", args.density,
                         args.seed, args.chunks, args.compression, values=args.values)
        return compare(matrix, _names(args), **_common(args), **_strategy_options(args))
    if args.density is not None:
        raise ValueError("--density describes a generated matrix; your --file has its own")
    targets = parse_targets(args.also_as) if args.also_as else []  # before any file is read
    check_layout(targets, args.compression)
    if args.as_dtype and not targets:
        raise ValueError("--as-dtype is the dtype of the copies --also-as makes: name them, "
                         "e.g. --also-as raw,hdf5")
    from harness.measuring.storage.user import open_user_matrix

    user = open_user_matrix(args.file, shape=args.shape, dtype=args.dtype, dataset=args.dataset)
    return compare(user, _names(args), also_as=targets, chunks=args.chunks,
                   compression=args.compression, as_dtype=args.as_dtype, **_common(args),
                   **_strategy_options(args))


def _run_passes(args: argparse.Namespace) -> int:
    """``--passes N``: a solve's passes from a cold cache, one fresh process per strategy."""
    from harness.measuring.runs.child import passes_in_subprocess
    from harness.measuring.runs.measure import MeasurementError
    from harness.measuring.runs.passes import format_passes, solve_strategies

    if args.passes < 1 or args.file is not None:
        print("error: --passes takes a count >= 1 and a generated matrix (not --file)",
              file=sys.stderr)
        return 2
    try:
        matrix = Problem(args.shape or (1000, 100000), args.dtype or "float32", args.density,
                         args.seed, args.chunks, args.compression, values=args.values)
        chosen, skipped = solve_strategies(matrix, _names(args))
        options = {k: v for k, v in _strategy_options(args).items() if v is not None}
    except (ValueError, KeyError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    records, failed = [], 0
    for name, spec in chosen:
        _to_stderr(f"measuring {args.passes} passes of {name} from a cold cache...")
        try:
            records.append(passes_in_subprocess(name, spec, passes=args.passes,
                                                root=args.data_dir,
                                                timeout_seconds=args.timeout, **options))
        except MeasurementError as exc:
            print(f"FAILED {name}: {exc}", file=sys.stderr)
            failed += 1
    if args.format == "json":
        print(json.dumps(records, indent=1))
    else:
        print(format_passes(records))
        print("\n".join(f"skipped {name}: {why}" for name, why in skipped))
    return 1 if failed else 0


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
