"""fastnmf: parallel NMF, semi-NMF and ReLU-aware alternating solvers.

Public API
----------
nmf, semi_nmf, nonlinear_semi_nmf
    Whole factorizations, returning :class:`FactorizationResult`.
relu_lstsq, ridge_lstsq, nnls
    Single-block solves (one factor fixed), the building blocks of the
    factorizations and of the network trainer.
threads, set_num_threads, get_num_threads
    One knob for BLAS, OpenMP and Numba threads.
"""
from ._result import FactorizationResult
from ._threads import get_num_threads, set_num_threads, threads
from .linear_lstsq import nnls, ridge_lstsq
from .nmf import nmf
from .nonlinear_semi_nmf import nonlinear_semi_nmf
from .relu_lstsq import relu_lstsq
from .semi_nmf import semi_nmf

__version__ = "0.1.0"
__all__ = [
    "FactorizationResult", "get_num_threads", "nmf", "nnls", "nonlinear_semi_nmf",
    "relu_lstsq", "ridge_lstsq", "semi_nmf", "set_num_threads", "threads",
]
