"""The network estimators trained and scored on a sparse X: the same fits as
on ``X.toarray()`` (float64 to 1e-10, float32 to its tolerance), through
every sweep option, sample weights, partial_fit, warm starts and
checkpoints, and the inputs a sparse X cannot take. (The sparse solve under
it: ``test_sparse_fixed_factor.py``; data-parallel: ``_mpi_worker.py``.)
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import fastnmf
from fastnmf_dnn import NMFAutoencoder, NMFNetClassifier, NMFNetRegressor


# --------------------------------------------------------------------------
# network estimators on a sparse X
# --------------------------------------------------------------------------
def sparse_classification(rng, n=240, d=50):
    X = sp.random(n, d, density=0.12, random_state=rng, format="csr", dtype=np.float64)
    score = X @ rng.standard_normal(d)
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    return X, y


def weights(est):
    return list(est.coefs_) + list(est.intercepts_)


def assert_same_fit(a, b, rtol=1e-10):
    for u, v in zip(weights(a), weights(b)):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("params", [
    {},
    {"hidden_layer_sizes": (16, 12)},
    {"batch_size": 64},
    {"early_stopping": True, "n_iter_no_change": 100},
    {"refresh_targets": False},
    {"bottom_up": True, "hidden_layer_sizes": (16, 12)},
    {"bias": False},
    {"z_solver": "mu", "z_iter": 4},
])
def test_classifier_on_sparse_X_equals_dense_X(rng, params):
    X, y = sparse_classification(rng)
    kw = {"hidden_layer_sizes": (20,), "max_iter": 5, "random_state": 0, "dtype": np.float64}
    kw.update(params)
    dense = NMFNetClassifier(**kw).fit(X.toarray(), y)
    sparse = NMFNetClassifier(**kw).fit(X, y)
    assert_same_fit(dense, sparse)
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X.toarray()),
                               rtol=1e-10, atol=1e-10)
    assert sparse.score(X, y) == dense.score(X.toarray(), y)


def test_classifier_sparse_X_float32_and_other_formats(rng):
    """Every scipy format trains as CSR (the same fit, bit for bit), in
    float32 (kept); against the dense fit to float32's rounding, which the
    target step's clipping amplifies over sweeps (README "Sparse X"): here
    after 4 sweeps the weights agree to 2e-3 and the predictions all but
    exactly."""
    X, y = sparse_classification(rng)
    kw = {"hidden_layer_sizes": (20,), "max_iter": 4, "random_state": 0}
    dense = NMFNetClassifier(**kw).fit(X.toarray(), y)
    csr = NMFNetClassifier(**kw).fit(X, y)
    assert csr.coefs_[0].dtype == np.float32
    for fmt in ("csc", "coo"):
        other = NMFNetClassifier(**kw).fit(X.asformat(fmt), y)
        for u, v in zip(weights(csr), weights(other)):
            np.testing.assert_array_equal(u, v)
    for u, v in zip(weights(dense), weights(csr)):
        np.testing.assert_allclose(u, v, rtol=2e-3, atol=2e-3)
    assert np.mean(csr.predict(X) == dense.predict(X.toarray())) >= 0.98


def test_sparse_X_with_sample_weight_partial_fit_and_warm_start(rng):
    X, y = sparse_classification(rng)
    w = rng.uniform(0.2, 2.0, X.shape[0])
    w[::7] = 0.0                                     # weight 0: left out
    kw = {"hidden_layer_sizes": (20,), "max_iter": 4, "random_state": 0, "dtype": np.float64}
    assert_same_fit(NMFNetClassifier(**kw).fit(X.toarray(), y, sample_weight=w),
                    NMFNetClassifier(**kw).fit(X, y, sample_weight=w))
    a, b = NMFNetClassifier(**kw), NMFNetClassifier(**kw)
    for part in (slice(0, 100), slice(100, 240)):
        a.partial_fit(X[part].toarray(), y[part], classes=[0, 1, 2])
        b.partial_fit(X[part], y[part], classes=[0, 1, 2])
    assert_same_fit(a, b)
    a = NMFNetClassifier(warm_start=True, **kw).fit(X.toarray(), y).fit(X.toarray(), y)
    b = NMFNetClassifier(warm_start=True, **kw).fit(X, y).fit(X, y)
    assert_same_fit(a, b)


def test_regressor_on_sparse_X_equals_dense_X(rng):
    X, _ = sparse_classification(rng)
    Y = np.c_[X @ rng.standard_normal(X.shape[1]), X[:, :5].sum(axis=1).A.ravel()]
    kw = {"hidden_layer_sizes": (16, 8), "max_iter": 4, "random_state": 0, "dtype": np.float64}
    dense = NMFNetRegressor(**kw).fit(X.toarray(), Y)
    sparse = NMFNetRegressor(**kw).fit(X, Y)
    assert_same_fit(dense, sparse)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), rtol=1e-10,
                               atol=1e-10)


def test_sparse_X_checkpoint_resume_equals_an_uninterrupted_run(rng, tmp_path):
    X, y = sparse_classification(rng)
    kw = {"hidden_layer_sizes": (20,), "random_state": 0, "dtype": np.float64}
    full = NMFNetClassifier(max_iter=5, **kw).fit(X, y)
    path = tmp_path / "ckpt.npz"
    NMFNetClassifier(max_iter=3, **kw).fit(X, y, checkpoint=path)
    resumed = NMFNetClassifier(max_iter=5, **kw).fit(X, y, checkpoint=path, resume=True)
    assert_same_fit(full, resumed, rtol=1e-12)
    # another sparse matrix is another data set: refused by the fingerprint
    X2 = X.copy()
    X2.data[0] += 1.0
    with pytest.raises(ValueError, match="checkpoint"):
        NMFNetClassifier(max_iter=5, **kw).fit(X2, y, checkpoint=path, resume=True)


def test_sparse_X_eval_set_and_bad_input(rng):
    X, y = sparse_classification(rng)
    est = NMFNetClassifier((12,), max_iter=3, random_state=0)
    est.fit(X, y, eval_set=(X[:50], y[:50]))
    assert len(est.history_["eval_score"]) == 3
    with pytest.raises(ValueError, match="sparse X needs at least one hidden layer"):
        NMFNetClassifier((), max_iter=1).fit(X, y)
    bad = X.copy()
    bad.data[3] = np.inf
    with pytest.raises(ValueError, match="(?i)infinity|NaN"):
        NMFNetClassifier((12,), max_iter=1).fit(bad, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(sp.csr_matrix((5, X.shape[1] + 1)))
    huge = X * 1e30
    with pytest.raises(ValueError, match="^X's largest magnitude"):
        NMFNetClassifier((12,), max_iter=1).fit(huge, y)


@pytest.fixture
def fixed_inner_sweeps(monkeypatch):
    """Pre-training's NMF with a fixed inner-sweep cap: Gillis-Glineur's
    rule prices a sparse cross product at nnz k, so a sparse and a dense A
    otherwise get different numbers of HALS inner sweeps (both correct
    NMFs, not the same iterates)."""
    nmf = fastnmf.nmf

    def fixed(*args, **kwargs):
        kwargs.setdefault("n_inner", 3)
        return nmf(*args, **kwargs)
    monkeypatch.setattr(fastnmf, "nmf", fixed)


@pytest.mark.parametrize("bias", [True, False])
def test_autoencoder_on_sparse_X_equals_dense_X(rng, bias, fixed_inner_sweeps):
    X, _ = sparse_classification(rng)
    kw = dict(hidden_layer_sizes=(12, 6), nmf_iter=8, random_state=0, dtype=np.float64,
              bias=bias)
    dense = NMFAutoencoder(**kw).fit(X.toarray())
    sparse = NMFAutoencoder(**kw).fit(X)
    for u, v in zip(weights(dense) + dense.components_, weights(sparse) + sparse.components_):
        np.testing.assert_allclose(v, u, rtol=1e-7, atol=1e-7)
    assert sparse.reconstruction_err_ == pytest.approx(dense.reconstruction_err_, rel=1e-9)
    np.testing.assert_allclose(sparse.transform(X), dense.transform(X.toarray()), rtol=1e-7,
                               atol=1e-7)


def test_pretrained_classifier_on_sparse_X_equals_dense_X(rng, fixed_inner_sweeps):
    X, y = sparse_classification(rng)
    w = rng.uniform(0.2, 2.0, X.shape[0])
    kw = {"hidden_layer_sizes": (16, 8), "pretrain": True, "pretrain_iter": 5, "max_iter": 3,
          "random_state": 0, "dtype": np.float64}
    dense = NMFNetClassifier(**kw).fit(X.toarray(), y, sample_weight=w)
    sparse = NMFNetClassifier(**kw).fit(X, y, sample_weight=w)
    assert_same_fit(dense, sparse, rtol=1e-7)


def test_autoencoder_sparse_X_bad_input(rng):
    X, _ = sparse_classification(rng)
    neg = X.copy()
    neg.data[0] = -1.0
    with pytest.raises(ValueError, match="Negative values in data"):
        NMFAutoencoder((5,), nmf_iter=2).fit(neg)
    with pytest.raises(ValueError, match="^pretrain=True needs nonnegative X"):
        NMFNetClassifier((5,), pretrain=True, max_iter=1).fit(neg, np.arange(X.shape[0]) % 2)


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("solver", ["cg", "cg-jacobi"])
def test_input_solver_cg_trains_as_the_direct_solve(rng, sparse, solver):
    """input_solver="cg" (the first layer's step by CG on products with the
    input, TrainOptions) gives the direct inverse's fit to CG's tolerance:
    after one sweep the same weights to 1e-3 of the largest; after four the
    same loss curve to 0.5% (the extrapolated sweeps amplify the 1e-4 CG
    residual in single weights: measured 0.17% in the loss, up to 4% of
    the largest weight) and training accuracy."""
    X, y = sparse_classification(rng)
    Xin = X if sparse else X.toarray()
    kw = {"hidden_layer_sizes": (16, 12), "random_state": 0, "dtype": np.float64}
    direct = NMFNetClassifier(max_iter=1, **kw).fit(Xin, y)
    cg = NMFNetClassifier(input_solver=solver, max_iter=1, **kw).fit(Xin, y)
    assert cg.training_options().input_solver == solver
    for u, v in zip(weights(direct), weights(cg)):
        np.testing.assert_allclose(v, u, rtol=0, atol=1e-3 * np.abs(u).max())
    direct = NMFNetClassifier(max_iter=4, **kw).fit(Xin, y)
    cg = NMFNetClassifier(input_solver=solver, max_iter=4, **kw).fit(Xin, y)
    np.testing.assert_allclose(cg.loss_curve_, direct.loss_curve_, rtol=5e-3)
    assert abs(cg.score(Xin, y) - direct.score(Xin, y)) <= 0.02
    with pytest.raises(ValueError,
                       match="input_solver must be 'auto', 'direct', 'cg' or 'cg-jacobi'"):
        NMFNetClassifier(input_solver="lu", max_iter=1).fit(X, y)


def test_input_solver_auto_takes_cg_for_a_wide_sparse_input(rng, monkeypatch):
    """input_solver="auto" (the default): CG for a sparse X wider than
    AUTO_CG_WIDTH, the direct inverse below it and for any dense X, each
    the same fit as naming that solver."""
    from fastnmf_dnn import trainer
    assert trainer.TrainOptions().input_solver == "auto"
    assert trainer.resolve_input_solver("auto", trainer.AUTO_CG_WIDTH + 1, True) == "cg"
    assert trainer.resolve_input_solver("auto", trainer.AUTO_CG_WIDTH, True) == "direct"
    assert trainer.resolve_input_solver("auto", 10 * trainer.AUTO_CG_WIDTH, False) == "direct"
    assert trainer.resolve_input_solver("cg-jacobi", 5, False) == "cg-jacobi"
    X, y = sparse_classification(rng)
    kw = {"hidden_layer_sizes": (16,), "random_state": 0, "dtype": np.float64, "max_iter": 2}
    monkeypatch.setattr(trainer, "AUTO_CG_WIDTH", X.shape[1] - 1)
    auto = NMFNetClassifier(**kw).fit(X, y)
    for u, v in zip(weights(auto), weights(NMFNetClassifier(input_solver="cg", **kw).fit(X, y))):
        np.testing.assert_array_equal(u, v)
    direct = NMFNetClassifier(input_solver="direct", **kw).fit(X, y)
    assert max(np.abs(u - v).max() for u, v in zip(weights(auto), weights(direct))) > 0
    dense = NMFNetClassifier(**kw).fit(X.toarray(), y)
    for u, v in zip(weights(dense),
                    weights(NMFNetClassifier(input_solver="direct", **kw).fit(X.toarray(), y))):
        np.testing.assert_array_equal(u, v)
