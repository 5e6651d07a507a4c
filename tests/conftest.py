"""Shared fixtures and helpers for the fastnmf test suite."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fastnmf._threads as _threads_mod
from fastnmf_dnn.trainer import TrainOptions

DTYPES = (np.float32, np.float64)

#: A fully spelled-out trainer option set (the trainer's defaults when the
#: trainer tests were written). Option sets in the tests derive from it, not
#: from TrainOptions(), so that tuning the defaults does not silently change
#: what a test checks.
DAMPED = TrainOptions(bias=True, alpha=1e-4, inner_iter=1, omega=1.0, z_iter=2,
                      z_solver="hals", z_prox=1.0, l1=0.0, refresh_targets=True,
                      batch_size=None, weight_prox=1.0, margin_targets=False,
                      refit_output=False, ridge=0.0, rel_ridge=0.0, width_ridge=0.0,
                      extrapolate=1.0, input_ridge=0.0, input_damping=0.0,
                      bottom_up=False, inactive_step=1.0)
ORDERS = ("C", "F")

# Relative tolerances for comparisons against the float64 references.
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def rtol(dtype) -> float:
    return RTOL[np.dtype(dtype)]


def assert_close(actual, expected, dtype, *, rtol_=None, scale=None, err_msg=""):
    """Entry-wise closeness relative to the size of ``expected``.

    ``|actual - expected| <= rtol * (|expected| + scale)`` where ``scale``
    defaults to the max-abs of ``expected`` (so entries that are ~0 after a
    clip are judged against the matrix's scale, not against 0).
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    r = rtol(dtype) if rtol_ is None else rtol_
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=r, atol=r * max(scale, 1e-30),
                               err_msg=err_msg)


def as_order(A, order):
    return np.asfortranarray(A) if order == "F" else np.ascontiguousarray(A)


def assert_non_increasing(errors, dtype, C=50.0):
    """errors[i+1] <= errors[i] up to the rounding of how errors are formed.

    The solvers form ``err^2 = ||A||^2 - 2<.,.> + <.,.>`` (relative to
    ``||A||^2``) in working precision, so ``err`` carries an absolute noise
    of about ``C eps / (2 err)``, capped at ``sqrt(C eps)`` as err -> 0.
    """
    e = np.asarray(errors, dtype=np.float64)
    eps = float(np.finfo(dtype).eps)
    floor = np.sqrt(C * eps)
    slack = C * eps / np.maximum(e[1:], floor)
    bad = np.diff(e) > slack
    assert not bad.any(), f"objective increased at steps {np.flatnonzero(bad) + 1}: {e}"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _thread_snapshot():
    return (
        _threads_mod._state["n"],
        numba.get_num_threads(),
        {d["filepath"]: d["num_threads"] for d in threadpool_info()},
    )


@pytest.fixture
def restore_threads():
    """Undo any global ``fastnmf.set_num_threads`` a test makes.

    ``set_num_threads`` is process-wide by design; this puts the module's
    state, Numba's count and every threadpoolctl pool back as they were.
    """
    before = _threads_mod._state.copy()
    numba_before = numba.get_num_threads()
    yield
    limiter = _threads_mod._state["limiter"]
    if limiter is not None and limiter is not before["limiter"]:
        limiter.restore_original_limits()
    _threads_mod._state.update(before)
    numba.set_num_threads(numba_before)


@pytest.fixture(autouse=True)
def _no_thread_leak(request):
    """Every test must leave the thread configuration as it found it."""
    before = _thread_snapshot()
    yield
    after = _thread_snapshot()
    # Libraries loaded lazily during the test (e.g. scipy's BLAS) only
    # appear in ``after``; compare the pools that existed before.
    common = before[2].keys() & after[2].keys()
    assert (after[:2], {f: after[2][f] for f in common}) == \
        (before[:2], {f: before[2][f] for f in common}), \
        f"thread configuration leaked: {before} -> {after}"


def assert_nothing_saved_after(stdout: str, marker: str) -> None:
    """For a subprocess run with ``NUMBA_DEBUG_CACHE=1`` and an empty
    ``NUMBA_CACHE_DIR``: Numba saved kernels to the cache before the first
    output line starting with ``marker`` (else the check would be vacuous)
    and none after it, i.e. the warm-up compiled everything the timed part
    ran."""
    lines = stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(marker))
    saved_before = [ln for ln in lines[:start] if "data saved" in ln]
    saved_after = [ln for ln in lines[start:] if "data saved" in ln]
    assert saved_before, "NUMBA_DEBUG_CACHE printed nothing: the check would be vacuous"
    assert saved_after == [], saved_after
