"""Scratch buffers that the single-block solves reuse from call to call.

A training loop calls ``nnls`` and ``relu_lstsq`` on the same shapes every
sweep, and each call needs n-sized scratch (model products, cross products,
multiplicative-update numerators). Allocated afresh, every such buffer is a
new ``mmap`` whose pages the kernel zeroes and faults in on first touch: on
Fashion-MNIST 784-500-500-10 that was seven 120 MB buffers and about 0.3 s
of a 1.9 s sweep (2 cores, measured by keeping glibc from returning the
memory). Inside ``with workspace:`` the solves take their scratch from the
workspace instead.

The workspace holds numbered slots, not one buffer per use: a solve asks
for slot 0, 1, 2, ... (distinct within the call; solves never nest), and a
slot is one byte buffer, grown to the largest request, that each request
views with its own shape and dtype. So the memory held is what the most
demanding single call needs (three N x 500 arrays for a Fashion-MNIST
sweep), as it was with per-call allocation, not the sum over every kind of
call. Buffers of 4 MiB and more are mapped without numpy's transparent
huge-page request (:mod:`fastnmf._alloc`: on this machine the request made
first touches up to 7x slower). A slot may be any hashable key: a caller
that keeps long-lived arrays of its own in the workspace (the network
trainer does) uses keys of its own next to the solves' numbers.
"""
from __future__ import annotations

import contextvars
import math
import threading

import numpy as np

from ._alloc import empty_bytes

__all__ = ["Workspace", "scratch"]

_CURRENT = contextvars.ContextVar("fastnmf_workspace", default=None)


class Workspace:
    """Scratch buffers for fastnmf's solves, kept across calls.

    Use it as a context manager around repeated calls on arrays of the same
    shapes (a training loop): inside ``with ws:``, :func:`fastnmf.nnls`,
    :func:`fastnmf.relu_lstsq` and :func:`fastnmf.ridge_lstsq` take their
    internal work arrays from ``ws`` instead of allocating them per call:
    a few buffers, each grown to the largest array it has served, so ``ws``
    holds what the most demanding call needs. Results are identical; the
    arrays a solve returns are never workspace memory. Outside any
    ``with``, solves allocate as usual.

    The memory stays held until :meth:`clear` or until the workspace is
    garbage-collected (``nbytes`` says how much). A workspace serves one
    thread at a time (entering it from a second thread while the first is
    inside raises ``RuntimeError``: the two would write the same buffers);
    the active one is per thread (and asyncio task).

    Examples
    --------
    >>> import numpy as np, fastnmf
    >>> rng = np.random.default_rng(0)
    >>> A, U = rng.random((20, 300)), rng.random((20, 4))
    >>> ws = fastnmf.Workspace()
    >>> with ws:
    ...     for _ in range(3):
    ...         r = fastnmf.nnls(A, U, max_iter=5)
    >>> ws.nbytes > 0
    True
    """

    def __init__(self):
        self._buffers = {}
        self._tokens = []
        self._owner = None          # the thread inside ``with``, if any
        self._lock = threading.Lock()

    def get(self, slot: int, shape, dtype, order: str = "C") -> np.ndarray:
        """An uninitialised array of this shape, dtype and order on ``slot``'s
        buffer (grown if too small). Arrays from one slot alias each other:
        a caller uses each slot for one array at a time."""
        # Called several times per solve: kept to plain-int arithmetic
        # (``np.prod`` of the shape alone took 9.5 us, the whole call 12.7
        # us; now about 2).
        dtype = np.dtype(dtype)
        shape = tuple(map(int, shape))
        nbytes = math.prod(shape) * dtype.itemsize
        buf = self._buffers.get(slot)
        if buf is None or buf.nbytes < nbytes:
            buf = self._buffers[slot] = empty_bytes(nbytes)
        return np.ndarray(shape, dtype, buffer=buf, order=order)

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return sum(b.nbytes for b in self._buffers.values())

    def clear(self) -> None:
        """Release every buffer (the next use allocates again)."""
        self._buffers.clear()

    def __enter__(self):
        me = threading.get_ident()
        with self._lock:
            if self._tokens and self._owner != me:
                raise RuntimeError("this fastnmf.Workspace is in use by another thread; "
                                   "give each thread its own")
            self._owner = me
            self._tokens.append(_CURRENT.set(self))
        return self

    def __exit__(self, *exc):
        with self._lock:
            _CURRENT.reset(self._tokens.pop())
            if not self._tokens:
                self._owner = None
        return False

    def __repr__(self):
        return f"Workspace({len(self._buffers)} buffers, {self.nbytes / 2**20:.1f} MiB)"


def scratch(slot: int, shape, dtype, order: str = "C") -> np.ndarray:
    """A work array on ``slot`` of the active :class:`Workspace`, or a new
    ``np.empty`` outside one. Within one call use each slot for one array;
    never return it to a caller (the next call writes into it)."""
    ws = _CURRENT.get()
    if ws is None:
        return np.empty(shape, dtype, order=order)
    return ws.get(slot, shape, dtype, order)
