"""Small dense linear algebra: Gram matrices, ridge Cholesky, in-place solves.

The factorizations only ever factor k x k Gram matrices (k = rank), never
the wide N-column data: O(k^3) per factorization, negligible when N >> k.
The factorization is done in float64 (cheap at k x k, and float32 Gram
matrices of nearly collinear factors lose definiteness); the O(p k^2)
triangular solves run in the working dtype through BLAS ``trsm``.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas as _blas


def matmul_into(out, a, b):
    """``out[...] = a @ b`` through BLAS, writing into ``out`` (C or F order)."""
    if out.flags.c_contiguous:
        np.matmul(a, b, out=out)
    else:  # F-ordered output: compute the transposed product into out.T (C)
        np.matmul(b.T, a.T, out=out.T)
    return out


def gram(X, out=None):
    """``X.T @ X`` for X (p, k); returns (k, k)."""
    return np.matmul(X.T, X, out=out)


def cholesky_lower(G, alpha: float = 0.0) -> np.ndarray:
    """Lower Cholesky factor (float64) of ``G + alpha * I``.

    If the matrix is numerically singular (alpha = 0 and a rank-deficient
    factor: dead units, rank > min(m, n), zero rows), the smallest diagonal
    shift ``tau = eps * mean(diag) * 10**j`` that makes it definite is added,
    which gives the ridge approximation of the minimum-norm least-squares
    solution instead of NaN or Inf.
    """
    G64 = np.array(G, dtype=np.float64)
    k = G64.shape[0]
    if alpha:
        G64.flat[:: k + 1] += alpha
    try:
        L = np.linalg.cholesky(G64)
        if np.isfinite(L).all():
            return L
    except np.linalg.LinAlgError:
        pass
    scale = max(float(np.trace(G64)) / k, np.finfo(np.float64).tiny ** 0.5)
    tau = np.finfo(np.float64).eps * scale
    for _ in range(20):
        H = G64.copy()
        H.flat[:: k + 1] += tau
        try:
            L = np.linalg.cholesky(H)
            if np.isfinite(L).all():
                return L
        except np.linalg.LinAlgError:
            pass
        tau *= 10.0
    # A Gram matrix that is all zeros (every component dead): identity.
    return np.sqrt(scale) * np.eye(k)


def solve_right_(X, L):
    """In place ``X <- X (L L^T)^{-1}`` for C-contiguous X (p, k).

    ``X^T`` is F-contiguous (k, p), so two left-side ``trsm`` calls solve
    ``(L L^T) X^T = X^T`` in place with no copy. O(p k^2).
    """
    if X.shape[0] == 0:
        return X
    trsm = _blas.strsm if X.dtype == np.float32 else _blas.dtrsm
    Lw = np.asarray(L, dtype=X.dtype, order="F")
    XT = X.T
    out = trsm(1.0, Lw, XT, side=0, lower=1, trans_a=0, overwrite_b=1)
    out = trsm(1.0, Lw, out, side=0, lower=1, trans_a=1, overwrite_b=1)
    if not np.shares_memory(out, X):  # pragma: no cover - defensive
        X[...] = out.T
    return X
