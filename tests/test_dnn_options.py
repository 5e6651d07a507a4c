"""Trainer options margin_targets, batch_size and weight_prox (against the
plain-NumPy reference of tests/_dnn_reference.py), their estimator
parameters (validation, determinism, checkpoint/resume), and fastnmf.nnls's
proximal term with the MU solver."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import _dnn_reference as ref
from conftest import DAMPED, DTYPES

import fastnmf
from fastnmf.datasets import load_digits
from fastnmf_dnn import NMFNetClassifier, NMFNetRegressor, PRESETS, TrainOptions, Trainer
from fastnmf_dnn.network import init_random

N = 40


# Tolerances of tests/test_dnn_trainer.py (measured there; the measured
# worst cases of the tests below are given next to each). float64: only
# summation order differs; the z_prox = 0 "paper" set inverts a rank-
# deficient Gram matrix, where ridge_inverse's sqrt(eps) shift amplifies
# rounding to O(sqrt(eps)).
RTOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-3}
RTOL_SINGULAR_F64 = 1e-6


def make_problem(sizes, dtype, seed, n=N):
    """Inputs in [0, 1], one-hot targets, He-scaled weights with small biases
    (as in tests/test_dnn_trainer.py)."""
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


def tolerance(sizes, opts, dtype):
    if np.dtype(dtype) == np.float64 and opts.z_prox == 0 and any(
            sizes[i - 1] > sizes[i] for i in range(2, len(sizes) - 1)):
        return RTOL_SINGULAR_F64
    return RTOL[np.dtype(dtype)]


def trainer_state(tr):
    """The trainer's weights and targets (column form, float64) in the
    ORIGINAL sample order (its buffers are in the order of ``tr.perm``)."""
    W = [w.astype(np.float64) for w in tr.W]
    Z = [h.T.astype(np.float64) for h in tr.H]
    if tr.perm is not None:
        inv = np.argsort(tr.perm)
        Z = [z[:, inv] for z in Z]
    return W, Z


def trainer_for(opts, sizes, dtype, seed):
    """A Trainer on make_problem's data (zero intercepts without bias), its
    data and the comparison tolerance."""
    X, Y, net = make_problem(list(sizes), dtype, seed=seed)
    if not opts.bias:
        net.intercepts = [np.zeros_like(b) for b in net.intercepts]
    return Trainer(X, Y, net, opts), X, Y, tolerance(sizes, opts, dtype)


def assert_matches(tr, got, W, Zt, Zf, out, tol, what):
    """Trainer after a sweep (weights, returned output, hidden buffers) vs
    the reference's result, everything in the original sample order."""
    for i, (w, w_ref) in enumerate(zip(tr.W, W)):
        assert rel_diff(w, w_ref) <= tol, f"{what}, W[{i}]: {rel_diff(w, w_ref):.3g}"
    assert rel_diff(got.T, out) <= tol, f"{what}, output: {rel_diff(got.T, out):.3g}"
    _, Z = trainer_state(tr)
    targets = Zf if tr.options.refresh_targets else Zt
    for i in range(1, len(Z)):
        assert rel_diff(Z[i], targets[i]) <= tol, f"{what}, H[{i}]: {rel_diff(Z[i], targets[i])}"


# ---------------------------------------------------------------------------
# margin_targets
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [(12, 7, 5, 3), (12, 6, 3)], ids=["12-7-5-3", "12-6-3"])
@pytest.mark.parametrize("z_solver", ["hals", "mu", "pgn"])
@pytest.mark.parametrize("bias", [True, False])
def test_margin_sweep_matches_reference_on_margin_targets(bias, z_solver, sizes, dtype):
    """A full-batch sweep with margin_targets=True is the reference sweep
    fitted to the margin targets of the current forward output. Measured
    worst (3 sweeps x 16 cases): 2.3e-15 (float64), 3.1e-6 (float32)."""
    opts = DAMPED.replace(bias=bias, z_solver=z_solver, margin_targets=True)
    tr, X, Y, tol = trainer_for(opts, sizes, dtype, seed=12 + len(sizes))
    for s in range(3):
        W0, Z0 = trainer_state(tr)
        _, out0 = ref.forward(W0, X.astype(np.float64), bias)
        T = ref.margin_targets(Y, out0.T)
        assert (T != Y).any(), "pick a problem where some output is beyond its target"
        W, Zt, Zf, out = ref.sweep(W0, Z0, X, T, vars(opts), dtype)
        got = tr.sweep()
        assert got.dtype == dtype
        assert_matches(tr, got, W, Zt, Zf, out, tol, f"sweep {s}")
        # the comparison can fail: the reference fitted to Y itself differs
        W_plain, _, _, _ = ref.sweep(W0, Z0, X, Y, vars(opts), dtype)
        assert rel_diff(tr.W[-1], W_plain[-1]) > 10 * tol


def test_paper_preset_has_no_margin_targets():
    assert PRESETS["paper"].margin_targets is False
    assert NMFNetClassifier(preset="paper").training_options().margin_targets is False


def test_paper_preset_is_full_batch():
    assert PRESETS["paper"].batch_size is None


