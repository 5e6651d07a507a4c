"""bench/mpi_cost_model.py counts what the Trainer really does.

No MPI: the flops are checked against ``Trainer.sweep_gemms()``, the
communication against a fake two-process communicator that sums nothing
but counts every collective the data-parallel code paths issue.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from fastnmf._comm import SerialComm
from fastnmf_dnn.network import init_random
from fastnmf_dnn.trainer import PRESETS, TrainOptions, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import mpi_cost_model as M  # noqa: E402

CASES = [
    pytest.param((12, 9, 7, 3), TrainOptions(), id="default-2hidden"),
    pytest.param((12, 9, 7, 3), TrainOptions(z_solver="mu", z_iter=5), id="mu-2hidden"),
    pytest.param((12, 9, 3), TrainOptions(z_solver="hals", inner_iter=2, rel_ridge=0.0),
                 id="hals-inner2"),
    pytest.param((12, 9, 7, 5, 3), PRESETS["paper"], id="paper-3hidden"),
    pytest.param((12, 3), TrainOptions(), id="linear"),
]


class CountingComm(SerialComm):
    """Two processes as far as the solvers can tell; every reduction is a
    no-op (so the numbers are one process's) but is counted."""

    size = 2

    def __init__(self):
        super().__init__()
        self.n_sum = self.n_allgather = 0

    def sum_(self, buf):
        self.n_allreduce += 1
        self.allreduce_bytes += buf.nbytes
        return buf

    def sum(self, x):
        self.n_sum += 1
        return float(x)

    def allgather(self, obj):
        self.n_allgather += 1
        return [obj]

    def counts(self):
        return M.SweepComm(self.n_allreduce, self.allreduce_bytes, self.n_sum, self.n_allgather)


def _data(sizes, N, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((N, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(sizes[-1], size=N)]
    return X, Y, init_random(list(sizes), rng, dtype)


@pytest.mark.parametrize("sizes, options", CASES)
def test_sweep_flops_match_trainer(sizes, options):
    X, Y, net = _data(sizes, 40, np.float64)
    gemms = Trainer(X, Y, net, options).sweep_gemms()
    assert M.sweep_flops(sizes, 40, options) == sum(2 * m * k * n for m, k, n in gemms)
    # a process with 20 of the 40 samples
    gemms = Trainer(X[:20], Y[:20], net, options, comm=CountingComm()).sweep_gemms()
    assert M.sweep_flops(sizes, 20, options) == sum(2 * m * k * n for m, k, n in gemms)


@pytest.mark.parametrize("sizes, options", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sweep_comm_matches_counted_collectives(sizes, options, dtype):
    X, Y, net = _data(sizes, 30, dtype)
    comm = CountingComm()
    tr = Trainer(X, Y, net, options, comm=comm)
    tr.sweep()                    # the first sweep may fit the output layer twice
    for _ in range(3):
        before, beta = comm.counts(), tr.beta
        tr.sweep()
        counted = M.SweepComm(*(a - b for a, b in zip(comm.counts(), before)))
        rejected = tr.beta < beta     # extrapolation: the plain step taken instead
        assert counted == M.sweep_comm(sizes, options, np.dtype(dtype).itemsize, rejected)


def test_model_limits():
    sizes, o = (784, 500, 500, 10), TrainOptions()
    rate = 5e10
    t1 = M.sweep_time(sizes, 60_000, 1, o, rate, 1e-6, 1e9)
    assert t1 == M.sweep_flops(sizes, 60_000, o) / rate
    # free communication: efficiency below 1 only through the replicated k x k products
    assert 0.5 < M.efficiency(sizes, 6_000_000, 64, o, rate, 0.0, np.inf) < 1.0
    assert (M.efficiency(sizes, 60_000, 64, o, rate, 20e-6, 1.1e9)
            < M.efficiency(sizes, 60_000, 64, o, rate, 2e-6, 10e9))
