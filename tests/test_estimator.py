"""fastnmf.NMF, the scikit-learn transformer over fastnmf.nmf / nnls."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastnmf
from fastnmf import NMF
from conftest import DTYPES


@parametrize_with_checks([NMF(n_components=3, max_iter=100, random_state=0),
                          NMF(n_components=3, max_iter=100, random_state=0, solver="mu",
                              beta_loss="kullback-leibler")])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(dtype=np.float64, shape=(80, 12), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((shape[0], 4)) @ rng.random((4, shape[1]))).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_fit_is_fastnmf_nmf(dtype, solver):
    X = _data(dtype)
    est = NMF(4, solver=solver, random_state=2, max_iter=60)
    W = est.fit_transform(X)
    r = fastnmf.nmf(X, 4, solver=solver, random_state=2, max_iter=60)
    np.testing.assert_array_equal(est.components_, r.V)
    # W: solved for with H fixed (as transform does), no worse than the fit's own
    np.testing.assert_array_equal(W, fastnmf.nnls(X.T, r.V.T, max_iter=50, tol=0).V.T)
    fit_err = np.linalg.norm(X.astype(np.float64) - r.U.astype(np.float64) @ r.V)
    assert est.reconstruction_err_ <= fit_err * (1 + 1e-5)
    assert W.dtype == dtype and est.components_.dtype == dtype
    assert est.n_iter_ == r.n_iter and est.n_components_ == 4
    np.testing.assert_array_equal(est.errors_, r.errors)
    true = np.linalg.norm(X.astype(np.float64) - W.astype(np.float64) @ est.components_)
    assert abs(est.reconstruction_err_ - true) <= (1e-3 if dtype == np.float32 else 1e-8) * true


@pytest.mark.parametrize("dtype", DTYPES)
def test_transform_solves_for_w_with_h_fixed(dtype):
    X = _data(dtype)
    est = NMF(4, random_state=0, max_iter=150, transform_sweeps=120).fit(X)
    W = est.transform(X)
    expected = fastnmf.nnls(X.T, est.components_.T, max_iter=120, tol=0).V.T
    np.testing.assert_array_equal(W, expected)
    assert W.dtype == dtype and (W >= 0).all()
    np.testing.assert_array_equal(W, NMF(4, random_state=0, max_iter=150,
                                         transform_sweeps=120).fit_transform(X))
    # a sample's code does not depend on the samples it comes with
    np.testing.assert_allclose(est.transform(X[:7]), W[:7], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(est.inverse_transform(W), W @ est.components_, rtol=1e-6)


def test_sparse_fit_equals_dense_fit():
    X = _data(shape=(120, 30))
    X[X < np.quantile(X, 0.6)] = 0
    S = sp.csr_matrix(X)
    a = NMF(4, random_state=1, max_iter=40, tol=0, extrapolate=False).fit(S)
    b = NMF(4, random_state=1, max_iter=40, tol=0, extrapolate=False).fit(X)
    # The same start; the inner-sweep rule prices a sparse product by its
    # nonzeros, so the iterates differ a little, not the fit's quality.
    np.testing.assert_allclose(a.errors_[0], b.errors_[0], rtol=1e-10)
    assert abs(a.reconstruction_err_ - b.reconstruction_err_) < 0.01 * b.reconstruction_err_
    np.testing.assert_allclose(a.transform(S), a.transform(X), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(a.reconstruction_err_, np.linalg.norm(
        X - a.fit_transform(S) @ a.components_), rtol=1e-8)


@pytest.mark.parametrize("params,pattern", [
    ({"n_components": 0}, "n_components must be a positive integer"),
    ({"n_components": 2.5}, "n_components must be a positive integer"),
    ({"n_components": True}, "n_components must be a positive integer"),
    ({"solver": "cd"}, "solver must be one of"),
    ({"init": "custom"}, "init must be one of"),
    ({"max_iter": 0}, "max_iter must be a positive integer"),
    ({"transform_sweeps": 0}, "transform_sweeps must be a positive integer"),
    ({"transform_sweeps": 2.0}, "transform_sweeps must be a positive integer"),
    ({"tol": -1.0}, "tol must be a finite number"),
    ({"tol": float("nan")}, "tol must be a finite number"),
    ({"n_threads": 0}, "n_threads must be a positive integer"),
    ({"alpha_W": -1.0}, "alpha_W must be a finite number >= 0"),
    ({"alpha_H": "different"}, "alpha_H must be a finite number >= 0 or \"same\""),
    ({"alpha_H": float("inf")}, "alpha_H must be a finite number"),
    ({"l1_ratio": 1.5}, "l1_ratio must be in \\[0, 1\\]"),
    ({"l1_ratio": True}, "l1_ratio must be in"),
    ({"beta_loss": "itakura-saito", "solver": "mu"}, "beta_loss must be"),
    ({"beta_loss": 0.5, "solver": "mu"}, "beta_loss must be"),
    ({"beta_loss": True, "solver": "mu"}, "beta_loss must be"),
    ({"beta_loss": "kullback-leibler"}, "needs solver='mu'"),
])
def test_bad_parameters_are_named(params, pattern):
    with pytest.raises(ValueError, match=pattern):
        NMF(**params).fit(_data())


def test_bad_data():
    X = _data()
    X[3, 2] = -1
    with pytest.raises(ValueError, match="Negative values in data passed to NMF"):
        NMF(2).fit(X)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NMF(2).fit(X)
    est = NMF(2, random_state=0).fit(_data())
    with pytest.raises(ValueError, match="X has 5 columns, but this NMF has 2 components"):
        est.inverse_transform(np.ones((3, 5)))
    with pytest.raises(ValueError, match="features"):
        est.transform(np.ones((3, 5)))


def test_n_threads_gives_the_same_model_and_restores_the_setting():
    X = _data(shape=(300, 40))
    before = fastnmf.get_num_threads()
    a = NMF(4, random_state=0, n_threads=1).fit(X)
    assert fastnmf.get_num_threads() == before
    b = NMF(4, random_state=0).fit(X)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-6, atol=1e-8)


def test_import_fastnmf_does_not_load_sklearn():
    import subprocess
    import sys
    code = "import sys, fastnmf; print('sklearn' in sys.modules); fastnmf.NMF; " \
           "print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/").stdout.split()
    assert out == ["False", "True"]


# --------------------------------------------------------------------------
# Penalties (alpha_W, alpha_H, l1_ratio), as scikit-learn's NMF has them
# --------------------------------------------------------------------------
@pytest.mark.parametrize("alpha_W,alpha_H,l1_ratio", [(2e-3, 5e-4, 0.3), (1e-2, "same", 1.0),
                                                      (5e-3, 0.0, 0.0)])
def test_penalized_hals_is_scikit_learns_coordinate_descent(alpha_W, alpha_H, l1_ratio):
    """From the same start, one HALS sweep per block of the penalized
    problem is scikit-learn's cd iteration (its coordinates in the same
    order, rows independent): fastnmf.nmf with scikit-learn's scaling of
    the penalties gives its iterates to rounding (float64)."""
    import warnings
    from sklearn.decomposition import NMF as SKNMF
    from sklearn.exceptions import ConvergenceWarning
    from fastnmf.datasets import load_digits
    X = load_digits(dtype=np.float64)[0][:300] / 16
    rng = np.random.default_rng(0)
    W0, H0 = rng.uniform(0.1, 1, (300, 6)), rng.uniform(0.1, 1, (6, 64))
    sk = SKNMF(6, init="custom", solver="cd", alpha_W=alpha_W, alpha_H=alpha_H,
               l1_ratio=l1_ratio, max_iter=5, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W = sk.fit_transform(X, W=W0.copy(), H=H0.copy())
    l1, l2 = NMF(alpha_W=alpha_W, alpha_H=alpha_H, l1_ratio=l1_ratio)._penalties(*X.shape)
    r = fastnmf.nmf(X, 6, init=(W0, H0), n_inner=1, extrapolate=False, max_iter=5, tol=0,
                    l1=l1, l2=l2)
    np.testing.assert_allclose(r.U, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r.V, sk.components_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_penalized_estimator_fit_and_transform(dtype):
    """The estimator passes its penalties to nmf (fit) and to the W-solve
    (transform), whose W is then optimal for the penalized problem with H
    fixed (KKT: zero gradient on the support, >= 0 at zero)."""
    X = _data(dtype, shape=(90, 20))
    kw = dict(alpha_W=0.02, alpha_H=0.01, l1_ratio=0.5)
    est = NMF(4, random_state=0, max_iter=80, transform_sweeps=400, **kw)
    W = est.fit_transform(X)
    l1, l2 = est._penalties(*X.shape)
    assert l1 == pytest.approx((20 * 0.01, 90 * 0.005)) and l2 == pytest.approx(l1)
    r = fastnmf.nmf(X, 4, random_state=0, max_iter=80, l1=l1, l2=l2)
    np.testing.assert_array_equal(est.components_, r.V)
    H = est.components_.astype(np.float64)
    grad = (W.astype(np.float64) @ H - X) @ H.T + l1[0] + l2[0] * W
    tol = 1e-3 if dtype == np.float32 else 1e-8
    scale = np.abs(X @ H.T).max()
    assert np.abs(grad[W > 0]).max() <= tol * scale
    assert grad[W == 0].min() >= -tol * scale
    # the penalty does what it is for: sparser, smaller factors than without
    plain = NMF(4, random_state=0, max_iter=80).fit(X)
    assert np.mean(est.components_ == 0) >= np.mean(plain.components_ == 0)
    assert est.components_.sum() < plain.components_.sum()


# ---------------------------------------------------------------------------
# beta_loss="kullback-leibler"
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta_loss", ["kullback-leibler", 1])
def test_kl_fit_is_fastnmf_nmf_kl(dtype, beta_loss):
    X = _data(dtype)
    est = NMF(4, solver="mu", beta_loss=beta_loss, random_state=2, max_iter=60, tol=0,
              alpha_W=0.01, l1_ratio=0.5)
    W = est.fit_transform(X)
    l1, l2 = est._penalties(*X.shape)
    r = fastnmf.nmf(X, 4, solver="mu", loss="kl", random_state=2, max_iter=60, tol=0, l1=l1,
                    l2=l2)
    np.testing.assert_array_equal(est.components_, r.V)
    np.testing.assert_array_equal(est.errors_, r.errors)
    assert W.dtype == dtype and est.components_.dtype == dtype and (W >= 0).all()
    # reconstruction_err_: sqrt(2 KL), scikit-learn's definition, of the W returned
    from sklearn.decomposition._nmf import _beta_divergence
    want = _beta_divergence(X.astype(np.float64), W.astype(np.float64),
                            est.components_.astype(np.float64), 1, square_root=True)
    assert est.reconstruction_err_ == pytest.approx(want, rel=1e-3 if dtype == np.float32
                                                    else 1e-8)


def test_kl_transform_is_per_sample_and_matches_fit_transform():
    X = _data(shape=(150, 20))
    est = NMF(5, solver="mu", beta_loss="kullback-leibler", random_state=0, max_iter=80)
    W = est.fit_transform(X)
    np.testing.assert_array_equal(est.transform(X), W)
    np.testing.assert_allclose(est.transform(X[:9]), W[:9], rtol=1e-12, atol=0)
    Xs = sp.csr_matrix(np.where(X > np.quantile(X, 0.5), X, 0))
    dense = NMF(5, solver="mu", beta_loss="kullback-leibler", random_state=0,
                max_iter=80).fit(Xs.toarray())
    sparse = NMF(5, solver="mu", beta_loss="kullback-leibler", random_state=0,
                 max_iter=80).fit(Xs)
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.transform(Xs), dense.transform(Xs.toarray()), rtol=1e-9,
                               atol=1e-12)


def test_kl_model_is_as_good_as_scikit_learns():
    """Same data, rank, iterations: fastnmf's KL model is no worse than
    scikit-learn's (both MU; the starts differ in their randomized SVD)."""
    from sklearn.decomposition import NMF as SkNMF
    from fastnmf.datasets import load_digits
    X = load_digits()[0][:600].astype(np.float64)
    ours = NMF(8, solver="mu", beta_loss="kullback-leibler", random_state=0, max_iter=100,
               tol=0).fit(X)
    theirs = SkNMF(8, solver="mu", beta_loss="kullback-leibler", random_state=0, max_iter=100,
                   tol=0).fit(X)
    assert ours.reconstruction_err_ <= 1.01 * theirs.reconstruction_err_

