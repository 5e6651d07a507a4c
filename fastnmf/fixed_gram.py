"""A Gram matrix that several solves share, with its regularised inverse kept."""
from __future__ import annotations

import numpy as np

from ._linalg import ridge_inverse
from ._validation import check_matrix

__all__ = ["FixedGram"]


class FixedGram:
    """The Gram matrix ``V V^T`` of a factor that several solves share.

    Pass it as ``fixed_gram`` to :func:`fastnmf.relu_lstsq` (``update="U"``)
    when the same V comes back call after call, e.g. a network's first
    layer, whose input never changes: the matrix is validated once here, and
    the regularised inverse ``(G + s I)^{-1}`` each call applies is formed
    once per shift ``s`` (ridge plus weight decay) and dtype and then kept,
    where a plain array is factored again by every call. (784 + 1 inputs:
    a float64 Cholesky, a triangular inverse and a k x k x k product, about
    20 ms on 2 cores per call.)

    Parameters
    ----------
    G : array_like, shape (k, k)
        Symmetric positive semi-definite, e.g. ``V @ V.T`` (summed over the
        processes of a data-parallel solve). Copied; later changes to the
        caller's array do not reach it.
    dtype : {None, numpy.float32, numpy.float64}
        Dtype of the kept matrix; default that of G.

    Attributes
    ----------
    matrix : ndarray, shape (k, k), read-only
    trace : float
        ``trace(G)`` (``||V||_F^2``), in float64.

    Notes
    -----
    Only the last shift's inverse is kept (k^2 values per dtype): a caller
    alternating between shifts refactors each time, as with an array.
    """

    def __init__(self, G, *, dtype=None):
        G = np.array(check_matrix(G, "G", dtype=dtype, magnitude=False), order="C", copy=True)
        if G.shape[0] != G.shape[1]:
            raise ValueError(f"G must be square (k x k), got shape {G.shape}")
        G.setflags(write=False)
        self._set(G)

    @classmethod
    def _of_checked(cls, G) -> "FixedGram":
        """A solve's own wrapper of a Gram array it has validated already
        (``relu_lstsq(fixed_gram=array)``): not checked or copied again; it
        lives for that one call."""
        self = cls.__new__(cls)
        self._set(G)
        return self

    def _set(self, G) -> None:
        self.matrix = G
        self.trace = float(np.trace(G, dtype=np.float64))
        self._kept = {}   # dtype -> (shift, inverse)

    @property
    def shape(self):
        return self.matrix.shape

    def inverse(self, shift: float, dtype) -> np.ndarray:
        """``(G + shift I)^{-1}`` in ``dtype`` (read-only; formed at the
        first call with this shift and dtype, then reused)."""
        dtype = np.dtype(dtype)
        kept = self._kept.get(dtype)
        if kept is not None and kept[0] == shift:
            return kept[1]
        inv = ridge_inverse(self.matrix, shift, dtype)
        inv.setflags(write=False)
        self._kept[dtype] = (float(shift), inv)
        return inv

    def __repr__(self):
        k = self.matrix.shape[0]
        return f"FixedGram(k={k}, dtype={self.matrix.dtype.name})"
