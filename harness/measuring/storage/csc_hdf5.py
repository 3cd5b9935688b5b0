"""A CSC matrix as an HDF5 group (``data``, ``indices``, ``indptr``): AnnData's ``X`` with
``encoding-type`` ``csc_matrix``, 10x Genomics' ``matrix`` (features x barcodes), a MATLAB v7.3
sparse variable (``data``, ``ir``, ``jc``). Its rows are
spread over every column, so it is loaded whole (CSC, then CSR) by the in-RAM strategies; the
harness does not write it (``--also-as csr-hdf5`` copies it into rows)."""

from __future__ import annotations

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage.whole_file import register_read_only


def _load(spec: DatasetSpec, location):
    import h5py
    import scipy.sparse as sp

    with h5py.File(location, "r") as f:
        g = f[location.dataset]
        # MATLAB v7.3 names the row indices ir and the column offsets jc.
        indices, indptr = ("indices", "indptr") if "indices" in g else ("ir", "jc")
        return sp.csc_array((g["data"][...], g[indices][...], g[indptr][...]),
                            shape=spec.shape)


STORAGE = register_read_only("csc-hdf5", "csc.h5", _load)
