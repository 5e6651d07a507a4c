"""Small dense linear algebra: Gram matrices, ridge Cholesky, in-place solves.

The factorizations only ever factor k x k Gram matrices (k = rank), never
the wide N-column data: O(k^3) per factorization, negligible when N >> k.
The factorization is done in float64 (cheap at k x k, and float32 Gram
matrices of nearly collinear factors lose definiteness); applying the
inverse to a p x k factor is one GEMM in the working dtype.
"""
from __future__ import annotations

import numpy as np

from ._comm import SERIAL
from ._kernels import (abs_max, cholesky_inverse_factor_, cholesky_solve_rows_,
                       lower_tri_inverse_, ridge_inverse_small_)

#: Largest k for the compiled fast path of ridge_inverse. Above it the
#: route through numpy's Cholesky is faster: at k = 48 it takes 33 us
#: against 43 us (k = 32: 23 vs 15 us; k = 101: 95 vs 365 us).
_SMALL_K = 32


def matmul_into(out, a, b):
    """``out[...] = a @ b`` through BLAS, writing into ``out`` (C or F order)."""
    if out.flags.c_contiguous:
        np.matmul(a, b, out=out)
    else:  # F-ordered output: compute the transposed product into out.T (C)
        np.matmul(b.T, a.T, out=out.T)
    return out


#: numpy computes ``X.T @ X`` by BLAS SYRK. OpenBLAS 0.3.31's threaded
#: SYRK with its SkylakeX (AVX-512) kernels crashes the process (segmentation
#: fault) for large outputs: session 26, 2 threads, AVX-512 EPYC, k x k
#: from (p, k) = (2048, 16000) and (256, 20001) crashed; (2048, 14000),
#: (512, 16000), (128, 20001) passed; the same GEMMs on two distinct
#: operands passed at (2048, 20001). Above this order :func:`gram` takes
#: GEMMs by block rows of this height instead (the lower triangle,
#: mirrored: the same multiply-adds as SYRK).
_GRAM_BLOCK = 4096


def gram(X, out=None):
    """``X.T @ X`` for X (p, k); returns (k, k) in X's dtype."""
    k = X.shape[1]
    if k <= _GRAM_BLOCK:
        return np.matmul(X.T, X, out=out)
    if out is None:
        out = np.empty((k, k), dtype=X.dtype)
    for i0 in range(0, k, _GRAM_BLOCK):
        i1 = min(i0 + _GRAM_BLOCK, k)
        np.matmul(X[:, i0:i1].T, X[:, :i1], out=out[i0:i1, :i1])
        out[:i0, i0:i1] = out[i0:i1, :i0].T
        D = out[i0:i1, i0:i1]                       # exactly symmetric, as SYRK's
        upper = np.triu_indices(i1 - i0, 1)
        D[upper] = D.T[upper]
    return out


#: Orders above this are factored by :func:`blocked_cholesky` (numpy's
#: Cholesky on diagonal blocks of ``_CHOL_PANEL``, the rest GEMMs)
#: instead of one LAPACK ``dpotrf``: OpenBLAS 0.3.31's threaded ``dpotrf``
#: with its SkylakeX (AVX-512) kernels crashes the process from order
#: about 16000 on 2 threads (segmentation fault, in its SYRK: see
#: ``_GRAM_BLOCK``; 12000 passes, 1 thread passes, Haswell kernels pass;
#: numpy's and scipy's bundled builds alike), which a network's first
#: layer on an input 16000 wide reached.
_CHOL_BLOCK = 4096
#: blocked_cholesky's block order. Session 26, 2 threads, AVX-512 EPYC,
#: order 12000: LAPACK 12.1 s; blocks of 4096 / 2048 / 1024 13.9 / 12.1 /
#: 11.8 s (relative residual 1.4e-15 against LAPACK's 0.9e-15).
_CHOL_PANEL = 2048


