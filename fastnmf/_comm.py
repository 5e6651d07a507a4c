"""Sums over the processes that share one factorization (data parallelism).

Every coupling quantity of the solvers is a sum over samples (method.md
section 6): Gram matrices ``V V^T``, cross products ``A V^T``, squared
norms. With the samples (columns of ``A``) split across MPI processes, each
process computes its partial sums and one in-place allreduce per U-step
makes them global; every V-step is column-local and needs nothing. The
solvers are written once against the small interface below:

* :data:`SERIAL` (``comm=None``): one process, every reduction is a no-op;
* :class:`MPIComm`: wraps an ``mpi4py`` communicator (``mpi4py`` is an
  optional dependency, imported only when a communicator is passed).

So the single-process path is the very same solver code.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SERIAL", "SerialComm", "MPIComm", "as_comm", "collective", "check_same"]


class SerialComm:
    """One process: reductions return their input unchanged."""

    rank = 0
    size = 1

    def __init__(self):
        self.n_allreduce = 0      # matrix allreduces issued (for the cost model)
        self.allreduce_bytes = 0

    def sum_(self, buf: np.ndarray) -> np.ndarray:
        """Sum ``buf`` (C-contiguous) over all processes, in place."""
        return buf

    def sum(self, x: float) -> float:
        """Sum of a scalar over all processes (float64)."""
        return float(x)

    def bcast(self, obj, root: int = 0):
        return obj

    def allgather(self, obj) -> list:
        return [obj]

    def abort(self, code: int = 1):  # pragma: no cover - nothing to abort
        raise SystemExit(code)

    def __repr__(self):
        return "SerialComm()"


#: The no-op communicator used for ``comm=None``.
SERIAL = SerialComm()


class MPIComm(SerialComm):
    """An ``mpi4py`` communicator behind the :class:`SerialComm` interface.

    Matrix reductions are ``Allreduce(IN_PLACE, buf, SUM)`` on the caller's
    contiguous buffer (no copy, no pickling); they are counted in
    ``n_allreduce`` / ``allreduce_bytes``.
    """

    def __init__(self, comm):
        super().__init__()
        from mpi4py import MPI  # optional dependency: pip install "fastnmf[mpi]"
        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def sum_(self, buf: np.ndarray) -> np.ndarray:
        if self.size > 1:
            if not buf.flags.c_contiguous:
                raise ValueError("allreduce buffers must be C-contiguous")  # internal bug guard
            self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
            self.n_allreduce += 1
            self.allreduce_bytes += buf.nbytes
        return buf

    def sum(self, x: float) -> float:
        if self.size == 1:
            return float(x)
        buf = np.array([x], dtype=np.float64)
        self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        return float(buf[0])

    def bcast(self, obj, root: int = 0):
        return self.comm.bcast(obj, root=root) if self.size > 1 else obj

    def allgather(self, obj) -> list:
        return self.comm.allgather(obj) if self.size > 1 else [obj]

    def abort(self, code: int = 1):
        self.comm.Abort(code)

    def __repr__(self):
        return f"MPIComm(rank={self.rank}, size={self.size})"


def as_comm(comm) -> SerialComm:
    """``None`` -> :data:`SERIAL`; an mpi4py communicator -> :class:`MPIComm`.

    Raises TypeError for anything else (naming the ``comm`` argument).
    """
    if comm is None:
        return SERIAL
    if isinstance(comm, SerialComm):
        return comm
    if hasattr(comm, "Allreduce") and hasattr(comm, "Get_size") and hasattr(comm, "Get_rank"):
        return MPIComm(comm)
    raise TypeError(f"comm must be None or an mpi4py communicator (e.g. MPI.COMM_WORLD), "
                    f"got {type(comm).__name__}")


class collective:
    """Context manager for a validation block that every process runs.

    ``with collective(comm): ...``: if the block raises on some process,
    that process's exception propagates as usual and every other process
    raises a ValueError naming the failing rank and its message. Without
    this, one process raising while the others enter an allreduce is a
    deadlock. One process: a plain block.
    """

    def __init__(self, comm):
        self.comm = comm

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        if self.comm.size == 1:
            return False
        if exc is not None and not isinstance(exc, Exception):
            return False  # KeyboardInterrupt etc.: the launcher aborts the job
        msgs = self.comm.allgather(None if exc is None else f"{type(exc).__name__}: {exc}")
        failed = [(r, m) for r, m in enumerate(msgs) if m is not None]
        if exc is not None or not failed:
            return False
        r, m = failed[0]
        raise ValueError(f"rank {r} of {self.comm.size} failed: {m}")


def check_same(comm: SerialComm, value, name: str) -> None:
    """Every process must pass the same ``value`` (e.g. the feature count);
    otherwise every process raises a ValueError listing them (no deadlock)."""
    if comm.size == 1:
        return
    values = comm.allgather(value)
    if any(v != values[0] for v in values):
        raise ValueError(f"{name} differs across MPI ranks: "
                         + ", ".join(f"rank {r}: {v}" for r, v in enumerate(values)))
