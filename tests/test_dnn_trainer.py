"""fastnmf_dnn.Trainer: one sweep against a plain-NumPy reference, per-block
monotonicity of the factorization objectives, and the fixed ones column."""
from __future__ import annotations

import numpy as np
import pytest

import _dnn_reference as ref
from conftest import DAMPED, DTYPES

from fastnmf.datasets import load_digits
from fastnmf_dnn import PRESETS, TrainOptions, Trainer
from fastnmf_dnn.network import init_random

N = 40


#: option sets compared with the reference: every TrainOptions field is off
#: DAMPED's value in at least one of them (batch_size and weight_prox in
#: tests/test_dnn_options.py, margin_targets there and here when a preset
#: has it).
OPTION_SETS = {
    "default": TrainOptions(),
    "damped": DAMPED,
    "no-bias": DAMPED.replace(bias=False),
    "carry-targets": DAMPED.replace(refresh_targets=False),
    "carry-no-bias": DAMPED.replace(bias=False, refresh_targets=False),
    "inner3-omega-l1": DAMPED.replace(inner_iter=3, omega=0.7, z_iter=3, l1=0.01, alpha=1e-3,
                                      z_prox=0.5),
    "over-relaxed": DAMPED.replace(omega=1.5, z_iter=5, z_prox=0.03),
    "refit-ridge": DAMPED.replace(refit_output=True, margin_targets=True, ridge=3.0),
    "rel-ridge": DAMPED.replace(rel_ridge=0.05, ridge=1.0, refit_output=True),
    "width-ridge": DAMPED.replace(width_ridge=0.01, rel_ridge=0.02, refit_output=True),
    "paper": PRESETS["paper"],
    "paper-bias-hals": PRESETS["paper"].replace(bias=True, z_solver="hals", z_iter=2),
    "extrapolated": DAMPED.replace(extrapolate=2.5, refit_output=True, margin_targets=True),
    "extrapolated-no-refit": DAMPED.replace(extrapolate=3.0, omega=1.5, z_prox=0.03),
    "input-ridge": DAMPED.replace(input_ridge=0.05),
    "input-damping": DAMPED.replace(input_damping=0.05, input_ridge=0.01),
    "inactive-step": DAMPED.replace(inactive_step=0.3, inner_iter=2, omega=1.5, z_prox=0.03),
    "inactive-step-0": DAMPED.replace(inactive_step=0.0),
    "z-pgn": DAMPED.replace(z_solver="pgn", z_iter=2, z_prox=0.03),
    "z-pgn-no-bias-margin": DAMPED.replace(z_solver="pgn", z_iter=3, bias=False,
                                           margin_targets=True, refit_output=True),
    "input-ridge-extrapolated": DAMPED.replace(input_ridge=0.01, extrapolate=2.5,
                                               refit_output=True, margin_targets=True),
}


def make_problem(sizes, dtype, seed, n=N):
    """Inputs in [0, 1], one-hot targets, He-scaled weights with small biases."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)].astype(dtype)
    net = init_random(sizes, rng, dtype)
    net.intercepts = [rng.normal(0, 0.1, b.shape).astype(dtype) for b in net.intercepts]
    return X, Y, net


def rel_diff(actual, expected):
    """max |actual - expected| relative to max |expected| (float64)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-300))


# float64: the only differences are rounding (summation order of BLAS and of
# the tiled HALS kernel, whose coordinate order 0..k-1 within a row is the
# reference's row order): <= 2e-14 measured over 10 seeds.
# Exception, measured and understood: with z_prox = 0 ("paper" presets) the
# hidden V-step of the 12-7-5-3 net inverts the Gram matrix U^T U (7 x 7) of
# the 5 x 7 middle weight, which has rank 5. fastnmf's ridge_inverse (mirrored
# by the reference) then adds sqrt(eps) * mean(diag): cond ~ 1/sqrt(eps), so
# rounding differences of O(eps) become O(sqrt(eps)) = 1.5e-8 (measured up to
# 1.7e-8 over 10 seeds). That case gets 1e-6; everything else 1e-8.
RTOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-3}
RTOL_SINGULAR_F64 = 1e-6


def fitted_targets(W, X, Y, opts):
    """What the output layer is fitted to: Y, or with margin_targets the
    margin targets of the current forward output (the reference's)."""
    if not opts.margin_targets:
        return Y
    _, out = ref.forward(W, np.asarray(X, dtype=np.float64), opts.bias)
    return ref.margin_targets(Y, out.T)


