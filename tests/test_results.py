"""harness.reporting.results.load on real asv output and on malformed files; the helpers around
it (no results, skipped files' warnings, selecting benchmarks by regular expression)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from asv_fixture.make_asv_results import RESULT_COLUMNS

from harness.reporting.results import (
    NoResultsError,
    ResultsFileError,
    ResultsFileWarning,
    compile_patterns,
    forwarded_warnings,
    load,
    load_nonempty,
    select_matching,
)


def result_document(benchmark_rows: dict, **overrides) -> dict:
    """A minimal api-version-2 results document."""
    document = {
        "commit_hash": "abcdef0123456789", "env_name": "env-a", "date": 1704110400000,
        "params": {"machine": "box", "python": "3.11"}, "python": "3.11",
        "requirements": {"numpy": "2.0"}, "env_vars": {}, "result_columns": RESULT_COLUMNS,
        "results": benchmark_rows, "durations": {}, "version": 2,
    }
    document.update(overrides)
    return document


def write_results(directory: Path, name: str, text_or_document) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    text = text_or_document if isinstance(text_or_document, str) else json.dumps(text_or_document)
    path.write_text(text)
    return path


GOOD = {"suite.T.time_a": [[0.5], [], "v1"]}


@pytest.mark.slow
def test_real_results_give_one_row_per_combination_and_file(asv_project):
    frame = load(asv_project.results_dir)
    # 3 commits x (4 Sleep combinations + 4 unparameterised benchmarks).
    assert len(frame) == 24
    assert frame["status"].value_counts().to_dict() == {"ok": 20, "skipped": 3, "failed": 1}
    assert set(frame["commit"]) == set(asv_project.commits)
    assert str(frame["param_milliseconds"].dtype) == "Int64"
    sleep = frame[frame["benchmark"] == "bench.Sleep.time_sleep"]
    assert {"plain", "<script>alert(1)</script>"} == set(sleep["param_label"])
    assert sleep["params"].iloc[0] == {"milliseconds": "1", "label": "plain"}
    # 3 commits x 4 combinations, of which (2, 'plain') is skipped on purpose; the .all() checks
    # below would pass on no rows at all, so the counts come first.
    sleep_ok = sleep[sleep.status == "ok"]
    assert (len(sleep), len(sleep_ok)) == (12, 9)
    assert (sleep_ok["repeat"] >= 7).all()
    assert sleep_ok["samples"].map(len).min() >= 7
    peakmem = frame[frame.benchmark == "bench.Alloc.peakmem_buffer"]
    tracked = frame[frame.benchmark == "bench.Alloc.track_items"]
    assert (len(peakmem), len(tracked)) == (3, 3)
    assert peakmem["type"].eq("peakmem").all()
    assert tracked["unit"].eq("items").all()
    assert str(frame["date"].dt.tz) == "UTC"
    assert frame["date"].min() == pd.Timestamp("2024-01-01 12:00", tz="UTC")
    assert not frame["stale"].any()


@pytest.mark.slow
def test_benchmark_gone_from_benchmarks_json_keeps_rows_with_positional_names(asv_project,
                                                                               tmp_path):
    results = tmp_path / "results"
    shutil.copytree(asv_project.results_dir, results)
    listed = json.loads((results / "benchmarks.json").read_text())
    del listed["bench.Sleep.time_sleep"]
    (results / "benchmarks.json").write_text(json.dumps(listed))
    frame = load(results)
    sleep = frame[frame["benchmark"] == "bench.Sleep.time_sleep"]
    assert len(sleep) == 12 and len(frame) == 24  # 12 rows left to be not stale
    assert sleep["stale"].all() and not frame.loc[frame.benchmark != sleep.benchmark.iloc[0],
                                                  "stale"].any()
    assert set(sleep["param_param2"]) == {"plain", "<script>alert(1)</script>"}
    assert sleep["type"].eq("time").all() and sleep["unit"].eq("seconds").all()


def test_nan_infinity_and_null_are_read(tmp_path):
    text = json.dumps(result_document({"suite.T.time_a": [
        [0.5, None, math.nan], [["1", "2", "3"]], "v1", None, None,
        [math.inf, None, None], [-math.inf, None, None]]}))
    assert "NaN" in text and "Infinity" in text  # what asv writes: JSON plus these literals
    write_results(tmp_path / "box", "abcdef01-env-a.json", text)
    frame = load(tmp_path)
    assert frame["status"].tolist() == ["ok", "failed", "skipped"]
    assert frame["value"].iloc[0] == 0.5 and math.isnan(frame["value"].iloc[1])
    assert frame["ci_99_low"].iloc[0] == math.inf
    assert frame["ci_99_high"].iloc[0] == -math.inf
    assert frame["param_param1"].tolist() == [1, 2, 3]


def test_truncated_file_is_named_and_the_rest_still_loads(tmp_path):
    write_results(tmp_path / "box", "abcdef01-env-a.json", result_document(GOOD))
    bad = write_results(tmp_path / "box", "12345678-env-a.json",
                        json.dumps(result_document(GOOD))[:100])
    with pytest.warns(ResultsFileWarning, match="12345678-env-a.json.*not valid JSON"):
        frame = load(tmp_path)
    assert len(frame) == 1 and frame["value"].iloc[0] == 0.5
    with pytest.raises(ResultsFileError, match=str(bad.name)):
        load(tmp_path, strict=True)


@pytest.mark.parametrize("results, message", [
    ({"suite.T.time_a": [["fast"], [], "v1"]}, "'result' should be null or a list of 1 numbers"),
    ({"suite.T.time_a": [[1.0, 2.0], [["1"]], "v1"]}, "list of 1 numbers"),
    ({"suite.T.time_a": [[1.0], "x", "v1"]}, "'params' should be a list of lists of strings"),
    ({"suite.T.time_a": [[1.0], [], 7]}, "'version' should be a string"),
    ({"suite.T.time_a": {"result": 1}}, "expected a list of at most 13 fields"),
    ({"suite.T.time_a": [[True], [], "v1"]}, "'result' should be null"),
])
def test_wrong_types_name_the_benchmark_and_field(tmp_path, results, message):
    path = write_results(tmp_path / "box", "abcdef01-env-a.json", result_document(results))
    with pytest.raises(ResultsFileError, match=message) as caught:
        load(path, strict=True)
    assert "suite.T.time_a" in str(caught.value) and str(path) in str(caught.value)


def test_wrong_header_types_are_named(tmp_path):
    path = write_results(tmp_path, "abcdef01-env-a.json", result_document(GOOD, results=[1]))
    with pytest.raises(ResultsFileError, match="'results' should be a JSON dict"):
        load(path, strict=True)


def test_missing_result_columns_is_reported(tmp_path):
    document = result_document(GOOD)
    del document["result_columns"]
    path = write_results(tmp_path / "box", "abcdef01-env-a.json", document)
    with pytest.warns(ResultsFileWarning, match="missing key 'result_columns'"):
        frame = load(path)
    assert frame.empty


def test_api_version_1_file_says_to_run_asv_update(tmp_path):
    document = result_document(GOOD, version=1)
    path = write_results(tmp_path / "box", "abcdef01-env-a.json", document)
    with pytest.raises(ResultsFileError, match=r"api version 1.*Run `asv update`"):
        load(path, strict=True)


def test_not_an_object_and_no_version_are_rejected(tmp_path):
    listed = write_results(tmp_path, "abcdef01-env-a.json", "[1, 2]")
    with pytest.raises(ResultsFileError, match="expected a JSON object"):
        load(listed, strict=True)
    document = result_document(GOOD)
    del document["version"]
    unversioned = write_results(tmp_path, "abcdef02-env-a.json", document)
    with pytest.raises(ResultsFileError, match="no integer 'version'"):
        load(unversioned, strict=True)


def test_script_in_benchmark_name_is_kept_as_plain_data(tmp_path):
    name = "suite.<script>alert(1)</script>.time_a"
    write_results(tmp_path / "box", "abcdef01-env-a.json",
                  result_document({name: [[1.0], [], "v1"]}))
    frame = load(tmp_path)
    assert frame["benchmark"].tolist() == [name]


def test_paths_can_be_machine_dirs_or_files_and_html_json_is_ignored(tmp_path):
    results = tmp_path / "results"
    first = write_results(results / "box", "abcdef01-env-a.json", result_document(GOOD))
    write_results(results / "box", "machine.json", {"machine": "box", "version": 1})
    write_results(results / "other", "12345678-env-b.json",
                  result_document(GOOD, commit_hash="12345678aa", env_name="env-b"))
    write_results(results / "html", "index.json", {"project": "x"})
    write_results(results / "html" / "graphs", "suite.T.time_a.json", "[[0, 1.0]]")
    assert len(load(results)) == 2
    assert len(load(results / "box")) == 1
    assert load(first)["env_name"].tolist() == ["env-a"]
    assert len(load(first, results / "box")) == 1  # the same file given twice counts once


def test_missing_path_raises_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or directory; give an asv results"):
        load(tmp_path / "nowhere")


def test_empty_directory_gives_empty_frame_with_columns(tmp_path):
    frame = load(tmp_path)
    assert frame.empty and {"benchmark", "value", "status", "commit"} <= set(frame.columns)


def test_load_nonempty_names_the_paths_and_what_to_run(tmp_path):
    with pytest.raises(NoResultsError, match=f"no asv results found in {tmp_path}; run `make "
                                             "bench` or `asv run` first"):
        load_nonempty(tmp_path)
    write_results(tmp_path / "box", "abcdef01-env-a.json", result_document(GOOD))
    assert load_nonempty(tmp_path)["value"].tolist() == [0.5]


def test_forwarded_warnings_hand_each_skipped_file_to_the_callable(tmp_path):
    write_results(tmp_path / "box", "abcdef01-env-a.json", result_document(GOOD))
    write_results(tmp_path / "box", "deadbeef-env-a.json", '{"version": 2, "res')
    messages: list[str] = []
    with forwarded_warnings(messages.append):
        frame = load(tmp_path)
    assert len(frame) == 1
    assert len(messages) == 1 and "deadbeef-env-a.json" in messages[0]
    assert "not valid JSON" in messages[0]


def test_select_matching_searches_labels_or_names_like_asv_run_bench():
    frame = pd.DataFrame({"benchmark": ["s.T.time_a", "s.T.peakmem_a", "s.T.track_gbps"],
                          "entry_name": ["s.T.time_a(1)", "s.T.peakmem_a(2)", "s.T.track_gbps"]})
    assert select_matching(frame, []) is frame
    assert select_matching(frame, ["a\\(", "gbps"])["benchmark"].tolist() == [
        "s.T.time_a", "s.T.peakmem_a", "s.T.track_gbps"]
    assert select_matching(frame, [r"\(2\)"])["benchmark"].tolist() == ["s.T.peakmem_a"]
    assert select_matching(frame, [r"\(2\)"], column="benchmark").empty
    assert select_matching(frame, ["time_a$"], column="benchmark")["entry_name"].tolist() == [
        "s.T.time_a(1)"]
    with pytest.raises(ValueError, match="--bench '\\[' is not a regular expression"):
        compile_patterns(["time", "["])
