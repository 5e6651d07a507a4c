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
    t = time.perf_counter()
    tiny = X[:20, :10].copy()
    # Every configuration timed below, so no JIT compile lands in a timing.
    fastnmf.nmf(tiny, 2, solver="hals", max_iter=2)
    fastnmf.nmf(tiny, 2, solver="mu", max_iter=2)
    fastnmf.semi_nmf(tiny - tiny.mean(), 2, max_iter=2)
    fastnmf.nonlinear_semi_nmf(tiny, 2, max_iter=2)
    import scipy.sparse as sp
    Xs = sp.csr_matrix(X)           # digits is half zeros: the sparse path on the same data
    fastnmf.nmf(sp.csr_matrix(tiny), 2, solver="hals", max_iter=2)
    compile_s = time.perf_counter() - t
    print(f"fastnmf {fastnmf.__version__}: digits {X.shape} {X.dtype}, rank {args.rank}, "
          f"{fastnmf.get_num_threads()} threads")
    print(f"BLAS: {blas_kernels()}")
    print(f"one-off Numba compile/cache load: {compile_s:.2f} s (not in the times below)")
    print(f"{'solver':<28}{'iters':>7}{'rel. error':>12}{'seconds':>10}")
    Xc = X - X.mean(axis=0)
    runs = [
        ("nmf hals", lambda: fastnmf.nmf(X, args.rank, solver="hals", max_iter=args.max_iter,
                                         random_state=0)),
        ("nmf mu", lambda: fastnmf.nmf(X, args.rank, solver="mu", max_iter=args.max_iter,
                                       random_state=0)),
        ("semi_nmf hals (centred X)", lambda: fastnmf.semi_nmf(Xc, args.rank,
                                                               max_iter=args.max_iter,
                                                               random_state=0)),
        ("nonlinear_semi_nmf", lambda: fastnmf.nonlinear_semi_nmf(X, args.rank,
                                                                  max_iter=min(args.max_iter, 50),
                                                                  random_state=0)),
        ("nmf hals (scipy CSR input)", lambda: fastnmf.nmf(Xs, args.rank, solver="hals",
                                                           max_iter=args.max_iter,
                                                           random_state=0)),
    ]
    for name, run in runs:
        t = time.perf_counter()
        r = run()
        dt = time.perf_counter() - t
        print(f"{name:<28}{r.n_iter:>7}{r.error:>12.5f}{dt:>10.3f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
