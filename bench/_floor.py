"""GEMM floor of a benchmark, and the rounds every benchmark is timed with.

The *GEMM floor* of an operation is the time of the matrix products it
issues, replayed alone with ``numpy.matmul`` on random arrays of the same
shapes, layouts and dtype, in the same process, under the same thread limit
(``fastnmf.threads`` of the benchmark, and ``fastnmf._threads.for_work`` the
way the solvers themselves drop small problems to one thread), once before
every timed round (:class:`FloorTimer`). The *floor ratio* ``median time /
floor`` is the machine-independent guard next to the wall time: a faster or
slower machine (or a slower stretch of a noisy one) moves both, a
regression in fastnmf's own code moves only the numerator.

Op lists (one entry per ``np.matmul`` call, k x k algebra and fused
elementwise kernels left out; ``tests/test_bench_floor.py`` checks them
against the products the solvers really issue):

* ``mm(m, k, n, ta, tb)``: an (m, k) times (k, n) product into a C-ordered
  (m, n) output; ``ta`` / ``tb``: that operand is the transpose of a
  C-contiguous array (``A.T @ U``, ``U @ Vt.T``);
* ``gram(p, k)``: ``X.T @ X`` of a C-contiguous (p, k) X (numpy uses syrk).
"""
from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from fastnmf._threads import for_work


def mm(m, k, n, ta=False, tb=False):
    return ("mm", int(m), int(k), int(n), bool(ta), bool(tb))


def gram(p, k):
    return ("gram", int(p), int(k))


def op_shape(op):
    """(m, k, n) of an op: ``m x k`` times ``k x n``."""
    if op[0] == "gram":
        return (op[2], op[1], op[2])
    return op[1:4]


def op_madds(ops) -> float:
    """Multiply-adds of an op list (a Gram counted as a full GEMM)."""
    return float(sum(m * k * n for m, k, n in map(op_shape, ops)))


# --------------------------------------------------------------------------- solvers
def nmf_ops(m, n, k, iters, solver):
    """``fastnmf.nmf(A (m, n), k, init=(U, V), max_iter=iters, tol=0)``."""
    ops = [gram(n, k), mm(m, n, k), gram(m, k)]          # initial error: GV, A Vt, GU
    for it in range(1, iters + 1):
        if solver == "hals":                              # extrapolated (the default)
            if it > 1:
                ops += [mm(m, n, k), gram(n, k)]          # A Vh, Gram of Vh
            ops += [mm(n, m, k, ta=True), gram(m, k), gram(n, k)]  # A^T Uh, GU, Gram of Vc
        else:                                             # MU, one update per block
            if it > 1:
                ops.append(mm(m, n, k))                   # A Vt
            ops += [mm(m, k, k), mm(n, m, k, ta=True), gram(m, k), mm(n, k, k), gram(n, k)]
    return ops


def nmf_kl_ops(m, n, k, iters):
    """``fastnmf.nmf(A (m, n), k, solver="mu", loss="kl", init=(U, V),
    max_iter=iters, tol=0)`` (dense, C order): per update the model U V^T
    and the numerator (A / UV) Vt or (A / UV)^T U, and once more at the end
    for the final objective."""
    u_side = [mm(m, k, n, tb=True), mm(m, n, k)]           # P = U Vt^T, R Vt
    v_side = [mm(m, k, n, tb=True), mm(n, m, k, ta=True)]  # P = U Vt^T, R^T U
    return (u_side + v_side) * iters + u_side


def semi_nmf_ops(m, n, k, iters, solver):
    """``fastnmf.semi_nmf(A, k, init=(U, V), max_iter=iters, tol=0)``."""
    ops = [mm(n, m, k, ta=True), gram(m, k), gram(n, k)]  # initial error
    for _ in range(iters):
        ops += [mm(m, n, k), mm(m, k, k)]   # ridge U-step (GV: the error step's)
        ops += [mm(n, m, k, ta=True), gram(m, k)]         # A^T U, GU
        if solver == "mu":
            ops += [mm(n, k, k), mm(n, k, k)]             # Vt G+, Vt G-
        ops.append(gram(n, k))                            # GV for the error
    return ops


def _relu_left(m, n, k, n_iter, residual_ready):
    ops = [gram(n, k)]
    for it in range(n_iter):
        if it or not residual_ready:
            ops.append(mm(m, k, n, tb=True))              # P = U Vt^T
        ops += [mm(m, n, k), mm(m, k, k)]                 # R Vt, (R Vt) inv
    return ops


def _relu_right(m, n, k, n_iter, residual_ready):
    ops = [gram(m, k), mm(m, k, k)]                       # U^+ (transposed)
    for it in range(n_iter):
        if it or not residual_ready:
            ops.append(mm(m, k, n, tb=True))              # P = U Vt^T
        ops.append(mm(n, m, k, ta=True))                  # R^T M
    return ops


