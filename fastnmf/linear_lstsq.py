"""Single-block linear solves: ridge least squares (U free) and NNLS (V >= 0)."""
from __future__ import annotations

import time

import numpy as np

from . import _blocks as B
from ._linalg import ridge_inverse
from ._threads import columns_of_second, rows_of_second, sized_by
from ._result import FactorizationResult
from ._validation import check_choice, check_factor, check_float, check_int, check_matrix
from .relu_lstsq import check_ones_row

__all__ = ["ridge_lstsq", "nnls"]


def _check_pair(A, F, name, dtype, rows: bool):
    A = check_matrix(A, "A", dtype=dtype)
    F = check_matrix(F, name, dtype=A.dtype)
    m, n = A.shape
    if rows and F.shape[1] != n:
        raise ValueError(f"{name} must have {n} columns (A is {m} x {n}), got shape {F.shape}")
    if not rows and F.shape[0] != m:
        raise ValueError(f"{name} must have {m} rows (A is {m} x {n}), got shape {F.shape}")
    return A, F


@sized_by(rows_of_second)
def ridge_lstsq(A, V, *, alpha=0.0, dtype=None):
    """``argmin_U ||A - U V||_F^2 + alpha ||U||_F^2`` (the semi-NMF U-step).

    Parameters
    ----------
    A : array_like, shape (m, n)
    V : array_like, shape (k, n)
    alpha : float >= 0, default 0
        Ridge penalty; 0 gives the least-squares solution (a rank-deficient V
        gets the smallest stabilising diagonal shift).
    dtype : {None, numpy.float32, numpy.float64}

    Returns
    -------
    U : ndarray, shape (m, k), C order, dtype of A.

    Notes
    -----
    ``U = A V^T (V V^T + alpha I)^{-1}`` by one GEMM (2 m n k flops), one
    Gram (n k^2), a k x k Cholesky and two trsm; never an SVD of V.
    """
    A, V = _check_pair(A, V, "V", dtype, rows=True)
    alpha = check_float(alpha, "alpha")
    Vt = V.T  # (n, k) view; C-contiguous when V is F-ordered, either way BLAS reads it
    U = np.empty((A.shape[0], V.shape[0]), A.dtype)
    B.ridge_update_left_(A, Vt, U, np.empty(Vt.shape, A.dtype), alpha)
    return U


@sized_by(columns_of_second)
def nnls(A, U, *, V0=None, solver="hals", max_iter=100, tol=1e-6, fixed_ones_row=False,
         eps=None, dtype=None):
    """``argmin_{V >= 0} ||A - U V||_F^2`` (the semi-NMF / NMF V-step).

    Parameters
    ----------
    A : array_like, shape (m, n)
        Any sign (semi-NMF); for NMF pass nonnegative A and U.
    U : array_like, shape (m, k)
        Fixed factor, any sign.
    V0 : array_like, shape (k, n), >= 0, optional
        Starting point. Default: the unconstrained least-squares solution
        clipped at 0 (for MU, zeros are lifted to a small positive value
        since MU cannot move an entry off 0).
    solver : {"hals", "mu"}, default "hals"
        Coordinate-descent sweeps (exact NNLS at convergence) or the
        Ding-Li-Jordan multiplicative update.
    max_iter : int >= 0, default 100
        Sweeps / updates. One GEMM ``A^T U`` is done once, up front.
    tol : float >= 0, default 1e-6
        HALS: stop when a sweep changes V by less than ``tol`` times the
        first sweep's change (squared norms). MU: stop when the relative
        error improves by less than ``tol``.
    fixed_ones_row : bool, default False
        The last row of V is a constant ones row (bias input) kept exactly
        as it is; the last column of U is then the bias. V0's last row must
        be ones; the default start sets it.
    eps : float, optional
        MU denominator guard (default ``finfo(dtype).eps``).
    dtype : {None, numpy.float32, numpy.float64}

    Returns
    -------
    FactorizationResult
        ``U`` (copy of the input), ``V`` (k, n) >= 0, ``errors`` per sweep.
    """
    A, U = _check_pair(A, U, "U", dtype, rows=False)
    check_choice(solver, "solver", ("hals", "mu"))
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    tol = check_float(tol, "tol")
    dt = A.dtype
    eps = float(np.finfo(dt).eps) if eps is None else check_float(eps, "eps", strict=True)
    m, n = A.shape
    k = U.shape[1]
    kf = k - 1 if fixed_ones_row else k
    if fixed_ones_row and k < 2:
        raise ValueError("fixed_ones_row needs U with at least 2 columns (weights + bias)")
    U = np.array(U, order="C", copy=True)

    t0 = time.perf_counter()
    normA2 = B.sq_norm(A)
    normA = np.sqrt(normA2) if normA2 > 0 else 1.0
    CV = np.matmul(A.T, U)          # (n, k): the only GEMM with A
    GU = B.gram(U)
    # Free part of the problem: X = Vt[:, :kf], C = A^T W - 1 (b^T W), G = W^T W.
    G = np.ascontiguousarray(GU[:kf, :kf])
    C = np.empty((n, kf), dt)
    np.subtract(CV[:, :kf], GU[-1, :kf] if fixed_ones_row else 0, out=C)
    if V0 is None:
        Vt = np.empty((n, k), dt)
        X = Vt[:, :kf]
        np.maximum(C @ ridge_inverse(G, 0.0, dt), 0, out=X)
        if solver == "mu":
            pos = X[X > 0]
            X[X == 0] = (pos.mean() if pos.size else 1.0) * 1e-3
        if fixed_ones_row:
            Vt[:, -1] = 1
    else:
        V0 = check_factor(V0, "V0", (k, n), dt, nonnegative=True)
        if fixed_ones_row:
            check_ones_row(V0, "V0")
        Vt = np.ascontiguousarray(V0.T)
    X = Vt[:, :kf]
    GV = np.empty((k, k), dt)

    def err():
        B.gram(Vt, out=GV)
        return np.sqrt(B.linear_sq_error(normA2, Vt, CV, GU, GV)) / normA

    errors = [err()]
    times = [time.perf_counter() - t0]
    converged = False
    if solver == "mu":
        DP, DM = np.empty((n, kf), dt), np.empty((n, kf), dt)
    first = None
    for _ in range(max_iter):
        if solver == "hals":
            delta = B.hals_sweep_(X, C, G)
            first = delta if first is None else first
        else:  # X may be a column slice (fixed ones row): kernel and BLAS take it as is
            B.nnls_mu_semi_(X, C, G, DP, DM, 1, eps)
        errors.append(err())
        times.append(time.perf_counter() - t0)
        if solver == "hals" and delta <= tol * first:
            converged = True
            break
        if solver == "mu" and errors[-2] - errors[-1] < tol * errors[-1]:
            converged = True
            break
    return FactorizationResult(
        U=U, V=Vt.T, n_iter=len(errors) - 1, errors=np.asarray(errors), times=np.asarray(times),
        converged=converged, solver=f"nnls-{solver}",
    )
