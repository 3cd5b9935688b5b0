"""asv result files for report tests: ``write_suite`` writes any benchmarks' figures,
``our_suite`` a miniature of our suite's results with known Pareto front, roofline and answer,
``known_suite`` two problems whose fastest strategies are known (the browser test's fixture)."""

from __future__ import annotations

import json
from pathlib import Path

from asv_fixture.make_asv_results import RESULT_COLUMNS


def write_suite(results: Path, benchmarks: dict[str, tuple[list[str], list[list], list]],
                commit: str = "c0ffee0123", date_ms: int = 1704110400000) -> Path:
    """Write asv files for benchmarks {name: (param_names, param values, results)}."""
    machine_dir = results / "box"
    machine_dir.mkdir(parents=True, exist_ok=True)
    (machine_dir / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    listed, rows = {}, {}
    for name, (names, values, result) in benchmarks.items():
        method = name.rsplit(".", 1)[-1]
        kind = {"time": "time", "trac": "track", "peak": "peakmemory"}[method[:4]]
        unit = "GB/s" if method.endswith("gbps") else "seconds" if kind == "time" else "bytes"
        reprs = [[repr(v) for v in vs] for vs in values]
        listed[name] = {"name": name, "param_names": names, "params": reprs, "type": kind,
                        "unit": unit, "version": "1"}
        rows[name] = [result, reprs, "1"]
    (results / "benchmarks.json").write_text(json.dumps({**listed, "version": 2}))
    document = {"commit_hash": commit, "env_name": "env", "date": date_ms,
                "params": {"machine": "box"}, "python": "3.11", "requirements": {},
                "env_vars": {}, "result_columns": RESULT_COLUMNS, "results": rows, "version": 2}
    path = machine_dir / f"{commit[:8]}-env.json"
    path.write_text(json.dumps(document))
    return path


PROBLEM = (["shape", "dtype", "strategy"], [["100x1000"], ["float32"]])


def our_suite() -> dict:
    """A miniature of our suite's results, with a known Pareto front and roofline."""
    names, problem = PROBLEM
    strategies = ["memmap", "memmap-rows", "memmap-blocked"]
    hdf5_names = ["shape", "dtype", "strategy", "chunks", "chunk_cache", "compression"]
    hdf5_values = [["100x1000"], ["float32"], ["hdf5-blocked"], ["rows", "columns"],
                   [1048576, 8388608], ["none"]]
    hdf5_times = [0.05, 0.04, 0.8, 0.2]  # rows x (1 MiB, 8 MiB), columns x (1 MiB, 8 MiB)
    return {
        "dense.DenseMatvec.time_matvec": (names, problem + [["dense"]], [0.01]),
        "dense.DenseMatvec.track_peak_increment": (names, problem + [["dense"]], [4e5]),
        "dense.DenseMatvec.track_gbps": (names, problem + [["dense"]], [20.0]),
        "memmap.MemmapMatvec.time_matvec": (names, problem + [strategies], [0.02, 0.5, 0.03]),
        "memmap.MemmapMatvec.track_peak_increment": (names, problem + [strategies],
                                                     [8e6, 1e3, 1e5]),
        "memmap.MemmapMatvec.track_gbps": (names, problem + [strategies], [10.0, 0.4, 7.0]),
        "hdf5.Hdf5Matvec.time_matvec": (hdf5_names, hdf5_values, hdf5_times),
        "hdf5.Hdf5Matvec.track_peak_increment": (hdf5_names, hdf5_values, [1e7] * 4),
        "machine.Roofline.track_memory_read_gbps": ([], [], [25.0]),
        "machine.Roofline.track_disk_read_gbps": ([], [], [2.0]),
    }


#: known_suite's second matrix: method -> its figures (dense; memmap, memmap-rows,
#: memmap-blocked), appended to our_suite's since asv's grid runs shapes first.
SECOND_MATRIX = {"dense.DenseMatvec.time_matvec": [0.015],
                 "dense.DenseMatvec.track_peak_increment": [8e5],
                 "dense.DenseMatvec.track_gbps": [13.0],
                 "memmap.MemmapMatvec.time_matvec": [0.02, 0.6, 0.012],
                 "memmap.MemmapMatvec.track_peak_increment": [1.6e7, 2e3, 2e5],
                 "memmap.MemmapMatvec.track_gbps": [10.0, 0.3, 16.0]}


def known_suite() -> dict:
    """``our_suite`` plus a second matrix, 200x1000 float32, where memmap-blocked is fastest
    (12 ms against dense's 15 ms) and memmap-rows the leanest (2 kB)."""
    suite = our_suite()
    for name, extra in SECOND_MATRIX.items():
        params, values, result = suite[name]
        suite[name] = (params, [["100x1000", "200x1000"], *values[1:]], result + extra)
    return suite
