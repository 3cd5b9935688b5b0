"""asv_bench_harness: the harness's exact memory meter for any project, standard library only.

- ``memory``: the peak memory one call adds (the kernel's high-water mark reset before it, and
  its anonymous and file-backed parts sampled every 0.5 ms); ``reads``: the bytes a process
  read (``/proc/self/io``); ``pagecache``: evict files from the page cache, check residency;
  ``units``: sizes in bytes ('64 MiB').
- ``benchmarks``: asv benchmark types built on them (prefixes, types and units in
  ``figures``), found by asv_runner because this distribution's name starts with
  ``asv_bench``.
- ``pytest_plugin``: the ``limit_anon_memory`` and ``limit_file_memory`` markers.

The harness (``harness.measuring.meters``) measures with these same modules.
"""

__version__ = "0.1.0"
