"""Plain NumPy implementations of the update rules fastnmf implements.

These are the "straightforward NumPy" peers of the benchmarks: the same
algorithms, written the way a careful NumPy user would (BLAS GEMMs, a
Cholesky/inverse of the small Gram matrix, vectorised elementwise
expressions), with no fused or compiled kernels. Each records the relative
error per iteration and the wall time at which it was reached, so the
comparison is "time to equal error" as well as time per iteration.
"""
from __future__ import annotations

import time

import numpy as np


def _ridge_inv(G, alpha):
    G = G.astype(np.float64) + alpha * np.eye(G.shape[0])
    return np.linalg.inv(G)


def _track(errors, times, t0, value):
    errors.append(value)
    times.append(time.perf_counter() - t0)


def nmf_hals(A, U, V, n_iter):
    """Cichocki's HALS, one sweep per block, component by component."""
    U, V = U.copy(), V.copy()
    nA = np.linalg.norm(A)
    errors, times = [], []
    t0 = time.perf_counter()
    for _ in range(n_iter):
        AVt, VVt = A @ V.T, V @ V.T
        for j in range(U.shape[1]):
            if VVt[j, j] > 0:
                U[:, j] = np.maximum(0, U[:, j] + (AVt[:, j] - U @ VVt[:, j]) / VVt[j, j])
        UtA, UtU = U.T @ A, U.T @ U
        for j in range(V.shape[0]):
            if UtU[j, j] > 0:
                V[j] = np.maximum(0, V[j] + (UtA[j] - UtU[j] @ V) / UtU[j, j])
        _track(errors, times, t0, np.linalg.norm(A - U @ V) / nA)
    return U, V, np.array(errors), np.array(times)


def semi_nmf_mu(A, U, V, n_iter, alpha=0.0, eps=None):
    """Ding-Li-Jordan semi-NMF: least-squares U, multiplicative V."""
    V = V.copy()
    eps = np.finfo(A.dtype).eps if eps is None else eps
    nA = np.linalg.norm(A)
    errors, times = [], []
    t0 = time.perf_counter()
    for _ in range(n_iter):
        U = (A @ V.T) @ _ridge_inv(V @ V.T, alpha).astype(A.dtype)
        UtA, UtU = U.T @ A, U.T @ U
        Ap, Am = (np.abs(UtA) + UtA) / 2, (np.abs(UtA) - UtA) / 2
        Gp, Gm = (np.abs(UtU) + UtU) / 2, (np.abs(UtU) - UtU) / 2
        V = V * np.sqrt((Ap + Gm @ V) / (Am + Gp @ V + eps))
        _track(errors, times, t0, np.linalg.norm(A - U @ V) / nA)
    return U, V, np.array(errors), np.array(times)


def semi_nmf_hals(A, U, V, n_iter, n_inner, alpha=0.0):
    """Semi-NMF with least-squares U and ``n_inner`` HALS sweeps on V."""
    V = V.copy()
    nA = np.linalg.norm(A)
    errors, times = [], []
    t0 = time.perf_counter()
    for _ in range(n_iter):
        U = (A @ V.T) @ _ridge_inv(V @ V.T, alpha).astype(A.dtype)
        UtA, UtU = U.T @ A, U.T @ U
        for _ in range(n_inner):
            for j in range(V.shape[0]):
                if UtU[j, j] > 0:
                    V[j] = np.maximum(0, V[j] + (UtA[j] - UtU[j] @ V) / UtU[j, j])
        _track(errors, times, t0, np.linalg.norm(A - U @ V) / nA)
    return U, V, np.array(errors), np.array(times)


def nonlinear_semi_nmf(A, U, V, n_iter, n_inner=2, omega=1.0, alpha=0.0):
    """Nonlinear semi-NMF A ~ relu(U V) by the fixed-point iterations."""
    U, V = U.copy(), V.copy()
    nA = np.linalg.norm(A)
    errors, times = [], []
    t0 = time.perf_counter()
    for _ in range(n_iter):
        Vp = V.T @ _ridge_inv(V @ V.T, alpha).astype(A.dtype)
        for _ in range(n_inner):
            R = A - np.maximum(U @ V, 0)
            U = U + omega * (R @ Vp)
        Up = _ridge_inv(U.T @ U, alpha).astype(A.dtype) @ U.T
        for _ in range(n_inner):
            R = A - np.maximum(U @ V, 0)
            V = np.maximum(0, V + omega * (Up @ R))
        _track(errors, times, t0, np.linalg.norm(A - np.maximum(U @ V, 0)) / nA)
    return U, V, np.array(errors), np.array(times)
