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
