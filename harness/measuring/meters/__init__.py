"""The meters: exact peak memory of one operation (``memory``), the page cache
(``pagecache``), the machine's fingerprint and roofline (``machine``), a dask cluster's memory
(``cluster_memory``), and the C library calls they share (``libc``)."""
