"""The Kullback-Leibler NMF loop (:func:`fastnmf.nmf` with ``loss="kl"``).

Minimises the generalized KL divergence
``D(A || U V) = sum_ij A_ij log(A_ij / (UV)_ij) - A_ij + (UV)_ij`` (plus the
optional penalties, in D's units) by Lee & Seung's multiplicative updates:

    U <- U * ((A / UV) V^T) / (1 rowsum(V)^T + l1 + l2 U)
    V <- V * (U^T (A / UV)) / (colsum(U) 1^T + l1 + l2 V)

each of which does not increase the objective. Per iteration, dense A: four
m x n x k GEMMs (the model ``U V`` and the numerator, for each factor) and
two ratio passes (:mod:`fastnmf._kl_kernels`); sparse A: two fused O(nnz k)
passes. The objective needs a log per positive entry of A, which on dense
data costs about as much as the iteration's GEMMs: it is evaluated every
``check_every`` iterations (scikit-learn evaluates its KL every 10), in the
ratio pass the next U-update makes anyway, so it adds no pass over A.
"""
from __future__ import annotations

import time

import numpy as np

from . import _kl_kernels as KK
from ._kernels import _SERIAL_BELOW
from ._penalty import Penalty
from ._result import FactorizationResult
from ._sparse import SparseData
from ._threads import get_num_threads

__all__ = ["kl_nmf_loop"]


def _serial(size: int) -> bool:
    return get_num_threads() == 1 or size < _SERIAL_BELOW


class _Model:
    """The two KL numerators of A against the current factors, dense or sparse.

    ``numerator_u(U, Vt, out, with_log)``: ``out = (A / U Vt^T) Vt`` (m, k);
    ``numerator_v(U, Vt, out)``: ``out = (A / U Vt^T)^T U`` (n, k). The first
    also returns ``sum A log(A / U Vt^T)`` (this process's share) when asked.
    """

    def __init__(self, A, tiny: float):
        self.A, self.tiny = A, tiny
        self.sparse = isinstance(A, SparseData)
        if self.sparse:
            return
        m, n = A.shape
        # the ratio buffer in A's memory order (a data-sized array, once)
        self.by_rows = A.flags.c_contiguous
        self.buf = np.empty((m, n) if self.by_rows else (n, m), A.dtype)

    def _ratio(self, U, Vt, with_log):
        """The ratio ``A / max(U V, tiny)`` as an (m, n) view of the buffer."""
        buf = self.buf
        if self.by_rows:
            np.matmul(U, Vt.T, out=buf)
            data, R = self.A, buf
        else:   # F-ordered A: the buffer holds the transposed model, in A^T's order
            np.matmul(Vt, U.T, out=buf)
            data, R = self.A.T, buf.T
        kern = KK.kl_ratio_serial_ if _serial(buf.size) else KK.kl_ratio_
        return R, kern(buf, data, self.tiny, with_log)

    def _csr(self, A, X, Y, out, with_log):
        nt = get_num_threads()
        if nt == 1 or A.nnz * X.shape[1] < _SERIAL_BELOW:
            return KK.kl_numerator_csr_serial_(A._all_rows, A.indptr, A.indices, A.data, X, Y,
                                               out, self.tiny, with_log)
        return KK.kl_numerator_csr_(A.row_bounds(nt), A.indptr, A.indices, A.data, X, Y, out,
                                    self.tiny, with_log)

    def numerator_u(self, U, Vt, out, with_log: bool) -> float:
        if self.sparse:
            return self._csr(self.A, U, Vt, out, with_log)
        R, s = self._ratio(U, Vt, with_log)
        np.matmul(R, Vt, out=out)
        return s

    def numerator_v(self, U, Vt, out) -> None:
        if self.sparse:
            self._csr(self.A.T, Vt, U, out, False)
            return
        R, _ = self._ratio(U, Vt, False)
        np.matmul(R.T, U, out=out)


def _update(X, N, s, guard, l1, l2):
    kern = KK.mu_kl_update_serial_ if _serial(X.size) else KK.mu_kl_update_
    kern(X, N, s, guard, l1, l2)


def _sum_guard(eps: float, s, dtype) -> float:
    """The denominator guard of an update whose sums are s: ``eps`` times the
    largest (a factor whose every entry is 0 then stays 0, without 0/0)."""
    top = float(s.max()) if s.size else 0.0
    return max(eps * top, float(np.finfo(dtype).tiny))


