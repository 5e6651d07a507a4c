"""Compiled kernels of the Kullback-Leibler NMF (:func:`fastnmf.nmf` with
``loss="kl"``, Lee-Seung multiplicative updates).

A KL update needs the ratio ``A / (U V)`` entrywise and its product with
the other factor. Dense A: the model ``P = U V`` comes from one BLAS GEMM
into a data-sized buffer, :func:`kl_ratio_` turns it into the ratio in
place (one pass, optionally summing ``A log(A / P)`` for the objective), and
a second GEMM gives the numerator. Sparse A: only the stored entries have a
nonzero ratio, so :func:`kl_numerator_csr_` computes each stored entry's
model value (a k-dot), its ratio and the numerator row in one pass over the
CSR rows: O(nnz k), never an m x n array.

Model values below ``tiny`` are raised to it before dividing (scikit-learn
clamps at float32's eps; here ``tiny`` is relative to the data's largest
entry, so the iterates do not depend on its scale).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import njit_build

_FM = {"contract"}


def _kl_ratio_body(P, A, tiny, with_log):
    """``P <- A / max(P, tiny)`` in place (P = U V on entry), P and A (p, q)
    of the same layout (C-contiguous, or both transposed views passed as
    such). Returns ``sum over A > 0 of A log(A / max(P, tiny))`` in float64
    when ``with_log``, else 0. O(p q), plus one log per positive entry of A
    with ``with_log`` (the costly part: 204 ms for 23.5M positive entries
    on 2 threads, against 19 ms for the plain ratio; ``pytest
    bench/bench_kernels.py -k kl_ratio``)."""
    p, q = P.shape
    t = P.dtype.type(tiny)
    total = 0.0
    for i in prange(p):
        for j in range(q):      # selects, no branches: the loop vectorises
            d = P[i, j]
            d = d if d > t else t
            P[i, j] = A[i, j] / d
        if with_log:            # a second pass over the row, still in L1
            s = 0.0
            for j in range(q):
                a = A[i, j]
                if a > 0:
                    s += np.float64(a) * np.log(np.float64(P[i, j]))
            total += s
    return total


def _kl_numerator_csr_body(bounds, indptr, indices, data, X, Y, out, tiny, with_log):
    """``out[i] = sum_p r_p Y[c_p]`` over the stored entries p = (i, c_p) of
    a CSR matrix A (indptr, indices, data), with ``r_p = a_p / max(X[i] .
    Y[c_p], tiny)``: the numerator ``(A / (X Y^T)) Y`` of a KL update of X
    (m, k) against Y (n, k), both C-contiguous; out (m, k). ``bounds``: row
    blocks of equal nonzero counts, the unit of parallel work. Returns
    ``sum_p a_p log r_p`` (float64) when ``with_log``, else 0. O(nnz k)."""
    k = Y.shape[1]
    t = out.dtype.type(tiny)
    zero = out.dtype.type(0)
    total = 0.0
    for b in prange(bounds.shape[0] - 1):
        s = 0.0
        for i in range(bounds[b], bounds[b + 1]):
            o = out[i]
            x = X[i]
            for c in range(k):
                o[c] = zero
            for p in range(indptr[i], indptr[i + 1]):
                y = Y[indices[p]]
                d = zero
                for c in range(k):
                    d += x[c] * y[c]
                d = d if d > t else t
                a = data[p]
                r = a / d
                if with_log and a > 0:
                    s += np.float64(a) * np.log(np.float64(r))
                for c in range(k):
                    o[c] += r * y[c]
        total += s
    return total


def _mu_kl_update_body(X, N, s, guard, l1, l2):
    """``X <- X * N / (s + l1 + l2 X + guard)`` in place: the KL
    multiplicative update of X (p, k) >= 0 from its numerator N (p, k) and
    the other factor's sums s (k,) (row sums of V for U, column sums of U
    for V). O(p k)."""
    p, k = X.shape
    g = X.dtype.type(guard + l1)
    w = X.dtype.type(l2)
    for i in prange(p):
        for c in range(k):
            x = X[i, c]
            X[i, c] = x * N[i, c] / (s[c] + g + w * x)


# error_model="numpy": Python's model checks every float division for a
# zero divisor (to raise ZeroDivisionError), a branch that kept the serial
# ratio loop from vectorising: 112 us against 19 us for digits' 1797 x 64,
# float32 (bench/bench_kernels.py test_kl_ratio keeps that build as a row;
# the parallel builds use NumPy's model already). The divisors here are
# bounded below (tiny, the guards), so nothing is lost.
_OPTS = {"fastmath": _FM, "error_model": "numpy"}
kl_ratio_ = njit_build(_kl_ratio_body, "kl_ratio_", parallel=True, **_OPTS)
kl_ratio_serial_ = njit_build(_kl_ratio_body, "kl_ratio_serial_", **_OPTS)
kl_numerator_csr_ = njit_build(_kl_numerator_csr_body, "kl_numerator_csr_", parallel=True,
                               **_OPTS)
kl_numerator_csr_serial_ = njit_build(_kl_numerator_csr_body, "kl_numerator_csr_serial_",
                                      **_OPTS)
mu_kl_update_ = njit_build(_mu_kl_update_body, "mu_kl_update_", parallel=True, **_OPTS)
mu_kl_update_serial_ = njit_build(_mu_kl_update_body, "mu_kl_update_serial_", **_OPTS)
