"""A sparse *fixed* factor: ``relu_lstsq(update="U")`` with a scipy.sparse V
(a network's first layer solves against its input, which never changes),
``fastnmf.sparse_data`` and the products behind it.

Checked against the plain NumPy reference of the U-step and against the
dense path on the same data: float64 to rounding (1e-10), float32 to its
tolerance. The network estimators on a sparse X:
``test_dnn_sparse_input.py``.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import _reference as ref
from conftest import DTYPES, ORDERS, as_order, assert_close

import fastnmf
from fastnmf import _sparse


def sparse_factor(rng, k, n, density, dtype, ones_row=False):
    """A nonnegative sparse (k, n) factor, CSR, with (optionally) a last row of ones."""
    V = sp.random(k, n, density=density, random_state=rng, dtype=np.float64, format="lil")
    V[0, 0] = 0.5                        # never all-zero
    if ones_row:
        V[k - 1, :] = 1.0
    return sp.csr_matrix(V).astype(dtype)


def relu_problem(rng, m, n, k, dtype, order, ones_row=False):
    V = sparse_factor(rng, k, n, 0.3, dtype, ones_row)
    W = rng.standard_normal((m, k))
    A = np.maximum(W @ V.toarray(), 0) + 0.05 * rng.uniform(0, 1, (m, n))
    U = W + 0.3 * rng.standard_normal((m, k))
    return as_order(A.astype(dtype), order), U.astype(dtype), V


# --------------------------------------------------------------------------
# relu_lstsq with a sparse fixed factor
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_iter", [0, 1, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_relu_lstsq_sparse_V_matches_the_numpy_reference(rng, dtype, order, n_iter, alpha):
    m, n, k = 17, 40, 9
    A, U0, V = relu_problem(rng, m, n, k, dtype, order)
    res = fastnmf.relu_lstsq(A, U0, V, update="U", n_iter=n_iter, omega=0.8, alpha=alpha)
    Vd = V.toarray()
    U = ref.f64(U0)
    errs = []
    for _ in range(n_iter):
        errs.append(ref.relu_rel_error(A, U, Vd))
        U = ref.relu_step_U(A, U, Vd, alpha, 0.8)
    errs.append(ref.relu_rel_error(A, U, Vd))
    assert res.U.dtype == dtype
    assert_close(res.U, U, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=2e-4 if dtype == np.float32 else 1e-9)
    assert res.V is V                                  # the fixed factor, as given
    np.testing.assert_array_equal(V.toarray(), Vd)     # not modified


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("options", [
    {"l2": 0.05, "l2_trace": 0.01},
    {"fixed_gram": True},
    {"model": True, "overwrite": True},
    {"fixed_ones_row": True},
    {"final_error": False, "omega": 1.5},
])
def test_relu_lstsq_sparse_V_equals_dense_V(rng, dtype, order, options):
    """Every option of the U-step gives the dense V's answer (the same
    arithmetic, summed in another order): float64 to 1e-10."""
    m, n, k = 13, 50, 7
    A, U0, V = relu_problem(rng, m, n, k, dtype, order, ones_row=True)
    Vd = V.toarray()
    kw = dict(options)
    if kw.pop("fixed_gram", False):
        kw["fixed_gram"] = fastnmf.FixedGram(Vd @ Vd.T)
    if kw.pop("model", False):
        def model():
            return as_order(U0 @ Vd, order)
        dense = fastnmf.relu_lstsq(A, U0.copy(), Vd, n_iter=2, model=model(), **kw)
        sparse = fastnmf.relu_lstsq(A, U0.copy(), V, n_iter=2, model=model(), **kw)
    else:
        dense = fastnmf.relu_lstsq(A, U0, Vd, n_iter=2, **kw)
        sparse = fastnmf.relu_lstsq(A, U0, V, n_iter=2, **kw)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(sparse.U, dense.U, rtol=tol, atol=tol)
    np.testing.assert_allclose(sparse.errors, dense.errors, rtol=tol, atol=tol)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_relu_lstsq_takes_any_sparse_format_and_sparse_data(rng, fmt):
    A, U0, V = relu_problem(rng, 8, 30, 5, np.float64, "F")
    want = fastnmf.relu_lstsq(A, U0, V.toarray(), n_iter=2).U
    got = fastnmf.relu_lstsq(A, U0, V.asformat(fmt), n_iter=2).U
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    data = fastnmf.sparse_data(V)
    got = fastnmf.relu_lstsq(A, U0, data, n_iter=2).U
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # a SparseData of another dtype is cast to A's working dtype
    got32 = fastnmf.relu_lstsq(A.astype(np.float32), U0, data, n_iter=2).U
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-3, atol=1e-3)


def test_relu_lstsq_sparse_V_same_answer_on_1_and_2_threads(rng):
    A, U0, V = relu_problem(rng, 300, 400, 30, np.float64, "C")
    with fastnmf.threads(1):
        one = fastnmf.relu_lstsq(A, U0, V, n_iter=3).U
    with fastnmf.threads(2):
        two = fastnmf.relu_lstsq(A, U0, V, n_iter=3).U
    np.testing.assert_allclose(one, two, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# fastnmf.sparse_data and the products behind the sparse path
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_data_products(rng, dtype):
    S = sparse_factor(rng, 60, 25, 0.2, dtype)
    D = fastnmf.sparse_data(S)
    assert isinstance(D, fastnmf.SparseData)
    assert D.shape == (60, 25) and D.dtype == dtype and D.nnz == S.nnz
    Sd = S.toarray().astype(np.float64)
    X = rng.standard_normal((25, 7)).astype(dtype)
    assert_close(D.matmul(X), Sd @ X, dtype)
    out = np.empty((60, 7), dtype)
    assert D.matmul(X, out=out) is out
    assert_close(out, Sd @ X, dtype)
    assert_close(D.gram(), Sd.T @ Sd, dtype)
    assert_close(D.T.gram(), Sd @ Sd.T, dtype)
    np.testing.assert_array_equal(D.astype(np.float64).toarray(), S.toarray().astype(np.float64))
    with pytest.raises(ValueError, match="out must be a C-contiguous"):
        D.matmul(X, out=np.empty((60, 7), dtype, order="F"))
    with pytest.raises(ValueError, match="do not multiply"):
        D.matmul(np.ones((24, 7), dtype))


@pytest.mark.parametrize("x_order,out_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
def test_dense_times_sparse_in_every_layout(rng, x_order, out_order):
    S = fastnmf.sparse_data(sparse_factor(rng, 30, 45, 0.25, np.float64))
    X = as_order(rng.standard_normal((11, 30)), x_order)
    out = np.empty((11, 45), order=out_order)
    _sparse.dense_matmul_into(out, X, S)
    np.testing.assert_allclose(out, X @ S.toarray(), rtol=1e-12, atol=1e-12)


def test_sparse_data_bad_input():
    with pytest.raises(TypeError, match="scipy.sparse"):
        fastnmf.sparse_data(np.ones((3, 3)))
    bad = sp.csr_matrix(np.array([[1.0, np.nan], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="^A contains NaN or Inf"):
        fastnmf.sparse_data(bad)
    with pytest.raises(ValueError, match="^A must be nonnegative"):
        fastnmf.sparse_data(sp.csr_matrix(np.array([[1.0, -1.0]])), nonnegative=True)
    with pytest.raises(ValueError, match="^A is empty"):
        fastnmf.sparse_data(sp.csr_matrix((3, 0)))
    assert fastnmf.sparse_data(sp.csr_matrix((3, 0)), allow_empty_columns=True).shape == (3, 0)
    with pytest.raises(TypeError, match="complex"):
        fastnmf.sparse_data(sp.csr_matrix(np.array([[1 + 1j]])))


# --------------------------------------------------------------------------
# ridge_lstsq with a sparse V (the first layer of NMF autoencoder pre-training)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("options", [{}, {"alpha": 0.1, "alpha_trace": 0.01}, {"prox": 0.5}])
def test_ridge_lstsq_sparse_V_matches_the_numpy_reference(rng, dtype, order, options):
    m, n, k = 9, 60, 12
    V = sparse_factor(rng, k, n, 0.3, dtype)
    A = as_order(rng.random((m, n)).astype(dtype), order)
    kw = dict(options)
    U0 = rng.random((m, k)).astype(dtype)
    if "prox" in kw:
        kw["U0"] = U0
    U = fastnmf.ridge_lstsq(A, V, **kw)
    Vd = V.toarray().astype(np.float64)
    G = Vd @ Vd.T
    lam = kw.get("alpha", 0.0) + kw.get("alpha_trace", 0.0) * np.trace(G)
    prox = kw.get("prox", 0.0)
    rhs = A.astype(np.float64) @ Vd.T + prox * U0
    want = np.linalg.solve(G + (lam + prox) * np.eye(k), rhs.T).T
    assert U.dtype == dtype
    assert_close(U, want, dtype)
    np.testing.assert_allclose(fastnmf.ridge_lstsq(A, fastnmf.sparse_data(V), **kw), U,
                               rtol=1e-12, atol=1e-12)


def test_ridge_lstsq_refuses_two_sparse_arguments(rng):
    V = sparse_factor(rng, 4, 30, 0.3, np.float64)
    with pytest.raises(TypeError, match="^A and V cannot both be sparse"):
        fastnmf.ridge_lstsq(sp.csr_matrix(np.ones((3, 30))), V)
    bad = V.copy()
    bad.data[0] = np.inf
    with pytest.raises(ValueError, match="^V contains NaN or Inf"):
        fastnmf.ridge_lstsq(np.ones((3, 30)), bad)


def test_degenerate_sparse_fixed_factor_stays_finite(rng):
    """A V with no stored entries, or only its ones row (dead inputs): finite,
    and the dense V's answer."""
    A = rng.random((5, 30))
    U = rng.random((5, 4))
    for V in (sp.csr_matrix((4, 30)),
              sp.csr_matrix(np.vstack([np.zeros((3, 30)), np.ones((1, 30))]))):
        dense = fastnmf.relu_lstsq(A, U, V.toarray(), n_iter=2)
        sparse = fastnmf.relu_lstsq(A, U, V, n_iter=2)
        assert np.isfinite(sparse.U).all() and np.isfinite(sparse.errors).all()
        np.testing.assert_allclose(sparse.U, dense.U, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fastnmf.ridge_lstsq(A, V), fastnmf.ridge_lstsq(A, V.toarray()),
                                   rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# ImplicitGram: the fixed factor's Gram matrix applied by products (CG)
# --------------------------------------------------------------------------
PRECONDITIONERS = [{}, {"preconditioner": "jacobi"}, {"rank": 7}]


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("options", [{"alpha": 0.5}, {"alpha": 0.1, "l2": 0.2, "l2_trace": 1e-3},
                                     {"l2_trace": 1e-2}])
@pytest.mark.parametrize("pre", PRECONDITIONERS)
def test_implicit_gram_equals_the_explicit_inverse(rng, sparse, order, options, pre):
    """relu_lstsq's U-step with fixed_gram=ImplicitGram(V) (CG to 1e-10)
    against the same step through the explicit inverse (float64), with
    each preconditioner (Nystrom of full rank here, k = 40 < 100; of rank
    7; Jacobi)."""
    m, n, k = 20, 300, 40
    A, U0, V = relu_problem(rng, m, n, k, np.float64, order)
    Vfix = V if sparse else V.toarray()
    g = fastnmf.ImplicitGram(Vfix, tol=1e-10, **pre)
    want = fastnmf.relu_lstsq(A, U0, V.toarray(), n_iter=3, **options)
    got = fastnmf.relu_lstsq(A, U0, V, n_iter=3, fixed_gram=g, **options)
    np.testing.assert_allclose(got.U, want.U, rtol=1e-7, atol=1e-7 * np.abs(want.U).max())
    np.testing.assert_allclose(got.errors, want.errors, rtol=1e-8)
    assert len(g.iterations) == 3 and 0 < max(g.iterations) < 500
    Vd = V.toarray()
    assert g.shape == (k, k) and g.trace == pytest.approx(np.sum(Vd * Vd), rel=1e-12)
    np.testing.assert_allclose(g.diagonal, np.sum(Vd * Vd, axis=1), rtol=1e-12)


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("pre", PRECONDITIONERS)
def test_implicit_gram_float32(rng, sparse, pre):
    """float32 V and A: products (and the Nystrom preconditioner's GEMMs)
    in float32, the CG recurrences in float64; U stays float32 and equals
    the explicit inverse's step to the default tol (1e-4) scale."""
    m, n, k = 20, 300, 40
    A, U0, V = relu_problem(rng, m, n, k, np.float32, "C")
    g = fastnmf.ImplicitGram(V if sparse else V.toarray(), **pre)
    assert g.dtype == np.float32
    want = fastnmf.relu_lstsq(A, U0, V.toarray(), n_iter=3, alpha=0.5)
    got = fastnmf.relu_lstsq(A, U0, V, n_iter=3, alpha=0.5, fixed_gram=g)
    assert got.U.dtype == np.float32
    np.testing.assert_allclose(got.U, want.U, rtol=0, atol=2e-3 * np.abs(want.U).max())
    np.testing.assert_allclose(got.errors, want.errors, rtol=1e-3)


def test_implicit_gram_solve_and_bad_values(rng):
    V = sparse_factor(rng, 30, 200, 0.2, np.float64)
    g = fastnmf.ImplicitGram(V, tol=1e-12)
    E = rng.standard_normal((7, 30))
    G = (V @ V.T).toarray()
    out = np.empty((7, 30))
    assert g.solve_right_into(out, E, 0.3) is out
    np.testing.assert_allclose(out, np.linalg.solve(G + 0.3 * np.eye(30), E.T).T,
                               rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="positive shift"):
        g.solve_right_into(out, E, 0.0)
    with pytest.raises(ValueError, match="^tol"):
        fastnmf.ImplicitGram(V, tol=1.0)
    with pytest.raises(ValueError, match="^tol"):
        fastnmf.ImplicitGram(V, tol=0.0)
    with pytest.raises(ValueError, match="^max_iter"):
        fastnmf.ImplicitGram(V, max_iter=0)
    with pytest.raises(ValueError, match="^preconditioner must be one of"):
        fastnmf.ImplicitGram(V, preconditioner="ilu")
    with pytest.raises(ValueError, match="^rank"):
        fastnmf.ImplicitGram(V, rank=0)
    with pytest.raises(TypeError, match="^rank"):
        fastnmf.ImplicitGram(V, rank=2.5)
    short = fastnmf.ImplicitGram(V, tol=1e-12, max_iter=2, preconditioner="jacobi")
    with pytest.warns(RuntimeWarning, match="CG stopped at max_iter=2"):
        short.solve_right_into(out, E, 0.3)
    assert short.iterations == [2] and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="^V contains NaN or Inf"):
        fastnmf.ImplicitGram(np.full((3, 4), np.nan))
    A, U0, _ = relu_problem(rng, 5, 200, 30, np.float64, "C")
    with pytest.raises(ValueError, match="ImplicitGram.*positive ridge"):
        fastnmf.relu_lstsq(A, U0, V, fixed_gram=g)           # alpha = l2 = 0
    with pytest.raises(ValueError, match="fixed_gram must have shape"):
        fastnmf.relu_lstsq(A[:, :100], U0[:, :20], V[:20, :100], fixed_gram=g, alpha=1.0)


