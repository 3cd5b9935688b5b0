"""The kinds of values a dense benchmark matrix holds, generated block of rows by block of rows.

Uniform random floats are incompressible, so a compression figure measured on them describes a
case real users never have. Three kinds (``KINDS``):

- ``"uniform"``: independent uniform values in [0, 1) (every float's mantissa is noise).
- ``"smooth"``: a smooth field plus small noise, like simulation output: neighbouring values
  share their exponent and leading mantissa bits, the trailing bits are noise.
- ``"quantized"``: a smooth noisy signal read by a 12-bit converter, like sensor data: every
  value is ``counts / 4096`` with integer ``counts < 4096``, so it carries at most 12
  significant bits and the trailing 11 bits of a float32 mantissa are zero.

``block(kind, rng, row_start, row_stop, ncols, dtype)`` returns the rows ``[row_start,
row_stop)`` of the matrix. The smooth part depends only on the global (row, column) position;
the noise comes from ``rng``, the block's own seeded generator. So the values depend on the
shape, dtype, seed and kind only, never on the storage they are written to.
"""

from __future__ import annotations

import numpy as np

KINDS = ("uniform", "smooth", "quantized")
DEFAULT_KIND = "uniform"

#: Wavelengths of the smooth field, in rows and in columns: a field that changes slowly along
#: a row (the storage order), as a simulation's grid does.
_ROW_WAVELENGTH = 97.0
_COLUMN_WAVELENGTHS = (1009.0, 8191.0)
#: Standard deviation of the noise added to the smooth field (the field spans about [0.2, 0.8]).
SMOOTH_NOISE = 1e-4
#: The converter of ``quantized``: 12 bits, with a noise of about two counts.
QUANTIZED_BITS = 12
QUANTIZED_NOISE = 2.0 / (1 << QUANTIZED_BITS)


def check_kind(kind: str) -> str:
    """``kind`` if it is one of ``KINDS``; a ValueError naming them otherwise."""
    if kind not in KINDS:
        raise ValueError(f"values must be one of {KINDS}, got {kind!r}")
    return kind


def smooth_field(row_start: int, row_stop: int, ncols: int) -> np.ndarray:
    """The noiseless smooth field over rows ``[row_start, row_stop)``, float64 in about
    [0.2, 0.8]; a sum of products of a function of the row and a function of the column
    (cheap: outer products, no transcendental per element)."""
    rows = np.arange(row_start, row_stop, dtype=np.float64)[:, None] * (2 * np.pi / _ROW_WAVELENGTH)
    short, long = _COLUMN_WAVELENGTHS
    cols = np.arange(ncols, dtype=np.float64)[None, :]
    short_phase, long_phase = cols * (2 * np.pi / short), cols * (2 * np.pi / long)
    # 0.15 sin(r + c) = 0.15 (sin r cos c + cos r sin c)
    field = np.sin(rows) * np.cos(short_phase)
    field += np.cos(rows) * np.sin(short_phase)
    field *= 0.15
    field += 0.15 * np.cos(long_phase) * np.cos(rows / 7.0)
    field += 0.5
    return field


def block(kind: str, rng: np.random.Generator, row_start: int, row_stop: int, ncols: int,
          dtype) -> np.ndarray:
    """Rows ``[row_start, row_stop)`` of a dense matrix of ``kind`` values, as ``dtype``.

    ``"uniform"`` draws exactly what the harness always drew (``rng.random``), so files of
    uniform values are unchanged.
    """
    dtype = np.dtype(dtype)
    shape = (row_stop - row_start, ncols)
    if check_kind(kind) == "uniform":
        return rng.random(shape, dtype=dtype)
    field = smooth_field(row_start, row_stop, ncols)
    if kind == "smooth":
        field += rng.normal(0.0, SMOOTH_NOISE, shape)
        return field.astype(dtype)
    levels = 1 << QUANTIZED_BITS
    field += rng.normal(0.0, QUANTIZED_NOISE, shape)
    counts = np.clip(np.rint(field * levels), 0, levels - 1)
    return (counts / levels).astype(dtype)  # exact: counts / 2**12 is a 12-bit float
