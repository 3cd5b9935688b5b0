"""``python -m harness measure``: one matrix, every strategy, side by side.

Each (strategy, cache state) runs in a fresh subprocess; the figures are put against the
``dense`` strategy of the same run (``ratio_to_dense``) and against this machine's roofline,
measured in the same run (memory bandwidth when warm, disk bandwidth when cold).
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.cli.arg_types import parse_bytes
from harness.measuring.datasets import (
    DTYPES,
    SPARSE_STORAGES,
    DatasetSpec,
    default_root,
    materialize,
)


def parse_shape(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape must look like ROWSxCOLS (e.g. 1000x100000), got {text!r}")
    return shape


def parse_chunks(text: str):
    if text.lower() in ("none", "contiguous"):
        return None
    if text.lower() in ("auto", "true"):
        return "auto"
    try:
        return parse_shape(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"chunks must be ROWSxCOLS, 'auto' or 'none', got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "measure", help="time and meter every matvec strategy on one matrix, side by side",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=parse_shape, default=(1000, 100000), help="ROWSxCOLS (default 1000x100000)")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--density", type=float, default=None, help="fraction of nonzeros (default: dense)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunks", type=parse_chunks, default=None,
                   help="HDF5 chunk shape ROWSxCOLS, 'auto' (h5py's guess) or 'none' (contiguous, default)")
    p.add_argument("--compression", default=None,
                   help="HDF5 compression: gzip, lzf, blosc, blosc2, lz4, zstd, bitshuffle")
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


def _spec_for(strategy, args) -> DatasetSpec | None:
    """The matrix in the strategy's preferred storage, or None when it cannot hold it."""
    for storage in strategy.storage:
        if storage in SPARSE_STORAGES and args.density is None:
            continue
        hdf5 = storage == "hdf5"
        spec = DatasetSpec(args.shape, args.dtype, args.density, args.seed, storage,
                           args.chunks if hdf5 else None, args.compression if hdf5 else None)
        if strategy.accepts(spec):
            return spec
    return None


def plan(args) -> tuple[list[tuple[str, DatasetSpec]], list[tuple[str, str]]]:
    """[(strategy, spec)] to run, dense first, and [(strategy, why skipped)]."""
    from harness.measuring import strategies

    requested = [n.strip() for n in args.strategies.split(",")] if args.strategies else None
    chosen = requested or strategies.names()
    if "dense" not in chosen:
        chosen = ["dense", *chosen]  # the reference of ratio_to_dense
    runs, skipped = [], []
    for name in dict.fromkeys(chosen):
        strategy = strategies.get(name)
        spec = _spec_for(strategy, args)
        if spec is None:
            reason = (f"needs storage {list(strategy.storage)}"
                      + (" with a density" if set(strategy.storage) <= set(SPARSE_STORAGES) else ""))
            fits_storage = args.density is not None or not set(strategy.storage) <= set(SPARSE_STORAGES)
            if fits_storage and strategy.accepts_fn is not None and strategy.refusal:
                reason = strategy.refusal
            if requested and name in requested:
                raise ValueError(f"strategy {name!r} cannot run on this matrix: {reason}")
            skipped.append((name, reason))
            continue
        runs.append((name, spec))
    return runs, skipped


