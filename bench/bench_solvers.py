"""Per-solver timings (pytest-benchmark): a fixed number of iterations of every
public solver, over dtype, size and threads. Synthetic uniform data (the
real-data comparisons are in bench/compare.py).

    pytest bench/bench_solvers.py [--quick]
"""
import numpy as np
import pytest

import fastnmf
from _data import problem

SIZES = [pytest.param((2000, 300, 20), id="2000x300-k20"),
         pytest.param((60000, 784, 50), id="60000x784-k50", marks=pytest.mark.large)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
ITERS = 5

SOLVERS = {
    "nmf-hals": lambda A, U, V: fastnmf.nmf(A, U.shape[1], init=(U, V), max_iter=ITERS, tol=0),
    "nmf-mu": lambda A, U, V: fastnmf.nmf(A, U.shape[1], solver="mu", init=(U, V),
                                          max_iter=ITERS, tol=0),
    "semi_nmf-hals": lambda A, U, V: fastnmf.semi_nmf(A - 0.5, U.shape[1], init=(U, V),
                                                      max_iter=ITERS, tol=0),
    "semi_nmf-mu": lambda A, U, V: fastnmf.semi_nmf(A - 0.5, U.shape[1], solver="mu",
                                                    init=(U, V), max_iter=ITERS, tol=0),
    "nonlinear_semi_nmf": lambda A, U, V: fastnmf.nonlinear_semi_nmf(
        A, U.shape[1], init=(U - 0.5, V), max_iter=ITERS, tol=0),
    "relu_lstsq-U": lambda A, U, V: fastnmf.relu_lstsq(A, U - 0.5, V, update="U",
                                                       n_iter=ITERS),
    "relu_lstsq-V": lambda A, U, V: fastnmf.relu_lstsq(A, U - 0.5, V, update="V",
                                                       n_iter=ITERS),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_solver(benchmark, n_threads, solver, dtype, size):
    A, U, V = problem(*size, dtype)
    run = SOLVERS[solver]
    run(A[:50], U[:50], V)  # compile outside the timed rounds
    r = benchmark.pedantic(run, args=(A, U, V), rounds=5, warmup_rounds=1)
    assert np.isfinite(r.errors).all()
