"""A fully-connected ReLU network: weights, biases and the forward pass.

Storage follows scikit-learn's ``MLPClassifier``: ``coefs[i]`` has shape
(n_in, n_out) and ``intercepts[i]`` shape (n_out,), samples are rows. The
trainer works with the same numbers written the factorization way, one
matrix per layer ``W_i = [coefs[i].T, intercepts[i]]`` of shape
(n_out, n_in + 1) acting on an input with a trailing ones column
(:func:`stack_layer` / :func:`unstack_layer`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["Network", "init_random", "stack_layer", "unstack_layer"]


class Network:
    """Weights of a ReLU MLP ``y = W_L relu(... relu(W_1 x + b_1) ...) + b_L``.

    Parameters
    ----------
    coefs : list of ndarray, ``coefs[i]`` shape (n_i, n_{i+1})
    intercepts : list of ndarray, ``intercepts[i]`` shape (n_{i+1},)
        Same dtype as ``coefs``.
    """

    def __init__(self, coefs, intercepts):
        if len(coefs) != len(intercepts) or not coefs:
            raise ValueError("coefs and intercepts must be non-empty lists of the same length")
        self.coefs = list(coefs)
        self.intercepts = list(intercepts)

    @property
    def layer_sizes(self):
        return [self.coefs[0].shape[0]] + [c.shape[1] for c in self.coefs]

    @property
    def dtype(self):
        return self.coefs[0].dtype

    def hidden(self, X, n_layers=None):
        """Activations of hidden layer ``n_layers`` (default: the last)."""
        n_layers = len(self.coefs) - 1 if n_layers is None else n_layers
        H = X
        for W, b in zip(self.coefs[:n_layers], self.intercepts[:n_layers]):
            H = H @ W
            H += b
            np.maximum(H, 0, out=H)
        return H

    def forward(self, X):
        """Network output (n_samples, n_outputs) for X (n_samples, n_features).

        O(n_samples * sum(n_in * n_out)) flops, one GEMM per layer.
        """
        H = self.hidden(X)
        out = H @ self.coefs[-1]
        out += self.intercepts[-1]
        return out

    def copy(self):
        return Network([c.copy() for c in self.coefs], [b.copy() for b in self.intercepts])


def stack_layer(coef, intercept, bias: bool = True):
    """``[coef.T, intercept]`` (n_out, n_in + 1), C order (``bias=False``: ``coef.T``)."""
    if not bias:
        return np.ascontiguousarray(coef.T)
    return np.ascontiguousarray(np.hstack([coef.T, intercept[:, None]]))


def unstack_layer(W, bias: bool = True):
    """Inverse of :func:`stack_layer`: ``(coef (n_in, n_out), intercept (n_out,))``."""
    if not bias:
        return np.ascontiguousarray(W.T), np.zeros(W.shape[0], W.dtype)
    return np.ascontiguousarray(W[:, :-1].T), np.ascontiguousarray(W[:, -1])


def init_random(layer_sizes, rng, dtype, *, scale: float = 1.0):
    """He-scaled Gaussian weights ``N(0, 2 scale / n_in)`` and zero biases."""
    coefs, intercepts = [], []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        std = np.sqrt(2.0 * scale / n_in)
        coefs.append((rng.standard_normal((n_in, n_out)) * std).astype(dtype))
        intercepts.append(np.zeros(n_out, dtype))
    return Network(coefs, intercepts)