def blocked_cholesky(A, block: int = _CHOL_PANEL) -> np.ndarray:
    """Lower Cholesky factor of the SPD float64 matrix A (k, k), computed in
    place in A (its upper triangle is zeroed); returns A.

    Right-looking, by block columns of ``block``: the diagonal block by
    ``np.linalg.cholesky``, the panel below it by a GEMM with the
    diagonal factor's inverse (:func:`lower_tri_inverse`), and the
    trailing lower triangle updated one block column at a time (GEMMs of
    only the rows on and below the diagonal: k^3 / 3 multiply-adds in
    all, as ``dpotrf``). Raises ``np.linalg.LinAlgError`` when a diagonal
    block is not positive definite.
    """
    k = A.shape[0]
    for j0 in range(0, k, block):
        j1 = min(j0 + block, k)
        L = np.linalg.cholesky(A[j0:j1, j0:j1])     # zeros above its diagonal
        A[j0:j1, j0:j1] = L
        if j1 == k:
            break
        A[j0:j1, j1:] = 0.0                          # the upper triangle, by block rows
        Linv = lower_tri_inverse(L, np.empty_like(L))
        P = A[j1:, j0:j1] @ Linv.T                  # the panel: A_ij L_jj^{-T}
        A[j1:, j0:j1] = P
        for c0 in range(j1, k, block):               # A_cc... -= P_c P_c^T, lower part
            c1 = min(c0 + block, k)
            A[c0:, c0:c1] -= P[c0 - j1:] @ P[c0 - j1:c1 - j1].T
    return A


def _cholesky(A) -> np.ndarray:
    """``np.linalg.cholesky`` of a float64 matrix, blocked above
    ``_CHOL_BLOCK`` (see there why); A is not modified."""
    if A.shape[0] <= _CHOL_BLOCK:
        return np.linalg.cholesky(A)
    return blocked_cholesky(np.array(A, dtype=np.float64, order="C"))


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
        L = _cholesky(G64)
        if np.isfinite(L).all():
            return L
    except np.linalg.LinAlgError:
        pass
    mean_diag = float(np.trace(G64)) / k
    if not mean_diag > 0.0:
        # All-zero Gram matrix (every component dead, e.g. all-zero data):
        # the factor it belongs to is zero, so any SPD factor gives the same
        # (zero) solution. The identity keeps the inverse representable: the
        # tiny-shift route below gives 1/tau ~ 1e169, which overflows to Inf
        # in float32 and then turns 0 * Inf into NaN.
        return np.eye(k)
    scale = max(mean_diag, np.finfo(np.float64).tiny ** 0.5)
    tau = np.finfo(np.float64).eps * scale
    for _ in range(20):
        H = G64.copy()
        H.flat[:: k + 1] += tau
        try:
            L = _cholesky(H)
            if np.isfinite(L).all():
                return L
        except np.linalg.LinAlgError:
            pass
        tau *= 10.0
    # A Gram matrix that is all zeros (every component dead): identity.
    return np.sqrt(scale) * np.eye(k)


#: ``lower_tri_inverse`` inverts blocks up to this order with the compiled
#: row-oriented kernel and splits larger ones. Session 17, 2 threads (AMD
#: EPYC, AVX2), kernel alone against blocks of at most 64 / 128 / 256:
#: k = 200 0.24 ms against 0.36 / 0.35 / 0.27; k = 501 6.7 against
#: 2.9 / 2.0 / 3.8; k = 785 18.0 against 11.0 / 8.0 / 8.3 (a Fashion-MNIST
#: sweep factors one 785 and three or four 501 Gram matrices).
_TRI_BLOCK = 128


def lower_tri_inverse(L, X) -> np.ndarray:
    """``X <- L^{-1}`` for a lower-triangular L (k, k), float64, C-contiguous
    X; X's upper triangle is set to 0. Returns X.

    Recursive 2 x 2 blocking: with ``L = [[A, 0], [C, D]]``,
    ``L^{-1} = [[A^{-1}, 0], [-D^{-1} C A^{-1}, D^{-1}]]``; the off-diagonal
    block is two GEMMs on BLAS and blocks of order up to ``_TRI_BLOCK`` go
    to the compiled kernel ``_kernels.lower_tri_inverse_`` (k^3 / 6
    multiply-adds in scalar loops). About k^3 / 2 multiply-adds in all,
    most of them in BLAS.
    """
    k = L.shape[0]
    if k <= _TRI_BLOCK:
        lower_tri_inverse_(np.ascontiguousarray(L), X)
        return X
    h = k // 2
    Ai = lower_tri_inverse(L[:h, :h], np.empty((h, h)))
    Di = lower_tri_inverse(L[h:, h:], np.empty((k - h, k - h)))
    X[:h, :h] = Ai
    X[:h, h:] = 0.0
    X[h:, h:] = Di
    np.matmul(Di @ L[h:, :h], Ai, out=X[h:, :h])
    np.negative(X[h:, :h], out=X[h:, :h])
    return X


