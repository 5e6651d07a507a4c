"""Nonnegative matrix factorization ``A ~ U V`` with ``U, V >= 0``."""
from __future__ import annotations

import time

import numpy as np

from . import _blocks as B
from . import _kernels as K
from ._comm import SERIAL, as_comm, collective
from ._init import INITS, initialize
from ._kl import kl_nmf_loop
from ._threads import sized_by, rank_arg
from ._penalty import Penalty, check_penalty
from ._result import FactorizationResult
from ._sparse import SparseData, check_data
from ._validation import (check_choice, check_distributed, check_factor, check_float, check_int,
                          check_random_state, check_rank)

__all__ = ["nmf"]

SOLVERS = ("hals", "mu")
LOSSES = ("frobenius", "kl")


def _inner_cap(n_inner, other_dim: int, k: int, inner_alpha: float) -> int:
    """Gillis & Glineur's cap on inner sweeps: 1 + alpha * rho.

    ``rho = 1 + other/(k+1)`` is the ratio of the cost of the cross-product
    GEMM (m n k) to that of one sweep (m k^2); repeating the cheap sweep while
    the GEMM result is fixed is what makes HALS "accelerated".
    """
    if n_inner is not None:
        return n_inner
    rho = 1.0 + other_dim / (k + 1.0)
    return max(1, int(1 + inner_alpha * rho))


def _cross_dims(A, N: int, comm):
    """``(N, m)``: the ``other_dim`` of :func:`_inner_cap` for the U- and
    the V-step of A (m, N columns over all processes). Gillis-Glineur's rho
    is the cross product's cost over a sweep's; for sparse A the product
    costs nnz k, not m N k, so the sides count nnz / m and nnz / N."""
    m = A.shape[0]
    if not isinstance(A, SparseData):
        return N, m
    nnz = comm.sum(A.nnz)
    return nnz / m, nnz / N


def _check_iteration_options(dtype, max_iter, tol, n_inner, inner_alpha, inner_tol, eps):
    """Validate the iteration options nmf and semi_nmf share; eps defaults to
    the dtype's machine epsilon."""
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    tol = check_float(tol, "tol")
    if n_inner is not None:
        n_inner = check_int(n_inner, "n_inner", minimum=1)
    inner_alpha = check_float(inner_alpha, "inner_alpha", strict=True)
    inner_tol = check_float(inner_tol, "inner_tol")
    eps = float(np.finfo(dtype).eps) if eps is None else check_float(eps, "eps", strict=True)
    return max_iter, tol, n_inner, inner_alpha, inner_tol, eps


def _check_init(A, k, init, nonneg_U, comm):
    """Validate ``init``: returns the (U0, Vt0) pair, or the method name."""
    m, n = A.shape
    if isinstance(init, (tuple, list)):
        if len(init) != 2:
            raise ValueError("init must be a method name or a (U0, V0) pair")
        U = check_factor(init[0], "init[0] (U0)", (m, k), A.dtype, nonnegative=nonneg_U)
        V = check_factor(init[1], "init[1] (V0)", (k, n), A.dtype, nonnegative=True,
                         allow_empty_columns=comm.size > 1)
        return U, np.ascontiguousarray(V.T)
    return check_choice(init, "init", INITS)


def _start(A, k, init, random_state, comm):
    """The starting factors (U, Vt) for a validated init and random_state
    (collective); the random generator is made only for a named init."""
    if isinstance(init, tuple):
        return init
    return initialize(A, k, init, check_random_state(random_state), comm)


