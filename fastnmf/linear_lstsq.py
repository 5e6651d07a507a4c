"""Single-block linear solves: ridge least squares (U free) and NNLS (V >= 0)."""
from __future__ import annotations

import time

import numpy as np

from . import _blocks as B
from . import _kernels as K
from ._comm import as_comm, collective
from ._linalg import ridge_inverse
from ._threads import columns_of_second, rows_of_second, sized_by
from ._result import FactorizationResult
from ._sparse import SparseData, check_data, check_sparse, is_sparse
from ._validation import check_choice, check_distributed, check_float, check_int, check_matrix
from ._workspace import scratch
from .relu_lstsq import check_ones_row

__all__ = ["ridge_lstsq", "nnls"]


def _check_pair(A, F, name, dtype, rows: bool, split: bool = False, sparse_ok: bool = False,
                sparse_factor_ok: bool = False):
    """A (m, n) and its factor (``rows``: V (k, n), else U (m, k)); with
    ``split`` the n columns (samples) of this process may be none; with
    ``sparse_ok`` A may be a scipy.sparse matrix (kept sparse); with
    ``sparse_factor_ok`` the factor may be, when A is dense."""
    check = check_data if sparse_ok else check_matrix
    A = check(A, "A", dtype=dtype, allow_empty_columns=split)
    if sparse_factor_ok and is_sparse(F):
        if isinstance(A, SparseData):
            raise TypeError(f"A and {name} cannot both be sparse (pass one of them dense)")
        F = check_sparse(F, name, dtype=A.dtype, allow_empty_columns=split and rows)
    else:
        F = check_matrix(F, name, dtype=A.dtype, allow_empty_columns=split and rows)
    m, n = A.shape
    if rows and F.shape[1] != n:
        raise ValueError(f"{name} must have {n} columns (A is {m} x {n}), got shape {F.shape}")
    if not rows and F.shape[0] != m:
        raise ValueError(f"{name} must have {m} rows (A is {m} x {n}), got shape {F.shape}")
    return A, F


@sized_by(rows_of_second)
def ridge_lstsq(A, V, *, alpha=0.0, alpha_trace=0.0, U0=None, prox=0.0, dtype=None,
                comm=None):
    """``argmin_U ||A - U V||_F^2 + alpha ||U||_F^2`` (the semi-NMF U-step).

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (m, n)
        Sparse A is never densified: its one product ``A V^T`` costs
        O(nnz k).
    V : array_like or scipy.sparse matrix, shape (k, n)
        May be sparse when A is dense (or :func:`fastnmf.sparse_data` of
        a sparse V): ``A V^T`` is then an O(m nnz) gather and ``V V^T`` an
        O(sum over columns of nnz^2) one.
    alpha : float >= 0, default 0
        Ridge penalty; 0 gives the least-squares solution (a rank-deficient V
        gets the smallest stabilising diagonal shift).
    alpha_trace : float >= 0, default 0
        More ridge in proportion to V's size: ``alpha_trace * trace(V V^T)
        = alpha_trace * ||V||_F^2`` is added to ``alpha`` (a penalty that
        scales with the data, as a network layer's does with its input).
        Read off the Gram matrix the solve forms anyway: no pass over V of
        its own.
    U0 : array_like, shape (m, k), optional
        Point to stay near, with ``prox``.
    prox : float >= 0, default 0
        Adds ``prox ||U - U0||_F^2`` to the objective (U0 required):
        ``U = (A V^T + prox U0) (V V^T + (alpha + prox) I)^{-1}``. With a
        block of samples as A and V, this is a damped (trust-region) step
        from U0, as in the trainer's mini-batch sweeps.
    dtype : {None, numpy.float32, numpy.float64}
    comm : mpi4py communicator or None
        Data-parallel solve: each process passes its own columns (samples)
        of A and V; one allreduce of ``[A V^T; V V^T]`` ((m + k) x k) and
        every process gets the same U.

    Returns
    -------
    U : ndarray, shape (m, k), C order, dtype of A.

    Notes
    -----
    ``U = (A V^T) (V V^T + alpha I)^{-1}``: one GEMM (2 m n k flops), one
    Gram (n k^2), a k x k Cholesky and an m x k x k product (for few rows,
    ``4 m <= k``, two triangular solves per row instead of forming the
    inverse); never an SVD of V.
    """
    comm = as_comm(comm)
    with collective(comm):
        A, V = _check_pair(A, V, "V", dtype, rows=True, split=comm.size > 1, sparse_ok=True,
                           sparse_factor_ok=True)
        alpha = check_float(alpha, "alpha")
        alpha_trace = check_float(alpha_trace, "alpha_trace")
        prox = check_float(prox, "prox")
        shape = (A.shape[0], V.shape[0])
        if prox > 0 and U0 is None:
            raise ValueError("prox > 0 needs U0 (the point to stay near)")
        if U0 is not None:
            U0 = check_matrix(U0, "U0", dtype=A.dtype)
            if U0.shape != shape:
                raise ValueError(f"U0 must have shape {shape}, got {U0.shape}")
    check_distributed(comm, A)
    Vt = V.T  # (n, k) view; C-contiguous when V is F-ordered, either way BLAS reads it
    U = np.empty(shape, A.dtype)
    B.ridge_update_left_(A, Vt, U, B.cross_gram_buffer(*shape, A.dtype, slot=0),
                         alpha, U0=U0 if prox > 0 else None, prox=prox, comm=comm,
                         alpha_trace=alpha_trace)
    return U


