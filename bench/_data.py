"""Data for the benchmarks: full Fashion-MNIST from Debian's package, digits.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist`` (IDX
files under /usr/share/datasets/fashion-mnist); ``ensure_fashion_mnist``
installs it with apt-get when it is missing and we are root. Benchmarks
only: no test needs it. Reading and scaling are fastnmf_dnn.datasets'.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from fastnmf_dnn import datasets as _datasets

FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def read_idx(path, *, start=0, stop=None) -> np.ndarray:
    """Read an IDX (MNIST-format) file, gzipped or raw, with header checks.

    Delegates to :func:`fastnmf_dnn.datasets.read_idx` (records ``start:stop``).
    """
    return _datasets.read_idx(path, start=start, stop=stop)


def ensure_fashion_mnist() -> Path:
    if (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        return FASHION_DIR
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"], check=True)
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        raise RuntimeError("Fashion-MNIST not found: apt-get install dataset-fashion-mnist")
    return FASHION_DIR


def fashion_mnist(split: str = "train", dtype=np.float32):
    """(X (N, 784) in [0, 1], y (N,)) for split 'train' (60000) or 't10k' (10000)."""
    d = ensure_fashion_mnist()
    return _datasets.load_idx_pair(d / f"{split}-images-idx3-ubyte.gz",
                                   d / f"{split}-labels-idx1-ubyte.gz", dtype=dtype)


def digits(dtype=np.float32):
    from fastnmf.datasets import load_digits
    X, y = load_digits(dtype=dtype)
    return X, y


def problem(m, n, k, dtype, seed=0):
    """Synthetic nonnegative (A, U, V) of shapes (m, n), (m, k), (k, n)."""
    rng = np.random.default_rng(seed)
    A = rng.random((m, n), dtype=np.float64).astype(dtype)
    U = rng.random((m, k), dtype=np.float64).astype(dtype)
    V = rng.random((k, n), dtype=np.float64).astype(dtype)
    return A, U, V


def topic_documents(n_docs: int, n_words: int, n_topics: int = 20, doc_len: float = 120.0,
                    seed: int = 0, labels: bool = False):
    """A synthetic bag-of-words corpus as a tf-idf matrix (scipy CSR, float32,
    rows = documents, l2-normalised as scikit-learn's TfidfVectorizer does).

    Drawn from a topic model (no download, and the sizes are free): each of
    ``n_topics`` topics is a Dirichlet(0.05) distribution over the
    ``n_words`` words (a few hundred words carry most of a topic); each
    document mixes topics with Dirichlet(0.1) weights (mostly one to three
    topics) and draws Poisson(``doc_len``) words. About ``doc_len``
    distinct words per document, i.e. density ~ doc_len / n_words: the
    shape of text data that NMF topic extraction runs on.

    ``labels``: return ``(X, y)``, y each document's dominant topic (a
    text classification task with ``n_topics`` classes; the same X).
    """
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    phi = rng.dirichlet(np.full(n_words, 0.05), size=n_topics)       # (topics, words)
    theta = rng.dirichlet(np.full(n_topics, 0.1), size=n_docs)       # (docs, topics)
    lengths = np.maximum(rng.poisson(doc_len, n_docs), 1)
    doc = np.repeat(np.arange(n_docs), lengths)
    # topic of every token, then its word, by inverse-CDF draws
    tcdf = np.cumsum(theta, axis=1)
    tcdf[:, -1] = 1.0
    topic = (rng.random(doc.size)[:, None] > tcdf[doc]).sum(axis=1)
    wcdf = np.cumsum(phi, axis=1)
    wcdf[:, -1] = 1.0
    wcdf += np.arange(n_topics)[:, None]                 # topic t's CDF lies in [t, t + 1]
    word = np.searchsorted(wcdf.ravel(), topic + rng.random(doc.size), side="right")
    word = np.minimum(word - topic * n_words, n_words - 1)
    counts = sp.coo_matrix((np.ones(doc.size, np.float32), (doc, word)),
                           shape=(n_docs, n_words)).tocsr()
    counts.sum_duplicates()
    X = TfidfTransformer(sublinear_tf=True).fit_transform(counts).astype(np.float32).tocsr()
    return (X, theta.argmax(axis=1)) if labels else X
