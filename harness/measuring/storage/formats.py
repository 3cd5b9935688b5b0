"""Every storage format, by the name a spec gives it: ``get("hdf5")`` is the ``Storage``
record of ``storage/hdf5.py``. A new format is one module that registers its record, imported
here."""

from __future__ import annotations

from harness.measuring.storage import (  # noqa: F401 - each registers its format
    csc_hdf5,
    csr_hdf5,
    hb,
    hdf5,
    mat,
    mtx,
    netcdf3,
    npz,
    raw,
    zarr,
)
from harness.measuring.storage.base import Storage, registry


def get(name: str) -> Storage:
    """The format a spec's ``storage`` names (``ram`` is a ``raw`` file loaded into RAM)."""
    try:
        return registry()["raw" if name == "ram" else name]
    except KeyError:
        raise KeyError(f"unknown storage {name!r}; known storages: {names()}") from None


def names() -> list[str]:
    return list(registry())


def written() -> list[str]:
    """The formats the harness writes (generated matrices, copies)."""
    return [name for name, storage in registry().items() if storage.write is not None]