def _margin_net(dtype, last_bias):
    """4-5-3 net whose outputs are ~last_bias for every sample (tiny weights)."""
    rng = np.random.default_rng(5)
    net = init_random([4, 5, 3], rng, dtype)
    net.coefs = [0.01 * c for c in net.coefs]
    net.intercepts = [np.full(5, 0.1, dtype), np.asarray(last_bias, dtype)]
    X = rng.uniform(0, 1, (30, 4)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[np.arange(30) % 3]
    return X, Y, net


@pytest.mark.parametrize("dtype", DTYPES)
def test_margin_targets_are_outputs_beyond_the_label(dtype):
    """Outputs of class 0 are ~1.5 (beyond 1 where 0 is the true class),
    of class 1 ~-0.5 (beyond 0 where it is not), of class 2 ~0.3 (never
    beyond): the working targets are those outputs there, Y0 elsewhere."""
    X, Y, net = _margin_net(dtype, [1.5, -0.5, 0.3])
    tr = Trainer(X, Y, net, DAMPED.replace(margin_targets=True))
    for s in range(3):
        out = tr.out.copy()                     # the output the sweep starts from
        tr.sweep()
        beyond = ((Y == 1) & (out > 1)) | ((Y == 0) & (out < 0))
        if s == 0:
            assert beyond[:, 0].sum() == 10 and beyond[:, 1].sum() == 20
            assert not beyond[:, 2].any()
        np.testing.assert_array_equal(tr.Y[beyond], out[beyond])
        np.testing.assert_array_equal(tr.Y[~beyond], Y[~beyond])
        np.testing.assert_array_equal(tr.Y0, Y)   # the labels themselves never change
        assert tr.Y.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_margin_targets_no_op_when_no_output_is_beyond(dtype):
    """Outputs inside (0, 1): the margin targets are the labels, and the
    sweep is bit for bit the one without margin_targets."""
    X, Y, net = _margin_net(dtype, [0.5, 0.4, 0.6])
    a = Trainer(X, Y, net, DAMPED.replace(margin_targets=True))
    b = Trainer(X, Y, net, DAMPED)
    assert ((a.out > 0) & (a.out < 1)).all()
    np.testing.assert_array_equal(a.sweep(), b.sweep())
    np.testing.assert_array_equal(a.Y, Y)
    for u, v in zip(a.W, b.W):
        np.testing.assert_array_equal(u, v)


def test_margin_targets_deterministic():
    X, Y, net = make_problem([12, 7, 5, 3], np.float32, seed=4)
    runs = []
    for _ in range(2):
        tr = Trainer(X, Y, net, DAMPED.replace(margin_targets=True), seed=2)
        runs.append([tr.sweep().copy() for _ in range(3)] + [w.copy() for w in tr.W])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 5))
    return X, (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.7)


def test_margin_targets_estimator_parameter():
    X, y = _data()
    with pytest.raises(ValueError, match="margin_targets"):
        NMFNetRegressor(margin_targets=True, max_iter=1).fit(X, y.astype(float))
    r = NMFNetRegressor(hidden_layer_sizes=(4,), max_iter=1).fit(X, y.astype(float))
    assert r.training_options_.margin_targets is False
    r = NMFNetRegressor(hidden_layer_sizes=(4,), max_iter=1, margin_targets=False).fit(X, y)
    assert r.training_options_.margin_targets is False
    for Est in (NMFNetClassifier, NMFNetRegressor):
        for bad in (1, "yes", 0.0):
            with pytest.raises(TypeError, match="margin_targets"):
                Est(margin_targets=bad, max_iter=1).fit(X, y)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, margin_targets=True,
              n_iter_no_change=50)
    a = NMFNetClassifier(**kw).fit(X, y)
    assert a.training_options_ == PRESETS["default"].replace(margin_targets=True)
    b = NMFNetClassifier(**kw).fit(X, y)
    assert all(np.array_equal(u, v) for u, v in zip(a.coefs_ + a.intercepts_,
                                                   b.coefs_ + b.intercepts_))
    assert a.loss_curve_ == b.loss_curve_
    c = NMFNetClassifier(**dict(kw, margin_targets=False)).fit(X, y)
    assert a.loss_curve_ != c.loss_curve_


# ---------------------------------------------------------------------------
# batch_size, weight_prox: mini-batch sweeps
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B", [N, N + 7, 10**9])
def test_batch_size_at_least_n_is_the_full_batch_sweep(B, dtype):
    """No shuffle, one block, no weight damping (weight_prox is ignored)."""
    X, Y, net = make_problem([12, 7, 5, 3], dtype, seed=1)
    full = Trainer(X, Y, net, DAMPED)
    mb = Trainer(X, Y, net, DAMPED.replace(batch_size=B, weight_prox=5.0), seed=3)
    assert mb.perm is None and mb.blocks == [slice(0, N)]
    for _ in range(3):
        np.testing.assert_array_equal(mb.sweep(), full.sweep())
    for u, v in zip(mb.W, full.W):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(mb.H, full.H):
        np.testing.assert_array_equal(u, v)


#: option sets of the mini-batch comparison (on top of DAMPED).
MINIBATCH_SETS = {
    "damped": {},
    "default": {**vars(TrainOptions()), "weight_prox": 1.0},
    "no-bias": {"bias": False},
    "carry-targets": {"refresh_targets": False},
    "z-mu": {"z_solver": "mu", "z_iter": 3},
    "z-pgn": {"z_solver": "pgn", "z_iter": 2},
    "margin": {"margin_targets": True},
    "carry-margin-no-bias": {"margin_targets": True, "refresh_targets": False, "bias": False},
    "strong-prox": {"weight_prox": 5.0, "alpha": 1e-2},
    "no-prox": {"weight_prox": 0.0},
    "bottom-up": {"bottom_up": True},
    "bottom-up-no-bias-mu": {"bottom_up": True, "bias": False, "z_solver": "mu"},
    "paper-bias": {**vars(PRESETS["paper"]), "bias": True, "z_solver": "hals",
                   "weight_prox": 1.0},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [(12, 7, 5, 3), (12, 6, 3)], ids=["12-7-5-3", "12-6-3"])