def has_singular_v_step(sizes, opts):
    """A hidden V-step (layers 2..L-1) with no damping and a wide weight."""
    return opts.z_prox == 0 and any(sizes[i - 1] > sizes[i] for i in range(2, len(sizes) - 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [(12, 7, 5, 3), (12, 6, 3)], ids=["12-7-5-3", "12-6-3"])
@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_sweep_matches_reference(name, sizes, dtype):
    opts = OPTION_SETS[name]
    X, Y, net = make_problem(list(sizes), dtype, seed=len(name))
    tr = Trainer(X, Y, net, opts)
    tol = RTOL[np.dtype(dtype)]
    if np.dtype(dtype) == np.float64 and has_singular_v_step(sizes, opts):
        tol = RTOL_SINGULAR_F64
    for s in range(3):  # each sweep from the trainer's own current state
        W0 = [w.astype(np.float64) for w in tr.W]
        Z0 = [h.T.astype(np.float64) for h in tr.H]
        T = fitted_targets(W0, X, Y, opts)
        fit_output = s == 0 or not (opts.refit_output and opts.refresh_targets and len(sizes) > 2)
        if opts.extrapolate > 1:
            W, Zf, out, beta, loss = ref.extrapolated_sweep(
                W0, Z0, X, T, Y, vars(opts), dtype, beta=tr.beta, prev_loss=tr.prev_loss,
                fit_output=fit_output)
        else:
            W, Zt, Zf, out = ref.sweep(W0, Z0, X, T, vars(opts), dtype, fit_output=fit_output,
                                       Y0=Y)
        got = tr.sweep()
        assert got.dtype == dtype and all(w.dtype == dtype for w in tr.W)
        for i, (w, w_ref) in enumerate(zip(tr.W, W)):
            assert rel_diff(w, w_ref) <= tol, f"sweep {s}, W[{i}]: {rel_diff(w, w_ref):.3g}"
        assert rel_diff(got.T, out) <= tol, f"sweep {s}, output {rel_diff(got.T, out):.3g}"
        if opts.extrapolate > 1:   # the same accept/reject decision, the same loss
            assert tr.beta == pytest.approx(beta) and tr.prev_loss == pytest.approx(loss, rel=tol)
        # hidden buffers: next sweep's targets = forward activations (refresh)
        # or the targets the backward sweep computed (carried over).
        targets = Zf if opts.refresh_targets else Zt
        for i in range(1, len(tr.H)):
            assert rel_diff(tr.H[i].T, targets[i]) <= tol, f"sweep {s}, H[{i}]"
        np.testing.assert_array_equal(tr.H[0][:, : sizes[0]], X)


def test_reference_is_not_trivially_satisfied():
    """The comparison can fail: perturbing one option of the reference (the
    ridge, the V-step damping, the HALS sweep count) breaks the match."""
    X, Y, net = make_problem([12, 7, 5, 3], np.float64, seed=3)
    opts = DAMPED
    tr = Trainer(X, Y, net, opts)
    W0 = [w.copy() for w in tr.W]
    Z0 = [h.T.copy() for h in tr.H]
    tr.sweep()
    for change in ({"alpha": 2e-4}, {"z_prox": 0.5}, {"z_iter": 3}, {"omega": 0.9}):
        W, _, _, _ = ref.sweep(W0, Z0, X, Y, {**vars(opts), **change}, np.float64)
        assert max(rel_diff(w, r) for w, r in zip(tr.W, W)) > 1e-6, change


# ---------------------------------------------------------------------------
# Monotonicity of each block's objective within a sweep.
# ---------------------------------------------------------------------------
def _problems(dtype):
    X, y = load_digits(dtype=np.float64)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        idx = rng.choice(X.shape[0], 200, replace=False)
        yield [64, 16, 12, 10], (X[idx] / 16).astype(dtype), \
            np.eye(10)[y[idx]].astype(dtype), init_random([64, 16, 12, 10], rng, dtype)
        Xs, Ys, net = make_problem([12, 7, 5, 3], dtype, seed)
        yield [12, 7, 5, 3], Xs, Ys, net


def _lin_obj(A, W, V, lam):
    """Ridge LS objective of the output U-step, in float64."""
    A, W, V = (np.asarray(M, dtype=np.float64) for M in (A, W, V))
    return float(np.sum((A - W @ V) ** 2) + lam * np.sum(W ** 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["default", "damped", "no-bias", "carry-targets",
                                  "over-relaxed", "paper", "paper-bias-hals"])
def test_block_objectives_non_increasing(name, dtype):
    """Which blocks are monotone, and why only those are asserted everywhere.

    * Output layer, V-step (HALS with the proximal term, or Ding-Li-Jordan
      MU): each is a descent method for ``||Y - W V||^2 + gamma ||V - V0||^2``
      (l1 = 0 here); the proximal term is 0 at the start, so the recorded
      error cannot increase. Asserted for every option set with those
      solvers. The default since session 16, projected Gauss-Newton
      ("pgn", zeros kept at zero), is not a descent method: measured +12.5%
      in the first sweep of the default set (float64, 12-7-5-3); its
      increase is asserted in the test below, not its decrease.
    * Output layer, U-step: the exact minimiser of the *ridge* objective
      ``||Y - W V||^2 + lam ||W||^2``; the recorded (unregularised) error
      may increase (measured: up to 7.9x its value with carried-over
      targets, where the previous V-step made that error tiny), the ridge
      objective may not. Asserted on the ridge objective, with the ridge
      ``lam`` that fastnmf really uses: alpha N, plus sqrt(eps) mean(diag)
      when the Gram matrix is ill-conditioned for the dtype (ridge_inverse;
      in float32 already at cond > ~2900, so even the alpha = 0 "paper"
      presets are ridge-regularised there: measured +179% of the
      unregularised error in a float32 "paper-bias-hals" U-step).
    * Nonlinear blocks (hidden U- and V-steps, first-layer U-step): the
      fixed-point iteration of method.md section 2 is not a descent method
      (no line search; the V-step is a projected Gauss-Newton step).
      Measured increases of the recorded error: first-layer U-step up to
      +2% ("carry-targets") and +0.8% ("paper"); hidden U-step +1.8%
      ("carry-targets"); hidden V-step up to +34% ("paper", z_prox = 0) and,
      with the current defaults (omega = 1.5, z_prox = 0.03) on a
      64-20-15-10 digits net, up to +129% (f64) / +55% (f32) in 4 of 48
      blocks. With omega = 1 and the damping z_prox = 1 ("damped",
      "no-bias") no increase was measured (closest: -0.35% relative), so
      the nonlinear blocks are asserted for those two sets only.
    """
    # refit_output moves the output U-step behind the forward pass, where it
    # is not a recorded block (the same ridge LS solve); checked without it.
    opts = OPTION_SETS[name].replace(refit_output=False)
    nonlinear_checked = name in ("damped", "no-bias")
    n_checked = 0
    for sizes, X, Y, net in _problems(dtype):
        tr = Trainer(X, Y, net, opts)
        lam = opts.alpha * X.shape[0]
        L = len(sizes) - 1
        for s in range(4):
            W_before = tr.W[L - 1].copy()
            V_before = tr.H[L - 1].T.copy()
            tr.block_errors.clear()
            tr.sweep(record_errors=True)
            steps = [(layer, step) for layer, step, _, _ in tr.block_errors]
            expected = [(L, "U"), (L, "V")] + [
                (i, st) for i in range(L - 1, 0, -1) for st in (("U", "V") if i > 1 else ("U",))]
            assert steps == expected
            for layer, step, before, after in tr.block_errors:
                assert np.isfinite(before) and np.isfinite(after)
                if layer == L and step == "U":
                    V64 = V_before.astype(np.float64)
                    # the ridge the trainer uses: alpha N + ridge + rel_ridge mean(h^2)
                    lam_all = lam + opts.ridge + (opts.rel_ridge / V64.shape[0] + opts.width_ridge) \
                        * float(np.sum(V64 ** 2)) / V64.shape[1]
                    lam_eff = ref.effective_ridge(V64 @ V64.T, lam_all, dtype)
                    # the targets this sweep fitted (Y, or its margin targets)
                    o0 = _lin_obj(tr.Y.T, W_before, V_before, lam_eff)
                    o1 = _lin_obj(tr.Y.T, tr.W[L - 1], V_before, lam_eff)
                    assert o1 <= o0 * (1 + 1e-6), (s, layer, step, o0, o1)
                    if lam_eff == 0:
                        assert after <= before * (1 + 1e-6), (s, layer, step, before, after)
                elif (layer == L and opts.z_solver != "pgn") or nonlinear_checked:
                    assert after <= before * (1 + 1e-6), (s, layer, step, before, after)
                n_checked += 1
    assert n_checked > 0


def test_nonlinear_blocks_are_not_monotone_in_general():
    """Documents why the assertion above is restricted: with the undamped
    hidden V-step (z_prox = 0) some block does increase its error."""
    increased = []
    for sizes, X, Y, net in _problems(np.float64):
        tr = Trainer(X, Y, net, DAMPED.replace(z_prox=0.0))
        for _ in range(6):
            tr.sweep(record_errors=True)
        increased += [(layer, step) for layer, step, e0, e1 in tr.block_errors
                      if e1 > e0 * (1 + 1e-6)]
    assert increased, "expected at least one nonlinear block to increase"
    assert all(layer < len(sizes) - 1 for layer, _ in increased)


def test_pgn_output_target_step_is_not_monotone_in_general():
    """Documents why the output V-step is not asserted monotone with
    z_solver="pgn" (the default): a projected Gauss-Newton step with the
    zeros held is not a descent method, and some step increases its error
    (the sweep's training loss is guarded by the extrapolation's reject
    rule instead). MU on the same problems never does."""
    increased = {"pgn": 0, "mu": 0}
    for solver in increased:
        for sizes, X, Y, net in _problems(np.float64):
            tr = Trainer(X, Y, net, TrainOptions().replace(z_solver=solver, refit_output=False))
            for _ in range(4):
                tr.sweep(record_errors=True)
            L = len(sizes) - 1
            increased[solver] += sum(1 for layer, step, e0, e1 in tr.block_errors
                                     if layer == L and step == "V" and e1 > e0 * (1 + 1e-6))
    assert increased["pgn"] > 0 and increased["mu"] == 0, increased


# ---------------------------------------------------------------------------
# The ones column.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["default", "damped", "carry-targets", "inner3-omega-l1",
                                  "over-relaxed", "paper-bias-hals"])
