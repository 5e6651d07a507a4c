"""fastnmf_dnn checkpoints (resume == uninterrupted run) and model files
(save_model / load_model round trips, corrupt files)."""
from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from conftest import DTYPES

from fastnmf.datasets import load_digits
from fastnmf_dnn import (NMFAutoencoder, NMFNetClassifier, NMFNetRegressor, load_model,
                         save_model)
from fastnmf_dnn import model_io


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.choice(X.shape[0], 240, replace=False)
    return X[idx] / 16.0, y[idx]


class Killed(Exception):
    pass


def kill_after(k):
    """A callback that 'kills' the run right after sweep k (its checkpoint
    has been written by then, as it would be before a real kill)."""
    def cb(est, it, record):
        assert set(record) == {"loss", "train_score", "validation_score", "eval_score",
                               "seconds"}
        if it == k:
            raise Killed(k)
    return cb


def assert_same_fit(a, b):
    assert a.n_iter_ == b.n_iter_
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert ca.dtype == cb.dtype
        np.testing.assert_array_equal(ca, cb)
    assert a.loss_curve_ == b.loss_curve_
    for key in ("loss", "train_score", "validation_score", "eval_score"):
        assert a.history_[key] == b.history_[key], key
    assert a.best_validation_score_ == b.best_validation_score_
    np.testing.assert_array_equal(a.classes_, b.classes_)


CKPT_KW = dict(hidden_layer_sizes=(12, 8), max_iter=7, random_state=0, refresh_targets=False,
               n_iter_no_change=50)


# ---------------------------------------------------------------------------
# Checkpoint / resume.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_resume_equals_uninterrupted(tmp_path, digits, early_stopping, bias):
    X, y = digits
    kw = dict(CKPT_KW, early_stopping=early_stopping, bias=bias)
    full = NMFNetClassifier(**kw).fit(X, y)
    assert full.n_iter_ == 7
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        NMFNetClassifier(**kw).fit(X, y, checkpoint=path, callback=kill_after(3))
    # carried-over targets are part of the checkpoint (refresh_targets=False)
    with np.load(path, allow_pickle=False) as z:
        assert any(k.startswith("target_") for k in z.files)
    seen = []
    resumed = NMFNetClassifier(**kw).fit(X, y, checkpoint=path, resume=True,
                                         callback=lambda e, it, r: seen.append(it))
    assert seen == [4, 5, 6, 7]  # only the missing sweeps were run
    assert_same_fit(full, resumed)
    # and the checkpoint now holds the finished run: resuming again runs nothing
    seen.clear()
    again = NMFNetClassifier(**kw).fit(X, y, checkpoint=path, resume=True,
                                       callback=lambda e, it, r: seen.append(it))
    assert seen == []
    assert_same_fit(full, again)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_resume_after_early_stop_stays_stopped(tmp_path, digits, early_stopping):
    """A run killed right after the sweep that stopped it (n_iter_no_change)
    must not train further when resumed."""
    X, y = digits
    kw = dict(CKPT_KW, max_iter=40, n_iter_no_change=2, tol=0.5, early_stopping=early_stopping)
    full = NMFNetClassifier(**kw).fit(X, y)
    assert full.n_iter_ < 40
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        NMFNetClassifier(**kw).fit(X, y, checkpoint=path, callback=kill_after(full.n_iter_))
    resumed = NMFNetClassifier(**kw).fit(X, y, checkpoint=path, resume=True)
    assert_same_fit(full, resumed)


def test_resume_keeps_the_validation_split_without_random_state(tmp_path, digits):
    """random_state=None draws a new split per fit; a resumed run must keep
    training on the interrupted run's split (stored in the checkpoint)."""
    X, y = digits
    kw = dict(CKPT_KW, random_state=None, early_stopping=True, validation_fraction=0.3)
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        NMFNetClassifier(**kw).fit(X, y, checkpoint=path, callback=kill_after(2))
    saved = tmp_path / "saved.ckpt"
    shutil.copy(path, saved)
    fits = []
    for _ in range(2):
        shutil.copy(saved, path)
        fits.append(NMFNetClassifier(**kw).fit(X, y, checkpoint=path, resume=True))
    assert_same_fit(*fits)


