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
trusted_data
    Skip the NaN/Inf and sign checks of array arguments (for callers that
    own their arrays, e.g. a training loop).
ImplicitGram
    A fixed factor's Gram matrix applied by products, never formed (CG
    solves in relu_lstsq for very wide, e.g. sparse, fixed factors).
sparse_data, SparseData
    A scipy.sparse matrix validated once (and its type), for solves that
    take the same sparse argument call after call.
Workspace
    Scratch buffers the single-block solves reuse across calls (``with ws:``
    around a loop of same-shaped solves).
NMF
    :func:`nmf` as a scikit-learn transformer (``fit_transform``,
    ``transform``, ``inverse_transform``; imports scikit-learn on first use).
"""
import os as _os
import sys as _sys

#: The two variables set below that this import set (the user had not);
#: e.g. a child process meant to run without fastnmf's settings drops them.
_ENV_SET_AT_IMPORT = tuple(name for name in ("GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")
                           if name not in _os.environ)

# libgomp (the OpenMP runtime of our Cython and Numba kernels) keeps idle
# worker threads spinning for a long time after each parallel region; on a
# machine with few cores they then starve the BLAS threads of the GEMM that
# follows (measured up to 8 ms lost per switch, 10x on small problems). A
# short spin (it is read when libgomp loads; set it yourself to override,
# and it has no effect if another library loaded libgomp before fastnmf).
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")
# The same on the BLAS side: OpenBLAS workers spin for 2**28 cycles (~0.1 s)
# after every call, sharing the cores with the OpenMP sweep that follows
# (the HALS sweep then ran no faster on 2 threads than on 1). 2**18 cycles
# (~90 us) keeps GEMM scaling intact; 2**16, the setting until session 23,
# let the workers fall asleep during a small problem's one-thread sweep
# (~50 us on digits), and every GEMM then woke them: digits nmf 7% slower
# (README "Threads"). Read when OpenBLAS loads, i.e. when numpy is
# first imported: import fastnmf before numpy, or export it yourself.
_BLAS_TIMEOUT = "18"
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", _BLAS_TIMEOUT)
#: True if the short spins above could take effect in this process.
SHORT_SPIN_ACTIVE = ("numpy" not in _sys.modules
                     or _os.environ.get("OPENBLAS_THREAD_TIMEOUT") != _BLAS_TIMEOUT)

from ._result import FactorizationResult  # noqa: E402
from ._threads import get_num_threads, set_num_threads, threads  # noqa: E402
from .fixed_gram import FixedGram  # noqa: E402
from .implicit_gram import ImplicitGram  # noqa: E402
from .linear_lstsq import nnls, ridge_lstsq  # noqa: E402
from .nmf import nmf  # noqa: E402
from .nonlinear_semi_nmf import nonlinear_semi_nmf  # noqa: E402
from .relu_lstsq import relu_lstsq  # noqa: E402
from .semi_nmf import semi_nmf  # noqa: E402
from ._sparse import SparseData, sparse_data  # noqa: E402
from ._validation import magnitude_range, trusted_data  # noqa: E402
from ._workspace import Workspace  # noqa: E402



def __getattr__(name):
    # fastnmf.NMF (the scikit-learn transformer) imports scikit-learn: only on first use.
    if name == "NMF":
        from .estimator import NMF
        return NMF
    raise AttributeError(f"module 'fastnmf' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "FactorizationResult", "FixedGram", "ImplicitGram", "NMF", "get_num_threads",
    "magnitude_range", "nmf", "nnls", "nonlinear_semi_nmf",
    "relu_lstsq", "ridge_lstsq", "semi_nmf", "set_num_threads", "SparseData", "sparse_data",
    "threads", "trusted_data", "Workspace",
]