def test_ones_column_stays_exactly_one(name, dtype):
    opts = OPTION_SETS[name]
    X, Y, net = make_problem([12, 7, 5, 3], dtype, seed=1)
    tr = Trainer(X, Y, net, opts)
    for _ in range(4):
        tr.sweep(record_errors=True)
        for i, H in enumerate(tr.H):
            assert np.all(H[:, -1] == 1), f"ones column of H[{i}] changed"
            assert (H[:, :-1] >= 0).all() or i == 0
        if tr.F is not None:
            for F in tr.F[1:]:
                assert np.all(F[:, -1] == 1)


def test_network_round_trip_and_forward():
    """Trainer.network() / set_network() are exact inverses, and the sweep's
    returned output is the plain forward pass of network()."""
    X, Y, net = make_problem([12, 7, 5, 3], np.float64, seed=2)
    for bias in (True, False):
        if not bias:
            net.intercepts = [np.zeros_like(b) for b in net.intercepts]
        tr = Trainer(X, Y, net, DAMPED.replace(bias=bias))
        out = tr.sweep()
        got = tr.network()
        np.testing.assert_allclose(got.forward(X), out, rtol=1e-12, atol=1e-12)
        W = [w.copy() for w in tr.W]
        tr.set_network(got)
        for a, b in zip(W, tr.W):
            np.testing.assert_array_equal(a, b)
        if not bias:
            assert all(np.all(b == 0) for b in got.intercepts)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["default", "keep-targets", "no-bias"])
