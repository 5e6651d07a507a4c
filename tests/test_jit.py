"""Numba builds of one loop body are compiled and cached as themselves."""
import os
import subprocess
import sys
import textwrap

import numpy as np
from numba import prange

from fastnmf._jit import njit_build


def _sum_body(X):
    s = 0.0
    for i in prange(X.shape[0]):
        s += X[i]
    return s


def test_builds_share_the_result():
    par = njit_build(_sum_body, "_test_sum_parallel", parallel=True)
    ser = njit_build(_sum_body, "_test_sum_serial")
    X = np.arange(1000.0)
    assert par(X) == ser(X) == X.sum()
    assert par.py_func.__qualname__ == "_test_sum_parallel"
    assert ser.py_func.__qualname__ == "_test_sum_serial"
    assert par.py_func.__code__ is ser.py_func.__code__ is _sum_body.__code__


_PROBE = textwrap.dedent("""
    import numpy as np
    from fastnmf import _kernels as K
    from fastnmf_dnn import _passes as P
    X = np.ones((8, 3), np.float32)
    Y = np.ones((8, 5), np.float32)
    pairs = [(K._dot64_parallel, K._dot64_serial, (X, X)),
             (P.relu_, P.relu_serial_, (X,)),
             (P.copy_columns_, P.copy_columns_serial_, (X, Y)),
             (P.relu_copy_, P.relu_copy_serial_, (Y, X)),
             (P.margin_targets_, P.margin_targets_serial_, (X, X, X))]
    for par, ser, args in pairs:
        par(*args)
        ser(*args)
        for d in (par, ser):
            print(d.py_func.__qualname__, sum(d.stats.cache_hits.values()),
                  sum(d.stats.cache_misses.values()))
""")


def _probe(cache_dir):
    # Run outside the checkout: with ``-c`` the working directory comes first
    # on sys.path, and a checkout's fastnmf has no compiled extension (CI
    # tests the installed package).
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir / "numba"))
    proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=cache_dir,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return {name: (int(h), int(m))
            for name, h, m in (line.split() for line in proc.stdout.splitlines())}


def test_parallel_and_serial_builds_do_not_load_each_others_code(tmp_path):
    """Numba files cached code by function name and bytecode, not by its
    compile options: with one function behind both builds, the serial build
    loaded the parallel build's code from the cache just written (a cache
    hit in a cold cache), and every later process ran whichever build was
    compiled first under both names. Each build must compile itself in a
    cold cache and load itself in a warm one."""
    cold = _probe(tmp_path)
    assert len(cold) == 10
    assert all(hits == 0 and misses == 1 for hits, misses in cold.values()), cold
    warm = _probe(tmp_path)
    assert all(hits == 1 and misses == 0 for hits, misses in warm.values()), warm
