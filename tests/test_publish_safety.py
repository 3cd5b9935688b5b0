"""Publish owns only what it made: a directory is replaced only when publish's own marker says
it is a site; an interrupted swap leaves the old or the new site whole and the next publish
recovers a surviving old one; staging names are never globs; pages readable as the umask
allows. asv's own steps are replaced by a tiny fake (``fake_asv_steps``): these tests are about
the directories, not asv."""

from __future__ import annotations

import os
import stat

import pytest
from hostile import fake_asv_steps, results_project

from harness.reporting import publish as publish_module
from harness.reporting.publish import PublishError, publish


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setattr(publish_module, "_run", fake_asv_steps)
    return results_project(tmp_path / "project")


def tree(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*")
            if p.is_file()}


def test_a_directory_with_index_json_but_no_marker_is_not_replaced(project, tmp_path):
    mysite = tmp_path / "mysite"
    mysite.mkdir()
    (mysite / "index.json").write_text("{}")
    (mysite / "thesis.tex").write_text("\\documentclass{article}")
    with pytest.raises(PublishError, match="not a published asv site"):
        publish(project, html_dir=mysite, plots=False)
    assert (mysite / "thesis.tex").read_text() == "\\documentclass{article}"


def test_a_site_publish_made_is_replaced(project, tmp_path):
    site = tmp_path / "site"
    publish(project, html_dir=site, plots=False)
    (site / "stale").write_text("old")
    publish(project, html_dir=site, plots=False)
    assert not (site / "stale").exists() and (site / "report" / "index.html").exists()


def test_interrupted_between_the_renames_keeps_the_old_site(project, tmp_path, monkeypatch):
    site = tmp_path / "site"
    publish(project, html_dir=site, plots=False)
    before = tree(site)
    monkeypatch.setattr(publish_module, "_exchange", lambda a, b: False)
    real_rename = os.rename

    calls = []

    def interrupted(source, destination):
        calls.append(destination)
        if str(destination) == str(site) and len(calls) == 2:
            raise KeyboardInterrupt  # the second rename of the swap never happens
        real_rename(source, destination)

    monkeypatch.setattr(publish_module.os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        publish(project, html_dir=site, plots=False)
    monkeypatch.setattr(publish_module.os, "rename", real_rename)
    assert tree(site) == before


def test_the_next_publish_recovers_an_old_site_a_kill_left_in_staging(project, tmp_path,
                                                                      monkeypatch):
    site = tmp_path / "site"
    publish(project, html_dir=site, plots=False)
    before = tree(site)
    # What a kill between the two renames leaves: the old site inside a staging directory.
    staging = tmp_path / ".site.staging-abcd1234"
    staging.mkdir()
    (staging / publish_module.STAGING_MARKER).write_text(str(site) + "\n")
    os.rename(site, staging / "previous")

    def failing(command, what):
        raise PublishError("asv publish failed (exit status 1):\nsimulated")

    monkeypatch.setattr(publish_module, "_run", failing)
    with pytest.raises(PublishError, match="simulated"):
        publish(project, html_dir=site, plots=False)
    assert tree(site) == before


def test_staging_names_are_not_globs(project, tmp_path):
    other = tmp_path / ".site1.staging-abcd1234"  # another site's staging, mid-publish
    other.mkdir()
    (other / "building").write_text("theirs")
    publish(project, html_dir=tmp_path / "site[1]", plots=False)
    assert (other / "building").read_text() == "theirs"
    assert (tmp_path / "site[1]" / "index.html").exists()


def test_pages_are_readable_as_the_umask_allows(project, tmp_path):
    old = os.umask(0o022)
    try:
        publish(project, html_dir=tmp_path / "site", plots=False)
    finally:
        os.umask(old)
    site = tmp_path / "site"
    for path in [site, *site.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o044 == 0o044, f"{path.relative_to(tmp_path)}: {oct(mode)}"


@pytest.mark.parametrize("given", ["argument", "configuration"])
def test_a_symlinked_html_dir_is_refused(project, tmp_path, given):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = project.parent / "html"  # the configuration's html_dir
    link.symlink_to(elsewhere, target_is_directory=True)
    before = sorted(p.name for p in project.parent.iterdir())
    with pytest.raises(PublishError, match="refusing to replace"):
        publish(project, html_dir=link if given == "argument" else None, plots=False)
    assert link.is_symlink() and list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in project.parent.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "project"]
