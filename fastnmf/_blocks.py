"""Block updates shared by every solver (internal).

Layout: data ``A`` (m, n) in C or F order; left factor ``U`` (m, k) and the
*transposed* right factor ``Vt = V.T`` (n, k), both C-contiguous. With that
layout both factors are "tall" matrices whose rows are independent in their
own step, which is what the row kernels parallelise over, and both
cross products are plain GEMMs: ``A @ Vt`` (m, k) and ``A.T @ U`` (n, k).

Each function documents the GEMMs it issues; everything else it does is a
fused O(p k) or O(p k^2) kernel. Work buffers are passed in: nothing here
allocates an array with m or n in its shape (the two buffer helpers aside,
which take them from the active workspace when given a slot).

Data parallelism (``comm``, :mod:`fastnmf._comm`): the columns of ``A``
(samples, the rows of ``Vt``) may be split across processes. The left
(U) steps need sums over all samples; each gets them with one in-place
allreduce of one contiguous ``(m + k, k)`` buffer ``EG`` holding the cross
product ``A V^T`` (rows ``:m``) and the Gram matrix ``V V^T`` (rows
``m:``). Right (V) steps are row-local in ``Vt`` and communicate only the
scalar that stops their inner sweeps. With ``comm = SERIAL`` every
reduction is a no-op: one implementation for both.
"""
from __future__ import annotations

import numpy as np

from . import _kernels as K
from ._hals_dispatch import hals_sweeps as _hals_sweeps_cy
from ._hals_dispatch import hals_update_rows as _hals_cy
from ._comm import SERIAL
from ._workspace import scratch
from ._linalg import (gram, matmul_into, pinv_factor_into, ridge_inverse,  # noqa: F401 (gram)
                      ridge_solve_right_into)
from ._threads import get_num_threads
from ._sparse import SparseData
from ._sparse import dense_matmul_into as _dense_sparse_matmul_into
from ._sparse import matmul_into as _sparse_matmul_into


def hals_sweep_(X, C, G) -> float:
    """One HALS/coordinate-descent sweep over the rows of X (tiled Cython, OpenMP)."""
    return _hals_cy(X, C, G, get_num_threads())


def nnls_hals_(X, C, G, max_sweeps: int, inner_tol: float, comm=SERIAL) -> int:
    """Nonnegative LS ``min_{X>=0} 0.5 tr(X G X^T) - tr(C X^T)`` by HALS sweeps.

    Runs up to ``max_sweeps`` sweeps and stops once a sweep changes X by less
    than ``inner_tol`` times the change of the first sweep (Gillis & Glineur
    2012). Each sweep does not increase the objective. Returns sweeps run.

    When the rows of X are split across processes (``comm.size > 1``) the
    stopping test must see the change of all rows: the same loop then runs
    in Python, one sweep per kernel call and one scalar allreduce per sweep.
    One process keeps the whole loop in C (a Python round trip per sweep
    costs more than a small sweep).
    """
    if comm.size == 1:
        return _hals_sweeps_cy(X, C, G, max_sweeps, inner_tol, get_num_threads())
    if max_sweeps < 1 or X.shape[1] == 0:
        return 0
    first = comm.sum(_hals_cy(X, C, G, get_num_threads()))
    done = 1
    while done < max_sweeps:
        delta = comm.sum(_hals_cy(X, C, G, get_num_threads()))
        done += 1
        if delta <= inner_tol * first:
            break
    return done


def cross_gram_buffer(m: int, k: int, dtype, slot: int = None) -> np.ndarray:
    """The ``(m + k, k)`` work buffer of a left step: ``A V^T`` over ``V V^T``
    (with ``slot``: from the active workspace, ``_workspace.scratch``)."""
    if slot is None:
        return np.empty((m + k, k), dtype)
    return scratch(slot, (m + k, k), dtype)


def gram_trace(G) -> float:
    """``trace(G)`` accumulated in float64 (``||V||_F^2`` for ``G = V V^T``)."""
    return float(np.trace(G, dtype=np.float64))


