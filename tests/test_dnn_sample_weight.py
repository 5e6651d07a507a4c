"""``sample_weight`` in NMFNetClassifier / NMFNetRegressor.fit (and the
Trainer): integer weights train as repeated samples, zero weights as left-out
samples, unit weights as no weights; the weighted scores; checkpoints; bad
weights."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES

from fastnmf.datasets import load_digits
from fastnmf_dnn import NMFNetClassifier, NMFNetRegressor, PRESETS, Trainer
from fastnmf_dnn.network import init_random


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    idx = np.random.default_rng(1).choice(X.shape[0], 240, replace=False)
    return X[idx] / 16.0, y[idx]


def _params(est):
    return list(est.coefs_) + list(est.intercepts_)


def _max_diff(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(_params(a), _params(b)))


def _repeat(w, *arrays):
    return [np.repeat(a, w, axis=0) for a in arrays]


# ---------------------------------------------------------------------------
# What a weight means.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("Est, hidden", [(NMFNetClassifier, (16,)), (NMFNetClassifier, (16, 12)),
                                         (NMFNetRegressor, (16, 12))])
def test_integer_weights_train_as_repeated_samples(digits, Est, hidden):
    """float64: the same weights, loss curve and scores as the samples
    repeated w times (zeros included: left out), to rounding. Two hidden
    layers exercise the hidden target steps on the scaled bias row."""
    X, y = digits
    if Est is NMFNetRegressor:
        y = np.c_[X[:, :8].sum(axis=1), X[:, 20] - X[:, 30]]
    w = np.random.default_rng(0).integers(0, 4, X.shape[0])
    kw = dict(hidden_layer_sizes=hidden, max_iter=8, random_state=0, dtype=np.float64)
    weighted = Est(**kw).fit(X, y, sample_weight=w)
    repeated = Est(**kw).fit(*_repeat(w, X, y))
    assert _max_diff(weighted, repeated) < 1e-9     # measured 4e-13 (one layer)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(weighted.history_["train_score"],
                               repeated.history_["train_score"], rtol=1e-9)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("Est", [NMFNetClassifier, NMFNetRegressor])
def test_integer_weights_float32(digits, Est):
    """float32: the two fits sum in different orders; the rounding stays at
    float32's scale (scikit-learn's own check of this, at rtol 1e-7, runs
    on the float64 instances: tests/test_dnn_sklearn.py)."""
    X, y = digits
    if Est is NMFNetRegressor:
        y = X[:, :8].sum(axis=1)
    w = np.random.default_rng(2).integers(1, 4, X.shape[0])
    kw = dict(hidden_layer_sizes=(16,), max_iter=8, random_state=0, dtype=np.float32)
    weighted = Est(**kw).fit(X, y, sample_weight=w)
    repeated = Est(**kw).fit(*_repeat(w, X, y))
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=2e-3)
    if Est is NMFNetClassifier:
        assert np.mean(weighted.predict(X) == repeated.predict(X)) >= 0.99
    else:
        assert weighted.score(X, y) == pytest.approx(repeated.score(X, y), abs=2e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("extra", [{}, {"pretrain": True, "pretrain_iter": 3},
                                   {"early_stopping": True}, {"batch_size": 100},
                                   {"refresh_targets": False}, {"z_solver": "mu"}])
def test_unit_weights_are_no_weights(digits, dtype, extra):
    """Weights of 1 scale nothing: the same fit bit for bit, for every path
    the weights go through (pre-training, the validation split, mini-batch
    blocks, carried-over targets, the multiplicative target step)."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(12, 10), max_iter=4, random_state=0, dtype=dtype,
              n_iter_no_change=50, **extra)
    plain = NMFNetClassifier(**kw).fit(X, y)
    ones = NMFNetClassifier(**kw).fit(X, y, sample_weight=np.ones(X.shape[0]))
    assert _max_diff(plain, ones) == 0.0
    assert plain.loss_curve_ == ones.loss_curve_
    assert plain.history_["train_score"] == ones.history_["train_score"]
    assert plain.history_["validation_score"] == ones.history_["validation_score"]


