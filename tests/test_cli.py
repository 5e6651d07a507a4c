"""The ``fastnmf-dnn`` command line (fastnmf_dnn.cli), on the bundled digits.

Everything runs ``main([...])`` in-process (a few small sweeps each) except
the test of the installed console script and the warm-up's cold-cache test,
which run in a subprocess.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fastnmf_dnn import datasets, load_model
from fastnmf_dnn.cli import main
from conftest import assert_nothing_saved_after

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FINAL = re.compile(r"^final test accuracy: (\d\.\d{4})$", re.M)


@pytest.fixture(autouse=True)
def _no_real_datasets(monkeypatch, tmp_path):
    """Never find (or download) a real Fashion-MNIST/MNIST from these tests."""
    nowhere = tmp_path / "no-system-datasets"
    monkeypatch.setattr(datasets, "SYSTEM_DIRS",
                        {"fashion-mnist": nowhere / "fashion-mnist", "mnist": nowhere / "mnist"})
    monkeypatch.delenv("FASTNMF_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(url, dest):  # pragma: no cover - must not be reached
        raise AssertionError(f"test tried to download {url}")
    monkeypatch.setattr(datasets, "_fetch", no_network)


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def final_accuracy(out):
    m = FINAL.findall(out)
    assert len(m) == 1, out
    return float(m[0])


def table_rows(out):
    """The per-sweep rows of train's summary table: list of lists of cells."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["iter", "loss"])
    assert set(lines[start + 1].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[start + 2:]:
        if not line.strip() or not line.split()[0].isdigit():
            break
        rows.append(line.split())
    return rows


def assert_user_error(rc, out, err, *words):
    assert rc == 2, (out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "error" in lines[0]
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])


# -- train --------------------------------------------------------------------

def test_train_prints_table_threads_and_final_accuracy(capsys):
    rc, out, err = run(capsys, "train", "--max-iter", "3", "--quiet")
    assert rc == 0, err
    assert "Traceback" not in err
    assert "threads:" in out and "fastnmf.get_num_threads()" in out
    assert "warm-up" in out and "excluded" in out
    rows = table_rows(out)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    header = next(line for line in out.splitlines() if line.lstrip().startswith("iter"))
    for col in ("loss", "train acc", "val acc", "test acc", "seconds", "cum. s"):
        assert col in header
    # cumulative seconds add up the per-sweep seconds
    secs = [float(r[5]) for r in rows]
    assert float(rows[-1][6]) == pytest.approx(sum(secs), abs=2e-3)
    assert all(r[3] == "-" for r in rows)  # no validation split without early stopping
    assert "train time:" in out
    assert re.search(r"the rest setup \d+\.\d\d s, per-sweep scoring", out), out
    acc = final_accuracy(out)
    assert 0.5 < acc <= 1.0
    assert out.rstrip().splitlines()[-1].startswith("final test accuracy: ")
    assert err == ""  # --quiet: no progress bar


def test_train_progress_bar_on_stderr(capsys):
    rc, out, err = run(capsys, "train", "--max-iter", "2", "--hidden", "16")
    assert rc == 0
    assert "sweeps" in err and "2/2" in err
    assert "loss" in err and "test" in err and "s/sweep" in err
    assert "sweeps 2/2" not in out  # the bar goes to stderr only


def test_hidden_comma_and_space_separated(capsys, tmp_path):
    for argv in (["--hidden", "20,12"], ["--hidden", "20", "12"], ["--hidden", "20, 12"]):
        path = tmp_path / "m.npz"
        rc, out, err = run(capsys, "train", "--max-iter", "1", "--quiet", "--save", str(path),
                           *argv)
        assert rc == 0, err
        assert "64-20-12-10" in out
        est = load_model(path)
        assert [c.shape for c in est.coefs_] == [(64, 20), (20, 12), (12, 10)]


