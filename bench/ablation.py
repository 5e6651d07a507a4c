"""Ablation of the NMF trainer's options, next to PyTorch Adam, in one run.

    python bench/ablation.py                                   # every case and variant
    python bench/ablation.py --cases digits,fashion5k          # a subset
    python bench/ablation.py --variants default,paper,no-bias  # a subset
    python bench/ablation.py --out bench/results/ablation.md

Cases: ``digits`` (64-100-10, bundled, fixed stratified 80/20 split),
``fashion`` (784-500-500-10, the full 60k/10k split) and ``fashion5k`` (the
same network on the first 5,000 training images: the small-train-set case,
where the question is whether test accuracy declines over sweeps).

Every variant is ``NMFNetClassifier`` with the defaults plus the overrides
listed in ``VARIANTS`` (float32, ``--threads`` threads, seed 0), trained for
``--sweeps`` sweeps with the test set scored after each sweep (monitoring
only). The table gives test accuracy after sweeps 1, 2, 5, 10 and the last,
the best and the sweep it came at, the last sweep's drop from the best (a
declining curve shows there), and seconds per sweep (median). Adam backprop
(lr 1e-3, batch 128, cross-entropy, same shape) runs in the same process
for ``--epochs`` epochs (see compare_dnn.py). Numba compilation is done by
a warm-up fit before anything is timed.

``--holdout F`` (0 < F < 1): NMF trains on the rest of the training set and
holds out a stratified fraction F of it (``NMFNetClassifier``'s own
``early_stopping`` split, which here never stops: ``n_iter_no_change`` is
larger than ``--sweeps``); the table then adds the best validation accuracy
and the test accuracy at that sweep, i.e. a sweep chosen without looking at
the test set. The other columns stay test accuracies per sweep. (Adam's row
is unchanged: its best test accuracy over all epochs, the target's
reference.)
"""
from __future__ import annotations

import fastnmf  # noqa: F401  (first: short BLAS/OpenMP spin-waits before numpy loads BLAS)

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backprop import run_backprop  # noqa: E402
from compare_dnn import _override, load, warm_up  # noqa: E402

import fastnmf_dnn  # noqa: E402

#: name -> NMFNetClassifier overrides (on top of its defaults).
VARIANTS = {
    "default": {},
    "paper": {"preset": "paper"},
    "no-extrapolate": {"extrapolate": 1.0},
    "extrapolate=2": {"extrapolate": 2.0},
    "extrapolate=3": {"extrapolate": 3.0},
    "extrapolate=4": {"extrapolate": 4.0},    # the default of sessions 12-21
    "inactive_step=1": {"inactive_step": 1.0},
    "inactive_step=0.5": {"inactive_step": 0.5},
    "inactive_step=1+extrapolate=3": {"inactive_step": 1.0, "extrapolate": 3.0},
    "inactive_step=0": {"inactive_step": 0.0},
    "no-bias": {"bias": False},
    "alpha=0": {"alpha": 0.0},
    "alpha=1e-2": {"alpha": 1e-2},
    "no-decay": {"width_ridge": 0.0},
    "width_ridge=0.01": {"width_ridge": 0.01},
    "width_ridge=0.06": {"width_ridge": 0.06},
    "rel_ridge=20 (old)": {"width_ridge": 0.0, "rel_ridge": 20.0},
    "input_ridge=0": {"input_ridge": 0.0},
    "input_ridge=1e-3": {"input_ridge": 1e-3},
    "input_damping=0": {"input_damping": 0.0},
    "input_damping=0.02": {"input_damping": 0.02},
    "ridge=30": {"ridge": 30.0},
    "z_prox=0": {"z_prox": 0.0},
    "z_prox=1": {"z_prox": 1.0},
    "omega=1": {"omega": 1.0},
    "inner_iter=2": {"inner_iter": 2},
    "z_iter=2": {"z_iter": 2},
    "z_iter=5": {"z_iter": 5},
    "z_solver=mu+z_iter=5": {"z_solver": "mu", "z_iter": 5},   # the default until session 16
    "z_solver=hals": {"z_solver": "hals"},
    "no-margin": {"margin_targets": False},
    "no-refit": {"refit_output": False},
    # l1 on the output targets needs MU or HALS: read against the MU row
    "l1=1e-3+z_solver=mu+z_iter=5": {"l1": 1e-3, "z_solver": "mu", "z_iter": 5},
    "keep-targets": {"refresh_targets": False},
    "minibatch-10k": {"batch_size": 10000, "weight_prox": 0.1},
    "init_scale=0.5": {"init_scale": 0.5},
    "pretrain": {"pretrain": True},
    "z_prox=0.1": {"z_prox": 0.1},
    "bottom_up": {"bottom_up": True},
    "bottom_up+z_prox=0.1": {"bottom_up": True, "z_prox": 0.1},
}
CASES = {
    "digits": ("digits", (100,), None),
    "fashion": ("fashion", (500, 500), None),
    "fashion5k": ("fashion", (500, 500), 5000),
}


