"""_linalg: ridge inverse, pseudo-inverse factor, guarded Cholesky, GEMM helpers."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, ORDERS, as_order, assert_close

from fastnmf import _kernels as K
from fastnmf import _linalg as L


def _spd(rng, k, dtype=np.float64):
    W = rng.standard_normal((3 * k + 2, k))
    return (W.T @ W).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3, 8, 32, 33, 65, 101])   # > 32: past the compiled fast path
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_ridge_inverse_matches_numpy_inv(rng, dtype, k, alpha):
    G = _spd(rng, k, dtype)
    expected = np.linalg.inv(G.astype(np.float64) + alpha * np.eye(k))
    out = L.ridge_inverse(G, alpha, dtype)
    assert out.dtype == dtype and out.shape == (k, k)
    assert_close(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k", [(1, 1), (3, 8), (10, 33), (10, 101), (30, 101), (26, 101)])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_ridge_solve_right_into_matches_numpy_solve(rng, dtype, m, k, alpha):
    """Both routes (inverse and GEMM; row-by-row triangular solves for few
    rows, 4 m <= k past the small-k path) against numpy's solve."""
    G = _spd(rng, k, dtype)
    E = rng.standard_normal((m, k)).astype(dtype)
    expected = np.linalg.solve(G.astype(np.float64) + alpha * np.eye(k), E.T.astype(np.float64)).T
    out = np.full((m, k), np.nan, dtype)
    assert L.ridge_solve_right_into(out, E, G, alpha) is out
    assert_close(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ridge_solve_right_into_shifts_like_ridge_inverse(rng, dtype):
    """An ill-conditioned G (a dead unit) gets ridge_inverse's shift on the
    solve route too: the same answer as applying that inverse, finite."""
    k = 60
    G = _spd(rng, k, np.float64)
    G[7, :] = G[:, 7] = 0.0
    G[7, 7] = 1e-13 * G[0, 0]
    G = G.astype(dtype)
    E = rng.standard_normal((5, k)).astype(dtype)
    out = L.ridge_solve_right_into(np.empty((5, k), dtype), E, G, 0.0)
    via_inverse = E.astype(np.float64) @ L.ridge_inverse(G, 0.0, np.float64 if dtype == np.float64
                                                          else np.float32).astype(np.float64)
    assert np.isfinite(out).all()
    assert_close(out, via_inverse, dtype)


def test_cholesky_solve_rows_in_place_and_float32(rng):
    k = 40
    G = _spd(rng, k)
    Lf = np.linalg.cholesky(G)
    E = rng.standard_normal((3, k)).astype(np.float32)
    expected = np.linalg.solve(G, E.T.astype(np.float64)).T
    K.cholesky_solve_rows_(Lf, E, E)       # out may be E
    np.testing.assert_allclose(E, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("k", [1, 2, 7, 64, 101])
def test_lower_tri_inverse_matches_numpy_inv(rng, k):
    W = rng.standard_normal((3 * k + 2, k))
    Lf = np.linalg.cholesky(W.T @ W + 0.1 * np.eye(k))
    X = np.full((k, k), np.nan)
    K.lower_tri_inverse_(Lf, X)
    np.testing.assert_allclose(X, np.linalg.inv(Lf), rtol=1e-10, atol=1e-12 * np.abs(X).max())
    assert (np.triu(X, 1) == 0).all()


@pytest.mark.parametrize("k", [1, 5, 129, 300])   # one block; split once; split twice
def test_blocked_lower_tri_inverse_matches_numpy_inv(rng, k):
    W = rng.standard_normal((3 * k + 2, k))
    Lf = np.linalg.cholesky(W.T @ W + 0.1 * np.eye(k))
    X = np.full((k, k), np.nan)
    assert L.lower_tri_inverse(Lf, X) is X
    np.testing.assert_allclose(X, np.linalg.inv(Lf), rtol=1e-10, atol=1e-12 * np.abs(X).max())
    assert (np.triu(X, 1) == 0).all()
    Y = np.full((k, k), np.nan)   # a non-contiguous L (a block of a larger factor) too
    big = np.zeros((k + 3, k + 3))
    big[1:-2, 1:-2] = Lf
    np.testing.assert_array_equal(L.lower_tri_inverse(big[1:-2, 1:-2], Y), X)


@pytest.mark.parametrize("k", [1, 2, 9, 40])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_ridge_inverse_fast_path_equals_lapack_route(rng, k, alpha):
    """The compiled small-k path and the NumPy/LAPACK path agree to float64
    rounding, and the fast path only reads the lower triangle (like potrf)."""
    from fastnmf import _kernels as K
    G = _spd(rng, k)
    out = np.empty((k, k))
    assert K.ridge_inverse_small_(G, alpha, 1e-8, out)
    Lc = L.cholesky_lower(G, alpha)
    Linv = np.linalg.inv(Lc)
    np.testing.assert_allclose(out, Linv.T @ Linv, rtol=1e-9, atol=1e-12 * np.abs(out).max())
    np.testing.assert_array_equal(out, out.T)
    Gl = np.tril(G) + np.triu(np.full((k, k), np.nan), 1)   # garbage above the diagonal
    out2 = np.empty((k, k))
    assert K.ridge_inverse_small_(Gl, alpha, 1e-8, out2)
    np.testing.assert_array_equal(out2, out)


@pytest.mark.parametrize("case", ["not_pd", "nan", "inf", "ill_conditioned"])
def test_ridge_inverse_fast_path_declines_and_route_stays_finite(rng, case):
    """Whatever the fast path declines, ridge_inverse still answers (shift route)."""
    from fastnmf import _kernels as K
    k = 5
    G = _spd(rng, k)
    if case == "not_pd":
        G[0, 0] = -1.0
    elif case == "nan":
        G[3, 1] = G[1, 3] = np.nan
    elif case == "inf":
        G[2, 2] = np.inf
    else:
        G[4, :] = G[:, 4] = 0.0
        G[4, 4] = 1e-12 * G[0, 0]
    assert not K.ridge_inverse_small_(G, 0.0, float(np.sqrt(np.finfo(np.float32).eps)),
                                      np.empty((k, k)))
    if case == "ill_conditioned":
        inv = L.ridge_inverse(G, 0.0, np.float32)
        assert np.isfinite(inv).all() and inv.dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [0.0, 2.0])
@pytest.mark.parametrize("p, k", [(23, 4), (4, 23)])   # k x k route / p x p (push-through)
def test_pinv_factor_into_matches_solve(rng, dtype, alpha, p, k):
    X = rng.standard_normal((p, k)).astype(dtype)
    M = np.empty((p, k), dtype)
    out = L.pinv_factor_into(M, X, alpha)
    assert out is M
    X64 = X.astype(np.float64)
    if p >= k or alpha:
        H = X64.T @ X64 + alpha * np.eye(k)
        expected = np.linalg.solve(H, X64.T).T
    else:   # singular k x k Gram: the minimum-norm solution, X^+ transposed
        expected = np.linalg.pinv(X64).T
    assert_close(M, expected, dtype)


@pytest.mark.parametrize("alpha", [0.0, 0.25])
def test_cholesky_lower_of_spd(rng, alpha):
    G = _spd(rng, 5)
    Lc = L.cholesky_lower(G, alpha)
    assert Lc.dtype == np.float64
    np.testing.assert_array_equal(Lc, np.tril(Lc))
    np.testing.assert_allclose(Lc @ Lc.T, G + alpha * np.eye(5), rtol=1e-12, atol=1e-12)
    G32 = G.astype(np.float32)  # factored in float64 even for float32 input
    assert L.cholesky_lower(G32, alpha).dtype == np.float64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["rank_deficient", "repeated_row", "dead_column", "all_zero",
                                  "rank1_constant"])
