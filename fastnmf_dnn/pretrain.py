"""Stacked NMF autoencoder pre-training (method.md section 4).

For a nonnegative input ``H_0 = X`` and each hidden layer i:

1. NMF ``H_{i-1}^T ~ U V`` of rank ``n_i`` (:func:`fastnmf.nmf`): U
   (n_{i-1}, n_i) >= 0 is the decoder, V (n_i, N) >= 0 the code, rescaled so
   that every column of U has unit norm;
2. encoder ``W_i = argmin ||V - relu(W [H_{i-1}, 1]^T)||`` by the ReLU
   least-squares U-step (:func:`fastnmf.relu_lstsq`), started from the
   ridge least-squares (linear) solution;
3. ``H_i = relu([H_{i-1}, 1] W_i^T)``.

Cost per layer: ``nmf_iter`` NMF iterations (a few ``n_{i-1} x n_i x N``
GEMMs each) plus ``encoder_iter`` fixed-point iterations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import scipy.sparse as sp

import fastnmf
from fastnmf._comm import as_comm

from ._inputs import scale_rows, with_bias_column
from .network import Network, unstack_layer

__all__ = ["StackedNMF", "pretrain_stack"]


@dataclass
class StackedNMF:
    """Result of :func:`pretrain_stack`.

    Attributes
    ----------
    coefs, intercepts : list of ndarray
        Encoder i: ``coefs[i]`` (n_{i-1}, n_i), ``intercepts[i]`` (n_i,).
    decoders : list of ndarray
        Decoder i: (n_i, n_{i-1}), nonnegative, ``H_{i-1} ~ H_i @ decoders[i]``.
    nmf_errors, encoder_errors : list of float
        Final relative errors of each layer's NMF and encoder fit.
    """

    coefs: list
    intercepts: list
    decoders: list
    nmf_errors: list
    encoder_errors: list

    def encode(self, X, n_layers=None):
        """Codes of the first ``n_layers`` encoders (default: all)."""
        n = len(self.coefs) if n_layers is None else n_layers
        return Network(self.coefs, self.intercepts).hidden(X, n)

    def decode(self, H):
        for D in reversed(self.decoders):
            H = H @ D
        return H


def pretrain_stack(X, hidden_sizes, *, nmf_iter=30, encoder_iter=10, alpha=1e-4, bias=True,
                   random_state=None, verbose=False, comm=None, sample_weight=None):
    """Pre-train encoders for ``hidden_sizes`` on nonnegative X (N, d).

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix, shape (N, d), float32 or float64, >= 0
        (validated by the caller). A sparse X stays sparse in the first
        layer's NMF and encoder fit; the codes, and every later layer, are
        dense.
    hidden_sizes : sequence of int >= 1
    nmf_iter : int >= 1
        Iterations of each layer's NMF (HALS).
    encoder_iter : int >= 0
        Fixed-point iterations of each encoder fit.
    alpha : float >= 0
        Ridge on the encoder weights, per sample (``alpha * N`` on the Gram).
    bias : bool
        Encoders get a bias (ones column on their input).
    random_state : int, Generator or None
        Seeds the NMF initialisation (NNDSVDa is deterministic; the seed is
        used where it needs randomness).
    comm : mpi4py communicator or None
        Data-parallel: X is this process's block of samples; every process
        gets the same encoders (every solve reduces over the processes).
    sample_weight : ndarray, shape (N,), >= 0, optional
        Weights of the samples in every layer's NMF and encoder fit (each
        sample's row scaled by ``sqrt(w)``, bias input included; the ridge's
        N becomes ``sum(w)``). The NMF's start is computed on the scaled
        rows, so integer weights are not exactly the repeated samples here.

    Returns
    -------
    StackedNMF
    """
    rng = np.random.default_rng(random_state) if not isinstance(random_state, np.random.Generator) \
        else random_state
    comm = as_comm(comm)
    dt = X.dtype
    N = X.shape[0]                      # this process's samples
    N_all = int(round(comm.sum(N)))     # all processes' (the ridge scales with it)
    H = X.tocsr() if sp.issparse(X) else X
    row_scale = None
    if sample_weight is not None:       # rows scaled by sqrt(w): the weighted fits
        w = np.asarray(sample_weight, dtype=np.float64)
        N_all = float(comm.sum(float(w.sum())))
        row_scale = np.sqrt(w).astype(dt)
        H = scale_rows(H, row_scale)
    out = StackedNMF([], [], [], [], [])
    for i, n in enumerate(hidden_sizes):
        seed = int(rng.integers(2**31 - 1))
        res = fastnmf.nmf(H.T, n, max_iter=nmf_iter, tol=0.0, random_state=seed, comm=comm)
        # NMF leaves each component's scale split arbitrarily between U and V
        # (and with rank > n_{i-1} it drifts to 1e9 and beyond): give every
        # decoder row unit norm so codes live on the scale of the input.
        s = np.linalg.norm(res.U, axis=0)
        s[s == 0] = 1
        decoder = np.ascontiguousarray((res.U / s).T)   # (n, n_{i-1})
        code = np.ascontiguousarray(res.V * s[:, None])  # (n, N)
        Hb = with_bias_column(H, bias, row_scale, dt)
        W = fastnmf.ridge_lstsq(code, Hb.T, alpha=alpha * N_all, comm=comm)
        if encoder_iter:
            r = fastnmf.relu_lstsq(code, W, Hb.T, update="U", n_iter=encoder_iter,
                                   alpha=alpha * N_all, overwrite=True, comm=comm)
            W, enc_err = r.U, r.error
        else:
            P = np.maximum(Hb @ W.T, 0) - code.T
            sq = comm.sum_(np.array([np.sum(P * P, dtype=np.float64),
                                     np.sum(code * code, dtype=np.float64)]))
            enc_err = float(np.sqrt(sq[0]) / max(np.sqrt(sq[1]), 1e-300))
        coef, intercept = unstack_layer(W, bias)
        out.coefs.append(coef)
        out.intercepts.append(intercept)
        out.decoders.append(decoder)
        out.nmf_errors.append(res.error)
        out.encoder_errors.append(enc_err)
        if verbose:
            print(f"pretrain layer {i + 1}: NMF rank {n} error {res.error:.4f}, "
                  f"encoder error {enc_err:.4f}")
        H = np.maximum(Hb @ W.T, 0)
        del Hb
    return out

