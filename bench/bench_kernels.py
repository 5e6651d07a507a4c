"""Per-kernel timings (pytest-benchmark), including the measurements behind
"which kernel lives where" in the README:

* HALS sweep: Cython tiled (AVX2+FMA build and baseline build) vs the Numba
  tiled twin, same data;
* fused Numba passes vs the NumPy expressions they replace.

Rounds: 15, or more for kernels under 7 ms (up to 100, about 0.1 s).

    pytest bench/bench_kernels.py [--quick] [--benchmark-columns=median,iqr]
"""
import numpy as np
import pytest

from fastnmf import _kernels as K
from fastnmf._cy import _hals
from fastnmf._threads import get_num_threads
from _floor import rounds_for, time_once

from fastnmf._hals_dispatch import load_build

# None where the platform or this CPU lacks the build
_hals_avx2, _hals_avx512 = load_build("avx2"), load_build("avx512")

SIZES = [pytest.param((4000, 20), id="p4000-k20"),
         pytest.param((60000, 50), id="p60000-k50", marks=pytest.mark.large)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]


def sweep_inputs(p, k, dtype):
    rng = np.random.default_rng(0)
    W = rng.random((800, k)).astype(dtype)
    G = W.T @ W
    C = rng.random((p, 800)).astype(dtype) @ W
    X0 = rng.random((p, k)).astype(dtype)
    return X0, C, G


