"""What an operand may offer beyond ``matvec(x)``, as named Protocols that callers check with
``isinstance`` (never ``hasattr``): an operand declares a capability by having its members.

- :class:`Transposes`: ``rmatvec(y)`` (``Aᵀ y``) and ``rmatmat(Y)`` (``Aᵀ Y``); and
  :class:`MultiColumn`: ``matmat(X)`` (``A @ X``); each in one pass over the stored bytes. A
  strategy declares which of them its operand has in ``Strategy.products``.
- :class:`RowRanges`: ``matvec_rows(x, first, stop)``, and :class:`ProductRows`:
  ``product_rows(v, first, stop, transpose)`` (any of the four products), the product of a
  range of rows, reading only those (what a dask worker's reader serves).
- :class:`Profiled`: ``profile``, a dict saying where the last pass spent its time.
- :class:`MetersItsProcesses`: ``measure_peak(fn, *args)``, metering every process the product
  runs in (a dask cluster), and ``last_cluster_peak``, the per-process figures of the last one.
- :class:`Closable`: ``close()``, what the operand's opener calls when it is done.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Operand(Protocol):
    def matvec(self, x: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Transposes(Protocol):
    def rmatvec(self, y: np.ndarray) -> np.ndarray: ...

    def rmatmat(self, Y: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class MultiColumn(Protocol):
    def matmat(self, X: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class RowRanges(Protocol):
    def matvec_rows(self, x: np.ndarray, first: int, stop: int) -> np.ndarray:
        """``(A @ x)[first:stop]``, reading only those rows."""
        ...


@runtime_checkable
class ProductRows(Protocol):
    def product_rows(self, v: np.ndarray, first: int, stop: int,
                     transpose: bool = False) -> np.ndarray:
        """``(A @ v)[first:stop]``, or ``A[first:stop]ᵀ @ v[first:stop]``, reading only
        those rows."""
        ...


@runtime_checkable
class Profiled(Protocol):
    #: Where the last pass spent its time (seconds and bytes, by name); empty before a pass.
    profile: dict


@runtime_checkable
class MetersItsProcesses(Protocol):
    #: The per-process figures of the last ``measure_peak`` (``ClusterPeak``), None before.
    last_cluster_peak: object

    def measure_peak(self, fn, *args, **kwargs):
        """``fn(*args)`` metered on every process of the product: ``(result, PeakMemory)``."""
        ...


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...