@sized_by(columns_of_second)
def nnls(A, U, *, V0=None, solver="hals", max_iter=100, tol=1e-6, fixed_ones_row=False,
         fixed_last_row=False, prox=0.0, l1=0.0, l2=0.0, step_at_zero=1.0, overwrite=False,
         track_error=True, eps=None, dtype=None, comm=None):
    """``argmin_{V >= 0} ||A - U V||_F^2`` (the semi-NMF / NMF V-step).

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (m, n)
        Any sign (semi-NMF); for NMF pass nonnegative A and U. Sparse A
        (solvers "hals" and "mu") is never densified: its one product
        ``A^T U`` costs O(nnz k) (e.g. new documents against the topics
        an :func:`fastnmf.nmf` of sparse data found).
    U : array_like, shape (m, k)
        Fixed factor, any sign.
    V0 : array_like, shape (k, n), >= 0, optional
        Starting point. Default: the unconstrained least-squares solution
        clipped at 0 (for MU, zeros are lifted to a small positive value
        since MU cannot move an entry off 0).
    solver : {"hals", "mu", "pgn"}, default "hals"
        Coordinate-descent sweeps (exact NNLS at convergence), the
        Ding-Li-Jordan multiplicative update, or projected Gauss-Newton
        steps ``V <- max(0, V + s (U^T U + prox I)^{-1} U^T (A - U V))``
        (``s``: ``step_at_zero`` for entries at 0, else 1). A "pgn" step
        costs two thin GEMMs, O(m n k), where a HALS sweep or an MU update
        costs O(n k^2): the cheap one when m << k (a network's output
        layer: m classes, k hidden units). With ``step_at_zero=1`` its
        fixed points are NNLS's; it runs ``max_iter`` steps (no ``tol``)
        and is not monotone in general.
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
    fixed_last_row : bool, default False
        As ``fixed_ones_row``, but V0's last row (required) may hold any
        nonnegative values, kept as they are: with column j of A and V0
        scaled by ``sqrt(w_j)`` the solve is the one weighted by w_j (see
        :func:`fastnmf.relu_lstsq`).
    prox : float >= 0, default 0
        Proximal weight gamma: solve ``min_{V>=0} ||A - U V||^2 +
        gamma ||V - V0||^2`` instead (V0 required), i.e. stay near the
        starting point. It only adds gamma to the Gram's diagonal and
        ``gamma V0`` to the cross product: no extra GEMM. This is how the
        network trainer keeps a hidden layer's targets near its forward
        activations. With ``solver="pgn"`` gamma damps every step
        (Levenberg-Marquardt): the first step from V0 is the proximal
        problem's Gauss-Newton step, later ones are not pulled back to V0.
    l1 : float >= 0, default 0
        Sparsity penalty ``l1 * sum(V)`` on the free rows (V >= 0, so this
        is the l1 norm); subtracted from the cross product. Not with
        ``solver="pgn"``. In the units of ``0.5 ||A - U V||_F^2``, as
        :func:`fastnmf.nmf`'s ``l1``.
    l2 : float >= 0, default 0
        Ridge penalty ``0.5 * l2 * ||V||_F^2`` on the free rows (in the same
        units); added to the Gram matrix's diagonal. Not with
        ``solver="pgn"`` (whose ``prox`` damps its steps instead).
    step_at_zero : float in [0, 1], default 1
        ``solver="pgn"`` only: the step of the entries of V that are 0 at
        the start of a step is scaled by this (0 keeps them at 0, as the
        multiplicative update does).
    overwrite : bool, default False
        Update ``V0`` in place when ``V0.T`` is already C-contiguous in the
        working dtype (e.g. ``V0 = H.T`` for a C-ordered (n, k) array H):
        saves one n x k copy. Otherwise V0 is never modified.
    track_error : bool, default True
        Compute the error after every sweep (one n x k x k Gram each, as
        much work as a HALS sweep). False skips it: ``errors`` is then all
        NaN and MU runs ``max_iter`` updates (its ``tol`` needs the errors)
        in one kernel call (``times`` then has its first and last entries;
        those between are NaN). "pgn" gets the error of the point entering
        each step from its residual pass at no cost; only the final one
        needs ``track_error``.
    eps : float, optional
        MU denominator guard, relative to the largest |entry| of the
        update's numerator cross product ``A^T U`` (default
        ``finfo(dtype).eps``; see :func:`fastnmf.nmf`).
    dtype : {None, numpy.float32, numpy.float64}
    comm : mpi4py communicator or None
        Data-parallel solve: each process passes its own columns (samples)
        of A (and V0) and the same U. The columns are independent; only the
        stopping test (one scalar per HALS sweep when ``tol > 0``) and the
        errors (k^2 + 1 numbers per sweep with ``track_error``) are reduced.

    Returns
    -------
    FactorizationResult
        ``U`` (copy of the input), ``V`` (k, n) >= 0, ``errors`` per sweep.
    """
    comm = as_comm(comm)
    split = comm.size > 1
    with collective(comm):
        A, U = _check_pair(A, U, "U", dtype, rows=False, split=split, sparse_ok=True)
        check_choice(solver, "solver", ("hals", "mu", "pgn"))
        if solver == "pgn" and is_sparse(A):
            raise ValueError("solver='pgn' needs a dense A (its steps form the residual "
                             "A - U V); use 'hals' or 'mu' for sparse A")
        max_iter = check_int(max_iter, "max_iter", minimum=0)
        tol = check_float(tol, "tol")
        prox = check_float(prox, "prox")
        l1 = check_float(l1, "l1")
        l2 = check_float(l2, "l2")
        step_at_zero = check_float(step_at_zero, "step_at_zero")
        if step_at_zero > 1:
            raise ValueError(f"step_at_zero must be <= 1, got {step_at_zero}")
        if step_at_zero != 1 and solver != "pgn":
            raise ValueError("step_at_zero is only used with solver='pgn'")
        if l1 > 0 and solver == "pgn":
            raise ValueError("l1 is not supported with solver='pgn'")
        if l2 > 0 and solver == "pgn":
            raise ValueError("l2 is not supported with solver='pgn' (its prox damps the steps)")
        if prox > 0 and V0 is None:
            raise ValueError("prox > 0 needs V0 (the point to stay near)")
        dt = A.dtype
        eps = float(np.finfo(dt).eps) if eps is None else check_float(eps, "eps", strict=True)
        m, n = A.shape
        k = U.shape[1]
        fixed = bool(fixed_ones_row or fixed_last_row)
        kf = k - 1 if fixed else k
        if fixed and k < 2:
            flag = "fixed_ones_row" if fixed_ones_row else "fixed_last_row"
            raise ValueError(f"{flag} needs U with at least 2 columns (weights + bias)")
        if fixed_last_row and V0 is None:
            raise ValueError("fixed_last_row needs V0 (its last row is the fixed row)")
        if V0 is not None:
            V0 = check_matrix(V0, "V0", nonnegative=True, dtype=dt, allow_empty_columns=split)
            if V0.shape != (k, n):
                raise ValueError(f"V0 must have shape {(k, n)}, got {V0.shape}")
            if fixed_ones_row:
                check_ones_row(V0, "V0")
    check_distributed(comm, A)
    U = np.array(U, order="C", copy=True)

    t0 = time.perf_counter()
    if V0 is not None:
        inplace = overwrite and V0.T.flags.c_contiguous and V0.dtype == dt
        Vt = V0.T if inplace else np.array(V0.T, order="C", copy=True)
        if solver == "pgn":
            return _nnls_pgn(A, U, Vt, kf, prox, step_at_zero, max_iter, track_error, comm, t0)
    normA2 = comm.sum(B.sq_norm(A))
    normA = np.sqrt(normA2) if normA2 > 0 else 1.0
    # Work arrays come from the active fastnmf.Workspace, if any (scratch):
    # slots 0 CV, 1 C, 2 DM, 3 T or DP.
    CV = B.data_matmul_(A.T, U, scratch(0, (n, k), dt))   # the only product with A
    GU = B.gram(U)
    # Free part of the problem: X = Vt[:, :kf], C = A^T W - 1 (b^T W) - l1
    # (+ prox X0), G = W^T W (+ prox I + l2 I).
    G = np.array(GU[:kf, :kf], order="C", copy=True)
    C = scratch(1, (n, kf), dt)
    # the fixed row r's share r b^T, b = W^T u_last (r = 1: no per-row scale)
    b = np.ascontiguousarray(GU[-1, :kf]) if fixed else np.zeros(kf, dt)
    r = Vt[:, -1] if fixed_last_row else np.empty(0, dt)   # (a strided view, not copied)
    if V0 is None:   # (prox is 0 here)
        K.shifted_cross_(C, CV, b, CV, 0.0, l1, r)
        Vt = np.empty((n, k), dt)
        X = Vt[:, :kf]
        np.maximum(C @ ridge_inverse(G, l2, dt), 0, out=X)
        if solver == "mu":   # lift zeros to 1e-3 of the mean positive entry (over all processes)
            pos = X[X > 0]
            total, count = comm.sum(pos.sum(dtype=np.float64)), comm.sum(pos.size)
            X[X == 0] = (total / count if count else 1.0) * 1e-3
        if fixed_ones_row:
            Vt[:, -1] = 1
    else:
        K.shifted_cross_(C, CV, b, Vt, prox, l1, r)
    if solver == "pgn":   # from the default start
        return _nnls_pgn(A, U, Vt, kf, prox, step_at_zero, max_iter, track_error, comm, t0)
    X = Vt[:, :kf]
    if prox > 0 or l2 > 0:  # + gamma ||X - X0||^2: G + gamma I (and C + gamma X0, above)
        G.flat[:: kf + 1] += dt.type(prox + l2)
    GV = np.empty((k, k), dt)
    ebuf = np.empty(k * k + 1)

    def err():
        if not track_error:
            return np.nan
        return np.sqrt(B.reduced_sq_error_(normA2, Vt, CV, GU, GV, ebuf, comm)) / normA

    errors = [err()]
    times = [time.perf_counter() - t0]
    converged = False
    if solver == "mu":
        # G = W^T W + prox I with W = U[:, :kf] (m, kf): for m << kf the MU
        # update forms X G+ through W (nnls_mu_semi_): half the GEMM work;
        # DM then holds [X W^T | X G-].
        F = np.ascontiguousarray(U[:, :kf]) if 4 * m <= kf else None
        DP = scratch(3, (n, kf), dt) if F is None else None
        DM = scratch(2, (n, kf) if F is None else (n, m + kf), dt)
        eps = B.mu_guard(eps, C, comm)   # C is fixed: one guard for every update
    first = None
    # MU without error tracking has nothing to look at between updates: all
    # of them in one call (G's splits formed once; same iterates as one
    # call per update), and the per-update loop below runs no iteration.
    in_one_call = solver == "mu" and not track_error and max_iter > 0
    if in_one_call:
        B.nnls_mu_semi_(X, C, G, DP, DM, max_iter, eps, factor=F, shift=prox + l2)
        errors += [np.nan] * max_iter
        times += [np.nan] * (max_iter - 1) + [time.perf_counter() - t0]
    for _ in range(0 if in_one_call else max_iter):
        if solver == "hals":
            delta = comm.sum(B.hals_sweep_(X, C, G))
            first = delta if first is None else first
        else:  # X may be a column slice (fixed ones row): BLAS takes it as is
            B.nnls_mu_semi_(X, C, G, DP, DM, 1, eps, factor=F, shift=prox + l2)
        errors.append(err())
        times.append(time.perf_counter() - t0)
        if solver == "hals" and delta <= tol * first:
            converged = True
            break
        if solver == "mu" and track_error and errors[-2] - errors[-1] < tol * errors[-1]:
            converged = True
            break
    return FactorizationResult(
        U=U, V=Vt.T, n_iter=len(errors) - 1, errors=np.asarray(errors), times=np.asarray(times),
        converged=converged, solver=f"nnls-{solver}",
    )


