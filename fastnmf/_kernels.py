"""Numba kernels: fused elementwise passes and the Numba HALS row sweep.

Every kernel here is a pure loop over caller-allocated arrays: no validation,
no allocation of problem-sized arrays, parallel over rows with ``prange``.
Callers guarantee shapes, dtypes (all operands share one float dtype) and
that the last axis has unit stride; pairs of same-shaped operands must share
one memory order (pass ``A.T, P.T`` for two F-ordered arrays).

Each kernel fuses what NumPy would do in 3-6 separate passes (each reading
and writing a full matrix) into one pass; ``bench/bench_kernels.py``
measures the difference.

Complexity of each kernel is O(size of its matrix operands) unless stated.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._jit import njit_build

# Fast-math flags, deliberately minimal. Reductions get 'reassoc' (so LLVM
# can vectorise the sum) and 'contract' (FMA); elementwise kernels only
# 'contract'. 'arcp'/'nsz' once let LLVM rewrite X * sqrt(n / d) so that
# X = 0 with n / d huge gave 0 * inf = NaN in the semi-NMF MU kernel
# (found by a hypothesis test); 'nnan'/'ninf' would void max(0, x).
_FM_REDUCE = {"reassoc", "contract"}
_FM = {"contract"}


def unit_rows(X):
    """A C-contiguous view of a column slice's rows padded to its row stride.

    Numba compiles a kernel for non-contiguous ('A' layout) arrays with
    strided inner loops that LLVM does not vectorise: the semi-NMF MU
    update on the (1438, 100) slice ``Vt[:, :-1]`` (fixed ones row) took
    340 us against 41 us on a contiguous array. For X (p, k) with unit
    column stride and row stride ld >= k, this returns the (p, ld) view
    starting at ``X[0, 0]``, which Numba types as C-contiguous; kernels
    that take their width from another operand then touch only X's own
    columns. Returns X itself when it is already C-contiguous, or when the
    padded view would reach past the end of the memory X lives in.
    """
    if X.flags.c_contiguous or X.ndim != 2 or X.shape[0] == 0:
        return X
    isz = X.itemsize
    rs, cs = X.strides
    if cs != isz or rs % isz or rs < isz * X.shape[1]:
        return X
    root = X
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not root.flags.c_contiguous:
        return X
    # (``ctypes.data`` and a direct ``np.ndarray``: 6 us a call, where
    # ``__array_interface__`` and ``as_strided`` took 17; several calls per
    # solve, which matters on small problems.)
    offset = X.ctypes.data - root.ctypes.data
    if offset + rs * X.shape[0] > root.nbytes:
        return X
    return np.ndarray((X.shape[0], rs // isz), X.dtype, buffer=root, offset=offset,
                      strides=(rs, isz))


@njit(inline="always", fastmath=_FM)
def _semi_mu_ratio(x, c, dm, dp, e, zero):
    """One entry of the Ding-Li-Jordan update:
    ``x * sqrt((c+ + dm) / (c- + dp + e))`` (dm = (X G-)_ij, dp = (X G+)_ij)."""
    cp = c if c > zero else zero
    return x * np.sqrt((cp + dm) / (cp - c + dp + e))


_LOWRANK_ROWS = 64   # rows per task of mu_semi_update_lowrank_ (one k-vector scratch each)


@njit(parallel=True, cache=True, fastmath=_FM)
def mu_semi_update_lowrank_(X, C, TD, F, gdiag, shift, eps):
    """The Ding-Li-Jordan update for ``G = F^T F + shift I``, in place.

    ``X <- X * sqrt((C+ + DM) / (C- + DP + eps))`` with ``DM = X @ G-`` and
    ``DP = X @ G+`` formed here, row by row, as ``T F + DM + shift X``
    (``T = X F^T``, (p, r); F (r, k), r small): the same update as
    :func:`mu_semi_update_`, since ``X G+ = X G + X G-``. ``TD`` (p, r + k)
    holds ``[T | DM]``, both from one GEMM ``X [F^T | G-]`` (a separate
    thin ``X F^T`` cost a pass over X: 16 ms against 4 ms more in the
    wide GEMM, Fashion-MNIST's 60000 x 500, r = 10). The product
    ``T F`` (2 p r k flops) is fused into the pass: a BLAS call for it ran
    at 7 GFLOP/s here (r = 10 is too thin) and wrote a p x k matrix that
    this pass then read back.

    That sum cancels (``X G`` has both signs): its rounding error is
    ``eps * (|X G| + X G-)`` instead of ``eps * X G+``. It is bounded below
    by its own diagonal term ``x_ij G+_jj`` (``gdiag``, length k; X, G+ >= 0
    make every term nonnegative), so rounding can never make the ratio
    larger than the plain update's bound (a test case once produced
    0 / 0 without it). ``DM`` (the numerator) is exact, as in the plain
    update, so no entry is pushed to 0 by rounding.
    C: (p, k); X may be (p, >= k) (see :func:`unit_rows`). O(p k r);
    one length-k scratch vector per task of 64 rows.

    Row i of ``T F`` is accumulated four rows of F per pass over the scratch
    vector, in the same order as one at a time (so the same rounding):
    a pass per row of F spent most of its time loading and storing the
    scratch vector (1438 x 100, r = 10, one thread: 144 -> 109 us).
    """
    p, k = C.shape
    r = F.shape[0]
    r4 = r - r % 4
    e = X.dtype.type(eps)
    s = X.dtype.type(shift)
    zero = X.dtype.type(0)
    nb = (p + _LOWRANK_ROWS - 1) // _LOWRANK_ROWS
    for blk in prange(nb):
        lg = np.empty(k, X.dtype)                  # row i of T F
        for i in range(blk * _LOWRANK_ROWS, min(p, (blk + 1) * _LOWRANK_ROWS)):
            for j in range(k):
                lg[j] = zero
            for q in range(0, r4, 4):
                t0, t1, t2, t3 = TD[i, q], TD[i, q + 1], TD[i, q + 2], TD[i, q + 3]
                for j in range(k):
                    lg[j] = (lg[j] + t0 * F[q, j] + t1 * F[q + 1, j] + t2 * F[q + 2, j]
                             + t3 * F[q + 3, j])
            for q in range(r4, r):
                t = TD[i, q]
                for j in range(k):
                    lg[j] += t * F[q, j]
            dmr = TD[i, r:r + k]                   # row i of X G- (a contiguous view)
            for j in range(k):
                x = X[i, j]
                dm = dmr[j]
                dp = lg[j] + dm + s * x            # X G+, up to cancellation
                lo = x * gdiag[j]                  # one of its nonnegative terms
                X[i, j] = _semi_mu_ratio(x, C[i, j], dm, dp if dp > lo else lo, e, zero)


@njit(parallel=True, cache=True, fastmath=_FM_REDUCE)
def relu_residual_(P, A):
    """In place ``P <- A - max(P, 0)``; returns ``sum(P**2)`` in float64.

    P, A: (m, n), same dtype and order. One read of A and P, one write of P.
    """
    m, n = P.shape
    total = 0.0
    for i in prange(m):
        s = 0.0
        for j in range(n):
            p = P[i, j]
            r = A[i, j] - (p if p > 0 else 0)
            P[i, j] = r
            s += r * r
        total += s
    return total


@njit(parallel=True, cache=True, fastmath=_FM_REDUCE)
def relu_residual_norms_(P, A):
    """:func:`relu_residual_` that also returns ``sum(A**2)``: the pair
    ``(sum(P**2), sum(A**2))`` in float64, A's squares formed in float64
    as :func:`dot64` does.

    The first residual pass of a solve reads A anyway; the norm its errors
    are relative to then costs no pass of its own (one read of a 60000 x
    500 float32 A: ~5 ms on 2 cores, four per Fashion-MNIST sweep).
    """
    m, n = P.shape
    total = 0.0
    total_a = 0.0
    for i in prange(m):
        s = 0.0
        sa = 0.0
        for j in range(n):
            a = A[i, j]
            p = P[i, j]
            r = a - (p if p > 0 else 0)
            P[i, j] = r
            s += r * r
            sa += np.float64(a) * np.float64(a)
        total += s
        total_a += sa
    return total, total_a


@njit(parallel=True, cache=True, fastmath=_FM_REDUCE)
def linear_residual_(P, A):
    """In place ``P <- A - P``; returns ``sum(P**2)`` in float64.

    P, A: (m, n), same dtype and order. One read of A and P, one write of P.
    """
    m, n = P.shape
    total = 0.0
    for i in prange(m):
        s = 0.0
        for j in range(n):
            r = A[i, j] - P[i, j]
            P[i, j] = r
            s += r * r
        total += s
    return total


@njit(parallel=True, cache=True, fastmath=_FM)
def add_scaled_(X, D, omega):
    """In place ``X <- X + omega * D``. X, D: (p, k)."""
    p, k = X.shape
    w = X.dtype.type(omega)
    for i in prange(p):
        for j in range(k):
            X[i, j] += w * D[i, j]


@njit(parallel=True, cache=True, fastmath=_FM)
def clip_add_(X, D, omega):
    """In place ``X <- max(0, X + omega * D)``. D: (p, k); X: (p, >= k), only
    its first k columns are used (pass :func:`unit_rows` of a column slice)."""
    p, k = D.shape
    w = X.dtype.type(omega)
    zero = X.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            v = X[i, j] + w * D[i, j]
            X[i, j] = v if v > zero else zero


@njit(parallel=True, cache=True, fastmath=_FM)
def clip_add_at_zero_(X, D, omega, zero_step):
    """In place ``X <- max(0, X + omega * s * D)`` with ``s = zero_step``
    where X is 0 and 1 elsewhere: the projected step, shortened for the
    entries at the bound (0 keeps them there, as a multiplicative update
    would). Layout as :func:`clip_add_`."""
    p, k = D.shape
    w = X.dtype.type(omega)
    wz = X.dtype.type(omega * zero_step)
    zero = X.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            x = X[i, j]
            v = x + (w if x > zero else wz) * D[i, j]
            X[i, j] = v if v > zero else zero


@njit(parallel=True, cache=True, fastmath=_FM)
def shifted_cross_(C, CV, b, Vt, prox, l1, r):
    """``C <- CV[:, :kf] - r b^T + prox * Vt[:, :kf] - l1`` with kf = C.shape[1].

    The right-hand side of the free part of a V-step (``nnls``): the cross
    product ``A^T U`` (n, k) less the fixed last row's share ``r b^T``
    (b (kf,); r (n,) the fixed row, or empty for a row of ones: ``b``),
    plus the proximal pull towards the start ``Vt`` (n, k) and the l1
    shift. Vt is not read when prox is 0. One pass instead of NumPy's three
    serial ones and a temporary. O(n kf).
    """
    n, kf = C.shape
    g = C.dtype.type(prox)
    s = C.dtype.type(l1)
    scaled = r.shape[0] > 0
    for i in prange(n):
        ri = r[i] if scaled else C.dtype.type(1)
        if prox != 0:
            for j in range(kf):
                C[i, j] = CV[i, j] - ri * b[j] + g * Vt[i, j] - s
        else:
            for j in range(kf):
                C[i, j] = CV[i, j] - ri * b[j] - s


@njit(parallel=True, cache=True, fastmath=_FM)
def mu_nmf_update_(X, C, D, eps):
    """Lee-Seung ratio, in place: ``X <- X * C / (D + eps)``.

    X: (p, k) >= 0, C = cross products (p, k) >= 0, D = X @ G (p, k) >= 0.
    """
    p, k = X.shape
    e = X.dtype.type(eps)
    for i in prange(p):
        for j in range(k):
            X[i, j] = X[i, j] * C[i, j] / (D[i, j] + e)


@njit(parallel=True, cache=True, fastmath=_FM)
def mu_semi_update_(X, C, DP, DM, eps):
    """Ding-Li-Jordan semi-NMF ratio, in place.

    ``X <- X * sqrt((C+ + DM) / (C- + DP + eps))`` with ``C+ = max(C, 0)``,
    ``C- = max(-C, 0)``, ``DP = X @ G+``, ``DM = X @ G-`` (all (p, k)).
    The +/- splits of C are never materialised. X may be (p, >= k): only
    its first k columns are used (pass :func:`unit_rows` of a column slice).
    """
    p, k = C.shape
    e = X.dtype.type(eps)
    zero = X.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            X[i, j] = _semi_mu_ratio(X[i, j], C[i, j], DM[i, j], DP[i, j], e, zero)


def _dot64_body(X, Y):
    p, k = X.shape
    total = 0.0
    for i in prange(p):
        s = 0.0
        for j in range(k):
            s += np.float64(X[i, j]) * np.float64(Y[i, j])
        total += s
    return total


_dot64_parallel = njit_build(_dot64_body, "_dot64_parallel", parallel=True, fastmath=_FM_REDUCE)
_dot64_serial = njit_build(_dot64_body, "_dot64_serial", fastmath=_FM_REDUCE)

# Below this many elements the parallel reduction's fixed cost (measured
# ~6 us per call at one thread: per-thread partials, the launch) exceeds
# the work: 9.0 vs 3.3 us for 1797 x 10 float32.
_SERIAL_BELOW = 1 << 16


def dot64(X, Y) -> float:
    """``sum(X * Y)`` accumulated in float64. X, Y: (p, k), same order.

    O(p k); parallel over rows when large, serial when small.
    """
    if X.size < _SERIAL_BELOW:
        return _dot64_serial(X, Y)
    return _dot64_parallel(X, Y)


def _abs_sum64_body(X):
    p, k = X.shape
    total = 0.0
    for i in prange(p):
        s = 0.0
        for j in range(k):
            s += abs(np.float64(X[i, j]))
        total += s
    return total


_abs_sum64_parallel = njit_build(_abs_sum64_body, "_abs_sum64_parallel", parallel=True,
                                 fastmath=_FM_REDUCE)
_abs_sum64_serial = njit_build(_abs_sum64_body, "_abs_sum64_serial", fastmath=_FM_REDUCE)


def abs_sum64(X) -> float:
    """``sum(|X|)`` accumulated in float64, for C or F ordered X (p, k).

    One read of X and no temporary (``np.abs(A).sum()`` writes a copy of A:
    0.2 s of a Fashion-MNIST init). O(p k); parallel when large.
    """
    if not X.flags.c_contiguous:
        X = X.T
    if X.size < _SERIAL_BELOW:
        return _abs_sum64_serial(X)
    return _abs_sum64_parallel(X)


_SCAN_BLOCK = 4096   # elements per task of the validation scan


def _scan_body(bits, mask):
    """Per array of float bit patterns (``x.view(uint)``): the largest
    ``bits & mask`` (the bit pattern of the largest |x|, NaN and Inf above
    every finite one) and the largest raw pattern (above ``mask + 1``, the
    pattern of -0.0, iff some entry is negative or a negative NaN).
    Integer compares need no NaN semantics: one loop for the three checks
    (float maxima under NaN semantics took 160 us on digits, see
    :func:`scan_values`)."""
    n = bits.shape[0]
    nb = (n + _SCAN_BLOCK - 1) // _SCAN_BLOCK
    zero = bits.dtype.type(0)
    part = np.zeros((max(nb, 1), 2), bits.dtype)
    for b in prange(nb):
        m = zero
        s = zero
        for i in range(b * _SCAN_BLOCK, min(n, (b + 1) * _SCAN_BLOCK)):
            u = bits[i]
            m = max(m, u & mask)
            s = max(s, u)
        part[b, 0] = m
        part[b, 1] = s
    m = zero
    s = zero
    for b in range(nb):
        m = max(m, part[b, 0])
        s = max(s, part[b, 1])
    return m, s


_scan_parallel = njit_build(_scan_body, "_scan_parallel", parallel=True)
_scan_serial = njit_build(_scan_body, "_scan_serial")
#: itemsize -> (unsigned type of the bit patterns, sign-clearing mask, mask + 1)
_SCAN_BITS = {4: (np.uint32, np.uint32(0x7FFFFFFF), 0x80000000),
              8: (np.uint64, np.uint64(0x7FFFFFFFFFFFFFFF), 0x8000000000000000)}


def scan_values(x):
    """``(all entries finite, some entry negative, largest |entry|)`` of a
    1-D contiguous float32/float64 array, in one read and without a
    temporary.

    The validation of every public function's data: ``np.isfinite(A).all()``,
    ``A.min()`` and ``abs(A).max()`` read A three times and write copies.
    The scan reads the bit patterns: clearing the sign bit gives |x|'s
    pattern, which orders like |x| and is above Inf's for NaN; -0.0 is not
    negative (as for ``A.min() < 0``). The largest |entry| is NaN or Inf
    when some entry is. O(n); parallel when large. (About 1 us of kernel
    and 2 us of wrapper for a small array; 25 us for digits' 1797 x 64,
    where the float scan it replaced, without the magnitude, took 12 us:
    the unsigned maxima do not vectorise on AVX2, and float maxima under
    NaN semantics vectorised even less.)
    """
    ut, mask, sign = _SCAN_BITS[x.dtype.itemsize]
    amax, top = (_scan_serial if x.shape[0] < _SERIAL_BELOW else _scan_parallel)(x.view(ut), mask)
    amax = float(ut(amax).view(x.dtype))
    return math.isfinite(amax), top > sign, amax


def abs_max(X) -> float:
    """The largest |entry| of a float32/float64 array of any shape (NaN or
    Inf if it holds one; 0 if empty): :func:`scan_values`'s one read for a
    C- or F-contiguous X, NumPy's for other layouts."""
    if X.flags.c_contiguous or X.flags.f_contiguous:
        return scan_values(X.ravel(order="K"))[2]
    return float(np.max(np.abs(X), initial=0.0))