def test_parallel_passes_give_the_same_sweeps(monkeypatch, name, dtype):
    """The trainer's ReLU and target copies run as parallel Numba passes on
    large buffers (``_passes.PARALLEL_FROM``) and as serial builds of the
    same loops on small ones: exact operations, so forcing either gives
    bitwise the same training, and the same as NumPy's."""
    from fastnmf_dnn import _passes
    opts = {"default": TrainOptions(), "keep-targets": TrainOptions(refresh_targets=False),
            "no-bias": TrainOptions(bias=False)}[name]
    numpy_passes = {
        "relu_inplace": lambda X: np.maximum(X, 0, out=X),
        "copy_columns": lambda dst, src: np.copyto(dst, src[:, : dst.shape[1]]),
        "relu_copy": lambda dst, src: np.maximum(src, 0, out=dst[:, : src.shape[1]]),
        "margin_targets": lambda Y, out, Y0: np.copyto(
            Y, np.where(Y0 > 0, np.maximum(out, Y0), np.minimum(out, Y0))),
    }
    runs = []
    for mode in ("parallel", "serial", "numpy"):
        monkeypatch.setattr(_passes, "PARALLEL_FROM", 0 if mode == "parallel" else 1 << 62)
        if mode == "numpy":
            for fname, f in numpy_passes.items():
                monkeypatch.setattr(_passes, fname, f)
        X, Y, net = make_problem([12, 7, 5, 3], dtype, seed=3)
        tr = Trainer(X, Y, net, opts)
        for _ in range(3):
            tr.sweep()
        runs.append([w.copy() for w in tr.W] + [h.copy() for h in tr.H] + [tr.out.copy()])
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pass_kernels_against_numpy(dtype):
    from fastnmf_dnn import _passes
    rng = np.random.default_rng(0)
    X = rng.standard_normal((37, 9)).astype(dtype)
    X[3, 4], X[5, 5] = np.nan, -np.inf
    expected = np.maximum(X, 0)
    _passes.relu_(X)
    np.testing.assert_array_equal(X, expected)   # NaN stays NaN, -inf -> 0
    src = rng.standard_normal((37, 9)).astype(dtype)
    dst = np.empty((37, 6), dtype)
    _passes.copy_columns_(dst, src)
    np.testing.assert_array_equal(dst, src[:, :6])
    src[2, 1], src[4, 3] = np.nan, -np.inf
    dst = np.full((37, 10), 7, dtype)
    _passes.relu_copy_(dst, src)
    np.testing.assert_array_equal(dst[:, :9], np.maximum(src, 0))
    assert np.all(dst[:, 9] == 7)       # the ones (bias) column is not touched
    # the output layer's margin targets and the training loss
    out = rng.standard_normal((37, 4)).astype(dtype)
    out[1, 2], out[6, 0] = np.nan, np.inf
    Y0 = np.zeros((37, 4), dtype)
    Y0[np.arange(37), rng.integers(0, 4, 37)] = 1
    want = np.where(Y0 > 0, np.maximum(out, Y0), np.minimum(out, Y0))
    for build in (_passes.margin_targets_, _passes.margin_targets_serial_):
        Y = np.full((37, 4), 5, dtype)
        build(Y, out, Y0)
        np.testing.assert_array_equal(Y, want)      # NaN stays NaN
    out[1, 2], out[6, 0] = 0.25, -3.0
    R = out.astype(np.float64) - Y0
    margin = np.where(Y0 > 0, np.minimum(R, 0), np.maximum(R, 0))
    np.testing.assert_allclose(_passes.sq_loss(out, Y0, True), np.sum(margin ** 2),
                               rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(_passes.sq_loss(out, Y0, False), np.sum(R ** 2),
                               rtol=1e-6 if dtype == np.float32 else 1e-12)
    out[3, 1] = np.nan
    assert np.isnan(_passes.sq_loss(out, Y0, True))  # a NaN output is not hidden


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["default", "bottom-up", "mini-batch", "inner_iter=2",
                                  "rejected"])
