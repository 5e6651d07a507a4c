"""Initial factors: random and NNDSVD / NNDSVDa (Boutsidis & Gallopoulos 2008).

Factors are produced in the kernels' layout: ``U`` (m, k) and ``Vt = V.T``
(n, k), both C-contiguous, in the working dtype.

Everything here works on data whose columns (samples) may be split across
processes (``comm``, see :mod:`fastnmf._comm`) and gives every process its
rows of the factors a single process would compute for the whole matrix:
sums over samples are reduced, and random numbers for the sample side are
drawn in fixed blocks of rows seeded by ``(seed, block)``, so they do not
depend on how the samples are split.
"""
from __future__ import annotations

import numpy as np

from ._comm import SERIAL
from ._kernels import abs_sum64
from ._linalg import cholesky_qr_pass, exponent, gram, orthonormal_columns
from ._sparse import SparseData

INITS = ("random", "nndsvd", "nndsvda")

#: Rows per independently seeded block of sample-side random numbers.
_ROW_BLOCK = 4096
# Stream tags that keep the replicated (m-side) draws apart from the row blocks.
_TAG_U, _TAG_OMEGA = 2**62, 2**62 + 1


def sample_rows(seed: int, offset: int, count: int, k: int, dtype, kind: str) -> np.ndarray:
    """Rows ``offset .. offset + count`` of an (n, k) random matrix.

    Row block ``j`` (rows ``j * 4096 ..``) is drawn from
    ``default_rng([seed, j])``, so the rows are the same however the n rows
    are split across processes. ``kind``: ``"absnormal"`` (|N(0, 1)|) or
    ``"uniform"`` (U(0.01, 0.1)). Cost O(count k) plus at most two partial
    blocks.
    """
    out = np.empty((count, k), dtype)
    if count == 0:
        return out
    for j in range(offset // _ROW_BLOCK, (offset + count - 1) // _ROW_BLOCK + 1):
        g = np.random.default_rng([seed, j])
        block = (np.abs(g.standard_normal((_ROW_BLOCK, k))) if kind == "absnormal"
                 else g.uniform(0.01, 0.1, size=(_ROW_BLOCK, k)))
        lo, hi = max(offset, j * _ROW_BLOCK), min(offset + count, (j + 1) * _ROW_BLOCK)
        out[lo - offset: hi - offset] = block[lo - j * _ROW_BLOCK: hi - j * _ROW_BLOCK]
    return out


def column_offset(n_local: int, comm=SERIAL):
    """(offset of this process's first column, total columns) over ``comm``."""
    sizes = comm.allgather(int(n_local))
    return sum(sizes[: comm.rank]), sum(sizes)


def randomized_svd(A, k: int, seed: int, *, n_total: int, comm=SERIAL,
                   n_oversamples: int = 10, n_power_iter: int = 7):
    """Top-k singular triplets of A (m, n) by a randomized range finder.

    Halko, Martinsson & Tropp 2011, with the test matrix on the row side
    (``Y = (A A^T)^(q+1) Omega``, Omega (m, k + p), q = ``n_power_iter``),
    so every product over the n columns is a sum that one allreduce of an
    m x (k + p) matrix makes global. Between power iterations the basis is
    re-normalised by CholeskyQR (:func:`fastnmf._linalg.orthonormal_columns`;
    LAPACK's Householder QR took 57% of a Fashion-MNIST init), on whichever
    side is cheaper: the samples' side (Z = A^T Y, rows split across
    processes) when n < m, and for few rows (m <= 4 q (k + p)) the power
    iterations run on the m x m Gram matrix ``A A^T`` instead of A. The
    small SVD of ``B = Q^T A`` is taken from the float64 eigendecomposition
    of ``B B^T`` (another sum over columns). Cost: ``2 q + 3`` GEMMs of
    m x n x (k + p), or with the Gram route one m x m x n product and 2.
    Returns (u (m, k), s (k,), vt (k, n_local)). ``n_total``: the columns
    over all processes (n for one process).
    """
    m = A.shape[0]
    ell = min(k + n_oversamples, m, n_total)
    Omega = np.random.default_rng([seed, _TAG_OMEGA]).standard_normal((m, ell)).astype(A.dtype)
    if n_total < m:
        # The same subspace iteration, normalised on the shorter (sample)
        # side: Z (n_local, ell) spans (A^T A)^j A^T Omega. Its rows are
        # split across processes, so each normalisation is one CholeskyQR
        # pass with an ell x ell allreduce (digits 1797 x 64, 2 threads:
        # this function took 3.6 ms normalising 1797 x 20 bases, 3.0 ms
        # normalising 64 x 20 ones; session 15, one run each).
        Z = A.T @ Omega
        for _ in range(n_power_iter):
            Z = cholesky_qr_pass(Z, comm, n_total)
            Z = A.T @ comm.sum_(np.ascontiguousarray(A @ Z))
        # Z goes as A's scale squared, A Z as its cube: an exact power of
        # two (the same on every process) keeps A Z finite for any A the
        # validation accepts (float64 data near 1e147 overflowed); the span,
        # all that is used of Y, is unchanged.
        Z *= Z.dtype.type(2.0 ** -max(comm.allgather(exponent(Z))))
        Y = comm.sum_(np.ascontiguousarray(A @ Z))
    elif m <= 4 * n_power_iter * ell and not isinstance(A, SparseData):
        # Few rows (features x samples, the network trainer's layout): the
        # m x m Gram matrix (m^2 n / 2 multiply-adds, one allreduce) is
        # cheaper than the 2 n_power_iter products with A (2 m n ell each),
        # and the power iterations then cost m^2 ell each. A rank-500 start
        # of 784 x 20000 (the autoencoder pre-training's shape): 3.6 s ->
        # 1.8 s; 300 x 20000, rank 50: 159-194 ms -> 36 ms (2 threads).
        G = comm.sum_(gram(A.T))
        Y = G @ Omega
        for _ in range(n_power_iter):
            Y = G @ orthonormal_columns(Y, passes=1)
    else:
        Y = comm.sum_(np.ascontiguousarray(A @ (A.T @ Omega)))
        for _ in range(n_power_iter):
            Q = orthonormal_columns(Y, passes=1)    # only its span matters here
            Y = comm.sum_(np.ascontiguousarray(A @ (A.T @ Q)))
    Q = orthonormal_columns(Y)
    Bt = (A.T @ Q).astype(np.float64)                 # (n_local, ell): B^T
    G = comm.sum_(gram(Bt))                           # B B^T
    w, ub = np.linalg.eigh(G)
    order = np.argsort(w)[::-1][: min(k, ell)]
    w, ub = w[order], ub[:, order]
    s = np.sqrt(np.maximum(w, 0.0))
    # eigenvalues carry float64 rounding of the largest: sqrt(eps) s_max in s
    live = s > 1e-7 * s[0] if s.size else s > 0
    inv = np.where(live, 1.0 / np.where(live, s, 1.0), 0.0)
    vt = (ub.T @ Bt.T) * inv[:, None]                 # (k, n_local)
    u = Q.astype(np.float64) @ ub
    return u, s, vt


def _nndsvd_factors(A, k, seed, fill, comm, offset, N):
    """NNDSVD of A (any sign is fine: only singular vectors are split);
    this process's columns start at ``offset`` of ``N``."""
    m, n = A.shape
    dtype = A.dtype
    kk = min(k, m, N)
    u, s, vt = randomized_svd(A, kk, seed, comm=comm, n_total=N)
    kk = s.shape[0]
    W = np.zeros((m, k), dtype=dtype)
    Ht = np.zeros((n, k), dtype=dtype)
    # Norms of the positive and negative parts of each right singular vector
    # (sums over the samples: one reduction for all of them).
    vp, vn = np.maximum(vt, 0), np.maximum(-vt, 0)
    norms2 = comm.sum_(np.ascontiguousarray(np.stack([(vp * vp).sum(axis=1),
                                                      (vn * vn).sum(axis=1)])))
    nyp_all, nyn_all = np.sqrt(norms2[0]), np.sqrt(norms2[1])
    # Leading pair: the Perron vectors of a nonnegative A have one sign.
    if kk:
        W[:, 0] = np.sqrt(s[0]) * np.abs(u[:, 0])
        Ht[:, 0] = np.sqrt(s[0]) * np.abs(vt[0])
    for j in range(1, kk):
        x = u[:, j]
        xp, xn = np.maximum(x, 0), np.maximum(-x, 0)
        yp, yn = vp[j], vn[j]
        nxp, nxn = np.linalg.norm(xp), np.linalg.norm(xn)
        nyp, nyn = nyp_all[j], nyn_all[j]
        mp, mn = nxp * nyp, nxn * nyn
        if mp >= mn:
            uu, vv, sig = (xp / nxp if nxp else xp), (yp / nyp if nyp else yp), mp
        else:
            uu, vv, sig = (xn / nxn if nxn else xn), (yn / nyn if nyn else yn), mn
        lam = np.sqrt(s[j] * sig)
        W[:, j] = lam * uu
        Ht[:, j] = lam * vv
    if kk < k:
        # rank > min(m, n): the extra components get small positive noise so
        # they are not dead from the start (a zero column never revives).
        scale = max(fill, np.finfo(dtype).eps)
        g = np.random.default_rng([seed, _TAG_U])
        W[:, kk:] = scale * g.uniform(0.01, 0.1, size=(m, k - kk))
        Ht[:, kk:] = scale * sample_rows(seed, offset, n, k - kk, np.float64, "uniform")
    return W, Ht


def initialize(A, k: int, init: str, rng: np.random.Generator, comm=SERIAL):
    """Return (U (m, k), Vt (n, k)) >= 0, C-contiguous, dtype of A.

    For A of mixed sign (semi-NMF), the scale uses ``mean(|A|)`` and only the
    nonnegativity of ``Vt`` matters: the caller recomputes U by least squares.
    With ``comm``, A holds this process's columns and Vt gets its rows.
    """
    m, n = A.shape
    dtype = A.dtype
    offset, N = column_offset(n, comm)
    # one draw from rng; process 0's, so random_state=None agrees too
    seed = comm.bcast(int(rng.integers(2**62)))
    mean_abs = comm.sum(A.abs_sum() if isinstance(A, SparseData) else abs_sum64(A)) / (m * N)
    if init == "random":
        scale = np.sqrt(mean_abs / k) if mean_abs > 0 else 1.0
        U = scale * np.abs(np.random.default_rng([seed, _TAG_U]).standard_normal((m, k)))
        Vt = scale * sample_rows(seed, offset, n, k, np.float64, "absnormal")
        return np.ascontiguousarray(U, dtype=dtype), np.ascontiguousarray(Vt, dtype=dtype)
    if mean_abs == 0.0:  # all-zero data: any nonnegative point is optimal
        return np.zeros((m, k), dtype), np.zeros((n, k), dtype)
    fill = np.sqrt(mean_abs / k)
    U, Vt = _nndsvd_factors(A, k, seed, fill, comm, offset, N)
    if init == "nndsvda":
        U[U == 0] = mean_abs
        Vt[Vt == 0] = mean_abs
    return np.ascontiguousarray(U, dtype=dtype), np.ascontiguousarray(Vt, dtype=dtype)