_TILE = 64


@njit(parallel=True, cache=True, fastmath=_FM_REDUCE)
def hals_update_rows_numba(X, C, G):
    """Numba twin of the Cython tiled HALS sweep (same contract and result).

    One Gauss-Seidel sweep of nonnegative coordinate descent on every row of
    X (p, k) for ``min_x 0.5 x G x^T - c x^T, x >= 0``, on tiles of 64 rows
    transposed into a scratch buffer; O(p k^2). Returns the sum of squared
    changes. Kept as the measured alternative (bench/bench_kernels.py):
    the Cython build is the one the solvers call.
    """
    p, k = X.shape
    T = _TILE
    ntiles = (p + T - 1) // T
    total = 0.0
    zero = X.dtype.type(0)
    for t in prange(ntiles):
        i0 = t * T
        nr = min(T, p - i0)
        xT = np.zeros((k, T), X.dtype)
        s = np.empty(T, X.dtype)
        for r in range(nr):
            for b in range(k):
                xT[b, r] = X[i0 + r, b]
        delta = 0.0
        for a in range(k):
            gaa = G[a, a]
            if gaa <= 0:  # dead component: leave it, it may revive
                continue
            for r in range(T):
                s[r] = C[i0 + r, a] if r < nr else zero
            for b in range(k):
                g = G[a, b]
                for r in range(T):
                    s[r] -= g * xT[b, r]
            inv = 1 / gaa
            for r in range(T):
                old = xT[a, r]
                new = old + s[r] * inv
                new = new if new > zero else zero
                d = new - old
                delta += d * d
                xT[a, r] = new
        for r in range(nr):
            for b in range(k):
                X[i0 + r, b] = xT[b, r]
        total += delta
    return total


