"""A slow, plain-NumPy reference of ONE sweep of fastnmf_dnn's trainer.

Written from method.md (sections 2, 3 and 5) with samples as COLUMNS, in
float64, without importing fastnmf or fastnmf_dnn, so that
``fastnmf_dnn.Trainer.sweep`` (samples as rows, fused kernels, in-place
buffers, BLAS) is compared against something simple enough to check by
reading. The option names are those of ``fastnmf_dnn.TrainOptions``.

Notation (column form, biases as a trailing ones row, section 5):

* ``Z[0] = [X^T; 1]`` (d + 1, N), ``Z[i] = [targets of layer i; 1]``;
* ``W[i]`` (n_{i+1}, n_i + 1) = ``[coefs[i].T, intercepts[i]]``;
* the network output is ``W[L-1] Z[L-1]`` (linear last layer).

Two details that the reference reproduces on purpose, because the trainer
uses them (they are not free choices of a reference):

* every ridge inverse ``(G + a I)^{-1}`` is the one of
  ``fastnmf._linalg.ridge_inverse``: Cholesky of ``G + a I`` in float64 and,
  when its pivots show ``cond > 1/sqrt(eps)`` of the working dtype, an extra
  diagonal shift ``sqrt(eps) * mean(diag(G + a I))`` (``_ridge_inverse``),
  and a pseudo-inverse ``U^+ = (U^T U + a I)^{-1} U^T`` of a wide U (m < k)
  is formed as ``U^T (U U^T + a I)^{-1}`` (the same in exact arithmetic;
  the shift, where one is added, differs);
* the hidden layers' V-step uses ``z_prox`` as its ridge (the damping of the
  Gauss-Newton step), not ``alpha * N``.

Mini-batch sweeps and margin targets (``batch_size``, ``weight_prox``,
``margin_targets``) are written on top of :func:`sweep`: ``sweep(..., mu=)``
is the damped update of one block, :func:`margin_targets` the targets of a
block, :func:`minibatch_sweep` the loop over the blocks.
"""
from __future__ import annotations

import numpy as np


def relu(X):
    return np.maximum(X, 0.0)


def _cholesky_or_shift(H):
    """Cholesky factor of SPD H; a numerically singular H gets the smallest
    shift ``eps * mean(diag) * 10**j`` that makes it definite (as fastnmf)."""
    try:
        L = np.linalg.cholesky(H)
        if np.isfinite(L).all():
            return L
    except np.linalg.LinAlgError:
        pass
    k = H.shape[0]
    mean_diag = np.trace(H) / k
    if not mean_diag > 0:
        return np.eye(k)
    tau = np.finfo(np.float64).eps * mean_diag
    for _ in range(20):
        try:
            return np.linalg.cholesky(H + tau * np.eye(k))
        except np.linalg.LinAlgError:
            tau *= 10
    raise AssertionError("reference: Gram matrix could not be factored")


def effective_ridge(G, a, dtype):
    """The diagonal shift that ``ridge_inverse(G, a, dtype)`` really adds:
    ``a``, plus ``sqrt(eps) * mean(diag(G + a I))`` when ``G + a I`` is too
    ill-conditioned for the working dtype (ignoring the O(eps) shift of a
    numerically singular matrix)."""
    G = np.array(G, dtype=np.float64)
    k = G.shape[0]
    H = G + a * np.eye(k)
    d = np.diag(_cholesky_or_shift(H))
    rcond = float(np.sqrt(np.finfo(dtype).eps))
    return a + (rcond * np.trace(H) / k if d.min() ** 2 < rcond * d.max() ** 2 else 0.0)


def ridge_inverse(G, a, dtype):
    """``(G + a I)^{-1}`` as fastnmf forms it (see module docstring)."""
    G = np.array(G, dtype=np.float64)
    k = G.shape[0]
    H = G + a * np.eye(k)
    L = _cholesky_or_shift(H)
    d = np.diag(L)
    rcond = float(np.sqrt(np.finfo(dtype).eps))
    if d.min() ** 2 < rcond * d.max() ** 2:
        H = H + rcond * np.trace(H) / k * np.eye(k)
        L = _cholesky_or_shift(H)
    Linv = np.linalg.inv(L)
    return Linv.T @ Linv


def _free(Z, bias):
    """Rows of Z a target update may change (all but the ones row)."""
    return Z[:-1] if bias else Z