def run(args: argparse.Namespace) -> int:
    from harness.measuring import machine
    from harness.measuring.measure import MeasurementError, combine, measure_in_subprocess
    from harness.measuring.strategies.base import resolve_options

    if args.compression is not None and args.chunks is None:
        args.chunks = "auto"
    options = {"block_rows": args.block_rows, "memory_budget": args.memory_budget,
               "chunk_cache_bytes": args.chunk_cache_bytes}
    options = {k: v for k, v in options.items() if v is not None}
    # Refuse bad input before generating files or probing: both can take minutes.
    if args.rounds < 1 or args.repeat < 1:
        print("error: --rounds and --repeat must be >= 1", file=sys.stderr)
        return 2
    if not args.timeout > 0:
        print(f"error: --timeout must be a positive number of seconds, got {args.timeout}",
              file=sys.stderr)
        return 2
    try:
        resolve_options(options)
        runs, skipped = plan(args)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    root = args.data_dir or default_root()
    try:
        for _, spec in runs:  # generate every file first: never inside a timed subprocess
            materialize(spec, root)
        roofline = None if args.no_roofline else machine.roofline(data_dir=root)
    except OSError as exc:  # no space, unwritable data directory: the message names the fix
        print(f"error: {exc.strerror if exc.strerror and exc.filename is None else exc}",
              file=sys.stderr)
        return 2
    caches = ("warm", "cold") if args.cache == "both" else (args.cache,)
    pooled: dict[tuple[str, str], list] = {}
    failures = []
    for cache in caches:
        for round_index in range(args.rounds):
            for name, spec in runs:
                if any(f[:2] == (name, cache) for f in failures):
                    continue
                print(f"measuring {name} ({cache}, round {round_index + 1}/{args.rounds})...",
                      file=sys.stderr, flush=True)
                try:
                    m = measure_in_subprocess(name, spec, cache=cache, repeat=args.repeat,
                                              root=root, check=not args.no_check,
                                              timeout_seconds=args.timeout, **options)
                except MeasurementError as exc:
                    failures.append((name, cache, str(exc)))
                    continue
                pooled.setdefault((name, cache), []).append(m)
    records = [combine(ms).to_record() for ms in pooled.values()]
    add_derived_columns(records, roofline)
    if args.format == "json":
        print(json.dumps(records, indent=1))
    else:
        print(format_table(records, roofline, skipped, failures))
    return 1 if failures else 0


def add_derived_columns(records: list[dict], roofline) -> None:
    """ratio_to_dense (same cache state, same run) and roofline_fraction, in place."""
    dense = {r["cache"]: r["seconds"] for r in records if r["strategy"] == "dense"}
    for r in records:
        r["ratio_to_dense"] = r["seconds"] / dense[r["cache"]] if r["cache"] in dense else None
        if roofline is None:
            r["roofline_gbps"] = r["roofline_fraction"] = None
            continue
        # Warm reads come from RAM (or the page cache); cold file reads from the disk. The
        # dense strategy's matrix is in RAM in both states.
        from_disk = r["cache"] == "cold" and r["strategy"] != "dense"
        r["roofline_gbps"] = roofline.disk_read_gbps if from_disk else roofline.memory_read_gbps
        r["roofline_fraction"] = r["gbps"] / r["roofline_gbps"]


def _mib(n) -> str:
    return f"{n / 2**20:8.1f}"


def format_table(records, roofline, skipped, failures) -> str:
    header = (f"{'strategy':17s} {'storage':9s} {'cache':5s} {'median ms':>9s} {'min ms':>8s} "
              f"{'x dense':>7s} {'GB/s':>6s} {'roof%':>6s} {'incr MiB':>8s} {'anon MiB':>8s} "
              f"{'file MiB':>8s} {'budg MiB':>8s} {'max|err|':>9s}")
    lines = [header, "-" * len(header)]
    for r in records:
        ratio = f"{r['ratio_to_dense']:7.2f}" if r["ratio_to_dense"] is not None else "      -"
        roof = f"{100 * r['roofline_fraction']:6.1f}" if r["roofline_fraction"] is not None else "     -"
        err = f"{r['max_abs_error']:9.2g}" if r["max_abs_error"] is not None else "        -"
        lines.append(
            f"{r['strategy']:17s} {r['storage']:9s} {r['cache']:5s} {1e3 * r['seconds']:9.3g} "
            f"{1e3 * r['seconds_min']:8.3g} {ratio} {r['gbps']:6.2f} {roof} "
            f"{_mib(r['increment_bytes'])} {_mib(r['anon_increment_bytes'])} "
            f"{_mib(r['file_increment_bytes'])} {_mib(r['budget_bytes'])} {err}")
    if roofline is not None:
        lines.append(f"roofline: memory {roofline.memory_read_gbps:.1f} GB/s, "
                     f"disk (cold) {roofline.disk_read_gbps:.2f} GB/s; a 'cold' read on a virtual "
                     "disk may still hit the host's cache")
    for name, reason in skipped:
        lines.append(f"skipped {name}: {reason}")
    for name, cache, message in failures:
        lines.append(f"FAILED {name} ({cache}): {message}")
    return "\n".join(lines)