def nonlinear_ops(m, n, k, iters, n_inner=2):
    """``fastnmf.nonlinear_semi_nmf(A, k, init=(U, V), max_iter=iters, tol=0)``."""
    ops = [mm(m, k, n, tb=True)]                          # residual of the start
    for _ in range(iters):
        ops += _relu_left(m, n, k, n_inner, residual_ready=True)
        ops += _relu_right(m, n, k, n_inner, residual_ready=False)
        ops.append(mm(m, k, n, tb=True))                  # error of the new point
    return ops


def relu_lstsq_ops(m, n, k, n_iter, update):
    """``fastnmf.relu_lstsq(A, U, V, update=update, n_iter=n_iter)`` (final error on)."""
    side = _relu_left if update == "U" else _relu_right
    return side(m, n, k, n_iter, residual_ready=False) + [mm(m, k, n, tb=True)]


def trainer_ops(trainer):
    """The products ``Trainer.sweep_gemms()`` lists: the Gram matrices of
    layer inputs as ``gram`` (the trainer forms them as ``H.T @ H``: syrk),
    the rest as plain C-ordered GEMMs."""
    return [gram(k, m) if is_gram else mm(m, k, n)
            for m, k, n, is_gram in trainer.sweep_gemms(grams=True)]


# --------------------------------------------------------------------------- timing
def _replay(ops, dtype, seed=0):
    """A callable issuing ``ops`` on random arrays (allocated once, here)."""
    rng = np.random.default_rng(seed)
    cache = {}

    def arr(role, shape):
        key = (role, shape)
        if key not in cache:
            cache[key] = rng.random(shape, dtype=np.dtype(dtype).type)
        return cache[key]

    calls = []
    for op in ops:
        if op[0] == "gram":
            X = arr("x", (op[1], op[2]))
            calls.append((X.T, X, arr("out", (op[2], op[2]))))
            continue
        _, m, k, n, ta, tb = op
        a = arr("a", (k, m)).T if ta else arr("a", (m, k))
        b = arr("b", (n, k)).T if tb else arr("b", (k, n))
        calls.append((a, b, arr("out", (m, n))))

    def run():
        for a, b, out in calls:
            np.matmul(a, b, out=out)
    return run


def gemm_floor(ops, dtype, *, work=None, repeat=5):
    """Median seconds of the products in ``ops`` (after one warm-up run),
    standalone; the benchmarks use :class:`FloorTimer` instead.

    ``work``: the multiply-adds the solver judges its size by (``A.size *
    k``); the replay then runs under the same ``for_work`` thread rule.
    """
    t = FloorTimer(ops, dtype, work=work)
    for _ in range(repeat):
        t.sample()
    return t.floor()


#: The clock of the floor samples: pytest-benchmark's ``--benchmark-timer``
#: (set by bench/conftest.py), so a floor ratio never mixes CPU and wall time.
TIMER = time.perf_counter


class FloorTimer:
    """The GEMM floor of one benchmark, timed once per benchmark round.

    ``setup(args)`` is the ``setup=`` of ``benchmark.pedantic``: before each
    round (outside pytest-benchmark's timing) it replays the products once
    and times them, so the floor's median comes from the same stretch of
    time as the benchmark's own and the ratio does not move when the
    machine slows down or speeds up during the run. Arrays are allocated and
    the replay warmed up (first touch, BLAS threads) on construction.
    """

    def __init__(self, ops, dtype, *, work=None):
        self.ops, self.work = ops, work
        self._run = _replay(ops, dtype)
        self.samples = []
        self.sample()
        self.samples.clear()

    def sample(self):
        with for_work(self.work) if self.work is not None else contextlib.nullcontext():
            t0 = TIMER()
            self._run()
            self.samples.append(TIMER() - t0)

    def setup(self, args=()):
        def setup():
            self.sample()
            return tuple(args), {}
        return setup

    def floor(self):
        return float(np.median(self.samples)) if self.samples else float("nan")

    def record(self, benchmark):
        """``extra_info``: ``gemm_floor_s`` (median of the per-round
        samples), ``gemm_madds`` and, when timed, ``floor_ratio`` (median
        time / floor). With ``--benchmark-disable`` the round ran once,
        untimed: the floor is recorded (so this code runs in CI), no ratio."""
        floor = self.floor()
        info = benchmark.extra_info
        info["gemm_floor_s"] = floor
        info["gemm_madds"] = op_madds(self.ops)
        stats = getattr(benchmark, "stats", None)
        median = getattr(getattr(stats, "stats", None), "median", None) if stats else None
        if median is not None and floor > 0:
            info["floor_ratio"] = float(median) / floor
        return floor


def rounds_for(seconds_per_call, *, budget_s=1.0, min_rounds=5, max_rounds=25):
    """Rounds that fit ``budget_s`` (at least ``min_rounds``, which is what
    makes the median stable: a median of 5 or more shrugs off one or two
    rounds hit by the other core's noise)."""
    if not math.isfinite(seconds_per_call) or seconds_per_call <= 0:
        return max_rounds
    return int(min(max_rounds, max(min_rounds, budget_s // seconds_per_call)))


def time_once(fn, *args):
    """Seconds of one call (for choosing rounds; never a reported time)."""
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0
