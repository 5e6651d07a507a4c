"""Parallel elementwise passes of the training sweep (Numba).

The trainer's own full-size passes over its (N, n + 1) activation buffers:
the ReLU after each forward product and the copy of a layer's target into
the contiguous buffer its solve reads. In NumPy each is one serial pass;
with many cores they became a visible share of a sweep (16 cores, Fashion
784-500-500-10: the ReLU and the copies about 60 ms of a 0.8 s sweep;
README "Beyond 2 cores"). Same contract as :mod:`fastnmf._kernels`: pure
loops over caller-allocated arrays, no validation, parallel over rows with
``prange`` on the threads ``fastnmf.threads`` / ``set_num_threads`` allow
(Numba's pool, which that knob limits with BLAS; nothing here calls BLAS).
O(size) each.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# Below this many elements a serial NumPy pass beats the parallel launch.
# Right after a BLAS call the parallel pass pays a hand-over between the
# thread pools (about 0.5 ms on 2 cores), which only large buffers repay.
# Measured (2 cores, sweeps of the trainer in turns, parallel passes from
# 65536 elements vs NumPy passes): digits 1438 x 101 buffers 5.15 vs 3.18 ms
# per sweep; 5000 x 501 351 vs 315 ms; 20000 x 501 (1e7 elements) 948 vs
# 1010 ms. Hence 2^22 (4.2e6) elements.
PARALLEL_FROM = 1 << 22


@njit(parallel=True, cache=True)
def relu_(X):
    """In place ``X <- max(X, 0)`` on a C-contiguous 2-D array (NaN stays)."""
    p, k = X.shape
    zero = X.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            if X[i, j] < zero:
                X[i, j] = zero


@njit(parallel=True, cache=True)
def copy_columns_(dst, src):
    """``dst[:, :] = src[:, :k]`` with k = dst.shape[1]; src (p, >= k), both
    with unit stride along rows (dst C-contiguous)."""
    p, k = dst.shape
    for i in prange(p):
        for j in range(k):
            dst[i, j] = src[i, j]


@njit(parallel=True, cache=True)
def relu_copy_(dst, src):
    """``dst[:, :k] = max(src, 0)`` with k = src.shape[1]; src C-contiguous,
    dst (p, >= k) with unit stride along rows (NaN stays)."""
    p, k = src.shape
    zero = src.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            v = src[i, j]
            dst[i, j] = zero if v < zero else v


def relu_inplace(X):
    """``X <- max(X, 0)`` for a C-contiguous X: the parallel pass when large,
    NumPy's when small."""
    if X.size >= PARALLEL_FROM:
        relu_(X)
    else:
        np.maximum(X, 0, out=X)


def copy_columns(dst, src):
    """``dst[...] = src[:, :dst.shape[1]]`` (dst C-contiguous), parallel when large."""
    if dst.size >= PARALLEL_FROM:
        copy_columns_(dst, src)
    else:
        np.copyto(dst, src[:, : dst.shape[1]])


def relu_copy(dst, src):
    """``dst[:, :k] = max(src, 0)`` for a C-contiguous src (p, k): the
    forward pass's activations from its kept pre-activations; parallel when
    large."""
    if src.size >= PARALLEL_FROM:
        relu_copy_(dst, src)
    else:
        np.maximum(src, 0, out=dst[:, : src.shape[1]])
