"""Sparse data for :func:`fastnmf.nmf`: validation and the two products.

A scipy.sparse matrix (or array) given as ``A`` is validated once and kept
as a :class:`SparseData`: CSR arrays of ``A`` and of ``A.T`` (the second
so that both products the solver needs, ``A @ Vt`` and ``A.T @ U``, are
row-parallel gathers, :mod:`fastnmf._sparse_kernels`), in the working
dtype, with int32 indices where they fit. It never densifies A: memory
is about twice A's CSR size, each product O(nnz k).
"""
from __future__ import annotations

import numpy as np

from . import _sparse_kernels as SK
from ._kernels import _SERIAL_BELOW, abs_sum64, dot64, scan_values
from ._threads import get_num_threads
from ._validation import _TRUSTED, check_dtype, check_magnitude, check_matrix
from ._workspace import scratch

__all__ = ["SparseData", "is_sparse", "check_sparse", "check_data", "matmul_into",
           "dense_matmul_into", "sparse_data"]


def is_sparse(A) -> bool:
    """True for scipy.sparse matrices and arrays (and for :class:`SparseData`)."""
    return isinstance(A, SparseData) or (hasattr(A, "tocsr") and hasattr(A, "nnz"))


class SparseData:
    """A validated sparse matrix (m, n) in CSR form, with its transpose.

    Made by :func:`fastnmf.sparse_data` (or by a solve from the scipy
    matrix it is given). Attributes: ``shape``, ``dtype``, ``nnz``,
    ``ndim`` (2), the CSR arrays ``indptr``, ``indices``, ``data``; ``T``
    is the transpose (sharing both CSR copies, no work). ``A @ X`` or
    ``A.matmul(X, out=None)`` for a dense X (n, k) give the dense product
    (m, k), parallel over row blocks; ``A.gram()`` the dense ``A^T A``;
    ``toarray()`` and ``astype(dtype)`` as numpy's.
    """

    ndim = 2

    def __init__(self, csr, csr_t, _transposed=None):
        self.indptr, self.indices, self.data = csr
        self._csr_t = csr_t
        self.shape = (self.indptr.shape[0] - 1, csr_t[0].shape[0] - 1)
        self.dtype = self.data.dtype
        self.nnz = int(self.data.shape[0])
        self._T = _transposed
        self._bounds = {}
        self._all_rows = np.array([0, self.shape[0]], np.int64)   # one serial block

    @property
    def T(self) -> "SparseData":
        if self._T is None:
            self._T = SparseData(self._csr_t, (self.indptr, self.indices, self.data),
                                 _transposed=self)
        return self._T

    def row_bounds(self, n_threads: int) -> np.ndarray:
        """Row blocks of equal nonzero counts for ``n_threads`` threads (cached)."""
        b = self._bounds.get(n_threads)
        if b is None:
            b = self._bounds[n_threads] = SK.row_blocks(
                self.indptr, max(1, n_threads) * SK.BLOCKS_PER_THREAD)
        return b

    def __matmul__(self, X):
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[0] != self.shape[1]:
            raise ValueError(f"shapes {self.shape} and {X.shape} do not multiply")
        return matmul_into(np.empty((self.shape[0], X.shape[1]), self.dtype), self, X)

    def matmul(self, X, out=None) -> np.ndarray:
        """``A @ X`` for a dense X (n, k), written into ``out`` (m, k,
        C-contiguous, this dtype) when given: a loop's products without
        a fresh m x k array each time. O(nnz k), parallel over row blocks."""
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[0] != self.shape[1]:
            raise ValueError(f"shapes {self.shape} and {X.shape} do not multiply")
        if out is None:
            out = np.empty((self.shape[0], X.shape[1]), self.dtype)
        elif (out.shape != (self.shape[0], X.shape[1]) or out.dtype != self.dtype
              or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous {self.dtype.name} array of shape "
                             f"{(self.shape[0], X.shape[1])}")
        return matmul_into(out, self, X)

    def gram(self, out=None) -> np.ndarray:
        """``A^T A`` (n, n) as a dense array of this dtype (``out``: written
        there). O(sum over rows of nnz(row)^2), parallel over the output's
        rows; for an input of n features that is the first layer's Gram
        matrix."""
        n = self.shape[1]
        if out is None:
            out = np.empty((n, n), self.dtype)
        work = float(np.sum(np.diff(self.indptr).astype(np.float64) ** 2))
        kern = (SK.csr_gram_serial if get_num_threads() == 1 or work < _SERIAL_BELOW
                else SK.csr_gram_parallel)
        indptr_t, indices_t, data_t = self._csr_t
        kern(indptr_t, indices_t, data_t, self.indptr, self.indices, self.data, out)
        return out

    def sq_norm(self) -> float:
        """``||A||_F^2`` in float64 (one read of the stored values, no copy)."""
        d = self.data.reshape(1, -1)
        return float(dot64(d, d))

    def abs_sum(self) -> float:
        """Sum of |entries| in float64 (one read, no copy)."""
        return float(abs_sum64(self.data.reshape(1, -1)))

    def astype(self, dtype) -> "SparseData":
        """A copy of the stored values in ``dtype`` (the index arrays shared)."""
        def cast(csr):
            return csr[0], csr[1], np.ascontiguousarray(csr[2], dtype=dtype)
        return SparseData(cast((self.indptr, self.indices, self.data)), cast(self._csr_t))

    def toarray(self) -> np.ndarray:
        """The dense matrix (tests and small problems only)."""
        out = np.zeros(self.shape, self.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, self.indices), self.data)
        return out

    def __repr__(self) -> str:
        return (f"SparseData(shape={self.shape}, dtype={self.dtype.name}, nnz={self.nnz})")


