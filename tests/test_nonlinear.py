"""fastnmf.nonlinear_semi_nmf (A ~ relu(U V)) against a NumPy fixed-point reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import _reference as ref
from conftest import DTYPES, ORDERS, as_order, assert_close

import fastnmf


def relu_problem(rng, m, n, k, dtype, order="C"):
    """A = relu(W H) + small noise with about a third of the entries exactly 0."""
    W = rng.standard_normal((m, k))
    H = rng.uniform(0, 1, (k, n))
    A = np.maximum(W @ H, 0) + 0.05 * rng.uniform(0, 1, (m, n)) * (W @ H > 0)
    U0 = W + 0.3 * rng.standard_normal((m, k))
    V0 = np.abs(H + 0.3 * rng.standard_normal((k, n)))
    return as_order(A.astype(dtype), order), U0.astype(dtype), V0.astype(dtype)


def err_rtol(dtype):
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("omega,alpha", [(1.0, 0.0), (0.6, 0.3)])
@pytest.mark.parametrize("n_inner,max_iter", [(1, 1), (1, 2), (2, 1)])
def test_matches_reference(rng, dtype, order, omega, alpha, n_inner, max_iter):
    m, n, k = 30, 24, 4
    A, U0, V0 = relu_problem(rng, m, n, k, dtype, order)
    U0c = U0.copy()
    res = fastnmf.nonlinear_semi_nmf(A, k, init=(U0, V0), n_inner=n_inner, max_iter=max_iter,
                                     tol=0, omega=omega, alpha=alpha)
    np.testing.assert_array_equal(U0, U0c)
    U, V = U0, V0
    errs = [ref.relu_rel_error(A, U, V)]
    for _ in range(max_iter):
        U, V = ref.nonlinear_iter(A, U, V, alpha, omega, n_inner)
        errs.append(ref.relu_rel_error(A, U, V))
    assert res.U.dtype == dtype and res.V.dtype == dtype
    assert res.U.shape == (m, k) and res.V.shape == (k, n) and res.V.T.flags.c_contiguous
    assert res.n_iter == max_iter
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))
    assert (res.V >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_named_init_starts_from_least_squares_u(rng, dtype):
    """For a named init, U0 = argmin ||A - U V0|| for the NNDSVDa V0, so the
    first U-step starts from that point; max_iter=0 exposes it."""
    A, _, _ = relu_problem(rng, 25, 20, 3, dtype)
    res = fastnmf.nonlinear_semi_nmf(A, 3, max_iter=0, random_state=0)
    V0 = ref.f64(res.V)
    U_ls = np.linalg.lstsq(V0.T, ref.f64(A).T, rcond=None)[0].T
    assert_close(res.U, U_ls, dtype, rtol_=1e-3 if dtype == np.float32 else 1e-8)
    assert res.errors.shape == (1,)
    np.testing.assert_allclose(res.errors[0], ref.relu_rel_error(A, res.U, res.V),
                               rtol=err_rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_reported_errors_equal_direct_computation(rng, dtype, order):
    A, _, _ = relu_problem(rng, 40, 30, 4, dtype, order)
    res = fastnmf.nonlinear_semi_nmf(A, 4, max_iter=15, tol=0, random_state=0)
    np.testing.assert_allclose(res.errors[-1], ref.relu_rel_error(A, res.U, res.V),
                               rtol=err_rtol(dtype))
    assert res.errors[-1] < res.errors[0]  # it does fit
    assert (res.V >= 0).all()


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 30), n=st.integers(1, 30), k=st.integers(1, 5),
       dtype=st.sampled_from(DTYPES), init=st.sampled_from(["nndsvda", "nndsvd", "random"]),
       seed=st.integers(0, 2**16))
def test_nonnegative_v_and_finite(m, n, k, dtype, init, seed):
    rng = np.random.default_rng(seed)
    A = np.maximum(rng.standard_normal((m, n)), 0).astype(dtype)
    res = fastnmf.nonlinear_semi_nmf(A, k, init=init, max_iter=5, tol=0, random_state=seed)
    assert res.U.dtype == dtype and res.V.dtype == dtype
    assert np.isfinite(res.U).all() and np.isfinite(res.V).all()
    assert np.isfinite(res.errors).all()
    assert (res.V >= 0).all()
