"""dask.distributed: the cluster meter on known allocations, dask-distributed against the dense
reference, and a real scheduler and workers started with the ``dask`` command line on
127.0.0.1, used from the CLI and from the suite, one of them killed during a product."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import requires_clear_refs

from harness.measuring import strategies
from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.meters import cluster_memory
from harness.measuring.runs.measure import measure_in_process
from harness.measuring.storage import datasets
from harness.measuring.strategies import cluster
from harness.measuring.strategies import dask as dask_strategies

REPO = Path(__file__).resolve().parents[1]
ALLOCATED = 100_000_000
MiB = 1 << 20


def _allocate_and_touch(nbytes: int) -> int:
    block = np.ones(nbytes, dtype=np.uint8)  # every page written
    return int(block[::4096].sum())


@pytest.fixture(scope="module")
def local_client():
    """The harness's own LocalCluster (2 workers x 1 thread), shut down after the module."""
    client = cluster.client(cluster.ClusterSpec())
    yield client
    cluster_processes = _cluster_processes()
    assert len(cluster_processes) >= 2  # two workers (under their nannies)
    cluster.shutdown()
    _gone, alive = psutil.wait_procs(cluster_processes, timeout=30)
    assert not alive, f"worker processes outlived the cluster: {alive}"


def _cluster_processes() -> list[psutil.Process]:
    """This process's descendants but multiprocessing's resource tracker (which lives as long
    as this process, whatever the cluster does)."""
    return [p for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())]


def _read_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        assert len(os.pread(fd, os.path.getsize(path), 0)) == os.path.getsize(path)
    finally:
        os.close(fd)


@requires_clear_refs
@pytest.mark.parametrize("housekeeping_caller,expected", [(False, 15_000), (True, 10_000)])
def test_a_process_reads_what_its_call_read_not_what_the_meter_or_housekeeping_read(
        tmp_path, housekeeping_caller, expected):
    """Over 0.4 s, a task thread reads 10,000 bytes, the calling thread (a worker's event
    loop) 5,000 and a thread named as dask's profiler 7,000: the call read 10,000 bytes (15,000
    when the caller is not housekeeping), not that plus the profiler's, the sampler's ~400
    ``statm`` reads (every millisecond) and the meter's readings of the counters."""
    files = {}
    for name, size in (("task", 10_000), ("caller", 5_000), ("profiler", 7_000)):
        files[name] = tmp_path / name
        files[name].write_bytes(bytes(size))
    go, stop = threading.Event(), threading.Event()

    def profiler():  # started before the meter, as dask's is with the worker
        go.wait()
        _read_file(files["profiler"])
        stop.wait()

    profile_thread = threading.Thread(target=profiler, name="Profile")
    profile_thread.start()
    meter = cluster_memory.ProcessMeter(housekeeping_caller=housekeeping_caller)
    meter.start()
    go.set()
    time.sleep(0.2)
    task = threading.Thread(target=_read_file, args=(files["task"],))
    task.start()
    task.join()
    _read_file(files["caller"])
    time.sleep(0.2)
    meter_reads = meter.measurement.own_read_call_bytes
    peak = meter.stop("this process")
    stop.set()
    profile_thread.join()
    assert meter_reads > 1000  # what rchar counted of the meter's sampler over the call
    assert peak.read_call_bytes == expected


