"""Semi-NMF ``A ~ U V`` with ``V >= 0`` and ``U`` free (Ding, Li & Jordan 2010)."""
from __future__ import annotations

import time

import numpy as np

from . import _blocks as B
from ._comm import as_comm, collective
from .nmf import _check_init, _check_iteration_options, _cross_dims, _inner_cap, _start
from ._threads import sized_by, rank_arg
from ._result import FactorizationResult
from ._sparse import check_data
from ._validation import (check_choice, check_distributed, check_float,
                          check_random_state, check_rank)

__all__ = ["semi_nmf"]

SOLVERS = ("hals", "mu")


@sized_by(rank_arg)
def semi_nmf(A, rank, *, solver="hals", init="nndsvda", max_iter=200, tol=1e-4, alpha=0.0,
             random_state=None, n_inner=None, inner_alpha=0.5, inner_tol=0.1, eps=None,
             dtype=None, comm=None):
    """Semi-nonnegative factorization ``A ~ U V``, ``V >= 0``, ``U`` unconstrained.

    Minimises ``||A - U V||_F^2 + alpha ||U||_F^2`` by alternating an exact
    ridge least-squares U-step (Cholesky of the k x k Gram matrix) with a
    V-step that is either exact nonnegative least squares by HALS sweeps or
    one Ding-Li-Jordan multiplicative update.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (m, n)
        Data of any sign. float32/float64 preserved; C or F order. Sparse
        A is never densified (its products cost O(nnz k); see
        :func:`fastnmf.nmf`).
    rank : int >= 1
        Number of components k.
    solver : {"hals", "mu"}, default "hals"
        V-step: ``"hals"`` coordinate-descent NNLS (several sweeps per
        cross-product GEMM, stopped by ``inner_tol``), ``"mu"`` the
        multiplicative rule ``V <- V sqrt(((U^T A)+ + (U^T U)- V) /
        ((U^T A)- + (U^T U)+ V))``.
    init : {"nndsvda", "nndsvd", "random"} or (U0, V0), default "nndsvda"
        Only V0 matters for a named init (U is computed by the first
        U-step); NNDSVD splits the singular vectors of A, so it applies to
        data of any sign.
    max_iter : int >= 0, default 200
    tol : float >= 0, default 1e-4
        Stop when an iteration lowers the relative error by less than ``tol``
        times its current value.
    alpha : float >= 0, default 0
        Ridge penalty on U. With 0 the U-step is the plain least-squares
        (pseudo-inverse) solution; a rank-deficient V gets the smallest
        diagonal shift that keeps the Cholesky factorization finite.
    random_state, n_inner, inner_alpha, inner_tol, eps, dtype
        As in :func:`fastnmf.nmf`.
    comm : mpi4py communicator or None
        Data-parallel run over column blocks of A, as in :func:`fastnmf.nmf`:
        one allreduce of ``[A V^T; V V^T]`` per U-step, one of k^2 + 1
        numbers per iteration for the error.

    Returns
    -------
    FactorizationResult
        ``errors`` is ``||A - U V||_F / ||A||_F`` (the ridge term excluded).

    Notes
    -----
    GEMMs per iteration: ``A @ V^T`` and ``A^T @ U`` (2 m n k flops each;
    2 nnz k for sparse A),
    two Gram matrices (that of V serves both the error and the next
    U-step); everything else is O((m + n) k^2).
    """
    comm = as_comm(comm)
    with collective(comm):
        A = check_data(A, "A", dtype=dtype, allow_empty_columns=comm.size > 1)
        k = check_rank(rank)
        check_choice(solver, "solver", SOLVERS)
        max_iter, tol, n_inner, inner_alpha, inner_tol, eps = _check_iteration_options(
            A.dtype, max_iter, tol, n_inner, inner_alpha, inner_tol, eps)
        alpha = check_float(alpha, "alpha")
        check_random_state(random_state, build=False)
        init = _check_init(A, k, init, False, comm)
    N = check_distributed(comm, A)
    U, Vt = _start(A, k, init, random_state, comm)

    m, n = A.shape
    dt = A.dtype
    CV = np.empty((n, k), dt)
    EG = B.cross_gram_buffer(m, k, dt)   # [A V^T; V V^T] of the U-step
    GU = np.empty((k, k), dt)
    GV = np.empty((k, k), dt)
    ebuf = np.empty(k * k + 1)
    if solver == "mu":
        DP, DM = np.empty((n, k), dt), np.empty((n, k), dt)
        cap_v = 1 if n_inner is None else n_inner
    else:
        cap_v = _inner_cap(n_inner, _cross_dims(A, N, comm)[1], k, inner_alpha)

    t0 = time.perf_counter()
    normA2 = comm.sum(B.sq_norm(A))
    normA = np.sqrt(normA2) if normA2 > 0 else 1.0
    B.data_matmul_(A.T, U, CV)
    B.gram(U, out=GU)
    errors = [np.sqrt(B.reduced_sq_error_(normA2, Vt, CV, GU, GV, ebuf, comm)) / normA]
    times = [time.perf_counter() - t0]
    converged = False
    for _ in range(max_iter):
        # GV: the reduced Gram of the error step, the same Vt
        B.ridge_update_left_(A, Vt, U, EG, alpha, comm=comm, gram_V=GV)
        B.data_matmul_(A.T, U, CV)
        B.gram(U, out=GU)
        if solver == "hals":
            B.nnls_hals_(Vt, CV, GU, cap_v, inner_tol, comm)
        else:
            B.nnls_mu_semi_(Vt, CV, GU, DP, DM, cap_v, B.mu_guard(eps, CV, comm))
        errors.append(np.sqrt(B.reduced_sq_error_(normA2, Vt, CV, GU, GV, ebuf, comm)) / normA)
        times.append(time.perf_counter() - t0)
        if tol > 0 and errors[-2] - errors[-1] < tol * errors[-1]:
            converged = True
            break
    return FactorizationResult(
        U=U, V=Vt.T, n_iter=len(errors) - 1, errors=np.asarray(errors), times=np.asarray(times),
        converged=converged, solver=f"semi_nmf-{solver}",
    )
