"""Where a matrix lives: one module per format behind one interface (``base``), the one
sealed-file cache (``cache``), the harness's generated datasets (``datasets``), copies of a
user's matrix (``copies``) and users' own files (``user``). ``formats.get(name)`` is a format's
``Storage`` record."""