def test_resume_regressor(tmp_path, digits):
    X, _ = digits
    Y = np.c_[X[:, :8].mean(axis=1), X[:, 30:40].mean(axis=1)]
    kw = dict(hidden_layer_sizes=(10,), max_iter=5, random_state=1, refresh_targets=False,
              n_iter_no_change=50, dtype=np.float64)
    full = NMFNetRegressor(**kw).fit(X, Y)
    path = tmp_path / "reg.ckpt"
    with pytest.raises(Killed):
        NMFNetRegressor(**kw).fit(X, Y, checkpoint=path, callback=kill_after(2))
    resumed = NMFNetRegressor(**kw).fit(X, Y, checkpoint=path, resume=True)
    for a, b in zip(full.coefs_ + full.intercepts_, resumed.coefs_ + resumed.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert full.loss_curve_ == resumed.loss_curve_


def test_resume_with_larger_max_iter_continues(tmp_path, digits):
    X, y = digits
    kw = dict(CKPT_KW)
    path = tmp_path / "run.ckpt"
    NMFNetClassifier(**dict(kw, max_iter=3)).fit(X, y, checkpoint=path)
    resumed = NMFNetClassifier(**kw).fit(X, y, checkpoint=path, resume=True)
    assert_same_fit(NMFNetClassifier(**kw).fit(X, y), resumed)


def test_resume_missing_file_starts_fresh(tmp_path, digits):
    X, y = digits
    path = tmp_path / "sub" / "none.ckpt"
    m = NMFNetClassifier(**CKPT_KW).fit(X, y, checkpoint=path, resume=True)
    assert_same_fit(NMFNetClassifier(**CKPT_KW).fit(X, y), m)
    assert path.exists()
    # without resume an existing checkpoint is ignored (and overwritten)
    m2 = NMFNetClassifier(**dict(CKPT_KW, max_iter=2)).fit(X, y, checkpoint=path)
    assert m2.n_iter_ == 2


@pytest.fixture
def killed_checkpoint(tmp_path, digits):
    X, y = digits
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        NMFNetClassifier(**CKPT_KW).fit(X, y, checkpoint=path, callback=kill_after(2))
    return path


@pytest.mark.parametrize("change, match", [
    ("X", "other training data"),
    ("y", "other training data"),
    ("rows", "other training data"),
    ({"alpha": 1e-3}, "other parameters.*alpha"),
    ({"bias": False}, "other parameters.*bias"),
    ({"random_state": 5}, "other parameters.*random_state"),
    ({"dtype": np.float64}, "other parameters.*dtype"),
    ({"hidden_layer_sizes": (12, 9)}, "layer sizes"),
])
def test_resume_with_other_data_or_params_raises(killed_checkpoint, digits, change, match):
    X, y = digits
    kw = dict(CKPT_KW)
    if change == "X":
        X = X.copy()
        X[5, 5] += 0.25
    elif change == "y":
        y = y.copy()
        y[:2] = y[1::-1] if y[0] != y[1] else (y[:2] + 1) % 10
    elif change == "rows":
        X, y = X[:-1], y[:-1]
    else:
        kw.update(change)
    with pytest.raises(ValueError, match=match):
        NMFNetClassifier(**kw).fit(X, y, checkpoint=killed_checkpoint, resume=True)


def test_resume_checkpoint_of_other_estimator_raises(killed_checkpoint, digits):
    X, y = digits
    with pytest.raises(ValueError, match="NMFNetClassifier"):
        NMFNetRegressor(**CKPT_KW).fit(X, y.astype(float), checkpoint=killed_checkpoint,
                                       resume=True)


def _rewrite(path, edit_meta=None, edit_arrays=None):
    meta, arrays = model_io.read_npz(path)
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    payload = {k: v for k, v in arrays.items()}
    payload["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **payload)


@pytest.mark.parametrize("corruption", ["truncated", "random", "empty", "npy", "no-history",
                                        "missing-weights", "bad-weight-shape", "model-file"])
def test_corrupt_checkpoint_raises_value_error(killed_checkpoint, digits, corruption, tmp_path):
    X, y = digits
    path = killed_checkpoint
    data = path.read_bytes()
    if corruption == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif corruption == "random":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif corruption == "empty":
        path.write_bytes(b"")
    elif corruption == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.arange(5))
    elif corruption == "no-history":
        _rewrite(path, edit_meta=lambda m: m.pop("history"))
    elif corruption == "missing-weights":
        _rewrite(path, edit_arrays=lambda a: a.pop("intercept_1"))
    elif corruption == "bad-weight-shape":
        _rewrite(path, edit_arrays=lambda a: a.update(coef_0=a["coef_0"][:, :3]))
    elif corruption == "model-file":
        save_model(NMFNetClassifier(**dict(CKPT_KW, max_iter=1)).fit(X, y), path)
    with pytest.raises(ValueError) as info:
        NMFNetClassifier(**CKPT_KW).fit(X, y, checkpoint=path, resume=True)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------
# save_model / load_model.
# ---------------------------------------------------------------------------
def _fitted_attrs(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("__")}


def assert_same_attrs(a, b):
    A, B = _fitted_attrs(a), _fitted_attrs(b)
    assert A.keys() == B.keys()
    for k in A:
        x, y = A[k], B[k]
        if isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            assert len(x) == len(y)
            for u, v in zip(x, y):
                assert u.dtype == v.dtype
                np.testing.assert_array_equal(u, v)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, k
            np.testing.assert_array_equal(x, y)
        elif isinstance(x, float) and np.isnan(x):
            assert np.isnan(y), k
        else:
            assert x == y, k
    assert a.get_params() == b.get_params()


def _methods(est, X):
    names = ("predict", "predict_proba", "predict_log_proba", "transform", "score")
    out = {m: getattr(est, m)(X) for m in names[:-1] if hasattr(est, m)}
    if hasattr(est, "transform"):
        out["inverse_transform"] = est.inverse_transform(out["transform"])
    return out


def _check_round_trip(est, X, path):
    saved = save_model(est, path)
    assert saved == path
    with np.load(path, allow_pickle=False) as z:  # no pickle, no object arrays
        for key in z.files:
            assert z[key].dtype != object
    loaded = load_model(path)
    assert type(loaded) is type(est)
    assert_same_attrs(est, loaded)
    before, after = _methods(est, X), _methods(loaded, X)
    assert before.keys() == after.keys() and before
    for m in before:
        assert before[m].dtype == after[m].dtype, m
        np.testing.assert_array_equal(before[m], after[m], err_msg=m)
    return loaded


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("labels", ["int", "str", "object-str"])
def test_classifier_round_trip(tmp_path, digits, dtype, labels):
    X, y = digits
    if labels == "str":
        y = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[y]
    elif labels == "object-str":
        y = np.array([f"digit {v}" for v in y], dtype=object)
    est = NMFNetClassifier(hidden_layer_sizes=(10, 6), max_iter=3, random_state=0,
                           dtype=dtype, early_stopping=True).fit(X, y)
    loaded = _check_round_trip(est, X, tmp_path / "clf.npz")
    assert loaded.classes_.dtype == est.classes_.dtype
    assert loaded.predict(X[:3]).tolist() == est.predict(X[:3]).tolist()
    assert NMFNetClassifier.load(tmp_path / "clf.npz").score(X, y) == est.score(X, y)
    est.save(tmp_path / "again.npz")
    _check_round_trip(load_model(tmp_path / "again.npz"), X, tmp_path / "third.npz")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ndim", [1, 2])
def test_regressor_round_trip(tmp_path, digits, dtype, ndim):
    X, y = digits
    Y = np.c_[X[:, 10:20].mean(axis=1), y / 9.0]
    Y = Y[:, 0] if ndim == 1 else Y
    est = NMFNetRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                          dtype=dtype).fit(X, Y)
    loaded = _check_round_trip(est, X, tmp_path / "reg.npz")
    assert loaded.predict(X).shape == Y.shape
    assert NMFNetRegressor.load(tmp_path / "reg.npz").score(X, Y) == est.score(X, Y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_autoencoder_round_trip(tmp_path, digits, dtype):
    X, _ = digits
    est = NMFAutoencoder(hidden_layer_sizes=(16, 6), nmf_iter=5, encoder_iter=3,
                         random_state=0, dtype=dtype).fit(X)
    loaded = _check_round_trip(est, X, tmp_path / "ae.npz")
    assert list(loaded.get_feature_names_out()) == list(est.get_feature_names_out())


def test_max_iter_zero_round_trip(tmp_path, digits):
    """NaN fitted scalars (no sweep run) survive the round trip as NaN."""
    X, y = digits
    est = NMFNetClassifier(hidden_layer_sizes=(5,), max_iter=0, random_state=0).fit(X, y)
    assert np.isnan(est.loss_)
    loaded = _check_round_trip(est, X, tmp_path / "zero.npz")
    assert np.isnan(loaded.loss_)


def test_feature_names_round_trip(tmp_path, digits):
    """feature_names_in_ (an object array of str, as scikit-learn sets it for
    a DataFrame) is saved without pickle and restored as dtype object."""
    X, y = digits
    est = NMFNetClassifier(hidden_layer_sizes=(5,), max_iter=1, random_state=0).fit(X, y)
    est.feature_names_in_ = np.array([f"px{i}" for i in range(X.shape[1])], dtype=object)
    save_model(est, tmp_path / "names.npz")
    loaded = load_model(tmp_path / "names.npz")
    assert loaded.feature_names_in_.dtype == object
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, digits):
    X, y = digits
    path = tmp_path_factory.mktemp("models") / "clf.npz"
    NMFNetClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0).fit(X, y).save(path)
    return path


