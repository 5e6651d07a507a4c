"""The Gram matrix of a fixed factor, applied but never formed:
:class:`ImplicitGram`, the iterative alternative to :class:`FixedGram`."""
from __future__ import annotations

import warnings

import numpy as np

from ._comm import as_comm
from ._sparse import SparseData, check_sparse, is_sparse
from ._sparse import matmul_into as _sparse_matmul_into
from ._validation import check_choice, check_float, check_int, check_matrix

__all__ = ["ImplicitGram"]


class ImplicitGram:
    """``G = V V^T`` of a fixed factor V (k, n), dense or sparse, never formed.

    :func:`fastnmf.relu_lstsq` (``update="U"``, as ``fixed_gram``) then
    solves each step ``E (G + s I)^{-1}`` by preconditioned block
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
    preconditioner : {"nystrom", "jacobi"}, default "nystrom"
        "jacobi": divide by ``diag(G) + s``. "nystrom": a randomized
        rank-``rank`` Nystrom approximation ``G ~ Q diag(lam) Q^T``
        (Frangella, Tropp & Udell, SIAM J. Matrix Anal. Appl. 2023), made
        at the first solve from one product of G with ``rank`` random
        columns and kept for every shift, deflates G's leading
        eigenvalues, and Jacobi takes the rest:
        ``P^{-1} = Q diag(1/(lam + s)) Q^T + (I - QQ^T) D^{-1} (I - QQ^T)``,
        D the diagonal of ``G - Q diag(lam) Q^T`` (what the sketch leaves)
        plus s (SPD; two GEMMs of k x 2 rank x m per CG
        iteration, in V's dtype). On tf-idf of 2000-20000 words (a
        network's first layer, m = 100) it took 14-18 iterations per solve
        against Jacobi's 34-42, and the fit was 1.1-2.2x faster
        (``bench/sparse_input.py --solvers direct,cg,cg-jacobi``); the
        paper's plain Nystrom preconditioner (identity on the complement)
        took 180 iterations against Jacobi's 57 on a sparse V with
        unequal row norms, where this one takes 51-53 (README "Sparse X").
    rank : int >= 1, default 100
        The Nystrom sketch's rank (capped at k). Its cost: one product
        with G of ``rank`` columns, a QR and an SVD of k x rank float64
        matrices, once; k x 2 rank memory in V's dtype per solve.
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
    sketch : (Q, lam) or None
        The Nystrom approximation (Q (k, r) orthonormal columns, lam (r,)
        descending, float64), once the first solve has made it (r < rank
        where G has lower rank; r = 0 for G = 0, leaving Jacobi).
    """

    def __init__(self, V, *, tol=1e-4, max_iter=500, preconditioner="nystrom", rank=100,
                 comm=None):
        self.comm = comm = as_comm(comm)
        self.tol = check_float(tol, "tol", strict=True)
        if not self.tol < 1:
            raise ValueError(f"tol must be < 1, got {tol!r}")
        self.max_iter = check_int(max_iter, "max_iter", minimum=1)
        self.preconditioner = check_choice(preconditioner, "preconditioner",
                                           ("nystrom", "jacobi"))
        self.rank = check_int(rank, "rank", minimum=1)
        self.sketch = None
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

    def _make_sketch(self):
        """The randomized Nystrom approximation ``G ~ Q diag(lam) Q^T``
        (Frangella, Tropp & Udell 2023, Algorithm 2.1, with the small
        core inverted by its eigendecomposition so that a rank-deficient G
        needs no retry): ``Y = G Om`` for an orthonormal random Om (k, r),
        shifted by ``nu = sqrt(k) eps ||Y||``;
        ``G_nys = Y (Om^T Y)^+ Y^T = B B^T``; Q, sqrt(lam + nu) = svd(B).
        The random matrix comes from a fixed seed, so every process of a
        communicator makes the same sketch. O(k r^2) plus one product."""
        k = self.shape[0]
        r = min(self.rank, k)
        n = self._V.shape[1]
        dt = self.dtype
        Om = np.linalg.qr(np.random.default_rng(0).standard_normal((k, r)))[0]
        Om = np.ascontiguousarray(Om)
        Y = np.empty((k, r))
        self._apply_into(Y, Om, (np.empty((k, r), dt), np.empty((n, r), dt), np.empty((k, r), dt)))
        nu = np.sqrt(k) * np.finfo(np.float64).eps * float(np.linalg.norm(Y))
        Y += nu * Om
        core = Om.T @ Y
        theta, W = np.linalg.eigh(0.5 * (core + core.T))
        keep = theta > max(float(theta[-1]), 0.0) * r * np.finfo(np.float64).eps
        if not keep.any():                      # G = 0: no sketch, Jacobi alone
            self.sketch = (np.zeros((k, 0)), np.zeros(0))
            self.tail_diagonal = self.diagonal
            return
        B = Y @ (W[:, keep] / np.sqrt(theta[keep]))
        Q, sig, _ = np.linalg.svd(B, full_matrices=False)
        lam = np.maximum(sig * sig - nu, 0.0)
        self.sketch = (np.ascontiguousarray(Q), lam)
        # what the sketch leaves of diag(G), the Jacobi part's (clipped at
        # 0 against rounding): G of rank <= r leaves 0, the shift alone
        self.tail_diagonal = np.maximum(self.diagonal - (Q * Q) @ lam, 0.0)

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
        k, m = B.shape
        if self.preconditioner == "nystrom":
            if self.sketch is None:
                self._make_sketch()
            Q, lam = self.sketch
            r, dt = Q.shape[1], self.dtype     # the rank-2r GEMMs in V's dtype
            J = (1.0 / (self.tail_diagonal + shift))[:, None]
            W = np.empty((k, 2 * r), dt)
            W[:, :r] = Q
            W[:, r:] = J * Q
            K = (Q.T @ (J * Q)).astype(dt)              # Q^T J Q
            il = (1.0 / (lam + shift))[:, None].astype(dt)
            Rd = np.empty((k, m), dt)
            S = np.empty((2 * r, m), dt)
            H = np.empty((2 * r, m), dt)
            Zd = np.empty((k, m), dt)

            def precondition(Z, R):  # Z <- Q (Q^T R / (lam + s)) + (I - QQ^T) J (I - QQ^T) R
                np.copyto(Rd, R)
                np.matmul(W.T, Rd, out=S)               # [Q^T R; Q^T J R]
                C, F = S[:r], S[r:]
                np.matmul(K, C, out=H[:r])
                H[:r] -= F
                H[:r] += il * C
                np.negative(C, out=H[r:])
                np.matmul(W, H, out=Zd)
                np.multiply(J, R, out=Z)
                Z += Zd
        else:
            M = (1.0 / (self.diagonal + shift))[:, None]

            def precondition(Z, R):           # Z <- R / (diag(G) + s)
                np.multiply(M, R, out=Z)
        dt = self.dtype
        bufs = (np.empty((k, m), dt), np.empty((self._V.shape[1], m), dt), np.empty((k, m), dt))
        AP = np.empty_like(B)
        X = np.zeros_like(B)
        R = B.copy()
        Z = np.empty_like(B)
        precondition(Z, R)
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
            precondition(Z, R)
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
        pre = (f"nystrom rank {self.rank}" if self.preconditioner == "nystrom"
               else self.preconditioner)
        return f"ImplicitGram(k={self.shape[0]}, {kind} V, tol={self.tol:g}, {pre})"
