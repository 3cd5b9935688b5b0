"""``python -m harness machine``: print this machine's fingerprint and measured roofline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness.cli.arg_types import int_at_least
from harness.units import MiB, human_bytes, human_gbps, human_seconds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "machine",
        help="print the machine fingerprint and its memory/disk read bandwidth (roofline)",
        description=(
            "Print what can move a figure on this machine (CPU, RAM, kernel, data directory's "
            "filesystem, library versions, HDF5 chunk cache, BLAS threads) and measure, in a few "
            "seconds, memory read bandwidth and cold sequential disk read bandwidth in GB/s, "
            "and each codec's single-core decode rate on the harness's own values."
        ),
    )
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")
    parser.add_argument("--data-dir", default=None,
                        help="directory whose disk is probed; a scratch file is written there "
                             "and deleted (default: $HARNESS_DATA_DIR or the harness cache dir)")
    parser.add_argument("--no-roofline", action="store_true",
                        help="print the fingerprint only, without the bandwidth probes")
    parser.add_argument("--disk-mib", type=int_at_least(1, "MiB"), default=None,
                        help="size of the disk probe's scratch file in MiB (default: 384)")
    parser.add_argument("--memory-mib", type=int_at_least(1, "MiB"), default=None,
                        help="size of the in-RAM array the memory probe reads, in MiB "
                             "(default: 512)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.measuring.meters.decode_rates import decode_rate_gbps
    from harness.measuring.meters.machine import DataDirError, fingerprint, roofline
    from harness.measuring.storage import codecs

    report: dict[str, Any] = {"fingerprint": fingerprint(args.data_dir)}
    if not args.no_roofline:
        sizes = {}
        if args.disk_mib is not None:
            sizes["disk_bytes"] = args.disk_mib * MiB
        if args.memory_mib is not None:
            sizes["memory_bytes"] = args.memory_mib * MiB
        try:
            report["roofline"] = roofline(args.data_dir, **sizes).to_dict()
        except DataDirError as exc:
            print(f"error: {exc.strerror or exc}", file=sys.stderr)
            return 2
        # GB/s of decoded bytes on one core, per codec the thread-pool readers decode.
        report["decode_rates"] = {name: decode_rate_gbps(name) for name in codecs.COMPRESSED_NAMES
                                  if codecs.decodable(name)}
    if args.format == "json":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    return 0


def render_text(report: dict[str, Any]) -> str:
    """The fingerprint and roofline as aligned ``name: value`` lines."""
    fp = report["fingerprint"]
    data = fp["data_dir"]
    pools = ", ".join(
        f"{p['internal_api']} {p['version']} ({p['architecture']}, {p['num_threads']} threads)"
        for p in fp["thread_pools"]
    ) or "none found"
    rows = [
        ("CPU", f"{fp['cpu_model']} ({fp['machine']})"),
        ("cores", (f"{fp['usable_cores']} usable, {fp['logical_cores']} logical, "
                  f"{fp['physical_cores']} physical")),
        ("RAM", (f"{human_bytes(fp['ram_bytes'])} "
                f"({human_bytes(fp['ram_available_bytes'])} available), "
                f"swap {human_bytes(fp['swap_bytes'])}")),
        ("kernel", (f"{fp['os']} {fp['kernel']}, transparent hugepages: "
                   f"{fp['transparent_hugepages']}")),
        ("data dir", (f"{data['path']} on {data['fstype']} ({data['device']} at "
                     f"{data['mountpoint']}), {human_bytes(data['free_bytes'])} free")),
        ("python", f"{fp['python']} ({fp['python_implementation']})"),
        ("numpy / scipy", f"{fp['numpy']} / {fp['scipy']}"),
        ("h5py / HDF5", (f"{fp['h5py']} / {fp['hdf5']}, default chunk cache "
                        f"{human_bytes(fp.get('hdf5_default_chunk_cache_bytes'))}")),
        ("hdf5plugin", str(fp["hdf5plugin"])),
        ("BLAS", pools),
    ]
    if fp["environment"]:
        rows.append(("environment", " ".join(f"{k}={v}" for k, v in fp["environment"].items())))
    roof = report.get("roofline")
    if roof:
        rows += [
            ("memory read", (f"{human_gbps(roof['memory_read_gbps'])} best, "
                            f"{human_gbps(roof['memory_read_median_gbps'])} median "
                            f"(float32 A @ x over {human_bytes(roof['memory_probe_bytes'])}); "
                            f"one core: {human_gbps(roof['memory_read_one_thread_gbps'])}")),
            ("disk read (cold)", (f"{human_gbps(roof['disk_read_gbps'])} best of "
                                 f"{len(roof['disk_read_seconds'])} sequential reads "
                                 f"({roof.get('disk_best_pattern') or 'read'}; median "
                                 f"{human_gbps(roof.get('disk_read_median_gbps'))}) of "
                                 f"{human_bytes(roof['disk_probe_bytes'])} after eviction "
                                 f"(resident before: {roof['disk_resident_before_read']:.1%}; "
                                 "a virtual disk's host may still cache)")),
            ("probes took", human_seconds(roof["probe_seconds"])),
        ]
    rates = report.get("decode_rates")
    if rates:
        rows.append(("decode (one core)", ", ".join(f"{name} {human_gbps(rate)}"
                                                    for name, rate in rates.items())))
    width = max(len(name) for name, _ in rows)
    return "".join(f"{name:>{width}}: {value}\n" for name, value in rows)

