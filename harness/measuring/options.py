"""The strategies' options, each declared once (:data:`OPTIONS`), grouped per family.

Validation (:func:`resolve_options`), the :class:`Options` record the openers receive, the
``measure`` command's flags and the child process's JSON all come from the one table, so a new
option is one line here plus its use in the strategies that read it. This module imports
nothing heavy: the command line builds its parser from it.
"""

from __future__ import annotations

import dataclasses

from harness.units import MiB

#: Default memory budget of block-wise strategies, in bytes.
DEFAULT_MEMORY_BUDGET_BYTES = 64 * MiB


@dataclasses.dataclass(frozen=True)
class Option:
    """One strategy option, declared once: its ``name`` (a keyword of ``Strategy.open``, a
    field of :class:`Options`, ``--name-with-dashes`` on the command line), the ``family``
    whose strategies read it (how ``measure --help`` groups them), its ``kind`` ("count",
    "bytes": whole numbers of at least ``minimum``; "text"), its ``default`` and ``help``."""

    name: str
    family: str
    kind: str
    help: str
    default: object = None
    minimum: int = 1

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


#: Every strategy option, grouped per family. A new option is one line here (and its use in
#: the strategies that read it): validation, the Options fields, the command line and the
#: child process's JSON all come from this table.
OPTIONS: tuple[Option, ...] = (
    Option("block_rows", "block readers", "count",
           "rows per block of the block readers (default: from --memory-budget)"),
    Option("memory_budget", "block readers", "bytes",
           "bytes, e.g. 256MiB: the block readers' budget (default 64MiB) and the "
           "recommendation's limit on anonymous memory (default: available RAM)",
           default=DEFAULT_MEMORY_BUDGET_BYTES),
    Option("chunk_cache_bytes", "hdf5", "bytes",
           "HDF5 rdcc_nbytes, e.g. 1MiB (HDF5 1.x default) or 8MiB (HDF5 2.0 default); 0: none",
           minimum=0),
    Option("scheduler", "dask-distributed", "text",
           "address of an existing cluster, e.g. tcp://host:8786 (default "
           "$HARNESS_DASK_SCHEDULER, else a LocalCluster the harness starts)"),
    Option("workers", "dask-distributed", "count",
           "worker processes of the LocalCluster (default 2)"),
    Option("threads_per_worker", "dask-distributed", "count",
           "threads of each LocalCluster worker (default 1)"),
    Option("worker_memory_limit", "dask-distributed", "bytes",
           "bytes per LocalCluster worker (default: no limit)"),
)
#: Option names (unknown names are refused, to catch typos).
OPTION_NAMES = tuple(option.name for option in OPTIONS)

#: Resolved strategy options: one field per :data:`OPTIONS` entry (None: its default, or
#: "not given" where the strategy decides).
Options = dataclasses.make_dataclass(
    "Options", [(o.name, int | str | None, dataclasses.field(default=o.default)) for o in OPTIONS],
    frozen=True)
Options.__module__ = __name__  # pickled with the dask workers' requests


def resolve_options(options: dict) -> Options:
    """Check ``options`` (name -> value; None: not given) against :data:`OPTIONS`."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown strategy option(s) {unknown}; known options: {list(OPTION_NAMES)}")
    declared = {option.name: option for option in OPTIONS}
    values = {k: v for k, v in options.items() if v is not None}
    for name, value in values.items():
        option = declared[name]
        if option.kind == "text":
            values[name] = str(value)
            continue
        if int(value) != value or int(value) < option.minimum:
            raise ValueError(f"option {name} must be an integer >= {option.minimum}, got {value!r}")
        values[name] = int(value)
    return Options(**values)
