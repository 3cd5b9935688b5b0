"""Readahead hints: the window of ranges requested ahead of the reader, the switch that turns
them off, and that a hint on a file that is gone is no error."""

from __future__ import annotations

import threading

import pytest

from harness.measuring.strategies import readahead


class _AtOnce:
    """Stands for the background thread: runs each call when it is submitted."""

    @staticmethod
    def submit(function, *args):
        function(*args)


@pytest.fixture
def advised(monkeypatch):
    calls: list[list] = []
    monkeypatch.setattr(readahead, "advise", lambda ranges: calls.append(
        [r.offset for r in ranges]))
    monkeypatch.setattr(readahead, "_adviser", lambda: _AtOnce)
    return calls


def _ranges(count: int, size: int) -> list[readahead.Range]:
    return [readahead.Range("chunk", i * size, size) for i in range(count)]


def test_the_window_stays_that_many_bytes_ahead_of_the_reader(advised):
    hints = readahead.Readahead(_ranges(10, 4), window_bytes=12)
    for index in range(10):
        hints.reached(index)
    # Three ranges (12 bytes) first, then one more each time the reader moves on.
    assert advised[0] == [0, 4, 8]
    assert advised[1:] == [[12], [16], [20], [24], [28], [32], [36]]  # none past the end
    assert hints.advised == 10


def test_a_reader_that_jumps_past_the_window_restarts_it(advised):
    hints = readahead.Readahead(_ranges(10, 4), window_bytes=8)
    hints.reached(0)
    hints.reached(6)
    assert advised == [[0, 4], [24, 28]]


@pytest.mark.parametrize("setting,expected", [("0", 0), ("1048576", 1 << 20), ("", 32 << 20),
                                              ("lots", 32 << 20)])
def test_the_environment_sets_or_turns_off_the_window(monkeypatch, advised, setting, expected):
    monkeypatch.setenv(readahead.READAHEAD_ENV_VAR, setting)
    assert readahead.readahead_bytes() == expected
    readahead.Readahead(_ranges(3, 4)).reached(0)
    assert advised == ([] if expected == 0 else [[0, 4, 8]])


def test_a_hint_on_a_missing_file_is_no_error(tmp_path):
    readahead.advise([readahead.Range(tmp_path / "gone", 0, 4096), readahead.Range(-1, 0, 1)])


def test_the_hints_are_given_by_one_background_thread(tmp_path):
    path = tmp_path / "chunks"
    path.write_bytes(b"x" * 8192)
    hints = readahead.Readahead([readahead.Range(path, 0, 4096), readahead.Range(path, 4096, 4096)],
                                window_bytes=1 << 20)
    hints.reached(0)
    thread_names = readahead._adviser().submit(
        lambda: threading.current_thread().name).result(timeout=10)
    assert thread_names.startswith("readahead") and hints.advised == 2
