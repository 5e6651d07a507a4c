"""Initial factors: random and NNDSVD / NNDSVDa (Boutsidis & Gallopoulos 2008).

Factors are produced in the kernels' layout: ``U`` (m, k) and ``Vt = V.T``
(n, k), both C-contiguous, in the working dtype.
"""
from __future__ import annotations

import numpy as np

INITS = ("random", "nndsvd", "nndsvda")


def randomized_svd(A, k: int, rng: np.random.Generator, *, n_oversamples: int = 10,
                   n_power_iter: int = 7):
    """Top-k singular triplets of A (m, n) by a randomized range finder.

    Halko, Martinsson & Tropp 2011, with QR re-orthonormalisation between
    power iterations. Cost: ``2 * (n_power_iter + 1)`` GEMMs of m x n x (k + p)
    plus a small dense SVD. Returns (u (m, k), s (k,), vt (k, n)).
    """
    m, n = A.shape
    ell = min(k + n_oversamples, m, n)
    Q = rng.standard_normal((n, ell)).astype(A.dtype)
    Q = A @ Q
    for _ in range(n_power_iter):
        Q, _ = np.linalg.qr(Q)
        Q, _ = np.linalg.qr(A.T @ Q)
        Q = A @ Q
    Q, _ = np.linalg.qr(Q)
    B = Q.T @ A
    ub, s, vt = np.linalg.svd(B, full_matrices=False)
    u = Q @ ub
    k = min(k, ell)
    return u[:, :k], s[:k], vt[:k]


def _nndsvd_factors(A, k, rng, fill):
    """NNDSVD of A (any sign is fine: only singular vectors are split)."""
    m, n = A.shape
    dtype = A.dtype
    kk = min(k, m, n)
    u, s, vt = randomized_svd(A, kk, rng)
    kk = s.shape[0]
    W = np.zeros((m, k), dtype=dtype)
    Ht = np.zeros((n, k), dtype=dtype)
    # Leading pair: the Perron vectors of a nonnegative A have one sign.
    W[:, 0] = np.sqrt(s[0]) * np.abs(u[:, 0])
    Ht[:, 0] = np.sqrt(s[0]) * np.abs(vt[0])
    for j in range(1, kk):
        x, y = u[:, j], vt[j]
        xp, yp = np.maximum(x, 0), np.maximum(y, 0)
        xn, yn = np.maximum(-x, 0), np.maximum(-y, 0)
        nxp, nyp = np.linalg.norm(xp), np.linalg.norm(yp)
        nxn, nyn = np.linalg.norm(xn), np.linalg.norm(yn)
        mp, mn = nxp * nyp, nxn * nyn
        if mp >= mn:
            uu, vv, sig = (xp / nxp if nxp else xp), (yp / nyp if nyp else yp), mp
        else:
            uu, vv, sig = (xn / nxn if nxn else xn), (yn / nyn if nyn else yn), mn
        lam = np.sqrt(s[j] * sig)
        W[:, j] = lam * uu
        Ht[:, j] = lam * vv
    if kk < k:
        # rank > min(m, n): the extra components get small positive noise so
        # they are not dead from the start (a zero column never revives).
        scale = max(fill, np.finfo(dtype).eps)
        W[:, kk:] = scale * rng.uniform(0.01, 0.1, size=(m, k - kk))
        Ht[:, kk:] = scale * rng.uniform(0.01, 0.1, size=(n, k - kk))
    return W, Ht


def initialize(A, k: int, init: str, rng: np.random.Generator):
    """Return (U (m, k), Vt (n, k)) >= 0, C-contiguous, dtype of A.

    For A of mixed sign (semi-NMF), the scale uses ``mean(|A|)`` and only the
    nonnegativity of ``Vt`` matters: the caller recomputes U by least squares.
    """
    m, n = A.shape
    dtype = A.dtype
    mean_abs = float(np.mean(np.abs(A), dtype=np.float64))
    if init == "random":
        scale = np.sqrt(mean_abs / k) if mean_abs > 0 else 1.0
        U = (scale * np.abs(rng.standard_normal((m, k)))).astype(dtype)
        Vt = (scale * np.abs(rng.standard_normal((n, k)))).astype(dtype)
        return np.ascontiguousarray(U), np.ascontiguousarray(Vt)
    if mean_abs == 0.0:  # all-zero data: any nonnegative point is optimal
        return np.zeros((m, k), dtype), np.zeros((n, k), dtype)
    fill = np.sqrt(mean_abs / k)
    U, Vt = _nndsvd_factors(A, k, rng, fill)
    if init == "nndsvda":
        U[U == 0] = mean_abs
        Vt[Vt == 0] = mean_abs
    return np.ascontiguousarray(U, dtype=dtype), np.ascontiguousarray(Vt, dtype=dtype)
