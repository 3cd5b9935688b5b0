"""The meter plugin (plugins/asv_bench_harness) in this process: its asv benchmark types as
asv_runner builds and runs them, its stdlib-only core, and its pytest markers through pytester.
The same types under a real ``asv run`` are in test_meter_asv.py."""

from __future__ import annotations

import ast
import mmap
import re
import sys
from pathlib import Path

import pytest
from asv_bench_harness import figures
from asv_bench_harness.benchmarks import coldtime, increments, reads
from asv_bench_harness.pagecache import CacheEvictionError
from asv_runner.benchmarks import benchmark_types
from conftest import MB, MiB, requires_clear_refs

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "asv_bench_harness"
TYPES = [*increments.export_as_benchmark, *reads.export_as_benchmark,
         *coldtime.export_as_benchmark]


class Suite:
    """A benchmark class as a project writes one: its setup holds memory."""

    def setup(self):
        self.held = bytearray(50 * MB)

    def allocate(self):
        block = bytearray(32 * MiB)
        return len(block)


def build(benchmark_type, func, *sources):
    """The benchmark asv_runner's discovery would build for ``func``."""
    return benchmark_type(f"suite.{benchmark_type.figure.prefix}x", func, [func, *sources])


def test_each_prefix_names_one_type_and_none_of_asvs():
    asv_names = ["time_x", "timeraw_x", "mem_x", "peakmem_x", "track_x"]
    for benchmark_type in TYPES:
        name = benchmark_type.figure.prefix + "x"
        assert [t for t in TYPES if t.name_regex.match(name)] == [benchmark_type]
        assert not any(benchmark_type.name_regex.match(n) for n in asv_names)
        assert not any(t.name_regex.match(name) for t in benchmark_types if t not in TYPES)
    assert [f.prefix for f in figures.FIGURES] == [t.figure.prefix for t in TYPES]
    assert figures.figure_of("m.C.anonincrement_build") is figures.ANON_INCREMENT
    assert figures.figure_of("m.C.peakmem_build") is None


@requires_clear_refs
def test_memory_types_measure_the_call_and_not_what_setup_holds():
    suite = Suite()
    values = {}
    for benchmark_type in increments.export_as_benchmark:
        benchmark = build(benchmark_type, suite.allocate, suite)
        assert benchmark.do_setup() is False
        values[benchmark.type] = benchmark.run()
        assert benchmark.unit == "bytes"
    for kind in ("peakincrement", "anonincrement"):
        assert abs(values[kind] - 32 * MiB) <= MiB, values
    assert values["fileincrement"] < MiB, values


def test_read_types_count_a_cold_file_read_with_read_calls(scratch_file):
    path = scratch_file(20 * MB)

    def read_whole_file():
        return len(path.read_bytes())

    read_whole_file.cold_files = [str(path)]
    storage = build(reads.StorageReadBenchmark, read_whole_file).run()
    calls = build(reads.ReadCallsBenchmark, read_whole_file).run()
    assert abs(storage - 20 * MB) <= 0.02 * 20 * MB, storage
    assert abs(calls - 20 * MB) <= 0.02 * 20 * MB, calls


def test_cold_time_takes_its_samples_with_setup_run_again_before_each(scratch_file):
    path = scratch_file(4 * MB)
    setups = []

    class ColdSuite:
        repeat = 3

        def setup(self):
            setups.append(1)
            self.cold_files = path  # one path, set by setup

        def read(self):
            return len(path.read_bytes())

    suite = ColdSuite()
    benchmark = build(coldtime.ColdTimeBenchmark, suite.read, suite)
    benchmark.do_setup()
    result = benchmark.run()
    assert result["number"] == 1 and len(result["samples"]) == 3
    assert all(0 < s < 10 for s in result["samples"])
    assert len(setups) == 3


def test_cold_time_without_files_is_refused_with_what_to_do():
    def nothing_named():
        pass

    with pytest.raises(coldtime.NoColdFilesError, match="names no files to evict.*cold_files"):
        build(coldtime.ColdTimeBenchmark, nothing_named).run()


def test_a_named_file_that_a_live_map_keeps_cached_is_refused(scratch_file):
    path = scratch_file(8 * MB)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as held:
        sum(held[offset] for offset in range(0, len(held), mmap.PAGESIZE))  # all cached, mapped

        def read():
            return len(path.read_bytes())

        read.cold_files = [str(path)]
        with pytest.raises(CacheEvictionError, match="live memory map"):
            build(coldtime.ColdTimeBenchmark, read).run()


def test_the_plugin_imports_nothing_but_the_standard_library_and_asv_runner():
    allowed = {"asv_bench_harness", "asv_runner", "pytest"}  # pytest: its own plugin only
    for path in (PLUGIN / "asv_bench_harness").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed, (path.name, module)


# ---------------------------------------------------------------------------- pytest markers

MARKED_TESTS = '''
import pytest

MiB = 1 << 20


@pytest.fixture
def big_setup():
    held = bytearray(200 * MiB)  # every page written
    yield held


@pytest.mark.limit_anon_memory("64 MiB")
def test_over():
    block = bytearray(100 * MiB)
    assert len(block)


@pytest.mark.limit_anon_memory("64 MiB")
def test_under():
    block = bytearray(16 * MiB)
    assert len(block)


@pytest.mark.limit_anon_memory("64 MiB")
def test_fixture_not_counted(big_setup):
    assert len(big_setup) == 200 * MiB


@pytest.mark.limit_file_memory(16 * MiB)
def test_file_over(tmp_path):
    import mmap
    import time
    path = tmp_path / "mapped.bin"
    path.write_bytes(bytes(range(256)) * (128 * 1024))  # 32 MiB
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        total = sum(m[i] + 1 for i in range(0, len(m), mmap.PAGESIZE))
        # The mapped pages stay resident a while: the sampler that splits the exact increment
        # into anonymous and file-backed parts runs only when it gets the GIL and a core.
        time.sleep(0.2)
        total += sum(m[i] + 1 for i in range(0, len(m), mmap.PAGESIZE))
    assert total
'''


@requires_clear_refs
def test_marker_fails_a_test_over_its_limit_with_the_figure(pytester):
    pytester.makepyfile(test_marked=MARKED_TESTS)
    result = pytester.runpytest("-p", "asv_bench_harness.pytest_plugin", "-q")
    result.assert_outcomes(passed=2, failed=2)
    outcomes = {report.head_line: report.outcome
                for report in result.reprec.getreports("pytest_runtest_logreport")
                if report.when == "call"}
    assert outcomes == {"test_over": "failed", "test_under": "passed",
                        "test_fixture_not_counted": "passed", "test_file_over": "failed"}
    output = result.stdout.str()
    measured = re.search(r"limit_anon_memory: the test body's peak increment of anonymous "
                         r"memory was [\d.]+ MiB \((\d+) bytes\), over its limit of 64\.0 MiB",
                         output)
    assert measured, output
    assert abs(int(measured.group(1)) - 100 * MiB) <= MiB
    assert "limit_file_memory: the test body's peak increment of file-backed memory" in output


def test_marker_with_a_limit_that_is_not_a_size_is_a_usage_error(pytester):
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.limit_anon_memory("lots")
def test_bad():
    pass
''')
    result = pytester.runpytest("-p", "asv_bench_harness.pytest_plugin", "-q")
    assert "not a size in bytes: 'lots'" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0
