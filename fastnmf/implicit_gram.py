"""The Gram matrix of a fixed factor, applied but never formed:
:class:`ImplicitGram`, the iterative alternative to :class:`FixedGram`."""
from __future__ import annotations

import warnings

import numpy as np

from ._comm import as_comm
from ._sparse import SparseData, check_sparse, is_sparse
from ._sparse import matmul_into as _sparse_matmul_into
from ._validation import check_float, check_int, check_matrix

__all__ = ["ImplicitGram"]


class ImplicitGram:
    """``G = V V^T`` of a fixed factor V (k, n), dense or sparse, never formed.

    :func:`fastnmf.relu_lstsq` (``update="U"``, as ``fixed_gram``) then
    solves each step ``E (G + s I)^{-1}`` by Jacobi-preconditioned block
    conjugate gradients instead of through an explicit inverse: each CG
    iteration applies G as two products with V (``V (V^T P)``: O(nnz m)
    for a sparse V, two GEMMs for a dense one), so neither the k x k
    matrix nor its inverse (O(k^3) time, O(k^2) memory) is ever made. For
    a network's first layer on a wide sparse input (k = d + 1 features in
    the tens of thousands) that is the difference between possible and
    not; for k up to a few thousand the explicit :class:`FixedGram`
    inverse, formed once and applied by one GEMM per step, is faster.

    Parameters
    ----------
    V : array_like or scipy.sparse matrix (or :func:`fastnmf.sparse_data`), shape (k, n)
        The fixed factor (a layer's input, transposed: features x samples).
    tol : float in (0, 1), default 1e-4
        Stop when every column's residual norm is below ``tol`` times its
        right-hand side's.
    max_iter : int >= 1, default 500
        At most this many CG iterations per solve (each starts from zero:
        starting from the previous solve's answer saved no iterations in a
        network's sweeps, 34-41 either way on 16000 x 5000 tf-idf).
    comm : mpi4py communicator or None
        Data-parallel: V holds this process's columns (samples); every
        product with G is summed over the processes (one allreduce of a
        k x m array per iteration), and every process gets the same answer.

    Attributes
    ----------
    shape : (k, k)
    trace : float
        ``trace(G) = ||V||_F^2`` (over all processes).
    diagonal : ndarray, shape (k,), float64
        ``diag(G)``, the preconditioner's.
    iterations : list of int
        CG iterations of every solve so far. A solve that stops at
        ``max_iter`` before reaching ``tol`` warns (RuntimeWarning).
    """

    def __init__(self, V, *, tol=1e-4, max_iter=500, comm=None):
        self.comm = comm = as_comm(comm)
        self.tol = check_float(tol, "tol", strict=True)
        if not self.tol < 1:
            raise ValueError(f"tol must be < 1, got {tol!r}")
        self.max_iter = check_int(max_iter, "max_iter", minimum=1)
        split = comm.size > 1
        if is_sparse(V):
            V = check_sparse(V, "V", allow_empty_columns=split)
            rows = np.repeat(np.arange(V.shape[0]), np.diff(V.indptr))
            sq = V.data.astype(np.float64) ** 2
            diag = np.bincount(rows, weights=sq, minlength=V.shape[0])
        else:
            V = check_matrix(V, "V", allow_empty_columns=split)
            V64 = V.astype(np.float64, copy=False)
            diag = np.einsum("ij,ij->i", V64, V64)
        self._V = V
        self.diagonal = comm.sum_(np.ascontiguousarray(diag, dtype=np.float64))
        self.trace = float(self.diagonal.sum())
        self.shape = (V.shape[0], V.shape[0])
        self.dtype = V.dtype
        self.iterations = []

    def _apply_into(self, AP, P, bufs):
        """``AP <- G P`` (k, m), float64, for P (k, m) float64: ``V (V^T P)``
        in V's dtype, summed over the processes. ``bufs``: the products'
        buffers (Pd (k, m), T (n, m), GPd (k, m), in V's dtype), made once
        per solve."""
        V = self._V
        Pd, T, GPd = bufs
        np.copyto(Pd, P)
        if isinstance(V, SparseData):
            _sparse_matmul_into(T, V.T, Pd)
            _sparse_matmul_into(GPd, V, T)
        else:
            np.matmul(V.T, Pd, out=T)
            np.matmul(V, T, out=GPd)
        np.copyto(AP, GPd)
        return self.comm.sum_(AP)

    def solve_right_into(self, out, E, shift: float):
        """``out <- E (G + shift I)^{-1}`` for E (m, k); out (m, k) in E's
        dtype. ``shift`` > 0. The m columns of ``E^T`` are solved together
        (one pair of products with V per iteration for all of them). Returns
        out."""
        shift = float(shift)
        if not shift > 0:
            raise ValueError(f"ImplicitGram needs a positive shift (ridge), got {shift!r}")
        B = np.array(E.T, dtype=np.float64, order="C")      # (k, m)
        bnorm = np.linalg.norm(B, axis=0)
        bnorm[bnorm == 0] = 1.0
        M = 1.0 / (self.diagonal + shift)                   # Jacobi preconditioner
        k, m = B.shape
        dt = self.dtype
        bufs = (np.empty((k, m), dt), np.empty((self._V.shape[1], m), dt), np.empty((k, m), dt))
        AP = np.empty_like(B)
        X = np.zeros_like(B)
        R = B.copy()
        Z = M[:, None] * R
        P = Z.copy()
        rz = np.einsum("ij,ij->j", R, Z)
        it = 0
        while it < self.max_iter and (np.linalg.norm(R, axis=0) / bnorm).max() > self.tol:
            self._apply_into(AP, P, bufs)
            AP += shift * P
            pap = np.einsum("ij,ij->j", P, AP)
            a = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
            X += a * P
            R -= a * AP
            np.multiply(M[:, None], R, out=Z)
            rz_new = np.einsum("ij,ij->j", R, Z)
            beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
            P *= beta
            P += Z
            rz = rz_new
            it += 1
        self.iterations.append(it)
        if it == self.max_iter:
            worst = float((np.linalg.norm(R, axis=0) / bnorm).max())
            if worst > self.tol:
                warnings.warn(f"ImplicitGram: CG stopped at max_iter={self.max_iter} with a "
                              f"relative residual {worst:.1e} > tol={self.tol:g}; raise max_iter "
                              "or the ridge", RuntimeWarning, stacklevel=2)
        out[...] = X.T
        return out

    def __repr__(self):
        kind = "sparse" if isinstance(self._V, SparseData) else "dense"
        return f"ImplicitGram(k={self.shape[0]}, {kind} V, tol={self.tol:g})"
