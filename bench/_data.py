"""Data for the benchmarks: full Fashion-MNIST from Debian's package, digits.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist`` (IDX
files under /usr/share/datasets/fashion-mnist); ``ensure_fashion_mnist``
installs it with apt-get when it is missing and we are root. Benchmarks
only: no test needs it.
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def read_idx(path) -> np.ndarray:
    """Read an IDX (MNIST-format) file, gzipped or raw, with header checks."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but payload has {len(data) - offset} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


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
    X = read_idx(d / f"{split}-images-idx3-ubyte.gz").reshape(-1, 784).astype(dtype) / 255
    y = read_idx(d / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
    return X, y


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
