"""Nonlinear semi-NMF ``A ~ relu(U V)`` with ``V >= 0`` (Sakurai et al. 2016)."""
from __future__ import annotations

import time

import numpy as np

from . import _blocks as B
from ._comm import as_comm, collective
from .nmf import _check_init, _start
from ._threads import sized_by, rank_arg
from ._result import FactorizationResult
from ._validation import (check_choice, check_distributed, check_float, check_int, check_matrix,
                          check_random_state, check_rank)

__all__ = ["nonlinear_semi_nmf"]

ACTIVATIONS = ("relu",)


@sized_by(rank_arg)
def nonlinear_semi_nmf(A, rank, *, activation="relu", init="nndsvda", max_iter=100, tol=1e-4,
                       n_inner=2, omega=1.0, alpha=0.0, random_state=None, dtype=None,
                       comm=None):
    """Nonlinear semi-NMF: ``A ~ relu(U V)`` with ``V >= 0``, ``U`` free, ``A >= 0``.

    Each outer iteration runs ``n_inner`` fixed-point (Gauss-Newton-like)
    iterations on each block, using the pseudo-inverse of the other factor
    and the ReLU residual ``R = A - relu(U V)`` (method.md section 2):

    * U-block: ``U <- U + omega R V^T (V V^T + alpha I)^{-1}``
    * V-block: ``V <- max(0, V + omega (U^T U + alpha I)^{-1} U^T R)``

    The Gram matrix of the fixed factor is Cholesky-factored once per block.

    Parameters
    ----------
    A : array_like, shape (m, n), nonnegative
        float32/float64 preserved; C or F order (the m x n work buffer takes
        A's order, so neither layout is copied).
    rank : int >= 1
    activation : {"relu"}
    init : {"nndsvda", "nndsvd", "random"} or (U0, V0)
        For a named init V0 comes from NNDSVD(a) of A and U0 from the linear
        least-squares fit ``A ~ U V0``, a good start when most of A's entries
        are positive.
    max_iter : int >= 0, default 100
    tol : float >= 0, default 1e-4
        Stop when an iteration lowers the relative error by less than ``tol``
        times its current value.
        The method is not monotone in general; a rising error also stops it.
    n_inner : int >= 1, default 2
        Fixed-point iterations per block.
    omega : float > 0, default 1.0
        Relaxation factor.
    alpha : float >= 0, default 0
        Ridge term lambda added to both Gram matrices.
    random_state, dtype
        As in :func:`fastnmf.nmf`.
    comm : mpi4py communicator or None
        Data-parallel run over column blocks of A, as in :func:`fastnmf.nmf`:
        one allreduce of ``[R V^T; V V^T]`` per U-step iteration, one scalar
        per outer iteration for the error.

    Returns
    -------
    FactorizationResult
        ``errors`` is ``||A - relu(U V)||_F / ||A||_F``.

    Notes
    -----
    GEMMs per inner iteration: the model ``U V`` (m k n flops x 2) and one
    cross product with the residual (m n k x 2). One extra m x n buffer.
    """
    comm = as_comm(comm)
    with collective(comm):
        A = check_matrix(A, "A", nonnegative=True, dtype=dtype,
                         allow_empty_columns=comm.size > 1)
        k = check_rank(rank)
        check_choice(activation, "activation", ACTIVATIONS)
        max_iter = check_int(max_iter, "max_iter", minimum=0)
        tol = check_float(tol, "tol")
        n_inner = check_int(n_inner, "n_inner", minimum=1)
        omega = check_float(omega, "omega", strict=True)
        alpha = check_float(alpha, "alpha")
        check_random_state(random_state, build=False)
        init = _check_init(A, k, init, False, comm)
    check_distributed(comm, A)
    U, Vt = _start(A, k, init, random_state, comm)
    m, n = A.shape
    dt = A.dtype
    EG = B.cross_gram_buffer(m, k, dt)   # [A V^T or R V^T; V V^T], reduced per U-step
    MU = np.empty((m, k), dt)   # U^+ (transposed), formed once per V-block
    if not isinstance(init, tuple):
        B.ridge_update_left_(A, Vt, U, EG, alpha, comm=comm)
    P = B.model_buffer(A)
    D = np.empty((m, k), dt)
    S = np.empty((n, k), dt)
    t0 = time.perf_counter()
    normA2 = comm.sum(B.sq_norm(A))
    normA = np.sqrt(normA2) if normA2 > 0 else 1.0
    # P holds the residual of the current point at the top of every iteration:
    # it is the error we record and the first residual the U-block needs.
    B.model_into_(P, U, Vt)
    errors = [np.sqrt(comm.sum(B.relu_residual_(P, A))) / normA]
    times = [time.perf_counter() - t0]
    converged = False
    sq = []
    for _ in range(max_iter):
        B.relu_update_left_(A, U, Vt, P, D, EG, alpha, omega, n_inner, sq, residual_ready=True,
                            comm=comm)
        B.relu_update_right_(A, U, Vt, P, S, MU, alpha, omega, n_inner, sq, fixed_last_row=False)
        B.model_into_(P, U, Vt)
        errors.append(np.sqrt(comm.sum(B.relu_residual_(P, A))) / normA)
        times.append(time.perf_counter() - t0)
        if tol > 0 and errors[-2] - errors[-1] < tol * errors[-1]:
            converged = True
            break
    return FactorizationResult(
        U=U, V=Vt.T, n_iter=len(errors) - 1, errors=np.asarray(errors), times=np.asarray(times),
        converged=converged, solver="nonlinear_semi_nmf",
    )
