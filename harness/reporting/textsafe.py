"""Text from result files made safe for where it is shown: terminals and Markdown, CSV
spreadsheets, matplotlib labels; and the mode a freshly written output file should have.

Names and values in result files come from anywhere. ``plain_text`` drops control and format
characters (a terminal obeys escape sequences; bidirectional overrides reorder what a reader
sees), ``csv_cell`` keeps a cell from starting a spreadsheet formula, ``plain_label`` keeps
matplotlib from parsing ``$...$`` as math text (an error for what it cannot parse), and
``new_file_mode`` is what ``open`` would have given a new file under the process's umask.
"""

from __future__ import annotations

import os
import unicodedata

# Characters that start a formula in common spreadsheets (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain_text(value: object) -> str:
    """``value`` as text without control or format characters (tabs and line breaks become
    spaces), safe to print to a terminal or put in Markdown."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(" " if c in "\t\n\r" else c for c in text
                   if c in "\t\n\r" or unicodedata.category(c) not in ("Cc", "Cf", "Cs"))


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe;
    numbers (``-1.5``) and everything else are returned as they are."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def plain_label(value: object) -> str:
    """Text for a matplotlib label, shown as written: dollar signs escaped so that no part of
    it is parsed as math text."""
    return plain_text(value).replace("$", r"\$")


def current_umask() -> int:
    """The process's umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(existing: str | os.PathLike | None = None) -> int:
    """The permission bits for a file written in place of ``existing``: its own when it
    exists, else those ``open`` gives a new file (0o666 less the umask)."""
    if existing is not None:
        try:
            return os.stat(existing).st_mode & 0o7777
        except OSError:
            pass
    return 0o666 & ~current_umask()
