"""harness.reporting.compare against asv's own verdicts on real asv results, its table helpers,
and harness.reporting.runs (finding the two runs of a comparison)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from asv_fixture import make_asv_results

from harness.reporting.compare import (
    VERDICT_MARKS,
    compare,
    compare_headers,
    compare_rows,
    geomean_summary,
    only_changed,
    regressions,
    select_commit,
    several_environments,
    verdict_counts,
)
from harness.reporting.results import load
from harness.reporting.runs import compare_runs
from harness.units import human_difference


@pytest.fixture(scope="module")
def frame(asv_project):
    return load(asv_project.results_dir)


PAIRS = [(0, 1), (1, 2), (0, 2)]
DELIBERATE_REGRESSIONS = {
    "bench.Alloc.peakmem_buffer",
    "bench.Sleep.time_sleep(1, 'plain')",
    "bench.Sleep.time_sleep(1, '<script>alert(1)</script>')",
    "bench.Sleep.time_sleep(2, '<script>alert(1)</script>')",
}


@pytest.mark.slow
@pytest.mark.parametrize("first, second", PAIRS)
def test_marks_agree_with_asv_compare(asv_project, frame, first, second):
    before, after = asv_project.commits[first], asv_project.commits[second]
    output = asv_project.asv("compare", before, after, "--machine",
                             make_asv_results.MACHINE).stdout
    asv_marks = make_asv_results.parse_asv_compare_marks(output)
    table = compare(select_commit(frame, before[:8]), select_commit(frame, after[:8]))
    ours = dict(zip(table["entry_name"], table["mark"]))
    assert len(asv_marks) == 8
    assert ours == asv_marks
    for verdict, mark in zip(table["verdict"], table["mark"]):
        assert mark in VERDICT_MARKS[verdict]


@pytest.mark.slow
def test_slowdown_allocation_and_failure_are_flagged(frame, asv_project):
    first, second, third = (select_commit(frame, c) for c in asv_project.commits)
    table = compare(first, second).set_index("entry_name")
    verdicts = table["verdict"].to_dict()
    # Deliberate changes are flagged (Steady is left to asv's judgement: the machine is shared).
    assert {name for name, v in verdicts.items() if v == "regressed"} >= {
        *DELIBERATE_REGRESSIONS, "bench.Alloc.track_items"}
    assert verdicts["bench.Alloc.track_breaks"] == "failed"
    assert verdicts["bench.Sleep.time_sleep(2, 'plain')"] == "skipped"
    # The deliberate extra allocation is 60 MB: judged by bytes as well as by ratio.
    extra = table.loc["bench.Alloc.peakmem_buffer", "difference"]
    assert 55e6 < extra < 65e6
    shown = human_difference(extra, "bytes")  # asv's units: '+60.2M'
    assert shown.startswith("+") and shown.endswith("M") and 55 < float(shown[1:-1]) < 65
    assert table.loc["bench.Sleep.time_sleep(1, 'plain')", "ratio"] > 2
    later = compare(second, third).set_index("entry_name")["verdict"]
    assert later["bench.Alloc.track_breaks"] == "improved"  # failure fixed
    assert later["bench.Alloc.track_items"] == "improved"


@pytest.mark.slow
def test_regressions_match_asv_publish(asv_project, frame):
    asv_project.asv("publish")
    published = json.loads((asv_project.html_dir / "regressions.json").read_text())
    revision_to_hash = dict(enumerate(asv_project.commits))  # linear history, oldest first
    expected = set()
    for entry_name, _path, _params, _index, last, best, jumps in published["regressions"]:
        for rev_before, rev_after, value_before, value_after in jumps:
            # asv writes None for "the commit just before", i.e. the previous one here.
            before = revision_to_hash[rev_before if rev_before is not None else rev_after - 1]
            expected.add((entry_name, before, revision_to_hash[rev_after],
                          round(value_before, 12), round(value_after, 12)))
    found = regressions(frame)
    ours = {(r.entry_name, r.commit_before, r.commit_after, round(r.value_before, 12),
             round(r.value_after, 12)) for r in found.itertuples()}
    # The deliberate 60 MB allocation is always listed (memory is not noisy). With three points
    # per series, timing noise on this shared machine can add or hide a step in asv's
    # detection; whatever asv lists, we must list the same.
    listed = {entry[0] for entry in expected}
    assert "bench.Alloc.peakmem_buffer" in listed and listed <= {
        *DELIBERATE_REGRESSIONS, "bench.Steady.time_steady"}
    assert ours == expected


def synthetic(rows: list[dict]) -> pd.DataFrame:
    base = {"benchmark": "s.T.time_a", "type": "time", "unit": "seconds", "params": {},
            "status": "ok", "ci_99_low": math.nan, "ci_99_high": math.nan, "q_25": math.nan,
            "q_75": math.nan, "number": math.nan, "repeat": math.nan, "samples": None,
            "version": "v1", "stale": False, "commit": "aaaa1111", "date": pd.Timestamp(0),
            "machine": "box", "env_name": "env", "python": "3", "requirements": {},
            "raw_params": (), "file": "f"}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["entry_name"] = frame.get("entry_name", frame["benchmark"])
    return frame


def test_changed_benchmark_version_is_incomparable_not_regressed():
    before = synthetic([{"value": 1.0}])
    after = synthetic([{"value": 5.0, "version": "v2", "commit": "bbbb2222"}])
    row = compare(before, after).iloc[0]
    assert (row["mark"], row["verdict"]) == ("x", "incomparable")


def test_new_and_gone_benchmarks():
    before = synthetic([{"benchmark": "s.T.time_old", "value": 1.0}])
    after = synthetic([{"benchmark": "s.T.time_new", "value": 1.0, "commit": "bbbb2222"}])
    verdicts = compare(before, after).set_index("entry_name")["verdict"].to_dict()
    assert verdicts == {"s.T.time_old": "gone", "s.T.time_new": "new"}


def test_overlapping_confidence_intervals_are_not_a_change():
    # Past the factor (1.5x) but the 99% intervals overlap: asv says not significant ('~').
    before = synthetic([{"value": 1.0, "ci_99_low": 0.5, "ci_99_high": 2.0, "repeat": 10}])
    after = synthetic([{"value": 1.5, "ci_99_low": 1.0, "ci_99_high": 2.5, "repeat": 10,
                        "commit": "bbbb2222"}])
    row = compare(before, after).iloc[0]
    assert (row["verdict"], row["ratio_text"]) == ("unchanged", "~1.50")
    assert compare(before, after, use_stats=False).iloc[0]["verdict"] == "regressed"


def test_factor_decides_small_changes():
    before = synthetic([{"value": 1.0}])
    after = synthetic([{"value": 1.08, "commit": "bbbb2222"}])
    assert compare(before, after).iloc[0]["verdict"] == "unchanged"
    assert compare(before, after, factor=1.05).iloc[0]["verdict"] == "regressed"


def test_two_environments_are_matched_by_benchmark():
    before = synthetic([{"value": 1.0, "env_name": "numpy-1"}])
    after = synthetic([{"value": 3.0, "env_name": "numpy-2"}])
    table = compare(before, after)
    assert table["verdict"].tolist() == ["regressed"]


def test_several_commits_on_one_side_is_a_clear_error():
    both = synthetic([{"value": 1.0}, {"value": 2.0, "commit": "bbbb2222"}])
    with pytest.raises(ValueError, match="select one commit per side"):
        compare(both, both)


def test_select_commit_rejects_unknown_and_ambiguous_prefixes():
    frame = synthetic([{"value": 1.0, "commit": "ab12"}, {"value": 1.0, "commit": "ab34"}])
    assert len(select_commit(frame, "ab1")) == 1
    with pytest.raises(ValueError, match="ambiguous"):
        select_commit(frame, "ab")
    with pytest.raises(ValueError, match="no results for commit 'ff'"):
        select_commit(frame, "ff")


def test_regression_that_recovers_is_not_listed():
    values = [1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    frame = synthetic([{"value": v, "commit": f"c{k}", "date": pd.Timestamp(k, unit="D")}
                       for k, v in enumerate(values)])
    assert regressions(frame).empty
    lasting = synthetic([{"value": v, "commit": f"c{k}", "date": pd.Timestamp(k, unit="D")}
                         for k, v in enumerate([1.0] * 4 + [2.0] * 4)])
    found = regressions(lasting)
    assert found[["commit_before", "commit_after"]].values.tolist() == [["c3", "c4"]]
    assert found["ratio"].iloc[0] == pytest.approx(2.0)


def test_geomean_summary_per_class_and_per_parameter():
    rows = [{"benchmark": "s.A.time_x", "value": 1.0, "param_kind": "p"},
            {"benchmark": "s.A.time_y", "value": 1.0, "param_kind": "q"},
            {"benchmark": "s.B.time_z", "value": 1.0, "param_kind": "q"}]
    before = synthetic(rows)
    after = synthetic([{**r, "value": v, "commit": "bbbb2222"}
                       for r, v in zip(rows, [4.0, 1.0, 0.5])])
    table = compare(before, after)
    by_class = geomean_summary(table).set_index("class")
    assert by_class.loc["s.A", "geomean_ratio"] == pytest.approx(2.0)
    assert by_class.loc["s.A", "regressed"] == 1 and by_class.loc["s.B", "improved"] == 1
    by_kind = geomean_summary(table, by="kind").set_index("param_kind")
    assert by_kind.loc["q", "geomean_ratio"] == pytest.approx(math.sqrt(0.5))
    with pytest.raises(ValueError, match="no column 'strategy'"):
        geomean_summary(table, by="strategy")


def test_orient_turns_marks_around_only_where_more_is_better():
    from harness.reporting.compare import orient

    table = pd.DataFrame({
        "unit": ["GB/s", "GB/s", "GB/s", "seconds", "bytes"],
        "mark": ["-", "+", "*", "+", "-"],
        "verdict": ["improved", "regressed", "improved", "regressed", "improved"],
    })
    turned = orient(table)
    assert turned["mark"].tolist() == ["+", "-", "*", "+", "-"]
    assert turned["verdict"].tolist() == ["regressed", "improved", "improved", "regressed",
                                          "improved"]
    assert table["mark"].tolist() == ["-", "+", "*", "+", "-"]  # the input is left alone


def test_table_helpers_name_count_and_filter_the_verdicts():
    before = synthetic([{"benchmark": f"s.T.time_{k}", "value": 1.0} for k in "abcdef"])
    after = synthetic([{"benchmark": f"s.T.time_{k}", "value": v, "commit": "bbbb2222"}
                       for k, v in zip("abcdef", [2.0, 2.0, 2.0, 1.0, 1.0, 0.4])])
    table = compare(before, after)
    assert verdict_counts(table) == "3 regressed, 2 unchanged, 1 improved"
    assert only_changed(table)["entry_name"].tolist() == ["s.T.time_a", "s.T.time_b",
                                                          "s.T.time_c", "s.T.time_f"]
    assert not several_environments(table)
    assert several_environments(pd.concat([table, table.assign(env_name="other")]))
    assert compare_headers() == ["Change", "Before", "After", "Ratio", "Difference", "Verdict",
                                 "Benchmark (Parameter)"]
    assert compare_headers("Baseline", "Environment", verdict=("Gate", "Why"))[1:7] == [
        "Baseline", "Environment", "Ratio", "Difference", "Gate", "Why"]
    assert len(compare_rows(table)[0]) == len(compare_headers())


@pytest.mark.slow
def test_compare_runs_finds_each_side_by_prefix_or_by_file(asv_project, frame, tmp_path):
    first, second, _ = asv_project.commits
    comparison = compare_runs(first[:8], second[:10], results_dir=asv_project.results_dir)
    assert comparison.headers()[1:3] == [f"Before [{first[:8]}]", f"After [{second[:8]}]"]
    assert set(comparison.before["commit"]) == {first}
    verdicts = comparison.table.set_index("entry_name")["verdict"]
    assert verdicts["bench.Alloc.peakmem_buffer"] == "regressed"
    assert verdicts["bench.Alloc.track_breaks"] == "failed"
    # A result file names its run; no results directory is needed then.
    first_file = select_commit(frame, first[:8])["file"].iloc[0]
    by_file = compare_runs(first_file, second[:8], results_dir=asv_project.results_dir)
    assert by_file.table["verdict"].tolist() == comparison.table["verdict"].tolist()
    with pytest.raises(ValueError, match="holds results of several commits"):
        compare_runs(str(asv_project.results_dir), second[:8])
    with pytest.raises(ValueError, match="neither a file nor a directory"):
        compare_runs(first[:8], second[:8], results_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="A: no results for machine 'elsewhere'"):
        compare_runs(first_file, second[:8], results_dir=asv_project.results_dir,
                     machine="elsewhere")
