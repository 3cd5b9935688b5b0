"""The half of harness that produces figures: matrices on disk, the ways to multiply them, and
the meters (time, exact peak memory, page cache, machine limits). Nothing here reads asv
results; the reporting half never imports from here."""
