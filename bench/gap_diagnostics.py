"""Where the accuracy gap between NMF training and Adam backprop comes from.

    python bench/gap_diagnostics.py                          # Fashion-MNIST, ~10 min
    python bench/gap_diagnostics.py --datasets digits        # seconds
    python bench/gap_diagnostics.py --out bench/results/gap_diagnostics.md

Issue 4's question is why the default ``NMFNetClassifier`` stays below Adam
on Fashion-MNIST 784-500-500-10. Three suspects, each separated by one run
of the same network shape (``bench/compare_dnn.py``'s data, seed, threads):

* **The loss.** NMF training fits least squares (the default: a squared
  hinge on one-hot targets, ``margin_targets``), Adam cross-entropy. Adam
  is run with each loss: ``cross_entropy``, ``squared_error``,
  ``squared_hinge``. If Adam with NMF's own loss fell to NMF's accuracy,
  the loss would be the gap.
* **The read-out.** NMF fits the output layer by ridge least squares.
  On the final hidden features of each network the output layer is
  refitted by ridge least squares (ridge ``1e-4`` of the mean Gram
  diagonal) and by multinomial logistic regression (scikit-learn, features
  standardised, C in 0.01 / 0.1 / 1, the best on the test set shown, which
  flatters the read-out: an upper bound). If logistic regression on NMF's
  features closed the gap, the output layer would be.
* **The features.** What remains: the hidden layers the method finds.

Columns: test accuracy of the network as trained (best over the epochs or
sweeps and where, then the last), and of the refitted read-outs on the
last network's features. Training accuracy of the last network too. And
what the features look like on the training set, per hidden layer: the
fraction of activations that are positive, and the effective rank of the
centred activations (:func:`feature_stats`).
"""
from __future__ import annotations

import fastnmf  # first: short BLAS/OpenMP spin-waits before numpy loads BLAS

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backprop import run_backprop  # noqa: E402
from compare_dnn import SHAPES, load  # noqa: E402

import fastnmf_dnn  # noqa: E402

LOSSES = ("cross_entropy", "squared_error", "squared_hinge")


def hidden_activations(layers, X):
    """Every hidden layer's activations on X (float64), first to last, of a
    network given as a list of ``(W (n_in, n_out), b)`` pairs (all but the
    output layer)."""
    acts, H = [], X.astype(np.float64)
    for W, b in layers:
        H = np.maximum(H @ W + b, 0)
        acts.append(H)
    return acts


def feature_stats(acts):
    """Per hidden layer (``acts`` from :func:`hidden_activations`): the
    fraction of (sample, unit) activations that are positive, and the
    effective rank of the centred activations (exp of the entropy of the
    normalised squared singular values; equals r for r equal singular
    values): how sparse and how high-dimensional the representation is."""
    out = []
    for H in acts:
        s2 = np.linalg.svd(H - H.mean(0), compute_uv=False) ** 2
        p = s2 / s2.sum() if s2.sum() > 0 else np.ones_like(s2) / len(s2)
        out.append((float((H > 0).mean()), float(np.exp(-p @ np.log(p + 1e-300)))))
    return out


def ls_readout(Htr, ytr, Hte, yte, ridge=1e-4):
    """Test and train accuracy of a ridge least-squares output layer (a
    bias column included, penalised like the rest) fitted to one-hot
    targets."""
    A = np.hstack([Htr, np.ones((len(Htr), 1))])
    G = A.T @ A
    G += ridge * np.trace(G) / len(G) * np.eye(len(G))
    W = np.linalg.solve(G, A.T @ np.eye(int(ytr.max()) + 1)[ytr])
    acc = lambda H, y: float(np.mean((np.hstack([H, np.ones((len(H), 1))]) @ W)  # noqa: E731
                                     .argmax(1) == y))
    return acc(Hte, yte), acc(Htr, ytr)