@requires_clear_refs
@pytest.mark.slow
def test_cluster_meter_is_exact_on_known_allocations(local_client):
    workers = sorted(local_client.ncores())
    assert len(workers) == 2
    for worker in workers:  # the task thread and its first allocations, once
        local_client.submit(_allocate_and_touch, 4096, workers=[worker], pure=False).result()

    def allocate_on_each_worker():
        futures = [local_client.submit(_allocate_and_touch, ALLOCATED, workers=[w], pure=False)
                   for w in workers]
        return [f.result() for f in futures]

    tolerance = max(MiB, 0.02 * ALLOCATED)
    for _ in range(10):
        _, peak = cluster_memory.measure_cluster(local_client, allocate_on_each_worker)
        assert [w.name for w in peak.workers] == workers
        for worker in peak.workers:
            assert abs(worker.increment - ALLOCATED) <= tolerance, worker
            # The split is sampled (every millisecond): at most the exact figure.
            assert 0 < worker.anon_increment <= worker.increment + tolerance, worker
        worker_sum = sum(w.increment for w in peak.workers)
        assert abs(worker_sum - 2 * ALLOCATED) <= 2 * tolerance
        assert peak.increment == worker_sum + peak.client.increment
        assert peak.method == "cluster-clear_refs"
        # dask's sampler is reported as it is: a number, whatever it saw.
        record = peak.to_dict()
        assert record["sampled_peak_bytes"] >= 0 and record["sampled_count"] >= 0


@pytest.mark.slow
@pytest.mark.parametrize("storage,chunks,compression", [
    ("zarr", (7, 33), "blosc-lz4"), ("zarr", (7, 33), None), ("zarr", (500, 500), None),
    ("hdf5", (7, 33), "gzip"), ("hdf5", (7, 33), None), ("hdf5", None, None)])
