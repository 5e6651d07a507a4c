"""NMFNetRegressor against PyTorch Adam (squared error) on regression data.

    python bench/regression.py [--cases diabetes,digits-half,digits-sum,fashion-rows]
                               [--variants default,inactive_step=1,width_ridge=0.3]
                               [--seeds 0,1,2] [--threads 2] [--out FILE]

Every case trains the same ReLU network by ``NMFNetRegressor`` (its defaults,
then each variant: the defaults with the options named) and by Adam (lr 1e-3,
batch 128, mean squared error, PyTorch's default init, in a child process
that never imports fastnmf: ``backprop.run_backprop(loss="mse")``), on the
same standardised targets (training mean and standard deviation; R^2 does
not depend on that scale). The table gives, per method, the test R^2 at its
best iteration and at its last, averaged over the seeds, their spread, and
how far the last falls below the best (a curve that declines, i.e.
overfits, shows there), with seconds per sweep / epoch.

Cases (no download but ``fashion-rows``, which needs Debian's
``dataset-fashion-mnist``, installed by ``_data.fashion_mnist``):

* ``diabetes``: scikit-learn's diabetes data, 10 standardised features, 309
  training / 133 test samples (fixed split), one noisy target; 64-32 hidden.
* ``digits-half``: the bundled digits (compare_dnn's split), the top four
  rows of an 8 x 8 image -> its bottom four rows (32 outputs); 100-100.
* ``digits-sum``: the same inputs -> the bottom half's pixel sum; 100-100.
* ``fashion-rows``: the first 20,000 Fashion-MNIST training images (full
  test set), the top 14 rows -> the 14 sums of the bottom rows; 200-200.
"""
from __future__ import annotations

import fastnmf  # first: short BLAS/OpenMP spin-waits before numpy loads BLAS  # noqa: F401

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backprop import run_backprop  # noqa: E402
from compare_dnn import _override, load, run_nmf  # noqa: E402

import fastnmf_dnn  # noqa: E402

#: name -> (hidden widths, NMF sweeps, Adam epochs)
CASES = {
    "diabetes": ((64, 32), 30, 300),
    "digits-half": ((100, 100), 30, 200),
    "digits-sum": ((100, 100), 30, 200),
    "fashion-rows": ((200, 200), 30, 30),
}
VARIANTS = ("default", "inactive_step=1", "width_ridge=0.1", "width_ridge=0.3")


def case_data(name):
    """``(Xtr, Ytr, Xte, Yte)``: float32 inputs, float64 targets (n, c),
    the targets standardised with the training set's mean and standard
    deviation (a constant output keeps its scale)."""
    if name == "diabetes":
        from sklearn.datasets import load_diabetes
        from sklearn.model_selection import train_test_split
        X, y = load_diabetes(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
        mu, sd = Xtr.mean(0), Xtr.std(0)
        Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
        Ytr, Yte = ytr[:, None], yte[:, None]
    elif name in ("digits-half", "digits-sum"):
        Xd, _, Xde, _ = load("digits")
        img, imge = Xd.reshape(-1, 8, 8), Xde.reshape(-1, 8, 8)
        Xtr, Xte = img[:, :4].reshape(len(img), -1), imge[:, :4].reshape(len(imge), -1)
        if name == "digits-half":
            Ytr, Yte = img[:, 4:].reshape(len(img), -1), imge[:, 4:].reshape(len(imge), -1)
        else:
            Ytr, Yte = img[:, 4:].sum((1, 2))[:, None], imge[:, 4:].sum((1, 2))[:, None]
    elif name == "fashion-rows":
        Xf, _, Xfe, _ = load("fashion")
        img, imge = Xf[:20000].reshape(-1, 28, 28), Xfe.reshape(-1, 28, 28)
        Xtr, Xte = img[:, :14].reshape(len(img), -1), imge[:, :14].reshape(len(imge), -1)
        Ytr, Yte = img[:, 14:].sum(2), imge[:, 14:].sum(2)
    else:
        raise ValueError(f"unknown case {name!r}; known: {', '.join(CASES)}")
    Ytr, Yte = np.asarray(Ytr, np.float64), np.asarray(Yte, np.float64)
    m, s = Ytr.mean(0), Ytr.std(0)
    s = np.where(s > 0, s, 1.0)
    return (np.ascontiguousarray(Xtr, np.float32), (Ytr - m) / s,
            np.ascontiguousarray(Xte, np.float32), (Yte - m) / s)


def summarize(runs):
    """Per-seed rows -> ``(mean best, its min, max, mean last, mean decline,
    mean best iteration, seconds per iteration)``."""
    best = np.array([max(r[1] for r in rows) for rows in runs])
    at = np.array([max(rows, key=lambda r: r[1])[0] for rows in runs])
    last = np.array([rows[-1][1] for rows in runs])
    per_it = np.median([rows[-1][2] / rows[-1][0] for rows in runs])
    return (best.mean(), best.min(), best.max(), last.mean(), (best - last).mean(),
            at.mean(), per_it)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="'default' or option=value[+option=value] (NMFNetRegressor keywords)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from compare import machine
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = [f"Machine: {machine()}; torch threads = fastnmf threads = {args.threads}; "
             f"seeds {args.seeds}", "",
             "| case (hidden) | method | best test R^2: mean (min-max) | at iteration | "
             "last | best - last | s / iteration |", "|---|---|---|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    for name in args.cases.split(","):
        hidden, sweeps, epochs = CASES[name]
        Xtr, Ytr, Xte, Yte = case_data(name)
        t0 = time.perf_counter()
        # one throwaway fit: Numba compilation (from cache) outside the timings
        run_nmf(Xtr[:200], Ytr[:200], Xte[:50], Yte[:50], hidden, 1, args.threads, 0,
                estimator=fastnmf_dnn.NMFNetRegressor)
        results = [("Adam, MSE (%d epochs)" % epochs,
                    [run_backprop(Xtr, Ytr, Xte, Yte, hidden, epochs, args.threads, seed,
                                  loss="mse") for seed in seeds])]
        for v in args.variants.split(","):
            ov = {} if v == "default" else dict(_override(p) for p in v.split("+"))
            label = f"NMF {v} ({sweeps} sweeps)"
            results.append((label, [run_nmf(Xtr, Ytr, Xte, Yte, hidden, sweeps, args.threads,
                                             seed, ov, estimator=fastnmf_dnn.NMFNetRegressor)[0]
                                     for seed in seeds]))
        case = f"{name} ({'-'.join(map(str, hidden))}; {len(Xtr)} / {len(Xte)})"
        for label, runs in results:
            b, lo, hi, last, drop, at, per = summarize(runs)
            lines.append(f"| {case} | {label} | {b:.3f} ({lo:.3f}-{hi:.3f}) | {at:.0f} | "
                         f"{last:.3f} | {drop:.3f} | {per:.4f} |")
            print(lines[-1], flush=True)
        print(f"  ({name}: {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
