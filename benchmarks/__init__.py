"""asv suite of harness: one module per family (dense, memmap, hdf5, sparse) plus machine.

The sizes and grids come from the profile named by $HARNESS_PROFILE (harness.measuring.runs.profiles).
"""