@njit(parallel=True, cache=True, fastmath=_FM)
def extrapolate_(O, N, beta):
    """``O <- max(0, N + beta * (N - O))`` in place (projected extrapolation).

    O (the previous iterate, overwritten by the extrapolated point) and N
    (the new iterate): (p, k), must not alias. Ang & Gillis (2019). One read
    of N, one read and write of O: the caller swaps names instead of copying.
    """
    p, k = O.shape
    b = O.dtype.type(beta)
    zero = O.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            v = N[i, j] + b * (N[i, j] - O[i, j])
            O[i, j] = v if v > zero else zero


@njit(cache=True, fastmath=_FM_REDUCE)
def lower_tri_inverse_(L, X):
    """``X <- L^{-1}`` for a lower-triangular L (k, k) with a nonzero
    diagonal, float64; X's upper triangle is set to 0.

    Row by row: ``X[i] = (e_i - sum_{p<i} L[i, p] X[p]) / L[i, i]``, each
    term an axpy over the first p + 1 columns (contiguous, vectorised). It
    replaces ``np.linalg.inv(L)``, which treats L as a general matrix (an LU
    factorization and k triangular solves: 208 us at k = 101 against about
    k^3 / 6 multiply-adds here). O(k^3 / 6).
    """
    k = L.shape[0]
    for i in range(k):
        for j in range(k):
            X[i, j] = 0.0
        for p in range(i):
            c = L[i, p]
            for j in range(p + 1):
                X[i, j] -= c * X[p, j]
        X[i, i] += 1.0
        d = 1.0 / L[i, i]
        for j in range(i + 1):
            X[i, j] *= d


