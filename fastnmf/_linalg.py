"""Small dense linear algebra: Gram matrices, ridge Cholesky, in-place solves.

The factorizations only ever factor k x k Gram matrices (k = rank), never
the wide N-column data: O(k^3) per factorization, negligible when N >> k.
The factorization is done in float64 (cheap at k x k, and float32 Gram
matrices of nearly collinear factors lose definiteness); applying the
inverse to a p x k factor is one GEMM in the working dtype.
"""
from __future__ import annotations

import numpy as np


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


def ridge_inverse(G, alpha: float, dtype) -> np.ndarray:
    """``(G + alpha I)^{-1}`` (k x k) in ``dtype``, via the float64 Cholesky factor.

    Formed explicitly on purpose: applying it is then one GEMM on numpy's
    BLAS, so the hot loop never calls into a second BLAS library (scipy's
    own OpenBLAS has its own thread pool; switching pools cost ~8 ms per
    call on 2 cores, see README "Threads"). The inverse of an SPD matrix
    through its Cholesky factor is backward stable enough here: the
    forward error of ``X @ inv`` is O(cond(G) eps), as for a trsm solve.
    """
    L = cholesky_lower(G, alpha)
    Linv = np.linalg.inv(L)
    return np.asarray(Linv.T @ Linv, dtype=dtype)


def pinv_factor_into(M, X, G, alpha: float):
    """``M <- X (G + alpha I)^{-1}`` for X (p, k): e.g. ``V^+ = V^T (V V^T + aI)^{-1}``.

    One k x k factorization and one p x k x k GEMM. Returns M.
    """
    np.matmul(X, ridge_inverse(G, alpha, X.dtype), out=M)
    return M
