"""``python -m fastnmf`` / ``fastnmf-demo``: factorize the bundled digits.

Prints, for each solver, the relative error and wall time, with the one-off
Numba compile time measured separately (a first call on a tiny problem).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import fastnmf
from fastnmf._threads import blas_kernels
from fastnmf.datasets import load_digits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="fastnmf-demo", description=__doc__)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = ap.parse_args(argv)
    if args.threads:
        fastnmf.set_num_threads(args.threads)
    X, _ = load_digits(dtype=np.dtype(args.dtype))
    import scipy.sparse as sp
    Xs = sp.csr_matrix(X)           # digits is half zeros: the sparse path on the same data
    Xc = X - X.mean(axis=0)
    runs = [
        ("nmf hals", lambda n: fastnmf.nmf(X, args.rank, solver="hals", max_iter=n,
                                           random_state=0)),
        ("nmf mu", lambda n: fastnmf.nmf(X, args.rank, solver="mu", max_iter=n,
                                         random_state=0)),
        ("semi_nmf hals (centred X)", lambda n: fastnmf.semi_nmf(Xc, args.rank, max_iter=n,
                                                                 random_state=0)),
        ("nonlinear_semi_nmf", lambda n: fastnmf.nonlinear_semi_nmf(X, args.rank,
                                                                    max_iter=min(n, 50),
                                                                    random_state=0)),
        ("nmf hals (scipy CSR input)", lambda n: fastnmf.nmf(Xs, args.rank, solver="hals",
                                                             max_iter=n, random_state=0)),
        ("nmf mu, KL loss *", lambda n: fastnmf.nmf(X, args.rank, solver="mu", loss="kl",
                                                    max_iter=n, random_state=0)),
    ]
    # Every configuration once, on the data and rank it is timed on: the
    # thread rule and the kernels' size dispatch then pick the builds the
    # timed runs use, so no JIT compile lands in a timing (a 20 x 10 warm-up
    # left the parallel builds to the first timed run: 2.6 s with an empty
    # Numba cache).
    t = time.perf_counter()
    for _name, run in runs:
        run(2)
    compile_s = time.perf_counter() - t
    print(f"fastnmf {fastnmf.__version__}: digits {X.shape} {X.dtype}, rank {args.rank}, "
          f"{fastnmf.get_num_threads()} threads")
    print(f"BLAS: {blas_kernels()}")
    print(f"one-off Numba compile/cache load: {compile_s:.2f} s (not in the times below)")
    print(f"{'solver':<28}{'iters':>7}{'rel. error':>12}{'seconds':>10}")
    for name, run in runs:
        t = time.perf_counter()
        r = run(args.max_iter)
        dt = time.perf_counter() - t
        print(f"{name:<28}{r.n_iter:>7}{r.error:>12.5f}{dt:>10.3f}")
    print("* its error is the divergence D(X || UV) / sum(X), not ||X - UV|| / ||X||")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
