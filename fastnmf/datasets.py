"""The small dataset bundled with fastnmf (no download, no scikit-learn).

``load_digits`` returns the UCI optical-recognition handwritten digits test
set as distributed with scikit-learn (1797 images of 8x8 pixels, values
0..16; Alpaydin & Kaynak 1998, CC BY 4.0), stored in ``fastnmf/data``.
"""
from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_digits"]


def load_digits(*, dtype=np.float64):
    """Return ``(X, y)``: X (1797, 64) pixel intensities 0..16, y (1797,) labels 0..9."""
    with resources.files(__package__).joinpath("data/digits.npz").open("rb") as fh:
        with np.load(fh) as z:
            return z["data"].astype(dtype), z["target"].astype(np.int64)