def test_train_options_reach_the_estimator(capsys, tmp_path):
    path = tmp_path / "m.npz"
    rc, out, err = run(capsys, "train", "--max-iter", "3", "--quiet", "--hidden", "24",
                       "--preset", "paper", "--alpha", "0.001", "--early-stopping",
                       "--seed", "3", "--threads", "1", "--dtype", "float64",
                       "--save", str(path))
    assert rc == 0, err
    est = load_model(path)
    assert est.preset == "paper" and est.alpha == 0.001 and est.early_stopping
    assert est.random_state == 3 and est.n_threads == 1
    assert est.coefs_[0].dtype == np.float64
    assert "threads: 1 " in out
    assert all(r[3] != "-" for r in table_rows(out))  # validation accuracy shown


def test_train_pretrain(capsys):
    rc, out, err = run(capsys, "train", "--max-iter", "2", "--quiet", "--hidden", "16",
                       "--pretrain")
    assert rc == 0, err
    assert "pretrain" in out
    final_accuracy(out)


# -- save / evaluate --------------------------------------------------------------

def test_save_then_evaluate_same_accuracy(capsys, tmp_path):
    path = tmp_path / "model.npz"
    rc, out, err = run(capsys, "train", "--max-iter", "3", "--quiet", "--save", str(path))
    assert rc == 0, err
    assert path.exists()
    acc = final_accuracy(out)
    rc, out, err = run(capsys, "evaluate", str(path))
    assert rc == 0, err
    m = re.search(r"^test accuracy: (\d\.\d{4}) \((\d+) of (\d+)\)$", out, re.M)
    assert m, out
    assert float(m.group(1)) == acc
    # per-class table: 10 classes whose counts add up to the test set
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["class", "n"])
    rows = [line.split() for line in lines[start + 2:start + 12]]
    assert [r[0] for r in rows] == [str(c) for c in range(10)]
    assert sum(int(r[1]) for r in rows) == int(m.group(3))
    assert sum(int(r[2]) for r in rows) == int(m.group(2))
    for r in rows:
        assert float(r[3]) == pytest.approx(int(r[2]) / int(r[1]), abs=1e-4)


def test_evaluate_autoencoder_model(capsys, tmp_path):
    path = tmp_path / "ae.npz"
    rc, out, err = run(capsys, "pretrain", "--hidden", "12", "--nmf-iter", "5",
                       "--save", str(path))
    assert rc == 0, err
    rc, out, err = run(capsys, "evaluate", str(path))
    assert rc == 0, err
    assert "reconstruction error" in out


def test_evaluate_refuses_a_multilabel_model(capsys, tmp_path):
    from fastnmf_dnn import NMFNetClassifier
    d = datasets.load_digits()
    y = d.y_train
    path = tmp_path / "multilabel.npz"
    NMFNetClassifier((8,), max_iter=1).fit(d.X_train, np.c_[y % 2, y < 5]).save(path)
    rc, out, err = run(capsys, "evaluate", str(path))
    assert rc == 2
    assert "multilabel classifier" in err and "Traceback" not in err


# -- checkpoint / resume ----------------------------------------------------------

def test_checkpoint_then_resume_adds_up(capsys, tmp_path):
    ck = tmp_path / "ck.npz"
    model = tmp_path / "model.npz"
    rc, out, err = run(capsys, "train", "--max-iter", "2", "--quiet", "--checkpoint", str(ck))
    assert rc == 0, err
    assert ck.exists()
    rc, out, err = run(capsys, "train", "--max-iter", "5", "--quiet", "--checkpoint", str(ck),
                       "--resume", "--save", str(model))
    assert rc == 0, err
    assert "sweeps 1-2 resumed from" in out and "3 run now" in out
    assert [r[0] for r in table_rows(out)] == ["1", "2", "3", "4", "5"]
    est = load_model(model)
    assert est.n_iter_ == 5
    assert len(est.history_["loss"]) == 5
    resumed_acc = final_accuracy(out)
    # the same as an uninterrupted 5-sweep run
    rc, out, err = run(capsys, "train", "--max-iter", "5", "--quiet")
    assert rc == 0
    assert final_accuracy(out) == resumed_acc