def variant_overrides(name):
    """The overrides of a named variant, or of ``KEY=VALUE[+KEY=VALUE...]``."""
    if name in VARIANTS:
        return VARIANTS[name]
    return dict(_override(part) for part in name.split("+"))


def run_variant(Xtr, ytr, Xte, yte, hidden, overrides, sweeps, threads, holdout=0.0):
    """Rows ``(sweep, test accuracy, seconds, training accuracy, validation
    accuracy or None)``, and the wall time."""
    rows = []

    def cb(est, it, rec):
        rows.append((it, rec["eval_score"], rec["seconds"], rec["train_score"],
                     rec["validation_score"]))

    t0 = time.perf_counter()
    split = {"early_stopping": True, "validation_fraction": holdout} if holdout else {}
    clf = fastnmf_dnn.NMFNetClassifier(hidden, max_iter=sweeps, n_iter_no_change=sweeps + 1,
                                       random_state=0, n_threads=threads, **split, **overrides)
    clf.fit(Xtr, ytr, eval_set=(Xte, yte), callback=cb)
    return rows, time.perf_counter() - t0


def selected_by_validation(rows):
    """``(best validation accuracy, its sweep, test accuracy at that sweep)``
    from :func:`run_variant`'s rows (the first sweep on a tie)."""
    val = [r[4] for r in rows]
    i = int(np.argmax(val))
    return val[i], rows[i][0], rows[i][1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="digits,fashion5k,fashion")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated names of VARIANTS or KEY=VALUE[+KEY=VALUE] overrides")
    ap.add_argument("--sweeps", type=int, help="default: digits 50, fashion 15, fashion5k 30")
    ap.add_argument("--epochs", type=int, help="Adam epochs (default: digits 200, fashion 20, "
                    "fashion5k 100)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--holdout", type=float, default=0.0, metavar="F",
                    help="NMF holds out this fraction of its training set and the table "
                         "adds the test accuracy at the best validation sweep")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if not 0.0 <= args.holdout < 1.0:
        ap.error(f"--holdout must be in [0, 1), got {args.holdout}")
    from compare import machine
    lines = [f"Machine: {machine()}; {args.threads} threads (torch and fastnmf)"
             + (f"; NMF holds out {args.holdout:g} of its training set for validation"
                if args.holdout else "")]
    for case in args.cases.split(","):
        data, hidden, n_train = CASES[case]
        Xtr, ytr, Xte, yte = load(data)
        if n_train:
            Xtr, ytr = Xtr[:n_train], ytr[:n_train]
        sweeps = args.sweeps or {"digits": 50, "fashion": 15, "fashion5k": 30}[case]
        epochs = args.epochs or {"digits": 200, "fashion": 20, "fashion5k": 100}[case]
        warm_up(hidden, Xtr, ytr, Xte, yte, args.threads)  # Numba compile / cache load
        bp = run_backprop(Xtr, ytr, Xte, yte, hidden, epochs, args.threads, 0)
        bp_best = max(r[1] for r in bp)
        bp_best_ep = 1 + int(np.argmax([r[1] for r in bp]))
        shape = "-".join(str(x) for x in (Xtr.shape[1], *hidden, 10))
        lines.append(f"\n### {case}: {shape}, {len(ytr)} training samples\n")
        lines.append(f"Adam backprop: best test accuracy **{bp_best:.4f}** (epoch {bp_best_ep} "
                     f"of {epochs}), {bp[-1][2] / len(bp):.2f} s per epoch; after 15 epochs "
                     f"{bp[min(15, len(bp)) - 1][1]:.4f}\n")
        marks = [s for s in (1, 2, 5, 10) if s < sweeps] + [sweeps]
        val_cols = " | validation best (sweep) | test at that sweep" if args.holdout else ""
        lines.append("| variant | " + " | ".join(f"sweep {s}" for s in marks) +
                     " | best (sweep) | last - best | vs Adam best" + val_cols + " | s/sweep |")
        lines.append("|---|" + "---:|" * (len(marks) + 4 + (2 if args.holdout else 0)))
        for name in args.variants.split(","):
            rows, wall = run_variant(Xtr, ytr, Xte, yte, hidden, variant_overrides(name), sweeps,
                                     args.threads, args.holdout)
            acc = [r[1] for r in rows]
            best = max(acc)
            at = 1 + int(np.argmax(acc))
            cells = [f"{acc[s - 1]:.4f}" if s <= len(acc) else "" for s in marks]
            lines.append(f"| {name} | " + " | ".join(cells) +
                         f" | {best:.4f} ({at}) | {100 * (acc[-1] - best):+.2f} | "
                         f"{100 * (best - bp_best):+.2f} | " + val_cells(rows, args.holdout)
                         + f"{np.median([r[2] for r in rows]):.3f} |")
            print(lines[-1], flush=True)
        print("\n".join(lines), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


def val_cells(rows, holdout):
    if not holdout:
        return ""
    v, at, t = selected_by_validation(rows)
    return f"{v:.4f} ({at}) | {t:.4f} | "


if __name__ == "__main__":
    sys.exit(main())
