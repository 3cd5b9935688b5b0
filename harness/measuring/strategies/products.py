"""The four products every strategy computes in one pass over the stored bytes, and the
per-block arithmetic they share.

- ``matvec(x)``: ``A @ x``, ``x`` of ``ncols`` elements, result of ``nrows``;
- ``matmat(X)``: ``A @ X``, ``X`` of shape ``(ncols, k)``, result ``(nrows, k)``;
- ``rmatvec(y)``: ``Aᵀ y``, ``y`` of ``nrows`` elements, result of ``ncols``;
- ``rmatmat(Y)``: ``Aᵀ Y``, ``Y`` of shape ``(nrows, k)``, result ``(ncols, k)``.

A strategy's reader visits the matrix block by block (row slabs, chunks, a whole matrix) and
hands each block to a :class:`Product`, which does the arithmetic: ``out[r0:r1] = block @ v``
(``put``) or ``out[r0:r1] += block @ v[c0:c1]`` (``add``) forward, ``out[c0:c1] += blockᵀ @
v[r0:r1]`` transposed. So ``A @ X`` reads the bytes once for all ``k`` columns, and ``Aᵀ y``
reads them in the order they are stored, like ``A @ x``.

The operand (``v``) is cast to the matrix dtype first, and the result has the matrix dtype:
mixing dtypes in ``block @ v`` would upcast a copy of every block.
"""

from __future__ import annotations

import numpy as np

#: The product names, as ``scipy.sparse.linalg.LinearOperator`` calls them.
PRODUCTS = ("matvec", "rmatvec", "matmat", "rmatmat")
#: (transposed, several columns) of each product.
PRODUCT_KINDS = {"matvec": (False, False), "rmatvec": (True, False),
                 "matmat": (False, True), "rmatmat": (True, True)}


def product_input(shape: tuple[int, int], dtype, product: str = "matvec",
                  columns: int = 1) -> np.ndarray:
    """The deterministic operand a measurement of ``product`` multiplies by: ``vector`` of
    the length the product takes, and for ``matmat``/``rmatmat`` ``columns`` distinct columns
    (that vector rolled by 0, 1, ... places)."""
    from harness.measuring.matrix.generate import vector

    check_product(product, columns)
    transpose, several = PRODUCT_KINDS[product]
    v = vector(shape[0] if transpose else shape[1], dtype)
    if not several:
        return v
    return np.ascontiguousarray(np.stack([np.roll(v, j) for j in range(columns)], axis=1))


def check_product(product: str, columns: int = 1) -> None:
    """A clear error for an unknown product, or columns that it does not take."""
    if product not in PRODUCT_KINDS:
        raise ValueError(f"unknown product {product!r}; known products: {list(PRODUCTS)}")
    several = PRODUCT_KINDS[product][1]
    if int(columns) < 1 or (not several and int(columns) != 1):
        raise ValueError(f"{product} takes {'k >= 1 columns' if several else 'one column'}, "
                         f"got columns={columns}")


def product_label(product: str, columns: int = 1) -> str:
    """How tables name a product: ``A @ x``, ``Aᵀy``, ``A @ X (k=16)``, ``AᵀY (k=16)``."""
    text = {"matvec": "A @ x", "rmatvec": "Aᵀy", "matmat": "A @ X", "rmatmat": "AᵀY"}[product]
    return f"{text} (k={columns})" if PRODUCT_KINDS[product][1] else text


def operand_array(v, shape: tuple[int, int], dtype, transpose: bool, columns: bool) -> np.ndarray:
    """``v`` as a C-contiguous, aligned array of ``dtype``: a vector (``columns`` False) or a
    matrix of ``k >= 1`` columns, of ``ncols`` rows (``nrows`` when ``transpose``); a clear
    error naming the expected shape otherwise.

    Aligned, because numpy's matmul copies an unaligned operand on every call: a dask worker
    receives ``x`` unaligned (inside the message's frame), and multiplying it by each of its
    500 chunks copied it 500 times a pass (the 10000 x 100000 float32 store: 338 ms a product
    with the copies, 148 ms with one aligned copy; ``perf`` had put a fifth of the workers'
    time in them)."""
    v = np.asarray(v)
    length = shape[0] if transpose else shape[1]
    name = ("Y" if columns else "y") if transpose else ("X" if columns else "x")
    ok = (v.ndim == 2 and v.shape[0] == length and v.shape[1] >= 1) if columns else \
        (v.ndim == 1 and v.shape[0] == length)
    if not ok:
        want = f"a ({length}, k) array" if columns else f"a vector of {length} elements"
        raise ValueError(f"{name} must be {want} (the matrix has shape {shape}), "
                         f"got shape {v.shape}")
    return np.require(v, dtype=dtype, requirements=["C", "A"])


