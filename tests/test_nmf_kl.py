"""``fastnmf.nmf(loss="kl")``: the Kullback-Leibler NMF against a NumPy
reference and scikit-learn's own iterates, monotone objective, sparse =
dense, the evaluation schedule, scale, degenerate data and bad options."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

import _reference as ref
from conftest import DTYPES, ORDERS, as_order, assert_close

import fastnmf


def kl_problem(rng, m, n, k, dtype, order="C"):
    """Counts-like data: a nonnegative low-rank model plus noise, some zeros."""
    A = rng.uniform(0, 1, (m, k)) @ rng.uniform(0, 1, (k, n)) + 0.1 * rng.uniform(0, 1, (m, n))
    A[rng.random((m, n)) < 0.2] = 0.0
    U0 = rng.uniform(0.1, 1, (m, k))
    V0 = rng.uniform(0.1, 1, (k, n))
    return as_order(A.astype(dtype), order), U0.astype(dtype), V0.astype(dtype)


def kl(A, U0, V0, **kw):
    opts = dict(solver="mu", loss="kl", tol=0.0, check_every=1)
    opts.update(kw)
    return fastnmf.nmf(A, U0.shape[1], init=(U0.copy(), V0.copy()), **opts)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("pen", [{}, {"l1": (0.3, 0.1), "l2": (0.5, 2.0)}])
def test_kl_matches_reference(rng, dtype, order, pen):
    m, n, k = 23, 70, 4
    A, U0, V0 = kl_problem(rng, m, n, k, dtype, order)
    res = kl(A, U0, V0, max_iter=3, **pen)
    eps = float(np.finfo(dtype).eps)
    U, V = ref.f64(U0), ref.f64(V0)
    for _ in range(3):
        U, V = ref.nmf_kl_iter(A, U, V, eps, pen.get("l1", (0.0, 0.0)), pen.get("l2", (0.0, 0.0)))
    assert res.U.dtype == dtype and res.V.dtype == dtype
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    d = ref.kl_divergence(A, U, V)
    assert res.errors[-1] == pytest.approx(d / ref.f64(A).sum(), rel=1e-3 if dtype == np.float32
                                           else 1e-9)
    penalty = sum(a * ref.f64(X).sum() + 0.5 * b * np.sum(ref.f64(X) ** 2)
                  for a, b, X in zip(pen.get("l1", (0, 0)), pen.get("l2", (0, 0)), (U, V)))
    assert res.info["objective"][-1] == pytest.approx(d + penalty,
                                                      rel=1e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("alpha_W, l1_ratio", [(0.0, 0.0), (0.01, 0.5), (0.02, 0.0)])
def test_kl_iterates_equal_scikit_learns(alpha_W, l1_ratio):
    """From the same start, scikit-learn's NMF(solver="mu",
    beta_loss="kullback-leibler") and fastnmf run the same iterates (here
    no model value falls below either's floor), penalties in
    scikit-learn's scaling."""
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf
    from fastnmf.datasets import load_digits
    X = load_digits()[0][:400].astype(np.float64)
    W0, H0 = _initialize_nmf(X, 8, init="nndsvda", random_state=0)
    n, d = X.shape
    l1 = (alpha_W * l1_ratio * d, alpha_W * l1_ratio * n)
    l2 = (alpha_W * (1 - l1_ratio) * d, alpha_W * (1 - l1_ratio) * n)
    sk = NMF(8, solver="mu", beta_loss="kullback-leibler", init="custom", max_iter=20, tol=0,
             alpha_W=alpha_W, l1_ratio=l1_ratio)
    W = sk.fit_transform(X, W=W0.copy(), H=H0.copy())
    res = kl(X, W0, H0, max_iter=20, l1=l1, l2=l2)
    np.testing.assert_allclose(res.U, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.V, sk.components_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pen", [{}, {"l1": 0.2, "l2": 0.4}])
def test_kl_objective_never_increases(rng, dtype, pen):
    A, U0, V0 = kl_problem(rng, 30, 50, 6, dtype)
    res = kl(A, U0, V0, max_iter=40, **pen)
    obj = res.info["objective"]
    assert len(obj) == 41 and list(res.info["iterations"]) == list(range(41))
    slack = 1e-5 if dtype == np.float32 else 1e-12
    assert np.all(np.diff(obj) <= slack * obj[0])
    assert obj[-1] < 0.5 * obj[0]
    assert (res.U >= 0).all() and (res.V >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_kl_sparse_equals_dense(rng, dtype, fmt):
    A, U0, V0 = kl_problem(rng, 40, 90, 5, dtype)
    dense = kl(A, U0, V0, max_iter=15, l1=0.1)
    sparse = kl(scipy.sparse.csr_matrix(A).asformat(fmt), U0, V0, max_iter=15, l1=0.1)
    assert_close(sparse.U, dense.U, dtype)
    assert_close(sparse.V, dense.V, dtype)
    np.testing.assert_allclose(sparse.info["objective"], dense.info["objective"],
                               rtol=1e-4 if dtype == np.float32 else 1e-10)


def test_kl_evaluation_schedule_and_tol(rng):
    A, U0, V0 = kl_problem(rng, 30, 40, 4, np.float64)
    res = kl(A, U0, V0, max_iter=25, check_every=10)
    assert list(res.info["iterations"]) == [0, 10, 20, 25]
    assert res.n_iter == 25 and len(res.errors) == len(res.times) == 4
    every = kl(A, U0, V0, max_iter=25, check_every=1)
    np.testing.assert_array_equal(res.U, every.U)   # evaluations change no iterate
    np.testing.assert_allclose(res.info["objective"], every.info["objective"][[0, 10, 20, 25]],
                               rtol=1e-12)
    # tol: stops at the first evaluation that improved by less than tol
    stop = kl(A, U0, V0, max_iter=500, check_every=5, tol=1e-3)
    obj = stop.info["objective"]
    assert stop.converged and stop.n_iter < 500
    assert obj[-2] - obj[-1] < 1e-3 * obj[-1]
    assert np.all(obj[:-2] - obj[1:-1] >= 1e-3 * obj[1:-1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_is_scale_equivariant(rng, dtype):
    """A times c from U0 times c: U times c, V and errors the same (the
    floors are relative to the data), to rounding."""
    A, U0, V0 = kl_problem(rng, 20, 30, 3, dtype)
    c = 1e5 if dtype == np.float32 else 1e12
    a = kl(A, U0, V0, max_iter=10)
    b = kl(A * dtype(c), U0 * dtype(c), V0, max_iter=10)
    assert_close(b.U / dtype(c), a.U, dtype)
    assert_close(b.V, a.V, dtype)
    np.testing.assert_allclose(a.errors, b.errors, rtol=1e-3 if dtype == np.float32 else 1e-9)


def test_kl_default_start_and_threads(rng):
    A, _, _ = kl_problem(rng, 60, 80, 5, np.float32)
    one = fastnmf.nmf(A, 5, solver="mu", loss="kl", random_state=0, max_iter=30)
    with fastnmf.threads(1):
        serial = fastnmf.nmf(A, 5, solver="mu", loss="kl", random_state=0, max_iter=30)
    assert_close(one.U, serial.U, np.float32)
    assert one.errors[-1] < one.errors[0]


@pytest.mark.parametrize("case", ["zero-row", "zero-col", "rank>min", "one-entry", "zeros-start"])
def test_kl_degenerate_data_stays_finite(rng, case):
    A = rng.uniform(0, 1, (12, 9))
    k = 3
    if case == "zero-row":
        A[4] = 0
    elif case == "zero-col":
        A[:, 2] = 0
    elif case == "rank>min":
        k = 15
    elif case == "one-entry":
        A = np.zeros((12, 9))
        A[3, 5] = 2.0
    init = "nndsvda"
    if case == "zeros-start":   # NNDSVD's zeros: MU keeps them, nothing breaks
        init = "nndsvd"
    for data in (A, scipy.sparse.csr_matrix(A)):
        res = fastnmf.nmf(data, k, solver="mu", loss="kl", init=init, max_iter=30,
                          random_state=0)
        assert np.isfinite(res.U).all() and np.isfinite(res.V).all()
        assert np.isfinite(res.errors).all() and np.isfinite(res.info["objective"]).all()
        assert (res.U >= 0).all() and (res.V >= 0).all()


@pytest.mark.parametrize("kw, exc, match", [
    ({"loss": "poisson"}, ValueError, "loss"),
    ({"loss": "kl"}, ValueError, "solver='mu'"),
    ({"loss": "kl", "solver": "mu", "extrapolate": True}, ValueError, "extrapolate"),
    ({"loss": "kl", "solver": "mu", "n_inner": 3}, ValueError, "n_inner"),
    ({"loss": "kl", "solver": "mu", "check_every": 0}, ValueError, "check_every"),
    ({"loss": "kl", "solver": "mu", "check_every": 2.5}, TypeError, "check_every"),
    ({"loss": 3}, (TypeError, ValueError), "loss"),
])
def test_kl_bad_options(rng, kw, exc, match):
    A = rng.uniform(0, 1, (8, 6))
    with pytest.raises(exc, match=match):
        fastnmf.nmf(A, 2, **kw)


def test_kl_needs_nonnegative_data(rng):
    A = rng.uniform(0, 1, (8, 6))
    A[0, 0] = -1
    with pytest.raises(ValueError, match="A"):
        fastnmf.nmf(A, 2, solver="mu", loss="kl")
