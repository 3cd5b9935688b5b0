"""Where does ``dask-distributed``'s time go, warm: the whole product against each worker's
part product timed inside its task.

Opens ``dask-distributed`` on a zarr store (the harness's LocalCluster, 2 workers x 1 thread),
runs 3 products to warm up, times 15 whole products on the client, then 10 rounds of the part
products timed inside the workers; prints the medians (ms). docs/findings-storage.md quotes

    python tools/dask_part_times.py 10000x100000 10

(the 4 GB store in chunks of 10 full rows). ``--no-profile`` turns dask's statistical profiler
off in the workers, to see what it costs. For a profile of the workers, ``--loop SECONDS``
runs products for that long after printing the workers' pids, for ``perf record -g -p``.
"""
import argparse
import os
import statistics
import time

from harness.measuring.matrix.spec import parse_shape


def _part_seconds(key, part, first, stop, v) -> float:
    """One part product in this worker, timed inside the task (seconds)."""
    from harness.measuring.strategies import dask as dask_strategies

    start = time.perf_counter()
    dask_strategies.part_product_in_worker(key, part, first, stop, v)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", type=parse_shape, help="ROWSxCOLS of the float32 store")
    parser.add_argument("chunk_rows", type=int, help="rows per chunk (chunks of full rows)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--loop", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()
    import dask

    if args.no_profile:
        dask.config.set({"distributed.worker.profile.enabled": False})
    from harness.measuring import strategies
    from harness.measuring.matrix.spec import DatasetSpec
    from harness.measuring.storage import datasets
    from harness.measuring.strategies import cluster

    rows, cols = args.shape
    spec = DatasetSpec((rows, cols), "float32", storage="zarr", chunks=(args.chunk_rows, cols))
    x = datasets.vector(cols, "float32")
    try:
        with strategies.get("dask-distributed").open(spec) as op:
            print("worker pids:", " ".join(str(p) for p in op.client.run(os.getpid).values()),
                  flush=True)
            for _ in range(3):
                op.matvec(x)
            if args.loop:
                deadline, count = time.monotonic() + args.loop, 0
                while time.monotonic() < deadline:
                    op.matvec(x)
                    count += 1
                print(f"{count} products in {args.loop:.0f} s")
                return
            whole = []
            for _ in range(15):
                start = time.perf_counter()
                op.matvec(x)
                whole.append(time.perf_counter() - start)
            parts = []
            for _ in range(10):
                futures = [op.client.submit(_part_seconds, op.key, part, first, stop, x,
                                            workers=[address], allow_other_workers=False,
                                            pure=False)
                           for part, address, first, stop in op.parts]
                parts.append(op.client.gather(futures))
            print(f"whole product: median {1e3 * statistics.median(whole):.1f} ms "
                  f"(min {1e3 * min(whole):.1f})")
            print("part products inside the workers: median "
                  + ", ".join(f"{1e3 * statistics.median(p[i] for p in parts):.0f} ms"
                              for i in range(len(op.parts))))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
