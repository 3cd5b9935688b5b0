"""harness: benchmark and profile matrix-vector products on very large arrays.

Data flows one way (see DESIGN.md): ``datasets`` -> ``strategies`` -> ``measure`` (using
``memory``, ``pagecache``, ``machine``) -> asv results -> ``results`` -> ``compare`` -> ``report``.
"""

__version__ = "0.1.0"