def ridge_inverse(G, alpha: float, dtype) -> np.ndarray:
    """``(G + alpha I)^{-1}`` (k x k) in ``dtype``, via the float64 Cholesky factor.

    Formed explicitly on purpose: applying it is then one GEMM on numpy's
    BLAS, so the hot loop never calls into a second BLAS library (scipy's
    own OpenBLAS has its own thread pool; switching pools cost ~8 ms per
    call on 2 cores, see README "Threads"). The inverse of an SPD matrix
    through its Cholesky factor is backward stable enough here: the
    forward error of ``X @ inv`` is O(cond(G) eps), as for a trsm solve.

    That error is not confined to the null space of G the way a trsm's is:
    for a numerically singular G (rank > min(m, n), collinear factor) the
    inverse has entries ~1/tau and ``X @ inv`` cancels catastrophically in
    the working dtype (ridge_lstsq then fit worse than U = 0). So when the
    Cholesky pivots show ``cond(G) > 1/sqrt(eps)`` of ``dtype``, a ridge
    shift of ``sqrt(eps) * mean(diag)`` is added: the GEMM then loses at
    most ~sqrt(eps) and directions with eigenvalues below that are damped.
    Better-conditioned matrices are unaffected.

    For k <= 32 the well-conditioned case runs in one compiled call
    (``_kernels.ridge_inverse_small_``, the same factorization written out:
    2 us instead of 14 us at k = 10, where the LAPACK route's cost was call
    overhead); anything it declines takes the route above. There the
    triangular factor is inverted by ``_kernels.lower_tri_inverse_``
    (numpy's ``inv`` treats it as a general matrix: 5x slower).
    """
    k = G.shape[0]
    if k <= _SMALL_K:
        out = np.empty((k, k))
        if ridge_inverse_small_(G, float(alpha), _rcond(dtype), out):
            return out.astype(dtype, copy=False)
    L = ridge_cholesky(G, alpha, dtype)
    Linv = lower_tri_inverse(L, np.empty_like(L))   # 34 us at k = 101; np.linalg.inv(L) took 175
    return np.asarray(gram(Linv), dtype=dtype)


def _rcond(dtype) -> float:
    return float(np.sqrt(np.finfo(dtype).eps))


def ridge_cholesky(G, alpha: float, dtype) -> np.ndarray:
    """Lower Cholesky factor (float64) of ``G + alpha I`` with
    :func:`ridge_inverse`'s safeguard: when the pivots show
    ``cond > 1/sqrt(eps)`` of ``dtype``, of ``G + (alpha + sqrt(eps)
    mean(diag(G + alpha I))) I`` instead."""
    rcond = _rcond(dtype)
    L = cholesky_lower(G, alpha)
    d = np.diag(L)
    if d.min() ** 2 < rcond * d.max() ** 2:
        H = np.array(G, dtype=np.float64)
        k = H.shape[0]
        H.flat[:: k + 1] += alpha + rcond * float(np.trace(H) + k * alpha) / k
        L = cholesky_lower(H)
    return L


def ridge_solve_right_into(out, E, G, alpha: float):
    """``out <- E (G + alpha I)^{-1}`` for E (m, k), with
    :func:`ridge_inverse`'s safeguard for an ill-conditioned G.

    With few rows (``4 m <= k``, k above ``_SMALL_K``: the output layer's
    refit, 10 rows against 101 or 501 columns) two triangular solves per
    row in one compiled call (``_kernels.cholesky_solve_rows_``, float64)
    instead of forming the inverse (float32, 2 threads, session 20, the
    factorization included: m = 10, k = 101 0.20 -> 0.11 ms; k = 501 19 ->
    8.7 ms, most of it the factorization). Otherwise the inverse and one
    GEMM (``E @ inv`` on BLAS beats m row solves once m is large)."""
    m, k = E.shape
    if k <= _SMALL_K or 4 * m > k:
        np.matmul(E, ridge_inverse(G, alpha, E.dtype), out=out)
    else:
        cholesky_solve_rows_(ridge_cholesky(G, alpha, E.dtype), E, out)
    return out