def kl_nmf_loop(A, U, Vt, *, max_iter, tol, eps, check_every, l1=(0.0, 0.0),
                l2=(0.0, 0.0), comm, update_v=True, data_max=None, track=True):
    """Multiplicative KL updates from (U, Vt), both updated in place.

    A (m, n) dense (C or F order) or :class:`SparseData`, nonnegative; its
    columns may be split across processes (``comm``): each U-update reduces
    ``[(A / UV) V^T; rowsum(V); the log sum]`` in one allreduce of
    (m + 2) x k numbers. ``update_v=False`` updates U only (a transform).
    The model is bounded below by ``eps * data_max`` where it divides A
    (default: A's largest entry; a transform passes the fitted data's, so
    that a sample's code does not depend on the batch it comes in).
    ``track=False`` evaluates nothing (``errors`` empty, no log pass).

    ``errors`` holds ``D(A || U V) / sum(A)`` (scale-free) at the start and
    every ``check_every`` iterations and at the end, ``info["iterations"]``
    the iteration each belongs to and ``info["objective"]`` D plus the
    penalties. Stops when the objective fell by less than ``tol`` times its
    value since the previous evaluation.
    """
    m, n = A.shape
    k = U.shape[1]
    dt = A.dtype
    t0 = time.perf_counter()
    values = A.data if isinstance(A, SparseData) else A
    amax = float(values.max()) if values.size else 0.0
    sum_a = comm.sum(float(values.sum(dtype=np.float64)))
    amax = max(comm.allgather(amax)) if comm.size > 1 else amax
    if data_max is not None:
        amax = float(data_max)
    tiny = max(eps * amax, float(np.finfo(dt).tiny))
    model = _Model(A, tiny)
    # U-step buffer: [numerator (m, k); rowsum(V) (k); log sum (first entry)]
    NU = np.empty((m + 2, k), dt)
    red = np.empty((m + 2, k), np.float64) if comm.size > 1 else None
    NV = np.empty((n, k), dt)
    pen = Penalty(l1, l2, comm)
    scale = sum_a if sum_a > 0 else 1.0

    def objective(log_ratio_sum, vsum):
        """(D, D + penalties) of the point (U, Vt) the numerator was formed
        at: ``sum A log(A / P)`` comes from the ratio pass, ``sum P`` is
        ``colsum(U) . rowsum(V)``."""
        usum = U.sum(axis=0, dtype=np.float64)
        d = log_ratio_sum - sum_a + float(usum @ vsum)
        return max(d, 0.0), d + pen.value_of(U, Vt)

    def u_numerator(with_log):
        """NU[:m] and rowsum(V) (NU[m]), summed over processes; the log sum."""
        s = model.numerator_u(U, Vt, NU[:m], with_log)
        NU[m] = Vt.sum(axis=0)
        if comm.size == 1:
            return s, NU[m].astype(np.float64)
        red[:m + 1] = NU[:m + 1]
        red[m + 1] = 0.0
        red[m + 1, 0] = s
        comm.sum_(red)
        NU[:m + 1] = red[:m + 1]
        return float(red[m + 1, 0]), red[m].copy()

    errors, objs, iters, times = [], [], [], []
    converged = False
    it = 0
    while True:
        record = track and (it % check_every == 0 or it == max_iter)
        if it == max_iter and not record:   # (a numerator only the next update would use)
            break
        s, vsum = u_numerator(with_log=record)
        if record:
            div, obj = objective(s, vsum)
            errors.append(div / scale)
            objs.append(obj)
            iters.append(it)
            times.append(time.perf_counter() - t0)
            if tol > 0 and len(objs) > 1 and objs[-2] - objs[-1] < tol * abs(objs[-1]):
                converged = True
                break
        if it == max_iter:
            break
        it += 1
        _update(U, NU[:m], NU[m], _sum_guard(eps, NU[m], dt), pen.l1u, pen.l2u)
        if update_v:
            model.numerator_v(U, Vt, NV)
            usum = U.sum(axis=0)
            _update(Vt, NV, usum, _sum_guard(eps, usum, dt), pen.l1v, pen.l2v)
    info = {"iterations": np.asarray(iters), "objective": np.asarray(objs)}
    return FactorizationResult(
        U=U, V=Vt.T, n_iter=it, errors=np.asarray(errors), times=np.asarray(times),
        converged=converged, solver="nmf-mu-kl", info=info,
    )
