"""Training curves as a PNG file.

matplotlib is optional (``pip install "fastnmf[plot]"``) and imported only
when a plot is drawn; nothing here touches pyplot or the global backend (the
figure is a bare :class:`matplotlib.figure.Figure` written by its own Agg
canvas), so it is safe to call from scripts, servers and notebooks alike.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["INSTALL_HINT", "plot_history", "require_matplotlib"]

INSTALL_HINT = 'plotting needs matplotlib, which is not installed: pip install "fastnmf[plot]"'

_SCORES = (("train_score", "train"), ("validation_score", "validation"), ("eval_score", "test"))


def require_matplotlib():
    """Import and return :mod:`matplotlib`, or raise ImportError with the install hint.

    Call it before a long training run so that a missing matplotlib is
    reported before the work, not after it.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return matplotlib


def _series(values):
    """A list with None entries as a float array with NaN (gaps in the line)."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def plot_history(history, path, *, score_name="accuracy", title=None, dpi=100):
    """Write the training curves of ``history`` to ``path`` as a PNG.

    Four panels: the training loss and the scores, each against the sweep
    number and against the cumulative training time (the sum of the
    per-sweep ``seconds``, i.e. without scoring or checkpoint time).

    Parameters
    ----------
    history : dict of lists
        An estimator's ``history_``: ``loss`` and ``seconds`` per sweep, and
        optionally ``train_score``, ``validation_score``, ``eval_score``
        (None entries, e.g. no validation split, are left out).
    path : str or os.PathLike
        Output file; always PNG, whatever its extension.
    score_name : str, default "accuracy"
        Label of the score axis ("R^2" for a regressor).
    title : str, optional
        Figure title.
    dpi : int, default 100

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        matplotlib is not installed (the message says how to install it).
    ValueError
        ``history`` has no sweeps, or its lists differ in length.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    loss = _series(history.get("loss", []))
    n = loss.size
    if n == 0:
        raise ValueError("the training history is empty: nothing to plot")
    seconds = _series(history.get("seconds", [0.0] * n))
    if seconds.size != n:
        raise ValueError(f"history has {n} losses but {seconds.size} timings")
    sweeps = np.arange(1, n + 1)
    elapsed = np.cumsum(np.nan_to_num(seconds))
    scores = []
    for key, label in _SCORES:
        vals = _series(history.get(key) or [])
        if vals.size and not np.isnan(vals).all():
            if vals.size != n:
                raise ValueError(f"history has {n} losses but {vals.size} entries of {key!r}")
            scores.append((label, vals))

    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex="col")
    positive = bool(np.all(loss[np.isfinite(loss)] > 0))
    marker = "o" if n <= 40 else None
    for col, (x, xlabel) in enumerate(((sweeps, "sweep"),
                                       (elapsed, "training time (s, cumulative, sweeps only)"))):
        ax = axes[0, col]
        ax.plot(x, loss, marker=marker, markersize=3, color="C3", label="train loss")
        if positive:
            ax.set_yscale("log")
        ax.set_ylabel("loss (half mean squared error or hinge)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper right")
        ax = axes[1, col]
        for i, (label, vals) in enumerate(scores):
            ax.plot(x, vals, marker=marker, markersize=3, color=f"C{i}", label=label)
        ax.set_ylabel(score_name)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        if scores:
            ax.legend(loc="lower right")
    if n <= 20:
        axes[1, 0].set_xticks(sweeps)
    best = [(label, np.nanmax(vals)) for label, vals in scores if label != "train"]
    sub = ", ".join(f"best {label} {score_name} {v:.4f}" for label, v in best
                    if not math.isnan(v))
    head = title or "training curves"
    fig.suptitle(f"{head}\n{n} sweeps, {elapsed[-1]:.2f} s" + (f"; {sub}" if sub else ""))
    path = Path(path)
    fig.savefig(path, format="png", dpi=dpi)
    return path
