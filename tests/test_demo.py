"""The ``python -m fastnmf`` demo, the bundled dataset and the result type."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
import sys

import numpy as np
import pytest

import fastnmf
from fastnmf.datasets import load_digits
from conftest import assert_nothing_saved_after

ROW = re.compile(r"^(?P<name>\S.*?)\s+(?P<iters>\d+)\s+(?P<err>\d+\.\d+)\s+(?P<sec>\d+\.\d+)\s*$")
SOLVER_ROWS = ["nmf hals", "nmf mu", "semi_nmf hals (centred X)", "nonlinear_semi_nmf",
               "nmf hals (scipy CSR input)", "nmf mu, KL loss *"]


# Run ``-m fastnmf`` from the directory holding the package this process
# imported: from a checkout, '-m' would otherwise import the source tree,
# which has no compiled extension under a regular (non-editable) install.
PKG_PARENT = str(Path(fastnmf.__file__).resolve().parent.parent)


def _run_demo(*args):
    proc = subprocess.run([sys.executable, "-m", "fastnmf", *args], capture_output=True,
                          text=True, timeout=300, cwd=PKG_PARENT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _table(stdout):
    rows = {}
    for line in stdout.splitlines():
        mt = ROW.match(line)
        if mt:
            rows[mt["name"].strip()] = (int(mt["iters"]), float(mt["err"]), float(mt["sec"]))
    return rows


def test_demo_runs_and_prints_a_table():
    out = _run_demo("--max-iter", "5")
    assert "digits (1797, 64) float32" in out
    header = [ln for ln in out.splitlines() if ln.startswith("solver")]
    assert header and "iters" in header[0] and "rel. error" in header[0]
    rows = _table(out)
    assert list(rows) == SOLVER_ROWS, out
    for name, (iters, err, _sec) in rows.items():
        assert 1 <= iters <= 5, name
        assert 0.0 < err < 1.0, name      # a rank-16 fit of digits is far from useless


def test_demo_options():
    out = _run_demo("--max-iter", "3", "--rank", "4", "--threads", "1", "--dtype", "float64")
    assert "digits (1797, 64) float64, rank 4, 1 threads" in out
    rows = _table(out)
    assert list(rows) == SOLVER_ROWS, out
    assert all(1 <= it <= 3 for it, _, _ in rows.values())


def test_demo_rejects_bad_option():
    proc = subprocess.run([sys.executable, "-m", "fastnmf", "--dtype", "int8"],
                          capture_output=True, text=True, timeout=120, cwd=PKG_PARENT)
    assert proc.returncode == 2 and "--dtype" in proc.stderr


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_load_digits(dtype):
    X, y = load_digits(dtype=dtype)
    assert X.shape == (1797, 64) and X.dtype == dtype
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16
    assert np.array_equal(X, np.round(X))               # integer pixel intensities
    assert set(np.unique(y)) == set(range(10))
    assert 150 <= np.bincount(y).min() and np.bincount(y).max() <= 200  # ~180 per class


def test_load_digits_default_dtype_and_fresh_copies():
    X1, y1 = load_digits()
    assert X1.dtype == np.float64
    X1[0, 0] = 99
    X2, _ = load_digits()
    assert X2[0, 0] != 99


def test_result_repr_and_error_property():
    A = np.random.default_rng(0).uniform(0, 1, (10, 8))
    res = fastnmf.nmf(A, 2, max_iter=3, tol=0)
    assert res.error == res.errors[-1]
    text = repr(res)
    assert text.startswith("FactorizationResult(solver='nmf-hals-extrapolated'")
    assert "U=(10, 2)" in text and "V=(2, 8)" in text and "n_iter=3" in text
    with pytest.raises(Exception):
        res.n_iter = 5  # frozen dataclass
    assert np.all(np.diff(res.times) >= 0) and res.times[0] >= 0


def test_public_api():
    expected = {"FactorizationResult", "FixedGram", "ImplicitGram", "NMF", "get_num_threads",
                "magnitude_range", "nmf", "nnls", "nonlinear_semi_nmf",
                "relu_lstsq", "ridge_lstsq", "semi_nmf", "set_num_threads", "SparseData",
                "sparse_data", "threads", "trusted_data", "Workspace"}
    assert set(fastnmf.__all__) == expected
    for name in expected:
        assert hasattr(fastnmf, name)
    assert isinstance(fastnmf.__version__, str)


def test_nothing_compiles_in_the_timed_runs(tmp_path):
    """With an empty Numba cache, the warm-up compiles every build the timed
    runs use (a 20 x 10 warm-up left the parallel builds to the first timed
    digits run: 2.6 s of compilation in its 'seconds')."""
    import os
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), NUMBA_DEBUG_CACHE="1")
    r = subprocess.run([sys.executable, "-m", "fastnmf", "--max-iter", "20"], env=env,
                       capture_output=True, text=True, timeout=600, cwd=PKG_PARENT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_nothing_saved_after(r.stdout, "one-off Numba")
