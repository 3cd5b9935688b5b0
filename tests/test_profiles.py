"""harness.measuring.runs.profiles: profile choice, grids, chunk layouts, and the skip rules (RAM, disk, time)."""

from __future__ import annotations

import math

import psutil
import pytest

from harness import names
from harness.measuring import fit, strategies
from harness.measuring.matrix.spec import DatasetSpec, parse_shape
from harness.measuring.runs import profiles
from harness.measuring.storage import datasets
from harness.units import MiB


def _case(family, **params):
    return profiles.case(family, params, profiles.get("default"), check_fit=False)


def test_unset_variable_selects_default_profile(monkeypatch):
    monkeypatch.delenv(profiles.PROFILE_ENV_VAR, raising=False)
    assert profiles.get().name == "default"


def test_variable_selects_ci_profile(monkeypatch):
    monkeypatch.setenv(profiles.PROFILE_ENV_VAR, "ci")
    assert profiles.get().name == "ci"


def test_unknown_profile_error_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv(profiles.PROFILE_ENV_VAR, "huge")
    with pytest.raises(ValueError, match=r"'huge'.*\['ci', 'default', 'full'\]"):
        profiles.get()


def test_default_profile_has_the_notebooks_sizes():
    default = profiles.get("default")
    assert set(default.problems["dense"]) == {("1000x100000", "float32"),
                                              ("100x1000000", "float32"),
                                              ("10000x10000", "float64")}
    assert default.grids["sparse.SparseMatvec"]["density"] == [0.001, 0.1]  # the range's ends
    assert default.problems["sparse"] == (("1000x100000", "float32"),)


def test_full_profile_holds_a_matrix_larger_than_this_machines_ram():
    full = profiles.get("full")
    largest = max(parse_shape(s)[0] * parse_shape(s)[1]
                  * (8 if d == "float64" else 4) for s, d in full.problems["hdf5"])
    assert largest > psutil.virtual_memory().total


def test_params_follow_param_names_order():
    names = ["shape", "dtype", "strategy", "chunks", "chunk_cache", "compression"]
    params = profiles.get("ci").params("hdf5.Hdf5Matvec", names)
    assert len(params) == 6
    assert params[3] == list(profiles.CHUNK_LAYOUTS)
    assert params[4] == [profiles.HDF5_DEFAULT_CHUNK_CACHE]


@pytest.mark.parametrize("name", sorted(profiles.PROFILES))
def test_every_suite_class_has_a_grid_over_its_parameter_names(name):
    grids = profiles.get(name).grids
    assert list(grids) == list(names.MATVEC_CLASSES)
    assert all(list(grid) == names.param_names(cls) for cls, grid in grids.items())


def test_a_class_that_asks_a_question_compares_the_strategies_that_declare_it():
    grids = profiles.get("default").grids
    assert grids["hdf5.Hdf5ChunkCache"]["strategy"] == ["hdf5-rows", "hdf5-blocked"]
    assert grids["hdf5.Hdf5Compression"]["strategy"] == ["hdf5-blocked", "hdf5-chunked",
                                                          "hdf5-direct"]
    assert grids["hdf5.Hdf5Matvec"]["strategy"] == strategies.names("hdf5")
    assert grids["sparse.SparseMatvec"]["strategy"] == strategies.names("sparse")


def test_params_for_unknown_class_is_a_clear_error():
    with pytest.raises(KeyError, match="no grid for 'hdf5.Nope'"):
        profiles.get("ci").params("hdf5.Nope", ["shape"])


@pytest.mark.parametrize("layout, expected", [
    ("contiguous", None),
    ("auto", "auto"),
    ("rows", (10, 100000)),       # the notebook's (10, 100000) chunks: 4 MB
    ("columns", (1000, 1048)),
    ("square", (512, 512)),        # 1 MiB of float32
])
def test_chunk_layouts_of_the_notebooks_matrix(layout, expected):
    assert profiles.chunks_for_layout(layout, (1000, 100000), "float32") == expected


def test_chunks_are_clipped_to_a_small_matrix():
    assert profiles.chunks_for_layout("square", (200, 5000), "float32") == (200, 512)
    assert profiles.chunks_for_layout("columns", (3, 10), "float64") == (3, 10)


def test_unknown_chunk_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="chunks must be one of"):
        profiles.chunks_for_layout("diagonal", (10, 10), "float32")


def test_hdf5_case_has_spec_and_chunk_cache_option():
    case = _case("hdf5", shape="1000x100000", dtype="float32", strategy="hdf5-blocked",
                 chunks="rows", chunk_cache=MiB, compression="lzf")
    assert case.spec == DatasetSpec((1000, 100000), "float32", storage="hdf5",
                                             chunks=(10, 100000), compression="lzf")
    assert case.options == {"chunk_cache_bytes": MiB}


def test_sparse_strategies_read_their_own_storage():
    on_disk = _case("sparse", shape="1000x100000", dtype="float32",
                    strategy="csr-hdf5-blocked", density=0.01)
    in_ram = _case("sparse", shape="1000x100000", dtype="float32", strategy="csr", density=0.01)
    assert (on_disk.spec.storage, in_ram.spec.storage) == ("csr-hdf5", "npz")


