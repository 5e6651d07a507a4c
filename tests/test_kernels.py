"""Numba kernels (_kernels.py) and the Cython tiled HALS sweep vs NumPy references."""
from __future__ import annotations

import os

import numpy as np
import pytest

import _reference as ref
from conftest import DTYPES, ORDERS, as_order, assert_close, rtol

from fastnmf import _blocks, _hals_dispatch
from fastnmf import _kernels as K


def _mixed(rng, shape, dtype, order="C"):
    return as_order(rng.standard_normal(shape).astype(dtype), order)


def _pos(rng, shape, dtype, order="C"):
    return as_order(rng.uniform(0.1, 1.0, shape).astype(dtype), order)


# --------------------------------------------------------------------------
# Fused elementwise kernels
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_relu_residual(rng, dtype, order):
    P = _mixed(rng, (13, 9), dtype, order)
    A = _pos(rng, (13, 9), dtype, order)
    expected = ref.f64(A) - ref.relu(ref.f64(P))
    total = K.relu_residual_(P, A)
    assert P.dtype == dtype
    assert_close(P, expected, dtype)
    np.testing.assert_allclose(total, np.sum(expected ** 2), rtol=10 * rtol(dtype) if
                               dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_blocks_relu_residual_any_order(rng, dtype, order):
    """The _blocks wrapper feeds F-ordered operands to the kernel transposed."""
    P = _mixed(rng, (7, 11), dtype, order)
    A = _pos(rng, (7, 11), dtype, order)
    expected = ref.f64(A) - ref.relu(ref.f64(P))
    total = _blocks.relu_residual_(P, A)
    assert_close(P, expected, dtype)
    np.testing.assert_allclose(total, np.sum(expected ** 2), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_relu_residual_norms(rng, dtype, order):
    """The residual pass that also returns ||A||^2 (relu_lstsq's first
    pass): the same P and ||R||^2 as relu_residual_, and A's squared norm
    (A of mixed sign: the kernel does not assume A >= 0)."""
    P = _mixed(rng, (9, 14), dtype, order)
    A = _mixed(rng, (9, 14), dtype, order)
    expected = ref.f64(A) - ref.relu(ref.f64(P))
    r2, a2 = _blocks.relu_residual_norms_(P, A)
    assert P.dtype == dtype
    assert_close(P, expected, dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(r2, np.sum(expected ** 2), rtol=tol)
    np.testing.assert_allclose(a2, np.sum(ref.f64(A) ** 2), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_linear_residual(rng, dtype, order):
    """The kernel (C order) and the _blocks wrapper (either order) against
    A - P and its squared norm."""
    P = _mixed(rng, (13, 9), dtype, order)
    A = _mixed(rng, (13, 9), dtype, order)
    expected = ref.f64(A) - ref.f64(P)
    P2 = P.copy(order="K")
    total = _blocks.linear_residual_(P2, A)
    assert P2.dtype == dtype
    assert_close(P2, expected, dtype)
    np.testing.assert_allclose(total, np.sum(expected ** 2), rtol=1e-5 if
                               dtype == np.float32 else 1e-12)
    if order == "C":
        total = K.linear_residual_(P, A)
        assert_close(P, expected, dtype)
        np.testing.assert_allclose(total, np.sum(expected ** 2), rtol=1e-5 if
                                   dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("omega", [1.0, -0.37, 2.5])
def test_add_scaled(rng, dtype, order, omega):
    X = _mixed(rng, (17, 5), dtype, order)
    D = _mixed(rng, (17, 5), dtype, order)
    expected = ref.f64(X) + omega * ref.f64(D)
    K.add_scaled_(X, D, omega)
    assert X.dtype == dtype
    assert_close(X, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prox, l1", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.2), (0.3, 0.2)])
@pytest.mark.parametrize("row", ["ones", "given"])
def test_shifted_cross(rng, dtype, prox, l1, row):
    n, k, kf = 70, 6, 5
    CV = _mixed(rng, (n, k), dtype)
    Vt = _pos(rng, (n, k), dtype)
    b = _mixed(rng, (kf,), dtype)
    r = _pos(rng, (n,), dtype) if row == "given" else np.empty(0, dtype)
    C = np.full((n, kf), np.nan, dtype)
    K.shifted_cross_(C, CV, b, Vt, prox, l1, r)
    share = np.outer(ref.f64(r), ref.f64(b)) if row == "given" else ref.f64(b)
    expected = ref.f64(CV)[:, :kf] - share + prox * ref.f64(Vt)[:, :kf] - l1
    assert_close(C, expected, dtype)
    if prox == 0:   # Vt is not read: NaN there changes nothing
        Vt[:] = np.nan
        K.shifted_cross_(C, CV, b, Vt, prox, l1, r)
        assert_close(C, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("omega", [1.0, 0.3])
def test_clip_add(rng, dtype, order, omega):
    X = _pos(rng, (17, 5), dtype, order)
    D = _mixed(rng, (17, 5), dtype, order)
    expected = np.maximum(0.0, ref.f64(X) + omega * ref.f64(D))
    assert (expected == 0).any() and (expected > 0).any()  # both branches exercised
    K.clip_add_(X, D, omega)
    assert_close(X, expected, dtype)
    assert (X >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("zero_step", [0.0, 0.4, 1.0])
def test_clip_add_at_zero(rng, dtype, order, zero_step):
    X = _pos(rng, (17, 5), dtype, order)
    X[rng.uniform(size=X.shape) < 0.4] = 0
    D = _mixed(rng, (17, 5), dtype, order)
    scale = np.where(X > 0, 1.0, zero_step)
    expected = np.maximum(0.0, ref.f64(X) + 1.3 * scale * ref.f64(D))
    assert ((X == 0) & (D > 0)).any() and ((X > 0) & (expected == 0)).any()
    K.clip_add_at_zero_(X, D, 1.3, zero_step)
    assert_close(X, expected, dtype)
    assert (X >= 0).all()


def test_unit_rows_views_and_fallbacks():
    B = np.arange(42.0).reshape(6, 7)
    X = B[:, :5]                        # leading columns: padded view = B's rows
    U = K.unit_rows(X)
    assert U.flags.c_contiguous and U.shape == (6, 7) and np.shares_memory(U, B)
    np.testing.assert_array_equal(U[:, :5], X)
    assert K.unit_rows(B) is B          # already contiguous
    Xl = B[:, 2:]                       # padded last row would pass the buffer's end
    assert K.unit_rows(Xl) is Xl
    Xs = B[:, ::2]                      # no unit column stride
    assert K.unit_rows(Xs) is Xs
    F = np.asfortranarray(B)[:, :5]
    assert K.unit_rows(F) is F
    assert K.unit_rows(B[:0, :5]).shape == (0, 5)
    Xr = B[2:5, 1:4]                    # a block inside: view from its first entry
    Ur = K.unit_rows(Xr)
    assert Ur.flags.c_contiguous and Ur.shape == (3, 7) and np.shares_memory(Ur, B)
    np.testing.assert_array_equal(Ur[:, :3], Xr)
    Ur[0, 0] = -1.0                     # writes land in B
    assert B[2, 1] == -1.0
    Bro = B.copy()
    Bro.flags.writeable = False         # a read-only buffer gives a read-only view
    Uro = K.unit_rows(Bro[:, :5])
    assert Uro.shape == (6, 7) and not Uro.flags.writeable


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_ones(dtype):
    H = np.ones((9, 4), dtype)
    assert K.all_ones(H[:, -1]) and K.all_ones(H[0])      # strided and contiguous
    for bad in (0.999, np.nan, np.inf, 0.0):
        H[5, -1] = bad
        assert not K.all_ones(H[:, -1])
    assert K.all_ones(np.ones(0, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_on_padded_column_slice_touch_only_the_slice(rng, dtype):
    """A fixed ones column next to the slice: MU and clip kernels on the
    padded view give the contiguous result and leave that column exactly 1."""
    p, k = 150, 6
    Vt = np.ones((p, k + 1), dtype)
    Vt[:, :k] = _pos(rng, (p, k), dtype)
    X = Vt[:, :k]
    C = _mixed(rng, (p, k), dtype)
    G = _mixed(rng, (k, k), dtype)
    G = (G + G.T).astype(dtype)
    Gp = np.maximum(G, 0)
    DP, DM = (X @ Gp).astype(dtype), (X @ (Gp - G)).astype(dtype)
    expected = X.copy()
    K.mu_semi_update_(expected, C, DP, DM, 1e-4)
    Xu = K.unit_rows(X)
    assert Xu.flags.c_contiguous and Xu.shape == (p, k + 1)
    K.mu_semi_update_(Xu, C, DP, DM, 1e-4)
    np.testing.assert_array_equal(X, expected)
    assert (Vt[:, -1] == 1).all()
    D = _mixed(rng, (p, k), dtype)
    expected = np.maximum(0, X.astype(np.float64) + 0.7 * D)
    K.clip_add_(Xu, D, 0.7)
    assert_close(X, expected, dtype)
    assert (Vt[:, -1] == 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_mu_nmf_update(rng, dtype, order):
    p, k = 19, 4
    X = _pos(rng, (p, k), dtype, order)
    C = _pos(rng, (p, k), dtype, order)
    W = _pos(rng, (8, k), dtype)
    G = (W.T @ W).astype(dtype)
    D = as_order((X @ G).astype(dtype), order)
    eps = 1e-3
    expected = ref.mu_nmf(X, C, G, eps)
    K.mu_nmf_update_(X, C, D, eps)
    assert_close(X, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
def test_mu_semi_update(rng, dtype, order):
    p, k = 19, 4
    X = _pos(rng, (p, k), dtype, order)
    C = _mixed(rng, (p, k), dtype, order)
    G = _mixed(rng, (k, k), dtype)
    G = (G + G.T).astype(dtype)  # symmetric, mixed sign
    Gp = np.maximum(G, 0)
    Gm = Gp - G
    DP = as_order((X @ Gp).astype(dtype), order)
    DM = as_order((X @ Gm).astype(dtype), order)
    eps = 1e-4
    expected = ref.mu_semi(X, C, G, eps)
    K.mu_semi_update_(X, C, DP, DM, eps)
    assert_close(X, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape", [(301, 7), (2100, 40)])  # serial / parallel path
def test_dot64_accumulates_in_float64(rng, dtype, order, shape):
    assert (shape[0] * shape[1] < K._SERIAL_BELOW) == (shape == (301, 7))
    X = _mixed(rng, shape, dtype, order)
    Y = _mixed(rng, shape, dtype, order)
    expected = float(np.sum(ref.f64(X) * ref.f64(Y)))
    # Products of float32 numbers are exact in float64, so a float64
    # accumulator agrees to ~1e-13 even for float32 input (a float32
    # accumulator would be off by ~1e-6).
    np.testing.assert_allclose(K.dot64(X, Y), expected, rtol=1e-11)
    np.testing.assert_allclose(_blocks.sq_norm(X), np.sum(ref.f64(X) ** 2), rtol=1e-11)
    # |X| summed the same way, for C and F order, serial and parallel builds
    np.testing.assert_allclose(K.abs_sum64(X), float(np.sum(np.abs(ref.f64(X)))), rtol=1e-11)


# --------------------------------------------------------------------------
# HALS sweeps: Cython (both builds + dispatched) and the Numba twin
# --------------------------------------------------------------------------
def _sweeps_modules():
    """Every HALS build this CPU can run (an ISA build it lacks is skipped:
    importing it works, running it would be an illegal instruction)."""
    mods = [_hals_dispatch.load_build(name) for name in ("baseline", "avx2", "avx512")]
    return [m for m in mods if m is not None]


def _cython_sweeps():
    """(id, callable(X, C, G) -> delta) for every HALS implementation available."""
    impls = []
    for mod in _sweeps_modules():
        name = mod.__name__.rsplit(".", 1)[1]
        impls.append((name + "-1t", lambda X, C, G, f=mod.hals_update_rows: f(X, C, G, 1)))
        impls.append((name + "-2t", lambda X, C, G, f=mod.hals_update_rows: f(X, C, G, 2)))
    impls.append(("dispatched", lambda X, C, G: _hals_dispatch.hals_update_rows(X, C, G, 2)))
    impls.append(("blocks.hals_sweep_", _blocks.hals_sweep_))
    return impls


CY_IMPLS = _cython_sweeps()
ALL_IMPLS = CY_IMPLS + [("numba", K.hals_update_rows_numba)]
IMPL_IDS = [name for name, _ in ALL_IMPLS]


def _hals_problem(rng, p, k, dtype, dead=None):
    """X >= 0 start, mixed-sign C (so the clip is active), SPD G = W^T W."""
    W = rng.uniform(0.0, 1.0, (max(3 * k, 8), k))
    if dead is not None:
        W[:, dead] = 0.0
    G = (W.T @ W).astype(dtype)
    X = rng.uniform(0.0, 1.0, (p, k)).astype(dtype)
    C = (rng.standard_normal((p, W.shape[0])) @ W + 0.5).astype(dtype)
    if dead is not None:
        # A dead component with a nonzero cross product: dividing by the zero
        # diagonal would give Inf/NaN, so this checks the skip, not luck.
        C[:, dead] = rng.uniform(1.0, 2.0, p).astype(dtype)
    return X, C, G


def test_reference_sweeps_agree(rng):
    """The vectorised reference equals the literal double loop."""
    X, C, G = _hals_problem(rng, 23, 5, np.float64, dead=2)
    X1, d1 = ref.hals_sweep_rowwise(X, C, G)
    X2, d2 = ref.hals_sweep(X, C, G)
    np.testing.assert_allclose(X1, X2, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(d1, d2, rtol=1e-12)


# Full tiles (64 float32 / 32 float64 rows) with k >= 8 take the AVX2 build's
# register-block transposition (8 x 8 / 4 x 4 blocks plus k % 8 scalar
# columns); partial tiles and small k the scalar one.
SHAPES = [(1, 1), (5, 1), (5, 3), (63, 4), (64, 4), (65, 4), (130, 7), (200, 1),
          (64, 8), (128, 16), (200, 19), (97, 50)]


@pytest.mark.parametrize("impl", ALL_IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,k", SHAPES)
def test_hals_sweep_matches_reference(rng, impl, dtype, p, k):
    _, f = impl
    X, C, G = _hals_problem(rng, p, k, dtype)
    exp_X, exp_delta = (ref.hals_sweep_rowwise if p * k <= 64 else ref.hals_sweep)(X, C, G)
    delta = f(X, C, G)
    assert X.dtype == dtype
    assert_close(X, exp_X, dtype)
    np.testing.assert_allclose(delta, exp_delta, rtol=10 * rtol(dtype), atol=1e-12)
    assert (X >= 0).all()
    assert 0 < (exp_X == 0).sum() or k == 1 or p < 5  # the clip was exercised


@pytest.mark.parametrize("impl", ALL_IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [3, 64, 100])
def test_hals_sweep_dead_component_untouched(rng, impl, dtype, p):
    _, f = impl
    k, dead = 5, 3
    X, C, G = _hals_problem(rng, p, k, dtype, dead=dead)
    assert G[dead, dead] == 0
    before = X[:, dead].copy()
    exp_X, exp_delta = ref.hals_sweep(X, C, G)
    delta = f(X, C, G)
    assert np.isfinite(X).all() and np.isfinite(delta)
    np.testing.assert_array_equal(X[:, dead], before)
    assert_close(X, exp_X, dtype)
    np.testing.assert_allclose(delta, exp_delta, rtol=10 * rtol(dtype))


@pytest.mark.parametrize("impl", ALL_IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,k", [(1, 2), (37, 2), (64, 5), (150, 6), (150, 13), (64, 9)])
def test_hals_sweep_column_slice_views(rng, impl, dtype, p, k):
    """X[:, :k-1] views (row stride k): only the first k-1 columns change."""
    _, f = impl
    Xf, Cf, Gf = _hals_problem(rng, p, k, dtype)
    X, C, G = Xf[:, :k - 1], Cf[:, :k - 1], Gf[:k - 1, :k - 1]
    assert X.strides[0] == k * X.itemsize and (p == 1 or not X.flags.c_contiguous)
    last = Xf[:, -1].copy()
    exp_X, exp_delta = ref.hals_sweep(X, C, G)
    delta = f(X, C, G)
    assert_close(Xf[:, :k - 1], exp_X, dtype)
    np.testing.assert_array_equal(Xf[:, -1], last)
    np.testing.assert_allclose(delta, exp_delta, rtol=10 * rtol(dtype), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hals_sweep_repeated_sweeps_solve_nnls(rng, dtype):
    """Many sweeps reach the NNLS optimum (checked by the KKT conditions)."""
    X, C, G = _hals_problem(rng, 70, 4, np.float64)
    X, C, G = X.astype(dtype), C.astype(dtype), G.astype(dtype)
    for _ in range(300):
        _hals_dispatch.hals_update_rows(X, C, G, 2)
    grad = ref.f64(X) @ ref.f64(G) - ref.f64(C)
    scale = np.abs(ref.f64(C)).max()
    tol = 1e-3 if dtype == np.float32 else 1e-8
    assert (grad >= -tol * scale).all()                       # dual feasibility
    assert np.abs(grad[X > 0]).max() <= tol * scale           # complementarity


@pytest.mark.parametrize("dtype", DTYPES)
def test_cython_builds_agree_and_threads_bitwise(rng, dtype):
    """Rows are independent, so the thread count cannot change X at all."""
    X, C, G = _hals_problem(rng, 257, 6, dtype)
    outs = []
    for name, f in CY_IMPLS:
        Y = X.copy()
        f(Y, C, G)
        outs.append((name, Y))
    by_name = dict(outs)
    for build in ("_hals", "_hals_avx2", "_hals_avx512"):
        if build + "-1t" in by_name:
            np.testing.assert_array_equal(by_name[build + "-1t"], by_name[build + "-2t"])
    for name, Y in outs:
        assert_close(Y, outs[0][1], dtype, err_msg=name)


def test_cython_rejects_non_unit_last_stride(rng):
    X, C, G = _hals_problem(rng, 10, 3, np.float64)
    for f in (_hals_dispatch.hals_update_rows, _hals_dispatch.hals_update_rows_baseline):
        with pytest.raises(ValueError, match="unit stride"):
            f(np.asfortranarray(X), C, G, 1)
        with pytest.raises(ValueError, match="shapes"):
            f(X, C[:, :2], G, 1)


def test_dispatch_selects_the_widest_build():
    isa = _hals_dispatch.HALS_ISA
    assert isa in ("avx512", "avx2", "baseline")
    mod = _hals_dispatch.load_build(isa)
    assert _hals_dispatch.hals_update_rows is mod.hals_update_rows
    assert _hals_dispatch.hals_sweeps is mod.hals_sweeps
    if "FASTNMF_HALS_ISA" not in os.environ:
        wider = {"baseline": ("avx2", "avx512"), "avx2": ("avx512",), "avx512": ()}[isa]
        assert all(_hals_dispatch.load_build(w) is None for w in wider)
    assert _hals_dispatch.load_build("nope") is None


@pytest.mark.parametrize("impl", ALL_IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hals_sweep_empty_input(impl, dtype):
    _, f = impl
    X = np.empty((0, 3), dtype)
    assert f(X, np.empty((0, 3), dtype), np.eye(3, dtype=dtype)) == 0.0


@pytest.mark.parametrize("forced", ["baseline", "avx2"])
def test_dispatch_env_forces_a_narrower_build(forced):
    import subprocess
    import sys
    from pathlib import Path

    import fastnmf
    if _hals_dispatch.load_build(forced) is None:
        pytest.skip(f"this CPU has no {forced} build")
    env = dict(os.environ, FASTNMF_HALS_ISA=forced)
    # Run where the imported package lives: from a checkout, 'python -c' would
    # import the source tree, which has no compiled extension (see test_demo).
    pkg_parent = str(Path(fastnmf.__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-c",
         "import fastnmf._hals_dispatch as d; "
         "assert d.hals_update_rows is d.load_build(d.HALS_ISA).hals_update_rows; "
         "print(d.HALS_ISA)"],
        env=env, capture_output=True, text=True, timeout=120, cwd=pkg_parent,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == forced


# --------------------------------------------------------------------------
# Extrapolation kernel and the Cython multi-sweep loop
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_extrapolate(rng, dtype, order, beta):
    N = _pos(rng, (23, 4), dtype, order)
    O = _pos(rng, (23, 4), dtype, order)
    expected = np.maximum(0.0, ref.f64(N) + beta * (ref.f64(N) - ref.f64(O)))
    N0 = N.copy()
    H = O                                   # overwritten in place
    K.extrapolate_(H, N, beta)
    np.testing.assert_array_equal(N, N0)
    assert_close(H, expected, dtype)
    assert (H >= 0).all()
    if beta == 1.0:
        assert (expected == 0).any()  # the projection was exercised




def _ref_sweeps(X, C, G, max_sweeps, inner_tol):
    """Gillis-Glineur inner loop: stop once a sweep's squared change is
    <= inner_tol times the first sweep's."""
    if max_sweeps < 1:
        return ref.f64(X), 0
    X, first = ref.hals_sweep(X, C, G)
    done = 1
    while done < max_sweeps:
        X, delta = ref.hals_sweep(X, C, G)
        done += 1
        if delta <= inner_tol * first:
            break
    return X, done


@pytest.mark.parametrize("mod", _sweeps_modules(), ids=lambda m: m.__name__.rsplit(".", 1)[1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_sweeps,inner_tol", [(0, 0.1), (1, 0.1), (5, 0.0), (50, 0.1),
                                                  (50, 0.5)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_hals_sweeps_loop(rng, mod, dtype, max_sweeps, inner_tol, n_threads):
    X, C, G = _hals_problem(rng, 100, 4, np.float64)
    X, C, G = X.astype(dtype), C.astype(dtype), G.astype(dtype)
    X0 = X.copy()
    exp_X, exp_done = _ref_sweeps(X, C, G, max_sweeps, inner_tol)
    done = mod.hals_sweeps(X, C, G, max_sweeps, inner_tol, n_threads)
    if dtype == np.float64 or max_sweeps <= 5 or inner_tol == 0:
        assert done == exp_done
    else:
        # A float32 sweep's change can land on the other side of the
        # threshold: allow one sweep of difference, then compare X with
        # exactly that many reference sweeps.
        assert abs(done - exp_done) <= 1
        exp_X, _ = _ref_sweeps(X0, C, G, done, 0.0)
    assert 1 < exp_done < max_sweeps or max_sweeps <= 5  # the stopping rule was exercised
    assert_close(X, exp_X, dtype)
    if max_sweeps == 0:
        assert done == 0
        np.testing.assert_array_equal(X, X0)


@pytest.mark.parametrize("mod", _sweeps_modules(), ids=lambda m: m.__name__.rsplit(".", 1)[1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,k", [(1797, 10), (70, 3), (9000, 10)])  # 9000 x 10: too big to
@pytest.mark.parametrize("n_threads", [1, 2])                       # stay transposed
@pytest.mark.parametrize("inner_tol", [0.0, 0.2])
def test_hals_sweeps_equal_repeated_single_sweeps_bitwise(rng, mod, dtype, p, k, n_threads,
                                                         inner_tol):
    """hals_sweeps keeps small matrices transposed across its sweeps; that
    must be the same arithmetic as one hals_update_rows call per sweep
    (partial last tile, both builds and dtypes, with and without early stop)."""
    X, C, G = _hals_problem(rng, p, k, np.float64)
    X, C, G = X.astype(dtype), C.astype(dtype), G.astype(dtype)
    Y = X.copy()
    done = mod.hals_sweeps(X, C, G, 6, inner_tol, n_threads)
    first = None
    for i in range(done):
        delta = mod.hals_update_rows(Y, C, G, n_threads)
        first = delta if first is None else first
    assert done == 6 or delta <= inner_tol * first
    np.testing.assert_array_equal(X, Y)


@pytest.mark.parametrize("mod", _sweeps_modules(), ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_hals_sweeps_column_slice_and_dead_component(rng, mod):
    Xf, Cf, Gf = _hals_problem(rng, 90, 5, np.float64, dead=1)
    X, C, G = Xf[:, :4], Cf[:, :4], Gf[:4, :4]
    dead_before, last_before = Xf[:, 1].copy(), Xf[:, 4].copy()
    exp_X, exp_done = _ref_sweeps(X, C, G, 7, 0.0)
    done = mod.hals_sweeps(X, C, G, 7, 0.0, 2)
    assert done == exp_done == 7
    assert_close(Xf[:, :4], exp_X, np.float64)
    np.testing.assert_array_equal(Xf[:, 1], dead_before)
    np.testing.assert_array_equal(Xf[:, 4], last_before)
    with pytest.raises(ValueError, match="unit stride"):
        mod.hals_sweeps(np.asfortranarray(Xf), Cf, Gf, 2, 0.1, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mu_semi_update_zero_entry_with_huge_ratio_stays_zero(dtype):
    """X = 0 where C > 0 and X @ G+ = X @ G- = 0: the ratio is C / eps (huge),
    and the update must give 0 * sqrt(huge) = 0, not NaN. Fast-math 'arcp'
    once compiled this to 0 * inf (found by a hypothesis test on semi_nmf)."""
    from fastnmf import _kernels as K
    X = np.array([[0.0, 1.0], [0.5, 0.0]], dtype=dtype)
    C = np.array([[2.1561627561812475, -1.0], [0.3, 4.0]], dtype=dtype)
    DP = np.zeros_like(X)
    DM = np.zeros_like(X)
    eps = float(np.finfo(dtype).eps)
    expected = X * np.sqrt((np.maximum(C, 0) + DM) / (np.maximum(-C, 0) + DP + eps))
    K.mu_semi_update_(X, C, DP, DM, eps)
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X, expected, rtol=1e-6)


# --------------------------------------------------------------------------
# The validation scan
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 301, 70001])   # serial / parallel path
@pytest.mark.parametrize("poke", [None, "nan", "inf", "-inf", "negative", "-0", "tiny"])
def test_scan_values_matches_numpy(rng, dtype, n, poke):
    x = rng.random(n).astype(dtype)
    if poke is not None and n:
        i = int(rng.integers(n))
        x[i] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "negative": -0.25, "-0": -0.0,
                "tiny": -np.finfo(dtype).smallest_subnormal}[poke]
    finite, negative, amax = K.scan_values(x)
    assert finite == bool(np.isfinite(x).all())
    if finite:
        assert negative == bool(n and x.min() < 0)
