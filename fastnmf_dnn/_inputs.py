"""A layer's input as the solves take it, dense or scipy.sparse: each
sample's row scaled by ``sqrt(w)`` (sample weights), and the bias input
appended as a last column (ones, or that same scale)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["scale_rows", "with_bias_column"]


def scale_rows(X, row_scale):
    """``X`` with row j times ``row_scale[j]``: a new array (dense) or CSR
    matrix (sparse); X itself when ``row_scale`` is None."""
    if row_scale is None:
        return X
    if sp.issparse(X):
        return sp.csr_matrix(X.multiply(row_scale[:, None]))
    return X * row_scale[:, None]


def with_bias_column(H, bias, row_scale, dtype):
    """``[H, b]`` (N, d + 1) in ``dtype``, b the bias input: ones, or
    ``row_scale`` (a row-scaled H's bias input); H itself without ``bias``.
    A sparse H gives a CSR matrix (the bias column stored), a dense one a
    new dense array."""
    if not bias:
        return H
    N = H.shape[0]
    b = np.ones(N, dtype) if row_scale is None else row_scale.astype(dtype)
    if sp.issparse(H):
        return sp.hstack([H, sp.csr_matrix(b[:, None])], format="csr").astype(dtype)
    Hb = np.empty((N, H.shape[1] + 1), dtype)
    Hb[:, :-1] = H
    Hb[:, -1] = b
    return Hb
