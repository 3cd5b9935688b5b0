"""Checks every reader of a user's file makes: a matrix of a dtype the harness multiplies."""

from __future__ import annotations

import numpy as np

from harness.measuring.matrix.spec import DTYPES
from harness.measuring.storage.base import UserFileError


def check_dtype(dtype, where: str, fix: str) -> str:
    """``dtype``'s name if the harness multiplies it (native float32/float64), else a
    :class:`UserFileError` naming ``where`` and ``fix``."""
    dtype = np.dtype(dtype)
    if dtype.name not in DTYPES:
        raise UserFileError(f"{where} holds {dtype} values; the harness multiplies float32 or "
                            f"float64 matrices: {fix}")
    if not dtype.isnative:
        raise UserFileError(f"{where} holds {dtype.name} in {'big' if dtype.byteorder == '>' else 'little'}"
                            f"-endian byte order, not this machine's: {fix}")
    return dtype.name


def check_matrix_shape(shape, where: str, fix: str) -> tuple[int, int]:
    """``(rows, cols)`` of a 2-D shape with positive sizes, else a :class:`UserFileError`."""
    if len(shape) != 2 or min(shape, default=0) < 1:
        raise UserFileError(f"{where} is not a matrix: it holds an array of shape {tuple(shape)}, "
                            f"and a matrix has two positive dimensions; {fix}")
    return int(shape[0]), int(shape[1])
