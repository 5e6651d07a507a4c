"""Compiled kernels for sparse (CSR) data: the product of a CSR matrix with a
dense tall factor, and the Gram matrix ``S^T S`` of a sparse S.

The only products a sparse NMF needs are ``A @ Vt`` (m, k) and
``A.T @ U`` (n, k); both are taken as a CSR matrix times a dense (rows, k)
C-contiguous matrix, ``A.T`` through a CSR copy of the transpose (a
gather into the output's rows, parallel over them without write
conflicts; a scatter from ``A``'s rows needs one output copy per thread).

Measured against scipy's ``A @ X`` (single-threaded C++, the same
gather), float32, research script, 2 threads: 20000 x 5000 at 1% density,
k = 50, 4.9 ms against 14.0 ms (one thread: 9.3 against 14.0); 11314 x
50000 at 0.2%, k = 50, 7.4 against 22.9 ms. Unrolling the loop over a
row's nonzeros by four (four rows of X per pass over the output row) took
10-20% off the plain loop.

A dense matrix times a sparse one (a sparse *fixed factor*,
:func:`fastnmf._sparse.dense_matmul_into`) is this same gather on the
transposes.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import njit_build

_FM = {"contract"}

#: Row blocks per thread: rows hold different numbers of nonzeros, so the
#: rows are cut into blocks of equal nonzero counts (``row_blocks``), a few
#: per thread so that a slow block does not hold the others up.
BLOCKS_PER_THREAD = 8


def _csr_matmul_body(bounds, indptr, indices, data, X, out):
    """``out = A @ X`` for A in CSR (indptr, indices, data), X (n, k), out
    (m, k), both C-contiguous; ``bounds`` (b + 1,): row blocks of A, the
    unit of parallel work. O(nnz k)."""
    k = X.shape[1]
    zero = out.dtype.type(0)
    for b in prange(bounds.shape[0] - 1):
        for i in range(bounds[b], bounds[b + 1]):
            o = out[i]
            for c in range(k):
                o[c] = zero
            p = indptr[i]
            end = indptr[i + 1]
            while p + 4 <= end:
                a0 = data[p]
                a1 = data[p + 1]
                a2 = data[p + 2]
                a3 = data[p + 3]
                x0 = X[indices[p]]
                x1 = X[indices[p + 1]]
                x2 = X[indices[p + 2]]
                x3 = X[indices[p + 3]]
                for c in range(k):
                    o[c] += (a0 * x0[c] + a1 * x1[c]) + (a2 * x2[c] + a3 * x3[c])
                p += 4
            while p < end:
                a0 = data[p]
                x0 = X[indices[p]]
                for c in range(k):
                    o[c] += a0 * x0[c]
                p += 1


csr_matmul_parallel = njit_build(_csr_matmul_body, "csr_matmul_parallel", parallel=True,
                                 fastmath=_FM)
csr_matmul_serial = njit_build(_csr_matmul_body, "csr_matmul_serial", fastmath=_FM)


def row_blocks(indptr: np.ndarray, n_blocks: int) -> np.ndarray:
    """Boundaries (``n_blocks + 1`` row indices, int64) that cut the rows of
    a CSR matrix into blocks of about equal nonzero counts (empty blocks
    allowed). O(n_blocks log m)."""
    nnz = int(indptr[-1])
    targets = np.linspace(0, nnz, n_blocks + 1)
    bounds = np.searchsorted(indptr, targets, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, indptr.shape[0] - 1
    return np.maximum.accumulate(bounds)


def _csr_gram_body(indptr_t, indices_t, data_t, indptr, indices, data, out):
    """``out = S^T S`` (k, k) for S (n, k) given as the CSR of S (indptr,
    indices, data) and the CSR of S^T (``*_t``). Row a of the product is
    the sum of the rows of S that have a nonzero in column a, weighted by
    it: a gather into one output row at a time (it stays in cache; a
    scatter of every row's outer product over the whole k x k output
    missed the cache at every update: 1.8 s against 0.2 s for 16000 x
    5001 at 2% density). Parallel over output rows, no write conflicts.
    O(sum over rows of S of nnz(row)^2) multiply-adds, plus clearing out.
    """
    k = out.shape[0]
    zero = out.dtype.type(0)
    for a in prange(k):
        o = out[a]
        for b in range(k):
            o[b] = zero
        for q in range(indptr_t[a], indptr_t[a + 1]):
            s = indices_t[q]
            v = data_t[q]
            for p in range(indptr[s], indptr[s + 1]):
                o[indices[p]] += v * data[p]


csr_gram_parallel = njit_build(_csr_gram_body, "csr_gram_parallel", parallel=True,
                               fastmath=_FM)
csr_gram_serial = njit_build(_csr_gram_body, "csr_gram_serial", fastmath=_FM)
