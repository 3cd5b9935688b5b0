"""A seeded fuzzer over real asv result files: ``MUTATIONS`` ways of damaging a file of a real
asv run, two files per case (truncation, type swaps, huge and non-finite numbers, deep
nesting, odd strings, special files); each case runs ``report``, ``summary``, ``compare``,
``history`` and ``gate --no-run`` on the results, in this process (fast). Every case must end without a traceback or an
unexpected error, name the damaged file when it is skipped, and still load the good files.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import warnings
from pathlib import Path

import pytest
from hostile import run_cli

from harness.reporting.results import load

SEED = 20261201
MUTATIONS = 520
VICTIMS_PER_CASE = 2  # files damaged per case (of the run's three): the commands run per case
UNEXPECTED = "for the traceback: python -m harness --debug"  # the CLI's line for an unexpected error

ODD_STRINGS = ["\ud800", "\x1b]0;pwned\x07\x1b[2J", "$\\foo$", "=HYPERLINK(\"http://x\")",
               "x" * 20_000, "\x00", "\u202eevil", "a|b*c_[d]", "", "..", "/etc/passwd"]
ODD_NUMBERS = [math.inf, -math.inf, math.nan, 1e300, -1e300, 1e-320, 0, -1, 2**63, 10**30,
               True, False]


def json_paths(value, prefix=()):
    """Every (path, value) of a parsed JSON document, root first."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_paths(item, (*prefix, index))


def replaced(document, path, new):
    if not path:
        return new
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return document


def mutate(rng: random.Random, text: str, path: Path) -> str:
    """Damage ``path`` (holding ``text``) one way; the name of the way."""
    kind = rng.choice(["truncate", "type swap", "odd number", "odd string", "deep nesting",
                       "huge integer", "drop key", "special file", "bytes", "big product",
                       "type swap", "odd number", "odd string", "truncate"])
    if kind == "truncate":
        path.write_text(text[:rng.randrange(len(text))])
    elif kind == "bytes":
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
    elif kind == "huge integer":
        numbers = list(re.finditer(r"(?<![\w.])\d+(?:\.\d+)?", text))
        match = rng.choice(numbers)
        digits = "9" * rng.choice([19, 400, 5000])
        path.write_text(text[:match.start()] + digits + text[match.end():])
    elif kind == "deep nesting":
        depth = rng.choice([500, 5_000, 100_000])
        document = json.loads(text)
        target = rng.choice(list(json_paths(document)))[0]
        marker = "\"@@DEEP@@\""
        path.write_text(json.dumps(replaced(document, target, "@@DEEP@@")).replace(
            marker, "[" * depth + "]" * depth, 1))
    elif kind == "special file":
        path.unlink()
        choice = rng.choice(["fifo", "zero", "dir", "dangling", "empty"])
        if choice == "fifo":
            os.mkfifo(path)
        elif choice == "zero":
            path.symlink_to("/dev/zero")
        elif choice == "dir":
            path.mkdir()
        elif choice == "dangling":
            path.symlink_to(path.with_name("nowhere.json"))
        else:
            path.write_text("")
        kind = f"special file ({choice})"
    else:
        document = json.loads(text)
        paths = [p for p, _ in json_paths(document)]
        target = rng.choice(paths)
        if kind == "type swap":
            new = rng.choice([None, "text", 7, 2.5, [], {}, [1, "a"], {"k": None}, True])
        elif kind == "odd number":
            new = rng.choice(ODD_NUMBERS)
        elif kind == "odd string":
            new = rng.choice(ODD_STRINGS)
            if rng.random() < 0.5 and isinstance(document.get("results"), dict):
                # A benchmark name, rather than a value.
                results = document["results"]
                name = rng.choice(sorted(results))
                results[name + new] = results.pop(name)
                target = None
        elif kind == "big product":
            results = document.get("results", {})
            name = rng.choice(sorted(results))
            values = [repr(str(k)) for k in range(rng.choice([10, 1000]))]
            results[name][1] = [values] * 3
            target = None
        else:  # drop key
            target = target if target else ("results",)
            parent = document
            for key in target[:-1]:
                parent = parent[key]
            del parent[target[-1]]
            target = None
        if target is not None:
            document = replaced(document, target, new)
        path.write_text(json.dumps(document))
    return kind