def pinv_factor_into(M, X, alpha: float):
    """``M <- X (X^T X + alpha I)^{-1}`` for X (p, k): e.g. ``V^+ = V^T (V V^T + aI)^{-1}``.

    Through the smaller of the two Gram matrices: for p >= k one k x k
    factorization and GEMMs k x p x k (the Gram) and p x k x k; for p < k
    the push-through identity ``X (X^T X + aI)^{-1} = (X X^T + aI)^{-1} X``:
    a p x p factorization and GEMMs p x k x p and p x p x k. (The network's
    output layer has p = 10 classes and k = 101 or 501 inputs: its target
    step's factor went from 0.23 ms to 11 us at 10 x 100 and from 15.4 ms
    to 17 us at 10 x 500, 2 threads, session 17.) For alpha = 0 and X of full row rank the second form is
    the exact pseudo-inverse, where the first needs ``ridge_inverse``'s
    shift of a singular k x k Gram. Returns M.
    """
    p, k = X.shape
    if p < k:
        np.matmul(ridge_inverse(gram(X.T), alpha, X.dtype), X, out=M)
    else:
        np.matmul(X, ridge_inverse(gram(X), alpha, X.dtype), out=M)
    return M


#: ``orthonormal_columns`` takes Householder QR when a Cholesky pivot ratio
#: shows ``cond(Y)^2 > 1 / _CHOLQR_RCOND`` (CholeskyQR2 needs cond(Y) below
#: about u^(-1/2) = 6.7e7 in float64; this stops at 1e7).
_CHOLQR_RCOND = 1e-14
#: CholeskyQR only for bases with at least this many rows per column (one
#: pass / two); below, Householder is as fast and needs no fallback (2
#: threads, session 15, Householder against one / two CholeskyQR passes:
#: 784 x 510 43 ms against 21 / 42; 1300 x 510 54 against 29 / 56;
#: 2000 x 510 127 against 37 / 74; 600 x 200 7.9 against 2.8 / 5.5).
_CHOLQR_MIN_ASPECT = {1: 1.0, 2: 3.0}
#: Above this size the e x e factor is inverted through LAPACK's Cholesky and
#: the blocked ``lower_tri_inverse`` (the one-call compiled kernel is
#: unblocked: fine at e = 60, ~60 ms at e = 510).
_CHOLQR_SMALL_E = 64


def _cholesky_inverse_factor(G, rcond, out) -> bool:
    """``out <- L^{-1}`` for ``L L^T = G`` (float64, e x e); False on
    breakdown or a pivot ratio beyond ``rcond`` (out undefined)."""
    e = G.shape[0]
    if e <= _CHOLQR_SMALL_E:
        return cholesky_inverse_factor_(G, rcond, out)
    try:
        L = _cholesky(G)
    except np.linalg.LinAlgError:
        return False
    d = np.diagonal(L)
    if not (np.isfinite(L).all() and d.min() ** 2 >= rcond * d.max() ** 2):
        return False
    lower_tri_inverse(L, out)
    return True