def test_problem_outside_the_profile_is_skipped_with_reason():
    with pytest.raises(profiles.Skip, match="not a dense problem of the 'default' profile"):
        _case("dense", shape="10000x10000", dtype="float32", strategy="dense")


def test_skip_is_what_asv_treats_as_skipped():
    assert issubclass(profiles.Skip, NotImplementedError)


def test_strategy_refusal_becomes_a_skip():
    with pytest.raises(profiles.Skip, match="contiguous"):
        _case("hdf5", shape="1000x100000", dtype="float32", strategy="hdf5-chunked",
              chunks="contiguous", chunk_cache=8 * MiB, compression="none")


def test_matrix_larger_than_available_ram_is_skipped_not_run():
    case = _case("dense", shape="1000x100000", dtype="float32", strategy="dense")
    reason = profiles.skip_reason(case, profiles.get("default"),
                                  available_ram_bytes=300 * MiB, free_disk_bytes=10**12)
    assert reason is not None and "RAM" in reason


def test_out_of_core_strategy_fits_where_in_ram_one_does_not():
    case = _case("memmap", shape="1000x100000", dtype="float32", strategy="memmap-blocked")
    assert profiles.skip_reason(case, profiles.get("default"), available_ram_bytes=300 * MiB,
                                free_disk_bytes=10**12) is None


def test_file_larger_than_free_disk_is_skipped(tmp_path):
    case = _case("memmap", shape="1000x100000", dtype="float32", strategy="memmap")
    reason = profiles.skip_reason(case, profiles.get("default"), data_root=tmp_path,
                                  available_ram_bytes=10**12, free_disk_bytes=100 * MiB)
    assert reason is not None and "HARNESS_DATA_DIR" in reason


def test_row_loop_through_too_small_chunk_cache_on_square_chunks_is_skipped():
    # 512 x 512 chunks: each row reads 196 chunks that an 8 MiB cache cannot keep: ~512x reads.
    case = _case("hdf5", shape="1000x100000", dtype="float32", strategy="hdf5-rows",
                 chunks="square", chunk_cache=8 * MiB, compression="none")
    reason = profiles.skip_reason(case, profiles.get("default"), available_ram_bytes=10**12,
                                  free_disk_bytes=10**12)
    assert reason is not None and "one pass would take" in reason


def test_row_loop_on_row_chunks_is_not_amplified():
    case = _case("hdf5", shape="1000x100000", dtype="float32", strategy="hdf5-rows",
                 chunks="rows", chunk_cache=MiB, compression="none")
    seconds = strategies.get(case.strategy).estimated_pass_seconds(case.spec, **case.options)
    assert seconds < 1.0


def test_skip_for_ram_takes_the_strategys_own_memory_model():
    # lil holds Python objects: the sparse module's model of the format decides, not a second one.
    case = _case("sparse", shape="1000x100000", dtype="float32", strategy="lil", density=0.01)
    needed = strategies.get("lil").needed_ram_bytes(case.spec)
    assert needed == strategies.get("lil").extra_memory_bytes(case.spec)
    just_enough = math.ceil(needed / fit.RAM_FRACTION)
    fits = profiles.skip_reason(case, profiles.get("default"), available_ram_bytes=just_enough,
                                free_disk_bytes=10**12)
    too_little = profiles.skip_reason(case, profiles.get("default"),
                                      available_ram_bytes=just_enough - 2,
                                      free_disk_bytes=10**12)
    assert fits is None and "RAM" in too_little


def test_hdf5_mmap_on_compressed_data_is_skipped():
    with pytest.raises(profiles.Skip, match="hdf5-mmap"):
        _case("hdf5", shape="1000x100000", dtype="float32", strategy="hdf5-mmap",
              chunks="rows", chunk_cache=8 * MiB, compression="gzip")


@pytest.mark.parametrize("name", ["ci", "default"])
def test_every_benchmark_class_runs_something(name):
    plan = profiles.planned_cases(profiles.get(name), check_fit=False)
    runnable = {key[0] for key, value in plan.items() if isinstance(value, profiles.Case)}
    assert runnable == set(profiles.get(name).grids)


def test_ci_profile_is_megabytes():
    plan = profiles.planned_cases(profiles.get("ci"), check_fit=False)
    largest = max(datasets.expected_file_bytes(c.spec) for c in plan.values()
                  if isinstance(c, profiles.Case))
    assert largest < 16 * MiB


@pytest.mark.parametrize("name", sorted(profiles.PROFILES))
def test_every_profile_times_enough_samples_for_asvs_significance_test(name):
    from asv import _stats

    profile = profiles.get(name)
    samples = profile.time_repeat[0] * profile.rounds  # asv's min repeat per round x rounds
    assert samples >= profiles.MIN_TIME_SAMPLES
    # A complete separation of n against n samples has the two-sided p-value 2 / C(2n, n);
    # asv's test needs p < 0.002.
    assert 2 / math.comb(2 * samples, samples) < 0.002
    # With that many samples asv finds a clear 2x slowdown significant, and no change not.
    fast = [1.0 + 0.01 * i for i in range(samples)]
    slow = [2.0 * v for v in fast]
    stats = {"ci_99_a": 0.9, "ci_99_b": 2.2}  # wide intervals: only the test can separate
    assert _stats.is_different(fast, slow, stats, stats)
    assert not _stats.is_different(fast, list(reversed(fast)), stats, stats)