def test_cholesky_and_inverse_of_singular_gram_stay_finite(rng, dtype, case):
    k = 6
    if case == "rank_deficient":      # rank > min(m, n): 3 rows, 6 components
        W = rng.uniform(0, 1, (3, k))
    elif case == "repeated_row":      # and W W^T singular too (pinv_factor_into's p x p route)
        W = rng.uniform(0, 1, (3, k))
        W[2] = W[0]
    elif case == "dead_column":       # a dead component
        W = rng.uniform(0, 1, (20, k))
        W[:, 2] = 0
    elif case == "all_zero":          # every component dead
        W = np.zeros((20, k))
    else:                             # identical columns
        W = np.ones((20, k))
    W = W.astype(dtype)
    G = (W.T @ W).astype(dtype)
    with np.errstate(all="raise"):
        Lc = L.cholesky_lower(G)
        inv = L.ridge_inverse(G, 0.0, dtype)
        M = np.empty_like(W)
        L.pinv_factor_into(M, W, 0.0)
    assert np.isfinite(Lc).all()
    np.testing.assert_array_equal(Lc, np.tril(Lc))
    assert np.isfinite(inv).all() and inv.dtype == dtype
    assert np.isfinite(M).all()
    scale = max(np.abs(G.astype(np.float64)).max(), 1.0)
    if case != "all_zero":  # (for G = 0 any SPD factor is as good as another)
        # The shift is tiny: L L^T reproduces G up to a relative O(eps) change.
        np.testing.assert_allclose(Lc @ Lc.T, G.astype(np.float64), atol=1e-6 * scale)
    if case == "all_zero":
        np.testing.assert_array_equal(M, 0)
        np.testing.assert_array_equal(inv, inv.T)
    if case == "dead_column":
        # The live components are well conditioned: W (G + tau I)^{-1} G = W,
        # and the dead column of M is exactly zero (0 * finite).
        WG = M.astype(np.float64) @ G.astype(np.float64)
        tol = 1e-3 if dtype == np.float32 else 1e-8
        np.testing.assert_allclose(WG, W, atol=tol * scale)
        np.testing.assert_array_equal(M[:, 2], 0)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_into_respects_output_order(rng, order, dtype):
    a = rng.standard_normal((7, 3)).astype(dtype)
    b = rng.standard_normal((3, 5)).astype(dtype)
    out = as_order(np.empty((7, 5), dtype), order)
    res = L.matmul_into(out, a, b)
    assert res is out
    assert (out.flags.f_contiguous if order == "F" else out.flags.c_contiguous)
    assert_close(out, a.astype(np.float64) @ b.astype(np.float64), dtype)