def test_resume_with_other_options_is_a_user_error(capsys, tmp_path):
    ck = tmp_path / "ck.npz"
    assert run(capsys, "train", "--max-iter", "1", "--quiet", "--checkpoint", str(ck))[0] == 0
    rc, out, err = run(capsys, "train", "--max-iter", "2", "--quiet", "--hidden", "30",
                       "--checkpoint", str(ck), "--resume")
    assert_user_error(rc, out, err, "checkpoint", "layer sizes")


# -- plot ---------------------------------------------------------------------------

def test_plot_writes_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    rc, out, err = run(capsys, "train", "--max-iter", "3", "--quiet", "--early-stopping",
                       "--plot", str(path))
    assert rc == 0, err
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5000
    assert f"wrote curves to {path}" in out


def test_plot_without_matplotlib_fails_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    from fastnmf_dnn import plotting
    with pytest.raises(ImportError, match=r'pip install "fastnmf\[plot\]"'):
        plotting.require_matplotlib()
    rc, out, err = run(capsys, "train", "--max-iter", "2", "--quiet",
                       "--plot", str(tmp_path / "c.png"))
    assert_user_error(rc, out, err, 'pip install "fastnmf[plot]"')
    assert "iter" not in out  # nothing trained
    assert not (tmp_path / "c.png").exists()


def test_plot_history_rejects_empty_history(tmp_path):
    pytest.importorskip("matplotlib")
    from fastnmf_dnn.plotting import plot_history
    with pytest.raises(ValueError, match="empty"):
        plot_history({"loss": [], "seconds": []}, tmp_path / "x.png")


# -- IDX files ------------------------------------------------------------------------

@pytest.fixture
def idx_files(tmp_path):
    """Digits as uint8 IDX files (8x8 images, 0..255), raw and gzipped."""
    d = datasets.load_digits(dtype=np.float64)
    paths = {}
    for split, X, y, ext in (("train", d.X_train, d.y_train, ""),
                             ("test", d.X_test, d.y_test, ".gz")):
        img = np.rint(X * 255).astype(np.uint8).reshape(-1, 8, 8)
        paths[f"{split}_images"] = tmp_path / f"{split}-images-idx3-ubyte{ext}"
        paths[f"{split}_labels"] = tmp_path / f"{split}-labels-idx1-ubyte{ext}"
        datasets.write_idx(paths[f"{split}_images"], img)
        datasets.write_idx(paths[f"{split}_labels"], y.astype(np.uint8))
    return paths


def test_train_and_evaluate_on_idx_files(capsys, tmp_path, idx_files):
    model = tmp_path / "m.npz"
    p = {k: str(v) for k, v in idx_files.items()}
    rc, out, err = run(capsys, "train", "--max-iter", "2", "--quiet", "--save", str(model),
                       "--train-images", p["train_images"], "--train-labels", p["train_labels"],
                       "--test-images", p["test_images"], "--test-labels", p["test_labels"])
    assert rc == 0, err
    assert "IDX files" in out and "train 1437 x 64" in out
    acc = final_accuracy(out)
    rc, out, err = run(capsys, "evaluate", str(model), "--test-images", p["test_images"],
                       "--test-labels", p["test_labels"])
    assert rc == 0, err
    assert f"test accuracy: {acc:.4f}" in out


def test_pretrain_on_idx_images_without_labels(capsys, idx_files):
    p = {k: str(v) for k, v in idx_files.items()}
    rc, out, err = run(capsys, "pretrain", "--hidden", "10", "--nmf-iter", "3",
                       "--train-images", p["train_images"], "--test-images", p["test_images"])
    assert rc == 0, err
    assert "reconstruction error" in out