@pytest.fixture(scope="module")
def fuzz_project(asv_project, tmp_path_factory):
    """A copy of the real results with a configuration whose repository is the fixture's."""
    root = tmp_path_factory.mktemp("fuzz")
    config = json.loads((asv_project.root / "asv.conf.json").read_text())
    config.update(repo=str(asv_project.root), results_dir="results", html_dir="html")
    (root / "asv.conf.json").write_text(json.dumps(config))
    return root, asv_project


def loaded_with_warnings(results: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load(results)
    return frame, " ".join(str(w.message) for w in caught)


@pytest.mark.slow
def test_fuzzed_result_files_never_crash_and_are_named(fuzz_project):
    root, project = fuzz_project
    pristine = project.results_dir
    files = sorted(p for p in pristine.glob("*/*.json") if p.name != "machine.json")
    baseline = load(pristine)
    base, head = project.commits[0], project.commits[1]
    rng = random.Random(SEED)
    commands = [["report", "-f", "md", "--no-plots", "results"], ["summary", "results"],
                ["compare", base[:8], head[:8], "--results", "results"],
                ["history", "--regressions", "results"], ["history", "results"],
                ["gate", base, head, "--no-run", "--config", "asv.conf.json"]]
    kinds: dict[str, int] = {}
    runs = 0
    for case in range(MUTATIONS // VICTIMS_PER_CASE):
        results = root / "results"
        shutil.rmtree(results, ignore_errors=True)
        shutil.copytree(pristine, results, symlinks=True)
        victims = []
        for victim_source in rng.sample(files, VICTIMS_PER_CASE):
            victim = results / victim_source.relative_to(pristine)
            kind = mutate(rng, victim_source.read_text(), victim)
            kinds[kind] = kinds.get(kind, 0) + 1
            victims.append((victim_source, victim, kind))
        where = f"case {case} ({', '.join(f'{k} on {v.name}' for _, v, k in victims)})"

        frame, messages = loaded_with_warnings(results)
        sources = {str(source) for source, _, _ in victims}
        damaged = {str(victim) for _, victim, _ in victims}
        others = baseline[~baseline["file"].isin(sources)]
        kept = frame[~frame["file"].isin(damaged)]
        assert len(kept) == len(others) > 0, f"{where}: good files lost"
        skipped = [victim for _, victim, _ in victims if str(victim) not in set(frame["file"])]
        for victim in skipped:
            assert victim.name in messages, f"{where}: {victim.name} skipped, not named"

        # Plots (and every label of the figures) on one case in 50: they cost 1-2 s each.
        argv_list = commands + ([["report", "-f", "html", "results"]] if case % 50 == 0 else [])
        for argv in argv_list:
            cwd = os.getcwd()
            os.chdir(root)
            try:
                status, out, err = run_cli(*argv)
            finally:
                os.chdir(cwd)
            runs += 1
            assert "Traceback" not in err + out, f"{where}: {argv[0]}: {err[-3000:]}"
            assert UNEXPECTED not in err, f"{where}: {argv[0]}: {err[-3000:]}"
            assert status in (0, 1, 2), f"{where}: {argv[0]}: status {status}"
            if status == 1:
                assert argv[0] in ("gate", "compare"), f"{where}: {argv[0]} exit 1"
            if argv[0] in ("report", "history", "summary"):
                for victim in skipped:
                    assert victim.name in err, f"{where}: {argv[0]} did not name {victim.name}"
    print(f"fuzz: {sum(kinds.values())} mutations, {runs} command runs, 0 tracebacks; "
          f"kinds: {kinds}")
    assert sum(kinds.values()) >= 500 and len(kinds) >= 10
