"""One knob for every thread pool fastnmf uses.

fastnmf alternates between three kinds of parallel work: BLAS calls (numpy's
and scipy's OpenBLAS/MKL), Numba ``prange`` kernels and the Cython/OpenMP HALS
sweep. They never run nested (no kernel calls BLAS from inside a parallel
loop), but each pool must be limited to the same count or the machine is
oversubscribed. ``set_num_threads`` / ``threads`` set all three at once:

* BLAS and OpenMP runtimes through :mod:`threadpoolctl`,
* Numba through :func:`numba.set_num_threads`,
* the Cython kernels read :func:`get_num_threads` and pass it to ``prange``.

The count is an upper bound. A problem whose GEMMs are smaller than
``SMALL_WORK`` multiply-adds runs on one thread (see :func:`for_work`):
below that, handing work between the BLAS and OpenMP pools costs more than
the second core gives back (measured: digits 1797 x 64, rank 10, one
iteration 0.3 ms on 1 thread vs 3.5 ms on 2; break-even near 4000 x 784 x
50 = 1.6e8).
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import threading

import numpy as np

import numba
from threadpoolctl import ThreadpoolController

__all__ = ["get_num_threads", "set_num_threads", "threads"]

_lock = threading.RLock()
_state = {"n": None, "limiter": None, "controller": None}

#: Multiply-adds of one GEMM below which a solve runs on one thread.
SMALL_WORK = float(os.environ.get("FASTNMF_SMALL_WORK", 2e8))


def _controller(refresh: bool = False) -> ThreadpoolController:
    """Cached threadpoolctl controller (limiting through it costs ~10 us, a
    fresh ``threadpool_limits`` ~650 us because it rescans the libraries).
    Refreshed by :func:`set_num_threads`, so call that again after loading
    another BLAS/OpenMP library if you want it limited too."""
    if refresh or _state["controller"] is None:
        _state["controller"] = ThreadpoolController()
    return _state["controller"]


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"n_threads must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n_threads must be >= 1, got {n}")
    return min(n, numba.config.NUMBA_NUM_THREADS)


def get_num_threads() -> int:
    """Number of threads fastnmf kernels use (set by :func:`set_num_threads`).

    Defaults to the number of CPUs this process may run on (capped by
    Numba's ``NUMBA_NUM_THREADS``).
    """
    n = _state["n"]
    if n is None:
        return min(_available_cpus(), numba.config.NUMBA_NUM_THREADS)
    return n


def set_num_threads(n: int) -> None:
    """Limit BLAS, OpenMP and Numba threads to ``n`` for the whole process.

    Parameters
    ----------
    n : int >= 1
        Thread count. Values above Numba's ``NUMBA_NUM_THREADS`` (the number
        of CPUs by default) are capped to it.

    Raises
    ------
    TypeError
        If ``n`` is not an integer.
    ValueError
        If ``n < 1``.
    """
    n = _check_n(n)
    with _lock:
        old = _state["limiter"]
        if old is not None:
            old.restore_original_limits()
        _state["limiter"] = _controller(refresh=True).limit(limits=n)
        _state["n"] = n
        numba.set_num_threads(n)


@contextlib.contextmanager
def threads(n: int):
    """Context manager: limit BLAS, OpenMP and Numba threads to ``n`` inside.

    The previous limits of all three are restored on exit, also on error.

    Examples
    --------
    >>> import fastnmf
    >>> with fastnmf.threads(1):
    ...     pass  # every fastnmf call in here is single-threaded
    """
    n = _check_n(n)
    with _lock:
        prev_n = _state["n"]
        prev_numba = numba.get_num_threads()
        limiter = _controller().limit(limits=n)
        _state["n"] = n
        numba.set_num_threads(n)
    try:
        yield n
    finally:
        with _lock:
            limiter.restore_original_limits()
            _state["n"] = prev_n
            numba.set_num_threads(prev_numba)


def for_work(gemm_work: float):
    """Context for one solve whose largest GEMM is ``gemm_work`` multiply-adds.

    Runs it on one thread when ``gemm_work < SMALL_WORK`` and more than one
    thread is configured; otherwise changes nothing.
    """
    if gemm_work < SMALL_WORK and get_num_threads() > 1:
        return threads(1)
    return contextlib.nullcontext()


def sized_by(rank_of):
    """Decorator for public solvers: run small problems on one thread.

    The work estimate is ``A.size * k`` (one cross-product GEMM), with ``A``
    the first argument and ``k = rank_of(*args, **kwargs)``. Anything odd
    (bad input that validation will reject) skips the limit.
    """
    def deco(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                work = float(np.prod(np.shape(args[0]))) * float(rank_of(*args, **kwargs))
                if not math.isfinite(work):
                    work = math.inf
            except Exception:
                work = math.inf
            with for_work(work):
                return func(*args, **kwargs)
        return wrapper
    return deco


def rank_arg(*args, **kwargs):
    """``rank`` of ``f(A, rank, ...)``."""
    return args[1] if len(args) > 1 else kwargs["rank"]


def columns_of_second(*args, **kwargs):
    """Columns of the second argument (``relu_lstsq(A, U, V)``, ``nnls(A, U)``)."""
    second = args[1] if len(args) > 1 else kwargs["U"]
    return np.shape(second)[1]


def rows_of_second(*args, **kwargs):
    """Rows of the second argument (``ridge_lstsq(A, V)``)."""
    second = args[1] if len(args) > 1 else kwargs["V"]
    return np.shape(second)[0]