def test_idx_errors(capsys, tmp_path, idx_files):
    p = {k: str(v) for k, v in idx_files.items()}
    rc, out, err = run(capsys, "train", "--train-images", p["train_images"])
    assert_user_error(rc, out, err, "--train-labels", "missing")
    rc, out, err = run(capsys, "train", "--dataset", "digits", "--test-images",
                       p["test_images"], "--test-labels", p["test_labels"])
    assert_user_error(rc, out, err, "not both")
    missing = str(tmp_path / "nope-idx")
    rc, out, err = run(capsys, "train", "--train-images", missing,
                       "--train-labels", p["train_labels"],
                       "--test-images", p["test_images"], "--test-labels", p["test_labels"])
    assert_user_error(rc, out, err, "not found", "nope-idx")
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x03\x04garbage")
    rc, out, err = run(capsys, "train", "--train-images", str(bad),
                       "--train-labels", p["train_labels"],
                       "--test-images", p["test_images"], "--test-labels", p["test_labels"])
    assert_user_error(rc, out, err, "not an IDX file")


# -- pretrain -------------------------------------------------------------------------

@pytest.fixture
def svmlight_files(tmp_path):
    """Digits as svmlight text files, one-based as libsvm writes them (the
    zero pixels not stored: sparse)."""
    from sklearn.datasets import dump_svmlight_file
    d = datasets.load_digits(dtype=np.float64)
    paths = {}
    for split, X, y in (("train", d.X_train, d.y_train), ("test", d.X_test, d.y_test)):
        paths[split] = tmp_path / f"{split}.svm"
        dump_svmlight_file(X, y, str(paths[split]), zero_based=False)
    return paths


def test_train_evaluate_and_pretrain_on_svmlight_files(capsys, tmp_path, svmlight_files):
    """svmlight input is read as a sparse matrix and trains as the same
    data from the dense IDX path would (the same final accuracy)."""
    model = tmp_path / "m.npz"
    tr, te = str(svmlight_files["train"]), str(svmlight_files["test"])
    rc, out, err = run(capsys, "train", "--max-iter", "1", "--quiet", "--train-svmlight", tr,
                       "--test-svmlight", te, "--n-features", "70")
    assert rc == 0, err
    assert "svmlight files, sparse" in out and "train 1437 x 70" in out
    rc, out, err = run(capsys, "train", "--max-iter", "3", "--quiet", "--dtype", "float64",
                       "--save", str(model), "--train-svmlight", tr, "--test-svmlight", te)
    assert rc == 0, err
    assert "svmlight files, sparse" in out and "train 1437 x 64" in out
    acc = final_accuracy(out)
    rc, out, err = run(capsys, "train", "--max-iter", "3", "--quiet", "--dtype", "float64")
    assert rc == 0, err
    assert final_accuracy(out) == acc          # the bundled digits, dense
    rc, out, err = run(capsys, "evaluate", str(model), "--test-svmlight", te)
    assert rc == 0, err
    assert f"test accuracy: {acc:.4f}" in out
    rc, out, err = run(capsys, "pretrain", "--hidden", "10", "--nmf-iter", "3",
                       "--train-svmlight", tr, "--test-svmlight", te)
    assert rc == 0, err
    assert "reconstruction error" in out


def test_svmlight_errors(capsys, tmp_path, svmlight_files):
    tr, te = str(svmlight_files["train"]), str(svmlight_files["test"])
    rc, out, err = run(capsys, "train", "--train-svmlight", tr)
    assert_user_error(rc, out, err, "--test-svmlight", "missing")
    rc, out, err = run(capsys, "train", "--dataset", "digits", "--train-svmlight", tr,
                       "--test-svmlight", te)
    assert_user_error(rc, out, err, "svmlight", "--dataset")
    rc, out, err = run(capsys, "train", "--train-svmlight", tr, "--test-svmlight", te,
                       "--test-images", tr)
    assert_user_error(rc, out, err, "svmlight", "--test-images")
    rc, out, err = run(capsys, "train", "--train-svmlight", str(tmp_path / "nope.svm"),
                       "--test-svmlight", te)
    assert_user_error(rc, out, err, "nope.svm")
    garbage = tmp_path / "garbage.svm"
    garbage.write_text("this is not svmlight\n")
    rc, out, err = run(capsys, "train", "--train-svmlight", str(garbage), "--test-svmlight", te)
    assert_user_error(rc, out, err, "garbage.svm", "svmlight")
    wide = tmp_path / "wide.svm"
    wide.write_text("1 0:1.0 70:2.0\n0 3:1.0\n")
    rc, out, err = run(capsys, "train", "--train-svmlight", tr, "--test-svmlight", str(wide),
                       "--n-features", "64")
    assert_user_error(rc, out, err, "wide.svm", "width 64")
    rc, out, err = run(capsys, "train", "--n-features", "64")
    assert_user_error(rc, out, err, "--n-features", "svmlight")