def test_scaled_weights_are_more_samples(digits):
    """Weights c w train as the samples repeated c times more: the weight
    decay fades with sum(w) as it does with N (not a rescaling-invariant
    weighted mean)."""
    X, y = digits
    w = np.random.default_rng(3).integers(1, 3, X.shape[0])
    kw = dict(hidden_layer_sizes=(16,), max_iter=6, random_state=0, dtype=np.float64)
    double = NMFNetClassifier(**kw).fit(X, y, sample_weight=2 * w)
    repeated = NMFNetClassifier(**kw).fit(*_repeat(2 * w, X, y))
    assert _max_diff(double, repeated) < 1e-9
    single = NMFNetClassifier(**kw).fit(X, y, sample_weight=w)
    assert _max_diff(double, single) > 1e-6


def test_weights_shift_the_decision_to_the_heavy_class(digits):
    """What a user weights for: errors on a class cost more, so the network
    misses it less often on the training data."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, alpha=1e-2,
              width_ridge=0.5)   # a weak net that has to trade classes off
    plain = NMFNetClassifier(**kw).fit(X, y)
    w = np.where(y == 8, 10.0, 1.0)
    heavy = NMFNetClassifier(**kw).fit(X, y, sample_weight=w)
    recall = [np.mean(est.predict(X)[y == 8] == 8) for est in (plain, heavy)]
    assert recall[1] > recall[0]


def test_weighted_scores_and_loss(digits):
    """``history_`` scores and the loss are weighted means; the validation
    split keeps its samples' weights."""
    X, y = digits
    w = np.random.default_rng(4).uniform(0.2, 3.0, X.shape[0])
    est = NMFNetClassifier((16,), max_iter=3, random_state=0, dtype=np.float64).fit(
        X, y, sample_weight=w)
    assert est.history_["train_score"][-1] == pytest.approx(est.score(X, y, sample_weight=w),
                                                            rel=1e-12)
    out = est._forward(X)
    onehot = (y[:, None] == est.classes_[None, :]).astype(float)
    r = out - onehot      # the squared hinge: no cost on the target's right side
    r = np.where(onehot > 0, np.minimum(r, 0), np.maximum(r, 0))
    loss = 0.5 * np.sum(w[:, None] * r ** 2) / (w.sum() * onehot.shape[1])
    assert est.loss_curve_[-1] == pytest.approx(loss, rel=1e-9)
    Y = np.c_[X[:, :8].sum(axis=1), X[:, 20]]
    reg = NMFNetRegressor((16,), max_iter=3, random_state=0, dtype=np.float64).fit(
        X, Y, sample_weight=w)
    assert reg.history_["train_score"][-1] == pytest.approx(reg.score(X, Y, sample_weight=w),
                                                            rel=1e-10)
    # early stopping: the validation score is the weighted accuracy of its split
    es = NMFNetClassifier((16,), max_iter=3, random_state=0, early_stopping=True,
                          dtype=np.float64)
    w_heavy = np.where(y < 5, 1.0, 1e-6)      # in effect, only the classes 0-4 count
    es.fit(X, y, sample_weight=w_heavy)
    es_plain = NMFNetClassifier(**es.get_params()).fit(X, y)
    assert es.validation_scores_ != es_plain.validation_scores_


def test_resume_with_weights(tmp_path, digits):
    X, y = digits
    w = np.random.default_rng(5).integers(1, 4, X.shape[0]).astype(float)
    kw = dict(hidden_layer_sizes=(12, 8), max_iter=5, random_state=0, n_iter_no_change=50)
    full = NMFNetClassifier(**kw).fit(X, y, sample_weight=w)
    path = tmp_path / "run.ckpt"

    class Killed(Exception):
        pass

    def kill(est, it, record):
        if it == 2:
            raise Killed

    with pytest.raises(Killed):
        NMFNetClassifier(**kw).fit(X, y, sample_weight=w, checkpoint=path, callback=kill)
    with pytest.raises(ValueError, match="other training data"):
        NMFNetClassifier(**kw).fit(X, y, sample_weight=w + 1, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="other training data"):
        NMFNetClassifier(**kw).fit(X, y, checkpoint=path, resume=True)
    resumed = NMFNetClassifier(**kw).fit(X, y, sample_weight=w, checkpoint=path, resume=True)
    assert _max_diff(full, resumed) == 0.0
    assert full.loss_curve_ == resumed.loss_curve_


