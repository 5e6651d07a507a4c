"""``partial_fit`` of NMFNetClassifier / NMFNetRegressor: a batch is one
block of a mini-batch sweep (checked against the trainer's own mini-batch
sweep), the stream learns, and the bookkeeping and errors of
scikit-learn's incremental API."""
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
    return X / 16.0, y


def _max_diff(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a.coefs + a.intercepts,
                                                           b.coefs + b.intercepts))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [(12,), (12, 8)])
def test_batches_in_turn_are_a_mini_batch_sweep(digits, dtype, hidden):
    """One mini-batch sweep of the trainer (``batch_size``) equals an
    incremental trainer per block, fed the same blocks in the same order
    from the weights the previous block left. (Without the weight decays
    that fade with the sample count: the mini-batch sweep divides them by
    the whole set's N, a batch by its own size.)"""
    X, y = digits
    X, y = X[:600].astype(dtype), y[:600]
    Y = np.eye(10, dtype=dtype)[y]
    opts = PRESETS["default"].replace(width_ridge=0.0, rel_ridge=0.0, ridge=0.0)
    net = init_random([64, *hidden, 10], np.random.default_rng(0), dtype)
    seed, B = 5, 150
    mb = Trainer(X, Y, net.copy(), opts.replace(batch_size=B), seed=seed)
    mb.sweep()
    perm = np.random.default_rng([seed, 2**31]).permutation(len(y))
    blocks = [slice(s, s + B) for s in range(0, len(y), B)]
    order = np.random.default_rng([seed, 0]).permutation(len(blocks))
    cur = net.copy()
    for j in order:
        rows = perm[blocks[j]]
        t = Trainer(X[rows], Y[rows], cur, opts, incremental=True)
        t.sweep()
        cur = t.network()
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert _max_diff(mb.network(), cur) < tol


def test_stream_learns_and_books_keeping(digits):
    X, y = digits
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    clf = NMFNetClassifier((60,), random_state=0)
    scores = []
    for epoch in range(3):
        for b in range(0, 1400, 200):
            clf.partial_fit(Xtr[b:b + 200], ytr[b:b + 200], classes=np.arange(10))
        scores.append(clf.score(Xte, yte))
    assert scores[-1] > 0.85 and scores[-1] > scores[0]     # measured 0.824 -> 0.877
    assert clf.n_iter_ == 21 and clf.t_ == 4200
    assert len(clf.loss_curve_) == 21 and len(clf.history_["loss"]) == 21
    assert clf.history_["validation_score"][-1] is None
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    # deterministic
    again = NMFNetClassifier((60,), random_state=0)
    for epoch in range(3):
        for b in range(0, 1400, 200):
            again.partial_fit(Xtr[b:b + 200], ytr[b:b + 200], classes=np.arange(10))
    assert all(np.array_equal(u, v) for u, v in zip(clf.coefs_, again.coefs_))


def test_partial_fit_continues_a_fit(digits):
    X, y = digits
    clf = NMFNetClassifier((30,), max_iter=5, random_state=0).fit(X[:800], y[:800])
    before = [c.copy() for c in clf.coefs_]
    clf.partial_fit(X[800:1000], y[800:1000])      # classes known from the fit
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert any(not np.array_equal(u, v) for u, v in zip(before, clf.coefs_))


def test_batch_weights_are_repeated_samples(digits):
    X, y = digits
    Xb, yb = X[:200], y[:200]
    w = np.random.default_rng(0).integers(0, 3, 200)
    kw = dict(hidden_layer_sizes=(20,), random_state=0, dtype=np.float64)
    a = NMFNetClassifier(**kw).partial_fit(Xb, yb, sample_weight=w, classes=np.arange(10))
    b = NMFNetClassifier(**kw).partial_fit(np.repeat(Xb, w, 0), np.repeat(yb, w),
                                           classes=np.arange(10))
    assert max(float(np.abs(u - v).max()) for u, v in zip(a.coefs_, b.coefs_)) < 1e-9


def test_regressor_partial_fit(digits):
    X, _ = digits
    Y = np.c_[X[:, :8].sum(axis=1), X[:, 20]]
    reg = NMFNetRegressor((30,), random_state=0)
    for epoch in range(4):
        for b in range(0, 1400, 350):
            reg.partial_fit(X[b:b + 350], Y[b:b + 350])
    assert reg.score(X[1400:], Y[1400:]) > 0.8
    assert reg.n_iter_ == 16 and reg.predict(X[:5]).shape == (5, 2)


def test_multilabel_partial_fit(digits):
    X, y = digits
    L = np.c_[y % 2, y < 5].astype(int)
    clf = NMFNetClassifier((30,), random_state=0)
    for b in range(0, 1200, 300):
        clf.partial_fit(X[b:b + 300], L[b:b + 300])   # no classes needed for indicators
    assert clf.predict(X[:4]).shape == (4, 2)
    assert clf.score(X[1200:], L[1200:]) > 0.6


def test_partial_fit_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        NMFNetClassifier((8,)).partial_fit(X[:50], y[:50])
    clf = NMFNetClassifier((8,), random_state=0).partial_fit(X[:50], y[:50],
                                                             classes=np.arange(10))
    with pytest.raises(ValueError, match="is not the classes of the first call"):
        clf.partial_fit(X[:50], y[:50], classes=np.arange(11))
    with pytest.raises(ValueError, match="not seen in the first fit"):
        NMFNetClassifier((8,)).partial_fit(X[:50], y[:50], classes=np.arange(3))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:50, :10], y[:50])
    with pytest.raises(ValueError, match="early_stopping"):
        NMFNetClassifier((8,), early_stopping=True).partial_fit(X[:50], y[:50],
                                                                classes=np.arange(10))
    with pytest.raises(ValueError, match="at least 2"):
        NMFNetClassifier((8,)).partial_fit(X[:50], np.zeros(50), classes=[0])
    with pytest.raises(ValueError, match="NaN"):
        bad = X[:50].copy()
        bad[0, 0] = np.nan
        NMFNetClassifier((8,)).partial_fit(bad, y[:50], classes=np.arange(10))
    with pytest.raises(ValueError, match="sample_weight"):
        clf.partial_fit(X[:50], y[:50], sample_weight=-np.ones(50))