def matmul_into(out, A: SparseData, X):
    """``out[...] = A @ X`` for sparse A (m, n), X (n, k) and out (m, k), both
    C-contiguous in A's dtype (parallel over row blocks of equal nonzero
    counts; serial when small). O(nnz k). Returns out."""
    nt = get_num_threads()
    # below _kernels' serial cut (nnz k multiply-adds) a parallel launch costs more than it saves
    if nt == 1 or A.nnz * X.shape[1] < _SERIAL_BELOW:
        SK.csr_matmul_serial(A._all_rows, A.indptr, A.indices, A.data, X, out)
    else:
        SK.csr_matmul_parallel(A.row_bounds(nt), A.indptr, A.indices, A.data, X, out)
    return out


def dense_matmul_into(out, X, S: SparseData):
    """``out[...] = X @ S`` for a dense X (m, r) and sparse S (r, c), out (m,
    c); X and out in C or F order. Computed as ``out^T = S^T @ X^T``: the
    CSR of S's transpose gathers rows of X^T (m-long each), reading S once
    (:func:`matmul_into`). X^T and, for a C-ordered out, out^T go through
    workspace scratch when they are not already C-contiguous. A scatter of
    S's rows into each row of out instead (parallel over out's rows) read S
    once per row: 100 x 16000 times 16000 x 5000 at 2% density took 117 ms
    against 13 ms this way (scipy's ``X @ S``: 36 ms). O(nnz(S) m)."""
    Xt = X.T
    if not Xt.flags.c_contiguous:
        Xt = scratch("dense_sparse_xt", Xt.shape, X.dtype)
        np.copyto(Xt, X.T)
    if out.flags.f_contiguous:
        matmul_into(out.T, S.T, Xt)
    else:
        outT = scratch("dense_sparse_out", (out.shape[1], out.shape[0]), out.dtype)
        out[...] = matmul_into(outT, S.T, Xt).T
    return out