@pytest.mark.parametrize("B", [13, 16])
@pytest.mark.parametrize("name", list(MINIBATCH_SETS))
def test_minibatch_sweep_matches_reference(name, B, sizes, dtype):
    """Each block (a slice of the once-shuffled samples, in the order
    ``default_rng([seed, sweep]).permutation(n_blocks)``): forward pass of
    the block, the reference sweep on it with ``mu = weight_prox * b``; then
    a full forward pass. B = 13: blocks 13, 13, 13 and a single sample.

    Measured worst over 4 seeds x 3 sweeps: float64 7e-15, except "no-prox"
    (a 1-sample block's Gram gets ridge_inverse's shift: 1.2e-11) and
    "paper-bias" 12-7-5-3 (z_prox = 0: 1.0e-8, the singular V-step of
    test_dnn_trainer.py); float32 2e-6, except "paper-bias" 1e-4 and
    "no-prox" with B = 13 (3.0e-3, asserted at 1e-2; 3.3e-4 with B = 16)."""
    opts = DAMPED.replace(**MINIBATCH_SETS[name]).replace(batch_size=B)
    X, Y, net = make_problem(list(sizes), dtype, seed=B + len(name))
    if not opts.bias:
        net.intercepts = [np.zeros_like(b) for b in net.intercepts]
    seed = 17 + B
    tr = Trainer(X, Y, net, opts, seed=seed)
    n_blocks = -(-N // B)
    assert len(tr.blocks) == n_blocks > 1 and sorted(tr.perm) == list(range(N))
    tol = tolerance(sizes, opts, dtype)
    if name == "no-prox":
        tol = RTOL_SINGULAR_F64 if np.dtype(dtype) == np.float64 else 1e-2 if B == 13 else tol
    orders = set()
    for s in range(3):
        W0, Z0 = trainer_state(tr)
        order = np.random.default_rng([seed, s]).permutation(n_blocks)
        orders.add(tuple(order))
        blocks = [tr.perm[tr.blocks[j]] for j in order]   # original sample indices
        W, Zt, Zf, out = ref.minibatch_sweep(W0, Z0, X, Y, vars(opts), dtype, blocks)
        got = tr.sweep()
        assert tr.n_sweeps == s + 1
        assert got.dtype == dtype
        assert_matches(tr, got, W, Zt, Zf, out, tol, f"sweep {s}")
    assert len(orders) > 1, "the block order is drawn anew every sweep"
    if name == "damped" and np.dtype(dtype) == np.float64:
        # the comparison can fail: the reverse block order, no damping, or
        # the full-batch sweep give other weights
        tr = Trainer(X, Y, net, opts, seed=seed)
        W0, Z0 = trainer_state(tr)
        tr.sweep()
        order = np.random.default_rng([seed, 0]).permutation(n_blocks)
        blocks = [tr.perm[tr.blocks[j]] for j in order]
        others = {
            "reversed": ref.minibatch_sweep(W0, Z0, X, Y, vars(opts), dtype, blocks[::-1]),
            "undamped": ref.minibatch_sweep(W0, Z0, X, Y, {**vars(opts), "weight_prox": 0.0},
                                            dtype, blocks),
            "full-batch": ref.sweep(W0, Z0, X, Y, vars(opts), dtype),
        }
        for what, (W, _, _, _) in others.items():
            assert max(rel_diff(w, r) for w, r in zip(tr.W, W)) > 1e-6, what


@pytest.mark.parametrize("refresh_targets", [True, False])
def test_minibatch_output_in_original_order(refresh_targets):
    """sweep() (and output()) return the network's output on X in the order
    X was given, although the buffers are in the shuffled order."""
    X, Y, net = make_problem([12, 7, 5, 3], np.float64, seed=6)
    tr = Trainer(X, Y, net, DAMPED.replace(batch_size=12, refresh_targets=refresh_targets),
                 seed=1)
    assert not np.array_equal(tr.perm, np.arange(N))
    np.testing.assert_allclose(tr.output(), net.forward(X), rtol=1e-12, atol=1e-12)
    for _ in range(2):
        got = tr.sweep()
        want = tr.network().forward(X)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        assert not np.allclose(tr.out, want)              # the buffer is shuffled
        np.testing.assert_allclose(tr.out, want[tr.perm], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(tr.Y0, Y[tr.perm])
        np.testing.assert_array_equal(tr.H[0][:, :12], X[tr.perm])


def test_minibatch_deterministic_per_seed():
    X, Y, net = make_problem([12, 7, 5, 3], np.float32, seed=8)
    opts = DAMPED.replace(batch_size=10)

    def run(seed):
        tr = Trainer(X, Y, net, opts, seed=seed)
        outs = [tr.sweep().copy() for _ in range(3)]
        return tr, outs

    a, out_a = run(3)
    b, out_b = run(3)
    np.testing.assert_array_equal(a.perm, b.perm)
    for u, v in zip(out_a + a.W, out_b + b.W):
        np.testing.assert_array_equal(u, v)
    c, out_c = run(4)
    assert not np.array_equal(a.perm, c.perm)
    assert not np.allclose(out_a[-1], out_c[-1])
    assert not all(np.allclose(u, v) for u, v in zip(a.W, c.W))
    # seed=0 is the default
    d, out_d = run(0)
    e = Trainer(X, Y, net, opts)
    np.testing.assert_array_equal(d.perm, e.perm)
    for u in out_d:
        np.testing.assert_array_equal(u, e.sweep())


def test_minibatch_record_errors_changes_nothing():
    """record_errors=True records every block's steps (in the block order)
    and leaves the sweep bit for bit as it is."""
    X, Y, net = make_problem([12, 7, 5, 3], np.float64, seed=2)
    opts = DAMPED.replace(batch_size=15, margin_targets=True)
    a, b = Trainer(X, Y, net, opts, seed=5), Trainer(X, Y, net, opts, seed=5)
    for _ in range(2):
        a.block_errors.clear()
        np.testing.assert_array_equal(a.sweep(record_errors=True), b.sweep())
        per_block = [(3, "U"), (3, "V"), (2, "U"), (2, "V"), (1, "U")]
        assert [(layer, st) for layer, st, _, _ in a.block_errors] == per_block * 3
        assert all(np.isfinite(e0) and np.isfinite(e1) for _, _, e0, e1 in a.block_errors)
    for u, v in zip(a.W, b.W):
        np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------------------
# Estimator parameters batch_size / weight_prox
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    idx = np.random.default_rng(0).choice(X.shape[0], 240, replace=False)
    return X[idx] / 16.0, y[idx]


def same_fit(a, b):
    assert a.n_iter_ == b.n_iter_
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)
    assert a.history_["loss"] == b.history_["loss"]
    assert a.history_["train_score"] == b.history_["train_score"]
    assert a.history_["validation_score"] == b.history_["validation_score"]
    assert a.best_validation_score_ == b.best_validation_score_


def test_estimator_trainer_seed_is_the_split_seed(digits):
    """The estimator's sweeps are the Trainer's with seed = the stored split
    seed (drawn first from random_state, before the initial weights)."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(12, 8), max_iter=3, random_state=7, batch_size=64,
              weight_prox=0.5, n_iter_no_change=50)
    est = NMFNetClassifier(**kw).fit(X, y)
    assert est.training_options_ == PRESETS["default"].replace(batch_size=64, weight_prox=0.5)
    rng = np.random.default_rng(7)
    seed = int(rng.integers(2**31 - 1))
    assert est._split_seed == seed
    Xf = X.astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[y]
    tr = Trainer(Xf, Y, init_random([64, 12, 8, 10], rng, np.float32), est.training_options_,
                 seed=seed)
    losses = []
    for _ in range(3):
        tr.sweep()
        losses.append(tr.fit_loss())
    assert losses == est.loss_curve_
    for u, v in zip(tr.network().coefs + tr.network().intercepts, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(u, v)


def test_estimator_batch_size_full_and_large(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0, n_iter_no_change=50)
    base = NMFNetClassifier(**kw).fit(X, y)
    assert base.training_options_.batch_size is None
    for B in ("full", len(y), np.int64(10**6)):
        m = NMFNetClassifier(batch_size=B, weight_prox=3.0, **kw).fit(X, y)
        same_fit(base, m)
    m = NMFNetClassifier(batch_size=np.int64(50), **kw).fit(X, y)
    assert m.training_options_.batch_size == 50 and type(m.training_options_.batch_size) is int
    assert m.loss_curve_ != base.loss_curve_
    r = NMFNetRegressor(batch_size=50, **kw).fit(X, y / 9.0)
    assert r.training_options_.batch_size == 50 and r.score(X, y / 9.0) > 0


def test_bad_option_also_raises_from_training_options():
    """Bad values of the new options (tests/test_dnn_estimators.py's
    BAD_PARAMS checks fit) raise from training_options() too, before any
    data is seen."""
    for name, value, exc in [("batch_size", 0, ValueError), ("batch_size", "abc", TypeError),
                             ("weight_prox", np.nan, ValueError),
                             ("margin_targets", "yes", TypeError)]:
        for Est in (NMFNetClassifier, NMFNetRegressor):
            with pytest.raises(exc, match=name):
                Est(**{name: value}).training_options()
    with pytest.raises(ValueError, match="margin_targets"):
        NMFNetRegressor(margin_targets=True).training_options()


def test_new_options_survive_save_and_load(tmp_path, digits):
    from fastnmf_dnn import load_model
    X, y = digits
    est = NMFNetClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0, batch_size=100,
                           weight_prox=0.25, margin_targets=True).fit(X, y)
    est.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_params() == est.get_params()
    assert loaded.training_options_ == est.training_options_ == PRESETS["default"].replace(
        batch_size=100, weight_prox=0.25, margin_targets=True)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    full = NMFNetClassifier(hidden_layer_sizes=(8,), max_iter=1, batch_size="full").fit(X, y)
    full.save(tmp_path / "f.npz")
    assert load_model(tmp_path / "f.npz").batch_size == "full"


class Killed(Exception):
    pass


def kill_after(k, copy_to=None, path=None):
    """Callback: stop the run after sweep k (its checkpoint is written by
    then); or, with copy_to, keep a copy of the checkpoint of sweep k."""
    def cb(est, it, record):
        if it == k:
            if copy_to is None:
                raise Killed(k)
            shutil.copy(path, copy_to)
    return cb


CKPT = dict(hidden_layer_sizes=(12, 8), max_iter=6, batch_size=64, n_iter_no_change=50)


@pytest.mark.parametrize("extra", [{"refresh_targets": False},
                                   {"early_stopping": True, "margin_targets": True}],
                         ids=["carry-targets", "early-stopping-margin"])
def test_minibatch_resume_equals_uninterrupted(tmp_path, digits, extra):
    """Shuffle and block order come from the stored split seed and the sweep
    count, so a resumed mini-batch run visits the same blocks."""
    X, y = digits
    kw = dict(CKPT, random_state=0, **extra)
    full = NMFNetClassifier(**kw).fit(X, y)
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        NMFNetClassifier(**kw).fit(X, y, checkpoint=path, callback=kill_after(2))
    seen = []
    resumed = NMFNetClassifier(**kw).fit(X, y, checkpoint=path, resume=True,
                                         callback=lambda e, it, r: seen.append(it))
    assert seen == [3, 4, 5, 6]
    same_fit(full, resumed)


def test_minibatch_resume_without_random_state(tmp_path, digits):
    """random_state=None: the uninterrupted run's checkpoint after sweep 2,
    resumed, ends where that run ended (its split seed, i.e. the trainer's
    seed, is taken from the checkpoint)."""
    X, y = digits
    kw = dict(CKPT, random_state=None, refresh_targets=False)
    path, saved = tmp_path / "run.ckpt", tmp_path / "sweep2.ckpt"
    full = NMFNetClassifier(**kw).fit(X, y, checkpoint=path,
                                      callback=kill_after(2, copy_to=saved, path=path))
    resumed = NMFNetClassifier(**kw).fit(X, y, checkpoint=saved, resume=True)
    assert resumed._split_seed == full._split_seed
    same_fit(full, resumed)


# ---------------------------------------------------------------------------
# fastnmf.nnls: the proximal term with the MU solver
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fixed_ones_row", [False, True])
@pytest.mark.parametrize("gamma", [0.5, 3.0])
def test_nnls_mu_prox_converges_to_hals_prox(gamma, fixed_ones_row):
    """min_{V >= 0} ||A - U V||^2 + gamma ||V - V0||^2 by many MU updates
    reaches the HALS solution of the same problem (well-conditioned U with
    orthonormal columns, scaled; 8 to 38 of the 100 entries at 0).
    Measured max |MU - HALS|: 4e-16 (MU stops once rounding stalls it)."""
    rng = np.random.default_rng(9)
    m, n, k = 12, 25, 4
    U = np.linalg.qr(rng.standard_normal((m, k)))[0] * np.array([2.0, 1.5, 1.2, 1.0])
    V0 = rng.uniform(0.2, 1.0, (k, n))
    if fixed_ones_row:
        V0[-1] = 1
    A = U @ rng.uniform(-1.0, 1.0, (k, n)) + 0.1 * rng.standard_normal((m, n))
    kw = dict(V0=V0, prox=gamma, fixed_ones_row=fixed_ones_row, tol=0.0)
    hals = fastnmf.nnls(A, U, solver="hals", max_iter=500, **kw).V
    mu = fastnmf.nnls(A, U, solver="mu", max_iter=5000, **kw).V
    assert (hals == 0).any(), "the solution should touch the constraint somewhere"
    np.testing.assert_allclose(mu, hals, atol=1e-6)
    # the prox term is really used by MU: without it MU goes elsewhere
    plain = fastnmf.nnls(A, U, V0=V0, solver="mu", max_iter=5000, tol=0.0,
                         fixed_ones_row=fixed_ones_row).V
    assert np.abs(plain - hals).max() > 1e-2
    # and the HALS point is the prox problem's KKT point
    free = slice(0, k - 1) if fixed_ones_row else slice(0, k)
    grad = (U.T @ (U @ hals - A) + gamma * (hals - V0))[free]
    assert grad.min() > -1e-8
    np.testing.assert_allclose(grad[hals[free] > 0], 0, atol=1e-8)


# -- adaptive extrapolation (extrapolate) ------------------------------------

@pytest.mark.parametrize("refit", [True, False])
def test_extrapolation_reject_path_matches_reference(refit):
    """A step whose loss is above the previous sweep's is replaced by the
    plain one and beta halved (forced here with prev_loss = 0)."""
    opts = DAMPED.replace(extrapolate=3.0, refit_output=refit, margin_targets=refit)
    X, Y, net = make_problem([10, 6, 4, 3], np.float64, seed=5)
    tr = Trainer(X, Y, net, opts)
    tr.sweep()
    tr.prev_loss = 0.0
    W0 = [w.copy() for w in tr.W]
    Z0 = [h.T.copy() for h in tr.H]
    T = ref.margin_targets(Y, ref.forward(W0, X, True)[1].T) if refit else Y
    W, _, out, beta, loss = ref.extrapolated_sweep(W0, Z0, X, T, Y, vars(opts), np.float64,
                                                   beta=tr.beta, prev_loss=0.0,
                                                   fit_output=not refit)
    got = tr.sweep()
    assert tr.beta == beta == 3.0 / 2
    assert tr.prev_loss == pytest.approx(loss, rel=1e-10)
    for w, r in zip(tr.W, W):
        np.testing.assert_allclose(w, r, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.T, out, rtol=1e-8, atol=1e-10)


def test_extrapolation_never_raises_the_loss_twice_in_a_row():
    """An extrapolated step (beta > 1) is kept only if it did not raise the
    loss: after every sweep that kept one, the loss is at most the previous
    sweep's. (A plain step, beta = 1, may raise it: the nonlinear blocks
    are not descent steps.) beta stays in [1, cap]."""
    X, Y, net = make_problem([10, 8, 6, 3], np.float64, seed=1, n=120)
    tr = Trainer(X, Y, net, PRESETS["default"])
    kept = 0
    for _ in range(12):
        b, prev = tr.beta, tr.prev_loss
        tr.sweep()
        assert 1.0 <= tr.beta <= PRESETS["default"].extrapolate
        if prev is not None and b > 1 and tr.beta >= b:   # the extrapolated step was kept
            kept += 1
            assert tr.prev_loss <= prev
    assert kept > 0


def test_extrapolate_off_is_the_plain_sweep():
    X, Y, net = make_problem([10, 6, 3], np.float64, seed=2)
    a = Trainer(X, Y, net, DAMPED.replace(extrapolate=1.0))
    b = Trainer(X, Y, net, DAMPED)
    for _ in range(2):
        np.testing.assert_array_equal(a.sweep(), b.sweep())
    assert PRESETS["paper"].extrapolate == 1.0 and PRESETS["default"].extrapolate == 8.0


def test_extrapolation_stays_off_once_rejections_reach_the_plain_step():
    """A rejection halves beta; once that reaches 1 the run stays on plain
    sweeps (no more tries at 1.2, each of which cost a second forward pass
    and refit for the same plain iterate), and a plain sweep is what an
    extrapolate=1 trainer does from the same state."""
    X, Y, net = make_problem([10, 6, 3], np.float64, seed=2)
    opts = DAMPED.replace(extrapolate=8.0)
    tr = Trainer(X, Y, net, opts)
    tr.sweep()
    tr.beta, tr.prev_loss = 1.5, 0.0          # the next step must be rejected
    tr.sweep()
    assert tr.last_sweep_rejected and tr.beta == 1.0
    plain = Trainer(X, Y, tr.network(), opts.replace(extrapolate=1.0))
    plain.resume_at(tr.n_sweeps)
    for _ in range(3):
        np.testing.assert_allclose(tr.sweep(), plain.sweep(), rtol=1e-12, atol=1e-12)
        assert not tr.last_sweep_rejected and tr.beta == 1.0


def test_regressor_keeps_the_smaller_extrapolation_cap():
    """The classifier takes the preset's cap (8); the regressor 4 with the
    default preset (8 overfitted sooner on regression), and any value given."""
    assert NMFNetClassifier().training_options().extrapolate == 8.0
    assert NMFNetRegressor().training_options().extrapolate == 4.0
    assert NMFNetRegressor(extrapolate=8).training_options().extrapolate == 8.0
    assert NMFNetRegressor(preset="paper").training_options().extrapolate == 1.0


@pytest.mark.parametrize("value, exc", [(0.5, ValueError), (float("nan"), ValueError),
                                        ("2", TypeError)])
def test_extrapolate_bad_values(value, exc):
    X, y = load_digits()
    with pytest.raises(exc, match="extrapolate"):
        NMFNetClassifier((5,), extrapolate=value, max_iter=1).fit(X[:50], y[:50])


@pytest.mark.parametrize("name", ["input_ridge", "width_ridge", "input_damping"])
@pytest.mark.parametrize("value, exc", [(-1e-3, ValueError), (float("nan"), ValueError),
                                        (float("inf"), ValueError), ("2", TypeError)])
def test_ridge_options_bad_values(name, value, exc):
    X, y = load_digits()
    with pytest.raises(exc, match=name):
        NMFNetClassifier((5,), max_iter=1, **{name: value}).fit(X[:50], y[:50])


def test_input_ridge_shrinks_only_the_first_layer_and_is_off_in_the_paper_preset():
    """A larger input_ridge gives a smaller first-layer weight (same start,
    one sweep, no extrapolation); 0 is the unpenalised fit."""
    assert PRESETS["paper"].input_ridge == 0.0
    X, y = load_digits()
    X, y = X[:300], y[:300]
    norms = []
    for r in (0.0, 1e-3, 1e-2, 1e-1):
        clf = NMFNetClassifier((12, 8), input_ridge=r, max_iter=1, random_state=0,
                               extrapolate=1.0, dtype=np.float64).fit(X, y)
        assert clf.training_options_.input_ridge == r
        norms.append(np.linalg.norm(clf.coefs_[0]))
    assert all(a > b for a, b in zip(norms, norms[1:])), norms
    again = NMFNetClassifier((12, 8), input_ridge=1e-1, max_iter=1, random_state=0,
                             extrapolate=1.0, dtype=np.float64).fit(X, y)
    np.testing.assert_allclose(np.linalg.norm(again.coefs_[0]), norms[-1], rtol=1e-12)


def test_input_damping_shortens_only_the_first_layers_step():
    """input_damping shrinks the first layer's step (one sweep from the
    same start, no extrapolation: the further the damping, the smaller the
    change), leaves the layers above untouched in that sweep (they are
    updated before the first layer, top-down), is deterministic, and is
    off in the paper preset."""
    assert PRESETS["paper"].input_damping == 0.0
    assert PRESETS["default"].input_damping == 0.01
    X, y = load_digits()
    X, y = X[:300], y[:300]
    start = NMFNetClassifier((12, 8), max_iter=0, random_state=0, dtype=np.float64).fit(X, y)
    W1_0 = start.coefs_[0]
    moves, first, upper = [], [], []
    for d in (0.0, 1e-2, 1e-1, 1.0):
        clf = NMFNetClassifier((12, 8), input_damping=d, max_iter=1, random_state=0,
                               extrapolate=1.0, dtype=np.float64).fit(X, y)
        assert clf.training_options_.input_damping == d
        moves.append(np.linalg.norm(clf.coefs_[0] - W1_0))
        first.append(clf.coefs_[0])
        upper.append(clf.coefs_[1])
    assert all(a > b for a, b in zip(moves, moves[1:])), moves
    for W2 in upper[1:]:
        np.testing.assert_array_equal(W2, upper[0])
    again = NMFNetClassifier((12, 8), input_damping=1e-1, max_iter=1, random_state=0,
                             extrapolate=1.0, dtype=np.float64).fit(X, y)
    np.testing.assert_array_equal(again.coefs_[0], first[2])


@pytest.mark.parametrize("value, exc", [(-0.1, ValueError), (1.5, ValueError),
                                        (float("nan"), ValueError), (float("inf"), ValueError),
                                        ("0.5", TypeError), (True, TypeError)])
def test_inactive_step_bad_values(value, exc):
    X, y = load_digits()
    with pytest.raises(exc, match="inactive_step"):
        NMFNetClassifier((5, 4), inactive_step=value, max_iter=1).fit(X[:50], y[:50])


def test_inactive_step_checked_by_the_trainer():
    X, y = load_digits()
    Y = np.eye(10)[y[:50]]
    net = init_random([64, 5, 4, 10], np.random.default_rng(0), np.float64)
    with pytest.raises(ValueError, match=r"inactive_step must be in \[0, 1\], got 2"):
        Trainer(X[:50], Y, net, TrainOptions(inactive_step=2.0))


def _hidden_target_steps(monkeypatch, inactive_step):
    """One sweep of a 64-12-8-10 net; the hidden V-step's start and result."""
    calls = []
    solve = fastnmf.relu_lstsq

    def spy(A, U, V, **kw):
        start = np.array(V, copy=True)
        r = solve(A, U, V, **kw)
        if kw.get("update") == "V":
            calls.append((start, np.array(r.V, copy=True), kw.get("step_at_zero")))
        return r
    monkeypatch.setattr(fastnmf, "relu_lstsq", spy)
    X, y = load_digits()
    NMFNetClassifier((12, 8), inactive_step=inactive_step, max_iter=1, random_state=0,
                     extrapolate=1.0, dtype=np.float64).fit(X[:300], y[:300])
    assert len(calls) == 1
    return calls[0]