def orthonormal_columns(Y, passes: int = 2) -> np.ndarray:
    """An orthonormal basis of the column span of Y (m, e), in Y's dtype.

    CholeskyQR2 (Fukaya, Nakatsukasa, Yanagisawa & Yamamoto 2014), in
    float64: twice ``Q <- Q L^{-T}`` with ``L L^T = Q^T Q``, i.e. two Gram
    products and two m x e x e products on BLAS plus two e x e
    factorizations, against LAPACK's Householder QR (``numpy.linalg.qr``),
    whose panel factorization runs at a fraction of GEMM speed: 224 ms
    against 61 ms for the 60000 x 60 range basis of a Fashion-MNIST
    randomized SVD, 0.68 ms against 0.39 ms at 1797 x 20 (digits; 2 threads,
    one AMD EPYC core each, session 15). Bases with fewer than
    ``_CHOLQR_MIN_ASPECT`` rows per column, where Householder is the faster,
    and rank-deficient or too
    ill-conditioned Y (a Cholesky pivot ratio beyond ``_CHOLQR_RCOND``, or a
    second pass that is not close to the identity) takes Householder QR,
    which returns a basis of the same dimension. The returned columns span
    the same space as Householder's; the basis itself differs by an
    orthogonal e x e rotation (and rounding). O(m e^2).

    ``passes=1`` (one CholeskyQR pass) gives a basis whose columns are
    orthonormal to ``u cond(Y)^2`` only, at half the cost: enough where only
    the span matters and the next step re-orthonormalises (the randomized
    SVD's power iterations).
    """
    m, e = Y.shape
    if e == 0 or m < _CHOLQR_MIN_ASPECT[passes] * e:
        return np.linalg.qr(Y)[0]
    Q = _power_of_two_scaled(np.array(Y, dtype=np.float64))
    Linv = np.empty((e, e))
    for sweep in range(passes):
        G = gram(Q)
        if not _cholesky_inverse_factor(G, _CHOLQR_RCOND, Linv):
            return np.linalg.qr(Y)[0]
        if sweep == 1 and np.abs(np.diagonal(Linv) - 1.0).max() > 0.1:
            return np.linalg.qr(Y)[0]
        Q = Q @ Linv.T
    return Q.astype(Y.dtype, copy=False)


def exponent(X) -> int:
    """The binary exponent of X's largest |entry| (0 for all zeros):
    ``2**-e X`` has its largest entry in [0.5, 1)."""
    amax = abs_max(X)
    return int(np.frexp(amax)[1]) if 0.0 < amax < np.inf else 0


def _power_of_two_scaled(Q):
    """Q (float64) scaled in place by the power of two that brings its
    largest entry into [0.5, 1): exact, span and conditioning unchanged,
    and its Gram matrix cannot overflow or underflow. A power iteration's
    basis before normalisation is ``(A A^T)^j`` times an orthonormal one:
    its Gram matrix goes as the fourth power of A's scale (A ~ 1e80 in
    float64 overflowed to Inf and LAPACK's eigensolver failed)."""
    Q *= 2.0 ** -exponent(Q)
    return Q


def cholesky_qr_pass(Z, comm=SERIAL, n_rows: int = None) -> np.ndarray:
    """One CholeskyQR pass over Z (p, e) whose rows may be split across
    processes: ``Z L^{-T}`` with ``L L^T = sum over processes of Z^T Z``.

    A basis of the span of Z (the product with an invertible e x e matrix)
    that is orthonormal to ``u cond(Z)^2``: the normalisation of a subspace
    iteration, where only the span matters. One e x e allreduce; float64
    inside, Z's dtype out. Where the Gram matrix is numerically singular it
    is shifted by ``11 (n_rows e + e (e + 1)) u trace`` (shifted CholeskyQR,
    Fukaya, Kannan, Nakatsukasa, Yamamoto & Yanagisawa 2020: definite for
    any Z), which keeps the span and bounds the condition of the result;
    ``n_rows``: rows over all processes (p for one). Z is returned as is if
    it is all zeros. O(p e^2).
    """
    p, e = Z.shape
    Z64 = np.array(Z, dtype=np.float64)
    # The same power of two on every process (the largest), so that the
    # processes' rows stay one basis.
    Z64 *= 2.0 ** -max(comm.allgather(exponent(Z64)))
    G = comm.sum_(gram(Z64))
    Linv = np.empty((e, e))
    if not _cholesky_inverse_factor(G, _CHOLQR_RCOND, Linv):
        trace = float(np.trace(G))
        if not (0.0 < trace < np.inf):
            return Z
        rows = p if n_rows is None else n_rows
        shift = 11.0 * (rows * e + e * (e + 1)) * np.finfo(np.float64).eps * trace
        G.flat[:: e + 1] += shift
        if not _cholesky_inverse_factor(G, 0.0, Linv):
            return Z
    return (Z64 @ Linv.T).astype(Z.dtype, copy=False)
