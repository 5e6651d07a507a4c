"""bench/small_work.py: the calibration of the small-solve BLAS threshold."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import fastnmf
import fastnmf._threads as T

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))


def test_measure_sets_each_side_of_the_threshold_and_restores_it():
    """Each timed call runs with BLAS_SMALL_WORK above the problem's work
    (one thread) or below it (every thread), and the module's value is
    restored afterwards, also when the call fails."""
    import small_work
    saved = T.BLAS_SMALL_WORK
    seen = []

    def call():
        seen.append(T.BLAS_SMALL_WORK)

    one, every, ratio = small_work.measure(call, 1000.0, rounds=2, repeat=2)
    assert T.BLAS_SMALL_WORK == saved
    assert set(seen[1:]) == {2000.0, 500.0}       # after the untimed first call
    assert seen.count(2000.0) == seen.count(500.0) == 2 * 3
    assert one > 0 and every > 0 and ratio > 0

    def fails():
        if T.BLAS_SMALL_WORK != saved:
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        small_work.measure(fails, 1000.0, rounds=1, repeat=1)
    assert T.BLAS_SMALL_WORK == saved


def test_problems_are_small_and_run():
    """Every problem of the table is below SMALL_WORK (where the threshold
    matters) and its call returns a factorization."""
    import small_work
    probs = small_work.problems()
    assert len(probs) >= 10
    for label, work, call in probs:
        assert 0 < work < T.SMALL_WORK, label
    label, work, call = probs[0]
    with fastnmf.threads(1):
        r = call()
    assert r.U.shape[1] == 5 and np.isfinite(r.errors).all()