def low_rank_plus_noise(rng, k, n, rank, noise):
    """A sparse (k, n) factor whose Gram matrix has ``rank`` large
    eigenvalues over a spread tail, like tf-idf features that share
    topics: a nonnegative rank-``rank`` product plus sparse noise."""
    B = rng.random((k, rank)) @ rng.random((rank, n))
    N = sp.random(k, n, density=0.05, random_state=int(rng.integers(2**31)), format="csr")
    return sp.csr_matrix(B + noise * N.toarray())


def test_nystrom_sketch_captures_a_low_rank_gram(rng):
    """The sketch: Q orthonormal, lam descending and >= 0; for G of rank
    5 and a sketch of rank 12 it is G itself (to rounding), and the
    preconditioned CG then converges in a couple of iterations; the sketch
    is made once, at the first solve, and serves every shift."""
    k, n = 60, 400
    W = rng.random((k, 5))
    H = rng.random((5, n))
    V = W @ H                                          # G = V V^T of rank 5
    g = fastnmf.ImplicitGram(V, rank=12, tol=1e-10)
    assert g.sketch is None
    E = rng.standard_normal((4, k))
    out = np.empty((4, k))
    G = V @ V.T
    for shift in (0.5, 2.0):
        g.solve_right_into(out, E, shift)
        np.testing.assert_allclose(out, np.linalg.solve(G + shift * np.eye(k), E.T).T,
                                   rtol=1e-8, atol=1e-8 * np.abs(out).max())
    Q, lam = g.sketch
    assert 5 <= Q.shape[1] <= 12
    np.testing.assert_allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-10)
    assert np.all(lam >= 0) and np.all(np.diff(lam) <= 0)
    np.testing.assert_allclose(Q @ (lam[:, None] * Q.T), G, atol=1e-8 * np.abs(G).max())
    assert max(g.iterations) <= 3


