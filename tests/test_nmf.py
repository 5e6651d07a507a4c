"""fastnmf.nmf (HALS and MU) against NumPy implementations of the same updates."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _reference as ref
from conftest import DTYPES, ORDERS, as_order, assert_close, assert_non_increasing, rtol

import fastnmf


def nmf_problem(rng, m, n, k, dtype, order="C", noise=0.2):
    W = rng.uniform(0, 1, (m, k))
    H = rng.uniform(0, 1, (k, n))
    A = W @ H + noise * rng.uniform(0, 1, (m, n))
    U0 = rng.uniform(0.1, 1, (m, k))
    V0 = rng.uniform(0.1, 1, (k, n))
    return as_order(A.astype(dtype), order), U0.astype(dtype), V0.astype(dtype)


def err_rtol(dtype):
    # errors are formed as sqrt(||A||^2 - 2<V, A^T U> + <GU, GV>) from
    # working-precision products: a few float32 ulps of ||A||^2, amplified
    # by ||A||^2 / ||A - UV||^2 ~ 25 for these problems.
    return 2e-4 if np.dtype(dtype) == np.float32 else 1e-9


def check_result_layout(res, A, k):
    m, n = A.shape
    assert res.U.shape == (m, k) and res.V.shape == (k, n)
    assert res.U.dtype == A.dtype and res.V.dtype == A.dtype
    assert res.U.flags.c_contiguous
    assert res.V.T.flags.c_contiguous  # V is a view of a C-ordered V.T
    assert res.errors.dtype == np.float64
    assert res.errors.shape == (res.n_iter + 1,) and res.times.shape == (res.n_iter + 1,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("m,n,k", [(30, 20, 4), (70, 9, 3), (5, 66, 1)])
@pytest.mark.parametrize("max_iter", [1, 2])
def test_hals_matches_reference(rng, dtype, order, m, n, k, max_iter):
    A, U0, V0 = nmf_problem(rng, m, n, k, dtype, order)
    U0c, V0c = U0.copy(), V0.copy()
    res = fastnmf.nmf(A, k, solver="hals", init=(U0, V0), n_inner=1, max_iter=max_iter, tol=0,
                      extrapolate=False)
    assert res.solver == "nmf-hals"
    np.testing.assert_array_equal(U0, U0c)  # the init pair is not modified
    np.testing.assert_array_equal(V0, V0c)
    U, V = U0, V0
    errs = [ref.rel_error(A, U, V)]
    for _ in range(max_iter):
        U, V = ref.nmf_hals_iter(A, U, V)
        errs.append(ref.rel_error(A, U, V))
    check_result_layout(res, A, k)
    assert res.n_iter == max_iter and not res.converged
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_hals_several_inner_sweeps(rng, dtype, order):
    """n_inner=3, inner_tol=0: exactly three sweeps per block."""
    A, U0, V0 = nmf_problem(rng, 25, 18, 3, dtype, order)
    res = fastnmf.nmf(A, 3, init=(U0, V0), n_inner=3, inner_tol=0.0, max_iter=1, tol=0,
                      extrapolate=False)
    A64 = ref.f64(A)
    U, Vt = ref.f64(U0), ref.f64(V0).T
    for _ in range(3):
        U, _ = ref.hals_sweep(U, A64 @ Vt, Vt.T @ Vt)
    for _ in range(3):
        Vt, _ = ref.hals_sweep(Vt, A64.T @ U, U.T @ U)
    assert_close(res.U, U, dtype)
    assert_close(res.V, Vt.T, dtype)


def test_hals_inner_stopping_rule_float64(rng):
    """Default Gillis-Glineur cap and inner_tol, replayed in NumPy (float64)."""
    m, n, k = 40, 12, 3
    A, U0, V0 = nmf_problem(rng, m, n, k, np.float64)
    inner_alpha, inner_tol = 0.5, 0.1
    res = fastnmf.nmf(A, k, init=(U0, V0), max_iter=3, tol=0, inner_alpha=inner_alpha,
                      inner_tol=inner_tol, extrapolate=False)

    def block(X, C, G, cap):
        X, first = ref.hals_sweep(X, C, G)
        done = 1
        while done < cap:
            X, delta = ref.hals_sweep(X, C, G)
            done += 1
            if delta <= inner_tol * first:
                break
        return X, done

    cap_u = max(1, int(1 + inner_alpha * (1 + n / (k + 1))))
    cap_v = max(1, int(1 + inner_alpha * (1 + m / (k + 1))))
    U, Vt, sweeps = U0, V0.T, []
    for _ in range(3):
        U, d = block(U, A @ Vt, Vt.T @ Vt, cap_u)
        sweeps.append(d)
        Vt, d = block(Vt, A.T @ U, U.T @ U, cap_v)
        sweeps.append(d)
    # the rule really stopped some blocks early and let others run to the cap
    assert 1 < min(sweeps) < max(cap_u, cap_v) or min(sweeps) < max(sweeps)
    assert_close(res.U, U, np.float64)
    assert_close(res.V, Vt.T, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("max_iter", [1, 3])
def test_mu_matches_reference(rng, dtype, order, max_iter):
    m, n, k = 30, 20, 4
    A, U0, V0 = nmf_problem(rng, m, n, k, dtype, order)
    res = fastnmf.nmf(A, k, solver="mu", init=(U0, V0), max_iter=max_iter, tol=0)
    eps = float(np.finfo(dtype).eps)
    U, V = U0, V0
    errs = [ref.rel_error(A, U, V)]
    for _ in range(max_iter):
        U, V = ref.nmf_mu_iter(A, U, V, eps)
        errs.append(ref.rel_error(A, U, V))
    check_result_layout(res, A, k)
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))


def test_mu_eps_and_n_inner(rng):
    A, U0, V0 = nmf_problem(rng, 12, 10, 2, np.float64)
    eps = 0.5
    res = fastnmf.nmf(A, 2, solver="mu", init=(U0, V0), max_iter=1, tol=0, eps=eps, n_inner=2)
    A64 = ref.f64(A)
    U, Vt = ref.f64(U0), ref.f64(V0).T
    CU = A64 @ Vt
    for _ in range(2):    # the guard is relative: eps times the largest |A V^T|
        U = ref.mu_nmf(U, CU, Vt.T @ Vt, ref.mu_guard(eps, CU))
    CV = A64.T @ U
    for _ in range(2):
        Vt = ref.mu_nmf(Vt, CV, U.T @ U, ref.mu_guard(eps, CV))
    assert_close(res.U, U, np.float64)
    assert_close(res.V, Vt.T, np.float64)


# --------------------------------------------------------------------------
# Extrapolated HALS (the default for solver="hals")
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("m,n,k,max_iter", [(30, 20, 4, 1), (30, 20, 4, 12), (70, 9, 3, 8)])
def test_extrapolated_hals_matches_reference(rng, dtype, order, m, n, k, max_iter):
    A, U0, V0 = nmf_problem(rng, m, n, k, dtype, order)
    res = fastnmf.nmf(A, k, init=(U0, V0), n_inner=1, max_iter=max_iter, tol=0)
    assert res.solver == "nmf-hals-extrapolated"
    U, V, errs, restarts, beta = ref.nmf_hals_extrapolated(A, U0, V0, max_iter)
    check_result_layout(res, A, k)
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))
    assert res.info["restarts"] == restarts
    np.testing.assert_allclose(res.info["beta"], beta, rtol=1e-12)


def test_extrapolated_hals_with_restarts_matches_reference(rng):
    """A run long enough to restart several times (float64, two sweeps per block)."""
    A, U0, V0 = nmf_problem(rng, 40, 30, 6, np.float64, noise=0.5)
    res = fastnmf.nmf(A, 6, init=(U0, V0), n_inner=2, inner_tol=0.0, max_iter=40, tol=0)
    U, V, errs, restarts, beta = ref.nmf_hals_extrapolated(A, U0, V0, 40, sweeps=2)
    assert restarts >= 1
    assert res.info["restarts"] == restarts
    assert res.info["inner_sweeps"] == (80, 80)    # 2 per block, 40 iterations
    assert_close(res.U, U, np.float64)
    assert_close(res.V, V, np.float64)
    np.testing.assert_allclose(res.errors, errs, rtol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extrapolation_returns_best_point(rng, dtype):
    A, _, _ = nmf_problem(rng, 40, 30, 5, dtype)
    res = fastnmf.nmf(A, 5, max_iter=30, tol=0, random_state=0)
    assert (np.diff(res.errors) <= 0).all()       # best-so-far history
    np.testing.assert_allclose(res.error, ref.rel_error(A, res.U, res.V), rtol=err_rtol(dtype))
    assert res.error < 0.1 < res.errors[0]        # it does fit (noise level ~0.036)
    assert res.info["restarts"] >= 0 and 0 < res.info["beta"] <= 1


@pytest.mark.parametrize("extrapolate", [True, False])
def test_inner_sweep_counts_follow_the_stopping_rule(rng, extrapolate):
    """info["inner_sweeps"]: HALS sweeps run on (U, V), between one per block
    and the cap per block; a looser inner_tol never runs more."""
    A, _, _ = nmf_problem(rng, 60, 40, 5, np.float64)
    runs = {tol: fastnmf.nmf(A, 5, max_iter=10, tol=0, random_state=0, n_inner=7,
                             inner_tol=tol, extrapolate=extrapolate) for tol in (0.0, 0.5)}
    for r in runs.values():
        for s in r.info["inner_sweeps"]:
            assert 10 <= s <= 70
    assert runs[0.0].info["inner_sweeps"] == (70, 70)   # tol 0: always the cap
    assert sum(runs[0.5].info["inner_sweeps"]) < 140


def test_extrapolate_argument_validation():
    A = np.ones((5, 4))
    with pytest.raises(ValueError, match=r"extrapolate=True is only available with solver='hals'"):
        fastnmf.nmf(A, 2, solver="mu", extrapolate=True)
    for bad in ("yes", 1, 0.0):
        with pytest.raises(TypeError, match=r"^extrapolate must be True, False or None"):
            fastnmf.nmf(A, 2, extrapolate=bad)
    assert fastnmf.nmf(A, 2, solver="mu", max_iter=1).solver == "nmf-mu"
    assert fastnmf.nmf(A, 2, solver="mu", extrapolate=False, max_iter=1).solver == "nmf-mu"
    assert fastnmf.nmf(A, 2, extrapolate=np.bool_(False), max_iter=1).solver == "nmf-hals"


@pytest.mark.parametrize("solver", ["hals", "mu"])
@pytest.mark.parametrize("init", ["nndsvda", "nndsvd", "random"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_reported_errors_equal_direct_computation(rng, solver, init, dtype):
    A, _, _ = nmf_problem(rng, 40, 25, 5, dtype)
    res = fastnmf.nmf(A, 5, solver=solver, init=init, max_iter=15, tol=0, random_state=3)
    assert res.n_iter == 15
    np.testing.assert_allclose(res.error, ref.rel_error(A, res.U, res.V), rtol=err_rtol(dtype))
    assert (res.U >= 0).all() and (res.V >= 0).all()


@pytest.mark.parametrize("solver,extrapolate", [("hals", False), ("mu", False), ("hals", None)])
def test_tol_stops_early_and_sets_converged(rng, solver, extrapolate):
    """Stop when an iteration lowers the error by less than tol * current error."""
    A, _, _ = nmf_problem(rng, 30, 20, 3, np.float64, noise=0.1)
    tol = 1e-3
    res = fastnmf.nmf(A, 3, solver=solver, max_iter=500, tol=tol, random_state=0,
                      extrapolate=extrapolate)
    assert res.converged and res.n_iter < 500
    e = res.errors
    assert e[-2] - e[-1] < tol * e[-1]
    if extrapolate is False:  # plain methods: every earlier step made enough progress
        assert (e[:-2] - e[1:-1] >= tol * e[1:-1]).all()
    res0 = fastnmf.nmf(A, 3, solver=solver, max_iter=0, random_state=0, extrapolate=extrapolate)
    assert res0.n_iter == 0 and res0.errors.shape == (1,) and not res0.converged
    full = fastnmf.nmf(A, 3, solver=solver, max_iter=7, tol=0, random_state=0,
                       extrapolate=extrapolate)
    assert full.n_iter == 7 and not full.converged


def test_recovers_exact_low_rank_factorization(rng):
    A, _, _ = nmf_problem(rng, 40, 30, 3, np.float64, noise=0.0)
    res = fastnmf.nmf(A, 3, max_iter=500, tol=0, random_state=0)
    assert res.error < 1e-3
    np.testing.assert_allclose(res.U @ res.V, A, atol=1e-2 * A.max())


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 6),
       solver=st.sampled_from(["hals", "mu", "hals-extrapolated"]),
       dtype=st.sampled_from(DTYPES), init=st.sampled_from(["nndsvda", "nndsvd", "random"]),
       order=st.sampled_from(ORDERS), seed=st.integers(0, 2**16))
def test_monotone_and_nonnegative(m, n, k, solver, dtype, init, order, seed):
    rng = np.random.default_rng(seed)
    A = as_order(rng.uniform(0, 1, (m, n)).astype(dtype), order)
    A[rng.uniform(size=(m, n)) < 0.2] = 0  # some exact zeros
    extrapolate = solver == "hals-extrapolated"
    res = fastnmf.nmf(A, k, solver=solver[:4].rstrip("-"), init=init, max_iter=12, tol=0,
                      random_state=seed, extrapolate=extrapolate)
    assert res.U.dtype == dtype and res.V.dtype == dtype
    assert np.isfinite(res.U).all() and np.isfinite(res.V).all()
    assert (res.U >= 0).all() and (res.V >= 0).all()
    assert np.isfinite(res.errors).all()
    assert_non_increasing(res.errors, dtype)
    # (atol: the error of a near-exact fit is at the sqrt(eps) noise floor)
    np.testing.assert_allclose(res.error, ref.rel_error(A, res.U, res.V),
                               rtol=10 * rtol(dtype), atol=np.sqrt(50 * np.finfo(dtype).eps))


# --------------------------------------------------------------------------
# l1 / l2 penalties
# --------------------------------------------------------------------------
def penalized_objective(A, U, V, l1, l2):
    """0.5 ||A - U V||^2 + l1_U sum U + l1_V sum V + 0.5 (l2_U ||U||^2 + l2_V ||V||^2)."""
    A, U, V = ref.f64(A), ref.f64(U), ref.f64(V)
    return (0.5 * np.linalg.norm(A - U @ V) ** 2 + l1[0] * U.sum() + l1[1] * V.sum()
            + 0.5 * (l2[0] * (U ** 2).sum() + l2[1] * (V ** 2).sum()))


def penalized_hals_iter(A, U, V, l1, l2):
    """One sweep per block of the penalized problem: l2 on the Gram's
    diagonal, l1 off the cross product (scikit-learn's cd does the same)."""
    A, U, V = ref.f64(A), ref.f64(U), ref.f64(V)
    k = U.shape[1]
    U, _ = ref.hals_sweep(U, A @ V.T - l1[0], V @ V.T + l2[0] * np.eye(k))
    Vt, _ = ref.hals_sweep(V.T, A.T @ U - l1[1], U.T @ U + l2[1] * np.eye(k))
    return U, Vt.T


def penalized_mu_iter(A, U, V, eps, l1, l2):
    """Lee-Seung with ``l1 + l2 X`` in the denominator."""
    A, U, V = ref.f64(A), ref.f64(U), ref.f64(V)
    k = U.shape[1]
    CU = A @ V.T
    U = ref.mu_nmf(U, CU, V @ V.T + l2[0] * np.eye(k), ref.mu_guard(eps, CU) + l1[0])
    CV = A.T @ U
    Vt = ref.mu_nmf(V.T, CV, U.T @ U + l2[1] * np.eye(k), ref.mu_guard(eps, CV) + l1[1])
    return U, Vt.T


PENALTIES = [((0.3, 0.0), (0.0, 0.0)), ((0.0, 0.5), (2.0, 0.0)), ((0.2, 0.4), (1.0, 3.0))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("l1,l2", PENALTIES)
def test_penalized_hals_matches_reference(rng, dtype, order, l1, l2):
    A, U0, V0 = nmf_problem(rng, 30, 20, 4, dtype, order)
    res = fastnmf.nmf(A, 4, init=(U0, V0), n_inner=1, max_iter=3, tol=0, extrapolate=False,
                      l1=l1, l2=l2)
    U, V = U0, V0
    errs, objs = [ref.rel_error(A, U, V)], [penalized_objective(A, U, V, l1, l2)]
    for _ in range(3):
        U, V = penalized_hals_iter(A, U, V, l1, l2)
        errs.append(ref.rel_error(A, U, V))
        objs.append(penalized_objective(A, U, V, l1, l2))
    check_result_layout(res, A, 4)
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.errors, errs, rtol=err_rtol(dtype))
    np.testing.assert_allclose(res.info["objective"], objs, rtol=err_rtol(dtype))
    assert_non_increasing(res.info["objective"], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l1,l2", PENALTIES)
def test_penalized_mu_matches_reference(rng, dtype, l1, l2):
    A, U0, V0 = nmf_problem(rng, 30, 20, 4, dtype)
    res = fastnmf.nmf(A, 4, solver="mu", init=(U0, V0), max_iter=3, tol=0, l1=l1, l2=l2)
    eps = float(np.finfo(dtype).eps)
    U, V = U0, V0
    objs = [penalized_objective(A, U, V, l1, l2)]
    for _ in range(3):
        U, V = penalized_mu_iter(A, U, V, eps, l1, l2)
        objs.append(penalized_objective(A, U, V, l1, l2))
    assert_close(res.U, U, dtype)
    assert_close(res.V, V, dtype)
    np.testing.assert_allclose(res.info["objective"], objs, rtol=err_rtol(dtype))
    assert_non_increasing(res.info["objective"], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_penalized_extrapolated_hals_keeps_the_best_objective(rng, dtype):
    """With penalties the extrapolation's restarts and best point follow
    the penalized objective: its history is best-so-far, the returned pair
    has the last one, and errors are that pair's reconstruction errors."""
    A, _, _ = nmf_problem(rng, 40, 30, 5, dtype)
    l1, l2 = (0.5, 0.2), (1.0, 0.0)
    res = fastnmf.nmf(A, 5, max_iter=40, tol=0, random_state=0, l1=l1, l2=l2)
    obj = res.info["objective"]
    assert (np.diff(obj) <= 0).all() and obj.shape == res.errors.shape
    np.testing.assert_allclose(obj[-1], penalized_objective(A, res.U, res.V, l1, l2),
                               rtol=err_rtol(dtype))
    np.testing.assert_allclose(res.error, ref.rel_error(A, res.U, res.V), rtol=err_rtol(dtype))
    plain = fastnmf.nmf(A, 5, max_iter=40, tol=0, random_state=0)
    assert penalized_objective(A, res.U, res.V, l1, l2) < \
        penalized_objective(A, plain.U, plain.V, l1, l2)


def test_l1_makes_factors_sparse_and_l2_shrinks_them(rng):
    A, _, _ = nmf_problem(rng, 60, 40, 6, np.float64)
    base = fastnmf.nmf(A, 6, max_iter=200, random_state=0)
    sparse = fastnmf.nmf(A, 6, max_iter=200, random_state=0, l1=(2.0, 2.0))
    small = fastnmf.nmf(A, 6, max_iter=200, random_state=0, l2=(0.0, 20.0))
    # measured: zeros 3% -> 80% (V) and 78% (U); ||V|| 179 -> 0.80 (an l2
    # on V alone moves the scale into U: the error hardly changes)
    assert np.mean(sparse.V == 0) > np.mean(base.V == 0) + 0.2
    assert np.mean(sparse.U == 0) > np.mean(base.U == 0) + 0.2
    assert np.linalg.norm(small.V) < 0.8 * np.linalg.norm(base.V)
    assert base.error < sparse.error and base.error < small.error


@pytest.mark.parametrize("solver,extrapolate", [("hals", True), ("hals", False), ("mu", False)])
def test_zero_penalties_are_the_plain_method_bit_for_bit(rng, solver, extrapolate):
    A, _, _ = nmf_problem(rng, 30, 25, 4, np.float32)
    kw = dict(solver=solver, max_iter=25, random_state=0, extrapolate=extrapolate)
    a = fastnmf.nmf(A, 4, **kw)
    b = fastnmf.nmf(A, 4, l1=0.0, l2=(0.0, 0.0), **kw)
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.errors, b.errors)
    assert "objective" not in b.info


def test_penalized_sparse_data_equals_dense(rng):
    import scipy.sparse as sp
    A, U0, V0 = nmf_problem(rng, 40, 30, 4, np.float64)
    A[A < 1.2] = 0.0
    kw = dict(init=(U0, V0), max_iter=15, tol=0, n_inner=2, inner_tol=0.0, l1=(0.1, 0.3),
              l2=0.5)   # (the default inner-sweep cap counts nnz for sparse data)
    d = fastnmf.nmf(A, 4, **kw)
    s = fastnmf.nmf(sp.csr_matrix(A), 4, **kw)
    assert_close(s.U, d.U, np.float64)
    assert_close(s.V, d.V, np.float64)
    np.testing.assert_allclose(s.info["objective"], d.info["objective"], rtol=1e-9)


@pytest.mark.parametrize("name", ["l1", "l2"])
def test_penalty_validation(rng, name):
    A, _, _ = nmf_problem(rng, 10, 8, 2, np.float64)
    for bad, exc in [(-0.1, ValueError), (np.inf, ValueError), ((0.1, -1.0), ValueError),
                     ((0.1, 0.2, 0.3), ValueError), ("0.1", TypeError), ((0.1, None), TypeError),
                     (True, TypeError)]:
        with pytest.raises(exc, match=name):
            fastnmf.nmf(A, 2, **{name: bad})