BACKENDS = {
    "cython-avx512": (lambda X, C, G: _hals_avx512.hals_update_rows(X, C, G, get_num_threads()))
    if _hals_avx512 else None,
    "cython-avx2": (lambda X, C, G: _hals_avx2.hals_update_rows(X, C, G, get_num_threads()))
    if _hals_avx2 else None,
    "cython-baseline": lambda X, C, G: _hals.hals_update_rows(X, C, G, get_num_threads()),
    "numba-tiled": K.hals_update_rows_numba,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_hals_sweep(benchmark, n_threads, backend, dtype, size):
    fn = BACKENDS[backend]
    if fn is None:
        pytest.skip(f"{backend} build not available on this CPU")
    X0, C, G = sweep_inputs(*size, dtype)
    fn(X0.copy(), C, G)  # compile / warm caches outside the timed rounds
    benchmark.pedantic(fn, setup=lambda: ((X0.copy(), C, G), {}),
                       rounds=_rounds(fn, X0.copy(), C, G), warmup_rounds=1)
    _info(benchmark, "hals_sweep", backend, size, dtype, n_threads)


def _rounds(fn, *args):
    """15 rounds, more for kernels under 7 ms (up to 100, about 0.1 s):
    a median over a few milliseconds of timing is at the mercy of one
    scheduler hiccup on a 2-core machine."""
    return rounds_for(time_once(fn, *args), budget_s=0.1, min_rounds=15, max_rounds=100)


def _info(benchmark, name, impl, size, dtype, n_threads):
    """What the report groups by (kernels have no GEMM floor)."""
    benchmark.extra_info.update(kind="kernel", name=f"{name} {impl}",
                                size="x".join(map(str, size)), dtype=np.dtype(dtype).name,
                                threads=n_threads)


def relu_residual_numpy(P, A):
    np.maximum(P, 0, out=P)
    np.subtract(A, P, out=P)
    return float(np.vdot(P, P))


@pytest.mark.parametrize("size", [pytest.param((784, 8000), id="784x8000"),
                                  pytest.param((784, 60000), id="784x60000",
                                               marks=pytest.mark.large)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["numba-fused", "numpy-3-passes"])
def test_relu_residual(benchmark, n_threads, impl, dtype, size):
    rng = np.random.default_rng(0)
    A = rng.random(size).astype(dtype)
    P0 = rng.standard_normal(size).astype(dtype)
    fn = K.relu_residual_ if impl == "numba-fused" else relu_residual_numpy
    fn(P0.copy(), A)
    benchmark.pedantic(fn, setup=lambda: ((P0.copy(), A), {}), rounds=_rounds(fn, P0.copy(), A),
                       warmup_rounds=1)
    _info(benchmark, "relu_residual", impl, size, dtype, n_threads)


def mu_semi_numpy(X, C, DP, DM, eps):
    Cp = (np.abs(C) + C) / 2
    Cm = (np.abs(C) - C) / 2
    X *= np.sqrt((Cp + DM) / (Cm + DP + eps))


@pytest.mark.parametrize("size", [pytest.param((8000, 50), id="8000x50"),
                                  pytest.param((60000, 50), id="60000x50",
                                               marks=pytest.mark.large)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["numba-fused", "numpy"])
def test_mu_semi_update(benchmark, n_threads, impl, dtype, size):
    rng = np.random.default_rng(0)
    X0 = rng.random(size).astype(dtype)
    C = rng.standard_normal(size).astype(dtype)
    DP, DM = rng.random(size).astype(dtype), rng.random(size).astype(dtype)
    eps = float(np.finfo(dtype).eps)
    fn = K.mu_semi_update_ if impl == "numba-fused" else mu_semi_numpy
    fn(X0.copy(), C, DP, DM, eps)
    benchmark.pedantic(fn, setup=lambda: ((X0.copy(), C, DP, DM, eps), {}),
                       rounds=_rounds(fn, X0.copy(), C, DP, DM, eps), warmup_rounds=1)
    _info(benchmark, "mu_semi_update", impl, size, dtype, n_threads)


def _kl_ratio_python_model(body):
    """The KL ratio pass as a serial build with Numba's default error model
    (Python's: a zero-divisor check on every float division), the way it
    was first built: the comparison behind ``error_model="numpy"``."""
    from numba import njit
    return njit(cache=False, fastmath={"contract"})(body)


_KL_PYTHON_MODEL = []


def kl_ratio_impl(impl):
    from fastnmf import _kl_kernels as KK
    if impl == "numba-serial-python-errors":
        if not _KL_PYTHON_MODEL:
            _KL_PYTHON_MODEL.append(_kl_ratio_python_model(KK._kl_ratio_body))
        return _KL_PYTHON_MODEL[0]
    return {"numba-serial": KK.kl_ratio_serial_, "numba-parallel": KK.kl_ratio_}[impl]


@pytest.mark.parametrize("size", [pytest.param((1797, 64), id="digits-1797x64"),
                                  pytest.param((60000, 784), id="fashion-60000x784",
                                               marks=pytest.mark.large)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_log", [False, True], ids=["ratio", "ratio+log"])
@pytest.mark.parametrize("impl", ["numba-parallel", "numba-serial", "numba-serial-python-errors"])
def test_kl_ratio(benchmark, n_threads, impl, with_log, dtype, size):
    """The KL ratio pass ``P <- A / max(P, tiny)`` (nmf(loss="kl")), with
    and without the objective's log sum: half-zero data like digits and
    Fashion-MNIST, P a model in [0.1, 1.1)."""
    rng = np.random.default_rng(0)
    A = rng.random(size).astype(dtype)
    A[A < 0.5] = 0
    P0 = (rng.random(size) + 0.1).astype(dtype)
    fn = kl_ratio_impl(impl)
    tiny = float(np.finfo(dtype).eps)
    fn(P0.copy(), A, tiny, with_log)
    benchmark.pedantic(fn, setup=lambda: ((P0.copy(), A, tiny, with_log), {}),
                       rounds=_rounds(fn, P0.copy(), A, tiny, with_log), warmup_rounds=1)
    _info(benchmark, "kl_ratio" + (" +log" if with_log else ""), impl, size, dtype, n_threads)


def scan_numpy(x):
    """The NumPy passes the validation scan replaces: finiteness, sign and
    largest magnitude (three reads of x, two temporaries)."""
    return bool(np.isfinite(x).all()), bool(x.min() < 0), float(np.abs(x).max())


@pytest.mark.parametrize("size", [pytest.param((1797, 64), id="digits-1797x64"),
                                  pytest.param((60000, 784), id="fashion-60000x784",
                                               marks=pytest.mark.large)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["numba-bits", "numpy-3-passes"])
def test_validation_scan(benchmark, n_threads, impl, dtype, size):
    """Every public solver's data check (README "Validation: one compiled read")."""
    x = np.random.default_rng(0).random(size).astype(dtype).ravel()
    fn = K.scan_values if impl == "numba-bits" else scan_numpy
    assert fn(x) == scan_numpy(x)
    benchmark.pedantic(fn, args=(x,), rounds=_rounds(fn, x), warmup_rounds=1)
    _info(benchmark, "validation_scan", impl, size, dtype, n_threads)


def _tfidf_like(m, n, density, dtype):
    import scipy.sparse as sp
    A = sp.random(m, n, density=density, format="csr", dtype=np.float64,
                  random_state=np.random.default_rng(0))
    return A.astype(dtype)


@pytest.mark.parametrize("size", [pytest.param((16000, 5000, 0.02), id="16000x5000-2%")])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["numba-gather", "scipy"])
def test_sparse_gram(benchmark, n_threads, impl, dtype, size):
    """A sparse network input's Gram matrix ``X^T X`` (dense d x d), formed
    once per fit: fastnmf's gather per output row (``SparseData.gram``) vs
    scipy's sparse product densified."""
    from fastnmf import _sparse as S
    m, n, density = size
    A = _tfidf_like(m, n, density, dtype)
    D = S.check_sparse(A, "A")
    out = np.empty((n, n), dtype)
    if impl == "numba-gather":
        def fn():
            return D.gram(out=out)
    else:
        def fn():
            return (A.T @ A).toarray()
    np.testing.assert_allclose(fn(), (A.T @ A).toarray(),
                               rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-5)
    benchmark.pedantic(fn, rounds=_rounds(fn), warmup_rounds=1)
    _info(benchmark, "sparse_gram", impl, (m, n), dtype, n_threads)


@pytest.mark.parametrize("size", [pytest.param((100, 16000, 5000, 0.02), id="100x16000@5000-2%")])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["numba-csr", "scipy"])
def test_dense_times_sparse(benchmark, n_threads, impl, dtype, size):
    """``R @ S`` for a dense R (C order) and sparse S: a network layer's
    cross product with its sparse input (``_sparse.dense_matmul_into``:
    ``(S^T R^T)^T`` by the CSR gather kernel) vs scipy's ``R @ S``."""
    from fastnmf import _sparse as S
    m, r, c, density = size
    A = _tfidf_like(r, c, density, dtype)
    D = S.check_sparse(A, "A")
    R = np.random.default_rng(1).random((m, r)).astype(dtype)
    out = np.empty((m, c), dtype)
    if impl == "numba-csr":
        def fn():
            return S.dense_matmul_into(out, R, D)
    else:
        def fn():
            return R @ A
    np.testing.assert_allclose(fn(), R @ A, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-3)
    benchmark.pedantic(fn, rounds=_rounds(fn), warmup_rounds=1)
    _info(benchmark, "dense_times_sparse", impl, (m, r, c), dtype, n_threads)


@pytest.mark.parametrize("size", [pytest.param((20000, 10000, 0.01, 20), id="20000x10000-1%-k20"),
                                  pytest.param((50000, 30000, 0.004, 50),
                                               id="50000x30000-0.4%-k50",
                                               marks=pytest.mark.large)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["numba-csr", "scipy"])
@pytest.mark.parametrize("side", ["A@X", "A.T@U"])
def test_sparse_product(benchmark, n_threads, impl, dtype, size, side):
    """The two products of a sparse nmf iteration: fastnmf's CSR kernel
    (both from CSR arrays, the transpose's its own) vs scipy's ``A @ X``
    (one thread; A.T runs as CSC)."""
    from fastnmf import _sparse as S
    m, n, density, k = size
    A = _tfidf_like(m, n, density, dtype)
    D = S.check_sparse(A, "A")
    rng = np.random.default_rng(1)
    rows = n if side == "A@X" else m
    X = rng.random((rows, k)).astype(dtype)
    out = np.empty((m if side == "A@X" else n, k), dtype)
    if impl == "numba-csr":
        op = D if side == "A@X" else D.T

        def fn():
            return S.matmul_into(out, op, X)
    else:
        op = A if side == "A@X" else A.T

        def fn():
            return op @ X
    ref = (A @ X) if side == "A@X" else (A.T @ X)
    np.testing.assert_allclose(fn(), ref, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-4)
    benchmark.pedantic(fn, rounds=_rounds(fn), warmup_rounds=1)
    _info(benchmark, f"sparse_product {side}", impl, (m, n, k), dtype, n_threads)
