"""Publish asv results as one site that works offline: asv's pages under a bundled UI, and our
report beside them.

``publish(config)`` runs ``asv publish`` into a fresh staging directory, installs
``asv-tachyon``'s self-contained UI over it (asv's own ``index.html`` loads jQuery, flot and
Bootstrap from CDNs and shows only an error without network; tachyon keeps it as
``index.legacy.html``), writes the reporter's HTML report to ``report/index.html`` (the
tidy frame it shows beside it, ``report/results.csv`` and ``.parquet``), links the two pages
both ways, and only then swaps the staging directory in for ``html_dir``: a killed
publish leaves the previous site whole, never a half-written one.

The pages fetch their JSON, so they need to be served over HTTP (``asv preview``, or any static
server), not opened as ``file://`` URLs.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.reporting.asvconfig import AsvConfigError, load_project

REPORT_DIR = "report"
DATA_FORMATS = ("csv", "parquet")  # written beside the report, linked from it
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
    target = Path(html_dir).resolve() if html_dir is not None else paths.html_dir
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
        _swap_in(site, target, staging)
    return Site(target, target / "index.html", target / REPORT_DIR / "index.html", len(frame),
                int(frame["commit"].nunique()), tuple(skipped))


def check_target(target: Path, protected: tuple[Path, ...]) -> None:
    """Refuse an html directory that publishing would destroy something in: the site replaces
    ``target`` as a whole, so it must not be (or hold) the results, the project or the
    repository, and an existing ``target`` must be an earlier site (it has index.json)."""
    for path in protected:
        if path == target or path.is_relative_to(target):
            raise PublishError(f"refusing to publish into {target}: the site replaces that "
                               f"directory as a whole, and it holds {path}; give --html-dir a "
                               "directory of its own, e.g. results/html")
    if target.exists() and (not target.is_dir() or (any(target.iterdir())
                                                    and not (target / "index.json").exists())):
        raise PublishError(f"refusing to replace {target}: it exists and is not a published "
                           "asv site (no index.json); remove it or choose another --html-dir")


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
    """A fresh directory beside ``target`` (same file system: the swap is two renames), removed
    with whatever is left in it; leftovers of killed runs are removed first."""
    prefix = f".{target.name}.staging-"
    for leftover in target.parent.glob(prefix + "*"):
        shutil.rmtree(leftover, ignore_errors=True)  # we hold the lock: nobody else's
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(site: Path, target: Path, staging: Path) -> None:
    """Replace ``target`` by ``site``. The old site moves into the staging directory first, so
    that ``target`` is at every moment either the whole old site, absent, or the whole new one."""
    if target.exists():
        os.rename(target, staging / "previous")
    os.rename(site, target)
