"""The gate's one error: it cannot judge (exit status 2 on the command line)."""

from __future__ import annotations


class GateError(Exception):
    """The gate cannot judge: the message names the problem and the fix (exit status 2)."""
