"""One training sweep of fastnmf_dnn's Trainer (pytest-benchmark): a small
and a large ReLU MLP on synthetic data, over dtype and threads.

    pytest bench/bench_trainer.py [--quick]

* small: 1500 x 64 inputs, 64-100-10 (digits-sized);
* large (``large``, skipped by --quick): 20000 x 784, 784-500-500-10.

Data: uniform inputs, labels of a random linear teacher, one-hot targets,
He-initialised weights; default ``TrainOptions``. The Trainer is built once
per benchmark; its first sweep (Numba compilation, and the only sweep that
fits the output layer before the target step) and one more untimed sweep
run before timing, so every timed round is a steady-state sweep continuing
from the previous one, which is what training repeats.

``extra_info``: ``gemm_floor_s`` (the products ``Trainer.sweep_gemms()``
lists, replayed alone with numpy before every round) and ``floor_ratio``.
"""
import numpy as np
import pytest

import _floor as F
from fastnmf_dnn.network import init_random
from fastnmf_dnn.trainer import TrainOptions, Trainer

NETS = [pytest.param((1500, (64, 100, 10)), id="1500x64-64-100-10"),
        pytest.param((20000, (784, 500, 500, 10)), id="20000x784-784-500-500-10",
                     marks=pytest.mark.large)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]


def synthetic(N, sizes, dtype, seed=0):
    """(X (N, d) in [0, 1), one-hot Y (N, c), initial Network)."""
    rng = np.random.default_rng(seed)
    d, c = sizes[0], sizes[-1]
    X = rng.random((N, d), dtype=np.dtype(dtype).type)
    y = np.argmax((X - 0.5) @ rng.standard_normal((d, c)).astype(dtype), axis=1)
    Y = np.eye(c, dtype=dtype)[y]
    return X, Y, init_random(list(sizes), rng, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", NETS)
def test_sweep(benchmark, n_threads, net, dtype):
    N, sizes = net
    X, Y, net0 = synthetic(N, sizes, dtype)
    tr = Trainer(X, Y, net0, TrainOptions())
    tr.sweep()                                  # compile; the first-sweep-only output fit
    ops = F.trainer_ops(tr)
    # Small networks: fastnmf's solvers run their GEMMs on one thread (below
    # fastnmf._threads.SMALL_WORK); the floor is replayed under the same rule.
    floor = F.FloorTimer(ops, dtype, work=max(m * k * n for m, k, n in map(F.op_shape, ops)))
    rounds = F.rounds_for(F.time_once(tr.sweep), budget_s=1.0, max_rounds=15)  # warm-up
    out = benchmark.pedantic(tr.sweep, setup=floor.setup(), rounds=rounds)
    assert out.shape == Y.shape and np.isfinite(out).all()
    benchmark.extra_info.update(kind="trainer", name="trainer-sweep",
                                size=f"{N}x{sizes[0]} " + "-".join(map(str, sizes)),
                                dtype=np.dtype(dtype).name, threads=n_threads,
                                work=float(N) * sum(a * b for a, b in zip(sizes, sizes[1:])))
    floor.record(benchmark)
