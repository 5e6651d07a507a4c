"""_init: the randomized SVD and NNDSVD / NNDSVDa against plain NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES

from fastnmf import _init as I
from fastnmf.datasets import load_digits


def _digits(dtype):
    X, _ = load_digits(dtype=dtype)
    return X


def _nndsvd_reference(A, k, fill_zeros):
    """Boutsidis & Gallopoulos (2008) from numpy's exact SVD, in float64."""
    A = A.astype(np.float64)
    u, s, vt = np.linalg.svd(A, full_matrices=False)
    W, H = np.zeros((A.shape[0], k)), np.zeros((k, A.shape[1]))
    W[:, 0] = np.sqrt(s[0]) * np.abs(u[:, 0])
    H[0] = np.sqrt(s[0]) * np.abs(vt[0])
    for j in range(1, k):
        x, y = u[:, j], vt[j]
        xp, xn, yp, yn = np.maximum(x, 0), np.maximum(-x, 0), np.maximum(y, 0), np.maximum(-y, 0)
        mp = np.linalg.norm(xp) * np.linalg.norm(yp)
        mn = np.linalg.norm(xn) * np.linalg.norm(yn)
        if mp >= mn:
            a, b, sig = xp / np.linalg.norm(xp), yp / np.linalg.norm(yp), mp
        else:
            a, b, sig = xn / np.linalg.norm(xn), yn / np.linalg.norm(yn), mn
        W[:, j] = np.sqrt(s[j] * sig) * a
        H[j] = np.sqrt(s[j] * sig) * b
    # exact zeros (digits' blank pixels) come out of the SVD as rounding
    W[W < 1e-9 * W.max()] = 0.0
    H[H < 1e-9 * H.max()] = 0.0
    if fill_zeros:
        W[W == 0] = A.mean()
        H[H == 0] = A.mean()
    return W, H


def _decaying(dtype, m, n, seed=0):
    """m x n with singular values 0.8^j (well separated, fast decay)."""
    rng = np.random.default_rng(seed)
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return np.ascontiguousarray((U * 0.8 ** np.arange(r)) @ V.T, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["digits", "digits.T", "wide", "wide F"])
def test_randomized_svd_matches_numpy_svd(dtype, case):
    """The top ten singular triplets, by each of the three routes: digits
    (1797 x 64: normalised on the samples' side), its transpose (64 rows:
    the Gram route), and 600 x 700 (neither), in C and F order."""
    if case.startswith("digits"):
        A = _digits(dtype)
        if case == "digits.T":
            A = np.ascontiguousarray(A.T)
    else:
        A = _decaying(dtype, 600, 700)
        if case == "wide F":
            A = np.asfortranarray(A)
    k = 10
    u, s, vt = I.randomized_svd(A, k, 0, n_total=A.shape[1])
    U, S, Vt = np.linalg.svd(A.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(s, S[:k], rtol=1e-5)
    # singular vectors up to sign
    for j in range(k):
        sign = np.sign(u[:, j] @ U[:, j])
        np.testing.assert_allclose(sign * u[:, j], U[:, j], atol=2e-3)
        np.testing.assert_allclose(sign * vt[j], Vt[j], atol=2e-3)
    np.testing.assert_allclose(u.T @ u, np.eye(k), atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", ["nndsvd", "nndsvda"])
def test_nndsvd_init_matches_reference(dtype, init):
    A = _digits(dtype)
    k = 8
    U, Vt = I.initialize(A, k, init, np.random.default_rng(0))
    assert U.dtype == dtype and Vt.dtype == dtype
    assert U.flags.c_contiguous and Vt.flags.c_contiguous
    W, H = _nndsvd_reference(A, k, fill_zeros=init == "nndsvda")
    np.testing.assert_allclose(U, W, atol=1e-3 * np.abs(W).max())
    np.testing.assert_allclose(Vt, H.T, atol=1e-3 * np.abs(H).max())
    if init == "nndsvd":
        # the zero pattern is the sign pattern of the singular vectors: the
        # same, except for entries within rounding of zero
        assert ((U == 0) != (W == 0)).mean() < 1e-3


def test_nndsvd_init_does_not_depend_on_the_seed_beyond_rounding():
    """The randomized range finder converges: two seeds give the same start."""
    A = _digits(np.float64)
    U0, V0 = I.initialize(A, 10, "nndsvda", np.random.default_rng(0))
    U1, V1 = I.initialize(A, 10, "nndsvda", np.random.default_rng(1))
    np.testing.assert_allclose(U0, U1, atol=1e-3 * np.abs(U0).max())
    np.testing.assert_allclose(V0, V1, atol=1e-3 * np.abs(V0).max())
