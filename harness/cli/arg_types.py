"""argparse types shared by the commands: sizes in bytes, positive ratios, counts."""

from __future__ import annotations

import argparse
import math
import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "kib": 2**10, "ki": 2**10, "mib": 2**20, "mi": 2**20, "gib": 2**30, "gi": 2**30}


def parse_bytes(text: str) -> int:
    """'64MiB', '1 MiB', '8388608', '1GB' -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r} (try 64MiB or 8388608)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def positive_ratio(text: str) -> float:
    """argparse type for a factor such as 1.1 (a ratio after / before)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive ratio such as 1.1, got {text!r}")
    return value


def int_at_least(minimum: int, unit: str = ""):
    """argparse type for a whole number >= ``minimum`` (``unit`` only names it in errors)."""
    named = f" {unit}" if unit else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number{named} >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}{named}, got {value}")
        return value

    return parse
