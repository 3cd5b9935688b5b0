"""Units and their human forms: the one place where bytes, seconds and GB/s become text.

Sizes are bytes (binary prefixes when shown: KiB, MiB, GiB), times seconds, throughput GB/s
(1e9 bytes per second). Two display styles exist on purpose: asv's own (``human_value``:
'3.09±0.01ms', '97M', what ``asv compare`` prints, so our comparison tables read like asv's)
and the harness's (``human_bytes`` / ``human_seconds``: '1.5 KiB', '15.3 ms', for our tables).
Missing figures (None, NaN) show as '-' in ours and 'n/a' in asv's style.
"""

from __future__ import annotations

import math

# The byte units, their parser and their binary form are the meter's (standard library only),
# so that its pytest marker reads a limit as the harness reads --memory-budget.
from asv_bench_harness.units import GB, KB, MB, GiB, KiB, MiB, binary_bytes, parse_bytes

__all__ = ["GB", "KB", "MB", "GiB", "KiB", "MiB", "binary_bytes", "gbps_number", "human_bytes",
           "human_difference", "human_gbps", "human_seconds", "human_value", "parse_bytes"]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def human_bytes(n) -> str:
    """1536 -> '1.5 KiB' (binary units, one decimal); None or NaN -> '-'."""
    return "-" if _missing(n) else binary_bytes(float(n), decimals=1)


def human_seconds(s) -> str:
    """0.0153 -> '15.3 ms', 2.5 -> '2.50 s', 9e-5 -> '90 us'; None or NaN -> '-'."""
    if _missing(s):
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def gbps_number(gbps, decimals: int | None = None) -> str:
    """GB/s without the unit, for a column whose header names it: 12.345 -> '12.3' (three
    significant digits), or with ``decimals`` a fixed number of decimals (28, 1 -> '28.0');
    None or NaN -> '-'."""
    if _missing(gbps):
        return "-"
    return f"{gbps:.3g}" if decimals is None else f"{gbps:.{decimals}f}"


def human_gbps(gbps, decimals: int | None = None) -> str:
    """12.345 -> '12.3 GB/s' (three significant digits, or ``decimals`` fixed as in
    ``gbps_number``: 28, 1 -> '28.0 GB/s'); None or NaN -> '-'."""
    return "-" if _missing(gbps) else f"{gbps_number(gbps, decimals)} GB/s"


def human_value(value: float | None, unit: str | None, err: float | None = None) -> str:
    """asv's display for seconds and bytes ('3.09±0.01ms', '97M', 'n/a'); other units as 4
    significant digits and the unit ('12.5 GB/s')."""
    if err is not None and math.isnan(err):
        err = None
    if unit in ("seconds", "bytes") or _missing(value):
        from asv import util as asv_util  # asv's formatter: only the reporting side needs asv

        return asv_util.human_value(value, unit or "", err=err)
    suffix = "" if unit in (None, "", "unit") else f" {unit}"
    spread = f"±{err:.2g}" if err is not None else ""
    return f"{value:.4g}{spread}{suffix}"


def human_difference(difference: float | None, unit: str | None) -> str:
    """Signed difference in asv's units ('+60.3M' bytes, '+2.00ms'); 'n/a' when missing."""
    if _missing(difference):
        return "n/a"
    sign = "+" if difference > 0 else "-" if difference < 0 else ""
    return sign + human_value(abs(difference), unit)