def sparse_data(A, *, dtype=None, nonnegative: bool = False,
                allow_empty_columns: bool = False) -> SparseData:
    """A scipy.sparse matrix (or array) validated once, for repeated solves.

    The solves that take sparse arguments (``nmf``, ``semi_nmf``,
    ``nnls``, ``ridge_lstsq``: the data A; ``relu_lstsq(update="U")``: the
    fixed factor V) convert a scipy matrix to CSR arrays of it and of its
    transpose, and scan its values, at every call. Pass the object this
    returns instead when the same matrix is used again and again (a
    network's input, sweep after sweep): that work is then done once.

    Parameters
    ----------
    A : scipy.sparse matrix or array, shape (m, n)
        Real, finite values; duplicates are summed.
    dtype : {None, numpy.float32, numpy.float64}
        Working dtype (default: A's, integers as float64).
    nonnegative : bool, default False
        Also require A >= 0.
    allow_empty_columns : bool, default False
        Accept n = 0 (a process's share of the samples in a data-parallel
        solve may be none).

    Returns
    -------
    SparseData
        ``shape``, ``dtype``, ``nnz``, ``T`` (the transpose, free),
        ``matmul(X, out=None)`` (``A @ X`` for dense X), ``gram()`` (``A^T
        A``, dense) and ``toarray()``.

    Raises
    ------
    TypeError
        If A is not sparse, or complex / non-numeric.
    ValueError
        If A is empty or not 2-D, has NaN/Inf (or negative values with
        ``nonnegative``) or values outside :func:`fastnmf.magnitude_range`.
    """
    if not is_sparse(A):
        raise TypeError(f"A must be a scipy.sparse matrix or array, got {type(A).__name__}")
    return check_sparse(A, "A", nonnegative=nonnegative, dtype=dtype,
                        allow_empty_columns=allow_empty_columns)


def _index_dtype(A) -> type:
    return np.int32 if max(A.nnz, *A.shape) < np.iinfo(np.int32).max else np.int64


def _csr_arrays(csr, idx):
    return (np.ascontiguousarray(csr.indptr, dtype=idx),
            np.ascontiguousarray(csr.indices, dtype=idx),
            np.ascontiguousarray(csr.data))


def check_data(A, name: str, *, nonnegative: bool = False, dtype=None,
               allow_empty_columns: bool = False):
    """The data of a solver that takes dense or sparse input: a
    scipy.sparse A through :func:`check_sparse`, anything else through
    :func:`fastnmf._validation.check_matrix`, with the same options."""
    check = check_sparse if is_sparse(A) else check_matrix
    return check(A, name, nonnegative=nonnegative, dtype=dtype,
                 allow_empty_columns=allow_empty_columns)


def check_sparse(A, name: str, *, nonnegative: bool = False, dtype=None,
                 allow_empty_columns: bool = False) -> SparseData:
    """Validate a scipy.sparse matrix or array and return it as :class:`SparseData`.

    The same rules as :func:`fastnmf._validation.check_matrix`: 2-D, not
    empty, real numeric (float32 and float64 kept, float16 becomes float32,
    integers and bools float64, unless ``dtype`` forces one), finite
    stored values (NaN/Inf: ValueError), nonnegative if asked, largest
    magnitude within :func:`fastnmf.magnitude_range`. Duplicate entries
    are summed. O(nnz) plus scipy's CSR and transpose conversions.
    ``allow_empty_columns``: zero columns are valid (a process's share of
    the samples in a data-parallel run may be none).
    """
    if isinstance(A, SparseData):
        return A if dtype is None or A.dtype == check_dtype(dtype) else A.astype(dtype)
    shape = tuple(A.shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array, got {len(shape)}-D with shape {shape}")
    if shape[0] == 0 or (shape[1] == 0 and not allow_empty_columns):
        raise ValueError(f"{name} is empty (shape {shape})")
    kind = np.dtype(A.dtype).kind
    if kind == "c":
        raise TypeError(f"{name} has complex dtype {A.dtype}; only real data is supported")
    if kind not in "fiub":
        raise TypeError(f"{name} has non-numeric dtype {A.dtype}")
    if dtype is None:
        dt = np.dtype(A.dtype)
        dtype = (dt if dt in (np.float32, np.float64)
                 else np.float32 if dt == np.float16 else np.float64)
    dtype = check_dtype(dtype)
    csr = A.tocsr()
    if csr.dtype != dtype:
        csr = csr.astype(dtype)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    if not _TRUSTED.get() and csr.nnz:
        finite, negative, amax = scan_values(np.ascontiguousarray(csr.data))
        if not finite:
            raise ValueError(f"{name} contains NaN or Inf")
        if nonnegative and negative:
            raise ValueError(f"{name} must be nonnegative, but its minimum is "
                             f"{csr.data.min()!r}")
        check_magnitude(_Shape(shape, dtype), name, amax=amax)
    idx = _index_dtype(csr)
    return SparseData(_csr_arrays(csr, idx), _csr_arrays(csr.T.tocsr(), idx))


class _Shape:
    """What :func:`check_magnitude` reads of an array: shape and dtype."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)
