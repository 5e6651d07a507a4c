"""Data scale: what the solvers accept, and that their answers do not
depend on it.

Every public solver accepts an array whose largest |entry| is 0 or within
``fastnmf.magnitude_range`` and raises ValueError (naming the argument)
outside it. Inside the range, at both ends, every result is finite; the
multiplicative updates' guard is relative, so MU gives the same relative
error at any scale (it collapsed to zero factors for small data).
"""
import warnings

import numpy as np
import pytest

import fastnmf
import fastnmf_dnn
from fastnmf import _kernels as K
from fastnmf._blocks import mu_guard
from fastnmf._linalg import cholesky_qr_pass, orthonormal_columns

DTYPES = [np.float32, np.float64]


def _at_scale(X, s, dtype):
    """X (entries in [0, 1) or [-0.5, 0.5)) times s, its largest |entry| exactly s."""
    out = (np.asarray(X, np.float64) * s).astype(dtype)
    out.flat[0] = dtype(s)
    return out


def _solvers(A, B, U0, V0):
    """(name, call) of every solver on data A >= 0 (B: mixed sign)."""
    return [
        ("nmf hals", lambda: fastnmf.nmf(A, 3, random_state=0, max_iter=30)),
        ("nmf mu", lambda: fastnmf.nmf(A, 3, solver="mu", random_state=0, max_iter=30)),
        ("semi_nmf hals", lambda: fastnmf.semi_nmf(B, 3, random_state=0, max_iter=30)),
        ("semi_nmf mu", lambda: fastnmf.semi_nmf(B, 3, solver="mu", random_state=0,
                                                 max_iter=30)),
        ("nonlinear_semi_nmf", lambda: fastnmf.nonlinear_semi_nmf(A, 3, random_state=0,
                                                                  max_iter=30)),
        ("relu_lstsq U", lambda: fastnmf.relu_lstsq(A, U0, V0, update="U")),
        ("relu_lstsq V", lambda: fastnmf.relu_lstsq(A, U0, V0, update="V")),
        ("nnls hals", lambda: fastnmf.nnls(A, U0)),
        ("nnls mu", lambda: fastnmf.nnls(A, U0, solver="mu", max_iter=20)),
        ("nnls pgn", lambda: fastnmf.nnls(A, U0, solver="pgn")),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("end", ["lo", "hi"])
def test_solvers_finite_at_both_ends_of_the_range(rng, dtype, end):
    X = rng.random((40, 25))
    lo, hi = fastnmf.magnitude_range(dtype, X.shape)
    s = lo * 1.01 if end == "lo" else hi * 0.99
    A, B = _at_scale(X, s, dtype), _at_scale(X - 0.5, s, dtype)
    U0, V0 = rng.random((40, 3)).astype(dtype), rng.random((3, 25)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)   # no overflow anywhere
        for name, call in _solvers(A, B, U0, V0):
            r = call()
            assert np.isfinite(r.U).all() and np.isfinite(r.V).all(), name
            errs = np.asarray(r.errors)
            assert np.isfinite(errs[~np.isnan(errs)]).all(), name
        W = fastnmf.ridge_lstsq(X.astype(dtype), _at_scale(V0, s, dtype))
        assert np.isfinite(W).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factor", [1e-3, 1e3])
def test_outside_the_range_raises_naming_the_argument(rng, dtype, factor):
    X = rng.random((40, 25))
    lo, hi = fastnmf.magnitude_range(dtype, X.shape)
    s = lo * factor if factor < 1 else hi * factor
    A = _at_scale(X, s, dtype)
    U0, V0 = rng.random((40, 3)).astype(dtype), rng.random((3, 25)).astype(dtype)
    for name, call in _solvers(A, _at_scale(X - 0.5, s, dtype), U0, V0):
        with pytest.raises(ValueError, match="A's largest magnitude"):
            call()
    with pytest.raises(ValueError, match="V's largest magnitude"):
        fastnmf.ridge_lstsq(X.astype(dtype), _at_scale(V0, s, dtype))
    with pytest.raises(ValueError, match="U's largest magnitude"):
        fastnmf.nnls(X.astype(dtype), _at_scale(U0, s, dtype))
    with pytest.raises(ValueError, match=r"init\[0\] \(U0\)'s largest magnitude"):
        fastnmf.nmf(X.astype(dtype), 3, init=(_at_scale(U0, s, dtype), V0))


def test_zero_data_is_not_out_of_range():
    for dtype in DTYPES:
        r = fastnmf.nmf(np.zeros((6, 5), dtype), 2)
        assert np.all(r.U == 0) or np.all(r.V == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_magnitude_range(dtype):
    fi = np.finfo(dtype)
    lo, hi = fastnmf.magnitude_range(dtype, (60000, 784))
    assert lo == pytest.approx(np.sqrt(float(fi.tiny) / float(fi.eps)))
    assert hi == pytest.approx((float(fi.max) / (1024 * 60000 * 784)) ** 0.25)
    # wider arrays, smaller bound; any shape keeps lo < 1 < hi
    assert fastnmf.magnitude_range(dtype, (10, 10))[1] > hi > 1 > lo


@pytest.mark.parametrize("solver", ["mu", "hals"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nmf_same_error_at_any_scale(rng, dtype, solver):
    """From a start scaled with the data (U0 s, V0), every update is
    scale-equivariant: the same relative errors at 1, 1e-6 and 1e4 (MU's
    absolute guard gave 0.9994 at 1e-6 in float32)."""
    X = rng.random((30, 20))
    U0, V0 = rng.random((30, 3)), rng.random((3, 20))
    errs = []
    for s in (1.0, 2.0 ** -20, 2.0 ** 14):      # powers of two: exact scaling
        A = (X * s).astype(dtype)
        r = fastnmf.nmf(A, 3, solver=solver, init=((U0 * s).astype(dtype), V0.astype(dtype)),
                        max_iter=40, tol=0)
        errs.append(r.errors)
    np.testing.assert_allclose(errs[1], errs[0], rtol=1e-4 if dtype == np.float32 else 1e-10)
    np.testing.assert_allclose(errs[2], errs[0], rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_semi_nmf_and_nnls_mu_same_at_any_scale(rng, dtype):
    X = rng.random((30, 20)) - 0.4
    V0 = rng.random((3, 20))
    U = rng.random((30, 3))
    out = []
    for s in (1.0, 2.0 ** -30):
        r1 = fastnmf.semi_nmf((X * s).astype(dtype), 3, solver="mu",
                              init=((U * s).astype(dtype), V0.astype(dtype)), max_iter=20, tol=0)
        r2 = fastnmf.nnls((np.abs(X) * s).astype(dtype), (U * s).astype(dtype), solver="mu",
                          max_iter=20)
        out.append((r1.errors[-1], r2.V))
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=rtol)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mu_guard_is_relative(rng, dtype):
    C = (rng.random((50, 4)) - 0.3).astype(dtype)
    eps = 1e-7
    assert mu_guard(eps, C) == pytest.approx(eps * float(np.abs(C).max()))
    assert mu_guard(eps, C[:, :3]) == pytest.approx(eps * float(np.abs(C[:, :3]).max()))
    assert mu_guard(eps, np.zeros((3, 3), dtype)) == float(np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 301, 70001])   # serial / parallel path
def test_scan_values_largest_magnitude(rng, dtype, n):
    x = (rng.random(n) - 0.5).astype(dtype)
    finite, negative, amax = K.scan_values(x)
    assert finite and amax == float(np.abs(x).max())
    assert negative == bool((x < 0).any())
    x[n // 2] = -dtype(3.5)
    assert K.scan_values(x)[2] == 3.5
    assert K.scan_values(np.zeros(n, dtype)) == (True, False, 0.0)


@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e150])
def test_orthonormal_bases_at_any_scale(rng, scale):
    """A power iteration's basis goes as A's scale to the fourth power in
    its Gram matrix: both CholeskyQR routes scale it by a power of two
    first (exact: the same basis as at scale 1)."""
    Y = rng.standard_normal((200, 8))
    Q1, Qs = orthonormal_columns(Y), orthonormal_columns(Y * scale)
    np.testing.assert_allclose(Qs, Q1, rtol=1e-12, atol=1e-14)
    Z1, Zs = cholesky_qr_pass(Y), cholesky_qr_pass(Y * scale)
    np.testing.assert_allclose(Zs, Z1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(Zs.T @ Zs, np.eye(8), atol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: fastnmf_dnn.NMFNetClassifier((4,), max_iter=1),
    lambda: fastnmf_dnn.NMFNetRegressor((4,), max_iter=1),
    lambda: fastnmf_dnn.NMFAutoencoder((3,), nmf_iter=2, encoder_iter=1),
])
def test_estimators_reject_out_of_range_X(rng, make):
    X = rng.random((60, 5))
    y = np.arange(60) % 3
    make().fit(X, y)     # in range: fits
    for s in (1e-30, 1e12):
        with pytest.raises(ValueError, match="X's largest magnitude"):
            make().fit(X * s, y)


def test_regressor_rejects_out_of_range_y(rng):
    X = rng.random((60, 5))
    fastnmf_dnn.NMFNetRegressor((4,), max_iter=1).fit(X, X[:, 0] * 1e3)   # in range: fits
    for s in (1e-30, 1e30):
        with pytest.raises(ValueError, match="y's largest magnitude"):
            fastnmf_dnn.NMFNetRegressor((4,), max_iter=1).fit(X, X[:, 0] * s)
