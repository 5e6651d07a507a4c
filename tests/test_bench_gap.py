"""The helpers of bench/gap_diagnostics.py (the read-outs it refits on a
network's features) and compare_dnn's backprop losses: checked on small
problems, so that the diagnostic measures what its table says."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import gap_diagnostics as G  # noqa: E402

from fastnmf.datasets import load_digits  # noqa: E402
from fastnmf_dnn import NMFNetClassifier  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    X, y = load_digits()
    X = X[:400] / 16.0
    y = y[:400]
    clf = NMFNetClassifier((20, 12), max_iter=3, random_state=0, dtype=np.float64).fit(X, y)
    return clf, X, y


def test_hidden_features_are_the_estimators_last_hidden_layer(fitted):
    """The features, times the estimator's own output layer, give its
    outputs (coefs_ are (n_in, n_out), as in MLPClassifier)."""
    clf, X, y = fitted
    H = G.hidden_activations(list(zip(clf.coefs_[:-1], clf.intercepts_[:-1])), X)[-1]
    assert H.shape == (len(X), 12) and H.min() >= 0
    out = H @ clf.coefs_[-1] + clf.intercepts_[-1]
    np.testing.assert_array_equal(out.argmax(1), np.searchsorted(clf.classes_, clf.predict(X)))


def test_ls_readout_is_a_ridge_least_squares_fit():
    """Against a plain NumPy solve with the same ridge: the accuracies it
    reports are those of that fit; a separable problem is fitted exactly."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    H = np.eye(3)[y] * 2.0 + rng.uniform(0, 0.1, (300, 3))
    te, tr = G.ls_readout(H[:200], y[:200], H[200:], y[200:])
    assert te == tr == 1.0
    A = np.hstack([H[:200], np.ones((200, 1))])
    Gm = A.T @ A
    W = np.linalg.solve(Gm + 1e-4 * np.trace(Gm) / 4 * np.eye(4), A.T @ np.eye(3)[y[:200]])
    noisy = rng.uniform(0, 1, (100, 3))
    want = np.mean((np.hstack([noisy, np.ones((100, 1))]) @ W).argmax(1) == y[200:])
    assert G.ls_readout(H[:200], y[:200], noisy, y[200:])[0] == want


def test_logistic_readout_picks_the_best_C():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    H = np.c_[y + rng.normal(0, 0.7, 200), rng.normal(0, 1, 200)]
    acc, C, train = G.logistic_readout(H[:150], y[:150], H[150:], y[150:])
    assert C in (0.01, 0.1, 1.0) and 0.7 < acc <= 1.0 and 0.7 < train <= 1.0


def test_backprop_losses():
    """squared_hinge costs nothing beyond the one-hot target on the right
    side and equals squared_error inside it; unknown names are rejected."""
    torch = pytest.importorskip("torch")
    from backprop import backprop_loss
    y = torch.tensor([0, 1])
    inside = torch.tensor([[0.5, 0.2], [-0.0, 0.7]])
    beyond = torch.tensor([[1.5, -0.3], [-2.0, 1.1]])
    se, sh = backprop_loss("squared_error"), backprop_loss("squared_hinge")
    assert float(sh(beyond, y)) == 0.0 and float(se(beyond, y)) > 0
    assert float(sh(inside, y)) == pytest.approx(float(se(inside, y)))
    assert float(se(inside, y)) == pytest.approx(((0.5 - 1) ** 2 + 0.2 ** 2 + 0.3 ** 2) / 2)
    with pytest.raises(ValueError, match="unknown backprop loss"):
        backprop_loss("hinge")


