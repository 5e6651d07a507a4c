"""bench/_floor.py's GEMM lists match the products the solvers really issue.

Every ``np.matmul`` call of one benchmarked solver call is recorded (shape
and operand layout) on a tiny problem and compared, as a multiset, with the
op list its GEMM floor replays; so a solver change that adds or removes a
product shows here instead of silently skewing the floor ratio.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")  # bench_solvers imports pytest only, but is a bench file
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import _floor as F  # noqa: E402
import bench_solvers  # noqa: E402
from _data import problem  # noqa: E402


def _transposed(a):
    return a.flags.f_contiguous and not a.flags.c_contiguous


def recorded_matmuls(fn):
    """(m, k, n, a transposed, b transposed) of every np.matmul call in fn()."""
    calls = []
    orig = np.matmul

    def spy(a, b, *args, **kwargs):
        if np.ndim(a) == 2 and np.ndim(b) == 2:
            calls.append((a.shape[0], a.shape[1], b.shape[1], _transposed(a), _transposed(b)))
        return orig(a, b, *args, **kwargs)

    np.matmul = spy
    try:
        fn()
    finally:
        np.matmul = orig
    return Counter(calls)


def expected(ops):
    out = []
    for op in ops:
        if op[0] == "gram":
            out.append((op[2], op[1], op[2], True, False))  # X.T @ X
        else:
            out.append(op[1:])
    return Counter(out)


@pytest.mark.parametrize("solver", list(bench_solvers.SOLVERS))
def test_floor_ops_match_solver_gemms(solver):
    prepare, run, gemms = bench_solvers.SOLVERS[solver]
    m, n, k = 37, 23, 4
    args = prepare(*problem(m, n, k, np.float64))
    run(*args)  # compile before np.matmul is replaced
    got = recorded_matmuls(lambda: run(*args))
    assert got == expected(gemms(m, n, k)), (
        f"{solver}: only issued {dict(got - expected(gemms(m, n, k)))}, "
        f"only in the floor {dict(expected(gemms(m, n, k)) - got)}")


def test_floor_timer_samples_once_per_round_and_records():
    class Fake:  # a --benchmark-disable fixture: one untimed call, no stats
        extra_info = {}
        stats = None
    ops = F.nmf_ops(30, 20, 3, 2, "hals")
    t = F.FloorTimer(ops, np.float32, work=1800.0)
    assert t.samples == []  # the warm-up replay is not a sample
    setup = t.setup((1, 2))
    assert setup() == ((1, 2), {}) and len(t.samples) == 1
    b = Fake()
    floor = t.record(b)
    assert floor > 0 and b.extra_info["gemm_floor_s"] == floor
    assert "floor_ratio" not in b.extra_info
    assert b.extra_info["gemm_madds"] == F.op_madds(ops)
    assert F.gemm_floor(ops, np.float64, repeat=2) > 0


@pytest.mark.parametrize("options", [{}, {"bias": False}, {"refit_output": False},
                                     {"inner_iter": 2}, {"refresh_targets": False},
                                     {"bottom_up": True}, {"bottom_up": True, "bias": False},
                                     {"z_solver": "pgn", "z_iter": 2},
                                     {"z_solver": "pgn", "bias": False}],
                         ids=["default", "no-bias", "no-refit", "inner_iter=2", "keep-targets",
                              "bottom-up", "bottom-up-no-bias", "z-pgn", "z-pgn-no-bias"])
@pytest.mark.parametrize("reject", [False, True])
def test_trainer_sweep_gemms_match_its_matmuls(reject, options):
    """Trainer.sweep_gemms() lists the products a full-batch sweep issues
    (those with N in their shape: the floor's bulk), and which of them are
    Gram matrices (``X.T @ X`` of one buffer), also for a sweep that
    rejects its extrapolated step and so runs one more forward pass and
    output refit (``sweep_gemms(rejected=True)``)."""
    from fastnmf_dnn.network import init_random
    from fastnmf_dnn.trainer import Trainer, TrainOptions
    rng = np.random.default_rng(0)
    N, sizes = 97, [12, 50, 40, 3]
    X = rng.random((N, sizes[0]))
    Y = np.eye(3)[rng.integers(0, 3, N)]
    tr = Trainer(X, Y, init_random(sizes, rng, np.float64), TrainOptions().replace(**options))
    tr.sweep()
    tr.sweep()
    if reject:   # the next sweep's loss will be "higher": its step is rejected
        tr.prev_loss, tr.beta = -1.0, 2.0
    else:        # ... or "lower": accepted
        tr.prev_loss = np.inf
    calls = []
    orig = np.matmul

    def spy(a, b, *args, **kwargs):
        if np.ndim(a) == 2 and np.ndim(b) == 2:
            # X.T @ X of one buffer: numpy's syrk path (half the flops)
            is_gram = (np.shares_memory(a, b) and a.shape == b.shape[::-1]
                       and a.strides == b.strides[::-1])
            calls.append((a.shape[0], a.shape[1], b.shape[1], is_gram))
        return orig(a, b, *args, **kwargs)

    np.matmul = spy
    try:
        tr.sweep()
    finally:
        np.matmul = orig
    assert tr.last_sweep_rejected == reject
    # (m, k, n) and (n, k, m) are one product and its transpose (same flops)
    big = lambda shapes: Counter((min(m, n), k, max(m, n), g)  # noqa: E731
                                 for m, k, n, g in shapes if N in (m, k, n))
    listed = tr.sweep_gemms(rejected=reject, grams=True)
    assert big(calls) == big(listed)
    assert any(g for *_, g in listed)   # the hidden layer's and the refit's Grams
    # without grams=True: the same products as plain shapes
    assert tr.sweep_gemms(rejected=reject) == [s[:3] for s in listed]
    # bench/_floor.py replays those Grams as X.T @ X (syrk), the rest as GEMMs
    ops = F.trainer_ops(tr)
    assert sum(op[0] == "gram" for op in ops) == sum(g for *_, g in tr.sweep_gemms(grams=True))
