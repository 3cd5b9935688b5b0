"""Publish asv results as one site that works offline: asv's pages under a bundled UI, and our
report beside them.

``publish(config)`` runs ``asv publish`` into a fresh staging directory, installs
``asv-tachyon``'s self-contained UI over it (asv's own ``index.html`` loads jQuery, flot and
Bootstrap from CDNs and shows only an error without network; tachyon keeps it as
``index.legacy.html``), writes the reporter's HTML report to ``report/index.html`` (the
tidy frame it shows beside it, ``report/results.csv`` and ``.parquet``), links the two pages
both ways, marks the site as its own (``SITE_MARKER``), and only then swaps it in for
``html_dir`` in one atomic exchange: a killed publish leaves the previous site whole, never a
half-written one, and the next publish puts back an old site a kill left aside. An existing
``html_dir`` without the marker is never replaced.

The pages fetch their JSON, so they need to be served over HTTP (``asv preview``, or any static
server), not opened as ``file://`` URLs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.reporting.asvconfig import AsvConfigError, load_project, resolve_parent

REPORT_DIR = "report"
DATA_FORMATS = ("csv", "parquet")  # written beside the report, linked from it
SITE_MARKER = ".harness-site.json"  # written into every site: only such a directory is replaced
MARKER_OWNER = "python -m harness publish"
STAGING_MARKER = ".harness-staging"  # in each staging directory: only those are cleaned up
REPORT_LINK_ID = "harness-report-link"
COMMAND_TIMEOUT = 600  # seconds for `asv publish` on a large history


class PublishError(RuntimeError):
    """Publishing cannot go on; the message names the problem and the fix."""


@dataclass(frozen=True)
class Site:
    """Where ``publish`` put things (absolute paths) and what it published."""

    html_dir: Path
    index: Path  # the UI's entry page
    report: Path
    results: int  # result rows (benchmark x parameters x result file)
    commits: int
    warnings: tuple[str, ...]  # unreadable result files, skipped by name


def publish(config: str | os.PathLike = "asv.conf.json", html_dir: str | os.PathLike | None = None,
            title: str = "Benchmark report", plots: bool = True,
            log: Callable[[str], None] = lambda message: None) -> Site:
    """Build the site for ``config``'s results into ``html_dir`` (default: the config's).

    ``log`` receives one line per step. Raises ``PublishError`` when there are no results,
    or when ``asv publish`` or the UI install fails (with the tail of their output).
    """
    from harness.reporting.report import render, write_atomically
    from harness.reporting.results import forwarded_warnings, load

    try:
        paths = load_project(config)
    except AsvConfigError as exc:
        raise PublishError(str(exc)) from None
    # Not resolve(): that would follow a symlinked html_dir, which check_target refuses.
    target = resolve_parent(html_dir) if html_dir is not None else paths.html_dir
    check_target(target, protected=(paths.results_dir, paths.config_path.parent,
                                    paths.repo_dir))
    if not paths.results_dir.is_dir():
        raise PublishError(f"no results directory {paths.results_dir}; run `make bench` (or "
                           "`asv run`) first")
    skipped: list[str] = []
    with forwarded_warnings(skipped.append):
        frame = load(paths.results_dir)
    if frame.empty:
        raise PublishError(f"no asv results in {paths.results_dir}; run `make bench` (or "
                           "`asv run`) first")

    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target), _staging(target) as staging:
        site = staging / "site"
        log(f"asv publish -> {target}")
        _run([sys.executable, "-m", "asv", "publish", "--no-pull", "--config", str(paths.config_path),
              "--html-dir", str(site)], "asv publish")
        log("installing the offline UI (asv-tachyon)")
        _run([sys.executable, "-m", "asv_tachyon", "install", str(site)], "asv-tachyon install")
        _write_tachyon_extras(site, paths.repo_dir)
        for page in ("index.html", "index.legacy.html"):
            if (site / page).exists():
                add_report_link(site / page, f"{REPORT_DIR}/index.html")
        log(f"rendering the report ({len(frame)} results)")
        downloads = [(f"results.{fmt}", f"results.{fmt}") for fmt in DATA_FORMATS]
        for name, _ in downloads:  # the report links the tidy frame beside it
            write_atomically(site / REPORT_DIR / name, render(frame, name.split(".")[-1]))
        content = render(frame, "html", title=title, plots=plots, links=[
            ("Benchmark graphs (asv site)", "../index.html"),
            ("asv's classic pages (need network)", "../index.legacy.html")],
            downloads=downloads)
        write_atomically(site / REPORT_DIR / "index.html", content)
        write_site_marker(site)
        _swap_in(site, target, staging)
    return Site(target, target / "index.html", target / REPORT_DIR / "index.html", len(frame),
                int(frame["commit"].nunique()), tuple(skipped))


def check_target(target: Path, protected: tuple[Path, ...]) -> None:
    """Refuse an html directory that publishing would destroy something in: the site replaces
    ``target`` as a whole, so it must not be (or hold) the results, the project or the
    repository, and an existing, non-empty ``target`` must be a site this command made (it
    holds the ``SITE_MARKER`` publish writes: an ``index.json`` alone proves nothing)."""
    for path in protected:
        if path == target or path.is_relative_to(target):
            raise PublishError(f"refusing to publish into {target}: the site replaces that "
                               f"directory as a whole, and it holds {path}; give --html-dir a "
                               "directory of its own, e.g. results/html")
    if target.is_symlink() or (target.exists() and (not target.is_dir() or (
            any(target.iterdir()) and not is_published_site(target)))):
        raise PublishError(f"refusing to replace {target}: it exists and is not a published "
                           f"asv site made by this command (no {SITE_MARKER}); remove it or "
                           "choose another --html-dir")


def is_published_site(directory: Path) -> bool:
    """True when ``directory`` holds the marker ``publish`` writes into every site it makes."""
    marker = directory / SITE_MARKER
    try:
        return marker.is_file() and not marker.is_symlink() and \
            json.loads(marker.read_text(encoding="utf-8")).get("made_by") == MARKER_OWNER
    except (OSError, ValueError, AttributeError):
        return False


def write_site_marker(site: Path) -> None:
    (site / SITE_MARKER).write_text(json.dumps({"made_by": MARKER_OWNER}) + "\n",
                                    encoding="utf-8")


def add_report_link(page: Path, href: str) -> None:
    """Put a fixed link to our report on an asv page (once; re-running does not add another)."""
    text = page.read_text(encoding="utf-8")
    if REPORT_LINK_ID in text:
        return
    link = (f'<a id="{REPORT_LINK_ID}" href="{html.escape(href)}" style="position:fixed;'
            "right:1em;bottom:1em;z-index:10000;padding:.45em .9em;border-radius:.4em;"
            "background:#0f766e;color:#fff;font:600 14px sans-serif;text-decoration:none;"
            'box-shadow:0 1px 4px rgba(0,0,0,.3)">Harness report &rarr;</a>')
    marker = "</body>"
    position = text.lower().rfind(marker)
    text = text[:position] + link + text[position:] if position >= 0 else text + link
    page.write_text(text, encoding="utf-8")


def _write_tachyon_extras(site: Path, repo: Path) -> None:
    """commits.json (hash -> commit subject, shown on the graphs' points), and empty profile and
    muted-regression lists: the UI fetches these three when present, and each one absent is a
    404 in the browser's console."""
    index = json.loads((site / "index.json").read_text())
    hashes = sorted(set(index.get("revision_to_hash", {}).values()))
    subjects = commit_subjects(repo, hashes)
    (site / "commits.json").write_text(json.dumps({"by_hash": subjects}, indent=1))
    for name, empty in (("profiles.json", {"paths": {}}), ("regressions-ignore.json", [])):
        (site / name).write_text(json.dumps(empty))


def commit_subjects(repo: Path, hashes: list[str]) -> dict[str, str]:
    """{full hash: first line of its message} for the hashes git knows in ``repo`` (none when
    ``repo`` is not a git checkout)."""
    if not hashes:
        return {}
    # --stdin with --no-walk: one git call; --ignore-missing: results of commits that are not
    # in this clone (another branch, a rewritten history) are left out instead of failing.
    try:
        proc = subprocess.run(["git", "-C", str(repo), "log", "--no-walk=unsorted", "--stdin",
                               "--ignore-missing", "--format=%H%x1f%s"],
                              input="\n".join(hashes) + "\n", capture_output=True, text=True,
                              check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}  # no git, or a hung one: the graphs just go without commit subjects
    if proc.returncode != 0:
        return {}
    pairs = (line.split("\x1f", 1) for line in proc.stdout.splitlines() if "\x1f" in line)
    return {commit: subject for commit, subject in pairs}


def _run(command: list[str], what: str) -> None:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PublishError(f"{what} did not finish within {COMMAND_TIMEOUT} s; the previous "
                           "site is kept") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise PublishError(f"{what} failed (exit status {proc.returncode}):\n{tail}")


@contextlib.contextmanager
def _exclusive(target: Path):
    """One publish at a time per site: a second one waits instead of interleaving the swap."""
    lock_path = target.parent / f".{target.name}.publish-lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _staging(target: Path):
    """A fresh directory beside ``target`` (same file system: the swap is a rename), removed
    with whatever is left in it. Leftovers of killed runs for this target are handled first:
    an old site one of them still holds comes back to ``target`` when ``target`` is missing
    (``recover``), then they are removed. Only directories this function made are touched."""
    recover(target)
    for leftover in staging_leftovers(target):
        _remove_staging(leftover)  # we hold the lock: nobody else's
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), dir=target.parent))
    try:
        (staging / STAGING_MARKER).write_text(str(target) + "\n", encoding="utf-8")
        yield staging
    finally:
        if (staging / PREVIOUS).exists() and not target.exists():
            os.rename(staging / PREVIOUS, target)  # the swap was cut short: keep the old site
        _remove_staging(staging)


