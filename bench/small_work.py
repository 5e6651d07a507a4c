"""Where small solves should keep BLAS on one thread: the calibration of
``fastnmf._threads.BLAS_SMALL_WORK`` (env ``FASTNMF_BLAS_SMALL_WORK``).

    python bench/small_work.py                   # table on stdout
    python bench/small_work.py --out FILE        # also append it to FILE

Below ``SMALL_WORK`` multiply-adds a solve runs its Numba / Cython kernels
on one thread; below ``BLAS_SMALL_WORK`` its BLAS calls too (``for_work``).
This times every small problem of the table both ways, in alternating
rounds in one process (2 threads configured): BLAS on one thread (the
threshold above the problem's work) and BLAS on every thread (the
threshold below it); the kernels stay on one thread in both. Each cell is
the median over ``--rounds`` rounds of a median of ``--repeat`` calls;
the ratio column is the median of the per-round ratios (> 1: BLAS on
every thread is faster). Compilation happens in an untimed first call.
"""
from __future__ import annotations

import fastnmf  # first: short BLAS/OpenMP spin-waits before numpy loads BLAS

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import fastnmf._threads as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import digits  # noqa: E402
from compare import machine  # noqa: E402


def problems():
    """(label, work, call): small problems of the sizes users and the
    network trainer run (digits, and random data of a few shapes)."""
    X = digits(np.float32)[0]
    rng = np.random.default_rng(0)
    out = []

    def work(m, n, k):
        return k * max(m * n, max(m, n) * k)   # as fastnmf._threads.sized_by estimates

    for k in (5, 10, 20, 40):
        out.append((f"nmf hals, digits 1797x64, rank {k}", work(1797, 64, k),
                    lambda k=k: fastnmf.nmf(X, k, max_iter=20, tol=0.0, random_state=0)))
    out.append(("nmf mu, digits 1797x64, rank 10", work(1797, 64, 10),
                lambda: fastnmf.nmf(X, 10, solver="mu", max_iter=20, tol=0.0, random_state=0)))
    S = X - X.mean(axis=0)
    out.append(("semi_nmf, centred digits, rank 10", work(1797, 64, 10),
                lambda: fastnmf.semi_nmf(S, 10, max_iter=20, tol=0.0, random_state=0)))
    for m, n, k in ((100, 20, 3), (300, 50, 5), (600, 64, 5), (1000, 100, 5), (1000, 200, 10),
                    (2000, 300, 6), (5000, 100, 10)):
        A = rng.random((m, n), dtype=np.float32)
        out.append((f"nmf hals, random {m}x{n}, rank {k}", work(m, n, k),
                    lambda A=A, k=k: fastnmf.nmf(A, k, max_iter=20, tol=0.0, random_state=0)))
    return out


def measure(call, work, rounds, repeat):
    """Median seconds with BLAS on one thread and on every thread, and the
    median of the per-round ratios one / every."""
    saved = T.BLAS_SMALL_WORK
    times = {"one": [], "every": []}
    try:
        call()   # compile / warm up (untimed)
        for _ in range(rounds):
            for mode in ("one", "every"):
                T.BLAS_SMALL_WORK = 2.0 * work if mode == "one" else 0.5 * work
                call()
                ts = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    call()
                    ts.append(time.perf_counter() - t0)
                times[mode].append(float(np.median(ts)))
    finally:
        T.BLAS_SMALL_WORK = saved
    one, every = np.asarray(times["one"]), np.asarray(times["every"])
    return float(np.median(one)), float(np.median(every)), float(np.median(one / every))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--out", help="append the table to this file")
    args = ap.parse_args(argv)
    lines = [f"Machine: {machine()}. Command: `python bench/small_work.py "
             f"--threads {args.threads} --rounds {args.rounds} --repeat {args.repeat}`; "
             f"current BLAS_SMALL_WORK {T.BLAS_SMALL_WORK:.3g}.", "",
             "| problem (20 iterations) | work m n k | BLAS 1 thread | BLAS every thread "
             "| ratio 1 / every |", "|---|---:|---:|---:|---:|"]
    with fastnmf.threads(args.threads):
        for label, work, call in problems():
            if work >= T.SMALL_WORK:
                continue   # not a small problem: for_work changes nothing there
            one, every, ratio = measure(call, work, args.rounds, args.repeat)
            lines.append(f"| {label} | {work:.2g} | {one * 1e3:.2f} ms | {every * 1e3:.2f} ms "
                         f"| **{ratio:.2f}x** |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
