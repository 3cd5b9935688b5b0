"""argparse types shared by the commands: sizes in bytes, positive ratios, counts."""

from __future__ import annotations

import argparse
import math

from harness import units


def parse_bytes(text: str) -> int:
    """argparse type for a size: '64MiB', '1 MiB', '8388608', '1GB' -> bytes."""
    try:
        return units.parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
