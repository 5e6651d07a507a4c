"""Large, long-lived work buffers allocated without a huge-page request.

numpy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``)
on every allocation of 4 MiB or more. Where THP runs in ``madvise`` mode
with ``defrag=madvise`` (the default of many Linux distributions, and this
project's machine), a page fault in such a region compacts memory
synchronously once no free 2 MiB block is left. Measured on 2 cores, a
fresh 120 MB buffer (Fashion-MNIST's 60000 x 500 float32) written for the
first time: 8-11 ms while free huge pages last, then 140-290 ms each,
against 42-46 ms each without the request. The network trainer allocates
about 0.8 GB once per fit (its activations and the solves' scratch), so the
request cost 0.6 s in its setup and 0.6 s in its first sweep, and its later
sweeps gained 1.5% from huge pages (1.42 vs 1.44-1.45 s; in turns, two
processes each).

:func:`empty_bytes` maps such buffers privately and anonymously and leaves
the kernel's default policy alone (with THP ``always``, the kernel may still
back them with huge pages, without stalling the fault for them).
"""
from __future__ import annotations

import mmap

import numpy as np

#: Buffers from this size on are mapped directly (numpy's huge-page request
#: starts at 4 MiB).
DIRECT_MAP_BYTES = 4 << 20


def empty_bytes(nbytes: int) -> np.ndarray:
    """An uninitialised, writable, page-aligned uint8 array of ``nbytes``.

    From ``DIRECT_MAP_BYTES`` on, a private anonymous mapping without a
    transparent-huge-page request (module docstring); smaller ones, and any
    platform without anonymous ``mmap``, come from ``np.empty``. The memory
    is released when the last array viewing it is.
    """
    nbytes = max(int(nbytes), 1)
    flags = getattr(mmap, "MAP_PRIVATE", None), getattr(mmap, "MAP_ANONYMOUS", None)
    if nbytes < DIRECT_MAP_BYTES or None in flags:
        return np.empty(nbytes, np.uint8)
    try:
        buf = mmap.mmap(-1, nbytes, flags=flags[0] | flags[1])
    except (OSError, ValueError):  # pragma: no cover - no address space left, etc.
        return np.empty(nbytes, np.uint8)
    return np.frombuffer(buf, np.uint8)
