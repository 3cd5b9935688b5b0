"""asv benchmark types, found by asv_runner: it imports every module of this package and
registers the classes each lists in ``export_as_benchmark``. One module per kind of figure:
``increments`` (memory), ``reads`` (bytes read), ``coldtime`` (cold-cache time); ``_metered``
holds what they share. The prefixes, types and units are in ``asv_bench_harness.figures``."""
