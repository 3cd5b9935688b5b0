"""Faults that stay in the suite: SIGKILL of ``materialize``, ``publish`` and ``gate`` at seeded
random points (``KILL_POINTS`` each), and a full disk (a small tmpfs) under ``materialize``
and ``publish``.

After every kill: nothing half-written is trusted or served (a dataset either verifies
against its manifest's checksum or is not trusted and is regenerated; the site is the whole
old one or the whole new one), the next run recovers, and nothing outside the command's own
directories changed. A kill lands somewhere in the command's work: the child says when its
imports are done (it is forked from a forkserver that imported the harness), and the delay is drawn between 0 and the
duration of one whole run.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import time
from pathlib import Path

import pytest
from hostile import fake_asv_steps, gate_results, git_project, results_project, run_cli

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import cache, datasets

KILL_POINTS = 20
SEED = 1201


#: Children come from a forkserver: a fresh, single-threaded process that has imported the
#: harness once. Forking this test process instead would copy the locks that other threads
#: hold (a dask client's event loop, thread pools of earlier tests), and a child could hang.
_CHILDREN = multiprocessing.get_context("forkserver")
_CHILDREN.set_forkserver_preload(["harness.measuring.storage.datasets", "harness.reporting.publish",
                                  "harness.cli"])


def _run_quietly(work, args) -> None:
    status = 3
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        work(*args)
        status = 0
    finally:
        os._exit(status)


def in_child(work, *args) -> multiprocessing.process.BaseProcess:
    """Start ``work(*args)`` in a child with its output thrown away; it exits with status 0
    when ``work`` returned, 3 when it raised (or ``work``'s own ``os._exit`` status). The child
    is forked from the forkserver, whose imports are done, so every kill point lands inside the
    work itself."""
    child = _CHILDREN.Process(target=_run_quietly, args=(work, args))
    child.start()
    return child


def exit_status(child, timeout: float = 300.0) -> int:
    """Wait for ``child`` (at most ``timeout`` seconds: a hung child fails the test, never the
    whole run) and return its exit status."""
    child.join(timeout)
    if child.exitcode is None:
        child.kill()
        child.join()
        pytest.fail(f"a child did not finish within {timeout:g} s")
    return child.exitcode


def timed_run(work, *args) -> float:
    """Seconds one whole run of ``work`` takes in a child (which must succeed)."""
    began = time.perf_counter()
    assert exit_status(in_child(work, *args)) == 0
    return time.perf_counter() - began


def kill_after(delay: float, work, *args) -> None:
    child = in_child(work, *args)
    time.sleep(delay)
    child.kill()  # SIGKILL
    child.join()


def snapshot(directory: Path, skip: Path | None = None) -> dict[str, bytes]:
    """Every file under ``directory`` and its bytes, leaving out ``skip`` (the site), its
    staging directories and lock files: the command's own, cleaned up by its next run."""
    def own(path: Path) -> bool:
        if path.name.endswith(".lock") or path.name.endswith(".publish-lock"):
            return True
        return skip is not None and (path.is_relative_to(skip) or any(
            part.startswith(f".{skip.name}.staging-") for part in path.parts))

    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.is_symlink() and not own(p)}


# --------------------------------------------------------------------------------- materialize


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["raw", "hdf5"])
def test_killed_materialize_is_never_trusted_and_the_next_one_recovers(tmp_path, storage):
    root = tmp_path / "data"
    outside = tmp_path / "outside.txt"
    outside.write_text("not the harness's")
    spec = DatasetSpec((1500, 1000), "float64", storage=storage)
    whole = timed_run(datasets.materialize, spec, root)
    reference = datasets.dataset_path(spec, root).read_bytes() if storage == "raw" else None
    rng = random.Random(SEED)
    outcomes = {"finished": 0, "not trusted": 0}
    for _ in range(KILL_POINTS // 2):  # two storages: KILL_POINTS kills in all
        for path in root.rglob("*"):
            if path.is_file():
                path.unlink()
        kill_after(rng.uniform(0, whole), datasets.materialize, spec, root)
        path = datasets.dataset_path(spec, root)
        if datasets.is_materialized(spec, path.parent):
            assert datasets.verify(spec, root), "a sealed file fails its checksum"
            outcomes["finished"] += 1
        else:
            outcomes["not trusted"] += 1
        assert datasets.materialize(spec, root) == path and datasets.verify(spec, root)
        if reference is not None:
            assert path.read_bytes() == reference
        assert not list(path.parent.glob(".*.tmp")), "a killed writer's temporary stayed"
        assert outside.read_text() == "not the harness's"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "outside.txt"]
    # Some kills landed mid-write (else the test proved nothing about half-written files).
    assert outcomes["not trusted"] >= 1, outcomes


