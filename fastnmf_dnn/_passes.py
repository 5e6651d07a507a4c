"""Parallel elementwise passes of the training sweep (Numba).

The trainer's own full-size passes over its (N, n + 1) activation buffers:
the ReLU after each forward product and (``bottom_up`` only) the copy of a
layer's target into the buffer that keeps it; and over its (N, c) outputs: the
margin targets and the training loss (NumPy's where/maximum/minimum
chains cost ~0.25 ms of a 3.3 ms digits sweep). In NumPy each is one serial pass;
with many cores they became a visible share of a sweep (16 cores, Fashion
784-500-500-10: the ReLU and the copies about 60 ms of a 0.8 s sweep;
README "Beyond 2 cores"). Same contract as :mod:`fastnmf._kernels`: pure
loops over caller-allocated arrays, no validation, parallel over rows with
``prange`` on the threads ``fastnmf.threads`` / ``set_num_threads`` allow
(Numba's pool, which that knob limits with BLAS; nothing here calls BLAS).
O(size) each.

Each pass is one loop body compiled twice (``fastnmf._jit.njit_build``):
parallel (``relu_`` ...) for large buffers and serial (``relu_serial_``
...) for small ones, where a parallel launch costs more than the pass.
The serial build replaced NumPy there: NumPy's ``maximum``/``copyto`` into or out of a column slice of a
(p, n + 1) buffer runs a strided, unvectorised loop (digits, 1438 x 100:
the ReLU into the activation buffer 100 us in NumPy, 22 us compiled).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from fastnmf._jit import njit_build

# Below this many elements the serial pass beats the parallel launch.
# Right after a BLAS call the parallel pass pays a hand-over between the
# thread pools (about 0.5 ms on 2 cores), which only large buffers repay.
# Measured (2 cores, sweeps of the trainer in turns, parallel passes from
# 65536 elements vs NumPy passes): digits 1438 x 101 buffers 5.15 vs 3.18 ms
# per sweep; 5000 x 501 351 vs 315 ms; 20000 x 501 (1e7 elements) 948 vs
# 1010 ms. Hence 2^22 (4.2e6) elements.
PARALLEL_FROM = 1 << 22


def _relu_body(X):
    """In place ``X <- max(X, 0)`` on a C-contiguous 2-D array (NaN stays)."""
    p, k = X.shape
    zero = X.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            if X[i, j] < zero:
                X[i, j] = zero


def _copy_columns_body(dst, src):
    """``dst[:, :] = src[:, :k]`` with k = dst.shape[1]; src (p, >= k), both
    with unit stride along rows (dst C-contiguous)."""
    p, k = dst.shape
    for i in prange(p):
        for j in range(k):
            dst[i, j] = src[i, j]


def _relu_copy_body(dst, src):
    """``dst[:, :k] = max(src, 0)`` with k = src.shape[1]; src C-contiguous,
    dst (p, >= k) with unit stride along rows (NaN stays)."""
    p, k = src.shape
    zero = src.dtype.type(0)
    for i in prange(p):
        for j in range(k):
            v = src[i, j]
            dst[i, j] = zero if v < zero else v


def _margin_targets_body(Y, out, Y0):
    """``Y <- max(out, Y0)`` where ``Y0 > 0``, ``min(out, Y0)`` elsewhere
    (NaN in ``out`` stays, as NumPy's maximum/minimum keep it); all (p, c)
    C-contiguous."""
    p, c = Y.shape
    zero = Y.dtype.type(0)
    for i in prange(p):
        for j in range(c):      # selects, no branches: the loop vectorises
            t = Y0[i, j]
            o = out[i, j]
            hi = t if o <= t else o     # max(o, t), NaN o stays
            lo = t if o >= t else o     # min(o, t), NaN o stays
            Y[i, j] = hi if t > zero else lo


def _sq_loss_body(out, Y0, margin):
    """``sum(R**2)`` in float64 of ``R = out - Y0``, with ``margin`` R's
    entries on the target's right side (above a positive target, below
    the others) counted as 0. Serial only: one fixed summation order, so
    the extrapolation's accept/reject test on it does not depend on the
    thread count."""
    p, c = out.shape
    zero = out.dtype.type(0)
    total = 0.0
    for i in range(p):
        for j in range(c):      # selects, no branches: the loop vectorises
            t = Y0[i, j]
            r = out[i, j] - t
            if margin:
                below = zero if r >= zero else r    # min(r, 0), NaN r stays
                above = zero if r <= zero else r    # max(r, 0), NaN r stays
                r = below if t > zero else above
            total += np.float64(r) * np.float64(r)
    return total


relu_ = njit_build(_relu_body, "relu_", parallel=True)
relu_serial_ = njit_build(_relu_body, "relu_serial_")
copy_columns_ = njit_build(_copy_columns_body, "copy_columns_", parallel=True)
copy_columns_serial_ = njit_build(_copy_columns_body, "copy_columns_serial_")
relu_copy_ = njit_build(_relu_copy_body, "relu_copy_", parallel=True)
relu_copy_serial_ = njit_build(_relu_copy_body, "relu_copy_serial_")
margin_targets_ = njit_build(_margin_targets_body, "margin_targets_", parallel=True)
margin_targets_serial_ = njit_build(_margin_targets_body, "margin_targets_serial_")
# reassoc: the sum vectorises (serial, so its order is still fixed)
sq_loss_ = njit_build(_sq_loss_body, "sq_loss_", fastmath={"reassoc", "contract"})


def relu_inplace(X):
    """``X <- max(X, 0)`` for a C-contiguous X: parallel when large."""
    (relu_ if X.size >= PARALLEL_FROM else relu_serial_)(X)


def copy_columns(dst, src):
    """``dst[...] = src[:, :dst.shape[1]]`` (dst C-contiguous), parallel when large."""
    (copy_columns_ if dst.size >= PARALLEL_FROM else copy_columns_serial_)(dst, src)


def relu_copy(dst, src):
    """``dst[:, :k] = max(src, 0)`` for a C-contiguous src (p, k): the
    forward pass's activations from its kept pre-activations; parallel when
    large."""
    (relu_copy_ if src.size >= PARALLEL_FROM else relu_copy_serial_)(dst, src)


def margin_targets(Y, out, Y0):
    """``Y <- max(out, Y0)`` where Y0 > 0, ``min(out, Y0)`` elsewhere (the
    margin targets of the output layer; exact, as NumPy's where/maximum/
    minimum, without their three temporaries); parallel when large."""
    (margin_targets_ if Y.size >= PARALLEL_FROM else margin_targets_serial_)(Y, out, Y0)


def sq_loss(out, Y0, margin: bool) -> float:
    """``sum(R**2)`` (float64) of ``R = out - Y0``, with ``margin`` the
    entries on the target's right side not counted; one serial pass."""
    return sq_loss_(out, Y0, bool(margin))