def test_gram(rng):
    X = rng.standard_normal((9, 4))
    np.testing.assert_allclose(L.gram(X), X.T @ X, rtol=1e-12)
    out = np.empty((4, 4))
    assert L.gram(X, out=out) is out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("k", [7, 8, 9, 23])
def test_gram_by_block_rows_equals_syrk(rng, monkeypatch, dtype, order, k):
    """Above ``_GRAM_BLOCK`` gram() takes GEMMs by block rows (OpenBLAS's
    threaded SYRK crashes on large outputs with its AVX-512 kernels): the
    same matrix, exactly symmetric, in X's dtype, into ``out`` when given."""
    monkeypatch.setattr(L, "_GRAM_BLOCK", 4)
    X = as_order(rng.standard_normal((6, k)).astype(dtype), order)
    G = L.gram(X)
    assert G.dtype == dtype and G.shape == (k, k)
    np.testing.assert_array_equal(G, G.T)
    assert_close(G, X.astype(np.float64).T @ X.astype(np.float64), dtype)
    out = np.empty((k, k), dtype)
    assert L.gram(X, out=out) is out
    np.testing.assert_array_equal(out, G)


@pytest.mark.parametrize("k", [9, 12, 30])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_blocked_cholesky_equals_lapack(rng, monkeypatch, k, alpha):
    """Above ``_CHOL_BLOCK`` the factor is computed by blocks (LAPACK on the
    diagonal blocks, GEMMs elsewhere; OpenBLAS's threaded dpotrf crashes on
    large orders with its AVX-512 kernels): LAPACK's factor, lower
    triangular; through cholesky_lower and ridge_inverse too."""
    G = _spd(rng, k)
    want = np.linalg.cholesky(G + alpha * np.eye(k))
    monkeypatch.setattr(L, "_CHOL_BLOCK", 4)
    for block in (2, 4, 5):
        got = L.blocked_cholesky(G + alpha * np.eye(k), block)
        np.testing.assert_array_equal(got, np.tril(got))
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(L.cholesky_lower(G, alpha), want, rtol=1e-10,
                               atol=1e-12 * np.abs(want).max())
    if alpha:
        np.testing.assert_allclose(L.ridge_inverse(G, alpha, np.float64),
                                   np.linalg.inv(G + alpha * np.eye(k)), rtol=1e-8, atol=1e-10)
    indefinite = G.copy()
    indefinite[k - 1, k - 1] = -1.0                         # fails in the last block
    with pytest.raises(np.linalg.LinAlgError):
        L.blocked_cholesky(indefinite, 4)
    singular = np.ones((k, k))                              # the shifted retry still works
    Lc = L.cholesky_lower(singular)
    assert np.isfinite(Lc).all()
    np.testing.assert_allclose(Lc @ Lc.T, singular, atol=1e-6)