@sized_by(rank_arg)
def nmf(A, rank, *, solver="hals", init="nndsvda", max_iter=200, tol=1e-4, random_state=None,
        extrapolate=None, n_inner=None, inner_alpha=0.5, inner_tol=0.1, eps=None, l1=0.0,
        l2=0.0, loss="frobenius", check_every=10, dtype=None, comm=None):
    """Nonnegative matrix factorization ``A ~ U V`` with ``U >= 0, V >= 0``.

    Minimises ``0.5 ||A - U V||_F^2`` (plus the optional penalties ``l1``,
    ``l2``) by alternating exact block updates, or with ``loss="kl"`` the
    generalized Kullback-Leibler divergence by multiplicative updates.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (m, n), nonnegative
        Data. float32 and float64 are preserved; other real types become
        float64. C or F order (no copy either way). A scipy.sparse matrix
        or array (any format) is never densified: it is kept as CSR
        arrays of A and of A^T, and each product costs O(nnz k) instead of
        O(m n k) (Gillis-Glineur's inner-sweep cap counts that cost).
    rank : int >= 1
        Number of components k. May exceed ``min(m, n)``.
    solver : {"hals", "mu"}, default "hals"
        ``"hals"``: accelerated HALS (Gillis & Glineur 2012): per iteration,
        one cross-product GEMM per factor, then several cheap coordinate
        sweeps while it is fixed. ``"mu"``: Lee-Seung multiplicative updates.
    init : {"nndsvda", "nndsvd", "random"} or (U0, V0), default "nndsvda"
        Initialisation; a pair gives U0 (m, k) >= 0 and V0 (k, n) >= 0.
    max_iter : int >= 0, default 200
        Maximum number of outer iterations (each updates U then V).
    tol : float >= 0, default 1e-4
        Stop when an iteration decreases the relative error by less than
        ``tol`` times its current value (for extrapolated HALS: an iteration
        that was not a restart). 0 runs ``max_iter``.
    random_state : None, int or numpy Generator
        Seed for the random init and the randomized SVD of NNDSVD.
    extrapolate : bool or None, default None (= True for HALS without penalties)
        Extrapolation with restarts (Ang & Gillis 2019): after each block
        update, step on to ``max(0, U_k + beta (U_k - U_{k-1}))``; beta grows
        while the error decreases and is cut (and the step undone) when it
        increases. On Fashion-MNIST (rank 50) it reached scikit-learn cd's
        400-iteration error in about 150 iterations. The result is the best
        point seen, and ``errors`` is the best-so-far error; set False for
        the plain method, whose every iteration is monotone. MU does not
        support it. With penalties (``l1``, ``l2``) the default is off:
        the projected step zeroed whole components, which a penalized
        update does not revive (``python bench/compare.py penalized``).
    n_inner : int >= 1 or None
        Maximum inner HALS sweeps per block (or MU updates per block). None:
        the Gillis-Glineur rule ``1 + inner_alpha * (1 + other_dim / (k + 1))``
        for HALS, 1 for MU.
    inner_alpha : float > 0, default 0.5
        Factor of that rule.
    inner_tol : float >= 0, default 0.1
        HALS inner sweeps stop when a sweep changes the factor by less than
        ``inner_tol`` times the change of the first sweep.
    eps : float or None
        MU denominator guard, relative: an update adds ``eps`` times the
        largest |entry| of its cross product (``A V^T`` for U) to the
        denominator, so MU's iterates do not depend on the data's scale;
        default ``finfo(dtype).eps``.
    l1, l2 : float >= 0 or pair (for U, for V), default 0
        Penalties: the objective becomes ``0.5 ||A - U V||_F^2 + l1_U sum(U)
        + l1_V sum(V) + 0.5 l2_U ||U||_F^2 + 0.5 l2_V ||V||_F^2`` (a float
        weights both factors alike). l1 makes factors sparse, l2 shrinks
        them. Each block update stays exact: the HALS sweeps see ``l2`` on
        the Gram matrix's diagonal and ``l1`` subtracted from the cross
        product (as scikit-learn's coordinate descent does; its
        ``alpha_W * l1_ratio * n_features`` is ``l1_U`` for ``A = X``), MU
        adds ``l1 + l2 X`` to its denominator. The stopping rule, the
        extrapolation's restarts and its best point then follow the
        penalized objective (``info["objective"]``, one value per entry
        of ``errors``), while ``errors`` stays the relative reconstruction
        error of those points. The absolute scale matters: ``sum(U)``
        grows with m and ``||A - U V||^2`` with the data. A penalty on one
        factor alone is met mostly by rescaling (``U D``, ``D^-1 V``):
        penalize both to shape both.
    loss : {"frobenius", "kl"}, default "frobenius"
        ``"kl"``: minimise ``D(A || U V) = sum A log(A / UV) - A + UV``
        (the Poisson likelihood of counts; scikit-learn's
        ``beta_loss="kullback-leibler"``) by Lee & Seung's multiplicative
        updates; needs ``solver="mu"`` (and no extrapolation). Dense A: four
        m x n x k GEMMs and two fused ratio passes per iteration (a data-
        sized work buffer, allocated once); sparse A: two fused O(nnz k)
        passes, never an m x n array. ``errors`` then holds ``D / sum(A)``
        at the start, every ``check_every`` iterations and at the end
        (``info["iterations"]`` names them; ``info["objective"]`` is D plus
        the penalties, in D's units), and ``tol`` compares the objective
        between those evaluations. ``eps`` also bounds the model below
        (``eps`` times A's largest entry) where it divides A.
    check_every : int >= 1, default 10
        ``loss="kl"`` only: iterations between evaluations of the
        objective. On dense data its log per positive entry costs about as
        much as an iteration's GEMMs (scikit-learn also checks every 10);
        the evaluation rides on the next update's ratio pass.
    dtype : {None, numpy.float32, numpy.float64}
        Working dtype; default: that of A (float64 for integer input).
    comm : mpi4py communicator or None, default None
        Data-parallel run: every process passes its own block of columns
        (samples) of the full matrix as ``A`` (m, n_p), possibly empty, the
        same ``rank`` and options and the same ``random_state``. Every
        process gets the same ``U`` and its own columns of ``V``, equal (to
        rounding) to a one-process run on the whole matrix. One allreduce
        of an (m + k) x k matrix per U-step, one of k^2 + 1 numbers per
        error evaluation. None: one process.

    Returns
    -------
    FactorizationResult
        ``U`` (m, k), ``V`` (k, n), ``n_iter``, ``errors`` (relative Frobenius
        error per iteration, ``errors[0]`` at the initial point), ``times``.
        ``info``: for HALS ``"inner_sweeps"`` (sweeps run on U, on V, over
        all iterations); with extrapolation ``"restarts"`` and the final
        ``"beta"``.

    Notes
    -----
    Per iteration the GEMM work is ``A @ V^T``, ``A^T @ U`` (2 m n k flops
    each; 2 nnz k for sparse A, in a compiled gather) and two Gram
    matrices; the sweeps cost O((m + n) k^2) each. The error is computed
    from those products at O((m + n) k) extra cost.
    """
    comm = as_comm(comm)
    with collective(comm):
        A = check_data(A, "A", nonnegative=True, dtype=dtype,
                       allow_empty_columns=comm.size > 1)
        k = check_rank(rank)
        check_choice(solver, "solver", SOLVERS)
        max_iter, tol, n_inner, inner_alpha, inner_tol, eps = _check_iteration_options(
            A.dtype, max_iter, tol, n_inner, inner_alpha, inner_tol, eps)
        l1, l2 = check_penalty(l1, "l1"), check_penalty(l2, "l2")
        check_choice(loss, "loss", LOSSES)
        check_every = check_int(check_every, "check_every", minimum=1)
        if loss == "kl":
            if solver != "mu":
                raise ValueError(f"loss='kl' needs solver='mu' (multiplicative updates), "
                                 f"got solver={solver!r}")
            if extrapolate:
                raise ValueError("extrapolate=True is not available with loss='kl'")
            if n_inner not in (None, 1):
                raise ValueError(f"loss='kl' runs one update per block: n_inner must be None "
                                 f"or 1, got {n_inner!r}")
            extrapolate = False
        if extrapolate is None:
            # (with penalties the projected extrapolation zeroed whole
            # components, which then stay at 0: README "Penalized NMF")
            extrapolate = solver == "hals" and not any(l1 + l2)
        elif not isinstance(extrapolate, (bool, np.bool_)):
            raise TypeError(f"extrapolate must be True, False or None, got {extrapolate!r}")
        elif extrapolate and solver == "mu":
            # The projected extrapolation sets entries to exactly 0, and a
            # multiplicative update can never move an entry off 0: whole factors
            # lock at zero (seen on digits from the nndsvda start).
            raise ValueError("extrapolate=True is only available with solver='hals'")
        check_random_state(random_state, build=False)
        init = _check_init(A, k, init, True, comm)
    N = check_distributed(comm, A)
    U, Vt = _start(A, k, init, random_state, comm)
    if loss == "kl":
        return kl_nmf_loop(A, U, Vt, max_iter=max_iter, tol=tol, eps=eps,
                           check_every=check_every, l1=l1, l2=l2, comm=comm)
    return _nmf_loop(A, U, Vt, solver=solver, max_iter=max_iter, tol=tol, n_inner=n_inner,
                     inner_alpha=inner_alpha, inner_tol=inner_tol, eps=eps,
                     extrapolate=bool(extrapolate), l1=l1, l2=l2, comm=comm, n_total=N)


