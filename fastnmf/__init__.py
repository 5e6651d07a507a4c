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
import os as _os

# libgomp (the OpenMP runtime of our Cython and Numba kernels) keeps idle
# worker threads spinning for a long time after each parallel region; on a
# machine with few cores they then starve the BLAS threads of the GEMM that
# follows (measured up to 8 ms lost per switch, 10x on small problems). A
# short spin (it is read when libgomp loads; set it yourself to override,
# and it has no effect if another library loaded libgomp before fastnmf).
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from ._result import FactorizationResult  # noqa: E402
from ._threads import get_num_threads, set_num_threads, threads  # noqa: E402
from .linear_lstsq import nnls, ridge_lstsq  # noqa: E402
from .nmf import nmf  # noqa: E402
from .nonlinear_semi_nmf import nonlinear_semi_nmf  # noqa: E402
from .relu_lstsq import relu_lstsq  # noqa: E402
from .semi_nmf import semi_nmf  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "FactorizationResult", "get_num_threads", "nmf", "nnls", "nonlinear_semi_nmf",
    "relu_lstsq", "ridge_lstsq", "semi_nmf", "set_num_threads", "threads",
]