@njit(cache=True, inline="always")
def _cholesky_lower_in_(G, alpha, rcond, L):
    """``L <- chol(G + alpha I)`` (lower, float64; reads G's lower triangle).

    False, with L undefined, when the factorization breaks down (not
    positive definite, NaN/Inf) or its pivots show ``cond > 1/rcond``.
    """
    k = G.shape[0]
    for j in range(k):
        s = np.float64(G[j, j]) + alpha
        for p in range(j):
            s -= L[j, p] * L[j, p]
        if not (s > 0.0) or not (s < np.inf):
            return False
        d = np.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, k):
            t = np.float64(G[i, j])
            for p in range(j):
                t -= L[i, p] * L[j, p]
            t /= d
            if not np.isfinite(t):
                return False
            L[i, j] = t
    dmin = np.inf
    dmax = 0.0
    for j in range(k):
        dmin = min(dmin, L[j, j])
        dmax = max(dmax, L[j, j])
    return dmin * dmin >= rcond * dmax * dmax


@njit(cache=True, inline="always")
def _invert_lower_in_(L):
    """``L <- L^{-1}`` in place (lower triangular), column by column."""
    k = L.shape[0]
    for j in range(k):
        L[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, k):
            t = 0.0
            for p in range(j, i):
                t -= L[i, p] * L[p, j]
            L[i, j] = t / L[i, i]