def test_inactive_step_scales_the_step_of_inactive_units_only(monkeypatch):
    """The first hidden layer's targets (layer 2's V-step, from the forward
    activations): units inactive there move by inactive_step times the
    published step (0: they stay off), active ones by the full step;
    the default is 0.3, the paper preset's 1."""
    assert PRESETS["paper"].inactive_step == 1.0
    assert PRESETS["default"].inactive_step == 0.3
    start, full, passed = _hidden_target_steps(monkeypatch, 1.0)
    assert passed == 1.0
    off = start[:-1] == 0                  # inactive units (the ones row excluded)
    assert off.mean() > 0.2 and (full[:-1][off] > 0).mean() > 0.2   # the step switches many on
    for f in (0.0, 0.5):
        start_f, got, passed = _hidden_target_steps(monkeypatch, f)
        assert passed == f
        np.testing.assert_array_equal(start_f, start)              # same network, same start
        np.testing.assert_array_equal(got[:-1][~off], full[:-1][~off])
        np.testing.assert_allclose(got[:-1][off], f * full[:-1][off], rtol=1e-12, atol=0)
        assert (got[-1] == 1).all()


def test_relu_lstsq_alpha_damps_without_moving_fixed_points():
    """What input_damping passes to the first layer's solve: relu_lstsq's
    alpha is a damping (an exact fit stays where it is for any alpha),
    unlike l2, a penalty (it moves the same point)."""
    import fastnmf
    rng = np.random.default_rng(3)
    U = rng.standard_normal((6, 4))
    V = rng.uniform(0, 1, (4, 50))
    A = np.maximum(U @ V, 0)
    for alpha in (0.0, 1.0, 100.0):
        r = fastnmf.relu_lstsq(A, U, V, n_iter=3, alpha=alpha)
        np.testing.assert_allclose(r.U, U, atol=1e-12)
    moved = fastnmf.relu_lstsq(A, U, V, n_iter=3, l2=1.0)
    assert np.abs(moved.U - U).max() > 1e-3