def test_pretrain_prints_errors(capsys, tmp_path):
    rc, out, err = run(capsys, "pretrain", "--hidden", "24,12", "--nmf-iter", "10",
                       "--save", str(tmp_path / "ae.npz"))
    assert rc == 0, err
    assert "threads:" in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["layer"])
    assert "NMF error" in lines[start] and "encoder error" in lines[start]
    rows = [line.split() for line in lines[start + 2:start + 4]]
    assert [r[0] for r in rows] == ["1", "2"]
    for r in rows:
        assert 0 <= float(r[-2]) < 1 and 0 <= float(r[-1]) < 2
    m = re.search(r"reconstruction error .*: train (\d+\.\d+), test (\d+\.\d+)", out)
    assert m, out
    assert 0 < float(m.group(2)) < 1
    assert load_model(tmp_path / "ae.npz").components_[0].shape == (24, 64)


# -- user errors ----------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["train", "--hidden", "0"], ["--hidden", ">= 1"]),
    (["train", "--hidden", "abc"], ["--hidden", "'abc'"]),
    (["train", "--hidden", "10,,x"], ["--hidden", "'x'"]),
    (["train", "--max-iter", "-1"], ["--max-iter", ">= 0"]),
    (["train", "--max-iter", "two"], ["--max-iter", "'two'"]),
    (["train", "--threads", "0"], ["--threads"]),
    (["train", "--alpha", "-1"], ["--alpha"]),
    (["train", "--alpha", "inf"], ["--alpha"]),
    (["train", "--seed", "-3"], ["--seed"]),
    (["train", "--dataset", "cifar"], ["--dataset", "cifar"]),
    (["train", "--dtype", "float16"], ["--dtype"]),
    (["train", "--resume"], ["--resume", "--checkpoint"]),
    (["train", "--data-home", "/tmp"], ["--data-home", "digits"]),
    (["train", "--no-such-option"], ["--no-such-option"]),
    (["pretrain", "--nmf-iter", "0"], ["--nmf-iter"]),
    (["evaluate"], ["MODEL"]),
    ([], ["command"]),
    (["frobnicate"], ["frobnicate"]),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, words):
    rc, out, err = run(capsys, *argv)
    assert_user_error(rc, out, err, *words)


def test_missing_model_file(capsys, tmp_path):
    rc, out, err = run(capsys, "evaluate", str(tmp_path / "missing.npz"))
    assert_user_error(rc, out, err, "missing.npz", "does not exist")


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04truncated"])
def test_corrupt_model_file(capsys, tmp_path, content):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(content)
    rc, out, err = run(capsys, "evaluate", str(path))
    assert_user_error(rc, out, err, "corrupt.npz", "not a fastnmf_dnn model file")


