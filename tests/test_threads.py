"""The thread knob (threads / set_num_threads), determinism, dtype preservation."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fastnmf
import fastnmf._threads as T


def _pool_limits():
    return {d["filepath"]: d["num_threads"] for d in threadpool_info()}


def _core_pools():
    """numpy's BLAS and the OpenMP runtime(s): the pools fastnmf's kernels use.

    (A BLAS that another package loads after fastnmf first limited threads is
    only picked up by the next ``set_num_threads``: documented, not tested.)
    """
    import os
    np_dir = os.path.dirname(os.path.dirname(np.__file__))
    return [d["filepath"] for d in threadpool_info()
            if d["user_api"] == "openmp"
            or (d["user_api"] == "blas" and d["filepath"].startswith(np_dir)
                and "numpy" in d["filepath"])]


@pytest.fixture
def parallel_even_when_small(monkeypatch):
    """Newer fastnmf runs tiny problems on one thread (``SMALL_WORK``); turn
    that off so a 2-thread run really splits the work."""
    monkeypatch.setattr(T, "SMALL_WORK", 0.0, raising=False)


# --------------------------------------------------------------------------
# threads() / set_num_threads()
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2])
def test_threads_sets_and_restores_every_pool(n):
    before_pools = _pool_limits()
    before_numba = numba.get_num_threads()
    before_n = fastnmf.get_num_threads()
    with fastnmf.threads(n) as got:
        assert got == n
        assert fastnmf.get_num_threads() == n
        assert numba.get_num_threads() == n
        inside = _pool_limits()
        core = _core_pools()
        assert any("numpy" in p for p in core) and len(core) >= 2
        for path in core:
            assert inside[path] == n, path
    assert fastnmf.get_num_threads() == before_n
    assert numba.get_num_threads() == before_numba
    after = _pool_limits()
    assert {p: after[p] for p in before_pools} == before_pools


def test_threads_restores_after_exception():
    before_pools = _pool_limits()
    before_numba = numba.get_num_threads()
    before_n = fastnmf.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        with fastnmf.threads(1):
            assert numba.get_num_threads() == 1
            raise RuntimeError("boom")
    assert fastnmf.get_num_threads() == before_n
    assert numba.get_num_threads() == before_numba
    after = _pool_limits()
    assert {p: after[p] for p in before_pools} == before_pools


def test_threads_restores_after_solver_error():
    before = (fastnmf.get_num_threads(), numba.get_num_threads(), _pool_limits())
    with pytest.raises(ValueError, match="rank"):
        with fastnmf.threads(1):
            fastnmf.nmf(np.ones((4, 4)), 0)
    after = (fastnmf.get_num_threads(), numba.get_num_threads(), _pool_limits())
    assert after[:2] == before[:2]
    assert {p: after[2][p] for p in before[2]} == before[2]


def test_nested_threads():
    with fastnmf.threads(2):
        with fastnmf.threads(1):
            assert fastnmf.get_num_threads() == 1 and numba.get_num_threads() == 1
            assert {_pool_limits()[p] for p in _core_pools()} == {1}
        assert fastnmf.get_num_threads() == 2 and numba.get_num_threads() == 2
        assert {_pool_limits()[p] for p in _core_pools()} == {2}


@pytest.mark.parametrize("bad", ["2", 2.0, 1.5, None, True, False, [2]])
def test_thread_count_type_is_validated(bad, restore_threads):
    with pytest.raises(TypeError, match="n_threads must be an integer"):
        fastnmf.set_num_threads(bad)
    with pytest.raises(TypeError, match="n_threads must be an integer"):
        with fastnmf.threads(bad):
            pass


@pytest.mark.parametrize("bad", [0, -1, -100])
def test_thread_count_value_is_validated(bad, restore_threads):
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        fastnmf.set_num_threads(bad)
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        with fastnmf.threads(bad):
            pass


def test_set_num_threads_is_global(restore_threads):
    fastnmf.set_num_threads(np.int64(1))  # numpy integers are accepted
    assert fastnmf.get_num_threads() == 1
    assert numba.get_num_threads() == 1
    assert set(_pool_limits().values()) == {1}  # set_num_threads rescans: every pool
    with fastnmf.threads(2):
        assert numba.get_num_threads() == 2
        assert {_pool_limits()[p] for p in _core_pools()} == {2}
    assert fastnmf.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert set(_pool_limits().values()) == {1}
    fastnmf.set_num_threads(2)  # a second call replaces the first limit
    assert fastnmf.get_num_threads() == 2
    assert set(_pool_limits().values()) == {2}


def test_set_num_threads_caps_at_numba_maximum(restore_threads):
    fastnmf.set_num_threads(10_000)
    assert fastnmf.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_default_thread_count():
    assert 1 <= fastnmf.get_num_threads() <= numba.config.NUMBA_NUM_THREADS


# --------------------------------------------------------------------------
# Small problems: which pools for_work / sized_by limit
# --------------------------------------------------------------------------
def _numpy_blas_limit():
    import os
    np_dir = os.path.dirname(os.path.dirname(np.__file__))
    return [d["num_threads"] for d in threadpool_info()
            if d["user_api"] == "blas" and d["filepath"].startswith(np_dir)][0]


needs_two = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                               reason="needs 2 threads (NUMBA_NUM_THREADS >= 2)")


@needs_two
@pytest.mark.parametrize("work, kernels, blas", [
    (0.5 * T.BLAS_SMALL_WORK, 1, 1),                       # tiny: all on one thread
    ((T.BLAS_SMALL_WORK + T.SMALL_WORK) / 2, 1, 2),        # BLAS keeps its threads
    (2 * T.SMALL_WORK, 2, 2),                              # large: nothing changes
])
def test_for_work_limits_kernels_and_blas_by_size(work, kernels, blas):
    with fastnmf.threads(2):
        with T.for_work(work):
            assert fastnmf.get_num_threads() == kernels
            assert numba.get_num_threads() == kernels
            assert _numpy_blas_limit() == blas
        assert fastnmf.get_num_threads() == 2
        assert numba.get_num_threads() == 2
        assert _numpy_blas_limit() == 2


@needs_two
def test_for_work_restores_kernel_threads_after_error():
    with fastnmf.threads(2):
        with pytest.raises(RuntimeError):
            with T.for_work((T.BLAS_SMALL_WORK + T.SMALL_WORK) / 2):
                raise RuntimeError
        assert fastnmf.get_num_threads() == 2 and numba.get_num_threads() == 2


@needs_two
def test_sized_by_counts_the_gram_sized_product():
    """nnls(A (2, 1000), U (2, 40)): the cross product is 2 x 1000 x 40 =
    8e4 multiply-adds, but each MU update is 1000 x 40 x 40 = 1.6e6: the
    estimate is the larger, so BLAS keeps its threads there."""
    seen = {}

    @T.sized_by(T.columns_of_second)
    def probe(A, U):
        seen["kernels"], seen["blas"] = fastnmf.get_num_threads(), _numpy_blas_limit()

    lo, hi = T.BLAS_SMALL_WORK, T.SMALL_WORK
    assert 2 * 1000 * 40 < lo < 1000 * 40 * 40 < hi
    with fastnmf.threads(2):
        probe(np.zeros((2, 1000)), np.zeros((2, 40)))
        assert seen == {"kernels": 1, "blas": 2}
        probe(np.zeros((10, 143)), np.zeros((10, 10)))
        assert seen == {"kernels": 1, "blas": 1}
        probe(np.zeros(5), np.zeros((10, 10)))       # bad input: no limit, validation rejects
        assert seen == {"kernels": 2, "blas": 2}


@needs_two
def test_sized_by_sizes_sparse_data_by_its_nonzeros():
    """Sparse data: the kernels use every thread from nnz k =
    SPARSE_SMALL_WORK on, whatever the dense GEMM m n k would be."""
    import scipy.sparse as sp
    seen = {}

    @T.sized_by(T.rank_arg)
    def probe(A, rank):
        seen["kernels"] = fastnmf.get_num_threads()

    k = 10
    with fastnmf.threads(2):
        few = sp.random(20000, 10000, density=5e-7, format="csr", random_state=0)
        assert 20000 * 10000 * k > T.SMALL_WORK and few.nnz * k < T.SPARSE_SMALL_WORK
        assert 20000 * k * k < T.SMALL_WORK
        probe(few, k)
        assert seen == {"kernels": 1}
        many = sp.random(2000, 1000, density=0.02, format="csr", random_state=0)
        assert 2000 * 1000 * k < T.SMALL_WORK < T.SMALL_WORK * many.nnz * k / T.SPARSE_SMALL_WORK
        probe(many, k)
        assert seen == {"kernels": 2}


# --------------------------------------------------------------------------
# Same answer for 1 and 2 threads; bitwise determinism for a fixed count
# --------------------------------------------------------------------------
def _runs(dtype):
    rng = np.random.default_rng(5)
    m, n, k = 150, 130, 5          # > 64 rows on both sides: several sweep tiles
    A = rng.uniform(0, 1, (m, n)).astype(dtype)
    Ac = (A - A.mean()).astype(dtype)
    U = rng.standard_normal((m, k)).astype(dtype)
    V = rng.uniform(0, 1, (k, n)).astype(dtype)
    Vb = V.copy()
    Vb[-1] = 1
    kw = dict(max_iter=8, tol=0)
    return {
        "nmf-hals": lambda rs: fastnmf.nmf(A, k, random_state=rs, **kw),
        "nmf-mu": lambda rs: fastnmf.nmf(A, k, solver="mu", random_state=rs, **kw),
        "nmf-random": lambda rs: fastnmf.nmf(A, k, init="random", random_state=rs, **kw),
        "semi-hals": lambda rs: fastnmf.semi_nmf(Ac, k, random_state=rs, **kw),
        "semi-mu": lambda rs: fastnmf.semi_nmf(Ac, k, solver="mu", random_state=rs, **kw),
        "nonlinear": lambda rs: fastnmf.nonlinear_semi_nmf(A, k, random_state=rs, **kw),
        "relu-U": lambda rs: fastnmf.relu_lstsq(A, U, V, update="U", n_iter=5),
        "relu-V": lambda rs: fastnmf.relu_lstsq(A, U, Vb, update="V", n_iter=5,
                                                fixed_ones_row=True),
        "nnls-hals": lambda rs: fastnmf.nnls(Ac, U, max_iter=20, tol=0),
        "nnls-mu": lambda rs: fastnmf.nnls(Ac, U, solver="mu", max_iter=20, tol=0),
        "ridge": lambda rs: fastnmf.ridge_lstsq(Ac, V, alpha=0.1),
    }


def _arrays(res):
    if isinstance(res, np.ndarray):
        return [res]
    return [res.U, res.V, res.errors]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_and_two_threads_agree(dtype, parallel_even_when_small):
    runs = _runs(dtype)
    tol = dict(rtol=5e-4, atol=5e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
    for name, run in runs.items():
        with fastnmf.threads(1):
            r1 = run(0)
        with fastnmf.threads(2):
            r2 = run(0)
        for a1, a2 in zip(_arrays(r1), _arrays(r2)):
            np.testing.assert_allclose(a2, a1, err_msg=name, **tol)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_deterministic_for_fixed_seed_and_thread_count(n_threads, parallel_even_when_small):
    for name, run in _runs(np.float32).items():
        with fastnmf.threads(n_threads):
            r1 = run(42)
            r2 = run(42)
        for a1, a2 in zip(_arrays(r1), _arrays(r2)):
            np.testing.assert_array_equal(a1, a2, err_msg=name)


def test_random_state_matters():
    A = np.random.default_rng(0).uniform(0, 1, (20, 15))
    r1 = fastnmf.nmf(A, 3, init="random", random_state=1, max_iter=3)
    r2 = fastnmf.nmf(A, 3, init="random", random_state=2, max_iter=3)
    assert not np.array_equal(r1.U, r2.U)
    g = np.random.default_rng(9)
    r3 = fastnmf.nmf(A, 3, init="random", random_state=np.random.default_rng(9), max_iter=3)
    r4 = fastnmf.nmf(A, 3, init="random", random_state=g, max_iter=3)
    np.testing.assert_array_equal(r3.U, r4.U)


# --------------------------------------------------------------------------
# dtype in -> dtype out
# --------------------------------------------------------------------------
def _all_solvers(A):
    m, n = A.shape
    k = 2
    rng = np.random.default_rng(0)
    U = rng.uniform(0, 1, (m, k))
    V = rng.uniform(0, 1, (k, n))
    return {
        "nmf": lambda **kw: fastnmf.nmf(A, k, max_iter=2, **kw),
        "nmf-mu": lambda **kw: fastnmf.nmf(A, k, solver="mu", max_iter=2, **kw),
        "semi_nmf": lambda **kw: fastnmf.semi_nmf(A, k, max_iter=2, **kw),
        "semi_nmf-mu": lambda **kw: fastnmf.semi_nmf(A, k, solver="mu", max_iter=2, **kw),
        "nonlinear": lambda **kw: fastnmf.nonlinear_semi_nmf(A, k, max_iter=2, **kw),
        "relu-U": lambda **kw: fastnmf.relu_lstsq(A, U, V, n_iter=2, **kw),
        "relu-V": lambda **kw: fastnmf.relu_lstsq(A, U, V, update="V", n_iter=2, **kw),
        "nnls": lambda **kw: fastnmf.nnls(A, U, max_iter=2, **kw),
        "nnls-mu": lambda **kw: fastnmf.nnls(A, U, solver="mu", max_iter=2, **kw),
        "ridge": lambda **kw: fastnmf.ridge_lstsq(A, V, **kw),
    }


@pytest.mark.parametrize("in_dtype,out_dtype", [
    (np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64),
    (np.int32, np.float64), (np.uint8, np.float64), (np.bool_, np.float64),
    (np.float16, np.float32),
])
@pytest.mark.parametrize("order", ["C", "F"])
def test_dtype_in_dtype_out(in_dtype, out_dtype, order):
    A = (np.arange(42).reshape(7, 6) % 5).astype(in_dtype)
    A = np.asfortranarray(A) if order == "F" else A
    for name, run in _all_solvers(A).items():
        res = run()
        for arr in _arrays(res)[:2]:
            assert arr.dtype == out_dtype, (name, arr.dtype)
            assert np.isfinite(arr).all(), name
        if not isinstance(res, np.ndarray):
            assert res.errors.dtype == np.float64


@pytest.mark.parametrize("forced", [np.float32, np.float64, "float32"])
def test_dtype_argument_forces_working_dtype(forced):
    A = np.random.default_rng(0).uniform(0, 1, (7, 6))
    for name, run in _all_solvers(A).items():
        res = run(dtype=forced)
        for arr in _arrays(res)[:2]:
            assert arr.dtype == np.dtype(forced), name


def test_list_input():
    res = fastnmf.nmf([[1, 2, 3], [4, 5, 6]], 1, max_iter=3)
    assert res.U.dtype == np.float64 and res.U.shape == (2, 1)


def test_non_contiguous_input_is_accepted(rng):
    A = rng.uniform(0, 1, (20, 30))[::2, ::3]
    assert not (A.flags.c_contiguous or A.flags.f_contiguous)
    res = fastnmf.nmf(A, 2, max_iter=5, tol=0, random_state=0)
    ref = fastnmf.nmf(np.ascontiguousarray(A), 2, max_iter=5, tol=0, random_state=0)
    np.testing.assert_allclose(res.U, ref.U, rtol=1e-12)
    np.testing.assert_allclose(res.errors, ref.errors, rtol=1e-12)


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_c_and_f_order_give_same_result(rng, solver):
    A = rng.uniform(0, 1, (40, 30))
    rc = fastnmf.nmf(A, 3, solver=solver, max_iter=5, tol=0, random_state=0)
    rf = fastnmf.nmf(np.asfortranarray(A), 3, solver=solver, max_iter=5, tol=0, random_state=0)
    np.testing.assert_allclose(rf.U, rc.U, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rf.V, rc.V, rtol=1e-9, atol=1e-12)
    rn = fastnmf.nonlinear_semi_nmf(A, 3, max_iter=5, tol=0, random_state=0)
    rnf = fastnmf.nonlinear_semi_nmf(np.asfortranarray(A), 3, max_iter=5, tol=0, random_state=0)
    np.testing.assert_allclose(rnf.U, rn.U, rtol=1e-9, atol=1e-12)


def test_blas_kernels_names_the_kernel_set_and_a_forcing_variable(monkeypatch):
    from threadpoolctl import threadpool_info
    from fastnmf._threads import blas_kernels
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    plain = blas_kernels()
    assert isinstance(plain, str) and plain and "forced" not in plain
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    forced = blas_kernels()
    numpy_blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if numpy_blas and all(i.get("internal_api") == "openblas" for i in numpy_blas):
        assert forced.endswith("(forced by OPENBLAS_CORETYPE=Haswell)")
        assert "kernels" in forced


def test_numba_layer_leaves_openmp_nesting_off(restore_threads):
    """Numba's ``omp`` layer turns nested parallelism on in the libgomp that
    fastnmf's kernels and later-loaded libraries (PyTorch) share; once the
    layer has started (here by the solves), fastnmf puts the limit back."""
    assert numba.threading_layer() in ("omp", "tbb", "workqueue")
    rng = np.random.default_rng(0)
    A = rng.random((3000, 700), dtype=np.float32)
    with fastnmf.threads(2):
        fastnmf.nmf(A, 20, max_iter=2)
        fastnmf.nonlinear_semi_nmf(A, 20, max_iter=2)
    fastnmf.set_num_threads(2)
    if numba.threading_layer() != "omp":
        pytest.skip("Numba runs another threading layer than omp here")
    import ctypes
    import os
    # the runtime Numba's layer and the HALS extension link by soname (other
    # libraries, e.g. scikit-learn's private libgomp, have their own)
    gomp = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD)
    assert gomp.omp_get_max_active_levels() == 1


def test_import_does_not_start_numba_layer_so_fork_stays_safe(tmp_path):
    """``import fastnmf`` must not start Numba's threading layer: Numba
    terminates a forked child whose parent had started its OpenMP layer.
    A child forked right after the import runs a parallel solve."""
    import subprocess
    import sys
    code = ("import fastnmf, numba, multiprocessing as mp\n"
            "try:\n"
            "    numba.threading_layer(); print('started'); raise SystemExit\n"
            "except ValueError:\n"
            "    pass\n"
            "def work():\n"
            "    import numpy as np\n"
            "    with fastnmf.threads(2):\n"
            "        fastnmf.nonlinear_semi_nmf(np.random.rand(3000, 700), 20, max_iter=2)\n"
            "p = mp.get_context('fork').Process(target=work); p.start(); p.join()\n"
            "print(p.exitcode)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0", (proc.stdout, proc.stderr)


@pytest.mark.parametrize("env, expected", [({}, 1), ({"OMP_MAX_ACTIVE_LEVELS": "3"}, 3)])
def test_numba_layer_nesting_in_a_fresh_process(env, expected, tmp_path):
    """In a fresh interpreter: after ``import fastnmf`` and a parallel Numba
    kernel the shared libgomp allows ``expected`` active levels; a user's
    own ``OMP_MAX_ACTIVE_LEVELS`` is left alone."""
    import os
    import subprocess
    import sys
    code = ("import fastnmf, numba, numpy as np\n"
            "from fastnmf import _threads as T\n"
            "with fastnmf.threads(2):\n"
            "    fastnmf.nonlinear_semi_nmf(np.random.rand(3000, 700), 20, max_iter=2)\n"
            "if numba.threading_layer() != 'omp': print('skip'); raise SystemExit\n"
            "import ctypes, os\n"
            "print(ctypes.CDLL('libgomp.so.1', mode=os.RTLD_NOLOAD).omp_get_max_active_levels())\n")
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NESTED", "OMP_MAX_ACTIVE_LEVELS")}
    # cwd outside the checkout: the installed package, not the source tree
    proc = subprocess.run([sys.executable, "-c", code], env={**base, **env}, cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    if out == "skip":
        pytest.skip("Numba runs another threading layer than omp here")
    assert int(out) == expected
