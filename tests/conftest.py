"""Shared fixtures: scratch files of a given size, the Linux features the meter relies on, real
asv results (tests/asv_fixture) built once per test session, one asv run of the suite's ci
profile shared by the end-to-end and published-site tests, and one asv run of a project that
uses the meter's asv plugin (tests/meter_fixture). Every temporary file of the session,
the subprocesses' too (pip, asv, dask workers), lives under pytest's temporary directory."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from asv_fixture.make_asv_results import AsvProject, build_second_environment, cached_asv_project
from meter_fixture.make_meter_project import MeterProject, build_meter_project
from suite_asv import run_ci_profile

from harness.units import MB, MiB  # noqa: F401 - re-exported: tests import the units from here

# pytester: the meter plugin's pytest markers are tested by running pytest on small test files.
pytest_plugins = ("pytester",)

CLEAR_REFS_WRITABLE = os.access("/proc/self/clear_refs", os.W_OK)
requires_clear_refs = pytest.mark.skipif(
    not CLEAR_REFS_WRITABLE, reason="/proc/self/clear_refs is not writable here (not Linux?)"
)


# What pytest_configure changed, put back by pytest_unconfigure (pytest may run in-process).
_SAVED_TEMP_SETTINGS: dict[str, object] = {}
_TEMP_ENVIRONMENT = ("TMPDIR", "DASK_TEMPORARY_DIRECTORY")


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin has made its factory
def pytest_configure(config: pytest.Config) -> None:
    """Point the system temporary directory at one under this session's basetemp.

    Without it the tests left dask's ``dask-scratch-space`` and pip's build directories in the
    system's temporary directory. ``TMPDIR`` is inherited by subprocesses (pip, asv, dask
    workers), ``tempfile.tempdir`` covers this process (it may have cached the old answer), and
    dask's ``temporary-directory`` is where LocalCluster workers put their scratch space.
    """
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:  # pytest's tmpdir plugin disabled (-p no:tmpdir): leave things be
        return
    session_temp = factory.getbasetemp() / "tmp"  # basetemp first: it is found via TMPDIR
    session_temp.mkdir(exist_ok=True)
    _SAVED_TEMP_SETTINGS["tempdir"] = tempfile.tempdir
    for name in _TEMP_ENVIRONMENT:
        _SAVED_TEMP_SETTINGS[name] = os.environ.get(name)
        os.environ[name] = str(session_temp)
    tempfile.tempdir = str(session_temp)
    if "dask" in sys.modules:  # dask reads DASK_* variables once, at import
        import dask

        dask.config.set({"temporary-directory": str(session_temp)})


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _SAVED_TEMP_SETTINGS:
        return
    tempfile.tempdir = _SAVED_TEMP_SETTINGS.pop("tempdir")  # type: ignore[assignment]
    for name in _TEMP_ENVIRONMENT:
        value = _SAVED_TEMP_SETTINGS.pop(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value  # type: ignore[assignment]


def write_scratch_file(path: Path, nbytes: int, seed: int = 0) -> Path:
    """Write ``nbytes`` of non-zero, never-repeating bytes to ``path``, 4 MiB at a time.

    A multiplicative hash of the word index: as fast as memory (random bytes are 10x slower) and
    no two blocks alike, so a deduplicating virtual disk cannot shortcut the reads.
    """
    block_words = 4 * MiB // 8
    with open(path, "wb") as out:
        for first_word in range(0, (nbytes + 7) // 8, block_words):
            words = np.arange(first_word, first_word + block_words, dtype=np.uint64)
            words *= np.uint64(0x9E3779B97F4A7C15)
            words ^= np.uint64(seed)
            out.write(words.view(np.uint8)[: nbytes - first_word * 8])
    return path


@pytest.fixture
def scratch_file(tmp_path: Path) -> Callable[[int], Path]:
    """Factory: ``scratch_file(nbytes)`` -> path of a fresh file of that size under tmp_path."""
    counter = iter(range(1_000_000))

    def make(nbytes: int) -> Path:
        return write_scratch_file(tmp_path / f"scratch-{next(counter)}.bin", nbytes)

    return make


@pytest.fixture(scope="session")
def asv_project(tmp_path_factory: pytest.TempPathFactory) -> AsvProject:
    """A tiny asv project run on three commits (see tests/asv_fixture/make_asv_results.py)."""
    return cached_asv_project(tmp_path_factory.getbasetemp() / "asv_project")


@pytest.fixture(scope="session")
def asv_project_two_envs(asv_project, tmp_path_factory) -> tuple[AsvProject, str]:
    """A copy of ``asv_project`` whose last commit also ran in a second environment, where the
    sleep benchmark is 4x slower; (project, second environment's name)."""
    return build_second_environment(asv_project, tmp_path_factory.mktemp("two_envs") / "project")


@pytest.fixture(scope="session")
def suite_ci_run(tmp_path_factory: pytest.TempPathFactory):
    """The suite's ci profile run once through asv: (results frame, asv output, its directory,
    which holds asv.conf.json, results/ and html/)."""
    return run_ci_profile(tmp_path_factory.mktemp("asv_e2e"))


@pytest.fixture(scope="session")
def meter_project(tmp_path_factory: pytest.TempPathFactory) -> MeterProject:
    """A project that is not the harness, measured with the meter's asv plugin installed through
    asv's matrix, run once by asv on three commits (tests/meter_fixture/make_meter_project.py)."""
    return build_meter_project(tmp_path_factory.getbasetemp() / "meter_project")