def test_npz_that_is_not_a_model(capsys, tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    rc, out, err = run(capsys, "evaluate", str(path))
    assert_user_error(rc, out, err, "other.npz", "not a fastnmf_dnn model file")


def test_model_of_other_width_than_data(capsys, tmp_path, idx_files):
    rng = np.random.default_rng(0)
    wide = tmp_path / "wide-idx"
    datasets.write_idx(wide, rng.integers(0, 255, size=(20, 5, 5), dtype=np.uint8))
    labels = tmp_path / "wide-labels"
    datasets.write_idx(labels, np.arange(20, dtype=np.uint8) % 10)
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--max-iter", "1", "--quiet", "--save", str(model))[0] == 0
    rc, out, err = run(capsys, "evaluate", str(model), "--test-images", str(wide),
                       "--test-labels", str(labels))
    assert_user_error(rc, out, err, "25 features")


def test_dataset_not_found(capsys, tmp_path):
    rc, out, err = run(capsys, "train", "--dataset", "fashion-mnist",
                       "--data-home", str(tmp_path / "empty"))
    assert_user_error(rc, out, err, "Fashion-MNIST not found", "--download")


def test_help(capsys):
    rc, out, err = run(capsys, "--help")
    assert rc == 0
    for cmd in ("train", "evaluate", "pretrain"):
        assert cmd in out
    for cmd, opts in (("train", ["--hidden", "--max-iter", "--checkpoint", "--resume", "--plot",
                                 "--quiet", "--threads", "--train-images"]),
                      ("evaluate", ["MODEL.npz", "--test-images", "--dataset"]),
                      ("pretrain", ["--nmf-iter", "--save", "--hidden"])):
        rc, out, err = run(capsys, cmd, "--help")
        assert rc == 0 and err == ""
        for o in opts:
            assert o in out, (cmd, o)


# -- the installed console script -----------------------------------------------------

def test_console_script_train(tmp_path):
    exe = shutil.which("fastnmf-dnn", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("console script fastnmf-dnn is not installed next to this Python")
    env = dict(os.environ, HOME=str(tmp_path / "home"))
    env.pop("FASTNMF_DATA", None)
    proc = subprocess.run([exe, "train", "--max-iter", "2"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert 0.5 < final_accuracy(proc.stdout) <= 1.0
    assert proc.stdout.rstrip().splitlines()[-1].startswith("final test accuracy: ")
    assert [r[0] for r in table_rows(proc.stdout)] == ["1", "2"]
    assert [p.name for p in tmp_path.iterdir() if p.name != "home"] == []  # nothing in cwd


# -- warm-up ------------------------------------------------------------------

def test_warm_up_rows_cross_the_same_thresholds_as_the_fit():
    from fastnmf._kernels import _SERIAL_BELOW
    from fastnmf_dnn._passes import PARALLEL_FROM
    from fastnmf_dnn._warm_up import warm_up_rows
    assert warm_up_rows(10, [64, 100, 10]) == 10            # fewer rows than the minimum
    assert warm_up_rows(1437, [64, 100, 10]) == 1024        # digits: 1024 x 64 scans in parallel
    assert warm_up_rows(60000, [784, 500, 500, 10]) == 8389  # Fashion: 8389 x 500 passes too
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 200_000))
        widths = [int(w) for w in rng.integers(1, 2000, size=rng.integers(1, 5))]
        m = warm_up_rows(n, widths)
        assert min(n, 64) <= m <= n
        for w in widths:
            for width in (w, w + 1):
                for t in (PARALLEL_FROM, _SERIAL_BELOW):
                    assert (m * width >= t) == (n * width >= t), (n, widths, m, width, t)


def test_nothing_compiles_after_the_warm_up(tmp_path):
    """With an empty Numba cache, every kernel the timed fit runs is compiled
    by the warm-up (a warm-up on 64 rows left the parallel scan to the fit:
    2.5 s of the main command's 'setup' in a fresh install)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), NUMBA_DEBUG_CACHE="1",
               HOME=str(tmp_path))
    # cwd: not the checkout, whose source tree (no compiled extension in a
    # non-editable install) would shadow the installed package
    r = subprocess.run([sys.executable, "-m", "fastnmf_dnn", "train", "--max-iter", "3",
                        "--quiet"], env=env, capture_output=True, text=True, timeout=600,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_nothing_saved_after(r.stdout, "warm-up")
