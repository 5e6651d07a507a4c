"""Sparse data in fastnmf.nmf: the CSR product kernel against NumPy, the
validation of scipy.sparse input, and factorizations of sparse data against
the same factorizations of the dense array."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import _reference as ref
from conftest import DTYPES

import fastnmf
from fastnmf import _sparse as S
from fastnmf import _sparse_kernels as SK


def _sparse(m, n, density, dtype, seed=0, low_rank=None):
    """A nonnegative sparse matrix (CSR): random entries, or (``low_rank``) a
    random nonnegative rank-r product masked to the density."""
    rng = np.random.default_rng(seed)
    mask = rng.random((m, n)) < density
    if low_rank:
        dense = rng.random((m, low_rank)) @ rng.random((low_rank, n))
    else:
        dense = rng.random((m, n))
    return sp.csr_matrix(np.where(mask, dense, 0.0).astype(dtype))


# --------------------------------------------------------------------------
# The product kernel
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3, 10, 17])
@pytest.mark.parametrize("threads", [1, 2])
def test_csr_product_matches_numpy(dtype, k, threads):
    A = sp.lil_matrix(_sparse(97, 41, 0.15, dtype, seed=k))
    A[5] = 0                                   # an empty row
    A = A.tocsr()
    D = S.check_sparse(A, "A")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((41, k)).astype(dtype)
    U = rng.standard_normal((97, k)).astype(dtype)
    with fastnmf.threads(threads):
        got = S.matmul_into(np.full((97, k), np.nan, dtype), D, X)
        got_t = S.matmul_into(np.full((41, k), np.nan, dtype), D.T, U)
    dense = ref.f64(A.toarray())
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, dense @ ref.f64(X), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(got_t, dense.T @ ref.f64(U), rtol=tol, atol=tol * 10)
    assert got.dtype == dtype and got_t.dtype == dtype


@pytest.mark.parametrize("build", [SK.csr_matmul_serial, SK.csr_matmul_parallel])
def test_csr_product_builds_and_blocks(build):
    """Both builds, with row blocks of equal nonzero counts, some of them
    empty (more blocks than rows), and unsorted column indices."""
    A = _sparse(7, 30, 0.5, np.float64, seed=3)
    A.indices[:] = A.indices.copy()          # keep scipy's arrays, then shuffle each row
    rng = np.random.default_rng(0)
    for i in range(7):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        perm = rng.permutation(hi - lo) + lo
        A.indices[lo:hi], A.data[lo:hi] = A.indices[perm], A.data[perm]
    X = rng.standard_normal((30, 5))
    bounds = SK.row_blocks(A.indptr, 16)
    assert bounds[0] == 0 and bounds[-1] == 7 and (np.diff(bounds) >= 0).all()
    out = np.full((7, 5), np.nan)
    build(bounds, A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data, X, out)
    np.testing.assert_allclose(out, A.toarray() @ X, rtol=1e-13, atol=1e-13)


def test_row_blocks_balance_nonzeros():
    indptr = np.concatenate([[0], np.cumsum([100, 1, 1, 1, 1, 100, 1, 1])])
    b = SK.row_blocks(indptr, 2)
    assert list(b) == [0, 4, 8]       # 103 nonzeros each
    assert list(SK.row_blocks(np.array([0]), 4)) == [0] * 5      # no rows


def test_sparse_data_matmul_operator_and_transpose():
    A = _sparse(12, 9, 0.3, np.float32)
    D = S.check_sparse(A, "A")
    X = np.arange(18, dtype=np.float64).reshape(9, 2)       # converted to float32
    np.testing.assert_allclose(D @ X, A.toarray() @ X, rtol=1e-6)
    assert D.T.shape == (9, 12) and D.T.T is D and D.nnz == A.nnz
    np.testing.assert_array_equal(D.toarray(), A.toarray())
    np.testing.assert_array_equal(D.T.toarray(), A.toarray().T)
    with pytest.raises(ValueError, match="do not multiply"):
        D @ np.ones((8, 2))


# --------------------------------------------------------------------------
# Validation of sparse input
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix",
                                  "csr_array", "coo_array"])
def test_every_scipy_format_is_accepted(kind):
    A = _sparse(10, 8, 0.4, np.float64)
    r = fastnmf.nmf(getattr(sp, kind)(A), 3, max_iter=5, random_state=0)
    d = fastnmf.nmf(A.toarray(), 3, max_iter=5, random_state=0, n_inner=None)
    assert r.U.shape == (10, 3) and r.V.shape == (3, 8)
    assert np.isfinite(r.errors).all()
    assert abs(r.errors[0] - d.errors[0]) < 1e-10      # the same start


@pytest.mark.parametrize("src,expected", [
    (np.float32, np.float32), (np.float64, np.float64), (np.longdouble, np.float64),
    (np.int64, np.float64), (np.int32, np.float64), (bool, np.float64)])
def test_sparse_dtypes(src, expected):
    A = sp.csr_matrix((np.random.default_rng(0).random((9, 7)) < 0.4).astype(src))
    r = fastnmf.nmf(A, 2, max_iter=3, random_state=0)
    assert r.U.dtype == expected and r.V.dtype == expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_dtype_forced(dtype):
    A = _sparse(9, 7, 0.4, np.float64 if dtype == np.float32 else np.float32)
    r = fastnmf.nmf(A, 2, max_iter=3, random_state=0, dtype=dtype)
    assert r.U.dtype == dtype and r.V.dtype == dtype


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sparse_non_finite(bad):
    A = _sparse(9, 7, 0.4, np.float64)
    A.data[2] = bad
    with pytest.raises(ValueError, match=r"^A contains NaN or Inf"):
        fastnmf.nmf(A, 2)


def test_sparse_negative():
    A = _sparse(9, 7, 0.4, np.float64)
    A.data[0] = -0.5
    with pytest.raises(ValueError, match=r"^A must be nonnegative, but its minimum is .*-0\.5"):
        fastnmf.nmf(A, 2)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_sparse_empty(shape):
    with pytest.raises(ValueError, match=r"^A is empty"):
        fastnmf.nmf(sp.csr_matrix(shape), 2)


def test_sparse_complex():
    A = sp.csr_matrix(np.eye(4, dtype=complex))
    with pytest.raises(TypeError, match=r"^A has complex dtype"):
        fastnmf.nmf(A, 2)


def test_sparse_one_dimensional():
    if not hasattr(sp, "coo_array"):
        pytest.skip("no sparse arrays in this scipy")
    try:
        v = sp.coo_array(np.ones(5))
    except (ValueError, TypeError):
        pytest.skip("this scipy has no 1-D sparse arrays")
    if len(v.shape) != 1:
        pytest.skip("this scipy makes 1-D input 2-D")
    with pytest.raises(ValueError, match=r"^A must be a 2-D array"):
        fastnmf.nmf(v, 2)


def test_sparse_magnitude():
    A = _sparse(9, 7, 0.4, np.float32) * np.float32(1e30)
    with pytest.raises(ValueError, match=r"^A's largest magnitude"):
        fastnmf.nmf(A, 2)


@pytest.mark.parametrize("rank", [0, 1.5, "2"])
def test_sparse_bad_rank(rank):
    with pytest.raises((ValueError, TypeError), match=r"rank"):
        fastnmf.nmf(_sparse(9, 7, 0.4, np.float64), rank)


def test_sparse_input_is_not_modified():
    A = sp.coo_matrix(([1.0, 2.0, 3.0], ([0, 0, 3], [1, 1, 2])), shape=(5, 4))  # a duplicate
    before = (A.row.copy(), A.col.copy(), A.data.copy())
    fastnmf.nmf(A, 2, max_iter=3, random_state=0)
    for a, b in zip(before, (A.row, A.col, A.data)):
        np.testing.assert_array_equal(a, b)
    C = sp.csr_matrix(_sparse(9, 7, 0.4, np.float64))
    data = C.data.copy()
    fastnmf.nmf(C, 2, max_iter=3, random_state=0)
    np.testing.assert_array_equal(C.data, data)


def test_duplicates_are_summed():
    A = sp.coo_matrix(([1.0, 2.0, 3.0, 1.0], ([0, 0, 3, 4], [1, 1, 2, 0])), shape=(5, 4))
    D = S.check_sparse(A, "A")
    np.testing.assert_array_equal(D.toarray(), A.toarray())
    assert D.toarray()[0, 1] == 3.0


# --------------------------------------------------------------------------
# Factorizations of sparse data equal those of the dense array
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", ["nndsvda", "nndsvd", "random"])
def test_sparse_start_equals_dense(dtype, init):
    A = _sparse(60, 25, 0.2, dtype, low_rank=4)
    r = fastnmf.nmf(A, 4, init=init, max_iter=0, random_state=3)
    d = fastnmf.nmf(A.toarray(), 4, init=init, max_iter=0, random_state=3)
    tol = 2e-4 if dtype == np.float32 else 1e-9
    scale = np.abs(d.U).max()
    np.testing.assert_allclose(r.U, d.U, atol=tol * scale, rtol=tol)
    np.testing.assert_allclose(r.V, d.V, atol=tol * np.abs(d.V).max(), rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver,extrapolate", [("hals", False), ("hals", True), ("mu", False)])
@pytest.mark.parametrize("shape", [(80, 30), (30, 80)])
def test_sparse_factorization_equals_dense(dtype, solver, extrapolate, shape):
    """The same inner sweeps (``n_inner`` given: the default rule counts a
    sparse product's cost, nnz k, and so runs fewer) and the same start:
    the same iterates to rounding."""
    A = _sparse(*shape, 0.25, dtype, low_rank=5)
    rng = np.random.default_rng(0)
    U0 = rng.random((shape[0], 5)).astype(dtype)
    V0 = rng.random((5, shape[1])).astype(dtype)
    kw = dict(solver=solver, init=(U0, V0), max_iter=15, tol=0, n_inner=2,
              extrapolate=extrapolate)
    r = fastnmf.nmf(A, 5, **kw)
    d = fastnmf.nmf(A.toarray(), 5, **kw)
    tol = 3e-3 if dtype == np.float32 else 1e-8
    np.testing.assert_allclose(r.errors, d.errors, rtol=tol)
    np.testing.assert_allclose(r.U @ r.V, d.U @ d.V, atol=tol * np.abs(A).max(), rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_hals_matches_reference(dtype):
    """Plain HALS on sparse data against the NumPy reference iteration."""
    A = _sparse(40, 22, 0.3, dtype, low_rank=3)
    rng = np.random.default_rng(5)
    U0, V0 = rng.random((40, 3)), rng.random((3, 22))
    r = fastnmf.nmf(A, 3, init=(U0.astype(dtype), V0.astype(dtype)), max_iter=6, tol=0,
                    n_inner=1, extrapolate=False)
    U, V = U0.copy(), V0.copy()
    Ad = ref.f64(A.toarray())
    for _ in range(6):
        U, V = ref.nmf_hals_iter(Ad, U, V)
    tol = 2e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(r.U @ r.V, U @ V, atol=tol * Ad.max(), rtol=tol)
    assert abs(r.errors[-1] - ref.rel_error(Ad, U, V)) < tol


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_sparse_errors_monotone_and_factors_nonnegative(solver):
    A = _sparse(200, 90, 0.05, np.float64, low_rank=6)
    r = fastnmf.nmf(A, 6, solver=solver, extrapolate=False, max_iter=40, tol=0, random_state=0)
    assert (np.diff(r.errors) <= 1e-12).all()
    assert (r.U >= 0).all() and (r.V >= 0).all()
    # The reported error is the true one.
    true = np.linalg.norm(A.toarray() - r.U @ r.V) / sp.linalg.norm(A)
    assert abs(r.errors[-1] - true) < 1e-8


def test_sparse_default_inner_sweeps_count_nonzeros():
    """Gillis-Glineur's cap weighs the cross product by its cost: nnz k for
    sparse data, so a sparse matrix runs fewer inner sweeps than its dense
    array does."""
    A = _sparse(300, 200, 0.02, np.float64, low_rank=4)
    r = fastnmf.nmf(A, 4, max_iter=5, tol=0, random_state=0, extrapolate=False)
    d = fastnmf.nmf(A.toarray(), 4, max_iter=5, tol=0, random_state=0, extrapolate=False)
    assert sum(r.info["inner_sweeps"]) < sum(d.info["inner_sweeps"])


def test_sparse_deterministic_and_thread_independent():
    A = _sparse(500, 120, 0.05, np.float32, low_rank=5)
    runs = []
    for nt in (1, 2, 2):
        with fastnmf.threads(nt):
            runs.append(fastnmf.nmf(A, 5, max_iter=20, random_state=4))
    np.testing.assert_array_equal(runs[1].U, runs[2].U)
    np.testing.assert_allclose(runs[0].U @ runs[0].V, runs[1].U @ runs[1].V,
                               rtol=1e-3, atol=1e-3 * A.max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["all_zero", "zero_rows_cols", "rank_above_min", "one_entry"])
def test_sparse_degenerate_stays_finite(dtype, case):
    if case == "all_zero":
        A = sp.csr_matrix((8, 6), dtype=dtype)
    elif case == "one_entry":
        A = sp.csr_matrix(([2.0], ([3], [1])), shape=(8, 6), dtype=dtype)
    else:
        A = _sparse(12, 9, 0.4, dtype)
        A = sp.lil_matrix(A)
        A[[0, 5]] = 0
        A[:, 3] = 0
        A = A.tocsr()
    k = 15 if case == "rank_above_min" else 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for solver in ("hals", "mu"):
            for init in ("nndsvda", "nndsvd", "random"):
                r = fastnmf.nmf(A, k, solver=solver, init=init, max_iter=6, tol=0, random_state=0)
                assert np.isfinite(r.U).all() and np.isfinite(r.V).all(), (solver, init)
                assert np.isfinite(r.errors).all(), (solver, init)
                assert (r.U >= 0).all() and (r.V >= 0).all()
                if case == "all_zero":
                    assert r.errors[-1] == 0.0


# --------------------------------------------------------------------------
# nnls on sparse data (the V-step alone: new samples against fixed factors)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["hals", "mu"])
@pytest.mark.parametrize("ones", [False, True])
@pytest.mark.parametrize("start", [False, True])
def test_sparse_nnls_equals_dense(dtype, solver, ones, start):
    A = _sparse(40, 70, 0.2, dtype, low_rank=4)
    A.data -= dtype(0.3)           # any sign: the semi-NMF V-step
    rng = np.random.default_rng(2)
    U = rng.standard_normal((40, 5)).astype(dtype)
    V0 = None
    if start:
        V0 = rng.random((5, 70)).astype(dtype)
        if ones:
            V0[-1] = 1
    kw = dict(solver=solver, max_iter=12, fixed_ones_row=ones, V0=V0)
    r = fastnmf.nnls(A, U, **kw)
    d = fastnmf.nnls(A.toarray(), U, **kw)
    tol = 2e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(r.V, d.V, atol=tol * np.abs(d.V).max(), rtol=tol)
    np.testing.assert_allclose(r.errors, d.errors, rtol=tol)
    assert r.V.dtype == dtype and (r.V >= 0).all()
    if ones:
        np.testing.assert_array_equal(r.V[-1], 1)


def test_sparse_nnls_transforms_new_samples():
    """The topics of an nmf of sparse documents, then new documents' weights
    by nnls on their sparse transpose: the same as on the dense array."""
    A = _sparse(300, 80, 0.1, np.float64, low_rank=4)
    fit = fastnmf.nmf(A, 4, random_state=0, max_iter=50)
    new = _sparse(30, 80, 0.1, np.float64, seed=9, low_rank=4)
    w = fastnmf.nnls(new.T.tocsc(), fit.V.T, max_iter=200).V.T        # (30, 4)
    wd = fastnmf.nnls(new.toarray().T, fit.V.T, max_iter=200).V.T
    np.testing.assert_allclose(w, wd, rtol=1e-8, atol=1e-10)
    assert w.shape == (30, 4) and (w >= 0).all()


def test_sparse_nnls_pgn_is_refused():
    A = _sparse(10, 8, 0.4, np.float64)
    with pytest.raises(ValueError, match=r"^solver='pgn' needs a dense A"):
        fastnmf.nnls(A, np.ones((10, 2)), solver="pgn")


def test_sparse_nnls_bad_sparse_input():
    A = _sparse(10, 8, 0.4, np.float64)
    A.data[1] = np.nan
    with pytest.raises(ValueError, match=r"^A contains NaN or Inf"):
        fastnmf.nnls(A, np.ones((10, 2)))
    with pytest.raises(ValueError, match=r"^U must have 10 rows"):
        fastnmf.nnls(_sparse(10, 8, 0.4, np.float64), np.ones((9, 2)))


# --------------------------------------------------------------------------
# semi_nmf and ridge_lstsq on sparse data of any sign
# --------------------------------------------------------------------------
def _signed(m, n, density, dtype, seed=0):
    A = _sparse(m, n, density, dtype, seed=seed, low_rank=4)
    A.data -= dtype(0.4) * A.data.max()
    return A


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_sparse_semi_nmf_equals_dense(dtype, solver):
    A = _signed(70, 40, 0.25, dtype)
    rng = np.random.default_rng(3)
    init = (rng.standard_normal((70, 4)).astype(dtype), rng.random((4, 40)).astype(dtype))
    kw = dict(solver=solver, init=init, max_iter=12, tol=0, n_inner=2, alpha=0.1)
    r = fastnmf.semi_nmf(A, 4, **kw)
    d = fastnmf.semi_nmf(A.toarray(), 4, **kw)
    tol = 3e-3 if dtype == np.float32 else 1e-8
    np.testing.assert_allclose(r.errors, d.errors, rtol=tol)
    np.testing.assert_allclose(r.U @ r.V, d.U @ d.V, atol=tol * np.abs(A).max(), rtol=tol)
    assert r.U.dtype == dtype and (r.V >= 0).all()
    s = fastnmf.semi_nmf(A, 4, max_iter=5, random_state=0)        # a named start too
    t = fastnmf.semi_nmf(A.toarray(), 4, max_iter=5, random_state=0, n_inner=None)
    assert abs(s.errors[0] - t.errors[0]) < (1e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_ridge_lstsq_equals_dense(dtype):
    A = _signed(30, 50, 0.3, dtype)
    V = np.random.default_rng(1).random((6, 50)).astype(dtype)
    U = fastnmf.ridge_lstsq(A, V, alpha=0.2, alpha_trace=1e-3)
    Ud = fastnmf.ridge_lstsq(A.toarray(), V, alpha=0.2, alpha_trace=1e-3)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(U, Ud, rtol=tol, atol=tol * np.abs(Ud).max())
    assert U.dtype == dtype
