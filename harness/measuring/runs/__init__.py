"""One pipeline for a matrix from any source: where it is read (``sources``), what runs and
what is refused (``plan``), one measurement (``measure``) in a fresh process (``child``), the
side-by-side comparison (``compare``) and the advice (``recommend``); the asv suite's grids
(``profiles``) and the notebook replay (``notebook``)."""