# --------------------------------------------------------------------------------- publish


def publish_with_fake_asv(config: Path, site: Path) -> None:
    from harness.reporting import publish

    publish._run = fake_asv_steps  # in the child only
    publish.publish(config, html_dir=site, plots=False)


def whole_site(site: Path) -> bool:
    report = site / "report" / "index.html"
    return ((site / ".harness-site.json").is_file() and report.is_file()
            and report.read_text().rstrip().endswith("</html>")
            and "harness-report-link" in (site / "index.html").read_text())


@pytest.mark.slow
def test_killed_publish_leaves_a_whole_site_and_the_next_one_recovers(tmp_path, monkeypatch):
    config = results_project(tmp_path / "project")
    site = tmp_path / "project" / "html"
    from harness.reporting import publish

    monkeypatch.setattr(publish, "_run", fake_asv_steps)
    publish.publish(config, html_dir=tmp_path / "warm-up", plots=False)  # imports done here
    whole = timed_run(publish_with_fake_asv, config, site)
    results_before = snapshot(tmp_path / "project", skip=site)
    assert whole_site(site)
    rng = random.Random(SEED)
    for _ in range(KILL_POINTS):
        kill_after(rng.uniform(0, whole), publish_with_fake_asv, config, site)
        assert site.is_dir() and whole_site(site), "a kill left no site or half a site"
        assert snapshot(tmp_path / "project", skip=site) == results_before
    timed_run(publish_with_fake_asv, config, site)
    assert whole_site(site)
    leftovers = [p.name for p in site.parent.iterdir() if ".staging-" in p.name]
    assert leftovers == []


# --------------------------------------------------------------------------------- gate


def gate_exit(root: Path, hashes: list[str]) -> None:
    """The gate's command line on ``root``'s results; the child exits with its status."""
    from harness.cli import main

    os.chdir(root)
    os._exit(main(["gate", *hashes, "--no-run"]))


@pytest.mark.slow
def test_killed_gate_changes_nothing_and_the_next_verdict_is_the_same(tmp_path, monkeypatch):
    root, hashes = git_project(tmp_path / "project")
    gate_results(root, hashes, slowdown=3.0)
    monkeypatch.chdir(root)
    assert run_cli("gate", *hashes, "--no-run")[0] == 1  # imports done here
    before = snapshot(root)
    began = time.perf_counter()
    status = exit_status(in_child(gate_exit, root, hashes))
    whole = time.perf_counter() - began
    assert status == 1  # a threefold slowdown: a regression
    rng = random.Random(SEED)
    for _ in range(KILL_POINTS):
        kill_after(rng.uniform(0, whole), gate_exit, root, hashes)
        assert snapshot(root) == before
    assert exit_status(in_child(gate_exit, root, hashes)) == 1


# --------------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs mounted under tmp_path (root only); skipped where mounting is refused."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or 'not permitted'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a filler file until the disk is full."""
    filler = directory / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_full_disk_during_materialize_says_so_and_keeps_what_was_there(small_disk,
                                                                        monkeypatch):
    from harness.cli import one_line

    small = DatasetSpec((64, 64), "float64")
    datasets.materialize(small, small_disk)
    before = snapshot(small_disk)
    monkeypatch.setattr(cache, "require_free_disk", lambda *args, **kwargs: None)
    with pytest.raises(OSError) as caught:
        datasets.materialize(DatasetSpec((2000, 1000), "float64"), small_disk)  # 16 MB
    assert "the disk is full" in one_line(caught.value)
    assert snapshot(small_disk) == before and datasets.verify(small, small_disk)
    assert not list(small_disk.rglob(".*.tmp"))


def test_full_disk_during_publish_says_so_and_keeps_the_old_site(small_disk, tmp_path,
                                                                 monkeypatch):
    from hostile import run_cli

    from harness.reporting import publish as publish_module

    monkeypatch.setattr(publish_module, "_run", fake_asv_steps)
    config = results_project(tmp_path / "project")
    site = small_disk / "site"
    status, _, err = run_cli("publish", "--config", str(config), "--html-dir", str(site),
                             "--no-plots")
    assert status == 0, err
    before = snapshot(site)
    filler = fill(small_disk)
    status, _, err = run_cli("publish", "--config", str(config), "--html-dir", str(site),
                             "--no-plots")
    assert status == 2
    assert "the disk is full" in err and "Traceback" not in err
    assert snapshot(site) == before
    assert sorted(p.name for p in small_disk.iterdir()) == sorted(
        [".site.publish-lock", "site", filler.name])
    json.loads((site / ".harness-site.json").read_text())
