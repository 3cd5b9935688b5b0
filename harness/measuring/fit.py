"""The one fit policy: what a measurement may ask of this machine's RAM, disk and time.

The same thresholds hold for a generated matrix, a user's file, a copy of it and the asv
suite's combinations; every refusal says which limit and by how much.

- RAM: a strategy whose pass may need more than ``RAM_FRACTION`` of the RAM available now is
  not run. 0.6 (the user-file path used 0.8 before it joined this policy): the rest is the page
  cache of the file under test (a warm figure needs the file cached beside the strategy's own
  memory), the OS, and the other processes of the run (the reference, a dask cluster).
- Disk: a file is written only when the disk has its size + ``FREE_DISK_MARGIN``.
- Time: a measurement of ``repeat`` timed passes runs ``EXTRA_PASSES`` more (a warm-up with the
  opening metered, one metered in steady state, the check); it is not started when its
  estimate exceeds the timeout (``estimated_seconds``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import units

#: Share of the available RAM one measurement may plan to use.
RAM_FRACTION = 0.6
#: Free disk required beyond a file's size.
FREE_DISK_MARGIN = 0.10
#: Passes of a measurement beyond its timed ones: two metered, one checked.
EXTRA_PASSES = 3


def available_ram_bytes() -> int:
    """RAM available now (``psutil.virtual_memory().available``), in bytes."""
    import psutil

    return int(psutil.virtual_memory().available)


def ram_refusal(needed_bytes: int, available_bytes: int | None = None) -> str | None:
    """Why a pass needing ``needed_bytes`` of RAM must not run here, or None if it fits."""
    available = available_ram_bytes() if available_bytes is None else available_bytes
    if needed_bytes <= RAM_FRACTION * available:
        return None
    return (f"a pass needs about {units.human_bytes(needed_bytes)} of RAM, more than "
            f"{RAM_FRACTION:.0%} of the {units.human_bytes(available)} available")


def with_disk_margin(file_bytes: int) -> int:
    """The free disk a file of ``file_bytes`` needs (bytes)."""
    return int(file_bytes * (1 + FREE_DISK_MARGIN))


def free_disk_bytes(directory) -> int:
    """Free bytes on the disk of ``directory``, or of its nearest existing parent."""
    probe = Path(directory)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def estimated_seconds(pass_seconds: float, repeat: int) -> float:
    """Seconds a measurement of ``repeat`` timed passes of ``pass_seconds`` takes (about)."""
    return pass_seconds * (int(repeat) + EXTRA_PASSES)


def time_refusal(pass_seconds: float, repeat: int, timeout_seconds: float) -> str | None:
    """Why a measurement must not be started within ``timeout_seconds``, or None."""
    seconds = estimated_seconds(pass_seconds, repeat)
    if seconds <= timeout_seconds:
        return None
    return (f"would take about {units.human_seconds(seconds)} (over the "
            f"{units.human_seconds(timeout_seconds)} timeout; raise --timeout)")