def _corrupt(src, dst, how):
    data = src.read_bytes()
    if how == "truncated":
        dst.write_bytes(data[: len(data) - 100])
    elif how == "truncated-head":
        dst.write_bytes(data[:300])
    elif how == "random":
        dst.write_bytes(np.random.default_rng(1).bytes(2000))
    elif how == "text":
        dst.write_text("hello, I am not a model\n")
    elif how == "npy":
        with open(dst, "wb") as fh:
            np.save(fh, np.ones(3))
    elif how == "no-metadata":
        with open(dst, "wb") as fh:
            np.savez(fh, coefs_0=np.ones((2, 2)))
    elif how == "bad-json":
        with open(dst, "wb") as fh:
            np.savez(fh, __metadata__=np.frombuffer(b"{not json", dtype=np.uint8))
    else:
        meta, arrays = model_io.read_npz(src)
        if how == "other-format":
            meta["format"] = "someone-elses-model"
        elif how == "newer-version":
            meta["format_version"] = model_io.FORMAT_VERSION + 1
        elif how == "version-string":
            meta["format_version"] = "1"
        elif how == "unknown-estimator":
            meta["estimator"] = "MLPClassifier"
        elif how == "checkpoint-kind":
            meta["kind"] = "checkpoint"
        elif how == "no-params":
            del meta["params"]
        elif how == "unknown-param":
            meta["params"]["learning_rate"] = 0.1
        elif how == "missing-array":
            del arrays["coefs_1"]
        elif how == "no-fitted":
            del meta["fitted"]
        arrays["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(dst, "wb") as fh:
            np.savez(fh, **arrays)


CORRUPTIONS = {
    "truncated": "not a fastnmf_dnn model file",
    "truncated-head": "not a fastnmf_dnn model file",
    "random": "not a fastnmf_dnn model file",
    "text": "not a fastnmf_dnn model file",
    "npy": "not a fastnmf_dnn model file",
    "no-metadata": "no __metadata__",
    "bad-json": "corrupt metadata",
    "other-format": "not a fastnmf_dnn model file.*someone-elses-model",
    "newer-version": "format version 2 is not supported",
    "version-string": "format version '1' is not supported",
    "unknown-estimator": "unknown estimator 'MLPClassifier'",
    "checkpoint-kind": "expected 'model'",
    "no-params": "corrupt model file",
    "unknown-param": "corrupt model file",
    "missing-array": "corrupt model file",
    "no-fitted": "corrupt model file",
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_model_file_raises_value_error(model_file, tmp_path, how):
    bad = tmp_path / f"{how}.npz"
    _corrupt(model_file, bad, how)
    with pytest.raises(ValueError, match=CORRUPTIONS[how]) as info:
        load_model(bad)
    assert isinstance(info.value, model_io.ModelFileError)
    assert str(bad) in str(info.value)


def test_load_wrong_class_and_missing_file(model_file, tmp_path):
    with pytest.raises(ValueError, match="holds a NMFNetClassifier, not a NMFNetRegressor"):
        NMFNetRegressor.load(model_file)
    assert isinstance(NMFNetClassifier.load(model_file), NMFNetClassifier)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")


def test_save_unfitted_or_foreign_raises(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import Ridge
    with pytest.raises(NotFittedError):
        save_model(NMFNetClassifier(), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="Ridge"):
        save_model(Ridge().fit(np.eye(3), np.ones(3)), tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_model_file_is_a_plain_zip_with_json(model_file):
    with zipfile.ZipFile(model_file) as zf:
        names = set(zf.namelist())
    assert "__metadata__.npy" in names and "coefs_0.npy" in names
    meta, _ = model_io.read_npz(model_file)
    assert meta["format"] == model_io.FORMAT
    assert meta["format_version"] == model_io.FORMAT_VERSION
    assert meta["estimator"] == "NMFNetClassifier" and meta["kind"] == "model"


def test_loaded_model_warm_starts_exactly(tmp_path, digits):
    """The extrapolation state (beta, last loss) is saved with the model: a
    loaded model warm-started for k sweeps equals one fit of 2k sweeps."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(12, 8), random_state=0, n_iter_no_change=50)
    first = NMFNetClassifier(max_iter=3, warm_start=True, **kw).fit(X, y)
    first.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert list(loaded._extrapolation_state) == list(first._extrapolation_state)
    loaded.fit(X, y)
    once = NMFNetClassifier(max_iter=6, **kw).fit(X, y)
    for u, v in zip(once.coefs_ + once.intercepts_, loaded.coefs_ + loaded.intercepts_):
        np.testing.assert_array_equal(u, v)