# Ang & Gillis (2019) defaults: initial beta, its cut on a restart, its
# growth while the error decreases, and the growth of its cap.
_BETA0, _ETA, _GAMMA, _GAMMA_BAR = 0.5, 1.5, 1.05, 1.01


def _nmf_loop(A, U, Vt, *, solver, max_iter, tol, n_inner, inner_alpha, inner_tol, eps,
              extrapolate, l1=(0.0, 0.0), l2=(0.0, 0.0), comm=SERIAL, n_total=None):
    """Alternating block updates; the factors passed in are the starting point.

    Plain: U <- update(U; V), V <- update(V; U). With extrapolation, the
    "hat" factors are the extrapolated points each block starts from (and
    the fixed factor of the other block); "cur" are the plain iterates.
    Work buffers are allocated here, once; the loop allocates only k x k.
    With ``comm`` the columns of A are split across processes (``n_total``
    in all): U-steps reduce ``[A V^T; V V^T]``, errors ``[V V^T, <V, A^T U>]``.

    Decisions (stopping, restarts, the best point) read ``obj``, the
    penalized objective as an error, ``sqrt(2 objective) / ||A||``: without
    penalties that is the relative error itself, bit for bit.
    """
    m, n = A.shape
    N = n if n_total is None else n_total
    k = U.shape[1]
    dt = A.dtype
    CUG = B.cross_gram_buffer(m, k, dt)
    CU, GV = CUG[:m], CUG[m:]     # A V^T and V V^T, summed over processes
    CV = np.empty((n, k), dt)
    GU = np.empty((k, k), dt)
    ebuf = np.empty(k * k + 1)    # error reduction (float64)
    sweeps = [0, 0]               # inner HALS sweeps run on U and on V
    pen = Penalty(l1, l2, comm)
    # V's cross product is read again by the error after its step: its
    # l1-shifted copy goes to a buffer of its own.
    CVl1 = np.empty((n, k), dt) if pen.l1v else None
    if solver == "mu":
        DU, DV = np.empty((m, k), dt), np.empty((n, k), dt)
        cap_u = cap_v = 1 if n_inner is None else n_inner

        def update_u(X):    # CU is summed over processes already
            guard = B.mu_guard(eps, CU)   # l1 joins it in the denominator
            B.nnls_mu_nmf_(X, CU, pen.gram(GV, pen.l2u), DU, cap_u, guard + pen.l1u)

        def update_v(X):
            guard = B.mu_guard(eps, CV, comm)
            B.nnls_mu_nmf_(X, CV, pen.gram(GU, pen.l2v), DV, cap_v, guard + pen.l1v)
    else:
        cols, rows = _cross_dims(A, N, comm)
        cap_u = _inner_cap(n_inner, cols, k, inner_alpha)
        cap_v = _inner_cap(n_inner, rows, k, inner_alpha)

        def update_u(X):   # U is the same on every process: no communication
            # (CU is not read again before the next U-step recomputes it)
            sweeps[0] += B.nnls_hals_(X, pen.cross_(CU, pen.l1u), pen.gram(GV, pen.l2u),
                                      cap_u, inner_tol)

        def update_v(X):   # rows of Vt are split: the stopping test is global
            sweeps[1] += B.nnls_hals_(X, pen.cross_(CV, pen.l1v, CVl1), pen.gram(GU, pen.l2v),
                                      cap_v, inner_tol, comm)

    def as_error(sq, penalty):
        """(relative error, objective as an error) of a point."""
        err = np.sqrt(sq) / normA
        return err, (err if not pen.active else np.sqrt(sq + 2.0 * penalty) / normA)

    t0 = time.perf_counter()
    normA2 = comm.sum(B.sq_norm(A))
    normA = np.sqrt(normA2) if normA2 > 0 else 1.0
    # Initial error, from products the first U-step needs anyway.
    B.cross_and_gram_(A, Vt, CUG, comm)
    B.gram(U, out=GU)
    err, obj = as_error(B.linear_sq_error(normA2, U, CU, GV, GU), pen.value(U, GU, Vt, GV))
    errors, objs = [err], [obj]
    times = [time.perf_counter() - t0]
    converged = False

    if extrapolate:
        # hat: extrapolated points (each block update starts from, and
        # updates in place, its hat); cur: plain iterates.
        Uh, Vh = U, Vt
        Uc, Vc = U.copy(), Vt.copy()
        Ub, Vb = U.copy(), Vt.copy()          # best point so far
        GVc = np.empty((k, k), dt)
        beta, beta_cap = _BETA0, 1.0
        ref_obj = objs[0]
        restarts = 0
    for it in range(1, max_iter + 1):
        if not extrapolate:
            if it > 1:   # GV is already the reduced Gram of the error step
                B.cross_and_gram_(A, Vt, CUG, comm, with_gram=False)
            update_u(U)
            B.data_matmul_(A.T, U, CV)
            B.gram(U, out=GU)
            update_v(Vt)
            sq = B.reduced_sq_error_(normA2, Vt, CV, GU, GV, ebuf, comm)
            err, obj = as_error(sq, pen.value(U, GU, Vt, GV))
            errors.append(err)
            objs.append(obj)
        else:
            if it > 1:
                B.cross_and_gram_(A, Vh, CUG, comm)
            update_u(Uh)                            # Uh: the new plain iterate
            K.extrapolate_(Uc, Uh, beta)            # Uc <- max(0, Uh + beta (Uh - Uc))
            Uh, Uc = Uc, Uh
            B.data_matmul_(A.T, Uh, CV)
            B.gram(Uh, out=GU)
            update_v(Vh)
            K.extrapolate_(Vc, Vh, beta)
            Vh, Vc = Vc, Vh
            # Error of (Uh, Vc): the pair the V-step's products describe.
            sq = B.reduced_sq_error_(normA2, Vc, CV, GU, GVc, ebuf, comm)
            err, obj = as_error(sq, pen.value(Uh, GU, Vc, GVc))
            if obj > ref_obj:                       # restart from the plain iterates
                np.copyto(Uh, Uc)
                np.copyto(Vh, Vc)
                beta_cap, beta = beta, beta / _ETA
                restarts += 1
            else:
                beta, beta_cap = min(beta_cap, _GAMMA * beta), min(1.0, _GAMMA_BAR * beta_cap)
                ref_obj = obj
            # Accepted objectives never increase, so ref_obj is the best so
            # far and a restart is never a new best: Uh is still the point used.
            if obj < objs[-1]:
                np.copyto(Ub, Uh)
                np.copyto(Vb, Vc)
                errors.append(err)
                objs.append(obj)
            else:
                errors.append(errors[-1])
                objs.append(objs[-1])
        times.append(time.perf_counter() - t0)
        # A restart shows no progress by design; judge only plain/accepted steps.
        if tol > 0 and objs[-2] - objs[-1] < tol * objs[-1] and \
                not (extrapolate and obj > ref_obj):
            converged = True
            break
    info = {"inner_sweeps": tuple(sweeps)} if solver == "hals" else {}
    if extrapolate:
        U, Vt = Ub, Vb
        info.update(restarts=restarts, beta=beta)
    if pen.active:   # (objective as an error -> the objective itself)
        info["objective"] = 0.5 * (np.asarray(objs) * normA) ** 2
    return FactorizationResult(
        U=U, V=Vt.T, n_iter=len(errors) - 1, errors=np.asarray(errors), times=np.asarray(times),
        converged=converged, solver=f"nmf-{solver}" + ("-extrapolated" if extrapolate else ""),
        info=info,
    )