def data_matmul_(A, X, out):
    """``out[...] = A @ X`` for the data A, dense (BLAS) or sparse
    (:class:`fastnmf._sparse.SparseData`, O(nnz k)); X (p, k) and out
    C-contiguous. Pass ``A.T`` for the transposed product. Returns out."""
    if isinstance(A, SparseData):
        return _sparse_matmul_into(out, A, X)
    return np.matmul(A, X, out=out)


def cross_and_gram_(A, Vt, EG, comm=SERIAL, with_gram: bool = True):
    """``EG[:m] = A @ Vt`` and (``with_gram``) ``EG[m:] = Vt.T @ Vt``, summed
    over the processes in one allreduce. Returns the two views (E, G).

    GEMMs: m x n x k and k x n x k. A sparse Vt (a sparse fixed factor,
    :class:`SparseData`, with A dense) takes O(m nnz) and O(sum of
    squared row counts) compiled products instead.
    """
    m = A.shape[0]
    E, G = EG[:m], EG[m:]
    if isinstance(Vt, SparseData):
        _dense_sparse_matmul_into(E, A, Vt)
        if with_gram:
            Vt.gram(out=G)
    else:
        data_matmul_(A, Vt, E)
        if with_gram:
            gram(Vt, out=G)
    if with_gram:
        comm.sum_(EG)
    else:
        comm.sum_(E)
    return E, G


def mu_guard(eps: float, C, comm=SERIAL) -> float:
    """The denominator guard of a multiplicative update whose numerator is
    built from C (the cross product, e.g. ``A V^T``): ``eps`` times the
    largest |entry| of C over all processes, at least the dtype's smallest
    normal number.

    Relative, so that the update does not depend on the data's scale: the
    numerator and the denominator scale together, an absolute guard does
    not (with ``eps`` itself as the guard, float32 data whose entries were
    ~1e-6 drove MU to all-zero factors, relative error 0.9994 where 1e-2
    data reached 0.42). One read of C, O(p k) beside the update's
    p x k x k GEMMs.
    """
    cmax = K.abs_max(C)
    if comm.size > 1:
        cmax = max(comm.allgather(cmax))
    return max(eps * cmax, float(np.finfo(C.dtype).tiny))


def nnls_mu_nmf_(X, C, G, D, n_updates: int, eps: float) -> None:
    """Lee-Seung multiplicative updates of X >= 0 for C >= 0, G >= 0.

    GEMMs: ``D = X @ G`` (p x k x k) per update.
    """
    for _ in range(n_updates):
        np.matmul(X, G, out=D)
        K.mu_nmf_update_(X, C, D, eps)


def nnls_mu_semi_(X, C, G, DP, DM, n_updates: int, eps: float, factor=None,
                  shift: float = 0.0) -> None:
    """Ding-Li-Jordan multiplicative updates of X >= 0 (C and G of any sign).

    GEMMs: ``DP = X @ G+`` and ``DM = X @ G-`` (p x k x k) per update.

    ``factor`` F (r, k) with ``G = F^T F + shift I``, for a caller that has
    such an F with r small (``nnls``: when 4 r <= k): ``X G+`` is then
    formed as ``X G + X G- = (X F^T) F + shift X + X G-``, so the update
    costs one p x k x (r + k) GEMM ``[X F^T | X G-] = X [F^T | G-]`` into
    DM, which must then be (p, r + k), with ``T F`` fused into the
    update's pass (``_kernels.mu_semi_update_lowrank_``), instead of two
    p x k x k GEMMs; DP is then not used (may be None). The same update, a
    different rounding. (The network trainer's output target step has
    r = 10 classes and k = 500 hidden units.)
    """
    Gp = np.maximum(G, 0)
    Gm = Gp - G
    Xu = K.unit_rows(X)    # a column slice (fixed ones row) as a contiguous view
    if factor is not None:
        F = np.ascontiguousarray(factor)
        r = F.shape[0]
        FG = np.empty((G.shape[0], r + G.shape[1]), G.dtype)
        FG[:, :r] = F.T
        FG[:, r:] = Gm
        gdiag = np.ascontiguousarray(np.diagonal(Gp))
        for _ in range(n_updates):
            np.matmul(X, FG, out=DM)
            K.mu_semi_update_lowrank_(Xu, C, DM, F, gdiag, shift, eps)
        return
    for _ in range(n_updates):
        np.matmul(X, Gp, out=DP)
        np.matmul(X, Gm, out=DM)
        K.mu_semi_update_(Xu, C, DP, DM, eps)