def test_feature_stats():
    """Active fraction and effective rank: r equal independent directions
    give rank r; a layer that passes nothing has active fraction 0."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4000, 3))
    W, b = np.eye(3) * 5.0, np.full(3, 100.0)      # all units on, linear: rank 3
    (active, rank), = G.feature_stats(G.hidden_activations([(W, b)], X))
    assert active == 1.0 and rank == pytest.approx(3.0, rel=0.05)
    (active, rank), = G.feature_stats(G.hidden_activations([(W, np.full(3, -100.0))], X))
    assert active == 0.0
    two = G.feature_stats(G.hidden_activations([(W, b), (np.ones((3, 2)), np.zeros(2))], X))
    assert len(two) == 2 and two[1][1] == pytest.approx(1.0, rel=1e-6)  # equal columns


def test_backprop_child_matches_in_process(monkeypatch):
    """The isolated peer (a child process without fastnmf) trains the same
    network as an in-process run; the child's environment lacks only what
    ``import fastnmf`` set; a failing child raises with its error."""
    pytest.importorskip("torch")
    import fastnmf
    import backprop
    rng = np.random.default_rng(0)
    X = rng.random((300, 8), dtype=np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(np.int64)
    args = (X[:200], y[:200], X[200:], y[200:], (6,), 3, 1, 0)
    rows_c, w_c, tr_c = backprop.run_backprop(*args, full=True)
    rows_p, w_p, tr_p = backprop.run_backprop(*args, full=True, isolated=False)
    assert [r[:2] for r in rows_c] == [r[:2] for r in rows_p] and tr_c == tr_p
    for (Wc, bc), (Wp, bp) in zip(w_c, w_p):
        np.testing.assert_array_equal(Wc, Wp)
        np.testing.assert_array_equal(bc, bp)
    monkeypatch.setattr(fastnmf, "_ENV_SET_AT_IMPORT", ("GOMP_SPINCOUNT",))
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    env = backprop.child_env()
    assert "GOMP_SPINCOUNT" not in env and env["PATH"] == __import__("os").environ["PATH"]
    with pytest.raises(RuntimeError, match="unknown backprop loss"):
        backprop.run_backprop(*args, loss="hinge")


def test_compare_dnn_report_time_targets():
    """compare_dnn's report: the time to the highest threshold both reach,
    and issue 4's target (backprop's accuracy at epoch 15, or NMF's best
    where NMF stays below it), with the epoch and sweep that reach it."""
    import compare_dnn
    bp = [(i, acc, 2.0 * i) for i, acc in enumerate(
        [0.84, 0.86, 0.87, 0.88, 0.885, 0.887, 0.89] + [0.891] * 8 + [0.9], start=1)]
    nm = [(i, acc, 1.0 * i) for i, acc in enumerate([0.85, 0.87, 0.88, 0.886, 0.889], start=1)]
    lines = []
    compare_dnn.report("fashion", (500, 500), bp, nm, 0.1, 1.0, (2.0, 1.0), 2, lines)
    text = "\n".join(lines)
    assert "Time to 0.88 (the highest threshold both reach): backprop/NMF = **2.67x**" in text
    assert ("Time to 0.8890 (the highest both reach): backprop 14.0 s (epoch 7), NMF 5.0 s "
            "(sweep 5): backprop/NMF = **2.80x**") in text
    nm2 = nm + [(6, 0.8905, 6.0)]
    lines = []
    compare_dnn.report("fashion", (500, 500), bp, nm2, 0.1, 1.0, (2.0, 1.0), 2, lines)
    assert ("Time to 0.8910 (backprop's at epoch 15): backprop 16.0 s (epoch 8), NMF 6.0 s "
            "(sweep 6)") not in "\n".join(lines)     # NMF never reaches 0.891: its best then
    assert "Time to 0.8905 (the highest both reach)" in "\n".join(lines)
    nm3 = nm + [(6, 0.892, 6.0)]
    lines = []
    compare_dnn.report("fashion", (500, 500), bp, nm3, 0.1, 1.0, (2.0, 1.0), 2, lines)
    assert ("Time to 0.8910 (backprop's at epoch 15): backprop 16.0 s (epoch 8), NMF 6.0 s "
            "(sweep 6): backprop/NMF = **2.67x**") in "\n".join(lines)
    assert "median of the per-sweep ratios" not in "\n".join(lines)
    lines = []
    compare_dnn.report("fashion", (500, 500), bp, nm3, 0.1, 1.0, (2.0, 1.0), 2, lines, 1.04)
    assert "**1.00x** (target <= 1.3x)" in "\n".join(lines)
    assert "replayed right after it): **1.04x**" in "\n".join(lines)


def test_ablation_holdout_selects_the_sweep_on_validation():
    """bench/ablation.py --holdout: the validation accuracy per sweep is the
    estimator's own held-out split (so the sweep reported is chosen without
    the test set), and the test accuracy reported is the one of that sweep."""
    import ablation as A
    rows = [(1, 0.80, 0.1, 0.9, 0.70), (2, 0.90, 0.1, 0.9, 0.75), (3, 0.85, 0.1, 0.9, 0.78),
            (4, 0.95, 0.1, 0.9, 0.78)]
    assert A.selected_by_validation(rows) == (0.78, 3, 0.85)   # not the test's best (0.95)
    assert A.val_cells(rows, 0.0) == ""
    assert A.val_cells(rows, 0.2) == "0.7800 (3) | 0.8500 | "

    X, y = load_digits()
    X = (X / 16.0).astype(np.float32)
    Xtr, ytr, Xte, yte = X[:600], y[:600], X[600:900], y[600:900]
    rows, _ = A.run_variant(Xtr, ytr, Xte, yte, (16,), {}, 3, 1, holdout=0.25)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert all(0.0 <= r[4] <= 1.0 for r in rows)
    # The same split and curve as a plain early-stopping fit of that length.
    clf = NMFNetClassifier((16,), max_iter=3, n_iter_no_change=4, random_state=0, n_threads=1,
                           early_stopping=True, validation_fraction=0.25).fit(Xtr, ytr)
    assert clf.validation_scores_ == [r[4] for r in rows]
    assert clf.best_validation_score_ == max(r[4] for r in rows)
    plain, _ = A.run_variant(Xtr, ytr, Xte, yte, (16,), {}, 2, 1)
    assert all(r[4] is None for r in plain)


def test_ablation_variants_are_valid_and_differ_from_the_default():
    """Every row of bench/ablation.py names a valid option set, and none of
    them (but ``default``) is the default itself (a row that silently
    repeats the default after a default changed measures nothing)."""
    import ablation as A
    from fastnmf_dnn.trainer import check_options
    default = NMFNetClassifier((8,)).training_options()
    for name, overrides in A.VARIANTS.items():
        clf = NMFNetClassifier((8,), **overrides)
        opts = clf.training_options()
        check_options(opts)
        estimator_only = {k for k in overrides if k in ("pretrain", "init_scale")}
        if name != "default" and not estimator_only:
            assert opts != default, name
