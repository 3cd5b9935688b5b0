"""Sizes in bytes: the unit constants, the one parser of sizes people write ('64 MiB') and the
binary form they are shown in ('64 MiB'). ``harness.units`` re-exports these names."""

from __future__ import annotations

import re

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
KB = 10**3  # decimal units, as in GB/s
MB = 10**6
GB = 10**9

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": KB, "kb": KB, "m": MB, "mb": MB, "g": GB,
                 "gb": GB, "t": 10**12, "tb": 10**12, "ki": KiB, "kib": KiB, "mi": MiB,
                 "mib": MiB, "gi": GiB, "gib": GiB, "ti": 1 << 40, "tib": 1 << 40}


def parse_bytes(text: str) -> int:
    """'64MiB', '1 MiB', '8388608', '1GB' -> bytes; ValueError naming the accepted forms."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"not a size in bytes: {text!r} (try 64MiB, 2GiB or 8388608)")
    return int(float(match.group(1)) * _SIZE_FACTORS[(match.group(2) or "").lower()])


def binary_bytes(size: float, decimals: int | None = None) -> str:
    """Bytes in binary units: 1048576 -> '1 MiB' (4 significant digits), or with ``decimals``
    a fixed number of decimals (1536, 1 -> '1.5 KiB'; whole bytes stay whole: '12 B')."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            break
        size /= 1024
    if decimals is None:
        return f"{size:.4g} {unit}"
    return f"{size:.{0 if unit == 'B' else decimals}f} {unit}"