def test_large_gram_and_cholesky_stay_in_process(rng):
    """A Gram matrix of order 20001 from 300 rows and the Cholesky factor of
    order 16400 (a network's first layer on an input 16000-20000 wide):
    numpy's SYRK and LAPACK's dpotrf at these sizes crashed the process
    (segmentation fault, OpenBLAS 0.3.31 SkylakeX kernels, 2 threads,
    session 26). The blocked routes give the Gram matrix and a factor that
    reproduces it. (~35 s, 3.2 GB per matrix.)"""
    X = rng.standard_normal((300, 20001))
    G = L.gram(X)
    i = rng.integers(0, 16400, 6)
    np.testing.assert_allclose(G[i], X[:, i].T @ X, rtol=1e-10, atol=1e-9)
    del X
    G = G[:16400, :16400].copy()
    G.flat[::16401] += 1.0
    Lc = L.cholesky_lower(G)
    np.testing.assert_allclose(Lc[i] @ Lc.T, G[i], rtol=1e-9, atol=1e-8 * np.abs(G).max())


def _same_span(Q, R, tol):
    """The orthogonal projectors onto the spans of Q and R agree."""
    Q, R = Q.astype(np.float64), R.astype(np.float64)
    return np.abs(Q @ Q.T - R @ R.T).max() <= tol


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 7), (50, 3), (1797, 20), (400, 60),
                                   (150, 100), (400, 100)])   # e > 64: LAPACK factor
@pytest.mark.parametrize("passes", [1, 2])
def test_orthonormal_columns_matches_householder_span(rng, dtype, shape, passes):
    """CholeskyQR (one or two passes) spans what numpy's Householder QR spans,
    with orthonormal columns, in Y's dtype."""
    m, e = shape
    # columns of very different scales (a power iteration's Y looks like this)
    Y = (rng.standard_normal((m, e)) * np.logspace(0, -3, e)).astype(dtype)
    Q = L.orthonormal_columns(Y, passes=passes)
    assert Q.dtype == dtype and Q.shape == (m, e)
    eps = np.finfo(dtype).eps
    tol = 100 * eps * max(m, e)
    if passes == 1:   # one pass: orthonormal to u cond(Y)^2 (float64 inside)
        tol += 10 * np.finfo(np.float64).eps * np.linalg.cond(Y.astype(np.float64)) ** 2
    assert np.abs(Q.T.astype(np.float64) @ Q - np.eye(e)).max() <= tol
    assert _same_span(Q, np.linalg.qr(Y)[0], 1e3 * eps * max(m, e) + 2 * tol)