def ridge_update_left_(A, Vt, U, EG, alpha: float, U0=None, prox: float = 0.0,
                       comm=SERIAL, gram_V=None, alpha_trace: float = 0.0) -> None:
    """``U <- A V^T (V V^T + alpha I)^{-1}`` written into U (m, k); with
    ``U0``: ``(A V^T + prox U0) (V V^T + (alpha + prox) I)^{-1}``.
    ``alpha_trace``: alpha grows by ``alpha_trace * trace(V V^T)``.

    ``EG`` (m + k, k) is the work buffer of :func:`cross_and_gram_` (one
    allreduce with ``comm``). ``gram_V``: the caller's ``Vt.T @ Vt`` (summed
    over processes) when it already has it, e.g. from the previous error
    evaluation; it is then not recomputed.
    GEMMs: ``Vt.T @ Vt`` (k x n x k, unless given), ``E = A @ Vt``
    (m x n x k), then ``U = E @ inv`` (m x k x k), or for few rows m two
    triangular solves per row instead (``ridge_solve_right_into``); one
    k x k Cholesky.
    (Forming ``V^+ = V^T (V V^T + aI)^{-1}`` first would cost another
    n x k x k GEMM.)
    """
    E, G = cross_and_gram_(A, Vt, EG, comm, with_gram=gram_V is None)
    if gram_V is not None:
        G = gram_V
    if alpha_trace:
        alpha = alpha + alpha_trace * gram_trace(G)
    if U0 is not None:
        E += Vt.dtype.type(prox) * U0
    ridge_solve_right_into(U, E, G, alpha + prox)


def _order(A) -> str:
    """A's memory order: "C" or "F"; a padded layout (``H[:, :k]`` is "C",
    its transpose "F") by its unit-stride axis."""
    if A.flags.c_contiguous:
        return "C"
    if A.flags.f_contiguous:
        return "F"
    return "F" if A.strides[0] == A.itemsize else "C"


def same_order(P, A) -> bool:
    """Whether P can serve as A's model buffer: contiguous in A's memory
    order (what :func:`model_buffer` returns)."""
    return P.flags.c_contiguous if _order(A) == "C" else P.flags.f_contiguous


def model_buffer(A, slot: int = None):
    """An uninitialised work buffer shaped like A in A's memory order (C or F),
    so the fused residual pass walks A and the buffer in step (with
    ``slot``: from the active workspace, ``_workspace.scratch``)."""
    order = _order(A)
    if slot is not None:
        return scratch(slot, A.shape, A.dtype, order)
    return np.empty(A.shape, A.dtype, order=order)


def model_into_(P, U, Vt) -> None:
    """``P <- U @ Vt.T`` in P's own memory order (P matches A's order);
    Vt may be sparse (:class:`SparseData`: O(m nnz))."""
    if isinstance(Vt, SparseData):
        _dense_sparse_matmul_into(P, U, Vt.T)
    else:
        matmul_into(P, U, Vt.T)


