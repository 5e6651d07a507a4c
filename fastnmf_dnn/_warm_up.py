"""Warm-up fits: compile (or load from Numba's cache) everything a timed fit
runs before the timing starts (the CLI's and the benchmarks' warm-ups)."""
from __future__ import annotations

import time

import numpy as np

from ._passes import PARALLEL_FROM


def warm_up_rows(n_samples: int, widths, minimum: int = 64) -> int:
    """Rows of a warm-up fit that takes the same compiled builds as a fit on
    ``n_samples`` rows whose arrays have the given ``widths`` (features,
    layer widths, outputs; each also with its ones column).

    The passes of :mod:`fastnmf_dnn._passes` and fastnmf's scans pick a
    serial or a parallel build by an array's size; each build is compiled
    (or loaded from Numba's cache) at its first call. A warm-up on a few rows runs only the serial builds,
    and the real fit then compiled the parallel ones inside its timed
    region (session 20: 2.5 s of the README's main command's first run on
    digits, in a fresh install). The smallest row count, at least
    ``minimum`` and at most ``n_samples``, whose arrays fall on the same
    side of every threshold as the real fit's. O(len(widths)).
    """
    from fastnmf._kernels import _SERIAL_BELOW
    n = int(n_samples)
    m = min(n, int(minimum))
    for w in widths:
        for width in (int(w), int(w) + 1):
            for threshold in (PARALLEL_FROM, _SERIAL_BELOW):
                if width > 0 and n * width >= threshold:
                    m = max(m, -(-threshold // width))
    return min(m, n)


def warm_up_fit(est, X, y, widths, eval_set=None):
    """Fit a clone of ``est`` for one sweep on :func:`warm_up_rows` samples
    of X (``widths``: the arrays' widths besides the samples), scoring the
    same share of ``eval_set`` if given, so that Numba compilation (or
    loading its cache) and other first-call costs stay out of the timed
    fit. Best effort: a failure is reported, not raised (the real fit
    reports real problems). Returns ``(seconds, rows, note)``."""
    from sklearn.base import clone
    m = warm_up_rows(X.shape[0], widths)
    if y is not None and np.unique(y[:m]).size < 2:
        return 0.0, m, "skipped (the first samples hold one class)"
    w = clone(est)
    params = {"max_iter": 1} if "max_iter" in w.get_params() else {"nmf_iter": 2}
    if "early_stopping" in w.get_params():
        params.update(early_stopping=False, warm_start=False, verbose=False)
    w.set_params(**params)
    kw = {}
    if eval_set is not None and eval_set[0].shape[0]:
        e = warm_up_rows(eval_set[0].shape[0], widths)
        kw["eval_set"] = (eval_set[0][:e], eval_set[1][:e])
    t0 = time.perf_counter()
    try:
        w.fit(X[:m], y[:m], **kw) if y is not None else w.fit(X[:m])
    except Exception as exc:
        return time.perf_counter() - t0, m, f"incomplete ({type(exc).__name__})"
    return time.perf_counter() - t0, m, None
