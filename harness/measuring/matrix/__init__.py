"""What a matrix is before it is stored: its spec (``spec``), its kinds of values (``values``)
and its deterministic, block-wise generation (``generate``)."""
