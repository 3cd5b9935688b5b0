"""The half of harness that produces figures. Data flows one way, through one package each:

- ``matrix``: what a matrix is (``spec``), its kinds of values and its deterministic,
  block-wise generation (``generate``);
- ``storage``: one module per format behind one interface (``base.Storage``: ``raw``,
  ``hdf5``, ``csr_hdf5``, ``npz``, ``zarr``), the one sealed-file cache (``cache``) that the
  generated datasets (``datasets``) and the copies of a user's matrix (``copies``) go through,
  and users' files (``user``);
- ``meters``: exact peak memory (``memory``), the page cache (``pagecache``), the machine's
  roofline (``machine``), a dask cluster's memory (``cluster_memory``);
- ``strategies``: the ways to compute ``A @ x`` (and ``Aᵀ y``, ``A @ X``, ``Aᵀ Y``: the block
  arithmetic in ``products``), one module per family, with the operands' capabilities as
  Protocols (``capabilities``);
- ``runs``: one pipeline for a matrix from any source (``sources``, ``plan``, ``measure``,
  ``child``, ``compare``, ``recommend``), a solve's passes (``passes``), the asv suite's
  ``profiles`` and the ``notebook``;
- ``operator``: the chosen strategy handed to a user's code as a ``LinearOperator``.

Beside them, read by several: ``fit`` (the one fit policy: RAM, disk, time) and ``options``
(the strategies' options, declared once). Nothing here reads asv results; the reporting half
never imports from here.
"""
