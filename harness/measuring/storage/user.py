"""A user's own matrix: open it read-only, say what it is, read it block by block, and measure
every strategy that accepts its storage, in place.

One reader per format (``READERS``): ``.npy``; a raw binary file (shape and dtype given); an
HDF5 dataset (``file.h5:/group/dataset``); a scipy.sparse ``.npz``; a zarr store, format 3 or 2
(``store.zarr``, or ``store.zarr:/group/array`` for one array of several). Each reader checks
that the file holds a float32 or float64 matrix and turns it into a :class:`UserMatrix`: a
``DatasetSpec`` (shape, dtype, storage, HDF5 or zarr layout, density) and a ``FileLocation``
(the file, the byte offset of a ``.npy``'s array, the HDF5 dataset or the zarr array's path in
its store) that the strategies open where it is, without copying it into the data directory.

The file is only ever opened for reading (``open(path, "rb")``, ``h5py.File(path, "r")``,
zarr's mode "r", read-only maps); a cold measurement evicts its pages from the page cache,
which changes neither its bytes nor its times. Every problem is a :class:`UserFileError`: one sentence that
names the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.storage import files as filetree
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.storage.datasets import COMPRESSIONS, DTYPES, DatasetSpec
from harness.measuring.strategies.base import FileLocation

#: Rows read at a time by ``UserMatrix.row_blocks`` aim at this many bytes.
BLOCK_BYTES = 16 * 1024 * 1024
#: HDF5 filter ids -> the harness's compression names (hdf5plugin's registered ids).
_HDF5_FILTERS = {1: "gzip", 32000: "lzf", 32001: "blosc", 32026: "blosc2", 32004: "lz4",
                 32015: "zstd", 32008: "bitshuffle"}
#: Filters that do not compress (shuffle, checksums, n-bit, scale-offset).
_NON_COMPRESSING_FILTERS = {2, 3, 5, 6}


class UserFileError(ValueError):
    """The user's file cannot be measured; the message names the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class UserMatrix:
    """A user's matrix, as found: ``format`` (npy, raw, hdf5, npz, zarr), ``spec`` (its shape,
    dtype, storage and layout; a density for a sparse one), ``location`` (where the strategies
    read it)."""

    format: str
    spec: DatasetSpec
    location: FileLocation

    @property
    def path(self) -> Path:
        return Path(self.location.path)

    @property
    def label(self) -> str:
        """How tables name its storage: the format, marked as the user's own file."""
        return f"{self.format} (yours)"

    def describe(self) -> dict:
        """JSON-safe arguments of :func:`open_user_matrix` that find this matrix again."""
        text = os.fspath(self.path)
        if self.format in ("hdf5", "zarr") and self.location.dataset:
            text += ":/" + self.location.dataset.lstrip("/")
        return {"file": text, "shape": list(self.spec.shape), "dtype": self.spec.dtype}

    def identity(self) -> dict:
        """What a copy of it depends on: the file (a store: all its files), its size and
        mtime, the dataset."""
        size, mtime_ns = filetree.size_and_mtime(self.path)
        return {"path": os.fspath(self.path), "dataset": self.location.dataset,
                "format": self.format, "size_bytes": size, "mtime_ns": mtime_ns,
                "shape": list(self.spec.shape), "dtype": self.spec.dtype}

    def block_rows(self, max_bytes: int = BLOCK_BYTES) -> int:
        """Rows per block of ``row_blocks``: about ``max_bytes`` of dense rows, at least one."""
        return max(1, min(self.spec.shape[0], max_bytes // (self.spec.shape[1] * self.spec.itemsize)))

    def row_blocks(self, max_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first row, dense block)`` in row order, about ``max_bytes`` a block."""
        yield from READERS[self.format].row_blocks(self, self.block_rows(max_bytes))

    def csr_row_blocks(self, max_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, object]]:
        """Yield ``(first row, scipy.sparse.csr_array of those rows)`` in row order."""
        import scipy.sparse as sp

        if self.format == "npz":
            csr = _load_csr(self.path)
            step = self.block_rows(max_bytes)
            for r0 in range(0, self.spec.shape[0], step):
                yield r0, csr[r0:r0 + step]
            return
        for r0, block in self.row_blocks(max_bytes):
            yield r0, sp.csr_array(block)

    def reference(self, x: np.ndarray) -> np.ndarray:
        """``A @ x`` in float64 (``x`` cast to the matrix dtype first, as every strategy
        does), block by block: no copy of the whole matrix."""
        x64 = np.asarray(x).astype(self.spec.dtype).astype(np.float64)
        if self.format == "npz":
            return _load_csr(self.path).astype(np.float64) @ x64
        y = np.empty(self.spec.shape[0])
        for r0, block in self.row_blocks():
            y[r0:r0 + block.shape[0]] = block.astype(np.float64) @ x64
        return y


# ------------------------------------------------------------------------------- entry point

def split_dataset(text: str) -> tuple[Path, str | None]:
    """``'file.h5:/group/A'`` -> (file.h5, '/group/A'); a path without ``:/`` -> (path, None).
    A colon that is part of an existing file's name is kept in the name."""
    text = os.fspath(text)
    if not os.path.exists(text) and ":" in text:
        head, _, tail = text.rpartition(":")
        if head and os.path.exists(head):
            return Path(head), "/" + tail.lstrip("/")
    return Path(text), None


def open_user_matrix(file: str | os.PathLike, *, shape: tuple[int, int] | None = None,
                     dtype: str | None = None) -> UserMatrix:
    """The user's matrix in ``file`` (``file.h5:/dataset`` for HDF5); ``shape`` and ``dtype``
    describe a raw binary file (dtype default float32). Raises :class:`UserFileError`."""
    path, dataset = split_dataset(file)
    if not path.exists():
        raise UserFileError(f"{path}: no such file or directory; check the path")
    kind = detect_format(path)  # refuses a FIFO or a device before reading it
    if dataset is not None and kind not in ("hdf5", "zarr"):
        raise UserFileError(f"{path} is not an HDF5 file or a zarr store, so ':{dataset}' names "
                            "nothing in it; drop the ':/dataset' part")
    if kind == "directory":
        raise UserFileError(f"{path} is a directory, not a matrix file or a zarr store; give a "
                            ".npy, raw, HDF5 (file.h5:/dataset), scipy .npz file or zarr store")
    return READERS[kind].open(path.resolve(), dataset=dataset, shape=shape, dtype=dtype)


def detect_format(path: Path) -> str:
    """npy, hdf5, npz, zarr or raw, from the file's first bytes (a directory: zarr or not).
    A FIFO, device or socket is refused (UserFileError): reading it may block forever."""
    _refuse_special_file(path)
    if path.is_dir():
        markers = ("zarr.json", ".zarray", ".zgroup")
        return "zarr" if path.suffix == ".zarr" or any((path / m).exists() for m in markers) \
            else "directory"
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head == b"\x89HDF\r\n\x1a\n" or _is_hdf5(path):
        return "hdf5"
    if head.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path):
        return "npz"
    return "raw"


def _refuse_special_file(path: Path) -> None:
    """A UserFileError unless ``path`` is a regular file or a directory (after symlinks): a
    named pipe would block the first read forever, a device (/dev/zero) has no size."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # gone or unreadable: the open that follows says so
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserFileError(f"{path} is not a regular file (a FIFO, device or socket); give a "
                            ".npy, raw, HDF5 or .npz file or a zarr store")


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))  # also finds a superblock after a user block
    except OSError:
        return False


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


def _check_matrix_shape(shape, where: str, fix: str) -> tuple[int, int]:
    if len(shape) != 2 or min(shape, default=0) < 1:
        raise UserFileError(f"{where} is not a matrix: it holds an array of shape {tuple(shape)}, "
                            f"and a matrix has two positive dimensions; {fix}")
    return int(shape[0]), int(shape[1])


# ----------------------------------------------------------------------------------- readers

class NpyReader:
    """A ``.npy`` file: C order, native float32/float64, two dimensions; read in place at the
    byte offset of its array (after the header)."""

    @staticmethod
    def open(path: Path, *, dataset=None, shape=None, dtype=None) -> UserMatrix:
        fmt = np.lib.format
        with open(path, "rb") as f:
            try:
                version = fmt.read_magic(f)
                header = (fmt.read_array_header_1_0 if version == (1, 0)
                          else fmt.read_array_header_2_0)(f)
            except ValueError as exc:
                raise UserFileError(f"{path} has a damaged .npy header ({exc}); save it again "
                                    "with np.save") from None
            offset = f.tell()
        file_shape, fortran, file_dtype = header
        save_again = "save it with np.save(path, a.astype('float32')) or 'float64'"
        if file_dtype.hasobject:
            raise UserFileError(f"{path} holds Python objects, not numbers; {save_again}")
        rows, cols = _check_matrix_shape(file_shape, path.name,
                                         "save a 2-D array (a.reshape(rows, cols))")
        name = check_dtype(file_dtype, path.name, save_again)
        if fortran and rows > 1 and cols > 1:
            raise UserFileError(f"{path} is stored in Fortran (column) order, and the strategies "
                                "read rows; save it with np.save(path, np.ascontiguousarray(a))")
        expected = offset + rows * cols * file_dtype.itemsize
        if path.stat().st_size != expected:
            raise UserFileError(f"{path} holds {path.stat().st_size} bytes, but its header "
                                f"announces {expected} ({rows}x{cols} {name}): the file is "
                                "truncated or damaged; save it again")
        if shape is not None and tuple(shape) != (rows, cols):
            raise UserFileError(f"{path} holds a {rows}x{cols} matrix, not {shape[0]}x{shape[1]}; "
                                "drop --shape (a .npy says its own)")
        return UserMatrix("npy", DatasetSpec((rows, cols), name, storage="raw"),
                          FileLocation(path, byte_offset=offset))

    @staticmethod
    def row_blocks(matrix: UserMatrix, step: int) -> Iterator[tuple[int, np.ndarray]]:
        yield from _flat_row_blocks(matrix, step)


class RawReader:
    """A raw binary file of rows x cols values in C order; its shape and dtype are given."""

    @staticmethod
    def open(path: Path, *, dataset=None, shape=None, dtype=None) -> UserMatrix:
        if shape is None:
            raise UserFileError(
                f"{path} is not a .npy, HDF5, scipy .npz or zarr file, so it is read as a raw "
                "binary matrix: give its --shape ROWSxCOLS (and --dtype, default float32)")
        name = check_dtype(_dtype_or_error(dtype or "float32"), f"--dtype {dtype}",
                           "pass --dtype float32 or float64, converting the file first if it "
                           "holds another type")
        rows, cols = shape
        expected = rows * cols * np.dtype(name).itemsize
        size = path.stat().st_size
        if size != expected:
            hint = (f" (it holds {size // np.dtype(name).itemsize} {name} values)"
                    if size % np.dtype(name).itemsize == 0 else "")
            raise UserFileError(
                f"{path} holds {size} bytes{hint}, but --shape {rows}x{cols} --dtype {name} "
                f"needs {expected}; give the shape and dtype the file was written with")
        return UserMatrix("raw", DatasetSpec((rows, cols), name, storage="raw"),
                          FileLocation(path))

    @staticmethod
    def row_blocks(matrix: UserMatrix, step: int) -> Iterator[tuple[int, np.ndarray]]:
        yield from _flat_row_blocks(matrix, step)


def _dtype_or_error(text: str) -> np.dtype:
    try:
        return np.dtype(text)
    except TypeError:
        raise UserFileError(f"--dtype {text!r} is not a numpy dtype; pass --dtype float32 or "
                            "float64") from None


def _flat_row_blocks(matrix: UserMatrix, step: int) -> Iterator[tuple[int, np.ndarray]]:
    rows, cols = matrix.spec.shape
    itemsize = matrix.spec.itemsize
    with open(matrix.path, "rb") as f:
        for r0 in range(0, rows, step):
            n = min(step, rows - r0)
            f.seek(matrix.location.byte_offset + r0 * cols * itemsize)
            block = np.fromfile(f, dtype=matrix.spec.dtype, count=n * cols)
            yield r0, block.reshape(n, cols)


class Hdf5Reader:
    """One dataset of an HDF5 file (``file.h5:/group/dataset``; the only 2-D dataset when the
    path is left out), opened read-only."""

    @staticmethod
    def open(path: Path, *, dataset=None, shape=None, dtype=None) -> UserMatrix:
        import h5py

        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise UserFileError(f"{path} cannot be opened as HDF5 ({exc}); check that the file "
                                "is whole and readable") from None
        with f:
            candidates = _matrix_datasets(f)
            if dataset is None:
                if len(candidates) != 1:
                    listed = ", ".join(candidates[:8]) or "none"
                    raise UserFileError(
                        f"{path} holds {len(candidates)} 2-D datasets ({listed}); name one as "
                        f"{path.name}:/path/to/dataset")
                dataset = candidates[0]
            node = f.get(dataset)
            if node is None:
                listed = ", ".join(candidates[:8]) or "none"
                raise UserFileError(f"{path} has no dataset {dataset} (its 2-D datasets: "
                                    f"{listed}); name an existing one as {path.name}:/path")
            if not isinstance(node, h5py.Dataset):
                raise UserFileError(f"{path}:{dataset} is a group, not a dataset; name a "
                                    f"dataset in it as {path.name}:{dataset.rstrip('/')}/name")
            where = f"{path.name}:{dataset}"
            rows, cols = _check_matrix_shape(node.shape, where, "name a 2-D dataset")
            name = check_dtype(node.dtype, where, "store it as float32 or float64 "
                               "(dset.astype('float32') into a new dataset)")
            chunks = tuple(node.chunks) if node.chunks else None
            compression = _compression_of(node)
            spec = DatasetSpec((rows, cols), name, storage="hdf5", chunks=chunks,
                               compression=compression)
            return UserMatrix("hdf5", spec, FileLocation(path, dataset=node.name))

    @staticmethod
    def row_blocks(matrix: UserMatrix, step: int) -> Iterator[tuple[int, np.ndarray]]:
        import h5py

        chunks = matrix.spec.chunks
        if isinstance(chunks, tuple):  # whole chunk-rows: each chunk is read (decoded) once
            step = max(chunks[0], step // chunks[0] * chunks[0])
        rows, cols = matrix.spec.shape
        with h5py.File(matrix.path, "r") as f:
            dset = f[matrix.location.dataset]
            for r0 in range(0, rows, step):
                block = np.empty((min(step, rows - r0), cols), dtype=matrix.spec.dtype)
                dset.read_direct(block, np.s_[r0:r0 + block.shape[0]])
                yield r0, block


def _matrix_datasets(f) -> list[str]:
    import h5py

    found = []
    f.visititems(lambda name, node: found.append("/" + name)
                 if isinstance(node, h5py.Dataset) and node.ndim == 2 else None)
    return found


def _compression_of(dset) -> str | None:
    """The harness's name for the dataset's compression filter (None: uncompressed)."""
    dcpl = dset.id.get_create_plist()
    names = []
    for index in range(dcpl.get_nfilters()):
        filter_id = dcpl.get_filter(index)[0]
        if filter_id in _NON_COMPRESSING_FILTERS:
            continue
        # An unknown codec: the slowest known one keeps the pass-time estimates pessimistic.
        names.append(_HDF5_FILTERS.get(filter_id, "gzip"))
    compression = names[0] if names else None
    return compression if compression in COMPRESSIONS else "gzip"


class NpzReader:
    """A scipy.sparse matrix saved with ``scipy.sparse.save_npz`` (any format; read as CSR)."""

    @staticmethod
    def open(path: Path, *, dataset=None, shape=None, dtype=None) -> UserMatrix:
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = sorted(archive.files)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise UserFileError(f"{path} is not a readable .npz ({exc}); save the matrix with "
                                "scipy.sparse.save_npz") from None
        if "format" not in keys or "shape" not in keys:
            raise UserFileError(
                f"{path} holds arrays {keys[:6]}, not a scipy.sparse matrix; save a sparse "
                "matrix with scipy.sparse.save_npz, or a dense one with np.save")
        csr = _load_csr(path)
        rows, cols = _check_matrix_shape(csr.shape, path.name, "save a 2-D sparse matrix")
        name = check_dtype(csr.dtype, path.name,
                           "save it with scipy.sparse.save_npz(path, m.astype('float32'))")
        density = csr.nnz / (rows * cols)
        return UserMatrix("npz", DatasetSpec((rows, cols), name, density=density, storage="npz"),
                          FileLocation(path))

    @staticmethod
    def row_blocks(matrix: UserMatrix, step: int) -> Iterator[tuple[int, np.ndarray]]:
        csr = _load_csr(matrix.path)
        for r0 in range(0, matrix.spec.shape[0], step):
            yield r0, csr[r0:r0 + step].toarray()


def _load_csr(path: Path):
    import scipy.sparse as sp

    try:
        return sp.csr_array(sp.load_npz(path))
    except (OSError, ValueError, KeyError) as exc:
        raise UserFileError(f"{path} is not a readable scipy.sparse .npz ({exc}); save it "
                            "with scipy.sparse.save_npz") from None


class ZarrReader:
    """A zarr store (format 3, or 2): its array at the root, the only 2-D array in its groups,
    or the one named as ``store.zarr:/group/array``; opened read-only (zarr's mode "r")."""

    @staticmethod
    def open(path: Path, *, dataset=None, shape=None, dtype=None) -> UserMatrix:
        from harness.measuring.storage.zarr import zarr_module

        zarr = zarr_module()
        try:
            node = zarr.open(store=os.fspath(path), mode="r")
        except (OSError, ValueError, KeyError, TypeError) as exc:  # damaged or foreign metadata
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
            raise UserFileError(f"{path} cannot be opened as a zarr store ({reason}); check "
                                "that it is a whole zarr store (format 2 or 3)") from None
        arrays = [] if isinstance(node, zarr.Array) else \
            ["/" + name for name, member in node.members(max_depth=None)
             if isinstance(member, zarr.Array) and member.ndim == 2]
        listed = ", ".join(arrays[:8]) or "none"
        if dataset is None and isinstance(node, zarr.Array):
            dataset, array = "", node
        elif dataset is None:
            if not arrays:
                raise UserFileError(f"{path} is a zarr store without a 2-D array; give the store "
                                    "(or store.zarr:/path/to/array) that holds the matrix")
            if len(arrays) != 1:
                raise UserFileError(f"{path} holds {len(arrays)} 2-D arrays ({listed}); name one "
                                    f"as {path.name}:/path/to/array")
            dataset, array = arrays[0], node[arrays[0].lstrip("/")]
        else:
            array = _zarr_member(node, dataset)
            if array is None:
                raise UserFileError(f"{path} has no array {dataset} (its 2-D arrays: {listed}); "
                                    f"name an existing one as {path.name}:/path")
        where = f"{path.name}:{dataset}" if dataset else path.name
        rows, cols = _check_matrix_shape(array.shape, where, "name a 2-D array")
        name = check_dtype(array.dtype, where, "store it as float32 or float64 "
                           "(zarr.create_array(..., dtype='float32') filled block by block)")
        shards = tuple(array.shards) if array.shards is not None else None
        spec = DatasetSpec((rows, cols), name, storage="zarr", chunks=tuple(array.chunks),
                           compression=zarr_store.codec_name(array), shards=shards)
        return UserMatrix("zarr", spec, FileLocation(path, dataset=dataset.strip("/")))

    @staticmethod
    def row_blocks(matrix: UserMatrix, step: int) -> Iterator[tuple[int, np.ndarray]]:
        unit = (matrix.spec.shards or matrix.spec.chunks)[0]  # each chunk is decoded once
        step = max(unit, step // unit * unit)
        array = zarr_store.open_array(matrix.location)
        for r0 in range(0, matrix.spec.shape[0], step):
            yield r0, np.asarray(array[r0:r0 + step], dtype=matrix.spec.dtype)


def _zarr_member(node, dataset: str):
    """The array at ``dataset`` in an opened store (a group or an array), None if there is
    none."""
    import zarr

    key = dataset.strip("/")
    if not key:
        return node if isinstance(node, zarr.Array) else None
    if isinstance(node, zarr.Array):
        return None
    try:
        member = node[key]
    except KeyError:
        return None
    return member if isinstance(member, zarr.Array) else None


#: Format -> its reader (``open(path, dataset=, shape=, dtype=)`` and ``row_blocks``).
READERS = {"npy": NpyReader, "raw": RawReader, "hdf5": Hdf5Reader, "npz": NpzReader,
           "zarr": ZarrReader}


# ------------------------------------------------------------------------- measuring it in place

#: A strategy is skipped when it may need more than this fraction of the RAM available now.
MAX_FRACTION_OF_AVAILABLE_RAM = 0.8


@dataclasses.dataclass(frozen=True)
class FileRun:
    """One strategy on one stored copy of the user's matrix: ``label`` (how tables name the
    storage), ``spec`` and ``location`` (where the strategy reads it)."""

    strategy: str
    label: str
    spec: DatasetSpec
    location: FileLocation

    @property
    def key(self) -> str:
        return f"{self.strategy} on {self.label}"


def plan_for_file(user: UserMatrix, copies=(), names=None, *, repeat: int = 5,
                  timeout_seconds: float = 600.0, available_ram: int | None = None,
                  **options) -> tuple[list[FileRun], list[tuple[str, str]]]:
    """Which strategy runs on which storage of the user's matrix, and which are skipped (why).

    ``copies``: ``convert.Converted`` copies; ``names``: the strategies to compare (default:
    all). ``dense`` (the in-RAM product, the unit of every ratio) runs on the user's file only.
    A strategy is skipped when it reads none of the storages, may need more than
    ``MAX_FRACTION_OF_AVAILABLE_RAM`` of ``available_ram`` (default: available now) or would take
    longer than the timeout allows. A named strategy that reads none of them is a ValueError.
    """
    from harness.measuring import strategies
    from harness.measuring.runs.plan import REFERENCE_STRATEGY

    if available_ram is None:
        import psutil

        available_ram = psutil.virtual_memory().available
    stores = [(user.label, user.spec, user.location),
              *((copy.label, copy.spec, copy.location) for copy in copies)]
    requested = [n.strip() for n in names] if names else []
    runs, skipped = [], []
    for name in dict.fromkeys([REFERENCE_STRATEGY, *(requested or strategies.names())]):
        strat = strategies.get(name)
        readable = [(label, spec, where) for label, spec, where in stores if strat.accepts(spec)]
        if name == REFERENCE_STRATEGY:
            readable = readable[:1]
        if not readable:
            reason = f"reads {', '.join(strat.storage)}"
            if any(s.storage in strat.storage for _, s, _ in stores):
                reason += f", but not this one: {strat.refusal}"
            elif any(s in _COPYABLE for s in strat.storage):
                copyable = next(s for s in strat.storage if s in _COPYABLE)
                reason += f": add a copy with --also-as {copyable}"
            if name in requested:
                raise ValueError(f"strategy {name!r} cannot run on {user.path.name}: {reason}")
            skipped.append((name, reason))
            continue
        for label, spec, where in readable:
            why = _too_costly(strat, spec, repeat, timeout_seconds, available_ram, options)
            if why:
                skipped.append((f"{name} on {label}", why))
            else:
                runs.append(FileRun(name, label, spec, where))
    return runs, skipped


_COPYABLE = ("raw", "hdf5", "csr-hdf5", "zarr")


def _too_costly(strat, spec: DatasetSpec, repeat: int, timeout_seconds: float,
                available_ram: int, options: dict) -> str:
    """Why ``strat`` should not run on ``spec`` here ("" when it may)."""
    from harness import units

    needed = strat.needed_ram_bytes(spec, **options)
    if needed > MAX_FRACTION_OF_AVAILABLE_RAM * available_ram:
        return (f"may need {units.human_bytes(needed)} of RAM, and "
                f"{units.human_bytes(available_ram)} is available now")
    # The passes of one measurement: repeat timed, two metered, one checked (cold: one more).
    seconds = strat.estimated_pass_seconds(spec, **options) * (int(repeat) + 3)
    if seconds > timeout_seconds:
        return (f"would take about {units.human_seconds(seconds)} (over the "
                f"{units.human_seconds(timeout_seconds)} timeout; raise --timeout)")
    return ""


def measure_file_in_process(run: FileRun, user: UserMatrix, *, cache: str = "warm",
                            repeat: int = 3, check: bool = True, **options):
    """Measure ``run`` in this process; results are checked against ``user``'s own values."""
    from harness.measuring import strategies
    from harness.measuring.runs import measure

    strat = strategies.get(run.strategy)
    return measure.measure_opened(
        strat, run.spec, run.location,
        lambda: strat.open_at(run.spec, run.location, **options),
        user.reference if check else None, cache=cache, repeat=repeat, options=options)


def measure_file_in_subprocess(run: FileRun, user: UserMatrix, *, cache: str = "warm",
                               repeat: int = 3, check: bool = True,
                               timeout_seconds: float | None = None, **options):
    """``measure_file_in_process`` in a fresh interpreter (``python -m
    harness.measuring.storage.user``); raises ``measure.MeasurementError`` when it fails."""
    from harness.measuring.runs.measure import run_child

    request = {
        "strategy": run.strategy, "label": run.label, "spec": run.spec.to_dict(),
        "location": {"path": os.fspath(run.location.path),
                     "byte_offset": run.location.byte_offset, "dataset": run.location.dataset},
        "user": user.describe(), "cache": cache, "repeat": int(repeat), "check": bool(check),
        "options": options,
    }
    return run_child("harness.measuring.storage.user", request, f"{run.key} ({cache})",
                     timeout_seconds)


def _child_main(argv: list[str]) -> int:
    """Entry point of the measuring subprocess: one JSON request in, one JSON record out."""
    import json

    if len(argv) != 1:
        print("usage: python -m harness.measuring.storage.user '<json request>'", file=sys.stderr)
        return 2
    request = json.loads(argv[0])
    described = request["user"]
    user = open_user_matrix(described["file"], shape=tuple(described["shape"]),
                            dtype=described["dtype"])
    where = request["location"]
    run = FileRun(request["strategy"], request["label"], DatasetSpec.from_dict(request["spec"]),
                  FileLocation(Path(where["path"]), where["byte_offset"], where["dataset"]))
    result = measure_file_in_process(run, user, cache=request["cache"], repeat=request["repeat"],
                                     check=request["check"], **request["options"])
    print(json.dumps(result.to_record()))
    return 0


def compare_file(user: UserMatrix, also_as=(), names=None, *, chunks=None, compression=None,
                 cache: str = "warm", repeat: int = 5, rounds: int = 1, root=None,
                 check: bool = True, roofline: bool = True, timeout_seconds: float = 600.0,
                 progress=None, **options):
    """Every strategy that accepts a storage of the user's matrix, side by side
    (``plan.Comparison``; each record's ``storage`` names the copy it read).

    ``also_as``: storages to copy the matrix into first (``convert.TARGETS``; ``chunks`` and
    ``compression`` for the HDF5 and zarr copies), written block by block into the data
    directory ``root``.
    The rest as in ``plan.compare_strategies``.
    """
    from harness.measuring.storage import copies as convert
    from harness.measuring.storage import datasets
    from harness.measuring.runs import plan

    options = plan.check_run_arguments(cache, rounds, repeat, timeout_seconds, options)
    targets = convert.parse_targets(",".join(also_as)) if also_as else []
    convert.check_layout(targets, compression)
    root = root if root is not None else datasets.default_root()
    copies = [convert.convert(user, target, chunks=chunks, compression=compression, root=root)
              for target in targets]
    runs, skipped = plan_for_file(user, copies, names, repeat=repeat,
                                  timeout_seconds=timeout_seconds, **options)
    ceiling = plan.measure_roofline(root) if roofline else None

    def measurer(run: FileRun):
        return lambda state: measure_file_in_subprocess(
            run, user, cache=state, repeat=repeat, check=check,
            timeout_seconds=timeout_seconds, **options)

    labelled, failures = plan.run_interleaved([(run.key, measurer(run)) for run in runs],
                                              cache, rounds, progress)
    labels = {run.key: run.label for run in runs}
    records = []
    for key, record in labelled:
        record["storage"] = labels[key]
        records.append(record)
    plan.add_derived_columns(records, ceiling)
    return plan.Comparison(records, skipped, failures, ceiling)


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
