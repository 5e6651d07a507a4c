"""The result type shared by every factorization and block solve."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, repr=False)
class FactorizationResult:
    """Factors and convergence history of ``A ~ U V`` (or ``A ~ relu(U V)``).

    Attributes
    ----------
    U : ndarray, shape (m, rank)
        Left factor (nonnegative for :func:`~fastnmf.nmf`, free otherwise).
    V : ndarray, shape (rank, n)
        Right factor, always nonnegative. F-ordered view of a C-ordered
        ``V.T`` (the layout the kernels work in); use ``np.ascontiguousarray``
        if you need C order.
    n_iter : int
        Iterations (outer sweeps) actually run.
    errors : ndarray of float64, shape (n_iter + 1,)
        Relative Frobenius error ``||A - model||_F / ||A||_F``; ``errors[0]``
        is the initial point, ``errors[i]`` the point after iteration ``i``.
    times : ndarray of float64, shape (n_iter + 1,)
        Wall-clock seconds since the solver started (after validation and
        initialisation) at which each entry of ``errors`` was reached.
    converged : bool
        True if the stopping tolerance was met before ``max_iter``.
    solver : str
        Which algorithm produced the result.
    """

    U: np.ndarray
    V: np.ndarray
    n_iter: int
    errors: np.ndarray
    times: np.ndarray
    converged: bool
    solver: str
    info: dict = field(default_factory=dict)

    @property
    def error(self) -> float:
        """Final relative error (``errors[-1]``)."""
        return float(self.errors[-1])

    def __repr__(self) -> str:
        return (
            f"FactorizationResult(solver={self.solver!r}, U={self.U.shape}, V={self.V.shape}, "
            f"dtype={self.U.dtype}, n_iter={self.n_iter}, error={self.error:.6g}, "
            f"converged={self.converged})"
        )
