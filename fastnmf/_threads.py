"""One knob for every thread pool fastnmf uses.

fastnmf alternates between three kinds of parallel work: BLAS calls (numpy's
and scipy's OpenBLAS/MKL), Numba ``prange`` kernels and the Cython/OpenMP HALS
sweep. They never run nested (no kernel calls BLAS from inside a parallel
loop), but each pool must be limited to the same count or the machine is
oversubscribed. ``set_num_threads`` / ``threads`` set all three at once:

* BLAS and OpenMP runtimes through :mod:`threadpoolctl`,
* Numba through :func:`numba.set_num_threads`,
* the Cython kernels read :func:`get_num_threads` and pass it to ``prange``.

The count is an upper bound; small problems use fewer (see :func:`for_work`).
What costs on a small problem is handing the cores back and forth between
the BLAS pool and the OpenMP/Numba pool, not either pool alone:

* below ``SMALL_WORK`` multiply-adds in the largest GEMM, fastnmf's own
  kernels (Numba, Cython/OpenMP) run on one thread. Measured: digits
  1797 x 64, rank 10, 20 nmf iterations 6.2 ms with everything on 1 thread,
  61 ms with everything on 2; break-even near 4000 x 784 x 50 = 1.6e8.
* below ``BLAS_SMALL_WORK`` (smaller still) BLAS runs on one thread too.
  Between the two, BLAS keeps every thread: with only the BLAS pool
  parallel there is no hand-over (its workers spin briefly, then sleep,
  on the core the one-thread kernel leaves free). Measured: a digits
  network sweep (1438 samples, 64-100-10; GEMMs up to 1438 x 101 x 101)
  4.5-5.0 ms all on 1 thread, 3.6 ms with BLAS on 2. The threshold was
  4e6 until session 23, set when nmf on digits (1797 x 64 x 10) went 6.2
  -> 7.1 ms with BLAS on 2 on that session's host; ``bench/small_work.py``
  on the AVX2 EPYC of session 23 (alternating rounds, 20 iterations per
  call): BLAS on 2 threads 1.13-1.16x faster for nmf (HALS, MU) and
  semi_nmf on digits at ranks 5-20 (work 5.8e5-2.3e6), 1.04-1.40x on
  random 1000 x 100 x 5 to 2000 x 300 x 6, 0.99-1.02x (no difference) at
  6e3-1.9e5, hence 5e5. Hosts differ in what a hand-over costs: the
  environment variable overrides it.
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
_state = {"n": None, "limiter": None, "controller": None, "nesting_done": False}

#: Multiply-adds of a solve's largest GEMM below which its Numba and
#: Cython/OpenMP kernels run on one thread.
SMALL_WORK = float(os.environ.get("FASTNMF_SMALL_WORK", 2e8))
#: ... and below which its BLAS calls run on one thread too.
BLAS_SMALL_WORK = float(os.environ.get("FASTNMF_BLAS_SMALL_WORK", 5e5))
#: Sparse data: ``nnz k`` (a sparse product's multiply-adds) at and above
#: which a solve's kernels use every thread. The product is a compiled
#: gather that fastnmf runs itself, between small k x k BLAS calls, and
#: it gains from a second thread far below the dense GEMM break-even.
#: Measured (nmf iterations, 2 threads, tf-idf data and digits as CSR,
#: kernels on 2 threads against 1, two runs each): nnz k = 5.8e4 0.14 ms
#: either way; 3.3e5 0.25 against 0.36 ms; digits (5.9e5) 0.33 against
#: 0.51; 3.2e6 0.97 against 1.55; 2.8e7 6.5 against 10.3 ms.
SPARSE_SMALL_WORK = float(os.environ.get("FASTNMF_SPARSE_SMALL_WORK", 2e5))


def _controller(refresh: bool = False) -> ThreadpoolController:
    """Cached threadpoolctl controller (limiting through it costs ~10 us, a
    fresh ``threadpool_limits`` ~650 us because it rescans the libraries).
    Refreshed by :func:`set_num_threads`, so call that again after loading
    another BLAS/OpenMP library if you want it limited too."""
    if refresh or _state["controller"] is None:
        _state["controller"] = ThreadpoolController()
    return _state["controller"]


def blas_kernels() -> str:
    """numpy's BLAS and the kernel set it runs, e.g. ``"openblas 0.3.31
    SkylakeX kernels"``, with ``" (forced by OPENBLAS_CORETYPE=...)"`` when
    that variable chose them: a shell that names an older CPU than the one
    it runs on slows every GEMM (``Haswell`` on an AVX-512 Zen 5, float32,
    2 threads: 1.26-1.76x, ``bench/blas_kernels.py``). fastnmf never
    overrides it.
    """
    from threadpoolctl import threadpool_info
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return "BLAS not detected"
    # numpy's own (scipy may load a second OpenBLAS; numpy's runs our GEMMs)
    info = next((i for i in libs if "numpy" in str(i.get("filepath"))), libs[0])
    desc = f"{info.get('internal_api')} {info.get('version')}"
    if info.get("architecture"):
        desc += f" {info['architecture']} kernels"
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced and info.get("internal_api") == "openblas":
        desc += f" (forced by OPENBLAS_CORETYPE={forced})"
    return desc


def keep_openmp_nesting_off() -> None:
    """Undo Numba's switch to nested OpenMP, once, after its layer started.

    Numba's ``omp`` threading layer, when it starts (at the first parallel
    kernel or ``numba.get/set_num_threads``), turns nested parallel regions
    on in its OpenMP runtime (``omp_set_nested(1)``: max-active-levels 1 ->
    255). That runtime is the process's ``libgomp.so.1``, which fastnmf's
    Cython kernels share and so does any library that loads a
    ``libgomp.so.1`` later (PyTorch's wheels do). With nesting on, their
    parallel regions nest thread teams and oversubscribe the cores: PyTorch
    Adam (digits 64-100-10, 2 threads, 100 epochs) took 0.90 s instead of
    0.36 s after the layer started, 3.6 s with ``GOMP_SPINCOUNT=300000``;
    on 16 cores three Fashion-MNIST half-epochs took over 40 s instead of
    about 2 s. fastnmf never nests parallel regions, so this sets the
    limit of that runtime back to 1, or to ``OMP_MAX_ACTIVE_LEVELS`` if
    set (nothing is touched if ``OMP_NESTED`` is set). Runs after every
    place fastnmf can start the layer (the thread knobs, the public
    solvers); a cheap flag test once done. It does not start the layer
    itself: a process that starts Numba's OpenMP layer and then forks gets
    its child terminated by Numba at the child's first parallel kernel, so
    importing fastnmf must not start it.
    """
    if _state["nesting_done"]:
        return
    try:
        layer = numba.threading_layer()
    except ValueError:                 # not started yet: nothing to undo
        return
    _state["nesting_done"] = True
    if layer != "omp" or "OMP_NESTED" in os.environ:
        return
    try:
        want = int(os.environ.get("OMP_MAX_ACTIVE_LEVELS", "1"))
        import ctypes
        gomp = ctypes.CDLL("libgomp.so.1", mode=getattr(os, "RTLD_NOLOAD", 0))
        if gomp.omp_get_max_active_levels() != want:
            gomp.omp_set_max_active_levels(want)
    except (OSError, AttributeError, ValueError):  # pragma: no cover - no GNU OpenMP
        pass


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
        keep_openmp_nesting_off()


@contextlib.contextmanager
def _kernel_threads(n: int):
    """Limit fastnmf's own kernels (Numba, and the Cython sweeps, which pass
    :func:`get_num_threads` to ``prange``) to ``n``; BLAS keeps its limit."""
    with _lock:
        prev_n = _state["n"]
        prev_numba = numba.get_num_threads()
        _state["n"] = n
        if prev_numba != n:
            numba.set_num_threads(n)
        keep_openmp_nesting_off()
    try:
        yield n
    finally:
        with _lock:
            _state["n"] = prev_n
            if prev_numba != n:
                numba.set_num_threads(prev_numba)


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
        previous = _limit_libraries(n)
    try:
        with _kernel_threads(n):
            yield n
    finally:
        with _lock:
            _restore_libraries(previous)


def _limit_libraries(n: int) -> list:
    """Set every BLAS/OpenMP library threadpoolctl found to ``n`` threads;
    returns what to restore. Through the cached controller's library
    handles: ``ThreadpoolController.limit`` and its restore cost 21 us per
    call pair here against 12 us, on every small solve (:func:`for_work`)."""
    previous = []
    for lib in _controller().lib_controllers:
        before = lib.num_threads
        if before != n:
            lib.set_num_threads(n)
            previous.append((lib, before))
    return previous


def _restore_libraries(previous) -> None:
    for lib, before in reversed(previous):
        lib.set_num_threads(before)


def for_work(gemm_work: float):
    """Context for one solve whose largest GEMM is ``gemm_work`` multiply-adds.

    With more than one thread configured: below ``BLAS_SMALL_WORK`` the
    whole solve runs on one thread; below ``SMALL_WORK`` its kernels do and
    BLAS keeps its threads; otherwise nothing changes.
    """
    if gemm_work >= SMALL_WORK or get_num_threads() == 1:
        return contextlib.nullcontext()
    if gemm_work < BLAS_SMALL_WORK:
        return threads(1)
    return _kernel_threads(1)


def sized_by(rank_of):
    """Decorator for public solvers: run small problems on fewer threads
    (:func:`for_work`).

    The estimate is the larger of a cross-product GEMM, ``m n k`` (for
    sparse data ``nnz k``, scaled so that ``SPARSE_SMALL_WORK`` maps to
    ``SMALL_WORK``), and
    a Gram-sized product, ``max(m, n) k k`` (an n x k times k x k update),
    with ``A`` (m, n) the first argument and ``k = rank_of(*args, **kwargs)``.
    Anything odd (bad input that validation will reject) skips the limit.
    """
    def deco(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                m, n = (float(d) for d in np.shape(args[0]))
                k = float(rank_of(*args, **kwargs))
                nnz = getattr(args[0], "nnz", None)
                if nnz is None:
                    work = k * max(m * n, max(m, n) * k)
                else:   # sparse data: nnz k on the scale of SMALL_WORK
                    work = k * max(float(nnz) * (SMALL_WORK / SPARSE_SMALL_WORK),
                                   max(m, n) * k)
                if not math.isfinite(work):
                    work = math.inf
            except Exception:
                work = math.inf
            try:
                with for_work(work):
                    return func(*args, **kwargs)
            finally:   # the call may have started Numba's layer
                keep_openmp_nesting_off()
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
