"""A matrix from any source, as the pipeline sees it: where each strategy reads it, and the
float64 reference every result is checked against.

- :class:`Generated`: a ``Problem`` (or a ``DatasetSpec``: its matrix and layout). Each
  strategy reads it from a storage of its own (``Strategy.dataset_for``), a file the data
  directory holds (``storage.datasets``, written before the first measurement). The reference
  is computed from the generation blocks themselves (``matrix.generate``), never from a file a
  strategy reads.
- :class:`UserFile`: a user's file (``storage.user.UserMatrix``) and the copies made of it
  (``storage.copies``). Each strategy reads every one of them it accepts; ``dense``, the unit of
  every ratio, only the user's own. The reference is computed from the user's file, block by
  block through its format's reader.

``describe()`` and :func:`from_dict` carry a source to the measuring child process (JSON).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.generate import csr_blocks, iter_dense_blocks
from harness.measuring.matrix.spec import DatasetSpec, Problem
from harness.measuring.storage import copies, datasets
from harness.measuring.storage.base import FileLocation
from harness.measuring.storage.user import UserMatrix, open_user_matrix
from harness.measuring.strategies import CannotRead, Strategy

#: The strategy every ratio is taken against: the whole matrix in RAM.
REFERENCE_STRATEGY = "dense"
#: Storages a user's matrix can be copied into (``--also-as``).
COPYABLE = copies.TARGETS


@dataclasses.dataclass(frozen=True)
class Store:
    """One stored copy of the matrix a strategy may read: ``label`` (how tables name it),
    ``spec`` (its storage and layout), ``location`` (the file, store or dataset)."""

    label: str
    spec: DatasetSpec
    location: FileLocation

    def to_dict(self) -> dict:
        return {"label": self.label, "spec": self.spec.to_dict(),
                "location": self.location.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Store:
        return cls(d["label"], DatasetSpec.from_dict(d["spec"]),
                   FileLocation.from_dict(d["location"]))


def reference_product(blocks: Iterator[tuple[int, object]], shape: tuple[int, int],
                      v64: np.ndarray, transpose: bool = False) -> np.ndarray:
    """``A @ v`` (``Aᵀ v`` when ``transpose``; ``v`` a vector or columns) in float64 from
    ``(row_start, block)`` pairs (dense or CSR rows) covering every row: no copy of the whole
    matrix."""
    out = np.zeros((shape[1] if transpose else shape[0], *v64.shape[1:]))
    for r0, block in blocks:
        block = block.astype(np.float64)
        if transpose:
            out += block.T @ v64[r0:r0 + block.shape[0]]
        else:
            out[r0:r0 + block.shape[0]] = block @ v64
    return out


def _x64(x: np.ndarray, dtype: str) -> np.ndarray:
    # x is cast to the matrix dtype first, as every strategy does.
    return np.asarray(x).astype(dtype).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class Generated:
    """A generated matrix (``problem``), its files in the data directory ``root``."""

    problem: Problem
    root: Path

    @classmethod
    def of(cls, matrix: Problem | DatasetSpec, root=None) -> Generated:
        # A DatasetSpec stands for its matrix and layout; each strategy picks its storage.
        problem = matrix.problem if isinstance(matrix, DatasetSpec) else matrix
        return cls(problem, Path(root) if root is not None else datasets.default_root())

    @property
    def shape(self) -> tuple[int, int]:
        return self.problem.shape

    @property
    def dtype(self) -> str:
        return self.problem.dtype

    def stores_for(self, strategy: Strategy, prefer: str | None = None) -> list[Store]:
        """The dataset ``strategy`` multiplies (in storage ``prefer`` when it reads it);
        ``CannotRead`` when it reads none."""
        spec = strategy.dataset_for(self.problem, prefer=prefer)
        return [Store(spec.storage, spec, FileLocation(datasets.dataset_path(spec, self.root)))]

    def missing_bytes(self, stores: list[Store]) -> int:
        """Bytes of the files among ``stores`` that are not written yet (an upper bound)."""
        missing = {s.location.path: s.spec for s in stores if not Path(s.location.path).exists()}
        return sum(datasets.expected_file_bytes(spec) for spec in missing.values())

    def prepare(self, store: Store, verify_checksum: bool = False) -> None:
        """Write the file of ``store`` unless its manifest vouches for it (``verify_checksum``:
        and its bytes still match)."""
        datasets.materialize(store.spec, self.root, verify_checksum=verify_checksum)

    def reference(self, x: np.ndarray, transpose: bool = False) -> np.ndarray:
        """``A @ x`` (``Aᵀ x`` when ``transpose``) in float64, from the generation blocks (no
        file is read)."""
        spec = self.problem.in_storage("npz" if self.problem.density is not None else "raw")
        blocks = csr_blocks(spec) if self.problem.density is not None else iter_dense_blocks(spec)
        return reference_product(blocks, spec.shape, _x64(x, spec.dtype), transpose)

    def describe(self) -> dict:
        spec = self.problem.in_storage("zarr" if self.problem.shards else "hdf5")
        return {"kind": "generated", "spec": spec.to_dict(), "root": os.fspath(self.root)}


@dataclasses.dataclass(frozen=True)
class UserFile:
    """A user's matrix and the copies made of it (``copies.Converted``)."""

    user: UserMatrix
    copies: tuple = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.user.spec.shape

    @property
    def dtype(self) -> str:
        return self.user.spec.dtype

    def stores(self) -> list[Store]:
        return [Store(self.user.label, self.user.spec, self.user.location),
                *(Store(c.label, c.spec, c.location) for c in self.copies)]

    def stores_for(self, strategy: Strategy, prefer: str | None = None) -> list[Store]:
        """Every store ``strategy`` accepts (the user's own only, for the reference);
        ``CannotRead`` with the reason (and the copy that would help) when it accepts none."""
        stores = self.stores()
        readable = [s for s in stores if strategy.accepts(s.spec)]
        if strategy.name == REFERENCE_STRATEGY:
            readable = readable[:1]
        if readable:
            return readable
        reason = f"reads {', '.join(strategy.written_storage)}"
        readable_storage = [s for s in stores if s.spec.storage in strategy.storage]
        if readable_storage:
            reason += f", but not this one: {strategy.refusal_of(readable_storage[0].spec)}"
        elif any(s in COPYABLE for s in strategy.storage):
            reason += f": add a copy with --also-as {next(s for s in strategy.storage if s in COPYABLE)}"
        raise CannotRead(f"strategy {strategy.name!r} cannot run on {self.user.path.name}: "
                         f"{reason}", reason)

    def missing_bytes(self, stores: list[Store]) -> int:
        return 0  # the user's file and its copies exist before planning

    def prepare(self, store: Store, verify_checksum: bool = False) -> None:
        """Nothing to write: the user's file and its copies exist."""

    def reference(self, x: np.ndarray, transpose: bool = False) -> np.ndarray:
        """``A @ x`` (``Aᵀ x`` when ``transpose``) in float64, from the user's file, block by
        block."""
        spec = self.user.spec
        x64 = _x64(x, spec.dtype)
        if spec.order == "F":  # a column-major file: a sum over its column blocks
            out = np.zeros((spec.shape[1] if transpose else spec.shape[0], *x64.shape[1:]))
            for c0, block in self.user.column_blocks():
                block = block.astype(np.float64)
                if transpose:
                    out[c0:c0 + block.shape[1]] = block.T @ x64
                else:
                    out += block @ x64[c0:c0 + block.shape[1]]
            return out
        blocks = self.user.csr_row_blocks() if spec.density is not None else self.user.row_blocks()
        return reference_product(blocks, spec.shape, x64, transpose)

    def describe(self) -> dict:
        return {"kind": "user", **self.user.describe()}


