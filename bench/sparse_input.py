"""Network training on a sparse input: NMFNetClassifier fitted on a scipy CSR
X against the same estimator fitted on ``X.toarray()``, in one process.

    python bench/sparse_input.py                          # table on stdout
    python bench/sparse_input.py --out FILE               # also write it to FILE
    python bench/sparse_input.py --words 2000,5000 --docs 20000 --rounds 3
    python bench/sparse_input.py --solvers --words 5000,10000,20000 --rounds 1
    python bench/sparse_input.py --solvers direct,cg,cg-jacobi --words 10000

``--solvers [LIST]``: the first layer's solvers on the sparse X instead
(default ``direct,cg``: ``input_solver="direct"``, the (d + 1) x (d + 1)
Gram matrix formed and inverted once per fit, against ``"cg"``, never
formed: conjugate gradients on products with X every sweep, Nystrom +
Jacobi preconditioned; ``"cg-jacobi"``: Jacobi alone), alternating the
same way, with the CG iterations per solve (median over the fit's solves,
last round); no dense copy is made (the widths this is for do not fit
densified). Ratios are direct's whole fit over each CG fit's.

Data: synthetic tf-idf documents (``bench/_data.py: topic_documents``, 20
topics, about 120 distinct words per document), labelled by each
document's dominant topic (20 classes), an 80 / 20 split. For every
vocabulary size the two fits (same options, same seed) run in alternating
rounds; each round times a whole ``fit`` (its setup, which forms and
inverts the first layer's (d + 1) x (d + 1) Gram matrix once, and its
sweeps). Reported: medians over the rounds of the median sweep (the
first sweep, which inverts that Gram matrix, aside), of the setup (which
forms it) and of the whole fit, the ratios dense / sparse (> 1: the
sparse input is faster),
the test accuracy of each (the two fits agree to rounding: the same
solves), and the bytes X takes in each form (plus the dense copy the
first layer's buffer makes of a dense X). Numba compilation of both paths
runs before the first round and is reported apart.
"""
from __future__ import annotations

import fastnmf  # first: short BLAS/OpenMP spin-waits before numpy loads BLAS

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import topic_documents  # noqa: E402
from compare import machine  # noqa: E402

from fastnmf_dnn import NMFNetClassifier  # noqa: E402
from fastnmf_dnn.trainer import INPUT_SOLVERS  # noqa: E402


def fit_times(est, X, y):
    """(setup seconds, median sweep seconds, whole fit seconds, the fitted
    estimator)."""
    t0 = time.perf_counter()
    est.fit(X, y)
    total = time.perf_counter() - t0
    return est.setup_seconds_, float(np.median(est.history_["seconds"])), total, est


def nbytes(X):
    if hasattr(X, "nnz"):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.nbytes


def split_documents(n_docs, n_words):
    X, y = topic_documents(n_docs, n_words, labels=True, seed=0)
    n_tr = int(0.8 * n_docs)
    return X[:n_tr], y[:n_tr], X[n_tr:], y[n_tr:]


def describe(Xtr, hidden):
    n_tr, n_words = Xtr.shape
    return (f"{n_tr} x {n_words}, {100 * Xtr.nnz / (n_tr * n_words):.2f}% nonzero, "
            f"{'-'.join(map(str, (n_words, *hidden, 20)))}")


def run_solvers(n_docs, n_words, hidden, sweeps, rounds, threads, solvers):
    """The given input_solvers, all on the sparse X, alternating."""
    Xtr, ytr, Xte, yte = split_documents(n_docs, n_words)
    params = dict(hidden_layer_sizes=hidden, max_iter=sweeps, random_state=0,
                  n_threads=threads, n_iter_no_change=sweeps + 1)
    times = {s: [] for s in solvers}
    fitted, iters = {}, {}
    for _ in range(rounds):
        for solver in times:
            made = []                     # the fit's ImplicitGrams, for their iterations
            init = fastnmf.ImplicitGram.__init__

            def record(self, *args, **kw):
                init(self, *args, **kw)
                made.append(self)
            fastnmf.ImplicitGram.__init__ = record
            try:
                setup, sweep, total, est = fit_times(
                    NMFNetClassifier(input_solver=solver, **params), Xtr, ytr)
            finally:
                fastnmf.ImplicitGram.__init__ = init
            times[solver].append((setup, sweep, total))
            fitted[solver] = est
            its = [i for g in made for i in g.iterations]
            iters[solver] = float(np.median(its)) if its else None
    med = {k: np.median(np.asarray(v), axis=0) for k, v in times.items()}
    return {"case": describe(Xtr, hidden), "med": med, "iters": iters,
            "acc": {k: fitted[k].score(Xte, yte) for k in fitted}}


