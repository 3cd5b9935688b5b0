"""Matvec strategies: one matrix, every way a user might multiply it.

Every strategy's operand also computes ``Aᵀ y``, ``A @ X`` and ``Aᵀ Y`` in one pass
(``products``). ``names(family=None)`` lists them, ``get(name)`` returns a :class:`Strategy`, and
``matvec(name, spec, x, **options)`` materializes, opens, multiplies and closes. Families live
in one module each: ``dense``, ``memmap``, ``hdf5``, ``hdf5_direct``, ``sparse``, ``zarr``,
``zarr_direct``, ``zarrs_pipeline``, ``dask`` (the "distributed" family); each strategy declares there what it reads, what it
refuses, its memory and its pass-time estimate (see :class:`Strategy`).
Options: ``block_rows`` or ``memory_budget`` (bytes, default 64 MiB) and ``chunk_cache_bytes``
(HDF5's ``rdcc_nbytes``).
"""

from __future__ import annotations

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.strategies import dense, hdf5, hdf5_direct, memmap, sparse  # noqa: F401
from harness.measuring.strategies.base import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    OPTION_NAMES,
    CannotRead,
    Operand,
    Strategy,
    registry,
)
from harness.measuring.strategies.products import PRODUCTS

__all__ = ["DEFAULT_MEMORY_BUDGET_BYTES", "OPTION_NAMES", "PRODUCTS", "CannotRead", "Operand",
           "Strategy",
           "families", "get", "matvec", "names"]


def names(family: str | None = None, question: str | None = None) -> list[str]:
    """Strategy names in registration order, optionally of one family, and optionally only
    those compared in one of the suite's questions (``Strategy.questions``)."""
    if family is not None and family not in families():
        raise ValueError(f"unknown family {family!r}; known families: {families()}")
    return [s.name for s in registry().values()
            if (family is None or s.family == family)
            and (question is None or question in s.questions)]


def families() -> list[str]:
    return list(dict.fromkeys(s.family for s in registry().values()))


def get(name: str) -> Strategy:
    """The strategy called ``name``; a clear error listing the known names otherwise."""
    try:
        return registry()[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known strategies: {names()}") from None


def matvec(name: str, spec: DatasetSpec, x: np.ndarray, root=None, **options) -> np.ndarray:
    """Materialize ``spec``, open it with strategy ``name``, return ``A @ x`` (matrix dtype)."""
    with get(name).open(spec, root=root, **options) as operand:
        return operand.matvec(x)


# Registered after the four above (names() lists in registration order): zarr, then dask.
# zarr-direct and zarrs-blocked come after zarr's first three, so their suite parameters keep their order.
from harness.measuring.strategies import zarr  # noqa: F401, I001
from harness.measuring.strategies import zarr_direct  # noqa: F401
from harness.measuring.strategies import zarrs_pipeline  # noqa: F401
from harness.measuring.strategies import dask  # noqa: F401
