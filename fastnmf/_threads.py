"""One knob for every thread pool fastnmf uses.

fastnmf alternates between three kinds of parallel work: BLAS calls (numpy's
and scipy's OpenBLAS/MKL), Numba ``prange`` kernels and the Cython/OpenMP HALS
sweep. They never run nested (no kernel calls BLAS from inside a parallel
loop), but each pool must be limited to the same count or the machine is
oversubscribed. ``set_num_threads`` / ``threads`` set all three at once:

* BLAS and OpenMP runtimes through :mod:`threadpoolctl`,
* Numba through :func:`numba.set_num_threads`,
* the Cython kernels read :func:`get_num_threads` and pass it to ``prange``.
"""
from __future__ import annotations

import contextlib
import os
import threading

import numba
from threadpoolctl import threadpool_limits

__all__ = ["get_num_threads", "set_num_threads", "threads"]

_lock = threading.Lock()
_state = {"n": None, "limiter": None}


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
        _state["limiter"] = threadpool_limits(limits=n)
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
        limiter = threadpool_limits(limits=n)
        _state["n"] = n
        numba.set_num_threads(n)
    try:
        yield n
    finally:
        with _lock:
            limiter.restore_original_limits()
            _state["n"] = prev_n
            numba.set_num_threads(prev_numba)
