"""bench/compare.py's sparse table measures what it says: the error it
reads off scikit-learn's sparse fit is the true relative error, and the
synthetic corpus has the shape the README describes."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import compare  # noqa: E402
from _data import topic_documents  # noqa: E402


def test_sparse_rel_err_is_the_dense_error():
    rng = np.random.default_rng(0)
    A = sp.random(60, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    W, H = rng.random((60, 3)), rng.random((3, 40))
    dense = A.toarray().astype(np.float64)
    expected = np.linalg.norm(dense - W @ H) / np.linalg.norm(dense)
    assert abs(compare.sparse_rel_err(A, W, H) - expected) < 1e-12
    assert compare.sparse_rel_err(A, np.zeros((60, 3)), H) == 1.0
    assert abs(compare.rel_err(dense, W, H) - expected) < 1e-12


def test_topic_documents_is_a_tfidf_corpus():
    X = topic_documents(300, 500, n_topics=5, doc_len=40.0, seed=3)
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float32
    assert X.shape == (300, 500)
    assert (X.data > 0).all()
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0, rtol=1e-5)   # l2 rows
    distinct = np.diff(X.indptr)
    assert 10 < distinct.mean() < 40          # repeats merge: fewer distinct words than draws
    # deterministic for a seed
    Y = topic_documents(300, 500, n_topics=5, doc_len=40.0, seed=3)
    assert (X != Y).nnz == 0
    # low-rank structure: a rank-5 NMF explains more than it would of shuffled data
    import fastnmf
    fit = fastnmf.nmf(X, 5, random_state=0, max_iter=100).errors[-1]
    rng = np.random.default_rng(0)
    Z = X.tocoo()
    shuffled = sp.csr_matrix((Z.data, (Z.row, rng.permutation(Z.col))), shape=X.shape)
    assert fit < fastnmf.nmf(shuffled, 5, random_state=0, max_iter=100).errors[-1]


def test_kl_error_is_the_divergence_over_the_data_sum():
    """bench/compare.py's KL table reads scikit-learn's divergence over
    sum(X), dense or sparse, as fastnmf's ``errors`` with loss="kl"."""
    rng = np.random.default_rng(0)
    A = sp.random(50, 30, density=0.3, format="csr", random_state=2, dtype=np.float64)
    W, H = rng.random((50, 3)) + 0.1, rng.random((3, 30)) + 0.1
    dense = A.toarray()
    P = W @ H
    pos = dense > 0
    d = np.sum(dense[pos] * np.log(dense[pos] / P[pos])) - dense.sum() + P.sum()
    assert abs(compare.kl_error(A, W, H) - d / dense.sum()) < 1e-12
    assert abs(compare.kl_error(dense, W, H) - d / dense.sum()) < 1e-12
    import fastnmf
    r = fastnmf.nmf(A, 3, solver="mu", loss="kl", init=(W, H), max_iter=0)
    assert abs(r.errors[-1] - d / dense.sum()) < 1e-12


def test_topic_documents_labels_are_the_dominant_topics():
    X, y = topic_documents(300, 500, n_topics=5, doc_len=40.0, seed=3, labels=True)
    assert (X != topic_documents(300, 500, n_topics=5, doc_len=40.0, seed=3)).nnz == 0
    assert y.shape == (300,) and set(np.unique(y)) <= set(range(5))
    assert len(np.unique(y)) >= 3


def test_sparse_input_bench_runs_and_reports_both_fits(tmp_path, capsys):
    """bench/sparse_input.py on a tiny corpus: the table has the row, and
    the two fits agree on accuracy (the same solves on the same data)."""
    import sparse_input
    out = tmp_path / "table.md"
    sparse_input.main(["--docs", "400", "--words", "150", "--hidden", "8", "--sweeps", "2",
                       "--rounds", "1", "--threads", "1", "--out", str(out)])
    text = out.read_text()
    assert "sweep dense / sparse" in text and "320 x 150" in text
    row = next(line for line in text.splitlines() if line.startswith("| 320 x 150"))
    acc_dense, acc_sparse = (float(v) for v in row.split("|")[7].split("/"))
    assert abs(acc_dense - acc_sparse) <= 0.01


def test_sparse_input_bench_compares_the_input_solvers(tmp_path):
    """--solvers: input_solver direct against cg on the sparse X, one row per
    width, the two fits' accuracies close (CG solves to 1e-4); with a list,
    every solver named, a ratio per CG solver, and their CG iterations."""
    import sparse_input
    out = tmp_path / "solvers.md"
    sparse_input.main(["--solvers", "--docs", "400", "--words", "150", "--hidden", "8",
                       "--sweeps", "2", "--rounds", "1", "--threads", "1", "--out", str(out)])
    text = out.read_text()
    assert "input_solver direct / cg" in text and "sweep direct / cg" in text
    row = next(line for line in text.splitlines() if line.startswith("| 320 x 150"))
    cells = row.split("|")
    assert float(cells[5].strip(" *x")) > 0
    assert 0 < float(cells[6]) < 500
    acc_direct, acc_cg = (float(v) for v in cells[7].split("/"))
    assert abs(acc_direct - acc_cg) <= 0.02
    sparse_input.main(["--solvers", "direct,cg,cg-jacobi", "--docs", "400", "--words", "150",
                       "--hidden", "8", "--sweeps", "2", "--rounds", "1", "--threads", "1",
                       "--out", str(out)])
    text = out.read_text()
    assert "direct / cg | direct / cg-jacobi" in text
    row = next(line for line in text.splitlines() if line.startswith("| 320 x 150"))
    cells = row.split("|")
    assert float(cells[5].strip(" *x")) > 0 and float(cells[6].strip(" *x")) > 0
    assert all(0 < float(v) < 500 for v in cells[7].split("/"))
    assert len(cells[8].split("/")) == 3
    with pytest.raises(SystemExit):
        sparse_input.main(["--solvers", "direct,lu", "--docs", "400", "--words", "150"])
