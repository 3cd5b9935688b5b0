"""The CPU's last-level cache size (bytes), from Linux's sysfs.

A pass over a matrix that fits this cache can run at the cache's bandwidth, not memory's, so a
memory-roof percentage for it means nothing (this machine showed such passes at 103 % and
357 % of the memory roof). ``last_level_cache_bytes()`` is None where sysfs does not say.
"""

from __future__ import annotations

import functools
from pathlib import Path

CACHE_DIRECTORY = Path("/sys/devices/system/cpu/cpu0/cache")
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int | None:
    """'32768K' -> 33554432, '512K' -> 524288, '8M' -> 8388608; None for anything else."""
    text = text.strip().upper()
    scale = _UNITS.get(text[-1:], 1) if text else 1
    digits = text[:-1] if text[-1:] in _UNITS else text
    return int(digits) * scale if digits.isdigit() else None


@functools.cache
def last_level_cache_bytes(directory: Path = CACHE_DIRECTORY) -> int | None:
    """Size of the highest-level cache of CPU 0 (bytes), or None."""
    best: tuple[int, int] | None = None
    for index in sorted(directory.glob("index*")):
        try:
            level = int((index / "level").read_text().strip())
            size = parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if size is not None and (best is None or level > best[0]):
            best = (level, size)
    return best[1] if best else None
