"""Read a JSON file that came from somewhere else (another machine, a cloned repository) as
hostile data.

``read_json(path)`` opens only regular files, without blocking (a FIFO named ``*.json`` would
otherwise wait for a writer forever) and under a size cap (``max_result_bytes``: 256 MB, or
``HARNESS_MAX_RESULT_BYTES``), so a symlink to ``/dev/zero`` is refused instead of read until
memory runs out. It parses with Python's json (which accepts asv's ``NaN``, ``Infinity`` and
``-Infinity``) and bounds what the parser can make: integers longer than 18 digits become
floats (possibly infinite: the caller's finiteness checks then name them), nesting too deep
for the parser is a clear error, and lone UTF-16 surrogates (not valid Unicode, so unprintable)
become U+FFFD. Every refusal is an ``UntrustedFileError`` whose message names the file and the
reason.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

MAX_RESULT_BYTES = 256_000_000  # bytes: far above any real asv result file (a few MB)
MAX_BYTES_VARIABLE = "HARNESS_MAX_RESULT_BYTES"
LONGEST_INTEGER = 18  # digits kept as a Python int; longer ones are read as floats
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class UntrustedFileError(ValueError):
    """The file cannot be used; the message names it and says why."""


def max_result_bytes() -> int:
    """The size cap in bytes: ``HARNESS_MAX_RESULT_BYTES`` when set to a positive integer."""
    raw = os.environ.get(MAX_BYTES_VARIABLE, "")
    try:
        value = int(raw)
    except ValueError:
        return MAX_RESULT_BYTES
    return value if value > 0 else MAX_RESULT_BYTES


def read_bytes(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes (default
    ``max_result_bytes()``); UntrustedFileError otherwise."""
    limit = max_result_bytes() if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UntrustedFileError(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFileError(f"{path}: not a regular file (a FIFO, device or socket); "
                                     "skipped")
        if info.st_size > limit:
            raise UntrustedFileError(
                f"{path}: {info.st_size} bytes, over the cap of {limit} bytes for one file; "
                f"set {MAX_BYTES_VARIABLE} to a larger number of bytes to read it")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:  # the file may grow while read: stop past the cap
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UntrustedFileError(
                    f"{path}: grew past the cap of {limit} bytes while read; set "
                    f"{MAX_BYTES_VARIABLE} to a larger number of bytes to read it")
        return b"".join(chunks)
    except OSError as exc:
        raise UntrustedFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _parse_int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= LONGEST_INTEGER else float(text)


def parse_json(text: str | bytes, name: str | os.PathLike) -> Any:
    """Parse JSON text of the file ``name`` with the bounds of the module docstring."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UntrustedFileError(f"{name}: not UTF-8 text ({exc.reason} at byte "
                                     f"{exc.start})") from None
    try:
        data = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise UntrustedFileError(f"{name}: JSON nested too deeply to read; the file is "
                                 "damaged or not an asv file") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise UntrustedFileError(f"{name}: not valid JSON ({exc}); the file is truncated or "
                                 "damaged") from None
    if _ESCAPED_SURROGATE.search(text):
        try:
            data = _without_lone_surrogates(data)
        except RecursionError:
            raise UntrustedFileError(f"{name}: JSON nested too deeply to read; the file is "
                                     "damaged or not an asv file") from None
    return data


def read_json(path: str | os.PathLike, limit: int | None = None) -> Any:
    """``parse_json(read_bytes(path, limit), path)``."""
    return parse_json(read_bytes(path, limit), Path(path))


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD; json
    already joined the valid pairs, so any surrogate left is a lone one."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_SURROGATE.sub("\ufffd", k): _without_lone_surrogates(v)
                for k, v in value.items()}
    return value
