"""Options of the block solves used by the network trainer: nnls ``prox`` /
``l1`` / ``overwrite`` / ``track_error`` and relu_lstsq ``overwrite`` /
``fixed_gram`` / ``model`` / ``l2`` / ``l2_trace``; ridge_lstsq ``prox`` /
``alpha_trace``."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from conftest import DTYPES

import fastnmf


def problem(rng, m=9, n=30, k=5, dtype=np.float64):
    A = rng.standard_normal((m, n)).astype(dtype)
    U = rng.standard_normal((m, k)).astype(dtype)
    V0 = rng.uniform(0, 1, (k, n)).astype(dtype)
    return A, U, V0


def nnls_columns(A, U):
    """Exact NNLS column by column (scipy's active-set solver)."""
    return np.stack([scipy.optimize.nnls(U, A[:, j])[0] for j in range(A.shape[1])], axis=1)


@pytest.mark.parametrize("gamma", [0.1, 2.0])
def test_nnls_prox_equals_stacked_nnls(gamma):
    """min ||A - UV||^2 + g ||V - V0||^2 == NNLS of [A; sqrt(g) V0] by [U; sqrt(g) I]."""
    rng = np.random.default_rng(0)
    A, U, V0 = problem(rng)
    k = U.shape[1]
    want = nnls_columns(np.vstack([A, np.sqrt(gamma) * V0]), np.vstack([U, np.sqrt(gamma) * np.eye(k)]))
    got = fastnmf.nnls(A, U, V0=V0, prox=gamma, max_iter=2000, tol=0.0).V
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_nnls_l1_equals_shifted_problem():
    """l1 * sum(V): the KKT point of the penalised problem (checked by its
    optimality conditions: gradient >= 0, = 0 where V > 0)."""
    rng = np.random.default_rng(1)
    A, U, _ = problem(rng)
    l1 = 0.5
    V = fastnmf.nnls(A, U, l1=l1, max_iter=3000, tol=0.0).V
    grad = U.T @ (U @ V - A) + l1
    assert (V >= 0).all()
    assert grad.min() > -1e-6
    np.testing.assert_allclose(grad[V > 1e-9], 0, atol=1e-6)
    assert (V == 0).sum() > (fastnmf.nnls(A, U, max_iter=3000, tol=0.0).V == 0).sum()


def test_nnls_prox_keeps_ones_row_and_needs_V0():
    rng = np.random.default_rng(2)
    A, U, V0 = problem(rng)
    V0[-1] = 1
    r = fastnmf.nnls(A, U, V0=V0, prox=1.0, fixed_ones_row=True, max_iter=5)
    assert np.array_equal(r.V[-1], np.ones(V0.shape[1]))
    with pytest.raises(ValueError, match="prox"):
        fastnmf.nnls(A, U, prox=1.0)
    with pytest.raises(ValueError, match="prox"):
        fastnmf.nnls(A, U, V0=V0, prox=-1.0)
    with pytest.raises(ValueError, match="l1"):
        fastnmf.nnls(A, U, l1=-1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nnls_overwrite(dtype):
    rng = np.random.default_rng(3)
    A, U, V0 = problem(rng, dtype=dtype)
    H = np.ascontiguousarray(V0.T)            # (n, k) C: V0 = H.T is the working layout
    keep = H.copy()
    r = fastnmf.nnls(A, U, V0=H.T, max_iter=3)
    assert np.array_equal(H, keep), "overwrite=False must not touch V0"
    r2 = fastnmf.nnls(A, U, V0=H.T, max_iter=3, overwrite=True)
    assert np.shares_memory(r2.V, H)
    np.testing.assert_array_equal(H.T, r.V)
    # a V0 in another layout is never modified, even with overwrite=True
    V0c = np.ascontiguousarray(keep.T)
    r3 = fastnmf.nnls(A, U, V0=V0c, max_iter=3, overwrite=True)
    assert np.array_equal(V0c, keep.T) and not np.shares_memory(r3.V, V0c)
    np.testing.assert_array_equal(r3.V, r.V)


@pytest.mark.parametrize("solver, m, prox", [("hals", None, 0.0), ("mu", None, 0.0),
                                             ("mu", None, 0.2), ("mu", 2, 0.2)])
def test_nnls_track_error_false_same_result(solver, m, prox):
    """Without error tracking MU runs all its updates in one kernel call
    (the thin-U route too, m = 2): the same iterates, bit for bit; errors
    NaN, times NaN but the first and the last."""
    rng = np.random.default_rng(4)
    A, U, V0 = problem(rng)
    if m is not None:
        A, U = A[:m], U[:m]
    kw = dict(V0=V0, max_iter=4, solver=solver, prox=prox, tol=0.0)
    a = fastnmf.nnls(A, U, **kw)
    b = fastnmf.nnls(A, U, track_error=False, **kw)
    np.testing.assert_array_equal(a.V, b.V)
    assert np.isnan(b.errors).all() and b.errors.shape == a.errors.shape
    assert b.n_iter == a.n_iter == 4 and b.times.shape == a.times.shape
    assert b.times[-1] > 0 and (solver == "hals" or np.isnan(b.times[1:-1]).all())


@pytest.mark.parametrize("update", ["U", "V"])
def test_relu_lstsq_overwrite(update):
    rng = np.random.default_rng(5)
    m, n, k = 8, 40, 4
    A = np.maximum(rng.standard_normal((m, k)) @ rng.uniform(0, 1, (k, n)), 0)
    U = np.ascontiguousarray(rng.standard_normal((m, k)))
    H = np.ascontiguousarray(rng.uniform(0, 1, (n, k)))   # V = H.T
    U0, H0 = U.copy(), H.copy()
    r = fastnmf.relu_lstsq(A, U, H.T, update=update, n_iter=2)
    assert np.array_equal(U, U0) and np.array_equal(H, H0), "inputs must be untouched by default"
    r2 = fastnmf.relu_lstsq(A, U, H.T, update=update, n_iter=2, overwrite=True)
    moved = U if update == "U" else H
    fixed, fixed0 = (H, H0) if update == "U" else (U, U0)
    assert np.shares_memory(r2.U if update == "U" else r2.V, moved)
    assert np.array_equal(fixed, fixed0), "the fixed factor is never modified"
    np.testing.assert_array_equal(r2.U, r.U)
    np.testing.assert_array_equal(r2.V, r.V)


def test_relu_lstsq_fixed_gram_same_result_and_checked():
    rng = np.random.default_rng(6)
    m, n, k = 8, 40, 4
    A = np.maximum(rng.standard_normal((m, k)) @ rng.uniform(0, 1, (k, n)), 0)
    U = rng.standard_normal((m, k))
    V = rng.uniform(0, 1, (k, n))
    a = fastnmf.relu_lstsq(A, U, V, n_iter=3, alpha=0.1)
    b = fastnmf.relu_lstsq(A, U, V, n_iter=3, alpha=0.1, fixed_gram=V @ V.T)
    np.testing.assert_allclose(b.U, a.U, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="fixed_gram"):
        fastnmf.relu_lstsq(A, U, V, fixed_gram=np.eye(k + 1))
    with pytest.raises(ValueError, match="fixed_gram"):
        fastnmf.relu_lstsq(A, U, V, update="V", fixed_gram=np.eye(k))
    with pytest.raises(ValueError, match="fixed_gram"):
        fastnmf.relu_lstsq(A, U, V, fixed_gram=np.full((k, k), np.nan))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("update", ["U", "V"])
@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("n_iter", [1, 3])
def test_relu_lstsq_model_same_result(dtype, order, update, overwrite, n_iter):
    """``model=U @ V`` (the caller's product of the starting point) gives
    the same solve as computing it; without ``overwrite``, or in the other
    memory order, the caller's array is left alone."""
    rng = np.random.default_rng(8)
    m, n, k = 8, 40, 4
    A = np.asarray(np.maximum(rng.standard_normal((m, k)) @ rng.uniform(0, 1, (k, n)), 0),
                   dtype=dtype, order=order)
    U = rng.standard_normal((m, k)).astype(dtype)
    V = rng.uniform(0, 1, (k, n)).astype(dtype)
    a = fastnmf.relu_lstsq(A, U, V, update=update, n_iter=n_iter, alpha=0.1)
    for model_order in ("C", "F"):
        model = np.asarray(U @ V, order=model_order)
        model0 = model.copy()
        b = fastnmf.relu_lstsq(A, U.copy(), V.copy(), update=update, n_iter=n_iter, alpha=0.1,
                               model=model, overwrite=overwrite)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(b.U, a.U, rtol=tol, atol=tol)
        np.testing.assert_allclose(b.V, a.V, rtol=tol, atol=tol)
        np.testing.assert_allclose(b.errors, a.errors, rtol=tol, atol=tol)
        assert b.U.dtype == b.V.dtype == dtype
        if not overwrite or model_order != order:
            np.testing.assert_array_equal(model, model0)


def test_relu_lstsq_model_is_used_and_checked():
    """The given product is what the first step starts from (a wrong one
    changes the result), and a bad one is rejected by name."""
    rng = np.random.default_rng(9)
    m, n, k = 6, 30, 3
    A = np.maximum(rng.standard_normal((m, n)), 0)
    U = rng.standard_normal((m, k))
    V = rng.uniform(0, 1, (k, n))
    a = fastnmf.relu_lstsq(A, U, V, n_iter=1)
    b = fastnmf.relu_lstsq(A, U, V, n_iter=1, model=U @ V + 1.0)
    assert not np.allclose(a.U, b.U)
    with pytest.raises(ValueError, match="model"):
        fastnmf.relu_lstsq(A, U, V, model=np.zeros((m, n + 1)))
    with pytest.raises(ValueError, match="model"):
        fastnmf.relu_lstsq(A, U, V, model=np.full((m, n), np.nan))
    with pytest.raises(TypeError, match="model"):
        fastnmf.relu_lstsq(A, U, V, model=np.zeros((m, n), dtype=complex))
    # zero iterations: nothing to start, the error is of U V itself
    c = fastnmf.relu_lstsq(A, U, V, n_iter=0, model=U @ V + 1.0)
    d = fastnmf.relu_lstsq(A, U, V, n_iter=0)
    np.testing.assert_allclose(c.errors, d.errors)


@pytest.mark.parametrize("prox", [0.0, 0.5, 10.0])
def test_ridge_lstsq_prox_matches_normal_equations(prox):
    rng = np.random.default_rng(7)
    m, n, k = 6, 25, 4
    A, V, U0 = rng.standard_normal((m, n)), rng.standard_normal((k, n)), rng.standard_normal((m, k))
    alpha = 0.3
    want = (A @ V.T + prox * U0) @ np.linalg.inv(V @ V.T + (alpha + prox) * np.eye(k))
    got = fastnmf.ridge_lstsq(A, V, alpha=alpha, U0=U0, prox=prox)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_ridge_lstsq_prox_validation():
    rng = np.random.default_rng(8)
    A, V = rng.standard_normal((6, 25)), rng.standard_normal((4, 25))
    with pytest.raises(ValueError, match="U0"):
        fastnmf.ridge_lstsq(A, V, prox=1.0)
    with pytest.raises(ValueError, match="U0"):
        fastnmf.ridge_lstsq(A, V, U0=np.zeros((6, 5)), prox=1.0)
    with pytest.raises(ValueError, match="prox"):
        fastnmf.ridge_lstsq(A, V, U0=np.zeros((6, 4)), prox=-1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_lstsq_l2_matches_reference_steps(dtype):
    """U <- U + w (R V^T - l2 U)(V V^T + (a + l2) I)^-1, R = A - relu(U V)."""
    rng = np.random.default_rng(9)
    m, n, k = 7, 50, 5
    A = np.maximum(rng.standard_normal((m, k)) @ rng.uniform(0, 1, (k, n)), 0)
    U0 = rng.standard_normal((m, k))
    V = rng.uniform(0, 1, (k, n))
    a, l2, w = 0.3, 2.0, 0.8
    U = U0.copy()
    inv = np.linalg.inv(V @ V.T + (a + l2) * np.eye(k))
    for _ in range(3):
        R = A - np.maximum(U @ V, 0)
        U = U + w * (R @ V.T - l2 * U) @ inv
    got = fastnmf.relu_lstsq(A.astype(dtype), U0.astype(dtype), V.astype(dtype), n_iter=3,
                             alpha=a, l2=l2, omega=w).U
    tol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(got, U, rtol=tol, atol=tol)
    # weight decay shrinks the solution
    free = fastnmf.relu_lstsq(A, U0, V, n_iter=200, alpha=a).U
    decayed = fastnmf.relu_lstsq(A, U0, V, n_iter=200, alpha=a, l2=50.0).U
    assert np.linalg.norm(decayed) < np.linalg.norm(free)


@pytest.mark.parametrize("name", ["l2", "l2_trace"])
def test_relu_lstsq_weight_decay_validation(name):
    """Negative, non-finite and non-numeric values, and use with
    update='V', raise naming the option."""
    rng = np.random.default_rng(10)
    A, U, V = rng.uniform(0, 1, (4, 9)), rng.standard_normal((4, 3)), rng.uniform(0, 1, (3, 9))
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match=f"^{name} "):
            fastnmf.relu_lstsq(A, U, V, **{name: bad})
    with pytest.raises(ValueError, match=f"^{name} "):
        fastnmf.relu_lstsq(A, U, V, update="V", **{name: 1.0})
    for bad in ("1", None):
        with pytest.raises(TypeError, match=f"^{name} "):
            fastnmf.relu_lstsq(A, U, V, **{name: bad})


@pytest.mark.parametrize("dtype", DTYPES)
def test_ridge_lstsq_alpha_trace_is_alpha_plus_trace_share(dtype):
    """alpha_trace adds alpha_trace * ||V||_F^2 to alpha, against the normal
    equations in float64 (and the same solve given that alpha directly)."""
    rng = np.random.default_rng(11)
    m, n, k = 6, 40, 5
    A, V = rng.standard_normal((m, n)), rng.standard_normal((k, n))
    alpha, t = 0.3, 0.02
    total = alpha + t * np.sum(V * V)
    want = A @ V.T @ np.linalg.inv(V @ V.T + total * np.eye(k))
    got = fastnmf.ridge_lstsq(A.astype(dtype), V.astype(dtype), alpha=alpha, alpha_trace=t)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    direct = fastnmf.ridge_lstsq(A.astype(dtype), V.astype(dtype), alpha=total)
    np.testing.assert_allclose(got, direct, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="alpha_trace"):
        fastnmf.ridge_lstsq(A, V, alpha_trace=-1.0)
    with pytest.raises(ValueError, match="alpha_trace"):
        fastnmf.ridge_lstsq(A, V, alpha_trace=np.inf)
    with pytest.raises(TypeError, match="alpha_trace"):
        fastnmf.ridge_lstsq(A, V, alpha_trace="0.1")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("given_gram", [False, True])
def test_relu_lstsq_l2_trace_is_l2_plus_trace_share(dtype, given_gram):
    """l2_trace adds l2_trace * ||V||_F^2 to l2 (read off fixed_gram when
    given): the reference steps with that l2."""
    rng = np.random.default_rng(12)
    m, n, k = 7, 50, 5
    A = np.maximum(rng.standard_normal((m, k)) @ rng.uniform(0, 1, (k, n)), 0)
    U0 = rng.standard_normal((m, k))
    V = rng.uniform(0, 1, (k, n))
    a, l2, t, w = 0.3, 0.5, 0.01, 0.8
    l2_total = l2 + t * np.sum(V * V)
    U = U0.copy()
    inv = np.linalg.inv(V @ V.T + (a + l2_total) * np.eye(k))
    for _ in range(3):
        R = A - np.maximum(U @ V, 0)
        U = U + w * (R @ V.T - l2_total * U) @ inv
    Vd = V.astype(dtype)
    got = fastnmf.relu_lstsq(A.astype(dtype), U0.astype(dtype), Vd, n_iter=3, alpha=a, l2=l2,
                             l2_trace=t, omega=w,
                             fixed_gram=(Vd @ Vd.T) if given_gram else None).U
    tol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(got, U, rtol=tol, atol=tol)



@pytest.mark.parametrize("dtype", DTYPES)
def test_fixed_gram_object_same_result_and_keeps_its_inverse(dtype):
    """relu_lstsq with a FixedGram: the same U as with the plain Gram array
    and as forming it; the regularised inverse is formed once per shift
    (the same read-only array comes back) and is the true inverse."""
    rng = np.random.default_rng(14)
    m, n, k = 8, 60, 5
    A = np.maximum(rng.standard_normal((m, k)) @ rng.uniform(0, 1, (k, n)), 0).astype(dtype)
    U = rng.standard_normal((m, k)).astype(dtype)
    V = rng.uniform(0, 1, (k, n)).astype(dtype)
    G = V @ V.T
    fg = fastnmf.FixedGram(G)
    kw = dict(n_iter=3, alpha=0.1, l2=0.2, l2_trace=0.001)
    a = fastnmf.relu_lstsq(A, U, V, **kw).U
    b = fastnmf.relu_lstsq(A, U, V, fixed_gram=G, **kw).U
    c = fastnmf.relu_lstsq(A, U, V, fixed_gram=fg, **kw).U
    c2 = fastnmf.relu_lstsq(A, U, V, fixed_gram=fg, **kw).U
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    np.testing.assert_array_equal(c, b)
    np.testing.assert_array_equal(c2, c)
    assert c.dtype == dtype
    shift = 0.1 + 0.2 + 0.001 * fg.trace
    inv = fg.inverse(shift, dtype)
    assert inv is fg.inverse(shift, dtype) and not inv.flags.writeable
    np.testing.assert_allclose(inv, np.linalg.inv(G.astype(np.float64) + shift * np.eye(k)),
                               rtol=tol, atol=tol)
    other = fg.inverse(2.0, dtype)
    assert other is not inv
    np.testing.assert_allclose(other, np.linalg.inv(G.astype(np.float64) + 2.0 * np.eye(k)),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(fg.trace, np.trace(G.astype(np.float64)), rtol=1e-6)


def test_fixed_gram_object_is_a_private_copy_and_validated():
    rng = np.random.default_rng(15)
    V = rng.uniform(0, 1, (4, 30))
    G = V @ V.T
    fg = fastnmf.FixedGram(G)
    G[0, 0] = 1e6                       # the caller's array changes; the object does not
    assert fg.matrix[0, 0] != 1e6
    with pytest.raises(ValueError):
        fg.matrix[0, 0] = 1.0           # read-only
    assert fastnmf.FixedGram(G, dtype=np.float32).matrix.dtype == np.float32
    with pytest.raises(ValueError, match="G"):
        fastnmf.FixedGram(np.ones((3, 4)))
    with pytest.raises(ValueError, match="G"):
        fastnmf.FixedGram(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="G"):
        fastnmf.FixedGram(np.ones(3))
    with pytest.raises(TypeError, match="G"):
        fastnmf.FixedGram(np.ones((3, 3), complex))
    A, U = np.maximum(rng.standard_normal((5, 30)), 0), rng.standard_normal((5, 4))
    with pytest.raises(ValueError, match="fixed_gram"):
        fastnmf.relu_lstsq(A, U, V, fixed_gram=fastnmf.FixedGram(np.eye(3)))
    with pytest.raises(ValueError, match="fixed_gram"):
        fastnmf.relu_lstsq(A, U, V, update="V", fixed_gram=fastnmf.FixedGram(np.eye(4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("update", ["U", "V"])
@pytest.mark.parametrize("layout", ["F-padded", "C-padded"])
def test_relu_lstsq_reads_a_padded_target_in_place(dtype, update, layout):
    """A as a column slice of a wider buffer (the trainer's targets,
    ``H[:, :k].T`` next to the ones column) or its transpose: the same
    result as from a contiguous copy, with or without ``model``; A is read
    in place (check_matrix keeps the view) and not modified."""
    rng = np.random.default_rng(16)
    m, n, k = 6, 40, 4
    U = rng.standard_normal((m, k)).astype(dtype)
    V = rng.uniform(0, 1, (k, n)).astype(dtype)
    target = np.maximum(rng.standard_normal((m, k)) @ rng.uniform(0, 1, (k, n)), 0).astype(dtype)
    if layout == "F-padded":
        buf = np.ones((n, m + 1), dtype)        # samples as rows, a ones column last
        buf[:, :m] = target.T
        A = buf[:, :m].T
    else:
        buf = np.ones((m, n + 3), dtype)
        buf[:, :n] = target
        A = buf[:, :n]
    assert not (A.flags.c_contiguous or A.flags.f_contiguous)
    from fastnmf._validation import check_matrix, is_padded
    assert is_padded(A) and np.shares_memory(check_matrix(A, "A", keep_padded=True), A)
    assert not np.shares_memory(check_matrix(A, "A"), A)    # the default still copies
    before = A.copy()
    kw = dict(update=update, n_iter=2, omega=1.2, alpha=0.1)
    want = fastnmf.relu_lstsq(np.array(A, order="K"), U, V, **kw)
    got = fastnmf.relu_lstsq(A, U, V, **kw)
    np.testing.assert_array_equal(got.U, want.U)
    np.testing.assert_array_equal(got.V, want.V)
    np.testing.assert_allclose(got.errors, want.errors, rtol=1e-6)
    model = U @ V
    got_m = fastnmf.relu_lstsq(A, U.copy(), V.copy(), overwrite=True, **kw,
                               model=model.copy(order="F" if layout == "F-padded" else "C"))
    want_m = fastnmf.relu_lstsq(np.array(A, order="K"), U, V, model=model, **kw)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got_m.U, want_m.U, rtol=tol, atol=tol)
    np.testing.assert_allclose(got_m.V, want_m.V, rtol=tol, atol=tol)
    np.testing.assert_array_equal(A, before)
    A[0, 1] = np.nan                            # validation still scans a padded A
    with pytest.raises(ValueError, match="A contains NaN"):
        fastnmf.relu_lstsq(A, U, V, update=update)


def test_is_padded_layouts():
    from fastnmf._validation import is_padded
    from fastnmf._blocks import _order
    H = np.zeros((5, 7))
    assert is_padded(H) and is_padded(H[:, :4]) and is_padded(H[:, :4].T)
    assert not is_padded(H[:, ::2]) and not is_padded(H[::-1]) and not is_padded(np.zeros(3))
    assert _order(H[:, :4]) == "C" and _order(H[:, :4].T) == "F"
    assert _order(H) == "C" and _order(np.asfortranarray(H)) == "F"