def _remove_staging(staging: Path) -> None:
    """Remove a staging directory, its marker last: a kill at any point leaves a directory
    that ``staging_leftovers`` still recognises (marked, or empty), never an unmarked half."""
    for entry in staging.iterdir():
        if entry.name == STAGING_MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    (staging / STAGING_MARKER).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        staging.rmdir()


PREVIOUS = "previous"  # the old site, inside the staging directory, during the swap


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.staging-"


def staging_leftovers(target: Path) -> list[Path]:
    """Staging directories of earlier publishes to ``target``: named after it exactly (no glob:
    ``site[1]`` must not match ``site1``'s) and holding the staging marker that names
    ``target`` (or empty: killed before the marker was written)."""
    prefix = _staging_prefix(target)
    found = []
    for entry in os.scandir(target.parent):
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        if not re.fullmatch(r"[a-z0-9_]{8}", entry.name[len(prefix):]):
            continue  # not mkdtemp's suffix: perhaps another site's staging
        path = Path(entry.path)
        marker = path / STAGING_MARKER
        expected = str(target) + "\n"
        try:
            owner = marker.read_text(encoding="utf-8") if marker.is_file() else ""
            alone = {p.name for p in path.iterdir()} <= {STAGING_MARKER}
        except (OSError, UnicodeDecodeError):
            continue
        # Ours: the marker names this target; or killed while making the directory or
        # writing the marker (nothing else in it, the marker a beginning of the name).
        if owner == expected or (alone and expected.startswith(owner)):
            found.append(path)
    return found


def recover(target: Path) -> Path | None:
    """Put back the old site a killed publish left in its staging directory, when ``target``
    is missing; the path restored, or None."""
    if target.exists():
        return None
    for leftover in staging_leftovers(target):
        previous = leftover / PREVIOUS
        if previous.is_dir() and is_published_site(previous):
            os.rename(previous, target)
            return target
    return None


def _swap_in(site: Path, target: Path, staging: Path) -> None:
    """Replace ``target`` by ``site``: one atomic exchange where the kernel offers it
    (renameat2 RENAME_EXCHANGE), so ``target`` is the whole old site, then the whole new one.
    Elsewhere the old site moves into the staging directory first and a later publish puts it
    back (``recover``) if the process dies before the new one is in."""
    if target.exists() and _exchange(site, target):
        return  # the old site is now at ``site``, inside the staging directory
    if target.exists():
        os.rename(target, staging / PREVIOUS)
    os.rename(site, target)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 with RENAME_EXCHANGE); False where the
    system call or the flag is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(b))