class Product:
    """One pass's arithmetic for the rows ``[first, stop)`` of the matrix: ``out`` is
    ``(A @ v)[first:stop]`` forward, the part of ``Aᵀ v`` those rows contribute transposed
    (``v`` is then indexed by absolute row). Blocks are given by their first row and column."""

    def __init__(self, shape: tuple[int, int], v: np.ndarray, transpose: bool,
                 first: int = 0, stop: int | None = None):
        self.shape, self.v, self.transpose = shape, v, transpose
        self.first = first
        self.stop = shape[0] if stop is None else stop
        length = shape[1] if transpose else self.stop - first
        # Zeros: chunked readers add blocks in; a missing chunk holds zeros and adds nothing.
        self.out = np.zeros((length, *v.shape[1:]), dtype=v.dtype)
        self._scratch: np.ndarray | None = None

    def put(self, r0: int, block: np.ndarray) -> None:
        """A full-width block of rows starting at ``r0`` (each row visited once)."""
        if not self.transpose:
            rows = self.out[r0 - self.first:r0 - self.first + block.shape[0]]
            if block.dtype == self.v.dtype:
                np.dot(block, self.v, out=rows)
            else:  # a row of a file of other values, as a user's loop promotes it
                rows[...] = block @ self.v
        else:
            self._add_transposed(block, 0, self.v[r0:r0 + block.shape[0]])

    def add(self, r0: int, c0: int, block: np.ndarray) -> None:
        """A block of the matrix at ``(r0, c0)``, added to what earlier blocks gave."""
        h, w = block.shape
        if not self.transpose:
            self.out[r0 - self.first:r0 - self.first + h] += block @ self.v[c0:c0 + w]
        else:
            self._add_transposed(block, c0, self.v[r0:r0 + h])

    def _add_transposed(self, block: np.ndarray, c0: int, v_rows: np.ndarray) -> None:
        w = block.shape[1]
        shape = (w, *self.v.shape[1:])
        # One reused scratch for blockᵀ @ v: a pass adds as many of them as it has blocks.
        if self._scratch is None or self._scratch.shape[0] < w:
            self._scratch = np.empty(shape, dtype=self.v.dtype)
        if block.dtype != self.v.dtype:  # a block of a file of other values, promoted
            self.out[c0:c0 + w] += block.T @ v_rows
            return
        scratch = self._scratch[:w]
        np.dot(block.T, v_rows, out=scratch)
        self.out[c0:c0 + w] += scratch

    def part(self, r0: int, c0: int, block: np.ndarray) -> np.ndarray:
        """The block's contribution as a new array (computed in a worker thread, added on the
        calling thread with ``add_part`` so that the sum does not depend on which finished
        first)."""
        h, w = block.shape
        if not self.transpose:
            return block @ self.v[c0:c0 + w]
        return block.T @ self.v[r0:r0 + h]

    def add_part(self, r0: int, c0: int, part: np.ndarray) -> None:
        if not self.transpose:
            self.out[r0 - self.first:r0 - self.first + part.shape[0]] += part
        else:
            self.out[c0:c0 + part.shape[0]] += part

    def whole(self, matrix) -> None:
        """The whole matrix at once (a numpy or scipy.sparse array, or a map of the file)."""
        result = (matrix.T @ self.v) if self.transpose else (matrix @ self.v)
        # scipy 1.17's coo_array of shape (1, n) returns a 0-d result for @ x: keep the shape.
        self.out[...] = np.asarray(result).reshape(self.out.shape)


class BlockProducts:
    """The four products of an operand whose ``_run(product)`` visits every block of the
    matrix (``spec`` is the operand's :class:`DatasetSpec`)."""

    def product(self, v, transpose: bool = False, columns: bool = False) -> np.ndarray:
        v = operand_array(v, self.spec.shape, self.spec.dtype, transpose, columns)
        # One column through the vector product: BLAS's gemv, not gemm (measured 14 ms
        # against 26 ms for the 1000 x 100000 float32 map).
        p = Product(self.spec.shape, v[:, 0] if columns and v.shape[1] == 1 else v, transpose)
        self._run(p)
        return p.out.reshape(-1, 1) if p.out.ndim < v.ndim else p.out

    def matvec(self, x) -> np.ndarray:
        return self.product(x)

    def rmatvec(self, y) -> np.ndarray:
        return self.product(y, transpose=True)

    def matmat(self, X) -> np.ndarray:
        return self.product(X, columns=True)

    def rmatmat(self, Y) -> np.ndarray:
        return self.product(Y, transpose=True, columns=True)


class RowRangeProducts(BlockProducts):
    """Also the product of a range of rows, reading only those: ``_run(product)`` visits the
    blocks of rows ``[product.first, product.stop)`` only (what a dask worker's reader serves)."""

    def product_rows(self, v, first: int, stop: int, transpose: bool = False) -> np.ndarray:
        """``(A @ v)[first:stop]``, or ``A[first:stop]ᵀ @ v[first:stop]`` (``v`` of ``nrows``
        rows) when ``transpose``."""
        v = np.asarray(v)
        p = Product(self.spec.shape, operand_array(v, self.spec.shape, self.spec.dtype,
                                                   transpose, v.ndim == 2),
                    transpose, first, stop)
        self._run(p)
        return p.out

    def matvec_rows(self, x, first: int, stop: int) -> np.ndarray:
        """``(A @ x)[first:stop]``, reading only those rows."""
        return self.product_rows(x, first, stop)