def logistic_readout(Htr, ytr, Hte, yte):
    """Best test accuracy (and its C and train accuracy) of a multinomial
    logistic regression on standardised features over C in 0.01, 0.1, 1."""
    from sklearn.linear_model import LogisticRegression
    mu, sd = Htr.mean(0), Htr.std(0) + 1e-6
    Ztr, Zte = (Htr - mu) / sd, (Hte - mu) / sd
    best = None
    for C in (0.01, 0.1, 1.0):
        lr = LogisticRegression(C=C, max_iter=500).fit(Ztr, ytr)
        row = (lr.score(Zte, yte), C, lr.score(Ztr, ytr))
        best = row if best is None or row[0] > best[0] else best
    return best


def curve_summary(accs):
    i = int(np.argmax(accs))
    return f"{accs[i]:.4f} ({i + 1})", f"{accs[-1]:.4f}"


def diagnose(name, epochs, sweeps, threads, seed, lines):
    hidden = SHAPES[name]
    Xtr, ytr, Xte, yte = load(name)
    rows = []

    def readouts(layers):
        acts = hidden_activations(layers, Xtr)     # one forward pass for both uses
        Htr, Hte = acts[-1], hidden_activations(layers, Xte)[-1]
        ls_te, _ = ls_readout(Htr, ytr, Hte, yte)
        lg_te, C, _ = logistic_readout(Htr, ytr, Hte, yte)
        stats = feature_stats(acts)
        return (f"{ls_te:.4f}", f"{lg_te:.4f} (C={C:g})",
                " / ".join(f"{a:.2f}" for a, _ in stats),
                " / ".join(f"{r:.0f}" for _, r in stats))

    for loss in LOSSES:
        t0 = time.perf_counter()
        bp, weights, train_acc = run_backprop(Xtr, ytr, Xte, yte, hidden, epochs, threads,
                                              seed, loss=loss, full=True)
        layers = [(W.T.astype(np.float64), b.astype(np.float64)) for W, b in weights[:-1]]
        best, last = curve_summary([r[1] for r in bp])
        rows.append([f"Adam, {loss}", best, last, f"{train_acc:.4f}", *readouts(layers)])
        print(f"{name}: {rows[-1]} ({time.perf_counter() - t0:.0f} s)", flush=True)

    t0 = time.perf_counter()
    accs = []
    clf = fastnmf_dnn.NMFNetClassifier(hidden, max_iter=sweeps, n_iter_no_change=sweeps + 1,
                                       random_state=seed, n_threads=threads)
    clf.fit(Xtr, ytr, eval_set=(Xte, yte),
            callback=lambda est, it, rec: accs.append(rec["eval_score"]))
    layers = list(zip(clf.coefs_[:-1], clf.intercepts_[:-1]))
    best, last = curve_summary(accs)
    rows.append(["NMF (defaults), squared_hinge", best, last, f"{clf.score(Xtr, ytr):.4f}",
                 *readouts(layers)])
    print(f"{name}: {rows[-1]} ({time.perf_counter() - t0:.0f} s)", flush=True)

    shape = "-".join(str(s) for s in (Xtr.shape[1], *hidden, int(ytr.max()) + 1))
    lines += [f"\n### {name} {shape}: Adam {epochs} epochs, NMF {sweeps} sweeps\n",
              "| training | test best (epoch/sweep) | test last | train last "
              "| last features, LS read-out | last features, logistic read-out "
              "| active fraction per hidden layer | effective rank per hidden layer |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="fashion")
    ap.add_argument("--epochs", type=int, help="Adam epochs (default: digits 200, fashion 20)")
    ap.add_argument("--sweeps", type=int, help="NMF sweeps (default: digits 50, fashion 20)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    from compare import machine
    command = " ".join(["python bench/gap_diagnostics.py", *argv])
    lines = [f"Machine: {machine()}; torch threads = fastnmf threads = {args.threads}; "
             f"`{command}`"]
    for name in args.datasets.split(","):
        epochs = args.epochs or {"digits": 200, "fashion": 20}[name]
        sweeps = args.sweeps or {"digits": 50, "fashion": 20}[name]
        diagnose(name, epochs, sweeps, args.threads, args.seed, lines)
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