def test_width_ridge_is_rel_ridge_over_the_width():
    """width_ridge = w gives the same training as rel_ridge = w * k for a
    network whose every layer input has k columns (bias included); the
    default uses it (and no rel_ridge), the paper preset neither; larger
    values shrink."""
    assert PRESETS["default"].width_ridge == 0.0255 and PRESETS["default"].rel_ridge == 0.0
    assert PRESETS["paper"].width_ridge == 0.0 and PRESETS["paper"].rel_ridge == 0.0
    X, y = load_digits()
    X, y = X[:300, :15], y[:300]         # 15 features + bias = 16 = hidden 15 + bias
    kw = dict(hidden_layer_sizes=(15, 15), max_iter=2, random_state=0, extrapolate=1.0,
              dtype=np.float64)
    a = NMFNetClassifier(rel_ridge=0.0, width_ridge=0.05, **kw).fit(X, y)
    b = NMFNetClassifier(rel_ridge=0.05 * 16, width_ridge=0.0, **kw).fit(X, y)
    assert a.training_options_.width_ridge == 0.05
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
    norms = [np.linalg.norm(NMFNetClassifier(rel_ridge=0.0, width_ridge=w, **kw)
                            .fit(X, y).coefs_[0]) for w in (0.0, 0.5, 5.0)]
    assert norms[0] > norms[1] > norms[2], norms


