"""Print the compression ratio every HDF5 codec reaches on each kind of values.

    python tools/compression_ratios.py --shape 100x100000 --chunks 10x100000

Each (codec, values) matrix is written once through ``harness.measuring.storage.datasets.materialize``
(so the files are the suite's own) and its ratio is decoded bytes / stored bytes of the HDF5
dataset. The values are stationary along the rows, so a slice of rows of a larger matrix has
about the ratio of the whole.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.measuring.matrix.spec import DTYPES, DatasetSpec, parse_chunks, parse_shape


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from harness.measuring.matrix import values
    from harness.measuring.storage import codecs, datasets

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=parse_shape, default=(100, 100_000))
    parser.add_argument("--chunks", type=parse_chunks, default=(10, 100_000))
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--data-dir", default=None, help="default: $HARNESS_DATA_DIR")
    args = parser.parse_args(argv)
    names = ["none", *codecs.COMPRESSED_NAMES]
    print(f"{'codec':<16}" + "".join(f"{kind:>11}" for kind in values.KINDS))
    for name in names:
        cells = []
        for kind in values.KINDS:
            spec = DatasetSpec(args.shape, args.dtype, storage="hdf5", chunks=args.chunks,
                                        compression=name, values=kind)
            path = datasets.materialize(spec, args.data_dir)
            cells.append(spec.dense_bytes / datasets.stored_nbytes(spec, path))
        print(f"{name:<16}" + "".join(f"{ratio:>11.2f}" for ratio in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
