"""bench/regression.py and the regression (``loss="mse"``) backprop peer:
checked on small problems, so that the table's R^2 and its Adam peer are
what they say. No download: the Fashion-MNIST case is not built here."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import regression as R  # noqa: E402
from backprop import r2_score  # noqa: E402


def test_r2_score_matches_scikit_learn():
    """Averaged over outputs like sklearn's default; a constant output
    scores 1 when predicted exactly, 0 otherwise (sklearn's convention)."""
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((50, 3))
    P = Y + 0.5 * rng.standard_normal((50, 3))
    assert r2_score(Y, P) == pytest.approx(metrics.r2_score(Y, P), rel=1e-12)
    assert r2_score(Y[:, 0], P[:, 0]) == pytest.approx(metrics.r2_score(Y[:, 0], P[:, 0]))
    C = np.c_[Y[:, 0], np.full(50, 2.0)]
    assert r2_score(C, np.c_[P[:, 0], np.full(50, 2.0)]) == pytest.approx(
        (metrics.r2_score(Y[:, 0], P[:, 0]) + 1) / 2)
    assert r2_score(C, np.c_[P[:, 0], np.full(50, 2.5)]) == pytest.approx(
        metrics.r2_score(Y[:, 0], P[:, 0]) / 2)


@pytest.mark.parametrize("name", ["diabetes", "digits-half", "digits-sum"])
def test_case_data_shapes_and_standardised_targets(name):
    Xtr, Ytr, Xte, Yte = R.case_data(name)
    hidden, sweeps, epochs = R.CASES[name]
    assert Xtr.dtype == Xte.dtype == np.float32 and Xtr.shape[1] == Xte.shape[1]
    assert Ytr.ndim == Yte.ndim == 2 and Ytr.shape[1] == Yte.shape[1]
    assert len(Xtr) == len(Ytr) and len(Xte) == len(Yte)
    np.testing.assert_allclose(Ytr.mean(0), 0, atol=1e-10)
    std = Ytr.std(0)
    assert np.all((np.abs(std - 1) < 1e-10) | (std == 0))
    assert np.isfinite(Xtr).all() and np.isfinite(Yte).all()
    want = {"diabetes": (309, 1), "digits-half": (32, 32), "digits-sum": (32, 1)}[name]
    assert (Xtr.shape[1] if name != "diabetes" else len(Xtr), Ytr.shape[1]) == want
    with pytest.raises(ValueError, match="unknown case"):
        R.case_data("boston")


def test_digits_half_targets_are_the_bottom_rows():
    """Inputs and targets are the two halves of the same images (up to the
    targets' standardisation)."""
    from compare_dnn import load
    Xd = load("digits")[0]
    Xtr, Ytr, _, _ = R.case_data("digits-half")
    img = Xd.reshape(-1, 8, 8)
    np.testing.assert_array_equal(Xtr, img[:, :4].reshape(len(img), -1))
    bottom = img[:, 4:].reshape(len(img), -1).astype(np.float64)
    s = bottom.std(0)
    ok = s > 0
    np.testing.assert_allclose(Ytr[:, ok], ((bottom - bottom.mean(0)) / np.where(ok, s, 1))[:, ok],
                               atol=1e-6)


def test_run_nmf_and_summary():
    """compare_dnn.run_nmf on the regressor (what regression.py calls): its
    rows are the estimator's own test scores, cumulative seconds
    increasing; summarize reads best, last and decline from them."""
    from fastnmf_dnn import NMFNetRegressor
    Xtr, Ytr, Xte, Yte = R.case_data("diabetes")
    rows = R.run_nmf(Xtr, Ytr, Xte, Yte, (8,), 3, 1, 0, {"width_ridge": 0.3},
                     estimator=NMFNetRegressor)[0]
    assert [r[0] for r in rows] == [1, 2, 3]
    assert all(b[2] > a[2] for a, b in zip(rows, rows[1:]))
    reg = NMFNetRegressor((8,), max_iter=3, n_iter_no_change=4, random_state=0, n_threads=1,
                          width_ridge=0.3).fit(Xtr, Ytr)
    assert rows[-1][1] == pytest.approx(reg.score(Xte, Yte), abs=1e-5)
    fake = [[(1, 0.2, 1.0), (2, 0.5, 2.0), (3, 0.4, 3.0)],
            [(1, 0.1, 2.0), (2, 0.3, 4.0), (3, 0.3, 6.0)]]
    best, lo, hi, last, drop, at, per = R.summarize(fake)
    assert (best, lo, hi, last) == pytest.approx((0.4, 0.3, 0.5, 0.35))
    assert drop == pytest.approx(0.05) and at == 2 and per == pytest.approx(1.5)


def test_backprop_regression_peer():
    """loss="mse": float targets, R^2 per epoch (the in-process run equals
    the isolated child's), and a learnable linear target is learned."""
    pytest.importorskip("torch")
    import backprop
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2300, 5)).astype(np.float32)
    Y = np.c_[X @ np.array([1.0, -2.0, 0.5, 0, 0]), X[:, 0] - X[:, 1]]
    args = (X[:2000], Y[:2000], X[2000:], Y[2000:], (16,), 30, 1, 0)
    rows_p, weights, train_r2 = backprop.run_backprop(*args, loss="mse", isolated=False,
                                                      full=True)
    assert len(rows_p) == 30 and rows_p[-1][1] > 0.9 and train_r2 > 0.9
    assert rows_p[-1][1] > rows_p[0][1]
    assert weights[-1][0].shape == (2, 16)
    rows_c = backprop.run_backprop(*args, loss="mse")
    assert [r[:2] for r in rows_c] == [r[:2] for r in rows_p]
