"""Degenerate but valid data: every solver, both dtypes, never NaN or Inf."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import _reference as ref
from conftest import DTYPES

import fastnmf


def _data(case, dtype):
    rng = np.random.default_rng(7)
    if case == "zero_rows":
        A = rng.uniform(0, 1, (9, 7))
        A[[0, 4, 8]] = 0
    elif case == "zero_cols":
        A = rng.uniform(0, 1, (9, 7))
        A[:, [1, 6]] = 0
    elif case == "zero_rows_and_cols":
        A = rng.uniform(0, 1, (70, 7))  # > 64 rows: two tiles of the sweep
        A[::3] = 0
        A[:, 2] = 0
    elif case == "all_zero":
        A = np.zeros((8, 6))
    elif case == "constant":
        A = np.full((8, 6), 3.0)
    elif case == "single_row":
        A = rng.uniform(0, 1, (1, 9))
    elif case == "single_col":
        A = rng.uniform(0, 1, (9, 1))
    elif case == "one_by_one":
        A = np.array([[2.0]])
    elif case == "rank_one":
        A = np.outer(rng.uniform(0, 1, 8), rng.uniform(0, 1, 6))
    elif case == "sparse_pattern":  # mostly zeros, a few isolated entries
        A = np.zeros((10, 8))
        A[2, 3], A[7, 1], A[9, 7] = 1.0, 5.0, 0.5
    else:
        raise AssertionError(case)
    return A.astype(dtype)


CASES = ["zero_rows", "zero_cols", "zero_rows_and_cols", "all_zero", "constant", "single_row",
         "single_col", "one_by_one", "rank_one", "sparse_pattern"]


def _factors(A, k, rng):
    m, n = A.shape
    U = rng.standard_normal((m, k)).astype(A.dtype)
    V = rng.uniform(0, 1, (k, n)).astype(A.dtype)
    return U, V


def _run_all(A, k):
    """(name, result) for every solver on A with rank k."""
    rng = np.random.default_rng(0)
    U, V = _factors(A, k, rng)
    Vb = V.copy()
    Vb[-1] = 1.0
    kw = dict(max_iter=6, tol=0, random_state=0)
    out = []
    for init in ("nndsvda", "nndsvd", "random"):
        out.append((f"nmf-hals-{init}", fastnmf.nmf(A, k, init=init, **kw)))
        out.append((f"nmf-mu-{init}", fastnmf.nmf(A, k, solver="mu", init=init, **kw)))
        out.append((f"semi-hals-{init}", fastnmf.semi_nmf(A, k, init=init, **kw)))
        out.append((f"semi-mu-{init}", fastnmf.semi_nmf(A, k, solver="mu", init=init, **kw)))
        out.append((f"nonlinear-{init}", fastnmf.nonlinear_semi_nmf(A, k, init=init, **kw)))
    out.append(("relu_lstsq-U", fastnmf.relu_lstsq(A, U, V, update="U", n_iter=4)))
    out.append(("relu_lstsq-V", fastnmf.relu_lstsq(A, U, V, update="V", n_iter=4)))
    out.append(("ridge_lstsq", fastnmf.ridge_lstsq(A, V)))
    out.append(("nnls-hals", fastnmf.nnls(A, U, max_iter=6)))
    out.append(("nnls-mu", fastnmf.nnls(A, U, solver="mu", max_iter=6)))
    if k >= 2:
        out.append(("relu_lstsq-V-ones", fastnmf.relu_lstsq(A, U, Vb, update="V", n_iter=4,
                                                            fixed_ones_row=True)))
        out.append(("nnls-hals-ones", fastnmf.nnls(A, U, max_iter=6, fixed_ones_row=True)))
        out.append(("nnls-mu-ones", fastnmf.nnls(A, U, solver="mu", max_iter=6,
                                                 fixed_ones_row=True)))
    return out


def _check(A, results):
    for name, res in results:
        if isinstance(res, np.ndarray):  # ridge_lstsq returns U
            assert res.dtype == A.dtype, name
            assert np.isfinite(res).all(), name
            continue
        assert res.U.dtype == A.dtype and res.V.dtype == A.dtype, name
        assert np.isfinite(res.U).all(), f"{name}: U not finite"
        assert np.isfinite(res.V).all(), f"{name}: V not finite"
        assert np.isfinite(res.errors).all(), f"{name}: errors {res.errors}"
        assert (res.V >= 0).all(), name
        if name.startswith("nmf"):
            assert (res.U >= 0).all(), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_degenerate_data_stays_finite(case, dtype):
    A = _data(case, dtype)
    k = min(3, max(A.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow / invalid value
        results = _run_all(A, k)
    _check(A, results)
    if case == "all_zero":
        # Solvers that pick their own start fit A = 0 exactly (errors are then
        # absolute: ||A|| = 0 is replaced by 1). (relu_lstsq starts from the
        # given nonzero factors, nnls-mu lifts its zero start to a small
        # positive value, and a fixed ones row keeps the bias column's term.)
        for name, res in results:
            if isinstance(res, np.ndarray):
                np.testing.assert_array_equal(res, 0.0, err_msg=name)
            elif name.startswith(("nmf", "semi", "nonlinear")) or name == "nnls-hals":
                np.testing.assert_array_equal(res.errors[-1], 0.0, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k", [((4, 7), 6), ((7, 3), 5), ((3, 3), 8), ((2, 70), 4)])
def test_rank_larger_than_min_dim(shape, k, dtype):
    rng = np.random.default_rng(1)
    A = rng.uniform(0, 1, shape).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        results = _run_all(A, k)
    _check(A, results)
    for name, res in results:
        if name.startswith(("nmf-hals", "semi-hals")):
            # An over-complete rank can fit exactly; the fit must not get worse.
            assert res.errors[-1] <= res.errors[1] * (1 + 1e-3) + 1e-3, (name, res.errors)


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_matrix_is_fit_by_rank_one(dtype):
    A = np.full((8, 6), 3.0, dtype=dtype)
    for solver in ("hals", "mu"):
        res = fastnmf.nmf(A, 1, solver=solver, max_iter=50, tol=0)
        assert res.error < 1e-3
        np.testing.assert_allclose(res.U @ res.V, A, rtol=1e-2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_rows_get_zero_factor_rows(dtype):
    A = _data("zero_rows", dtype)
    res = fastnmf.nmf(A, 3, max_iter=20, tol=0, random_state=0)
    np.testing.assert_array_equal(res.U[[0, 4, 8]], 0)  # HALS: exact zeros


@pytest.mark.parametrize("dtype", DTYPES)
def test_dead_relu_rows_relu_lstsq(dtype):
    """Rows of U V negative everywhere: relu kills them, the residual there is A."""
    rng = np.random.default_rng(3)
    m, n, k = 12, 9, 3
    A = rng.uniform(0, 1, (m, n)).astype(dtype)
    U = rng.uniform(0.1, 1, (m, k)).astype(dtype)
    V = rng.uniform(0.1, 1, (k, n)).astype(dtype)
    U[:4] = -U[:4]                          # rows 0..3 dead: U V < 0 there
    assert (U[:4] @ V < 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rU = fastnmf.relu_lstsq(A, U, V, update="U", n_iter=5)
        rV = fastnmf.relu_lstsq(A, U, V, update="V", n_iter=5)
    for res in (rU, rV):
        assert np.isfinite(res.U).all() and np.isfinite(res.V).all()
        assert np.isfinite(res.errors).all()
    # One U-step from the dead point equals the NumPy fixed-point step.
    r1 = fastnmf.relu_lstsq(A, U, V, update="U", n_iter=1)
    exp = ref.relu_step_U(A, U, V, 0.0, 1.0)
    np.testing.assert_allclose(r1.U, exp, rtol=1e-3 if dtype == np.float32 else 1e-9,
                               atol=1e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_dead_relu_and_dead_units(dtype):
    """U V < 0 everywhere (every unit dead), and a U column that is all zero."""
    rng = np.random.default_rng(4)
    m, n, k = 10, 8, 3
    A = rng.uniform(0, 1, (m, n)).astype(dtype)
    U = -rng.uniform(0.1, 1, (m, k)).astype(dtype)
    V = rng.uniform(0.1, 1, (k, n)).astype(dtype)
    Uz = rng.standard_normal((m, k)).astype(dtype)
    Uz[:, 1] = 0                            # a dead hidden unit: zero Gram diagonal
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        results = [
            fastnmf.relu_lstsq(A, U, V, update="U", n_iter=3),
            fastnmf.relu_lstsq(A, U, V, update="V", n_iter=3),
            fastnmf.relu_lstsq(A, Uz, V, update="V", n_iter=3),
            fastnmf.nonlinear_semi_nmf(A, k, init=(U, V), max_iter=3, tol=0),
            fastnmf.nonlinear_semi_nmf(A, k, init=(Uz, V), max_iter=3, tol=0),
            fastnmf.nnls(A, Uz, max_iter=5),
        ]
    for res in results:
        assert np.isfinite(res.U).all() and np.isfinite(res.V).all()
        assert np.isfinite(res.errors).all()
        assert (res.V >= 0).all()
    # All units dead for the V-step: relu'(UV) = 0 is not used by the
    # fixed-point step, so V moves by (U^T U)^-1 U^T A; it stays >= 0 and finite.
    exp = ref.relu_step_V(A, U, V, 0.0, 1.0)
    r1 = fastnmf.relu_lstsq(A, U, V, update="V", n_iter=1)
    np.testing.assert_allclose(r1.V, exp, rtol=1e-3 if dtype == np.float32 else 1e-9,
                               atol=1e-3 if dtype == np.float32 else 1e-9)
