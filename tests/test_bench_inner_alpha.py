"""bench/inner_alpha.py: the inner-sweep comparison script."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))


def test_inner_alpha_script_table():
    """bench/inner_alpha.py: each alpha's run stops at the first iteration
    that reaches scikit-learn's error, and the table has one row per case."""
    pytest.importorskip("sklearn")
    import inner_alpha
    cases = inner_alpha.make_cases()
    A, k = cases["digits-r5"]()
    rows = inner_alpha.run_case(A[:300], k, [0], [0.5, 0.25], repeat=1)
    assert len(rows) == 1 and set(rows[0]) == {0.5, 0.25}
    for it, sec in rows[0].values():
        assert it is None or (it >= 1 and 0 < sec < np.inf)
    lines = inner_alpha.table({"digits-r5": rows}, [0.5, 0.25])
    assert len(lines) == 3 and lines[2].startswith("| digits-r5 |")
    # case, one iterations column per alpha, one ratio column per alpha but the first
    assert lines[1].count("|---") == 4
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == 5
