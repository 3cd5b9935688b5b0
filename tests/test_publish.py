"""harness.reporting.publish on the three-commit fixture project: both pages, links both ways, commit
subjects for the UI, an atomic swap that keeps the old site when a step fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from harness.reporting import publish as publish_module
from harness.reporting.publish import REPORT_LINK_ID, PublishError, publish
from harness.reporting.results import load


def _config(asv_project):
    return asv_project.root / "asv.conf.json"


def test_publish_writes_linked_ui_report_and_commit_subjects(asv_project, tmp_path):
    site = publish(_config(asv_project), html_dir=tmp_path / "site")

    assert site.html_dir == tmp_path / "site"
    assert site.commits == 3
    assert site.results == len(load(asv_project.results_dir))
    index = site.index.read_text()
    assert "./assets/index-" in index  # the bundled UI, not asv's CDN-loading page
    assert index.count(f'id="{REPORT_LINK_ID}" href="report/index.html"') == 1
    legacy = (site.html_dir / "index.legacy.html").read_text()
    assert "jquery" in legacy.lower() and REPORT_LINK_ID in legacy
    report = site.report.read_text()
    assert '<a href="../index.html">' in report
    assert report.count("<table") >= 3 and "Regressions" in report  # 3 commits: history
    subjects = json.loads((site.html_dir / "commits.json").read_text())["by_hash"]
    assert subjects == {commit: f"commit {n + 1}" for n, commit in enumerate(asv_project.commits)}
    assert json.loads((site.html_dir / "regressions-ignore.json").read_text()) == []


def test_publishing_again_replaces_the_site_and_leaves_no_staging(asv_project, tmp_path):
    target = tmp_path / "site"
    publish(_config(asv_project), html_dir=target, plots=False)
    (target / "stale-file").write_text("from the previous site")
    publish(_config(asv_project), html_dir=target, plots=False)

    assert not (target / "stale-file").exists()
    assert (target / "index.html").read_text().count(REPORT_LINK_ID) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.publish-lock", "site"]


def test_a_failed_step_keeps_the_previous_site_whole(asv_project, tmp_path, monkeypatch):
    target = tmp_path / "site"
    publish(_config(asv_project), html_dir=target, plots=False)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    real_run = publish_module._run

    def failing_install(command, what):
        if what == "asv-tachyon install":
            raise PublishError("asv-tachyon install failed (exit status 1):\nsimulated")
        real_run(command, what)

    monkeypatch.setattr(publish_module, "_run", failing_install)
    with pytest.raises(PublishError, match="simulated"):
        publish(_config(asv_project), html_dir=target, plots=False)

    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert not list(tmp_path.glob(".site.staging-*"))


def test_no_results_says_to_run_the_benchmarks_first(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "asv.conf.json").write_text(json.dumps(
        {"version": 1, "project": "p", "repo": ".", "results_dir": "results", "html_dir": "html"}))
    with pytest.raises(PublishError, match="no asv results in .*make bench"):
        publish(tmp_path / "asv.conf.json")
    assert not (tmp_path / "html").exists()


def test_a_missing_configuration_is_named(tmp_path):
    with pytest.raises(PublishError, match="no asv configuration at .*--config"):
        publish(tmp_path / "nope.json")


def test_the_loader_does_not_walk_into_a_published_site(asv_project, tmp_path):
    from harness.reporting.results import find_result_files

    results = tmp_path / "results"
    shutil.copytree(asv_project.results_dir, results)
    expected = find_result_files([results])
    publish(_config(asv_project), html_dir=results / "html", plots=False)
    # A graph file whose name looks like a result file would be listed if the walk went in.
    lookalike = results / "html" / "graphs" / "abcdef12-lookalike.json"
    lookalike.write_text("[]")

    assert find_result_files([results]) == expected
    assert lookalike in find_result_files([results / "html" / "graphs"])  # it does look alike


@pytest.mark.parametrize("where", ["results", ".", ".."])
def test_a_site_directory_holding_the_results_or_the_project_is_refused(asv_project, tmp_path,
                                                                        where):
    project = tmp_path / "project"
    shutil.copytree(asv_project.root, project, symlinks=True)
    before = sorted(p.name for p in (project / "results").rglob("*.json"))
    with pytest.raises(PublishError, match="refusing to publish into"):
        publish(project / "asv.conf.json", html_dir=project / where, plots=False)
    assert sorted(p.name for p in (project / "results").rglob("*.json")) == before


def test_an_existing_directory_that_is_not_a_site_is_not_replaced(asv_project, tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(PublishError, match="not a published asv site"):
        publish(_config(asv_project), html_dir=other, plots=False)
    assert (other / "keep.txt").read_text() == "mine"


def test_cli_prints_where_the_pages_are_and_how_to_serve_them(asv_project, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "publish", "--config", str(_config(asv_project)),
         "--html-dir", str(tmp_path / "site"), "--no-plots"],
        capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    expected = len(load(asv_project.results_dir))
    assert f"published {expected} results of 3 commit(s) to site/" in proc.stdout
    assert "site/report/index.html" in proc.stdout
    assert "asv preview --config" in proc.stdout and "http.server" in proc.stdout


def test_cli_without_results_exits_2_with_the_fix(tmp_path):
    (tmp_path / "asv.conf.json").write_text(json.dumps(
        {"version": 1, "project": "p", "repo": ".", "results_dir": "results", "html_dir": "html"}))
    proc = subprocess.run([sys.executable, "-m", "harness", "publish"], cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 2
    assert "error: no results directory" in proc.stderr and "make bench" in proc.stderr
    assert "Traceback" not in proc.stderr