def hals_rows(V, C, G, n_sweeps):
    """``min_{V >= 0} 0.5 tr(V^T G V) - tr(C^T V)`` by coordinate descent on
    the rows of V (k, N): row a <- max(0, V_a + (C_a - G_a V) / G_aa), rows in
    order 0..k-1, each using the rows already updated (Gauss-Seidel)."""
    V = V.copy()
    for _ in range(n_sweeps):
        for a in range(V.shape[0]):
            if G[a, a] <= 0:
                continue
            V[a] = np.maximum(0.0, V[a] + (C[a] - G[a] @ V) / G[a, a])
    return V


def mu_semi(V, C, G, n_updates, eps):
    """Ding-Li-Jordan: ``V <- V * sqrt((C+ + G- V) / (C- + G+ V + eps))``."""
    Cp, Cm = np.maximum(C, 0), np.maximum(-C, 0)
    Gp, Gm = np.maximum(G, 0), np.maximum(-G, 0)
    for _ in range(n_updates):
        V = V * np.sqrt((Cp + Gm @ V) / (Cm + Gp @ V + eps))
    return V


def pgn_steps(Vf, U, YT, damping, bias, n_steps):
    """Projected Gauss-Newton steps of the output layer's targets (free rows
    Vf), written out: ``Vf <- max(0, Vf + D)`` with ``D = (Uf^T Uf +
    damping I)^{-1} Uf^T (Y^T - U [Vf; 1])`` where Vf > 0, and 0 where Vf is
    0 (those targets stay at 0)."""
    Uf = U[:, :-1] if bias else U
    Vf = Vf.copy()
    for _ in range(n_steps):
        V = np.vstack([Vf, np.ones((1, Vf.shape[1]))]) if bias else Vf
        D = np.linalg.solve(Uf.T @ Uf + damping * np.eye(Uf.shape[1]), Uf.T @ (YT - U @ V))
        Vf = np.where(Vf > 0, np.maximum(Vf + D, 0), 0.0)
    return Vf


def forward(W, X, bias):
    """Column-form forward pass: hidden Z[i] (with ones row) and the output."""
    ones = np.ones((1, X.shape[0]))
    Z = [np.vstack([X.T, ones]) if bias else X.T.copy()]
    for Wi in W[:-1]:
        h = relu(Wi @ Z[-1])
        Z.append(np.vstack([h, ones]) if bias else h)
    return Z, W[-1] @ Z[-1]