# ---------------------------------------------------------------------------
# Bad weights.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("Est", [NMFNetClassifier, NMFNetRegressor])
@pytest.mark.parametrize("bad, exc, match", [
    (lambda n: -np.ones(n), ValueError, "sample_weight"),
    (lambda n: np.ones(n + 1), ValueError, "sample_weight"),
    (lambda n: np.ones((n, 2)), ValueError, "ample"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], ValueError, "NaN"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], ValueError, "infinity"),
    (lambda n: np.zeros(n), ValueError, "sample_weight is zero for every sample"),
    (lambda n: ["a"] * n, ValueError, "could not convert|numeric|float"),
    (lambda n: -1.0, ValueError, "sample_weight must be >= 0"),
    (lambda n: 0, ValueError, "sample_weight is zero for every sample"),
])
def test_bad_sample_weight_raises(digits, Est, bad, exc, match):
    X, y = digits
    with pytest.raises(exc, match=match):
        Est((4,), max_iter=1).fit(X, y, sample_weight=bad(X.shape[0]))


@pytest.mark.parametrize("Est", [NMFNetClassifier, NMFNetRegressor])
@pytest.mark.parametrize("extreme", [1e30, 1e-90])
def test_weights_out_of_the_dtypes_range_raise(digits, Est, extreme):
    """float32: weights whose square roots overflow the products (1e30) or
    fall below float32's normal numbers (1e-90) are refused, naming
    sample_weight, not turned into Inf/NaN or subnormal scales."""
    X, y = digits
    w = np.ones(X.shape[0])
    w[0] = extreme
    for method in ("fit", "partial_fit"):
        est = Est((4,), max_iter=1)
        kw = {"classes": np.arange(10)} if (method == "partial_fit"
                                            and Est is NMFNetClassifier) else {}
        with pytest.raises(ValueError, match="sample_weight"):
            getattr(est, method)(X, y, sample_weight=w, **kw)


def test_scalar_weight_is_every_samples_weight(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    a = NMFNetClassifier(**kw).fit(X, y, sample_weight=2.0)
    b = NMFNetClassifier(**kw).fit(X, y, sample_weight=np.full(X.shape[0], 2.0))
    assert _max_diff(a, b) == 0.0


def test_weights_zero_on_the_whole_training_split(digits):
    X, y = digits
    est = NMFNetClassifier((4,), max_iter=1, early_stopping=True, random_state=0)
    w = np.zeros(X.shape[0])
    w[0] = 1.0    # one weighted sample, which the split may hold out
    for first in range(X.shape[0]):
        w[:] = 0
        w[first] = 1.0
        try:
            est.fit(X, y, sample_weight=w)
        except ValueError as exc:
            assert "every training sample has weight 0" in str(exc)
            return
    pytest.fail("no single sample went to the validation split")


@pytest.mark.parametrize("bad", [np.zeros(5), -np.ones(5), np.ones(4),
                                 np.r_[np.nan, np.ones(4)]])
def test_trainer_rejects_bad_weights(bad):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (5, 3))
    Y = np.eye(2)[rng.integers(0, 2, 5)]
    net = init_random([3, 4, 2], rng, np.float64)
    with pytest.raises(ValueError, match="sample_weight"):
        Trainer(X, Y, net, PRESETS["default"], sample_weight=bad)


def test_trainer_leaves_its_inputs_alone():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (30, 3))
    Y = np.eye(2)[rng.integers(0, 2, 30)]
    w = rng.uniform(0.5, 2.0, 30)
    copies = [a.copy() for a in (X, Y, w)]
    net = init_random([3, 4, 2], rng, np.float64)
    t = Trainer(X, Y, net, PRESETS["default"], sample_weight=w)
    t.sweep()
    for a, c in zip((X, Y, w), copies):
        np.testing.assert_array_equal(a, c)