def test_nystrom_takes_fewer_iterations_than_jacobi_on_correlated_features(rng):
    """On features sharing a few strong directions (the case it is for),
    deflating the top of the spectrum cuts the iterations, to the same
    answer."""
    V = low_rank_plus_noise(rng, 300, 2000, 8, 3.0)
    E = rng.standard_normal((10, 300))
    outs = {}
    its = {}
    for pre in ("jacobi", "nystrom"):
        g = fastnmf.ImplicitGram(V, preconditioner=pre, rank=30, tol=1e-8)
        outs[pre] = np.empty((10, 300))
        g.solve_right_into(outs[pre], E, 0.1)
        its[pre] = g.iterations[0]
    assert its["nystrom"] < 0.7 * its["jacobi"], its
    np.testing.assert_allclose(outs["nystrom"], outs["jacobi"], rtol=0,
                               atol=1e-6 * np.abs(outs["jacobi"]).max())


@pytest.mark.parametrize("sparse", [True, False])
def test_implicit_gram_of_a_zero_factor(sparse):
    """V = 0: no sketch (rank 0), Jacobi alone; the solve is E / shift,
    finite."""
    V = sp.csr_matrix((8, 30)) if sparse else np.zeros((8, 30))
    g = fastnmf.ImplicitGram(V)
    E = np.arange(16.0).reshape(2, 8)
    out = np.empty((2, 8))
    g.solve_right_into(out, E, 0.5)
    np.testing.assert_allclose(out, E / 0.5)
    assert g.sketch[0].shape == (8, 0)
