"""Per-solver timings (pytest-benchmark): a fixed number of iterations of every
public solver, over dtype, size and threads. Synthetic uniform data (the
real-data comparisons are in bench/compare.py).

    pytest bench/bench_solvers.py [--quick]

Each benchmark also records the GEMM floor of the call it times (every
matrix product the solver issues, replayed alone with numpy before every
round, see ``_floor.py``) in ``extra_info``: ``gemm_floor_s`` and
``floor_ratio``.
Inputs are prepared (shifted, copied) outside the timed rounds; Numba
kernels are compiled by an untimed call on a 50-row slice first.
"""
import numpy as np
import pytest

import fastnmf
import _floor as F
from _data import problem

SIZES = [pytest.param((2000, 300, 20), id="2000x300-k20"),
         pytest.param((6000, 784, 50), id="6000x784-k50"),
         pytest.param((60000, 784, 50), id="60000x784-k50", marks=pytest.mark.large)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
ITERS = 5


def _same(A, U, V):
    return A, U, V


#: name -> (prepare inputs (untimed), the timed call, its GEMMs for (m, n, k)).
SOLVERS = {
    "nmf-hals": (_same,
                 lambda A, U, V: fastnmf.nmf(A, U.shape[1], init=(U, V), max_iter=ITERS, tol=0),
                 lambda m, n, k: F.nmf_ops(m, n, k, ITERS, "hals")),
    "nmf-mu": (_same,
               lambda A, U, V: fastnmf.nmf(A, U.shape[1], solver="mu", init=(U, V),
                                           max_iter=ITERS, tol=0),
               lambda m, n, k: F.nmf_ops(m, n, k, ITERS, "mu")),
    # l1 / l2 penalties: the same GEMMs, plus O((m + n) k) shifts and sums
    "nmf-hals-penalized": (_same,
                           lambda A, U, V: fastnmf.nmf(A, U.shape[1], init=(U, V),
                                                       max_iter=ITERS, tol=0, l1=0.1, l2=0.1,
                                                       extrapolate=True),
                           lambda m, n, k: F.nmf_ops(m, n, k, ITERS, "hals")),
    "nmf-mu-penalized": (_same,
                         lambda A, U, V: fastnmf.nmf(A, U.shape[1], solver="mu", init=(U, V),
                                                     max_iter=ITERS, tol=0, l1=0.1, l2=0.1),
                         lambda m, n, k: F.nmf_ops(m, n, k, ITERS, "mu")),
    # Kullback-Leibler loss: four m x n x k GEMMs and two ratio passes per iteration
    "nmf-kl": (_same,
               lambda A, U, V: fastnmf.nmf(A, U.shape[1], solver="mu", loss="kl", init=(U, V),
                                           max_iter=ITERS, tol=0),
               lambda m, n, k: F.nmf_kl_ops(m, n, k, ITERS)),
    "semi_nmf-hals": (lambda A, U, V: (A - 0.5, U, V),
                      lambda A, U, V: fastnmf.semi_nmf(A, U.shape[1], init=(U, V),
                                                       max_iter=ITERS, tol=0),
                      lambda m, n, k: F.semi_nmf_ops(m, n, k, ITERS, "hals")),
    "semi_nmf-mu": (lambda A, U, V: (A - 0.5, U, V),
                    lambda A, U, V: fastnmf.semi_nmf(A, U.shape[1], solver="mu", init=(U, V),
                                                     max_iter=ITERS, tol=0),
                    lambda m, n, k: F.semi_nmf_ops(m, n, k, ITERS, "mu")),
    "nonlinear_semi_nmf": (lambda A, U, V: (A, U - 0.5, V),
                           lambda A, U, V: fastnmf.nonlinear_semi_nmf(
                               A, U.shape[1], init=(U, V), max_iter=ITERS, tol=0),
                           lambda m, n, k: F.nonlinear_ops(m, n, k, ITERS, n_inner=2)),
    "relu_lstsq-U": (lambda A, U, V: (A, U - 0.5, V),
                     lambda A, U, V: fastnmf.relu_lstsq(A, U, V, update="U", n_iter=ITERS),
                     lambda m, n, k: F.relu_lstsq_ops(m, n, k, ITERS, "U")),
    "relu_lstsq-V": (lambda A, U, V: (A, U - 0.5, V),
                     lambda A, U, V: fastnmf.relu_lstsq(A, U, V, update="V", n_iter=ITERS),
                     lambda m, n, k: F.relu_lstsq_ops(m, n, k, ITERS, "V")),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_solver(benchmark, n_threads, solver, dtype, size):
    prepare, run, gemms = SOLVERS[solver]
    m, n, k = size
    args = prepare(*problem(m, n, k, dtype))
    A, U, V = args
    run(A[:50], U[:50], V)  # compile outside the timed rounds
    floor = F.FloorTimer(gemms(m, n, k), dtype, work=float(m) * n * k)
    # One untimed full call: the warm-up round (first touch, thread pools),
    # and its time picks the rounds (5 to 15, about half a second in all).
    rounds = F.rounds_for(F.time_once(run, *args), budget_s=0.5, max_rounds=15)
    r = benchmark.pedantic(run, setup=floor.setup(args), rounds=rounds)
    assert np.isfinite(r.errors).all()
    benchmark.extra_info.update(kind="solver", name=solver, size=f"{m}x{n}-k{k}",
                                dtype=np.dtype(dtype).name, threads=n_threads,
                                work=float(m) * n * k, iters=ITERS)
    floor.record(benchmark)