@njit(cache=True)
def ridge_inverse_small_(G, alpha, rcond, out):
    """``out <- (G + alpha I)^{-1}`` (float64) through the Cholesky factor,
    for small k: the fast path of :func:`fastnmf._linalg.ridge_inverse`.

    Reads the lower triangle of G (k, k), like LAPACK's potrf. Returns False,
    with ``out`` undefined, when the factorization breaks down (not positive
    definite, NaN/Inf) or its pivots show ``cond > 1/rcond`` (the caller's
    shift path takes over); True otherwise. O(k^3); one k x k scratch matrix.
    Not parallel: at k <= 64 the LAPACK route's cost was Python and NumPy
    call overhead (~14 us at k = 10), not arithmetic.
    """
    k = G.shape[0]
    L = np.zeros((k, k))
    if not _cholesky_lower_in_(G, alpha, rcond, L):
        return False
    _invert_lower_in_(L)
    # out = L^{-T} L^{-1}
    for i in range(k):
        for j in range(i, k):
            t = 0.0
            for p in range(j, k):
                t += L[p, i] * L[p, j]
            out[i, j] = t
            out[j, i] = t
    return True


@njit(cache=True)
def cholesky_inverse_factor_(G, rcond, out):
    """``out <- L^{-1}`` (lower triangular, float64) for ``L L^T = G``.

    One compiled call for the small factorization of
    :func:`fastnmf._linalg.orthonormal_columns` (k = rank + oversampling):
    at k = 20 it takes 3.3 us against 8.3 us for numpy's ``cholesky`` and
    :func:`lower_tri_inverse_` (1 thread, session 15). Reads the lower
    triangle of G; returns False (out
    undefined) on breakdown or ``cond > 1/rcond``, as
    :func:`ridge_inverse_small_`. O(k^3 / 3).
    """
    k = G.shape[0]
    for i in range(k):
        for j in range(k):
            out[i, j] = 0.0
    if not _cholesky_lower_in_(G, 0.0, rcond, out):
        return False
    _invert_lower_in_(out)
    return True