Source = Generated | UserFile


def from_dict(d: dict) -> Source:
    """The source a child process was sent (``describe()``)."""
    if d["kind"] == "generated":
        return Generated(DatasetSpec.from_dict(d["spec"]).problem, Path(d["root"]))
    user = open_user_matrix(d["file"], shape=tuple(d["shape"]), dtype=d["dtype"],
                            dataset=d.get("dataset"))
    return UserFile(user)


def as_source(matrix, *, root=None, also_as=(), chunks=None, compression=None,
              shape=None, dtype=None, dataset=None, as_dtype=None) -> Source:
    """Any matrix the pipeline takes: a ``Problem`` or ``DatasetSpec`` (generated into
    ``root``), a ``UserMatrix``, or a path in ``measure --file``'s syntax
    (``"file.h5:/group/dataset"``, or ``dataset`` apart; ``shape`` and ``dtype`` for a raw
    file). ``also_as``: for a
    user's matrix, storages to copy it into first (``copies.TARGETS``, with ``chunks`` and
    ``compression`` for HDF5 and zarr copies; ``as_dtype``: their dtype, default the one the
    file is multiplied in), block by block into ``root``."""
    if isinstance(matrix, Problem | DatasetSpec):
        if also_as:
            raise ValueError("--also-as copies your own matrix: use it with --file")
        return Generated.of(matrix, root)
    user = matrix if isinstance(matrix, UserMatrix) else \
        open_user_matrix(matrix, shape=shape, dtype=dtype, dataset=dataset)
    targets = copies.parse_targets(",".join(also_as)) if also_as else []
    copies.check_layout(targets, compression)
    root = root if root is not None else datasets.default_root()
    made = tuple(copies.convert(user, target, chunks=chunks, compression=compression, root=root,
                                dtype=as_dtype) for target in targets)
    return UserFile(user, made)
