"""A tiny asv suite for the reporter's tests: what each commit changes lives in ``_knobs.py``.

The benchmark bodies never change between commits (so asv keeps one benchmark version); the
fixture builder rewrites ``_knobs.py`` to put in a deliberate slowdown, a deliberate extra
allocation, a changed tracked figure and a new failure.
"""

import time

from . import _knobs


class Sleep:
    """Wall time: sleeping is steady even on a busy machine."""

    params = [[1, 2], ["plain", "<script>alert(1)</script>"]]  # noqa: RUF012 (asv reads it)
    param_names = ["milliseconds", "label"]  # noqa: RUF012
    repeat = 7
    number = 1
    warmup_time = 0.0

    def setup(self, milliseconds, label):
        if milliseconds == 2 and label == "plain":
            raise NotImplementedError("skipped on purpose")

    def time_sleep(self, milliseconds, label):
        time.sleep(milliseconds * _knobs.SLOWDOWN / 1000.0)


class Steady:
    """An unchanged benchmark: 10 ms keeps sleep overshoot on a busy machine well under 10%."""

    repeat = 7
    number = 1
    warmup_time = 0.0

    def time_steady(self):
        time.sleep(0.010)


class Alloc:
    def peakmem_buffer(self):
        block = bytearray(_knobs.EXTRA_BYTES + 1_000_000)
        block[::4096] = b"x" * len(block[::4096])

    def track_items(self):
        return _knobs.TRACKED_ITEMS

    track_items.unit = "items"

    def track_breaks(self):
        if _knobs.BREAK:
            raise RuntimeError("broken on purpose")
        return 1.0