@njit(cache=True)
def all_ones(x):
    """Whether every entry of the 1-D array x is exactly 1 (stops at the
    first that is not). The fixed-ones-row check of the solves that keep a
    bias row: 1.7 us on a strided row of 1437, where ``np.all(x == 1)``
    took 7.8 (a temporary and a reduction). O(len(x))."""
    for v in x:
        if v != 1:
            return False
    return True


@njit(cache=True, fastmath=_FM_REDUCE)
def cholesky_solve_rows_(L, E, out):
    """``out[r] <- (L L^T)^{-1} E[r]`` for every row r of E (m, k): the
    right-hand sides as rows, L (k, k) lower triangular, float64; the
    solves run in float64 whatever E's and out's dtype (out may be E).

    For a few right-hand sides (a network's output layer: m = 10 classes,
    k = 101 or 501 inputs) this replaces forming the inverse (k^3 / 2
    multiply-adds beyond the factorization) by two triangular solves per
    row (k^2 each), reading L by rows only: the forward solve as dots with
    row prefixes, the backward one (with L^T) as axpys with them.
    O(m k^2).
    """
    m, k = E.shape
    x = np.empty(k)
    for r in range(m):
        for i in range(k):           # L y = E[r]
            s = np.float64(E[r, i])
            for j in range(i):
                s -= L[i, j] * x[j]
            x[i] = s / L[i, i]
        for i in range(k - 1, -1, -1):   # L^T z = y, column by column
            x[i] /= L[i, i]
            xi = x[i]
            for j in range(i):
                x[j] -= L[i, j] * xi
        for i in range(k):
            out[r, i] = x[i]
