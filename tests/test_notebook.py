"""``python -m harness notebook --quick``: every claim of the notebook gets a row and a verdict."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.measuring.runs.notebook import (
    CLAIMS,
    DIFFERENT,
    REPRODUCED,
    WRONG,
    recursive_getsizeof,
)


@pytest.mark.slow
def test_quick_replay_gives_every_claim_a_row_and_a_verdict(tmp_path, capsys):
    status = main(["notebook", "--quick", "--format", "json", "--data-dir", str(tmp_path)])
    assert status == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(CLAIMS) == 9
    for row in rows:
        assert row["verdict"] in (REPRODUCED, DIFFERENT, WRONG), row
        assert row["notebook"] != "-" and row["ours"] != "-" and row["why"], row
    by_claim = {row["claim"]: row for row in rows}
    # 4940 bytes is the size of the Python objects, not of the CSR arrays.
    assert by_claim["size of the CSR matrix"]["verdict"] == WRONG
    # Mapping a file costs (almost) nothing, as the notebook said.
    assert by_claim["open a memmap"]["verdict"] == REPRODUCED
    # The notebook's cells measured with %memit show the 10 Hz sampler's figure beside ours.
    memit_rows = [row for row in rows if row["sampler"]]
    assert len(memit_rows) == 5


def test_recursive_getsizeof_ignores_array_buffers():
    import numpy as np

    big = np.zeros(1_000_000)
    assert recursive_getsizeof({"a": big}) < 10_000 < big.nbytes