def test_checkpoint_keeps_the_extrapolation_state(tmp_path):
    X, y = load_digits()
    X, y = X[:300], y[:300]
    kw = dict(hidden_layer_sizes=(12, 8), random_state=0, n_iter_no_change=50)
    once = NMFNetClassifier(max_iter=6, **kw).fit(X, y)
    ck = tmp_path / "ck.npz"
    NMFNetClassifier(max_iter=3, **kw).fit(X, y, checkpoint=ck)
    resumed = NMFNetClassifier(max_iter=6, **kw).fit(X, y, checkpoint=ck, resume=True)
    assert resumed.loss_curve_ == once.loss_curve_
    for u, v in zip(once.coefs_, resumed.coefs_):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("scale", [0.5, 2.0, 10.0])
@pytest.mark.parametrize("opts", [TrainOptions(), TrainOptions(z_solver="hals"),
                                  TrainOptions(margin_targets=False, extrapolate=1.0)],
                         ids=["default", "hals", "plain"])
def test_one_hot_scale_is_the_target_steps_proximal_weight(opts, scale):
    """Target coding under the least-squares loss: for one hidden layer,
    training on s * Y with ``z_prox = g`` is training on Y with
    ``z_prox = g / s**2`` (output layer weights and outputs times s, hidden
    weights equal), from an output layer scaled by s. The output ridge fit
    is linear in Y, the output target step minimises
    ``s^2 (||Y - W Z||^2 + g / s^2 ||Z - Z0||^2)``, margin targets and the
    extrapolation test are scale-free. (With more hidden layers the scale
    moves only the output layer's target step; the hidden layers' V-steps
    keep ``z_prox = g``: README, "Target coding".)"""
    X, Y, net = make_problem((9, 7, 4), np.float64, seed=3)
    g = opts.z_prox
    a = Trainer(X, Y, net, opts.replace(z_prox=g / scale**2))
    net.coefs[-1] = scale * net.coefs[-1]
    net.intercepts[-1] = scale * net.intercepts[-1]
    b = Trainer(X, scale * Y, net, opts)
    for _ in range(4):
        out_a, out_b = a.sweep(), b.sweep()
        np.testing.assert_allclose(out_b, scale * out_a, rtol=1e-7, atol=1e-9 * scale)
        for i in range(len(a.W) - 1):
            np.testing.assert_allclose(b.W[i], a.W[i], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(b.W[-1], scale * a.W[-1], rtol=1e-7, atol=1e-9 * scale)
    assert a.beta == b.beta and a.last_sweep_rejected == b.last_sweep_rejected



# ---------------------------------------------------------------------------
# bottom_up
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [(12, 7, 5, 3), (12, 7, 6, 5, 3)], ids=["2-hidden", "3-hidden"])
@pytest.mark.parametrize("z_solver", ["hals", "mu", "pgn"])
@pytest.mark.parametrize("bias", [True, False])
def test_bottom_up_sweep_matches_reference(bias, z_solver, sizes, dtype):
    """bottom_up=True: every target top-down with the current weights, then
    the weights bottom-up on the updated layers' activations (the
    reference's sweep with ``bottom_up``); it differs from the top-down
    sweep, so the comparison can fail."""
    opts = DAMPED.replace(bias=bias, z_solver=z_solver, bottom_up=True)
    tr, X, Y, tol = trainer_for(opts, sizes, dtype, seed=31 + len(sizes))
    for s in range(3):
        W0, Z0 = trainer_state(tr)
        W, Zt, Zf, out = ref.sweep(W0, Z0, X, Y, vars(opts), dtype)
        got = tr.sweep()
        assert got.dtype == dtype
        assert_matches(tr, got, W, Zt, Zf, out, tol, f"sweep {s}")
        if s == 0 and np.dtype(dtype) == np.float64:
            W_td, _, _, _ = ref.sweep(W0, Z0, X, Y, vars(opts.replace(bottom_up=False)), dtype)
            assert max(rel_diff(w, r) for w, r in zip(tr.W, W_td)) > 1e-6