@pytest.mark.parametrize("case", ["zero_column", "repeated_column", "rank_one", "nan"])
def test_orthonormal_columns_falls_back_to_householder(rng, case):
    """Where Cholesky QR cannot work (rank-deficient or non-finite Y) the
    result is numpy's Householder QR, bit for bit."""
    Y = rng.standard_normal((60, 6))
    if case == "zero_column":
        Y[:, 2] = 0.0
    elif case == "repeated_column":
        Y[:, 4] = Y[:, 1]
    elif case == "rank_one":
        Y = np.outer(rng.standard_normal(60), rng.standard_normal(6))
    else:
        Y[3, 3] = np.nan
    expected = np.linalg.qr(Y)[0]
    for passes in (1, 2):
        np.testing.assert_array_equal(L.orthonormal_columns(Y, passes=passes), expected)


def test_orthonormal_columns_ill_conditioned_stays_orthonormal(rng):
    """cond(Y) near the CholeskyQR2 limit: the result is still orthonormal to
    float64 rounding (by either route)."""
    U, _ = np.linalg.qr(rng.standard_normal((300, 8)))
    V, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    for cond in (1e4, 1e6, 1e8, 1e12):
        Y = (U * np.logspace(0, -np.log10(cond), 8)) @ V
        Q = L.orthonormal_columns(Y)
        assert np.abs(Q.T @ Q - np.eye(8)).max() < 1e-12
        assert _same_span(Q, U, 1e-14 * cond * 100)


def test_cholesky_inverse_factor_matches_numpy(rng):
    for k in (1, 2, 9, 40):
        G = _spd(rng, k)
        out = np.full((k, k), np.nan)
        assert K.cholesky_inverse_factor_(G, 1e-14, out)
        np.testing.assert_allclose(out, np.linalg.inv(np.linalg.cholesky(G)), rtol=1e-9,
                                   atol=1e-12 * np.abs(out).max())
        assert (np.triu(out, 1) == 0).all()
    G = _spd(rng, 4)
    G[1, 1] = -1.0
    assert not K.cholesky_inverse_factor_(G, 1e-14, np.empty((4, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("e", [5, 80])
def test_cholesky_qr_pass_keeps_the_span(rng, dtype, e):
    """One pass (the subspace iteration's normalisation, rows possibly split
    across processes): same span, near-orthonormal columns; a rank-deficient
    Z takes the shifted Gram and stays finite; all zeros come back as is."""
    Z = (rng.standard_normal((6 * e, e)) * np.logspace(0, -2, e)).astype(dtype)
    Q = L.cholesky_qr_pass(Z)
    assert Q.dtype == dtype and Q.shape == Z.shape
    eps = np.finfo(dtype).eps
    assert np.abs(Q.T.astype(np.float64) @ Q - np.eye(e)).max() < 1e3 * eps * e
    assert _same_span(Q, np.linalg.qr(Z)[0], 1e4 * eps * e)
    Zd = Z.copy()
    Zd[:, 1] = Zd[:, 0]                      # rank e - 1: Cholesky breaks down
    Qd = L.cholesky_qr_pass(Zd)
    assert np.isfinite(Qd).all()
    # the span of the rank-deficient Z is kept (its basis is not orthonormal)
    P = np.linalg.qr(Zd.astype(np.float64)[:, 1:])[0]      # basis of span(Zd)
    resid = Qd.astype(np.float64) - P @ (P.T @ Qd.astype(np.float64))
    # (to sqrt(u) in float64: the shift lifts the rounding-level component
    # along the missing direction, ~sqrt(u / (11 p e)) of the result)
    tol = max(10 * eps, 10 * np.sqrt(np.finfo(np.float64).eps))
    assert np.abs(resid).max() < tol * np.abs(Qd).max()
    zero = np.zeros((10, 3), dtype)
    assert L.cholesky_qr_pass(zero) is zero
