"""Hostile result files: each case ends with a warning naming the file (or one clear line and
exit status 2), the other files still loaded, never a traceback, a hang or a memory blow-up.

Cases that used to exhaust memory run the command in a child process under an address-space
limit, so that a regression fails the test instead of the machine.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hostile import (
    GOOD_ROW,
    REPO,
    document,
    gate_results,
    git_project,
    good_file,
    run_cli,
    write,
)

from harness.reporting import compare as compare_module
from harness.reporting.results import ResultsFileWarning, load

CHILD_MEMORY_LIMIT = 3 << 30  # bytes of address space for a command run in a child process


def run_cli_limited(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m harness ARGV`` in a child limited to CHILD_MEMORY_LIMIT of address space."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_LIMIT, CHILD_MEMORY_LIMIT))

    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=cwd, env=env, check=False,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


# ----------------------------------------------------------------------- 1: non-finite history


def infinite_history(directory: Path) -> Path:
    """Three commits of one benchmark whose values are 1, 2 and Infinity."""
    for k, value in enumerate([1.0, 2.0, math.inf]):
        commit = f"{k + 1:x}" * 12
        write(directory / "box", f"{commit[:8]}-env-a.json", document(
            {"suite.T.time_a": [[value], [], "v1"]}, commit=commit,
            date=1704000000000 + k * 86400000))
    return directory


def test_non_finite_values_never_reach_step_detection(tmp_path, monkeypatch):
    seen = []
    real = compare_module.step_detect.detect_steps

    def checked(y, w=None):
        seen.append(list(y))
        assert all(math.isfinite(v) for v in y), f"non-finite series reached detect_steps: {y}"
        return real(y, w)

    monkeypatch.setattr(compare_module.step_detect, "detect_steps", checked)
    with pytest.warns(ResultsFileWarning, match="Infinity"):
        frame = load(infinite_history(tmp_path))
    compare_module.regressions(frame)
    assert seen == [[1.0, 2.0]]


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["history", "--regressions"], ["report", "--no-plots"]])
def test_infinite_history_commands_finish_and_name_the_file(tmp_path, argv):
    infinite_history(tmp_path / "results")
    proc = run_cli_limited(*argv, "results", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert "33333333-env-a.json" in proc.stderr


# ----------------------------------------------------------------- 2: huge parameter product


def test_parameter_product_is_checked_before_expanding(tmp_path):
    values = [repr(str(k)) for k in range(1000)]
    bad = write(tmp_path / "box", "abcdef01-env-a.json", document(
        {"suite.T.time_a": [[1.0], [values, values, values], "v1"]}))
    assert bad.stat().st_size > 20_000
    good_file(tmp_path / "box")
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.warns(ResultsFileWarning, match="abcdef01-env-a.json.*1000000000"):
            frame = load(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000  # bytes: nothing of the billion combinations was built
    assert frame["commit"].tolist() == ["12345678aaaa"]


# ----------------------------------------------------------------- 3: special files


def test_fifo_is_skipped_by_name_without_blocking(tmp_path):
    good_file(tmp_path / "box")
    fifo = tmp_path / "box" / "abcdef01-env-a.json"
    os.mkfifo(fifo)
    outcome = {}

    def target():
        with pytest.warns(ResultsFileWarning, match="abcdef01-env-a.json.*not a regular file"):
            outcome["frame"] = load(tmp_path)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():  # unblock the reader so that the test process can end
        with open(fifo, "w"):
            pass
        pytest.fail("the loader blocked on a FIFO")
    assert len(outcome["frame"]) == 1


def test_symlink_to_dev_zero_is_skipped(tmp_path):
    good_file(tmp_path / "box")
    (tmp_path / "box" / "abcdef01-env-a.json").symlink_to("/dev/zero")
    with pytest.warns(ResultsFileWarning, match="abcdef01-env-a.json.*not a regular file"):
        frame = load(tmp_path)
    assert len(frame) == 1


def test_file_over_the_size_cap_is_named_with_the_cap_and_how_to_raise_it(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("HARNESS_MAX_RESULT_BYTES", "1000")
    good_file(tmp_path / "box")
    write(tmp_path / "box", "abcdef01-env-a.json",
          document({f"suite.T.time_{k}": [[1.0], [], "v1"] for k in range(100)}))
    with pytest.warns(ResultsFileWarning,
                      match=r"abcdef01-env-a.json.*1000 bytes.*HARNESS_MAX_RESULT_BYTES"):
        frame = load(tmp_path)
    assert len(frame) == 1


# ----------------------------------------------------------------- 5: odd values, one file each


FIVE = {
    "date 1e300": lambda: json.dumps(document(GOOD_ROW, date=1e300)),
    "date Infinity": lambda: json.dumps(document(GOOD_ROW, date=math.inf)),
    "400-digit integer": lambda: json.dumps(document(
        {"suite.T.time_a": [[int("9" * 400)], [], "v1"]})),
    "nesting 100k deep": lambda: json.dumps(document({}))[:-1] + ', "deep": '
    + "[" * 100_000 + "]" * 100_000 + "}",
    "lone surrogate in a name": lambda: json.dumps(document(
        {"suite.T.time_\ud800": [[0.25], [], "v1"]})),
    "peakmem Infinity": lambda: json.dumps(document(
        {"suite.T.peakmem_a": [[math.inf], [], "v1"]})),
    "null inside samples": lambda: json.dumps(document(
        {"suite.T.time_a": [[0.5], [], "v1", None, None, None, None, None, None, None, None,
                            [[0.5, None, 0.4]]]})),
}


@pytest.mark.parametrize("case", sorted(FIVE))
@pytest.mark.parametrize("command", [["report", "--no-plots", "-f", "md"], ["summary"],
                                     ["history", "--regressions"], ["history"]])
def test_odd_values_in_one_file_never_traceback_and_keep_the_others(tmp_path, case, command,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    good_file(tmp_path / "results" / "box", commit="12345678aaaa", date=1704000000000)
    good_file(tmp_path / "results" / "box", commit="23456789bbbb", date=1704100000000)
    write(tmp_path / "results" / "box", "abcdef01-env-a.json", FIVE[case]())
    status, out, err = run_cli(*command, "results")
    assert "Traceback" not in err and "Traceback" not in out
    assert status in (0, 2), err
    if command[0] != "summary" or status == 0:
        assert status == 0, err
    # The two good commits are still there.
    if command == ["history"]:
        assert "12345678" in out and "23456789" in out


def test_bad_date_discards_only_its_own_file(tmp_path):
    good_file(tmp_path / "box")
    write(tmp_path / "box", "abcdef01-env-a.json", document(GOOD_ROW, date=1e300))
    with pytest.warns(ResultsFileWarning, match="abcdef01-env-a.json.*'date'"):
        frame = load(tmp_path)
    assert frame["commit"].tolist() == ["12345678aaaa"]


def test_huge_integer_and_deep_nesting_are_named(tmp_path):
    write(tmp_path / "box", "abcdef01-env-a.json", FIVE["400-digit integer"]())
    write(tmp_path / "box", "bcdef012-env-a.json", FIVE["nesting 100k deep"]())
    good_file(tmp_path / "box")
    with pytest.warns(ResultsFileWarning) as caught:
        frame = load(tmp_path)
    messages = " ".join(str(w.message) for w in caught)
    assert "abcdef01-env-a.json" in messages and "bcdef012-env-a.json" in messages
    # The 400-digit result is read as an infinity, so as failed; the deep file is skipped.
    assert frame.set_index("commit")["status"].to_dict() == {"12345678aaaa": "ok",
                                                             "abcdef0123456789": "failed"}


def test_null_and_non_finite_samples_are_dropped_with_a_warning(tmp_path):
    write(tmp_path / "box", "abcdef01-env-a.json", FIVE["null inside samples"]())
    with pytest.warns(ResultsFileWarning, match="abcdef01-env-a.json.*samples"):
        frame = load(tmp_path)
    assert list(frame["samples"].iloc[0]) == [0.5, 0.4]


def test_list_type_in_benchmarks_json_is_ignored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "results", "benchmarks.json", {
        "suite.T.time_a": {"type": ["time"], "unit": ["s"], "param_names": [], "version": "v1"},
        "version": 2})
    good_file(tmp_path / "results" / "box")
    status, out, err = run_cli("report", "--no-plots", "-f", "md", "results")
    assert status == 0 and "Traceback" not in err
    assert "suite.T.time\\_a" in out


def test_machine_named_like_math_text_plots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = document({"dense.DenseMatvec.track_gbps": [[12.5], [["'$\\bar{'"]], "v1"],
                     "machine.Roofline.track_memory_read_gbps": [[30.0], [], "v1"]})
    data["params"]["machine"] = "$\\foo$"
    write(tmp_path / "results" / "box", "abcdef01-env-a.json", data)
    status, out, err = run_cli("report", "-f", "html", "results")
    assert status == 0, err
    assert out.count("data:image/png") == 1  # the roofline figure was drawn
    assert "$\\foo$" in out


def test_plot_labels_are_never_parsed_as_math():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.reporting.plots import plain_label
    figure, axes = plt.subplots()
    axes.set_title(plain_label("$\\foo$ and $x^2$"))
    figure.canvas.draw()  # raises on math text it cannot parse
    plt.close(figure)
    assert "\\$" in plain_label("$x$")


# ----------------------------------------------------------------- 6: the gate's exit status


@pytest.fixture
def gate_project(tmp_path):
    return git_project(tmp_path / "project")


def test_gate_with_a_null_sample_judges_instead_of_exit_1(gate_project, monkeypatch):
    root, (base, head) = gate_project
    monkeypatch.chdir(root)
    for commit, value, day in ((base, 0.5, 0), (head, 1.0, 1)):
        samples = [value * (1 + 0.01 * (k % 3)) for k in range(8)]
        if commit == base:
            samples[1] = None
        # With asv's stats present, its significance test runs on the samples.
        write(root / "results" / "box", f"{commit[:8]}-env-a.json", document(
            {"suite.T.time_a": [[value], [], "v1", None, None, [value * 0.98],
                                [value * 1.02], [value * 0.99], [value * 1.01], [1], [8],
                                [samples]]}, commit=commit,
            date=1704000000000 + day * 86400000))
    status, out, err = run_cli("gate", "HEAD~1", "HEAD", "--no-run")
    assert "Traceback" not in err
    assert status == 1, err  # a twofold slowdown, judged: the only meaning of exit status 1
    assert "regression" in out


@pytest.mark.parametrize("config", ['{"version": 1, "repo": ".", "results_dir": ["r"]}',
                                    '{"version": "x", "repo": "."}',
                                    '{"version": 1, "repo": ".", "html_dir": null}'])
def test_gate_with_a_malformed_config_exits_2_with_one_line(gate_project, monkeypatch, config):
    root, _ = gate_project
    monkeypatch.chdir(root)
    (root / "asv.conf.json").write_text(config)
    status, _out, err = run_cli("gate", "HEAD~1", "HEAD", "--no-run")
    assert status == 2
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("error: asv.conf.json: not a usable asv configuration")


# ----------------------------------------------------------------- the top-level handler


def test_unexpected_error_is_one_line_and_exit_2_and_debug_shows_the_traceback(
        tmp_path, monkeypatch):
    from harness.cli import summary_cmd

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr(summary_cmd, "run", broken)
    status, _out, err = run_cli("summary", str(tmp_path))
    assert status == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "boom" in err and "--debug" in err
    status, _out, err = run_cli("--debug", "summary", str(tmp_path))
    assert status == 2 and "Traceback" in err


# ----------------------------------------------------------------- 11, 12: text and CSV outputs


ESCAPE_NAME = "suite.T.time_\x1b]0;pwned\x07\x1b[2J"


def test_terminal_escapes_never_reach_markdown_or_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "results" / "box", "abcdef01-env-a.json",
          document({ESCAPE_NAME: [[0.5], [], "v1"]}))
    for argv in (["report", "--no-plots", "-f", "md", "results"],
                 ["history", "results"], ["history", "-f", "md", "results"]):
        status, out, err = run_cli(*argv)
        assert status == 0, err
        assert "\x1b" not in out and "\x07" not in out, argv


def test_summary_strips_control_characters(tmp_path, monkeypatch):
    from harness.reporting.report import plain_text

    assert plain_text("a\x1b[2Jb\x07c\td\u202ee") == "a[2Jbc de"
    assert plain_text("ok name (1)") == "ok name (1)"


def test_csv_cells_cannot_start_a_formula(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "results" / "box", "abcdef01-env-a.json",
          document({'suite.T.time_a': [[0.5], [["'=HYPERLINK(\"http://x\")'"]], "v1"]},
                   env_name="=HYPERLINK(\"http://x\",\"y\")"))
    status, out, err = run_cli("report", "-f", "csv", "results")
    assert status == 0, err
    import csv
    import io

    cells = [cell for row in csv.reader(io.StringIO(out)) for cell in row]
    assert any("HYPERLINK" in cell for cell in cells)
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(cell)
                   for cell in cells), [c for c in cells if c[:1] in "=+-@"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------- 10: file modes


def test_report_file_is_readable_as_the_umask_allows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good_file(tmp_path / "results" / "box")
    old = os.umask(0o022)
    try:
        target = tmp_path / "out.md"
        target.write_text("old")
        target.chmod(0o640)
        status, _out, err = run_cli("report", "--no-plots", "-o", str(target), "results")
        fresh = tmp_path / "fresh.md"
        status2, _, err2 = run_cli("report", "--no-plots", "-o", str(fresh), "results")
    finally:
        os.umask(old)
    assert status == 0 and status2 == 0, err + err2
    assert fresh.stat().st_mode & 0o777 == 0o644
    assert target.stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode


# ----------------------------------------------------------------- 9: memory while loading


@pytest.mark.slow
def test_loading_takes_at_most_four_times_the_files_size(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("loader_memory",
                                                  REPO / "tools" / "loader_memory.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows, total = tool.write_results(tmp_path, files=300, samples=10)
    assert rows == 40_200
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", tool.CHILD, str(tmp_path)], check=True,
                         capture_output=True, text=True, env=env).stdout.split()
    loaded, peak, _ = (int(x) for x in out)
    assert loaded == rows
    assert peak <= 4 * total, f"peak RSS increment {peak / total:.2f} x the files' size"


# ------------------------------------------------------------- a parameter too long for Int64


@pytest.mark.parametrize("digits", [25, 5000])
def test_a_parameter_integer_too_long_for_int64_does_not_abort_the_load(tmp_path, digits):
    good_file(tmp_path / "box")
    huge = "9" * digits
    write(tmp_path / "box", "87654321-env-a.json", document(
        {"suite.T.time_p": [[0.5], [[huge]], "v1"]}, commit="87654321bbbb"))
    write(tmp_path / "box", "11112222-env-a.json", document(
        {"suite.T.time_p": [[0.25], [["3"]], "v1"]}, commit="11112222cccc"))
    frame = load(tmp_path)
    assert len(frame) == 3
    values = frame.loc[frame["benchmark"] == "suite.T.time_p", "param_param1"].tolist()
    assert sorted(values) == [3.0, float(huge)]
    status, out, err = run_cli("report", "--no-plots", str(tmp_path))
    assert status == 0, err
    assert "3 figures measured (0 skipped, 0 failed)" in out


def test_gate_reads_the_stored_results_once_and_warns_once(gate_project):
    from harness.reporting import gate

    root, (base, head) = gate_project
    gate_results(root, [base, head])
    write(root / "results" / "box", f"{head[:8]}-env-b.json", '{"version": 2, "res')

    class NoRerunNeeded:  # the stored results have samples enough: nothing to measure again
        def __init__(self):
            self.calls: list[str] = []

        def run_missing(self, commits, machine, bench):
            self.calls.append("run_missing")
            return "box", 0

        def rerun(self, commits, machine, entry_names):
            self.calls.append("rerun")
            return 0

        def environment_names(self):
            return []

    messages: list[str] = []
    runner = NoRerunNeeded()
    result = gate.run_gate(root / "asv.conf.json", base, head, confirm=0, runner=runner,
                           progress=messages.append)
    assert runner.calls == ["run_missing"] and result.verdict == gate.PASS
    warnings = [m for m in messages if m.startswith("warning:")]
    assert len(warnings) == 1 and f"{head[:8]}-env-b.json" in warnings[0], messages
