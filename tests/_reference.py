"""Plain NumPy / pure-Python reference implementations used by the tests.

Everything here is written independently of fastnmf (it never imports it)
and computes in float64, straight from the textbook update rules, so the
library's fused kernels, BLAS calls and tiled sweeps are compared against
something simple enough to trust by reading.
"""
from __future__ import annotations

import numpy as np


def f64(X):
    return np.array(X, dtype=np.float64)


def relu(X):
    return np.maximum(X, 0.0)


# --------------------------------------------------------------------------
# Coordinate descent (HALS) for min_{x >= 0} 0.5 x G x^T - c x^T, row by row.
# --------------------------------------------------------------------------
def hals_sweep_rowwise(X, C, G):
    """One Gauss-Seidel sweep, written as the most literal double loop.

    Returns (new X (float64), sum of squared changes). A coordinate whose
    Gram diagonal is <= 0 is skipped (left untouched).
    """
    X = f64(X)
    C = f64(C)
    G = f64(G)
    p, k = X.shape
    delta = 0.0
    for i in range(p):
        for a in range(k):
            if G[a, a] <= 0:
                continue
            s = C[i, a]
            for b in range(k):
                s -= G[a, b] * X[i, b]
            new = max(0.0, X[i, a] + s / G[a, a])
            delta += (new - X[i, a]) ** 2
            X[i, a] = new
    return X, delta


def hals_sweep(X, C, G):
    """Same sweep, vectorised over the (independent) rows; used for larger p."""
    X = f64(X)
    C = f64(C)
    G = f64(G)
    k = X.shape[1]
    delta = 0.0
    for a in range(k):
        if G[a, a] <= 0:
            continue
        s = C[:, a] - X @ G[a, :]
        new = np.maximum(0.0, X[:, a] + s / G[a, a])
        delta += float(np.sum((new - X[:, a]) ** 2))
        X[:, a] = new
    return X, delta


# --------------------------------------------------------------------------
# Multiplicative updates.
# --------------------------------------------------------------------------
def mu_nmf(X, C, G, eps):
    """Lee-Seung: X <- X * C / (X G + eps)."""
    X = f64(X)
    return X * f64(C) / (X @ f64(G) + eps)


def mu_semi(X, C, G, eps):
    """Ding-Li-Jordan: X <- X * sqrt((C+ + X G-) / (C- + X G+ + eps))."""
    X, C, G = f64(X), f64(C), f64(G)
    Cp, Cm = np.maximum(C, 0), np.maximum(-C, 0)
    Gp, Gm = np.maximum(G, 0), np.maximum(-G, 0)
    return X * np.sqrt((Cp + X @ Gm) / (Cm + X @ Gp + eps))


# --------------------------------------------------------------------------
# Least squares.
# --------------------------------------------------------------------------
def ridge_left(A, V, alpha):
    """argmin_U ||A - U V||^2 + alpha ||U||^2 = A V^T (V V^T + alpha I)^{-1}."""
    A, V = f64(A), f64(V)
    k = V.shape[0]
    H = V @ V.T + alpha * np.eye(k)
    return np.linalg.solve(H, V @ A.T).T


def rel_error(A, U, V):
    A, U, V = f64(A), f64(U), f64(V)
    nA = np.linalg.norm(A)
    return np.linalg.norm(A - U @ V) / (nA if nA > 0 else 1.0)


def relu_rel_error(A, U, V):
    A, U, V = f64(A), f64(U), f64(V)
    nA = np.linalg.norm(A)
    return np.linalg.norm(A - relu(U @ V)) / (nA if nA > 0 else 1.0)


# --------------------------------------------------------------------------
# One outer iteration of each factorization, from (U, V) with V (k, n).
# --------------------------------------------------------------------------
def nmf_hals_iter(A, U, V):
    A, U, V = f64(A), f64(U), f64(V)
    U, _ = hals_sweep(U, A @ V.T, V @ V.T)
    Vt, _ = hals_sweep(V.T, A.T @ U, U.T @ U)
    return U, Vt.T


def mu_guard(eps, C):
    """The solvers' MU denominator guard: relative to the numerator's scale."""
    return eps * float(np.abs(C).max())


def nmf_mu_iter(A, U, V, eps):
    A, U, V = f64(A), f64(U), f64(V)
    CU = A @ V.T
    U = mu_nmf(U, CU, V @ V.T, mu_guard(eps, CU))
    CV = A.T @ U
    Vt = mu_nmf(V.T, CV, U.T @ U, mu_guard(eps, CV))
    return U, Vt.T


def semi_nmf_iter(A, V, alpha, solver, eps):
    """U <- ridge LS; V <- one HALS sweep or one Ding-Li-Jordan update."""
    A, V = f64(A), f64(V)
    U = ridge_left(A, V, alpha)
    C, G = A.T @ U, U.T @ U
    if solver == "hals":
        Vt, _ = hals_sweep(V.T, C, G)
    else:
        Vt = mu_semi(V.T, C, G, mu_guard(eps, C))
    return U, Vt.T