# The residual passes walk P (a model buffer in A's order, see
# model_buffer) and A in step; A may also be padded (a column slice of a
# wider buffer: the trainer's hidden targets, H[:, :k] of its (N, k + 1)
# activations), which K.unit_rows hands to the kernel as the C-contiguous
# (rows, leading dimension) view: the kernels take their extent from P.
def relu_residual_(P, A) -> float:
    """``P <- A - relu(P)`` in place; returns ``||P||_F^2``."""
    if P.flags.c_contiguous:
        return K.relu_residual_(P, K.unit_rows(A))
    return K.relu_residual_(P.T, K.unit_rows(A.T))


def relu_residual_norms_(P, A):
    """``P <- A - relu(P)`` in place; returns ``(||P||_F^2, ||A||_F^2)``."""
    if P.flags.c_contiguous:
        return K.relu_residual_norms_(P, K.unit_rows(A))
    return K.relu_residual_norms_(P.T, K.unit_rows(A.T))


def linear_residual_(P, A) -> float:
    """``P <- A - P`` in place; returns ``||P||_F^2``."""
    if P.flags.c_contiguous:
        return K.linear_residual_(P, K.unit_rows(A))
    return K.linear_residual_(P.T, K.unit_rows(A.T))


def relu_update_left_(A, U, Vt, P, D, EG, alpha: float, omega: float, n_iter: int,
                      errs: list, residual_ready: bool = False, gram_V=None,
                      l2: float = 0.0, l2_trace: float = 0.0, comm=SERIAL) -> None:
    """Fixed-point iterations ``U <- U + omega R V^+`` for ``A ~ relu(U V)``.

    ``V^+ = V^T (V V^T + alpha I)^{-1}`` is applied as ``(R V^T) inv``: the
    Gram matrix of the fixed factor is factored once per block, and V^+
    itself (an n x k x k GEMM) is never formed. Appends ``||R||^2`` of the
    point entering each iteration to ``errs``. ``residual_ready``: P
    already holds the residual of the current point. ``gram_V``: the
    caller's ``Vt.T @ Vt`` when it already has it (summed over processes),
    as a :class:`fastnmf.FixedGram` (which keeps its inverse per shift).
    D is (m, k), EG the (m + k, k) buffer of :func:`cross_and_gram_`: one
    allreduce per iteration (the first also carries the Gram matrix).
    ``errs`` gets this process's part of each ``||R||^2``.
    ``l2``: weight decay, the step becomes
    ``(R V^T - l2 U) (V V^T + (alpha + l2) I)^{-1}`` (the minimiser of the
    linearised ``||R - dU V||^2 + l2 ||U + dU||^2 + alpha ||dU||^2``);
    ``l2_trace``: l2 grows by ``l2_trace * trace(V V^T)``.
    GEMMs per iteration: ``P = U @ Vt.T`` (m x k x n), ``E = R @ Vt``
    (m x n x k), ``D = E @ inv`` (m x k x k); plus one fused residual pass
    over P and a fused axpy; the first iteration also ``Vt.T @ Vt``.
    """
    inv = None
    implicit = hasattr(gram_V, "solve_right_into")   # an ImplicitGram: CG, no inverse
    for it in range(n_iter):
        if it or not residual_ready:
            model_into_(P, U, Vt)
            errs.append(relu_residual_(P, A))
        E, G = cross_and_gram_(P, Vt, EG, comm, with_gram=(it == 0 and gram_V is None))
        if it == 0:
            if l2_trace:
                l2 = l2 + l2_trace * (gram_trace(G) if gram_V is None else gram_V.trace)
            # a FixedGram keeps its inverse for this shift
            inv = (ridge_inverse(G, alpha + l2, Vt.dtype) if gram_V is None
                   else None if implicit else gram_V.inverse(alpha + l2, Vt.dtype))
        if l2:
            E -= Vt.dtype.type(l2) * U
        if implicit:
            gram_V.solve_right_into(D, E, alpha + l2)
        else:
            np.matmul(E, inv, out=D)
        K.add_scaled_(U, D, omega)


