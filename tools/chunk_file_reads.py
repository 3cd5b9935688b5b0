"""How fast can anything read a zarr store's chunk files cold, against the disk probe?

In one run: the harness's disk probe (``machine.roofline``: its best and median pass over one
freshly written file) and cold reads of every chunk file of the harness's zarr store of
``SHAPE`` float32 in chunks of ``CHUNK_ROWS`` full rows, whole files with ``read(2)`` into
8 MiB buffers (``pagecache.read_sequentially``): in chunk order and in on-disk order (each
file's first physical extent, ``FIEMAP``), from 1, 2 and 4 threads, with and without
``POSIX_FADV_WILLNEED`` for the next files (``--ahead``, default 4). Prints each pattern's
median GB/s (``--passes`` cold passes each, interleaved) and its share of the probe's best.
docs/findings-storage.md quotes

    python tools/chunk_file_reads.py 1000x100000 10
"""
import argparse
import fcntl
import math
import os
import statistics
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from asv_bench_harness.pagecache import evict

from harness.measuring.matrix.spec import DatasetSpec, parse_shape
from harness.measuring.meters import machine
from harness.measuring.meters.pagecache import read_sequentially
from harness.measuring.storage import datasets
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.strategies import readahead

FS_IOC_FIEMAP = 0xC020660B
BUFFER_BYTES = 8 << 20
AHEAD_FILES = 4


def first_physical_byte(path) -> int:
    """Where the file's first extent lies on the device (``FIEMAP``; 0 when unknown)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        # struct fiemap (start, length, flags=SYNC, mapped, count=1, reserved) + one extent.
        request = bytearray(struct.pack("QQIIII", 0, 2**64 - 1, 1, 0, 1, 0) + bytes(56))
        fcntl.ioctl(fd, FS_IOC_FIEMAP, request)
        if not struct.unpack_from("I", request, 20)[0]:
            return 0
        return struct.unpack_from("QQQ", request, 32)[1]
    except OSError:
        return 0
    finally:
        os.close(fd)


def cold_pass(store, files, threads: int, ahead: int) -> float:
    """GB/s of one cold pass reading ``files`` in order from ``threads`` threads."""
    evict(store)
    local = threading.local()

    def read(index: int) -> int:
        if not hasattr(local, "buffer"):
            local.buffer = bytearray(BUFFER_BYTES)
        if ahead:
            readahead.advise(readahead.Range(f, 0, 0) for f in files[index + 1:index + 1 + ahead])
        return read_sequentially(files[index], local.buffer)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        nbytes = sum(pool.map(read, range(len(files))))
    return nbytes / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", type=parse_shape, help="ROWSxCOLS of the float32 store")
    parser.add_argument("chunk_rows", type=int)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--ahead", type=int, default=AHEAD_FILES, metavar="FILES",
                        help=f"files asked for ahead of the reader (default {AHEAD_FILES})")
    args = parser.parse_args()
    rows, cols = args.shape
    spec = DatasetSpec((rows, cols), "float32", storage="zarr", chunks=(args.chunk_rows, cols))
    store = datasets.materialize(spec)
    array = zarr_store.open_array(store)
    chunk_rows, _ = zarr_store.chunk_shape(spec)
    files = [zarr_store.chunk_file(array, store, (i, 0))
             for i in range(math.ceil(rows / chunk_rows))]
    on_disk = sorted(files, key=first_physical_byte)
    patterns = {f"{order} order, {threads} thread(s)"
                f"{f', WILLNEED {ahead} ahead' if ahead else ''}": (paths, threads, ahead)
                for order, paths in (("chunk", files), ("disk", on_disk))
                for threads in (1, 2, 4) for ahead in (0, args.ahead)
                if order == "chunk" or (threads == 1 and not ahead)}
    probe = machine.roofline(repeats=1)
    rates = {name: [] for name in patterns}
    for _ in range(args.passes):
        for name, (paths, threads, ahead) in patterns.items():
            rates[name].append(cold_pass(store, paths, threads, ahead))
    print(f"{len(files)} chunk files of {files[0].stat().st_size / 2**20:.1f} MiB; "
          f"disk probe (one fresh file): best {probe.disk_read_gbps:.2f} GB/s, "
          f"median {probe.disk_read_median_gbps:.2f}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<42} {median:5.2f} GB/s  {100 * median / probe.disk_read_gbps:5.1f} % "
              f"of the probe's best")


if __name__ == "__main__":
    main()