def test_dask_distributed_equals_the_dense_reference(local_client, tmp_path, storage, chunks,
                                                     compression):
    for shape, dtype, x_dtype in (((45, 97), "float32", "float64"), ((1, 50), "float64", "float32"),
                                  ((50, 1), "float32", "float64")):
        spec = DatasetSpec(shape, dtype, storage=storage, chunks=chunks,
                                    compression=compression)
        x = datasets.vector(shape[1], x_dtype)
        y = strategies.matvec("dask-distributed", spec, x, root=tmp_path, block_rows=2)
        assert y.dtype == np.dtype(dtype)
        np.testing.assert_allclose(y, _dense_reference(spec, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("storage,chunks,compression", [
    ("zarr", (7, 33), None), ("zarr", (7, 33), "zstd"), ("hdf5", (500, 500), None),
    ("hdf5", (7, 33), "gzip")])
def test_dask_distributed_transposes_and_multiplies_columns(local_client, tmp_path, storage,
                                                            chunks, compression):
    for shape, dtype in (((45, 97), "float32"), ((1, 50), "float64"), ((50, 1), "float64")):
        spec = DatasetSpec(shape, dtype, storage=storage, chunks=chunks, compression=compression)
        a = dense_array(spec).astype(np.float64)
        rng = np.random.default_rng(7)
        # Operands of the matrix dtype, so that the reference needs no cast.
        y, X, Y = (rng.standard_normal(n).astype(dtype)
                   for n in (shape[0], (shape[1], 64), (shape[0], 3)))
        tolerance = 1e-4 if dtype == "float32" else 1e-10
        with strategies.get("dask-distributed").open(spec, root=tmp_path, block_rows=2) as op:
            for got, want in ((op.rmatvec(y), a.T @ y.astype(np.float64)),
                              (op.matmat(X), a @ X.astype(np.float64)),
                              (op.rmatmat(Y), a.T @ Y.astype(np.float64))):
                assert got.dtype == np.dtype(dtype)
                np.testing.assert_allclose(got, want, rtol=tolerance,
                                           atol=tolerance * np.abs(want).max())


@pytest.mark.parametrize("storage,compression,reader", [
    ("zarr", None, "zarr-mmap"), ("zarr", "zstd", "zarr-direct"),
    ("hdf5", None, "hdf5-mmap"), ("hdf5", "gzip", "hdf5-blocked")])
def test_workers_read_with_the_fastest_reader_the_store_allows(local_client, tmp_path, storage,
                                                               compression, reader):
    spec = DatasetSpec((30, 40), storage=storage, chunks=(4, 40), compression=compression)
    with strategies.get("dask-distributed").open(spec, root=tmp_path) as operand:
        # One task per worker thread, each a range of whole chunk-rows, together every row.
        assert [(first, stop) for _, _, first, stop in operand.parts] == [(0, 16), (16, 30)]
        assert sorted(operand.readers.values()) == [[reader], [reader]]
        key = operand.key
    # Closing the operand closes what the workers opened.
    assert sum(local_client.run(dask_strategies.close_parts_in_worker, key).values()) == 0


@pytest.mark.parametrize("nrows,parts,align,expected", [
    (30, 2, 4, [(0, 16), (16, 30)]), (1, 4, 10, [(0, 1)]), (10, 3, 1, [(0, 3), (3, 6), (6, 10)]),
    (8, 8, 4, [(0, 4), (4, 8)]), (100, 1, 7, [(0, 100)])])
def test_row_parts_are_whole_aligned_units_covering_every_row(nrows, parts, align, expected):
    assert dask_strategies.row_parts(nrows, parts, align) == expected


@requires_clear_refs
@pytest.mark.slow
@pytest.mark.parametrize("compression", [None, "zstd"])
def test_measure_reports_the_clusters_summed_memory(local_client, tmp_path, compression):
    spec = DatasetSpec((64, 20000), storage="zarr", chunks=(8, 20000),
                                compression=compression)
    m = measure_in_process("dask-distributed", spec, repeat=1, root=tmp_path, block_rows=16)
    assert m.max_abs_error < 1e-3
    assert len(m.cluster["workers"]) == 2
    assert m.increment_bytes == m.cluster["increment_bytes"]  # the worst pass, summed
    assert m.memory_method.startswith("cluster-")
    assert m.anon_increment_bytes <= m.budget_bytes + 8 * MiB
    if compression is None:  # the workers map the chunk files: no read calls for the matrix
        # The metadata was read at opening, before the meter started.
        assert m.cluster["worker_read_call_bytes"] <= 4096
    else:  # they read every stored chunk (zarr-direct), and the metadata when they open
        chunk_bytes = sum(f.stat().st_size for store in tmp_path.glob("*.zarr")
                          for f in store.rglob("*") if f.is_file() and f.name != "zarr.json")
        assert 0 < chunk_bytes < m.stored_bytes
        # Each chunk once (a chunk is 570 kB), and besides them a few bytes at most (8 here).
        assert chunk_bytes <= m.cluster["worker_read_call_bytes"] <= chunk_bytes + 4096


# ------------------------------------------------------------------ a cluster started by hand


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_command() -> str:
    return str(Path(sys.executable).parent / "dask")


@contextlib.contextmanager
def _command_line_cluster(workers: int = 2):
    """``dask scheduler`` and ``dask worker``s on 127.0.0.1, each in its own process group,
    always killed (group and all) on the way out; yields (address, worker processes)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
             "start_new_session": True, "env": env}
    procs = [subprocess.Popen([_dask_command(), "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], **quiet)]
    try:
        for _ in range(workers):
            procs.append(subprocess.Popen(
                [_dask_command(), "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                 "--no-nanny", "--no-dashboard", "--memory-limit", "0"], **quiet))
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, procs[1:]
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=30)


@pytest.mark.slow
def test_a_command_line_cluster_from_the_cli_and_the_suite(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), HARNESS_DATA_DIR=str(tmp_path),
               HARNESS_PROFILE="ci")
    with _command_line_cluster() as (address, _):
        done = subprocess.run(
            [sys.executable, "-m", "harness", "measure", "--shape", "40x3000",
             "--strategies", "dask-distributed", "--scheduler", address, "--repeat", "1",
             "--no-roofline", "--format", "json", "--timeout", "120"],
            check=False, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        records = {r["strategy"]: r for r in json.loads(done.stdout)}
        cluster_record = records["dask-distributed"]["cluster"]
        assert len(cluster_record["workers"]) == 2
        assert records["dask-distributed"]["max_abs_error"] < 1e-3
        # The suite, pointed at the cluster by $HARNESS_DASK_SCHEDULER.
        suite = (
            "from benchmarks.distributed import DistributedMatvec as S\n"
            "s = S(); params = ['200x5000', 'float32', 'dask-distributed', 'rows', '2x1']\n"
            f"cache = {{'data_root': {str(tmp_path)!r}, 'memo_dir': {str(tmp_path)!r}}}\n"
            "s.setup(cache, *params); s.time_matvec(cache, *params)\n"
            "print(s.track_peak_increment(cache, *params), s.track_sampled_peak(cache, *params),"
            " s.track_read_bytes(cache, *params))\n"
            "s.teardown(cache, *params)\n")
        done = subprocess.run([sys.executable, "-c", suite], check=False, capture_output=True,
                              text=True,
                              timeout=300, env=dict(env, HARNESS_DASK_SCHEDULER=address),
                              cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:]
        peak, sampled, read = (float(v) for v in done.stdout.split()[-3:])
        # Mapped, not read through read calls (a reader through zarr would read it all).
        assert peak > 0 and sampled >= 0 and 0 <= read <= 4096  # not the chunks


@pytest.mark.slow
def test_a_worker_killed_during_a_product_is_a_clear_error(tmp_path):
    spec = DatasetSpec((200, 2000), storage="zarr", chunks=(1, 2000))
    x = datasets.vector(2000)
    with _command_line_cluster() as (address, workers):
        strategy = strategies.get("dask-distributed")
        with strategy.open(spec, root=tmp_path, scheduler=address, block_rows=1) as operand:
            operand.matvec(x)  # one full product first: the cluster works
            started = time.monotonic()
            killer = subprocess.Popen(
                [sys.executable, "-c", (f"import os,signal,time; time.sleep(0.3); "
                                       f"os.killpg({workers[0].pid}, signal.SIGKILL)")])
            try:
                with pytest.raises(cluster.ClusterError, match="left the dask cluster|failed"):
                    # Products until the kill lands during one (a product takes milliseconds
                    # here: a fixed count of them could all finish before it).
                    while time.monotonic() - started < 60:
                        operand.matvec(x)
            finally:
                killer.wait(timeout=30)
            assert time.monotonic() - started < 120
            # The kill took the victim only: the error is not the strategy killing the cluster.
            assert workers[0].poll() is not None and workers[1].poll() is None


@pytest.mark.parametrize("address", ["http://127.0.0.1:8786", "tcp://127.0.0.1:notaport"])
def test_a_malformed_scheduler_address_is_a_clear_error_at_once(address):
    started = time.monotonic()
    with pytest.raises(cluster.ClusterError, match="is not a dask scheduler address"):
        cluster.client(cluster.ClusterSpec(scheduler=address))
    assert time.monotonic() - started < 10  # refused before any Client is made


def test_a_worker_that_joined_during_a_metered_call_does_not_hide_its_result():
    # A worker restarted mid-call has no meter: it is left out, never a KeyError.
    assert cluster_memory._stop_in_worker("a token no meter started") is None


def _dense_reference(spec, x):
    """A @ x in float64 from the generated values themselves (no file, no strategy)."""
    return dense_array(spec).astype(np.float64) @ x.astype(spec.dtype).astype(np.float64)


def test_closing_an_operator_on_a_cluster_stops_the_cluster_it_started(tmp_path):
    import harness

    # One worker: another cluster than the module's (2 x 1), which stays up.
    spec = DatasetSpec((30, 40), "float64", storage="zarr", chunks=(5, 40))
    before = {p.pid for p in _cluster_processes()}
    with harness.operator(spec, "dask-distributed", root=tmp_path, workers=1) as op:
        started = [p for p in _cluster_processes() if p.pid not in before]
        assert started  # its worker (and nanny)
        np.testing.assert_allclose(op.rmatvec(np.ones(30)), dense_array(spec).sum(axis=0),
                                   rtol=1e-12)
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, f"the operator's cluster outlived it: {alive}"
    assert cluster.ClusterSpec(workers=1) not in cluster._CLIENTS