def test_kept_pre_activations_give_the_same_sweeps(name, dtype):
    """The U-steps start from the forward pass's kept pre-activations
    (``Trainer.Z``) where they are still the model product: the same
    training, to rounding, as recomputing it, in every sweep order."""
    opts = {"default": TrainOptions(), "bottom-up": TrainOptions(bottom_up=True),
            "mini-batch": TrainOptions(batch_size=15, weight_prox=0.1),
            "inner_iter=2": TrainOptions(inner_iter=2),
            "rejected": TrainOptions(extrapolate=3.0)}[name]
    runs = []
    for keep in (True, False):
        X, Y, net = make_problem([12, 7, 6, 5, 3], dtype, seed=4)
        tr = Trainer(X, Y, net, opts)
        if not keep:
            tr.Z, tr._pre_rows = None, [None] * len(tr._pre_rows)
        for t in range(4):
            if name == "rejected" and t == 2:
                tr.prev_loss, tr.beta = -1.0, 2.0     # this sweep rejects its step
            tr.sweep()
        runs.append(([w.copy() for w in tr.W], tr.out.copy()))
    tol = 2e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(runs[0][0] + [runs[0][1]], runs[1][0] + [runs[1][1]]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("bottom_up", [False, True])
def test_targets_are_read_in_place_without_copies(bottom_up):
    """A hidden layer's target is the view H[i][:, :n_i] (next to the ones
    column) that relu_lstsq reads in place: no N-sized copy buffers exist,
    except with bottom_up, which must keep the targets while H receives
    new activations."""
    X, Y, net = make_problem([12, 7, 6, 3], np.float64, seed=5)
    tr = Trainer(X, Y, net, TrainOptions(bottom_up=bottom_up))
    tr.sweep()
    rows = slice(0, X.shape[0])
    A = tr._target(1, rows)
    assert A.shape == (7, X.shape[0])
    has_copies = any(isinstance(k, tuple) and k[0] == "T" for k in tr.workspace._buffers)
    if bottom_up:
        assert tr.T is not None and has_copies
        assert not np.shares_memory(A, tr.H[1])
    else:
        assert tr.T is None and not has_copies
        assert np.shares_memory(A, tr.H[1]) and A.base is not None
        np.testing.assert_array_equal(A, tr.H[1][:, :7].T)