def sweep(W, Z, X, Y, opts, dtype, *, mu=0.0, fit_output=True, Y0=None, n_total=None):
    """One backward sweep then the forward pass (method.md section 3).

    W: list of (n_{i+1}, n_i [+1]) weights; Z: list of current targets
    (column form, ones row included), Z[0] = data; X (N, d), Y (N, c): the
    targets the output layer is fitted to (one-hot labels, or margin
    targets from :func:`margin_targets`).
    Returns (W, targets after the backward sweep, forward Z, output (c, N)).

    ``mu`` (mini-batch weight damping, ``weight_prox * N`` for a block of N
    samples): the output layer minimises ``||Y^T - W V||^2 + lam ||W||^2 +
    mu ||W - W_old||^2``, i.e. ``W = (Y^T V^T + mu W_old) (V V^T + (lam +
    mu) I)^{-1}``, and the hidden U-steps' pseudo-inverse uses the ridge
    ``lam + mu`` (a smaller fixed-point step from W_old). 0: the full-batch
    sweep.

    ``fit_output=False``: skip the output U-step (the trainer's previous
    sweep already refitted W_L to these features: ``refit_output``).
    ``opts["refit_output"]`` (full batch): after the forward pass, refit
    W_L by ridge LS to the features of that pass, against the margin
    targets of its output (``Y0``: the one-hot labels) or Y0 itself.
    ``n_total``: the training-set size, for the ``ridge`` option's share
    ``ridge * N / n_total`` (default N).
    """
    W = [np.array(w, dtype=np.float64) for w in W]
    Z = [np.array(z, dtype=np.float64) for z in Z]
    YT = np.array(Y, dtype=np.float64).T
    b = bool(opts["bias"])
    N = YT.shape[1]
    lam = opts["alpha"] * N
    lam_w = opts.get("ridge", 0.0) * N / (n_total or N)
    rel = opts.get("rel_ridge", 0.0)
    wid = opts.get("width_ridge", 0.0)

    def rel_ridge(V):  # (rel / k + wid) * ||V||^2 / N_total for V (k, N)
        return (rel / V.shape[0] + wid) * float(np.sum(V ** 2)) / (n_total or N)
    gamma = opts["z_prox"]
    om = opts["omega"]
    L = len(W)

    # 1. output layer: U-step (ridge LS), then the V-step on Z[L-1].
    V = Z[L - 1]
    if fit_output:
        lam_out = lam + lam_w + rel_ridge(V)
        W[L - 1] = (YT @ V.T + mu * W[L - 1]) @ ridge_inverse(V @ V.T, lam_out + mu, dtype)
    if L > 1:
        U = W[L - 1]
        Uf = U[:, :-1] if b else U
        G = Uf.T @ Uf + gamma * np.eye(Uf.shape[1])
        Vf0 = _free(V, b)
        # cross product: U^T Y minus the fixed ones row's contribution,
        # minus l1, plus the proximal pull towards the starting targets.
        C = Uf.T @ YT - (np.outer(Uf.T @ U[:, -1], np.ones(N)) if b else 0)
        C = C - opts["l1"] + gamma * Vf0
        if opts["z_solver"] == "hals":
            Vf = hals_rows(Vf0, C, G, opts["z_iter"])
        elif opts["z_solver"] == "pgn":
            Vf = pgn_steps(Vf0, U, YT, gamma, b, opts["z_iter"])
        else:
            # the solvers' guard is relative to the numerator's scale
            Vf = mu_semi(Vf0, C, G, opts["z_iter"],
                         float(np.finfo(dtype).eps) * float(np.abs(C).max()))
        Z[L - 1] = np.vstack([Vf, np.ones((1, N))]) if b else Vf

    def u_step(i, A, V):          # layer i's weights: min ||A - relu(U V)||^2 + decay
        U = W[i - 1]
        l2 = lam_w + rel_ridge(V)                                # weight decay
        damp = 0.0
        if i == 1:                # input_ridge / input_damping: the input Gram's mean diagonal
            mean_diag = float(np.trace(V @ V.T)) / V.shape[0]
            l2 += opts.get("input_ridge", 0.0) * mean_diag
            damp = opts.get("input_damping", 0.0) * mean_diag
        inv = ridge_inverse(V @ V.T, lam + mu + damp + l2, dtype)
        for _ in range(opts["inner_iter"]):
            U = U + om * ((A - relu(U @ V)) @ V.T - l2 * U) @ inv
        W[i - 1] = U

    def v_step(i, A):             # layer i's input targets Z[i-1], with W[i-1] as it is
        U, V = W[i - 1], Z[i - 1]
        Uf = U[:, :-1] if b else U
        if Uf.shape[0] < Uf.shape[1]:   # U^+ (kf, m), through the smaller Gram matrix
            Up = Uf.T @ ridge_inverse(Uf @ Uf.T, gamma, dtype)
        else:
            Up = ridge_inverse(Uf.T @ Uf, gamma, dtype) @ Uf.T
        at_zero = opts.get("inactive_step", 1.0)   # step of the inactive units
        for _ in range(opts["inner_iter"]):
            V0 = _free(V, b)
            Vf = relu(V0 + om * np.where(V0 > 0, 1.0, at_zero) * (Up @ (A - relu(U @ V))))
            V = np.vstack([Vf, np.ones((1, N))]) if b else Vf
        Z[i - 1] = V

    if opts.get("bottom_up") and L > 2:
        # All targets top-down with the current weights, then the weights
        # bottom-up, each on the activations of the updated layers below.
        T = [None] * L
        for i in range(L - 1, 1, -1):
            T[i] = _free(Z[i], b)
            v_step(i, T[i])
        T[1] = _free(Z[1], b)
        H = Z[0]
        for i in range(1, L):
            u_step(i, T[i], H)
            if i < L - 1:
                h = relu(W[i - 1] @ H)
                H = np.vstack([h, np.ones((1, N))]) if b else h
    else:
        # 2.-3. hidden layers top-down, the first one U-step only.
        for i in range(L - 1, 0, -1):
            A = _free(Z[i], b)
            u_step(i, A, Z[i - 1])
            if i > 1:
                v_step(i, A)

    # 4. forward pass.
    W, Zf, out = forward_refit(W, X, Y if Y0 is None else Y0, opts, dtype,
                               refit=mu == 0.0, n_total=n_total)
    return W, Z, Zf, out


def forward_refit(W, X, Y0, opts, dtype, *, refit=True, n_total=None):
    """The forward pass, then (``refit_output``, full batch, refreshed
    targets) W_L refitted by ridge LS to its features against the margin
    targets of that output (or Y0). Returns (W, forward Z, output (c, N))."""
    W = list(W)
    b = bool(opts["bias"])
    L = len(W)
    Zf, out = forward(W, np.array(X, dtype=np.float64), b)
    if opts.get("refit_output") and L > 1 and refit and opts["refresh_targets"]:
        N = out.shape[1]
        H = Zf[L - 1]
        lam = opts["alpha"] * N + opts.get("ridge", 0.0) * N / (n_total or N)
        lam += ((opts.get("rel_ridge", 0.0) / H.shape[0] + opts.get("width_ridge", 0.0))
                * float(np.sum(H ** 2)) / (n_total or N))
        T = margin_targets(Y0, out.T) if opts.get("margin_targets") else np.asarray(Y0, np.float64)
        W[L - 1] = (T.T @ H.T) @ ridge_inverse(H @ H.T, lam, dtype)
        out = W[L - 1] @ H
    return W, Zf, out


