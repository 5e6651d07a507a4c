"""Input validation at the public boundary.

Every public function validates once, here; kernels never validate. Errors
name the offending argument.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import numbers

import numpy as np

from ._kernels import abs_max, scan_values, unit_rows

_FLOATS = (np.float32, np.float64)

# Set by trusted_data(): skip the checks that read every entry of an array.
_TRUSTED = contextvars.ContextVar("fastnmf_trusted_data", default=False)


@contextlib.contextmanager
def trusted_data():
    """Context manager: skip the value checks of array arguments inside.

    Every public function checks that its arrays hold no NaN or Inf and,
    where it needs them so, no negative entries. Those two checks read
    every entry in serial NumPy passes: 9 ms for a 60000 x 501 float32
    array, which a network training sweep passes several times (about 15%
    of a sweep's time on 16 cores). Inside ``trusted_data()`` they are
    skipped; types, shapes, options and everything else are still checked.

    Use it only around calls on arrays you produced or checked yourself
    (``fastnmf_dnn`` uses it around the solves of a training sweep, on its
    own buffers; its inputs are checked once when training starts). On
    NaN, Inf or wrongly signed data inside it the results are undefined.
    The setting is per thread (and per asyncio task).

    Examples
    --------
    >>> import numpy as np, fastnmf
    >>> A = np.random.default_rng(0).random((50, 40))
    >>> with fastnmf.trusted_data():
    ...     r = fastnmf.nmf(A, 5, max_iter=10)
    """
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_padded(arr) -> bool:
    """Whether a 2-D array is contiguous or a column (or row) slice of a
    contiguous buffer that the kernels read in place: one that
    :func:`fastnmf._kernels.unit_rows` turns into C-contiguous rows of the
    buffer's width, directly (``H[:, :k]``) or transposed (``H[:, :k].T``)."""
    if arr.ndim != 2:
        return False
    if arr.flags.c_contiguous or arr.flags.f_contiguous:
        return True
    t = arr.T
    return unit_rows(arr) is not arr or unit_rows(t) is not t


def magnitude_range(dtype, shape) -> tuple:
    """The range of data magnitudes the solvers accept.

    Every public solver raises ValueError for an array argument whose
    largest |entry| is neither 0 nor within this range: its products
    would overflow to Inf (then NaN) or underflow to zero (then relative
    errors divide by a zero norm). Rescale such data first, e.g. by its
    largest magnitude.

    Parameters
    ----------
    dtype : numpy.float32 or numpy.float64
        The working dtype.
    shape : tuple of two ints
        ``(m, n)`` of the array.

    Returns
    -------
    (lo, hi) : tuple of float
        ``lo = sqrt(tiny / eps)``: the squares of entries down to ``eps``
        times the largest stay normal numbers. ``hi = (max / (1024 m n))^(1/4)``:
        the squared norm sums m n squares, and a solver's products reach
        the fourth power of the data's scale (the nndsvda start fills zeros
        of both factors with the data's mean, as NNDSVDa is defined, and
        the power iterations and semi-NMF's Gram matrices multiply such
        factors), with room to spare; checked at both ends in the tests.
        float64: about [1e-146, 2e74] for 10^5 x 10^3; float32:
        [3.1e-16, 9.2e6] for Fashion-MNIST's 60000 x 784.
    """
    fi = np.finfo(dtype)
    lo = float(np.sqrt(float(fi.tiny) / float(fi.eps)))
    size = float(max(shape[0], 1)) * float(max(shape[1], 1))
    hi = float((float(fi.max) / (1024.0 * size)) ** 0.25)
    return lo, hi


def check_matrix(A, name: str, *, nonnegative: bool = False, dtype=None,
                 allow_empty_columns: bool = False, keep_padded: bool = False,
                 magnitude: bool = True) -> np.ndarray:
    """Return ``A`` as a finite 2-D float32/float64 array, C- or F-contiguous.

    float32 and float64 are preserved (float16 becomes float32, integers and
    bools become float64) unless ``dtype`` forces one. C or F order is kept
    without a copy; other layouts are copied to C order.
    ``allow_empty_columns``: zero columns are valid (a process's share of
    samples split across MPI ranks may be empty). ``keep_padded``: a
    padded C or F layout (:func:`is_padded`, e.g. ``H[:, :k]`` or its
    transpose) is kept without a copy too, for callers whose kernels read
    it in place. ``magnitude``: its largest |entry| must be 0 or within
    :func:`magnitude_range` (ValueError otherwise: the products would
    overflow to Inf / NaN or underflow to zero; off for arrays that are
    themselves products, e.g. a Gram matrix).
    """
    if hasattr(A, "toarray") or hasattr(A, "tocsr"):
        raise TypeError(f"{name} is a sparse matrix; pass a dense numpy array (only "
                        "fastnmf.nmf, semi_nmf, nnls and ridge_lstsq take sparse data, as A)")
    try:
        arr = np.asarray(A)
    except Exception as exc:  # ragged lists and other non-arrays
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} has complex dtype {arr.dtype}; only real data is supported")
    if kind not in "fiub":
        raise TypeError(f"{name} has non-numeric dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] == 0 or (arr.shape[1] == 0 and not allow_empty_columns):
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if dtype is None:
        if arr.dtype == np.float64 or arr.dtype == np.float32:
            dtype = arr.dtype
        elif arr.dtype == np.float16:
            dtype = np.float32
        else:
            dtype = np.float64
    dtype = check_dtype(dtype)
    if arr.dtype != dtype:
        order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
        arr = arr.astype(dtype, order=order)
    elif not (arr.flags.c_contiguous or arr.flags.f_contiguous
              or (keep_padded and is_padded(arr))):
        arr = np.ascontiguousarray(arr)
    if _TRUSTED.get():
        return arr
    # One compiled read of A for all checks (np.isfinite(A).all() and
    # A.min() read it twice and write a boolean copy: 28 us on digits, 34
    # ms on Fashion-MNIST's 60000 x 784, 2 threads; the scan, magnitude
    # included since session 19, 25-35 us and 11-12 ms).
    finite, negative, amax = scan_values(arr.ravel(order="K"))
    if not finite:
        raise ValueError(f"{name} contains NaN or Inf")
    if nonnegative and negative:
        raise ValueError(f"{name} must be nonnegative, but its minimum is {arr.min()!r}")
    if magnitude:
        check_magnitude(arr, name, amax=amax)
    return arr


def check_magnitude(arr, name: str, *, amax: float = None,
                    hint: str = "e.g. divide it by its largest magnitude") -> None:
    """ValueError if the largest |entry| of ``arr`` (float32/float64,
    finite; ``amax`` if already known) is neither 0 nor within
    :func:`magnitude_range`. ``hint``: how the caller's user should rescale."""
    if amax is None:
        amax = abs_max(arr)
    if amax == 0.0:
        return
    lo, hi = magnitude_range(arr.dtype, arr.shape)
    if not lo <= amax <= hi:
        what = "overflow" if amax > hi else "underflow"
        raise ValueError(
            f"{name}'s largest magnitude {amax:.3g} is outside [{lo:.3g}, {hi:.3g}], the "
            f"range in which {arr.dtype} Gram and cross products of a {arr.shape[0]} x "
            f"{arr.shape[1]} array neither overflow nor underflow (they would {what}); "
            f"rescale {name}, {hint}")


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """The working dtype: float32 or float64 (the kernels are built for those only)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dt not in _FLOATS:
        raise ValueError(f"{name} must be numpy.float32 or numpy.float64, got {dt}")
    return dt


def check_rank(rank, name: str = "rank") -> int:
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(rank).__name__} {rank!r}")
    if rank < 1:
        raise ValueError(f"{name} must be >= 1, got {rank}")
    return int(rank)


def check_int(value, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(value, name: str, *, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    return value


def check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_factor(X, name: str, shape, dtype, *, nonnegative: bool,
                 allow_empty_columns: bool = False) -> np.ndarray:
    """Validate a user-supplied factor and return a private C-contiguous copy."""
    arr = check_matrix(X, name, nonnegative=nonnegative, dtype=dtype,
                       allow_empty_columns=allow_empty_columns)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    return np.array(arr, dtype=dtype, order="C", copy=True)


def check_random_state(random_state, *, build: bool = True):
    """A numpy Generator for ``random_state`` (None, an int, a SeedSequence,
    a Generator or a legacy RandomState, which gives one draw for the seed).

    ``build=False`` only checks the type and returns ``random_state``: for
    calls that may not need random numbers (an explicit ``init`` pair), since
    ``default_rng(None)`` reads OS entropy (18-41 us, the largest part of a
    small solve's validation).
    """
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(random_state, bool):
            raise TypeError("random_state must be None, an int or a numpy Generator")
        return np.random.default_rng(random_state) if build else random_state
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        if not build:
            return random_state
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise TypeError(
        f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}"
    )


def check_distributed(comm, A, name: str = "A") -> int:
    """Collective checks after every process validated its own block of A
    (columns = samples): the same row count and dtype everywhere and at
    least one column in total. Returns the total column count. Raises the
    same ValueError on every process."""
    if comm.size == 1:      # every solve calls this: one process has nothing to agree on
        N = A.shape[1]
    else:
        from ._comm import check_same
        check_same(comm, (A.shape[0], A.dtype.name), f"{name}'s row count and dtype")
        N = int(round(comm.sum(A.shape[1])))
    if N == 0:
        raise ValueError(f"{name} is empty (no columns on any process)")
    return N
