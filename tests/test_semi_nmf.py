"""fastnmf.semi_nmf (HALS and MU V-steps, ridge U-step) against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import _reference as ref
from conftest import DTYPES, ORDERS, as_order, assert_close, assert_non_increasing

import fastnmf


def semi_problem(rng, m, n, k, dtype, order="C"):
    """Mixed-sign A = W H + noise with H >= 0."""
    W = rng.standard_normal((m, k))
    H = rng.uniform(0, 1, (k, n))
    A = W @ H + 0.2 * rng.standard_normal((m, n))
    U0 = rng.standard_normal((m, k))
    V0 = rng.uniform(0.1, 1, (k, n))
    return as_order(A.astype(dtype), order), U0.astype(dtype), V0.astype(dtype)


def err_rtol(dtype):
    return 2e-4 if np.dtype(dtype) == np.float32 else 1e-9


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("solver", ["hals", "mu"])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("max_iter", [1, 2])
def test_matches_reference(rng, dtype, order, solver, alpha, max_iter):
    m, n, k = 30, 22, 4
    A, U0, V0 = semi_problem(rng, m, n, k, dtype, order)
    res = fastnmf.semi_nmf(A, k, solver=solver, init=(U0, V0), alpha=alpha, n_inner=1,
                           max_iter=max_iter, tol=0)
    eps = float(np.finfo(dtype).eps)
    U, V = U0, V0
    errs = [ref.rel_error(A, U, V)]  # errors[0]: the given (U0, V0)
    for _ in range(max_iter):
        U, V = ref.semi_nmf_iter(A, V, alpha, solver, eps)
        errs.append(ref.rel_error(A, U, V))
    assert res.U.dtype == dtype and res.V.dtype == dtype
    assert res.V.shape == (k, n) and res.V.T.flags.c_contiguous
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))
    assert (res.V >= 0).all()
    assert (res.U < 0).any()  # U really is unconstrained


@pytest.mark.parametrize("dtype", DTYPES)
def test_u_step_is_least_squares(rng, dtype):
    """The U-step (alpha=0) is the least-squares solution for the V it saw (V0)."""
    A, U0, V0 = semi_problem(rng, 20, 15, 3, dtype)
    res = fastnmf.semi_nmf(A, 3, init=(U0, V0), max_iter=1, tol=0, n_inner=1)
    U_ls = np.linalg.lstsq(ref.f64(V0).T, ref.f64(A).T, rcond=None)[0].T
    assert_close(res.U, U_ls, dtype)


@pytest.mark.parametrize("solver", ["hals", "mu"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", ["nndsvda", "random"])
def test_reported_errors_equal_direct_computation(rng, solver, dtype, init):
    A, _, _ = semi_problem(rng, 35, 25, 4, dtype)
    res = fastnmf.semi_nmf(A, 4, solver=solver, init=init, max_iter=10, tol=0, random_state=1)
    np.testing.assert_allclose(res.error, ref.rel_error(A, res.U, res.V), rtol=err_rtol(dtype))
    assert (res.V >= 0).all()


@settings(max_examples=25, deadline=None)
@given(m=st.integers(2, 40), n=st.integers(2, 40), k=st.integers(1, 5),
       solver=st.sampled_from(["hals", "mu"]), order=st.sampled_from(ORDERS),
       seed=st.integers(0, 2**16))
@example(m=14, n=4, k=4, solver="hals", order="C", seed=157)   # exact fit, noise 2.2e-6
def test_objective_non_increasing_alpha0(m, n, k, solver, order, seed):
    rng = np.random.default_rng(seed)
    k = min(k, m, n)  # a full-rank V keeps the alpha=0 U-step exact
    A = as_order(rng.standard_normal((m, n)), order)
    res = fastnmf.semi_nmf(A, k, solver=solver, max_iter=10, tol=0, alpha=0.0,
                           random_state=seed)
    assert np.isfinite(res.U).all() and np.isfinite(res.V).all()
    assert (res.V >= 0).all()
    # errors[0] (NNDSVD U0) >= errors[1] too: the U-step minimises over U.
    # (C=1e5: when k = min(m, n) the fit is exact and the reported error,
    # formed by cancellation, sits at a noise floor of up to a few 1e-6
    # instead of ~1e-13; the example above, found by a CI run, reads
    # 0, ..., 0, 2.2e-6, over C=1e4's floor of 1.5e-6)
    assert_non_increasing(res.errors, np.float64, C=1e5)


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_objective_non_increasing_float32(rng, solver):
    A, _, _ = semi_problem(rng, 40, 30, 4, np.float32)
    res = fastnmf.semi_nmf(A, 4, solver=solver, max_iter=25, tol=0, random_state=0)
    assert_non_increasing(res.errors, np.float32)
    assert res.errors[-1] < res.errors[1]


def test_ridge_penalty_shrinks_u(rng):
    A, U0, V0 = semi_problem(rng, 20, 15, 3, np.float64)
    small = fastnmf.semi_nmf(A, 3, init=(U0, V0), max_iter=1, tol=0, alpha=0.0)
    big = fastnmf.semi_nmf(A, 3, init=(U0, V0), max_iter=1, tol=0, alpha=1e3)
    assert np.linalg.norm(big.U) < 0.5 * np.linalg.norm(small.U)


@pytest.mark.parametrize("solver", ["hals", "mu"])
@pytest.mark.parametrize("m,n,k", [(7, 3, 5), (3, 3, 8), (4, 7, 6), (2, 70, 4)])
def test_rank_above_min_dim_stays_monotone_float64(solver, m, n, k):
    """V V^T is singular; the U-step must still be (nearly) least squares."""
    rng = np.random.default_rng(1)
    A = rng.uniform(0, 1, (m, n))
    res = fastnmf.semi_nmf(A, k, solver=solver, max_iter=8, tol=0, random_state=0)
    assert np.isfinite(res.U).all() and np.isfinite(res.errors).all()
    # (damping of the null directions costs up to ~sqrt(eps) per step)
    assert (np.diff(res.errors) <= 1e-6).all(), res.errors
