"""Time to scikit-learn cd's final error for several ``inner_alpha`` values.

    python bench/inner_alpha.py                          # every case, 5 starts, 0.5 vs 0.25
    python bench/inner_alpha.py --cases digits-r10 --seeds 0-9 --alphas 0.5,0.25,0.35

``fastnmf.nmf``'s HALS runs at most ``1 + inner_alpha * (1 + other / (k + 1))``
inner sweeps per factor (Gillis & Glineur 2012, alpha = 0.5 the default).
For every case and nndsvda start (scikit-learn's own, ``random_state`` =
seed) scikit-learn's ``NMF(solver="cd", tol=1e-4, max_iter=400)`` runs
first; each alpha's run is then timed for exactly the iterations at which
it first reaches that error (found from an untimed run's deterministic
trajectory; "-" if 400 iterations never reach it), median of ``--repeat``
runs, the alphas in turns. The table gives iterations and milliseconds
per start and, per alpha, the median over starts of the time ratio against
the first alpha (above 1: faster than it). float32, ``--threads`` threads.
"""
from __future__ import annotations

import fastnmf  # first: it shortens the BLAS/OpenMP spin-waits before numpy loads BLAS

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import digits  # noqa: E402


def _lowrank(m, n, k, noise, seed=42):
    """A noisy product of random nonnegative factors, (m, n) float32."""
    rng = np.random.default_rng(seed)
    A = rng.random((m, k)) @ rng.random((k, n))
    A += noise * A.std() * rng.random((m, n))
    return A.astype(np.float32)


def make_cases():
    """name -> (A, rank), built on first use."""
    D = digits()[0]
    return {
        "digits-r5": lambda: (D, 5),
        "digits-r10": lambda: (D, 10),
        "digits-r20": lambda: (D, 20),
        "digits-r40": lambda: (D, 40),
        "digitsT-r10": lambda: (np.ascontiguousarray(D.T), 10),
        "lowrank-800x500-r20": lambda: (_lowrank(800, 500, 20, 0.5), 20),
        "lowrank-3000x200-r30": lambda: (_lowrank(3000, 200, 30, 0.3), 30),
    }


def _seeds(text):
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def run_case(A, k, seeds, alphas, repeat):
    """Per seed: ``{alpha: (iterations or None, seconds or inf)}``."""
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf
    out = []
    for seed in seeds:
        W0, H0 = _initialize_nmf(A, k, init="nndsvda", random_state=seed)
        W0, H0 = W0.astype(A.dtype), H0.astype(A.dtype)
        sk = NMF(k, init="custom", solver="cd", tol=1e-4, max_iter=400)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W = sk.fit_transform(A, W=W0.copy(), H=H0.copy())
        target = np.linalg.norm(A - W @ sk.components_) / np.linalg.norm(A)
        iters = {}
        for a in alphas:
            r = fastnmf.nmf(A, k, init=(W0, H0), max_iter=400, tol=0, inner_alpha=a)
            hit = np.flatnonzero(r.errors <= target)
            iters[a] = int(hit[0]) if len(hit) else None
        times = {a: [] for a in alphas}
        for _ in range(repeat):
            for a in alphas:
                if iters[a] is None:
                    continue
                t0 = time.perf_counter()
                fastnmf.nmf(A, k, init=(W0, H0), max_iter=iters[a], tol=0, inner_alpha=a)
                times[a].append(time.perf_counter() - t0)
        out.append({a: (iters[a], float(np.median(times[a])) if times[a] else np.inf)
                    for a in alphas})
    return out


def table(results, alphas):
    """Markdown lines for ``{case: run_case(...)}``."""
    a0 = alphas[0]
    head = "| case | " + " | ".join(f"inner_alpha={a}: iterations (ms) per start" for a in alphas)
    head += " | " + " | ".join(f"{a} vs {a0}, median" for a in alphas[1:]) + " |"
    lines = [head, "|---" * (2 * len(alphas)) + "|"]   # case, iterations, ratios
    for case, rows in results.items():
        cells = []
        for a in alphas:
            cells.append(", ".join("-" if it is None else f"{it} ({t * 1e3:.1f})"
                                   for it, t in (r[a] for r in rows)))
        for a in alphas[1:]:
            ratios = [r[a0][1] / r[a][1] for r in rows]
            cells.append(f"**{np.median(ratios):.2f}x**")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cases = make_cases()
    ap.add_argument("--cases", default=",".join(cases))
    ap.add_argument("--seeds", default="0-4", metavar="0-4 or 0,3")
    ap.add_argument("--alphas", default="0.5,0.25")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    names = args.cases.split(",")
    unknown = [c for c in names if c not in cases]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {sorted(cases)}")
    alphas = [float(a) for a in args.alphas.split(",")]
    seeds = _seeds(args.seeds)
    from compare import machine
    lines = [f"Machine: {machine()}; {args.threads} threads. Command: `python "
             f"bench/inner_alpha.py {' '.join(sys.argv[1:] if argv is None else argv)}`", ""]
    results = {}
    with fastnmf.threads(args.threads):
        fastnmf.nmf(np.ones((8, 6), np.float32), 2, max_iter=2)   # compile / cache load
        for name in names:
            A, k = cases[name]()
            results[name] = run_case(A, k, seeds, alphas, args.repeat)
            print(f"{name}: done", file=sys.stderr, flush=True)
    lines += table(results, alphas)
    lines += ["", f"Starts (nndsvda seeds): {seeds}; each start's time ratio against "
              f"inner_alpha={alphas[0]}, then the median over starts (above 1: faster; a "
              "start the first alpha never reaches counts as infinitely faster)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