def _nnls_pgn(A, U, Vt, kf, damping, step_at_zero, n_steps, track_error, comm, t0):
    """``nnls(solver="pgn")`` from the start Vt (n, k), updated in place."""
    m, n = A.shape
    dt = A.dtype
    sq = [B.sq_norm(A)]
    P = B.model_buffer(A, slot=0)
    B.relu_update_right_(A, U, Vt, P, scratch(1, (n, kf), dt), scratch(2, (m, kf), dt),
                         damping, 1.0, n_steps, sq, fixed_last_row=kf < U.shape[1],
                         step_at_zero=step_at_zero, linear=True)
    if track_error:
        B.model_into_(P, U, Vt)
        sq.append(B.linear_residual_(P, A))
    sq = comm.sum_(np.asarray(sq, dtype=np.float64))
    normA = np.sqrt(sq[0]) if sq[0] > 0 else 1.0
    errors = np.sqrt(sq[1:]) / normA
    if not track_error:
        errors = np.append(errors, np.nan)
    elapsed = time.perf_counter() - t0
    times = np.full(errors.shape, np.nan)
    times[-1] = elapsed
    return FactorizationResult(
        U=U, V=Vt.T, n_iter=n_steps, errors=errors, times=times, converged=False,
        solver="nnls-pgn", info={"seconds": elapsed},
    )
