"""l1 / l2 penalties of :func:`fastnmf.nmf` (internal): the option's
validation and the changes a penalty makes to a block update.

The penalized objective is ``0.5 ||A - U V||_F^2 + l1_U sum(U) + l1_V
sum(V) + 0.5 l2_U ||U||_F^2 + 0.5 l2_V ||V||_F^2``. A block update of U
(V alike) then solves ``min_{X >= 0} 0.5 tr(X G X^T) - tr(C X^T)`` with
``G = V V^T + l2_U I`` and ``C = A V^T - l1_U``: the same exact HALS
sweep or multiplicative update on shifted inputs (scikit-learn's
coordinate descent does the same).
"""
from __future__ import annotations

import numpy as np

from . import _blocks as B
from ._validation import check_float

__all__ = ["Penalty", "check_penalty"]


def check_penalty(value, name: str):
    """``(for U, for V)`` weights of a penalty option: one real number >= 0
    for both factors, or a pair of them."""
    if isinstance(value, (tuple, list, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number >= 0 or a pair (for U, for V), got "
                             f"{len(value)} values")
        return (check_float(value[0], f"{name}[0] (for U)"),
                check_float(value[1], f"{name}[1] (for V)"))
    v = check_float(value, name)
    return v, v


class Penalty:
    """The l1 / l2 terms of :func:`fastnmf.nmf`'s objective and what they do
    to a block update. Inactive (all zero): every method returns its input
    untouched, so an unpenalized run is the plain method bit for bit.
    Costs: ``gram`` O(k^2), ``cross_`` O(p k), ``value`` O((m + n) k) with
    l1, O(k) without."""

    def __init__(self, l1, l2, comm):
        self.l1u, self.l1v = l1
        self.l2u, self.l2v = l2
        self.active = any(l1) or any(l2)
        self.comm = comm

    @staticmethod
    def gram(G, l2):
        """``G + l2 I`` (a k x k copy) or G."""
        if not l2:
            return G
        Gr = G.copy()
        Gr.flat[:: G.shape[0] + 1] += G.dtype.type(l2)
        return Gr

    @staticmethod
    def cross_(C, l1, out=None):
        """``C - l1`` (into ``out``, else in place) or C."""
        if not l1:
            return C
        return np.subtract(C, C.dtype.type(l1), out=C if out is None else out)

    def value(self, U, GU, Vt, GV) -> float:
        """``l1_U sum(U) + l1_V sum(V) + 0.5 (l2_U tr(GU) + l2_V tr(GV))``,
        with GU, GV the Gram matrices of U and of Vt (GV summed over
        processes, and sum(V) too: one scalar allreduce with l1_V)."""
        if not self.active:
            return 0.0
        return self._value(U, Vt, B.gram_trace(GU), B.gram_trace(GV))

    def value_of(self, U, Vt) -> float:
        """The same penalty where no Gram matrices are at hand (the KL loop):
        ``||U||^2`` and ``||V||^2`` (summed over processes) read off the
        factors. O((m + n) k)."""
        if not self.active:
            return 0.0
        sq_u = float(np.vdot(U, U)) if self.l2u else 0.0
        sq_v = self.comm.sum(float(np.vdot(Vt, Vt))) if self.l2v else 0.0
        return self._value(U, Vt, sq_u, sq_v)

    def _value(self, U, Vt, sq_u, sq_v) -> float:
        val = 0.5 * (self.l2u * sq_u + self.l2v * sq_v)
        if self.l1u:
            val += self.l1u * float(U.sum(dtype=np.float64))
        if self.l1v:
            val += self.l1v * self.comm.sum(float(Vt.sum(dtype=np.float64)))
        return val