def relu_update_right_(A, U, Vt, P, S, M, alpha: float, omega: float, n_iter: int, errs: list,
                       fixed_last_row: bool, residual_ready: bool = False,
                       step_at_zero: float = 1.0, linear: bool = False) -> None:
    """Projected fixed-point iterations ``V <- max(0, V + omega U^+ R)``.

    ``R = A - relu(U V)``; with ``linear`` ``R = A - U V``: then these are
    projected Gauss-Newton steps for the linear model (``nnls(solver="pgn")``;
    for m << k, a network's output layer, O(n m k) per step where an MU
    update or a HALS sweep costs O(n k^2)).

    ``step_at_zero`` < 1 scales the step of the entries of V that are 0 at
    the start of an iteration (:func:`fastnmf.relu_lstsq`).

    ``U^+ = (U^T U + alpha I)^{-1} U^T``; ``M`` (m, kf) receives its
    transpose once per block. With ``fixed_last_row`` the last row of V
    (last column of Vt; ones for a bias input) is never touched: the
    step uses only the first kf = k - 1 columns of U and their Gram matrix;
    S and M then have kf columns.
    GEMMs per iteration: ``P = U @ Vt.T`` (m x k x n), ``S = R.T @ M``
    (n x m x kf); plus one fused residual pass and a fused clip.
    """
    kf = S.shape[1]
    Uf = U[:, :kf] if fixed_last_row else U
    X = Vt[:, :kf] if fixed_last_row else Vt
    pinv_factor_into(M, Uf, alpha)
    Xu = K.unit_rows(X)    # the column slice as a contiguous view (vectorised kernel)
    residual_ = linear_residual_ if linear else relu_residual_
    for it in range(n_iter):
        if it or not residual_ready:
            model_into_(P, U, Vt)
            errs.append(residual_(P, A))
        np.matmul(P.T, M, out=S)
        if step_at_zero == 1.0:
            K.clip_add_(Xu, S, omega)
        else:
            K.clip_add_at_zero_(Xu, S, omega, step_at_zero)


def sq_norm(A) -> float:
    """``||A||_F^2`` in float64, for C or F ordered A (or sparse data)."""
    if isinstance(A, SparseData):
        return A.sq_norm()
    return K.dot64(A, A) if A.flags.c_contiguous else K.dot64(A.T, A.T)


def linear_sq_error(normA2: float, Vt, CV, GU, GV) -> float:
    """``||A - U V||_F^2`` from quantities the V-step already has.

    ``CV = A.T @ U``, ``GU = U.T @ U``, ``GV = Vt.T @ Vt``:
    ``||A||^2 - 2 <Vt, CV> + <GU, GV>``, O(n k + k^2), clipped at 0.
    """
    return _sq_error(normA2, K.dot64(Vt, CV), GU, GV)


def _sq_error(normA2: float, cross: float, GU, GV) -> float:
    """``||A||^2 - 2 <V^T, A^T U> + <U^T U, V V^T>``, clipped at 0 (rounding)."""
    val = normA2 - 2.0 * float(cross) + float(np.vdot(GU.astype(np.float64), GV))
    return max(val, 0.0)


def reduced_sq_error_(normA2: float, Vt, CV, GU, GV, buf, comm=SERIAL) -> float:
    """``||A - U V||_F^2`` after a V-step, with the rows of Vt split.

    Writes the Gram matrix ``Vt.T @ Vt`` summed over processes into GV
    (k x k) and reduces it together with ``<Vt, CV>`` (``CV = A^T U``) in
    one allreduce of the float64 buffer ``buf`` (k^2 + 1); then the error as
    in :func:`linear_sq_error` (GU is the same on every process).
    GEMMs: ``Vt.T @ Vt`` (k x n x k).
    """
    k = GV.shape[0]
    gram(Vt, out=GV)
    buf[: k * k] = GV.reshape(-1)
    buf[-1] = K.dot64(Vt, CV)
    comm.sum_(buf)
    GV[...] = buf[: k * k].reshape(k, k)
    return _sq_error(normA2, buf[-1], GU, GV)
