"""Single-block solves: relu_lstsq, ridge_lstsq, nnls vs NumPy/SciPy references."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import _reference as ref
from conftest import DTYPES, ORDERS, as_order, assert_close

import fastnmf


def err_rtol(dtype):
    return 2e-4 if np.dtype(dtype) == np.float32 else 1e-9


def relu_problem(rng, m, n, k, dtype, order="C", ones_row=False):
    W = rng.standard_normal((m, k))
    H = rng.uniform(0, 1, (k, n))
    if ones_row:
        H[-1] = 1.0
    A = np.maximum(W @ H, 0) + 0.05 * rng.uniform(0, 1, (m, n))
    U = W + 0.3 * rng.standard_normal((m, k))
    V = np.abs(H + 0.3 * rng.standard_normal((k, n)))
    if ones_row:
        V[-1] = 1.0
    return as_order(A.astype(dtype), order), U.astype(dtype), V.astype(dtype)


# --------------------------------------------------------------------------
# relu_lstsq
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_iter", [1, 3])
@pytest.mark.parametrize("omega,alpha", [(1.0, 0.0), (0.5, 0.2)])
@pytest.mark.parametrize("fixed_ones_row", [False, True])
def test_relu_lstsq_update_U(rng, dtype, order, n_iter, omega, alpha, fixed_ones_row):
    m, n, k = 28, 21, 4
    A, U0, V = relu_problem(rng, m, n, k, dtype, order, ones_row=fixed_ones_row)
    Vc = V.copy()
    res = fastnmf.relu_lstsq(A, U0, V, update="U", n_iter=n_iter, omega=omega, alpha=alpha,
                             fixed_ones_row=fixed_ones_row)
    U = ref.f64(U0)
    errs = []
    for _ in range(n_iter):
        errs.append(ref.relu_rel_error(A, U, V))
        U = ref.relu_step_U(A, U, V, alpha, omega)
    errs.append(ref.relu_rel_error(A, U, V))
    assert res.U.dtype == dtype and res.V.dtype == dtype
    assert res.n_iter == n_iter
    assert_close(res.U, U, dtype)
    np.testing.assert_array_equal(res.V, Vc)     # the fixed factor, unchanged
    np.testing.assert_array_equal(V, Vc)         # and the input is not modified
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_iter", [1, 3])
@pytest.mark.parametrize("omega,alpha", [(1.0, 0.0), (0.5, 0.2)])
@pytest.mark.parametrize("fixed_ones_row", [False, True])
def test_relu_lstsq_update_V(rng, dtype, order, n_iter, omega, alpha, fixed_ones_row):
    m, n, k = 28, 21, 4
    A, U, V0 = relu_problem(rng, m, n, k, dtype, order, ones_row=fixed_ones_row)
    Uc = U.copy()
    res = fastnmf.relu_lstsq(A, U, V0, update="V", n_iter=n_iter, omega=omega, alpha=alpha,
                             fixed_ones_row=fixed_ones_row)
    V = ref.f64(V0)
    errs = []
    for _ in range(n_iter):
        errs.append(ref.relu_rel_error(A, U, V))
        V = ref.relu_step_V(A, U, V, alpha, omega, fixed_ones_row=fixed_ones_row)
    errs.append(ref.relu_rel_error(A, U, V))
    assert res.U.dtype == dtype and res.V.dtype == dtype
    assert_close(res.V, V, dtype)
    np.testing.assert_array_equal(res.U, Uc)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))
    assert (res.V >= 0).all()
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()  # exactly ones, never touched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_iter", [1, 3])
@pytest.mark.parametrize("step_at_zero", [0.0, 0.5])
@pytest.mark.parametrize("fixed_ones_row", [False, True])
def test_relu_lstsq_step_at_zero_matches_reference(rng, dtype, order, n_iter, step_at_zero,
                                                   fixed_ones_row):
    """The entries of V at 0 take the step times step_at_zero (0: they stay
    at 0); the others the plain projected step."""
    m, n, k = 28, 21, 5
    A, U, V0 = relu_problem(rng, m, n, k, dtype, order, ones_row=fixed_ones_row)
    kf = k - 1 if fixed_ones_row else k
    V0[:kf][rng.uniform(size=(kf, n)) < 0.4] = 0      # inactive inputs
    res = fastnmf.relu_lstsq(A, U, V0, update="V", n_iter=n_iter, omega=1.5, alpha=0.1,
                             fixed_ones_row=fixed_ones_row, step_at_zero=step_at_zero)
    V = ref.f64(V0)
    for _ in range(n_iter):
        V = ref.relu_step_V(A, U, V, 0.1, 1.5, fixed_ones_row=fixed_ones_row,
                            step_at_zero=step_at_zero)
    assert_close(res.V, V, dtype)
    zero = V0[:kf] == 0
    if step_at_zero == 0:
        assert (res.V[:kf][zero] == 0).all()
    else:   # the shorter step does switch some of them on
        assert (res.V[:kf][zero] > 0).any()
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()
    plain = fastnmf.relu_lstsq(A, U, V0, update="V", n_iter=1, omega=1.5, alpha=0.1,
                               fixed_ones_row=fixed_ones_row)
    one = fastnmf.relu_lstsq(A, U, V0, update="V", n_iter=1, omega=1.5, alpha=0.1,
                             fixed_ones_row=fixed_ones_row, step_at_zero=step_at_zero)
    np.testing.assert_array_equal(one.V[:kf][~zero], plain.V[:kf][~zero])   # one step
    same = fastnmf.relu_lstsq(A, U, V0, update="V", n_iter=n_iter, step_at_zero=1.0,
                              fixed_ones_row=fixed_ones_row)
    np.testing.assert_array_equal(same.V, fastnmf.relu_lstsq(
        A, U, V0, update="V", n_iter=n_iter, fixed_ones_row=fixed_ones_row).V)


@pytest.mark.parametrize("update", ["U", "V"])
def test_relu_lstsq_final_error_flag_and_zero_iterations(rng, update):
    A, U, V = relu_problem(rng, 15, 12, 3, np.float64)
    res = fastnmf.relu_lstsq(A, U, V, update=update, n_iter=4, final_error=False)
    assert res.errors.shape == (4,)
    res0 = fastnmf.relu_lstsq(A, U, V, update=update, n_iter=0, final_error=False)
    assert res0.errors.shape == (1,) and res0.n_iter == 0
    np.testing.assert_allclose(res0.errors[0], ref.relu_rel_error(A, U, V), rtol=1e-12)
    np.testing.assert_array_equal(res0.U, U)
    np.testing.assert_array_equal(res0.V, V)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_lstsq_fits(rng, dtype):
    """Many U iterations on an exactly representable target reach a small error."""
    m, n, k = 30, 40, 3
    W = rng.standard_normal((m, k))
    V = rng.uniform(0, 1, (k, n))
    A = np.maximum(W @ V, 0).astype(dtype)
    U0 = (W + 0.1 * rng.standard_normal((m, k))).astype(dtype)
    res = fastnmf.relu_lstsq(A, U0, V.astype(dtype), update="U", n_iter=100)
    assert res.errors[-1] < 0.1 * res.errors[0]


# --------------------------------------------------------------------------
# ridge_lstsq
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order_A", ORDERS)
@pytest.mark.parametrize("order_V", ORDERS)
@pytest.mark.parametrize("alpha", [0.0, 1.5])
def test_ridge_lstsq_matches_solve(rng, dtype, order_A, order_V, alpha):
    m, n, k = 17, 23, 5
    A = as_order(rng.standard_normal((m, n)).astype(dtype), order_A)
    V = as_order(rng.standard_normal((k, n)).astype(dtype), order_V)
    U = fastnmf.ridge_lstsq(A, V, alpha=alpha)
    assert isinstance(U, np.ndarray) and U.shape == (m, k) and U.dtype == dtype
    assert U.flags.c_contiguous
    assert_close(U, ref.ridge_left(A, V, alpha), dtype)
    if alpha == 0.0:
        U_ls = np.linalg.lstsq(ref.f64(V).T, ref.f64(A).T, rcond=None)[0].T
        assert_close(U, U_ls, dtype)


# --------------------------------------------------------------------------
# nnls
# --------------------------------------------------------------------------
def nnls_problem(rng, m, n, k, dtype, order="C", ones_row=False):
    U = rng.standard_normal((m, k))
    if ones_row:
        U[:, -1] = rng.standard_normal(m)  # the bias column
    V = np.maximum(rng.standard_normal((k, n)), 0)
    if ones_row:
        V[-1] = 1.0
    A = U @ V + 0.3 * rng.standard_normal((m, n))
    V0 = rng.uniform(0.1, 1, (k, n))
    if ones_row:
        V0[-1] = 1.0
    return as_order(A.astype(dtype), order), U.astype(dtype), V0.astype(dtype)


def _split(A, U, ones_row):
    """The free problem: A - b 1^T ~ W Vf (b = bias column of U)."""
    A, U = ref.f64(A), ref.f64(U)
    if not ones_row:
        return A, U
    return A - U[:, -1:], U[:, :-1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("fixed_ones_row", [False, True])
@pytest.mark.parametrize("max_iter", [1, 3])
def test_nnls_hals_sweeps_match_reference(rng, dtype, order, fixed_ones_row, max_iter):
    m, n, k = 26, 70, 4   # n > 64: the sweep spans two row tiles
    A, U, V0 = nnls_problem(rng, m, n, k, dtype, order, ones_row=fixed_ones_row)
    res = fastnmf.nnls(A, U, V0=V0, solver="hals", max_iter=max_iter, tol=0,
                       fixed_ones_row=fixed_ones_row)
    Af, W = _split(A, U, fixed_ones_row)
    kf = W.shape[1]
    Vt = ref.f64(V0).T.copy()
    X = Vt[:, :kf]
    errs = [ref.rel_error(A, U, Vt.T)]
    for _ in range(max_iter):
        X, _ = ref.hals_sweep(X, Af.T @ W, W.T @ W)
        Vt[:, :kf] = X
        errs.append(ref.rel_error(A, U, Vt.T))
    assert res.V.dtype == dtype and res.V.shape == (k, n)
    assert_close(res.V, Vt.T, dtype)
    np.testing.assert_array_equal(res.U, U)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))
    assert (res.V >= 0).all()
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fixed_ones_row", [False, True])
@pytest.mark.parametrize("max_iter", [1, 4])
def test_nnls_mu_matches_reference(rng, dtype, fixed_ones_row, max_iter):
    m, n, k = 26, 19, 4
    A, U, V0 = nnls_problem(rng, m, n, k, dtype, ones_row=fixed_ones_row)
    res = fastnmf.nnls(A, U, V0=V0, solver="mu", max_iter=max_iter, tol=0,
                       fixed_ones_row=fixed_ones_row)
    Af, W = _split(A, U, fixed_ones_row)
    kf = W.shape[1]
    eps = float(np.finfo(dtype).eps)
    V = ref.f64(V0)
    C = Af.T @ W
    for _ in range(max_iter):
        V[:kf] = ref.mu_semi(V[:kf].T, C, W.T @ W, ref.mu_guard(eps, C)).T
    assert_close(res.V, V, dtype)
    assert (res.V >= 0).all()
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()
    np.testing.assert_allclose(res.errors[-1], ref.rel_error(A, U, V), rtol=err_rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fixed_ones_row", [False, True])
@pytest.mark.parametrize("prox", [0.0, 0.3])
@pytest.mark.parametrize("m", [3, 5])
def test_nnls_mu_thin_u_matches_reference(rng, dtype, fixed_ones_row, prox, m):
    """m << k: the MU update forms X G+ through U (the low-rank route of
    nnls_mu_semi_); same iterates as the plain rule, to rounding. (m = 5:
    the kernel's product T F takes one pass of four rows of U^T and one of
    one; m = 3 only the latter.)"""
    n, k = 90, 21
    A, U, V0 = nnls_problem(rng, m, n, k, dtype, ones_row=fixed_ones_row)
    assert 4 * m <= (k - 1 if fixed_ones_row else k)   # the low-rank route is taken
    res = fastnmf.nnls(A, U, V0=V0, solver="mu", max_iter=6, tol=0,
                       fixed_ones_row=fixed_ones_row, prox=prox)
    Af, W = _split(A, U, fixed_ones_row)
    kf = W.shape[1]
    eps = float(np.finfo(dtype).eps)
    V = ref.f64(V0)
    X0 = V[:kf].T.copy()
    G = W.T @ W + prox * np.eye(kf)
    C = Af.T @ W + prox * X0
    X = X0
    for _ in range(6):
        X = ref.mu_semi(X, C, G, ref.mu_guard(eps, C))
    V[:kf] = X.T
    assert_close(res.V, V, dtype)
    assert (res.V >= 0).all()
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_mu_low_rank_route_survives_cancellation(rng, dtype):
    """G = F^T F with large entries of both signs and tiny X entries: X G+ is
    formed as X G + X G- (cancellation). The update stays finite and close
    to the plain one (which forms X G+ directly)."""
    from fastnmf import _blocks as Bk
    p, r, k = 300, 2, 40
    F = (rng.standard_normal((r, k)) * 1e3).astype(dtype)
    F[1] = -F[0] * (1 + 1e-4)                 # G nearly cancels in X G
    G = (F.T @ F).astype(dtype)
    X0 = (rng.random((p, k)) * np.where(rng.random((p, k)) < 0.5, 1e-6, 1.0)).astype(dtype)
    C = (rng.standard_normal((p, k)) * 1e3).astype(dtype)
    runs = []
    for low_rank in (False, True):
        X = X0.copy()
        DP = np.empty_like(X)
        DM = np.empty((p, r + k) if low_rank else (p, k), dtype)
        Bk.nnls_mu_semi_(X, C, G, DP, DM, 5, float(np.finfo(dtype).eps),
                         factor=F if low_rank else None)
        assert np.isfinite(X).all() and (X >= 0).all()
        runs.append(X)
    scale = np.abs(runs[0]).max()
    tol = 2e-2 if dtype == np.float32 else 1e-8
    np.testing.assert_allclose(runs[1], runs[0], rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fixed_ones_row", [False, True])
def test_nnls_default_start_is_clipped_least_squares(rng, dtype, fixed_ones_row):
    m, n, k = 30, 12, 4
    A, U, _ = nnls_problem(rng, m, n, k, dtype, ones_row=fixed_ones_row)
    res = fastnmf.nnls(A, U, max_iter=0, fixed_ones_row=fixed_ones_row)
    Af, W = _split(A, U, fixed_ones_row)
    X0 = np.maximum(np.linalg.lstsq(W, Af, rcond=None)[0], 0)
    assert_close(res.V[:W.shape[1]], X0, dtype, rtol_=1e-3 if dtype == np.float32 else 1e-8)
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("fixed_ones_row", [False, True])
@pytest.mark.parametrize("step_at_zero", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("prox, m", [(0.0, 26), (0.2, 3)])
def test_nnls_pgn_matches_reference(rng, dtype, order, fixed_ones_row, step_at_zero, prox, m):
    """Projected Gauss-Newton steps against the rule written out in float64:
    ``V <- max(0, V + s (W^T W + prox I)^{-1} W^T (A - U V))``, s =
    step_at_zero where V is 0; the errors are those of the point entering
    each step and of the last one (m = 3 < k: the thin case the trainer's
    output layer is, prox making W^T W + prox I invertible)."""
    n, k = 70, 5
    A, U, V0 = nnls_problem(rng, m, n, k, dtype, order, ones_row=fixed_ones_row)
    V0[:, ::3] = 0                     # entries at the bound
    if fixed_ones_row:
        V0[-1] = 1
    res = fastnmf.nnls(A, U, V0=V0, solver="pgn", max_iter=3, prox=prox,
                       fixed_ones_row=fixed_ones_row, step_at_zero=step_at_zero)
    Af, W = _split(A, U, fixed_ones_row)
    kf = W.shape[1]
    V = ref.f64(V0)
    P = np.linalg.solve(W.T @ W + prox * np.eye(kf), W.T)
    errs = []
    for _ in range(3):
        errs.append(ref.rel_error(A, U, V))
        D = P @ (Af - W @ V[:kf])
        V[:kf] = np.maximum(V[:kf] + np.where(V[:kf] > 0, 1.0, step_at_zero) * D, 0)
    errs.append(ref.rel_error(A, U, V))
    assert res.V.dtype == dtype and res.n_iter == 3
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))
    np.testing.assert_array_equal(res.U, U)
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()
    if step_at_zero == 0:
        assert (res.V[:kf][V0[:kf] == 0] == 0).all()
    quiet = fastnmf.nnls(A, U, V0=V0, solver="pgn", max_iter=3, prox=prox,
                         fixed_ones_row=fixed_ones_row, step_at_zero=step_at_zero,
                         track_error=False)
    np.testing.assert_array_equal(quiet.V, res.V)
    np.testing.assert_array_equal(quiet.errors[:-1], res.errors[:-1])
    assert np.isnan(quiet.errors[-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fixed_ones_row", [False, True])
def test_nnls_pgn_from_default_start_and_exact_when_interior(rng, dtype, fixed_ones_row):
    """No V0: the clipped least-squares start, then the steps. A = U V* with
    V* > 0 and m >= k: the first full step from any positive V0 lands on V*
    (the unconstrained Gauss-Newton step of a linear model is exact)."""
    m, n, k = 12, 30, 4
    U = rng.standard_normal((m, k)).astype(dtype)
    V = rng.uniform(0.5, 1.5, (k, n))
    if fixed_ones_row:
        V[-1] = 1
    A = (ref.f64(U) @ V).astype(dtype)
    res = fastnmf.nnls(A, U, solver="pgn", max_iter=2, fixed_ones_row=fixed_ones_row)
    assert_close(res.V, V, dtype)
    V0 = rng.uniform(0.1, 3, (k, n)).astype(dtype)
    if fixed_ones_row:
        V0[-1] = 1
    one = fastnmf.nnls(A, U, V0=V0, solver="pgn", max_iter=1, fixed_ones_row=fixed_ones_row)
    assert_close(one.V, V, dtype)
    assert one.errors[-1] < 1e-3 if dtype == np.float32 else one.errors[-1] < 1e-10


@pytest.mark.parametrize("solver", ["hals", "mu"])
@pytest.mark.parametrize("fixed_ones_row", [False, True])
def test_nnls_converges_to_scipy_nnls(rng, solver, fixed_ones_row):
    """Run to convergence and compare with scipy.optimize.nnls column by column."""
    m, n, k = 30, 8, 4
    A, U, _ = nnls_problem(rng, m, n, k, np.float64, ones_row=fixed_ones_row)
    res = fastnmf.nnls(A, U, solver=solver, max_iter=5000 if solver == "mu" else 2000,
                       tol=0 if solver == "mu" else 1e-14, fixed_ones_row=fixed_ones_row)
    Af, W = _split(A, U, fixed_ones_row)
    expected = np.column_stack([scipy.optimize.nnls(W, Af[:, j])[0] for j in range(n)])
    # Compare objectives (the minimiser is unique here, so also the point).
    obj = np.linalg.norm(Af - W @ res.V[:W.shape[1]])
    obj_ref = np.linalg.norm(Af - W @ expected)
    assert obj <= obj_ref * (1 + (1e-4 if solver == "mu" else 1e-10))
    np.testing.assert_allclose(res.V[:W.shape[1]], expected,
                               atol=1e-2 if solver == "mu" else 1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nnls_hals_tol_stops(rng, dtype):
    A, U, _ = nnls_problem(rng, 30, 20, 4, dtype)
    res = fastnmf.nnls(A, U, max_iter=1000, tol=1e-3)
    assert res.converged and res.n_iter < 1000


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 25), n=st.integers(1, 80), k=st.integers(1, 5),
       solver=st.sampled_from(["hals", "mu", "pgn"]), dtype=st.sampled_from(DTYPES),
       fixed_ones_row=st.booleans(), seed=st.integers(0, 2**16))
def test_nnls_properties(m, n, k, solver, dtype, fixed_ones_row, seed):
    """V >= 0, ones row exact, errors finite and non-increasing (HALS)."""
    if fixed_ones_row and k < 2:
        k = 2
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)).astype(dtype)
    U = rng.standard_normal((m, k)).astype(dtype)
    res = fastnmf.nnls(A, U, solver=solver, max_iter=8, tol=0, fixed_ones_row=fixed_ones_row)
    assert res.V.dtype == dtype
    assert np.isfinite(res.V).all() and np.isfinite(res.errors).all()
    assert (res.V >= 0).all()
    if fixed_ones_row:
        assert (res.V[-1] == 1).all()
    if solver == "hals":
        e = res.errors
        eps = np.finfo(dtype).eps
        assert (np.diff(e) <= 50 * eps / np.maximum(e[1:], np.sqrt(50 * eps))).all(), e


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["k>n", "k>>n", "duplicate_rows", "zero_row"])
def test_ridge_lstsq_rank_deficient_V_fits_like_lstsq(rng, dtype, case):
    """alpha=0 with V V^T singular: still (close to) the least-squares fit."""
    m, n, k = {"k>n": (7, 3, 5), "k>>n": (3, 3, 8), "duplicate_rows": (9, 12, 4),
               "zero_row": (9, 12, 4)}[case]
    A = rng.uniform(0, 1, (m, n)).astype(dtype)
    V = rng.uniform(0, 1, (k, n))
    if case == "duplicate_rows":
        V[2] = V[0]
    if case == "zero_row":
        V[1] = 0
    V = V.astype(dtype)
    U = fastnmf.ridge_lstsq(A, V)
    assert np.isfinite(U).all()
    fit = ref.rel_error(A, U, V)
    U_ls = np.linalg.lstsq(ref.f64(V).T, ref.f64(A).T, rcond=None)[0].T
    fit_ls = ref.rel_error(A, U_ls, V)
    # The library damps numerically-null directions by sqrt(eps) of the
    # working dtype instead of dividing by ~0: the fit may lose about that.
    assert fit <= fit_ls + (5e-2 if dtype == np.float32 else 1e-6), (fit, fit_ls)


# --------------------------------------------------------------------------
# nnls: the ridge penalty l2
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_nnls_l2_is_the_ridge_nnls(rng, dtype, solver):
    """argmin_{V >= 0} 0.5 ||A - U V||^2 + 0.5 l2 ||V||^2 + l1 sum V equals
    the plain problem on A stacked over zeros and U over sqrt(l2) I."""
    m, n, k = 25, 15, 4
    A = rng.uniform(0, 1, (m, n)).astype(dtype)
    U = rng.uniform(0, 1, (m, k)).astype(dtype)
    l2, l1 = 3.0, 0.2
    got = fastnmf.nnls(A, U, solver=solver, l2=l2, l1=l1, max_iter=3000, tol=0.0)
    Ab = np.vstack([A, np.zeros((k, n), dtype)])
    Ub = np.vstack([U, np.sqrt(l2) * np.eye(k, dtype=dtype)])
    want = fastnmf.nnls(Ab, Ub, solver="hals", l1=l1, max_iter=3000, tol=0.0)
    tol = 2e-3 if dtype == np.float32 else 1e-6
    np.testing.assert_allclose(got.V, want.V, atol=tol)
    assert (got.V >= 0).all()
    # and the penalty shrinks V against the unpenalized solve
    plain = fastnmf.nnls(A, U, solver=solver, l1=l1, max_iter=3000, tol=0.0)
    assert np.linalg.norm(got.V) < np.linalg.norm(plain.V)


def test_nnls_l2_validation(rng):
    A = rng.uniform(0, 1, (6, 5))
    U = rng.uniform(0, 1, (6, 2))
    with pytest.raises(ValueError, match="l2"):
        fastnmf.nnls(A, U, l2=-1.0)
    with pytest.raises(TypeError, match="l2"):
        fastnmf.nnls(A, U, l2="1")
    with pytest.raises(ValueError, match="l2"):
        fastnmf.nnls(A, U, solver="pgn", l2=1.0)


# --------------------------------------------------------------------------
# fixed_last_row: a fixed row of any values (per-sample weights)
# --------------------------------------------------------------------------
def _column_scales(rng, n, dtype):
    return np.sqrt(rng.integers(1, 5, n)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("step_at_zero", [1.0, 0.3])
def test_relu_lstsq_fixed_last_row_is_the_scaled_ones_row_solve(rng, dtype, step_at_zero):
    """Columns scaled by s (the fixed row holding s): every column's V-step
    is the ones-row solve's column times s (a ReLU is positively
    homogeneous), and the fixed row stays exactly s."""
    m, n, k = 9, 40, 5
    A, U, V0 = relu_problem(rng, m, n, k, dtype, ones_row=True)
    s = _column_scales(rng, n, dtype)
    plain = fastnmf.relu_lstsq(A, U, V0, update="V", n_iter=3, omega=1.5, alpha=0.1,
                               fixed_ones_row=True, step_at_zero=step_at_zero)
    got = fastnmf.relu_lstsq(A * s, U, V0 * s, update="V", n_iter=3, omega=1.5, alpha=0.1,
                             fixed_last_row=True, step_at_zero=step_at_zero)
    np.testing.assert_array_equal(got.V[-1], s)
    assert_close(got.V, ref.f64(plain.V) * ref.f64(s), dtype)
    assert (got.V >= 0).all()
    # the relative errors are the weighted problem's: ||(A - relu(U V)) S|| / ||A S||
    R = (ref.f64(A) - np.maximum(ref.f64(U) @ ref.f64(plain.V), 0)) * ref.f64(s)
    assert got.errors[-1] == pytest.approx(np.linalg.norm(R) / np.linalg.norm(ref.f64(A) * s),
                                           rel=err_rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_lstsq_update_U_on_scaled_columns_is_the_repeated_columns_solve(rng, dtype):
    """Integer weights w: the U-step on columns scaled by sqrt(w) (the bias
    row too) equals the U-step on the columns repeated w times."""
    m, n, k = 7, 30, 4
    A, U0, V = relu_problem(rng, m, n, k, dtype, ones_row=True)
    w = rng.integers(1, 4, n)
    s = np.sqrt(w).astype(dtype)
    got = fastnmf.relu_lstsq(A * s, U0, V * s, update="U", n_iter=4, alpha=0.2, l2=0.1)
    rep = fastnmf.relu_lstsq(np.repeat(A, w, axis=1), U0, np.repeat(V, w, axis=1), update="U",
                             n_iter=4, alpha=0.2, l2=0.1)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got.U, rep.U, rtol=tol, atol=tol)
    assert got.errors == pytest.approx(rep.errors, rel=err_rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver, prox", [("hals", 0.0), ("hals", 0.3), ("mu", 0.0),
                                          ("mu", 0.3), ("pgn", 0.1)])
def test_nnls_fixed_last_row_is_the_scaled_ones_row_solve(rng, dtype, solver, prox):
    m, n, k = 12, 70, 5
    A, U, V0 = nnls_problem(rng, m, n, k, dtype, ones_row=True)
    s = _column_scales(rng, n, dtype)
    opts = dict(solver=solver, max_iter=4, tol=0.0, prox=prox)
    if solver == "pgn":
        opts["step_at_zero"] = 0.0
    plain = fastnmf.nnls(A, U, V0=V0, fixed_ones_row=True, **opts)
    got = fastnmf.nnls(A * s, U, V0=V0 * s, fixed_last_row=True, **opts)
    np.testing.assert_array_equal(got.V[-1], s)
    # (MU's denominator guard is relative to the largest cross product, not
    # per column: a difference of order eps)
    assert_close(got.V, ref.f64(plain.V) * ref.f64(s), dtype)
    assert (got.V >= 0).all()


def test_fixed_last_row_validation(rng):
    A = rng.uniform(0, 1, (6, 5))
    U = rng.uniform(0, 1, (6, 1))
    V = rng.uniform(0, 1, (1, 5))
    with pytest.raises(ValueError, match="fixed_last_row"):
        fastnmf.relu_lstsq(A, U, V, update="V", fixed_last_row=True)
    with pytest.raises(ValueError, match="fixed_last_row"):
        fastnmf.nnls(A, U, V0=V, fixed_last_row=True)
    U2 = rng.uniform(0, 1, (6, 2))
    with pytest.raises(ValueError, match="fixed_last_row needs V0"):
        fastnmf.nnls(A, U2, fixed_last_row=True)
    V2 = rng.uniform(0, 1, (2, 5))
    V2[-1, 0] = -1.0   # a V-step's V is nonnegative, the fixed row too
    with pytest.raises(ValueError, match="V"):
        fastnmf.relu_lstsq(A, U2, V2, update="V", fixed_last_row=True)
    with pytest.raises(ValueError, match="V0"):
        fastnmf.nnls(A, U2, V0=V2, fixed_last_row=True)