def fit_loss(out, Y0, margin):
    """Half the mean squared (hinge with ``margin``) residual; out (c, N)."""
    Y0 = np.asarray(Y0, np.float64).T
    R = np.asarray(out, np.float64) - Y0
    if margin:
        R = np.where(Y0 > 0, np.minimum(R, 0), np.maximum(R, 0))
    return 0.5 * float(np.mean(R * R))


def extrapolated_sweep(W0, Z0, X, T, Y0, opts, dtype, *, beta, prev_loss, fit_output=True):
    """:func:`sweep`, then the adaptive extrapolation of the hidden weights
    (``opts["extrapolate"]`` is the cap): ``W0 + beta (W - W0)``, forward
    pass and refit; if the loss rose above ``prev_loss`` (and beta > 1) the
    plain sweep's result instead and beta halved, else beta grown by 1.2.
    Returns (W, forward Z, output, new beta, loss).

    The sweep's own refit is skipped (the refit runs once, on the features
    of the extrapolated weights); a rejected step keeps that refitted W_L
    and refits again on the plain step's features, as the trainer does.
    """
    W, _, _, _ = sweep(W0, Z0, X, T, dict(opts, refit_output=False), dtype,
                       fit_output=fit_output, Y0=Y0)
    L = len(W)
    margin = bool(opts.get("margin_targets"))
    Wx = [np.asarray(w0, np.float64) + beta * (w - np.asarray(w0, np.float64))
          for w0, w in zip(W0[: L - 1], W[: L - 1])] + [W[L - 1]]
    Wx, Zx, outx = forward_refit(Wx, X, Y0, opts, dtype)
    loss = fit_loss(outx, Y0, margin)
    if prev_loss is not None and loss > prev_loss and beta > 1:
        Wr, Zr, outr = forward_refit(W[: L - 1] + [Wx[L - 1]], X, Y0, opts, dtype)
        return Wr, Zr, outr, max(1.0, beta / 2), fit_loss(outr, Y0, margin)
    return Wx, Zx, outx, min(float(opts["extrapolate"]), beta * 1.2), loss


def margin_targets(Y0, out):
    """Targets of ``margin_targets=True`` (samples as rows, both (N, c)):
    an output already beyond its one-hot target on the right side (above
    the target where it is positive, the true class; below it elsewhere)
    is its own target; every other entry keeps the label's value."""
    Y0 = np.array(Y0, dtype=np.float64)
    out = np.asarray(out, dtype=np.float64)
    T = Y0.copy()
    beyond = ((Y0 > 0) & (out > Y0)) | ((Y0 <= 0) & (out < Y0))
    T[beyond] = out[beyond]
    return T


def minibatch_sweep(W, Z, X, Y, opts, dtype, blocks):
    """One mini-batch sweep: for each block of sample indices in ``blocks``
    (in that order), a forward pass of the block, the block's targets
    (forward activations, or the carried-over targets Z without
    ``refresh_targets``; margin targets from the block's output with
    ``margin_targets``), one damped :func:`sweep` on the block with
    ``mu = weight_prox * block size``; then one forward pass of all samples.

    Same arguments and return value as :func:`sweep` (samples in the order
    of X; ``blocks`` indexes that order).
    """
    W = [np.array(w, dtype=np.float64) for w in W]
    Z = [np.array(z, dtype=np.float64) for z in Z]
    X = np.array(X, dtype=np.float64)
    Y = np.array(Y, dtype=np.float64)
    b = bool(opts["bias"])
    for idx in blocks:
        idx = np.asarray(idx)
        Zf, out = forward(W, X[idx], b)
        Zb = Zf if opts["refresh_targets"] else [z[:, idx] for z in Z]
        Yb = margin_targets(Y[idx], out.T) if opts["margin_targets"] else Y[idx]
        W, Zt, _, _ = sweep(W, Zb, X[idx], Yb, dict(opts, refit_output=False), dtype,
                            mu=opts["weight_prox"] * len(idx), n_total=len(X))
        for i in range(1, len(Z)):
            Z[i][:, idx] = Zt[i]
    Zf, out = forward(W, X, b)
    return W, Z, Zf, out