def relu_step_U(A, U, V, alpha, omega):
    """U <- U + omega (A - relu(U V)) V^T (V V^T + alpha I)^{-1}."""
    A, U, V = f64(A), f64(U), f64(V)
    R = A - relu(U @ V)
    k = V.shape[0]
    step = np.linalg.solve(V @ V.T + alpha * np.eye(k), V @ R.T).T
    return U + omega * step


def relu_step_V(A, U, V, alpha, omega, fixed_ones_row=False, step_at_zero=1.0):
    """V <- max(0, V + omega (U^T U + alpha I)^{-1} U^T R), R = A - relu(U V).

    With fixed_ones_row only the first k-1 rows of V move, with the first
    k-1 columns of U; the residual uses the full model. step_at_zero scales
    the step of the entries of V that are 0.
    """
    A, U, V = f64(A), f64(U), f64(V)
    R = A - relu(U @ V)
    Uf = U[:, :-1] if fixed_ones_row else U
    kf = Uf.shape[1]
    step = np.linalg.solve(Uf.T @ Uf + alpha * np.eye(kf), Uf.T @ R)
    V = V.copy()
    scale = np.where(V[:kf] > 0, 1.0, step_at_zero)
    V[:kf] = np.maximum(0.0, V[:kf] + omega * scale * step)
    return V


def nonlinear_iter(A, U, V, alpha, omega, n_inner):
    U, V = f64(U), f64(V)
    for _ in range(n_inner):
        U = relu_step_U(A, U, V, alpha, omega)
    for _ in range(n_inner):
        V = relu_step_V(A, U, V, alpha, omega)
    return U, V


def nmf_hals_extrapolated(A, U0, V0, n_iter, sweeps=1, beta0=0.5, eta=1.5, gamma=1.05,
                          gamma_bar=1.01):
    """HALS with extrapolation and restarts (Ang & Gillis 2019), as documented
    for fastnmf.nmf(extrapolate=True): each block is updated from the
    extrapolated ("hat") point with the other block's hat factor fixed, then
    hat <- max(0, new + beta (new - previous plain iterate)). The error of
    (U_hat, V_plain) decides: worse than the last accepted error -> restart
    (hats reset to the plain iterates, beta cut by eta, its cap set to the
    old beta); otherwise beta grows by gamma up to its cap, which grows by
    gamma_bar up to 1. Returns the best (U, V) seen, the best-so-far error
    history, the number of restarts and the final beta.
    """
    A = f64(A)
    nA = np.linalg.norm(A)
    Uh, Vh = f64(U0), f64(V0).T.copy()
    Uc, Vc = Uh.copy(), Vh.copy()
    err0 = np.linalg.norm(A - Uh @ Vh.T) / nA
    best = (Uh.copy(), Vh.T.copy())
    errors = [err0]
    beta, cap, ref_err, restarts = beta0, 1.0, err0, 0
    for _ in range(n_iter):
        Un = Uh.copy()
        for _ in range(sweeps):
            Un, _ = hals_sweep(Un, A @ Vh, Vh.T @ Vh)
        Uh = np.maximum(0.0, Un + beta * (Un - Uc))
        Uc = Un
        Vn = Vh.copy()
        for _ in range(sweeps):
            Vn, _ = hals_sweep(Vn, A.T @ Uh, Uh.T @ Uh)
        Vh = np.maximum(0.0, Vn + beta * (Vn - Vc))
        Vc = Vn
        err = np.linalg.norm(A - Uh @ Vc.T) / nA
        if err > ref_err:
            Uh, Vh = Uc.copy(), Vc.copy()
            cap, beta = beta, beta / eta
            restarts += 1
        else:
            beta, cap = min(cap, gamma * beta), min(1.0, gamma_bar * cap)
            ref_err = err
        if err < errors[-1]:
            best = (Uh.copy(), Vc.T.copy())
            errors.append(err)
        else:
            errors.append(errors[-1])
    return best[0], best[1], np.array(errors), restarts, beta


# --------------------------------------------------------------------------
# Kullback-Leibler NMF (Lee & Seung's multiplicative updates).
# --------------------------------------------------------------------------
def kl_divergence(A, U, V):
    """Generalized KL ``sum A log(A / UV) - A + UV`` (0 log 0 = 0)."""
    A, P = f64(A), f64(U) @ f64(V)
    pos = A > 0
    return float(np.sum(A[pos] * np.log(A[pos] / P[pos])) - A.sum() + P.sum())


def nmf_kl_iter(A, U, V, eps, l1=(0.0, 0.0), l2=(0.0, 0.0)):
    """One iteration: U, then V, each ``X * numerator / (sums + l1 + l2 X +
    guard)`` with the model bounded below by ``eps * max(A)`` where it
    divides A and the guard ``eps * max(sums)``."""
    A, U, V = f64(A), f64(U), f64(V)
    tiny = eps * A.max()
    R = A / np.maximum(U @ V, tiny)
    s = V.sum(axis=1)
    U = U * (R @ V.T) / (s[None, :] + l1[0] + l2[0] * U + eps * s.max())
    R = A / np.maximum(U @ V, tiny)
    s = U.sum(axis=0)
    V = V * (U.T @ R) / (s[:, None] + l1[1] + l2[1] * V + eps * s.max())
    return U, V