def run_case(n_docs, n_words, hidden, sweeps, rounds, threads):
    Xtr, ytr, Xte, yte = split_documents(n_docs, n_words)
    Dtr = Xtr.toarray()
    params = dict(hidden_layer_sizes=hidden, max_iter=sweeps, random_state=0,
                  n_threads=threads, n_iter_no_change=sweeps + 1)
    times = {"dense": [], "sparse": []}
    fitted = {}
    for _ in range(rounds):
        for kind, Xfit in (("dense", Dtr), ("sparse", Xtr)):
            setup, sweep, total, est = fit_times(NMFNetClassifier(**params), Xfit, ytr)
            times[kind].append((setup, sweep, total))
            fitted[kind] = est
    med = {k: np.median(np.asarray(v), axis=0) for k, v in times.items()}
    acc = {k: fitted[k].score(Xte if k == "sparse" else Xte.toarray(), yte) for k in fitted}
    return {
        "case": describe(Xtr, hidden),
        "setup": med, "acc": acc,
        "ratio_sweep": float(med["dense"][1] / med["sparse"][1]),
        "ratio_total": float(med["dense"][2] / med["sparse"][2]),
        "bytes": {"dense": Dtr.nbytes, "sparse": nbytes(Xtr)},
        "max_weight_diff": max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in
                               zip(fitted["dense"].coefs_, fitted["sparse"].coefs_)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--words", default="2000,5000")
    ap.add_argument("--hidden", default="100")
    ap.add_argument("--sweeps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--solvers", nargs="?", const="direct,cg", default=None,
                    help="compare the first layer's input_solvers (comma-separated, default "
                         "'direct,cg') on the sparse X (no dense fit)")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    hidden = tuple(int(h) for h in a.hidden.split(","))
    t0 = time.perf_counter()   # compile both paths (untimed for the table)
    Xs, ys = topic_documents(300, 200, labels=True, seed=1)
    for Xw in (Xs, Xs.toarray()):
        NMFNetClassifier(hidden, max_iter=2, random_state=0, n_threads=a.threads).fit(Xw, ys)
    compile_s = time.perf_counter() - t0
    lines = [f"Machine: {machine()}; {a.threads} threads", "",
             f"NMFNetClassifier, {a.sweeps} sweeps, medians of {a.rounds} alternating rounds "
             f"(`python bench/sparse_input.py --docs {a.docs} --words {a.words} "
             f"--hidden {a.hidden} --sweeps {a.sweeps} --rounds {a.rounds}`)", "",
             "| data (network) | sweep dense / sparse | ratio | setup dense / sparse "
             "| whole fit dense / sparse | ratio | test acc dense / sparse "
             "| X bytes dense / sparse |",
             "|---|---|---:|---|---|---:|---|---|"]
    solvers = a.solvers.split(",") if a.solvers else []
    if solvers:
        if any(v not in INPUT_SOLVERS or v == "auto" for v in solvers):
            ap.error(f"--solvers takes direct, cg and cg-jacobi, got {a.solvers!r}")
        names = " / ".join(solvers)
        cgs = [v for v in solvers if v != "direct"]
        lines[2] = (f"NMFNetClassifier on the sparse X, input_solver {names}, {a.sweeps} "
                    f"sweeps, medians of {a.rounds} alternating rounds (`python "
                    f"bench/sparse_input.py --solvers {a.solvers} --docs {a.docs} --words "
                    f"{a.words} --hidden {a.hidden} --sweeps {a.sweeps} --rounds {a.rounds}`)")
        ratio_head = (" | ".join(f"direct / {v}" for v in cgs) if "direct" in solvers else "")
        lines[4:6] = [f"| data (network) | setup {names} | sweep {names} | whole fit {names} "
                      + (f"| {ratio_head} " if ratio_head else "")
                      + f"| CG iterations per solve {' / '.join(cgs)} | test acc {names} |",
                      "|---|---|---|---|" + ("---:|" * len(cgs) if ratio_head else "")
                      + "---|---|"]
    for n_words in (int(w) for w in a.words.split(",")):
        if solvers:
            r = run_solvers(a.docs, n_words, hidden, a.sweeps, a.rounds, a.threads, solvers)
            med = r["med"]
            cells = [r["case"],
                     " / ".join(f"{med[v][0]:.2f}" for v in solvers) + " s",
                     " / ".join(f"{1e3 * med[v][1]:.0f}" for v in solvers) + " ms",
                     " / ".join(f"{med[v][2]:.2f}" for v in solvers) + " s"]
            if ratio_head:
                cells += [f"**{med['direct'][2] / med[v][2]:.2f}x**" for v in cgs]
            cells += [" / ".join(f"{r['iters'][v]:.0f}" for v in cgs) or "-",
                      " / ".join(f"{r['acc'][v]:.4f}" for v in solvers)]
            lines.append("| " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
            continue
        r = run_case(a.docs, n_words, hidden, a.sweeps, a.rounds, a.threads)
        s = r["setup"]
        lines.append(
            f"| {r['case']} | {1e3 * s['dense'][1]:.0f} / {1e3 * s['sparse'][1]:.0f} ms | "
            f"**{r['ratio_sweep']:.2f}x** | {s['dense'][0]:.2f} / {s['sparse'][0]:.2f} s | "
            f"{s['dense'][2]:.2f} / {s['sparse'][2]:.2f} s | {r['ratio_total']:.2f}x | "
            f"{r['acc']['dense']:.4f} / {r['acc']['sparse']:.4f} | "
            f"{r['bytes']['dense'] / 2**20:.0f} / {r['bytes']['sparse'] / 2**20:.1f} MiB |")
        print(lines[-1], "(largest weight difference / largest weight "
              f"{r['max_weight_diff']:.1e})", flush=True)
    lines += ["", f"Numba compile and warm-up of both paths before timing: {compile_s:.1f} s "
              "(excluded)"]
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