@pytest.mark.parametrize("extrapolate", [1.0, 3.0])
def test_bottom_up_with_one_hidden_layer_is_the_top_down_sweep(extrapolate):
    """With one hidden layer there is nothing below to update first."""
    X, Y, net = make_problem([12, 7, 3], np.float64, seed=8)
    a = Trainer(X, Y, net, TrainOptions(extrapolate=extrapolate))
    b = Trainer(X, Y, net, TrainOptions(extrapolate=extrapolate, bottom_up=True))
    for _ in range(3):
        np.testing.assert_array_equal(a.sweep(), b.sweep())
    for u, v in zip(a.W, b.W):
        np.testing.assert_array_equal(u, v)


def test_bottom_up_defaults_extrapolated_match_reference():
    """The default options (margin targets, output refit, extrapolation)
    with bottom_up: the reference's extrapolated sweep."""
    opts = TrainOptions(bottom_up=True)
    X, Y, net = make_problem([10, 6, 5, 3], np.float64, seed=6)
    tr = Trainer(X, Y, net, opts)
    for _ in range(3):
        W0 = [w.copy() for w in tr.W]
        Z0 = [h.T.copy() for h in tr.H]
        T = ref.margin_targets(Y, ref.forward(W0, X, True)[1].T)
        W, _, out, beta, loss = ref.extrapolated_sweep(
            W0, Z0, X, T, Y, vars(opts), np.float64, beta=tr.beta, prev_loss=tr.prev_loss,
            fit_output=not tr._output_fresh)
        got = tr.sweep()
        assert tr.beta == beta
        assert tr.prev_loss == pytest.approx(loss, rel=1e-10)
        for w, r in zip(tr.W, W):
            np.testing.assert_allclose(w, r, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(got.T, out, rtol=1e-8, atol=1e-10)


def test_bottom_up_bad_values():
    X, y = load_digits()
    X, y = X[:60], y[:60]
    with pytest.raises(TypeError, match="bottom_up"):
        NMFNetClassifier((5, 4), max_iter=1, bottom_up="yes").fit(X, y)
    with pytest.raises(ValueError, match="bottom_up=True needs refresh_targets"):
        NMFNetClassifier((5, 4), max_iter=1, bottom_up=True, refresh_targets=False).fit(X, y)
    Xs, Ys, net = make_problem([10, 6, 5, 3], np.float64, seed=1)
    with pytest.raises(ValueError, match="bottom_up=True needs refresh_targets"):
        Trainer(Xs, Ys, net, TrainOptions(bottom_up=True, refresh_targets=False))
    assert PRESETS["paper"].bottom_up is False and PRESETS["default"].bottom_up is False


def test_bottom_up_estimator_is_deterministic_and_saves(tmp_path):
    X, y = load_digits()
    X, y = X[:300], y[:300]
    kw = dict(hidden_layer_sizes=(12, 8), max_iter=4, random_state=0, bottom_up=True)
    a = NMFNetClassifier(**kw).fit(X, y)
    b = NMFNetClassifier(**kw).fit(X, y)
    assert a.training_options_.bottom_up is True
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(u, v)
    from fastnmf_dnn import load_model, save_model
    save_model(a, tmp_path / "m.npz")
    c = load_model(tmp_path / "m.npz")
    assert c.training_options_.bottom_up is True and c.bottom_up is True
    np.testing.assert_array_equal(c.predict(X), a.predict(X))
