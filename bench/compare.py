"""Head-to-head comparisons that print Markdown tables (README "Performance").

    python bench/compare.py nmf        # fastnmf.nmf vs scikit-learn cd / mu
    python bench/compare.py penalized  # the same with l1 / l2 penalties (alpha_W, l1_ratio)
    python bench/compare.py sparse     # the same on sparse (tf-idf) data
    python bench/compare.py kl         # Kullback-Leibler NMF vs scikit-learn's MU, dense + sparse
    python bench/compare.py estimator  # fastnmf.NMF vs sklearn's NMF, each with its defaults
    python bench/compare.py init       # the nndsvda start vs scikit-learn's
    python bench/compare.py floor      # per-iteration time vs the GEMM floor
    python bench/compare.py numpy      # semi-NMF / nonlinear vs plain NumPy
    python bench/compare.py threads    # 1 vs 2 threads (--thread-counts 1,2,4,8,16)
    python bench/compare.py compile    # Numba compile / cache-load time
    python bench/compare.py all        # everything (about 15 minutes on 2 cores)

Options: ``--quick`` (digits only), ``--threads N`` (default 2),
``--out FILE`` (append the tables to FILE as Markdown).

Method. Every comparison is a ratio measured in one process, peers run on
the same data, from the same initial factors, in float32, with BLAS, OpenMP
and Numba limited together by ``fastnmf.threads``. Numba kernels are
compiled (and the tiny warm-up is run) before any timed region. Timed values
are medians of ``--repeat`` runs (scikit-learn's long runs once: its
80-second fit is its own median-free measurement, noted in the table).
Runs under 50 ms (digits) are timed at least 21 times after a warm-up run,
and the two sides of a ratio are timed in turns (a, b, a, b, ...), so that
the shared machine's drift hits both alike: with 5 sequential repeats two
back-to-back runs of this script gave 1.7x and 2.7x for the same ratio.
"Time to equal error": the peer runs to its own stopping rule (tol=1e-4,
max_iter=400); fastnmf's run is then timed for exactly the number of
iterations at which it first reaches the peer's final relative error
(found from the deterministic trajectory of a first, untimed run).
"""
from __future__ import annotations

import fastnmf  # first: it shortens the BLAS/OpenMP spin-waits before numpy loads BLAS

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_reference as ref  # noqa: E402
from _data import digits, fashion_mnist, topic_documents  # noqa: E402

RESULTS = []
OUT = None


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name"))
    except Exception:
        model = platform.processor()
    from fastnmf._hals_dispatch import HALS_ISA
    from fastnmf._threads import blas_kernels   # and whether OPENBLAS_CORETYPE forced them
    return (f"{model}, {os.cpu_count()} cores visible, numpy {np.__version__}, "
            f"{blas_kernels()}, HALS build {HALS_ISA}, short BLAS/OpenMP spin "
            f"{'active' if fastnmf.SHORT_SPIN_ACTIVE else 'NOT active'}")


# Runs shorter than SHORT_S are timed many times: on a shared 2-core machine
# a 3 ms run's time moves by 30% from one moment to the next (measured: the
# digits rows of two back-to-back runs of this script with 5 repeats gave
# 1.7x and 2.7x for the same ratio).
SHORT_S = 0.05
SHORT_BUDGET_S = 1.0


def _n_runs(first_s, repeat):
    if first_s >= SHORT_S:
        return repeat
    return int(min(201, max(repeat, 21, SHORT_BUDGET_S / max(first_s, 1e-5))))


def median_time(fn, repeat):
    """Median wall time of ``fn()`` and its last result. A short first run
    is a warm-up and the median is over many runs (``_n_runs``)."""
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    if first >= SHORT_S:
        ts = [first]
        n = repeat - 1
    else:
        ts = []
        n = _n_runs(first, repeat)
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def interleaved_medians(fns, repeat):
    """Median wall time of each of ``fns``, timed in turns (a, b, c, a, b,
    c, ...) so that the machine's drift hits every side of a ratio alike.
    Returns [(median_s, last_result), ...]."""
    firsts, outs = [], []
    for fn in fns:
        t = time.perf_counter()
        outs.append(fn())
        firsts.append(time.perf_counter() - t)
    short = max(firsts) < SHORT_S
    ts = [[] if short else [f] for f in firsts]
    n = _n_runs(max(firsts), repeat) if short else repeat - 1
    for _ in range(n):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            outs[i] = fn()
            ts[i].append(time.perf_counter() - t)
    return [(float(np.median(t)), o) for t, o in zip(ts, outs)]


def rel_err(A, W, H):
    """||A - W H||_F / ||A||_F in float64 (a float32 norm of the 47M entries
    of Fashion-MNIST's residual under-reports it by 1.6e-4 relative, which
    made the peer's error look lower than it is: measured, see git log)."""
    A64 = np.asarray(A, dtype=np.float64)
    R = A64 - np.asarray(W, dtype=np.float64) @ np.asarray(H, dtype=np.float64)
    return float(np.linalg.norm(R) / np.linalg.norm(A64))


def sparse_rel_err(A, W, H):
    """``||A - W H||_F / ||A||_F`` for sparse A (CSR) without forming W H:
    ``||A||^2 - 2 <A, W H> + ||W H||^2``, the inner product as
    ``sum((A @ H^T) * W)``, the last term from the two k x k Gram matrices;
    float64."""
    A64 = A.astype(np.float64)
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    nA2 = float(A64.multiply(A64).sum())
    cross = float(np.sum(np.asarray(A64 @ H.T) * W))
    quad = float(np.sum((W.T @ W) * (H @ H.T)))
    return float(np.sqrt(max(nA2 - 2 * cross + quad, 0.0) / nA2))


def table(title, header, rows, note=""):
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    if note:
        lines += ["", note]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    RESULTS.append(text)
    if OUT is not None:  # write as we go: a later failure loses nothing
        with open(OUT, "a") as fh:
            fh.write(text + "\n")


def datasets(quick):
    X, _ = digits(np.float32)
    out = [("digits 1797x64", X, 10)]
    if not quick:
        F, _ = fashion_mnist("train", np.float32)
        out.append(("Fashion-MNIST 60000x784", F, 50))
    return out


def warm_up():
    A = np.random.default_rng(0).random((70, 30)).astype(np.float32)
    for dt in (np.float32,):
        a = A.astype(dt)
        fastnmf.nmf(a, 3, solver="hals", max_iter=2)
        fastnmf.nmf(a, 3, solver="mu", max_iter=2)
        fastnmf.semi_nmf(a - a.mean(), 3, solver="mu", max_iter=2)
        fastnmf.semi_nmf(a - a.mean(), 3, solver="hals", max_iter=2)
        fastnmf.nonlinear_semi_nmf(a, 3, max_iter=2)
        fastnmf.nonlinear_semi_nmf(np.asfortranarray(a), 3, max_iter=2)
    import scipy.sparse as sp      # sparse products: the serial and the parallel build
    for size, density in ((30, 0.5), (2000, 0.4)):   # nnz k below / above SPARSE_SMALL_WORK
        S = sp.random(size, size, density=density, format="csr", dtype=np.float32,
                      random_state=0)
        fastnmf.nmf(S, 3, solver="hals", max_iter=2)
        fastnmf.nmf(S, 3, solver="mu", max_iter=2)
        fastnmf.nmf(S, 3, solver="mu", loss="kl", max_iter=2, check_every=1)
    for shape in ((70, 30), (400, 200)):   # KL's dense kernels: the serial and parallel builds
        D = np.random.default_rng(1).random(shape).astype(np.float32)
        fastnmf.nmf(D, 3, solver="mu", loss="kl", max_iter=2, check_every=1)
        fastnmf.nmf(np.asfortranarray(D), 3, solver="mu", loss="kl", max_iter=2, check_every=1)


def iters_to_reach(run, target, start=50, cap=800, series=None):
    """Smallest iteration count whose error (``series(result)``, default its
    errors) <= target (deterministic reruns)."""
    n = start
    while True:
        r = run(n)
        hit = np.nonzero((r.errors if series is None else series(r)) <= target)[0]
        if hit.size:
            return int(hit[0]), r
        if n >= cap:
            return None, r
        n *= 2


# --------------------------------------------------------------------------- nmf vs sklearn
def race_sklearn(cases, args, sides, error, label, sk_params=None, series=None,
                 sk_solvers=("cd", "mu"), search_kw=None):
    """Time to scikit-learn NMF's final error (the nmf and sparse tables).

    For each case ``(name, X, k)`` and seed in ``--seeds``: scikit-learn's
    nndsvda start, its NMF ``cd`` and ``mu`` fits from it (tol=1e-4,
    max_iter=400), their final relative error (``error(X, W, H)``), then
    every fastnmf side ``(who, data, nmf keywords)`` of ``sides(peer
    solver, X)`` timed for exactly the iterations at which it first
    reaches that error (found from an untimed run). Fits under 5 s are
    timed in turns with the side (``interleaved_medians``). Returns the
    table rows and the note summarising the ratios over the seeds.
    ``sk_params``: more keywords of scikit-learn's NMF (the penalties);
    ``series(result)``: the per-iteration values of a fastnmf result that
    ``error`` is compared with (default: its relative errors);
    ``sk_solvers``: the peer's solvers; ``search_kw``: more fastnmf
    keywords for the untimed runs that find the iteration count only (the
    KL table evaluates every iteration there, every 10 in the timed run).
    """
    series = series or (lambda r: r.errors)
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf
    rows = []
    ratios = {}   # (data, peer, side) -> speed-ups over the seeds
    seeds = [int(s) for s in str(args.seeds).split(",")]
    for name, X, k in cases:
        for seed in seeds:
            W0, H0 = _initialize_nmf(X, k, init="nndsvda", random_state=seed)
            W0, H0 = W0.astype(np.float32), H0.astype(np.float32)
            row_label = label(name, X) if len(seeds) == 1 else f"{name}, seed {seed}"
            for sk_solver in sk_solvers:
                def sk_fit():
                    est = NMF(k, solver=sk_solver, init="custom", tol=1e-4, max_iter=400,
                              random_state=0, **(sk_params or {}))
                    return est, est.fit_transform(X, W=W0.copy(), H=H0.copy())
                t = time.perf_counter()
                est, W = sk_fit()
                sk_t = time.perf_counter() - t
                target = error(X, W, est.components_)
                for who, data, kw in sides(sk_solver, X):
                    def run(n, data=data, kw=kw, more=None):
                        return fastnmf.nmf(data, k, init=(W0, H0), max_iter=n, tol=0, **kw,
                                           **(more or {}))
                    n_hit, r = iters_to_reach(lambda n: run(n, more=search_kw), target,
                                              series=series)
                    head = [row_label, f"sklearn {sk_solver}", est.n_iter_, f"{target:.5f}"]
                    if n_hit is None:
                        rows.append(head + [f"{sk_t:.2f}", who, "not reached",
                                            f"{series(r)[-1]:.5f}", "-", "-"])
                        continue
                    if sk_t < 5.0:
                        # Short fits are noisy: both sides timed many times, in turns.
                        (sk_t, _), (ft, r) = interleaved_medians(
                            [sk_fit, lambda: run(n_hit)], max(args.repeat, 5))
                    else:
                        ft, r = median_time(lambda: run(n_hit), args.repeat)
                    ratios.setdefault((name, sk_solver, who), []).append(sk_t / ft)
                    # (a timed run of n_hit iterations ends at that point: its last entry)
                    rows.append(head + [f"{sk_t:.2f}", who, n_hit, f"{series(r)[-1]:.5f}",
                                        f"{ft:.3f}", f"**{sk_t / ft:.1f}x**"])
    note = ""
    if len(seeds) > 1:
        note = (" Over the seeds (median, min-max): " + "; ".join(
            f"{d} sklearn {p} vs {s} **{np.median(v):.1f}x** "
            f"({min(v):.1f}-{max(v):.1f}x, {len(v)} of {len(seeds)} reached)"
            for (d, p, s), v in ratios.items()) + ".")
    return rows, note


def bench_nmf(args):
    def sides(peer, X):
        return [(f"fastnmf {s}", X, {"solver": s}) for s in ("hals", "mu")]
    rows, note = race_sklearn(datasets(args.quick), args, sides, rel_err,
                              lambda name, X: name)
    table("fastnmf.nmf vs scikit-learn NMF: time to scikit-learn's final error",
          ["data (rank)", "peer", "peer iters", "peer rel. error", "peer s", "fastnmf",
           "iters", "rel. error", "fastnmf s", "speed-up"], rows,
          "Same nndsvda initial factors for all (scikit-learn's own, randomized SVD "
          f"seeded by `--seeds` {args.seeds}), float32, "
          f"{args.threads} threads; peer: tol=1e-4, max_iter=400, one run if it takes over "
          f"5 s (fastnmf: median of {args.repeat}), else both timed in turns, medians of at "
          f"least 21 runs. "
          "Rank: digits 10, Fashion 50. The peer's final error lies on a plateau it reached "
          "by max_iter, so the iterations fastnmf needs to get there depend on the start "
          "(hence several seeds)." + note)


# --------------------------------------------------------------------------- penalized
PENALTY = {"alpha_W": 0.01, "alpha_H": "same", "l1_ratio": 0.5}
PENALTY_GRID = [(1e-4, 1.0), (1e-3, 0.5), (1e-2, 0.0), (1e-2, 0.5), (1e-2, 1.0)]


def _penalty_tools(params):
    """(fastnmf's (l1, l2) for X, the penalized objective of (X, W, H) as
    ``sqrt(2 objective) / ||X||``) for scikit-learn's penalty ``params``."""
    from fastnmf import NMF as FastNMF

    def penalties(X):
        return FastNMF(**params)._penalties(*X.shape)

    def objective(X, W, H):
        (l1w, l1h), (l2w, l2h) = penalties(X)
        W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
        X64 = np.asarray(X, np.float64)
        val = (0.5 * np.linalg.norm(X64 - W @ H) ** 2 + l1w * W.sum() + l1h * H.sum()
               + 0.5 * (l2w * (W ** 2).sum() + l2h * (H ** 2).sum()))
        return float(np.sqrt(2 * val) / np.linalg.norm(X64))
    return penalties, objective


def _penalized_sides(X, penalties):
    pen = dict(zip(("l1", "l2"), penalties(X)))
    return [("fastnmf hals (default: no extrapolation with penalties)", X,
             {"solver": "hals", **pen}),
            ("fastnmf hals, extrapolate=True", X, {"solver": "hals", "extrapolate": True, **pen}),
            ("fastnmf hals, n_inner=1 (cd's iterates)", X, {"solver": "hals", "n_inner": 1, **pen}),
            ("fastnmf mu", X, {"solver": "mu", **pen})]


def penalized_cases(quick):
    cases = [("digits 1797x64", digits(np.float32)[0], 10)]
    if not quick:
        cases.append(("Fashion-MNIST 10000x784", fashion_mnist("train", np.float32)[0][:10000],
                      20))
    return cases


def bench_penalized(args):
    """Penalized NMF (scikit-learn's ``alpha_W``, ``alpha_H``, ``l1_ratio``;
    fastnmf's ``l1`` / ``l2`` with scikit-learn's scaling), from
    scikit-learn's nndsvda start. First table: where each method stops by
    its own rule (tol=1e-4, max_iter=400) over a grid of penalties, its
    final objective (as ``sqrt(2 objective) / ||X||``, the relative error's
    units) and time, and the components it zeroed out: with penalties a
    component whose factors reach 0 stays there, and the local minimum
    depends on the method. Second table: time to scikit-learn's final
    objective, as ``bench_nmf`` races the error, for ``PENALTY``."""
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf
    seed = int(str(args.seeds).split(",")[0])
    cases = penalized_cases(args.quick)   # loaded once for both tables
    rows = []
    for name, X, k in cases:
        W0, H0 = _initialize_nmf(X, k, init="nndsvda", random_state=seed)
        W0, H0 = W0.astype(np.float32), H0.astype(np.float32)
        for alpha, ratio in PENALTY_GRID:
            params = {"alpha_W": alpha, "alpha_H": "same", "l1_ratio": ratio}
            penalties, objective = _penalty_tools(params)
            runs = []
            for sk_solver in ("cd", "mu"):
                def sk_fit(sk_solver=sk_solver):
                    est = NMF(k, solver=sk_solver, init="custom", tol=1e-4, max_iter=400,
                              random_state=0, **params)
                    W = est.fit_transform(X, W=W0.copy(), H=H0.copy())
                    return W, est.components_, est.n_iter_
                runs.append((f"sklearn {sk_solver}", sk_fit))
            for who, data, kw in _penalized_sides(X, penalties):
                def fit(data=data, kw=kw):
                    r = fastnmf.nmf(data, k, init=(W0, H0), max_iter=400, tol=1e-4, **kw)
                    return r.U, r.V, r.n_iter
                runs.append((who, fit))
            timed = interleaved_medians([f for _, f in runs], args.repeat)
            for (who, _), (t, (W, H, it)) in zip(runs, timed):
                dead = int(np.sum((np.asarray(W).max(axis=0) == 0)
                                  | (np.asarray(H).max(axis=1) == 0)))
                rows.append([name, f"{alpha:g} / {ratio:g}", who, it,
                             f"{objective(X, W, H):.4f}", dead, f"{t:.3f}"])
    table("Penalized NMF: where each method stops (same start, its own stopping rule)",
          ["data (rank)", "alpha_W / l1_ratio", "method", "iters", "objective",
           "zeroed components", "s"], rows,
          f"alpha_H = alpha_W; scikit-learn's scaling (l1 = alpha l1_ratio n_features for W, "
          f"n_samples for H; l2 the same with 1 - l1_ratio). scikit-learn's nndsvda start "
          f"(seed {seed}), float32, {args.threads} threads; every method tol=1e-4 (fastnmf: "
          "on the penalized objective), max_iter=400; timed in turns (medians). Objective as "
          "`sqrt(2 objective) / ||X||`.")

    penalties, objective = _penalty_tools(PENALTY)
    norms = {}

    def series(r):
        return np.sqrt(2 * r.info["objective"]) / norms["X"]

    def sides(peer, X):
        norms["X"] = float(np.linalg.norm(np.asarray(X, np.float64)))
        return _penalized_sides(X, penalties)
    rows, note = race_sklearn(cases, args, sides, objective,
                              lambda name, X: name, sk_params=PENALTY, series=series)
    table("Penalized fastnmf.nmf vs scikit-learn NMF: time to scikit-learn's final objective",
          ["data (rank)", "peer", "peer iters", "peer objective", "peer s", "fastnmf",
           "iters", "objective", "fastnmf s", "speed-up"], rows,
          f"Penalties {PENALTY} (scikit-learn's names and scaling); objective as "
          "`sqrt(2 objective) / ||X||`. Otherwise as the unpenalized table: the same "
          f"nndsvda start, float32, {args.threads} threads, peer tol=1e-4 and max_iter=400, "
          "short runs timed in turns." + note)


# --------------------------------------------------------------------------- sparse
def sparse_datasets(quick):
    """(name, CSR matrix, rank): synthetic tf-idf corpora (``_data.topic_documents``)."""
    if quick:
        return [("tf-idf 5000x3000 (synthetic topics)", topic_documents(5000, 3000), 20)]
    return [("tf-idf 20000x10000 (synthetic topics)", topic_documents(20000, 10000), 20),
            ("tf-idf 50000x30000 (synthetic topics)", topic_documents(50000, 30000, 50), 50)]


def bench_sparse(args):
    """fastnmf.nmf on scipy.sparse data vs scikit-learn NMF on the same CSR
    matrix: time to scikit-learn's final error, as ``bench_nmf``; plus
    fastnmf on the densified array (when it fits in 4 GB), to show what
    the sparse path saves."""
    def sides(peer, X):
        if peer == "mu":
            return [("fastnmf hals (sparse)", X, {"solver": "hals"}),
                    ("fastnmf mu (sparse)", X, {"solver": "mu"})]
        out = [("fastnmf hals (sparse)", X, {"solver": "hals"}),
               ("fastnmf hals (sparse, extrapolate=False)", X,
                {"solver": "hals", "extrapolate": False})]
        if X.shape[0] * X.shape[1] * 4 <= 4 * 2**30:       # the densified route, if it fits
            out.append(("fastnmf hals (dense array)", X.toarray(), {"solver": "hals"}))
        return out

    def label(name, X):
        return f"{name}, {X.nnz / (X.shape[0] * X.shape[1]):.2%} nonzero"

    rows, note = race_sklearn(sparse_datasets(args.quick), args, sides, sparse_rel_err, label)
    table("fastnmf.nmf on sparse data vs scikit-learn NMF: time to scikit-learn's final error",
          ["data (rank)", "peer", "peer iters", "peer rel. error", "peer s", "fastnmf",
           "iters", "rel. error", "fastnmf s", "speed-up"], rows,
          "Both sides get the same scipy CSR matrix (float32; scikit-learn's own nndsvda "
          f"start, seeds {args.seeds}); `fastnmf ... (dense array)` is fastnmf on "
          "`X.toarray()`, the route before sparse input was accepted. Peer: tol=1e-4, "
          f"max_iter=400, one timed run when it takes over 5 s (fastnmf then: median of "
          f"{args.repeat}), else both sides timed in turns, medians of at least "
          f"{max(args.repeat, 5)} ({args.repeat} under {SHORT_S} s: 21 or more). "
          f"{args.threads} threads. Data: `bench/_data.py` "
          "`topic_documents` (a topic model's documents as sublinear tf-idf, l2-normalised "
          "rows)." + note)


# --------------------------------------------------------------------------- KL
def kl_cases(quick):
    cases = [("digits 1797x64", digits(np.float32)[0], 10)]
    if not quick:
        cases += [("Fashion-MNIST 10000x784", fashion_mnist("train", np.float32)[0][:10000], 20),
                  ("tf-idf 20000x10000 (synthetic topics, sparse)",
                   topic_documents(20000, 10000), 20)]
    return cases


def kl_error(X, W, H):
    """``D(X || W H) / sum(X)`` in float64 (fastnmf's ``errors`` with loss="kl")."""
    from sklearn.decomposition._nmf import _beta_divergence
    total = float(X.sum(dtype=np.float64)) if not hasattr(X, "nnz") else float(X.data.sum())
    return float(_beta_divergence(X, np.asarray(W, np.float64), np.asarray(H, np.float64), 1)
                 / total)


def bench_kl(args):
    """Kullback-Leibler NMF (``fastnmf.nmf(loss="kl")``, multiplicative
    updates) against scikit-learn's ``NMF(solver="mu",
    beta_loss="kullback-leibler")``: time for fastnmf to reach scikit-learn's
    final divergence from the same start, as ``bench_nmf`` races the
    error. Both evaluate the divergence every 10 iterations in the timed
    runs (scikit-learn for its stopping test); the iteration count is found
    from a run that evaluates every one."""
    def sides(peer, X):
        return [("fastnmf mu (loss='kl')", X, {"solver": "mu", "loss": "kl"})]

    def label(name, X):
        if hasattr(X, "nnz"):
            return f"{name}, {X.nnz / (X.shape[0] * X.shape[1]):.2%} nonzero"
        return name
    rows, note = race_sklearn(kl_cases(args.quick), args, sides, kl_error, label,
                              sk_params={"beta_loss": "kullback-leibler"}, sk_solvers=("mu",),
                              search_kw={"check_every": 1})
    table("Kullback-Leibler fastnmf.nmf vs scikit-learn NMF (mu): time to scikit-learn's "
          "final divergence",
          ["data (rank)", "peer", "peer iters", "peer D / sum(X)", "peer s", "fastnmf",
           "iters", "D / sum(X)", "fastnmf s", "speed-up"], rows,
          "Generalized KL divergence `D(X || W H)` over `sum(X)`. Same nndsvda start "
          f"(scikit-learn's, seeds {args.seeds}), float32, {args.threads} threads; peer "
          "tol=1e-4, max_iter=400 (it stops when the divergence, checked every 10 "
          "iterations, fell by less than tol times the initial one); one run if it takes "
          "over 5 s, else both sides timed in turns. The sparse corpus is the same scipy "
          "CSR matrix for both (`bench/_data.py` `topic_documents`, tf-idf values)." + note)


# --------------------------------------------------------------------------- estimator
def bench_estimator(args):
    """``fastnmf.NMF`` against ``sklearn.decomposition.NMF``, each with its
    defaults (its own start and stopping rule): what a user who swaps one
    class for the other sees, i.e. ``fit_transform``'s time and the error
    ``||X - W H||_F`` of the W and H it returns. Not an equal-error race
    (the nmf and sparse tables are)."""
    from sklearn.decomposition import NMF as SkNMF
    cases = [("digits 1797x64", digits(np.float32)[0], 10)]
    if args.quick:
        cases.append(("tf-idf 5000x3000 (sparse)", topic_documents(5000, 3000), 20))
    else:
        cases.append(("tf-idf 20000x10000 (sparse)", topic_documents(20000, 10000), 20))
        cases.append(("Fashion-MNIST 60000x784", fashion_mnist("train", np.float32)[0], 50))
    rows = []
    for name, X, k in cases:
        fits = {}

        def fit_sk():
            est = SkNMF(k, random_state=0)
            fits["sk"] = (est, est.fit_transform(X))

        def fit_fast():
            est = fastnmf.NMF(k, random_state=0)
            fits["fast"] = (est, est.fit_transform(X))

        t = time.perf_counter()
        fit_sk()
        first = time.perf_counter() - t
        if first < 5.0:
            (sk_t, _), (ft, _) = interleaved_medians([fit_sk, fit_fast], max(args.repeat, 5))
        else:
            sk_t = first
            ft, _ = median_time(fit_fast, args.repeat)
        (sk, W), (fe, Wf) = fits["sk"], fits["fast"]
        err = sparse_rel_err if hasattr(X, "tocsr") else rel_err
        rows.append([f"{name} ({k})", f"{sk_t:.3f}", sk.n_iter_,
                     f"{err(X, W, sk.components_):.5f}", f"{ft:.3f}", fe.n_iter_,
                     f"{err(X, Wf, fe.components_):.5f}", f"**{sk_t / ft:.1f}x**"])
    table("fastnmf.NMF vs scikit-learn's NMF, each with its defaults: fit_transform",
          ["data (rank)", "sklearn s", "sklearn iters", "sklearn rel. error", "fastnmf.NMF s",
           "fastnmf iters", "fastnmf rel. error", "speed-up"], rows,
          "Both `NMF(k, random_state=0).fit_transform(X)` with every other option at its "
          "default (scikit-learn: cd, nndsvda start, tol=1e-4 on its own criterion, "
          "max_iter=200; fastnmf: accelerated HALS, nndsvda start, tol=1e-4 on the relative "
          "error's decrease, max_iter=200, then W solved with H fixed). The relative error "
          "||X - W H|| / ||X|| is of what each returns. float32, "
          f"{args.threads} threads; fits under 5 s timed in turns, medians of at least "
          f"{max(args.repeat, 5)}, else one peer run and fastnmf's median of {args.repeat}.")


# --------------------------------------------------------------------------- init
def bench_init(args):
    """The nndsvda start: fastnmf's (through the public API, ``max_iter=0``)
    against scikit-learn's, and the range-basis orthonormalisation inside
    it (CholeskyQR2 against numpy's Householder QR) on the same shapes."""
    from sklearn.decomposition._nmf import _initialize_nmf
    from fastnmf._linalg import orthonormal_columns
    seed = int(str(args.seeds).split(",")[0])
    rows, basis = [], []
    cases = []
    for name, X, k in datasets(args.quick):
        cases.append((name, X, k))
        m, n = X.shape
        cases.append((f"{name} transposed ({n}x{m}: samples as columns)",
                      np.ascontiguousarray(X.T), k))
    for name, X, k in cases:
        (sk_t, (W, H)), (ft, r) = interleaved_medians(
            [lambda: _initialize_nmf(X, k, init="nndsvda", random_state=seed),
             lambda: fastnmf.nmf(X, k, init="nndsvda", max_iter=0, random_state=seed)],
            args.repeat)
        rows.append([f"{name} (rank {k})", f"{sk_t:.3f}", f"{rel_err(X, W, H):.4f}",
                     f"{ft:.3f}", f"{rel_err(X, r.U, r.V):.4f}", f"**{sk_t / ft:.2f}x**"])
        if X.shape[0] > X.shape[1]:
            # the final range basis, m x (k + 10), m = rows of A
            Y = np.random.default_rng(seed).standard_normal((X.shape[0], k + 10))
            Y = Y.astype(X.dtype)
            (qr_t, _), (cq_t, _) = interleaved_medians(
                [lambda: np.linalg.qr(Y), lambda: orthonormal_columns(Y)], max(args.repeat, 5))
            basis.append([f"{X.shape[0]} x {k + 10}", f"{qr_t * 1e3:.2f}",
                          f"{cq_t * 1e3:.2f}", f"**{qr_t / cq_t:.2f}x**"])
    table("The nndsvda start: fastnmf vs scikit-learn", [
        "data", "scikit-learn `_initialize_nmf` s", "its rel. error", "fastnmf.nmf(max_iter=0) s",
        "its rel. error", "speed-up"], rows,
        f"Both randomized SVDs with 7 power iterations (seed {seed}; fastnmf's run on the "
        f"m x m Gram matrix for the transposed data, see fastnmf/_init.py); fastnmf's time "
        f"includes "
        f"its input validation and the start's error. float32, {args.threads} threads, timed "
        f"in turns, medians of {args.repeat} (of at least 21 under 50 ms). A user's "
        f"`fastnmf.nmf(X, k)` pays this once before its first iteration.")
    table("Range basis of the randomized SVD: Householder QR vs CholeskyQR2", [
        "Y (m x (k + 10))", "numpy.linalg.qr ms", "fastnmf orthonormal_columns ms",
        "speed-up"], basis,
        "Standard normal Y of the shape of the final range basis, float32 (fastnmf computes "
        "in float64 and returns float32); timed in turns, medians. Until session 15 the "
        "randomized SVD orthonormalised such a basis 8 times with Householder; now the 7 power "
        "iterations normalise the shorter side with one CholeskyQR pass each, and this basis "
        "is orthonormalised once.")


# --------------------------------------------------------------------------- GEMM floor
def gemm_floor_nmf(A, U, Vt):
    """The GEMMs one nmf / semi_nmf iteration cannot avoid (a function to time)."""
    CU, CV = np.empty_like(U), np.empty_like(Vt)

    def calls():
        np.matmul(A, Vt, out=CU)
        np.matmul(A.T, U, out=CV)
        U.T @ U
        Vt.T @ Vt
    return calls


def gemm_floor_nonlinear(A, U, Vt, n_inner):
    """The GEMMs one outer iteration of nonlinear_semi_nmf cannot avoid (a
    function to time)."""
    P = np.empty(A.shape, A.dtype, order="F" if not A.flags.c_contiguous else "C")
    D, S = np.empty_like(U), np.empty_like(Vt)
    from fastnmf._linalg import matmul_into

    def calls():
        for _ in range(n_inner):            # U-block
            matmul_into(P, U, Vt.T)
            np.matmul(P, Vt, out=D)
        for _ in range(n_inner):            # V-block
            matmul_into(P, U, Vt.T)
            np.matmul(P.T, U, out=S)
        matmul_into(P, U, Vt.T)             # error of the new point
        Vt.T @ Vt
        U.T @ U
    return calls


def iter_time(run, n):
    """(seconds per iteration, seconds of the whole run) of ``run(n)``, by
    the result's own clock (``times``: set-up excluded)."""
    r = run(n)
    return (r.times[-1] - r.times[0]) / r.n_iter, r.times[-1]


def per_iter_vs_floor(run, n, floor_calls, work, repeat):
    """(solver s/iteration, floor s): medians over runs taken in turns, the
    floor on the thread count fastnmf picks for the solver (``for_work``:
    one thread for small problems)."""
    from fastnmf._threads import for_work

    def floor_once():
        with for_work(work):
            t = time.perf_counter()
            floor_calls()
            return time.perf_counter() - t

    floor_once()
    first, total = iter_time(run, n)
    runs = _n_runs(total, repeat)
    its, fls = [first], [floor_once()]
    for _ in range(runs - 1):
        its.append(iter_time(run, n)[0])
        fls.append(floor_once())
    return float(np.median(its)), float(np.median(fls))


def bench_floor(args):
    rows = []
    for name, X, k in datasets(args.quick):
        n = 20 if X.shape[0] < 10000 else 8
        rng = np.random.default_rng(0)
        U0 = rng.random((X.shape[0], k), dtype=np.float32)
        V0 = rng.random((k, X.shape[1]), dtype=np.float32)
        U, Vt = U0.copy(), np.ascontiguousarray(V0.T)
        work = float(X.size) * k
        floor = gemm_floor_nmf(X, U, Vt)
        Xc = X - X.mean(axis=0)
        cases = [("nmf hals (default inner sweeps)", X, fastnmf.nmf, dict(solver="hals")),
                 ("nmf hals, 1 sweep per block", X, fastnmf.nmf, dict(solver="hals", n_inner=1)),
                 ("nmf mu", X, fastnmf.nmf, dict(solver="mu")),
                 ("semi_nmf hals", Xc, fastnmf.semi_nmf, dict(solver="hals")),
                 ("semi_nmf mu", Xc, fastnmf.semi_nmf, dict(solver="mu"))]
        for label, data, solve, kw in cases:
            t, fl = per_iter_vs_floor(
                lambda m: solve(data, k, init=(U0, V0), max_iter=m, tol=0, **kw),
                n, floor, work, args.repeat)
            rows.append([name, label, f"{t * 1e3:.2f}", f"{fl * 1e3:.2f}", f"{t / fl:.2f}"])
        t, fl = per_iter_vs_floor(
            lambda m: fastnmf.nonlinear_semi_nmf(X, k, init=(U0, V0), max_iter=m, tol=0),
            max(2, n // 2), gemm_floor_nonlinear(X, U, Vt, 2), work, args.repeat)
        rows.append([name, "nonlinear_semi_nmf (n_inner=2)", f"{t * 1e3:.2f}",
                     f"{fl * 1e3:.2f}", f"{t / fl:.2f}"])
    table("Per-iteration time vs the GEMM floor (same process)",
          ["data", "solver", "ms / iteration", "GEMM floor ms", "ratio"], rows,
          "GEMM floor: the BLAS calls one iteration cannot avoid (cross products, Gram "
          "matrices; for the nonlinear solver the model products U V and residual cross "
          "products), timed alone on the same arrays, on the thread count fastnmf uses "
          f"for the problem (one for digits: fastnmf runs small problems on one thread), "
          f"in turns with the solver's runs. float32, {args.threads} threads, medians of "
          f"{args.repeat} runs, or of at least 21 for runs under {SHORT_S * 1e3:.0f} ms.")


# --------------------------------------------------------------------------- vs plain numpy
def dnn_layout_data(quick):
    """Samples as columns (the network layout: V is the N-column factor)."""
    out = []
    for name, X, k in datasets(quick):
        out.append((name.replace("x", " x ", 1) + " (transposed: samples as columns)",
                    X.T, k))
    return out


def bench_numpy(args):
    rows = []
    for name, A, k in dnn_layout_data(args.quick):
        rng = np.random.default_rng(0)
        m, n = A.shape
        U0 = rng.standard_normal((m, k)).astype(np.float32)
        V0 = rng.random((k, n), dtype=np.float32)
        iters = 30 if n < 10000 else 10
        Ac = np.asfortranarray(A - A.mean(axis=1, keepdims=True))  # mixed sign for semi-NMF
        cases = [
            ("semi_nmf mu", Ac,
             lambda it: ref.semi_nmf_mu(Ac, U0, V0, it),
             lambda it: fastnmf.semi_nmf(Ac, k, solver="mu", init=(U0, V0), max_iter=it,
                                         tol=0)),
            ("semi_nmf hals (3 sweeps)", Ac,
             lambda it: ref.semi_nmf_hals(Ac, U0, V0, it, 3),
             lambda it: fastnmf.semi_nmf(Ac, k, solver="hals", init=(U0, V0), max_iter=it,
                                         n_inner=3, inner_tol=0, tol=0)),
            ("nonlinear_semi_nmf (n_inner=2)", A,
             lambda it: ref.nonlinear_semi_nmf(A, U0, V0, it, 2),
             lambda it: fastnmf.nonlinear_semi_nmf(A, k, init=(U0, V0), max_iter=it, tol=0,
                                                   n_inner=2)),
        ]
        for label, data, np_run, fn_run in cases:
            target = np_run(iters)[2][-1]
            # Same rule, but float32 sums in another order: allow a few extra
            # iterations to reach the peer's final error exactly.
            r = fn_run(3 * iters)
            hit = np.nonzero(r.errors <= target)[0]
            hit = int(hit[0]) if hit.size else None
            # Both sides timed in turns (interleaved_medians): one ratio, one drift.
            (np_t, _), (fn_t, _), (fn_hit_t, _) = interleaved_medians(
                [lambda: np_run(iters), lambda: fn_run(iters),
                 lambda: fn_run(hit if hit is not None else iters)], args.repeat)
            if hit is None:
                rows.append([name, label, f"{np_t / iters * 1e3:.1f}",
                             f"{fn_t / iters * 1e3:.1f}", f"{np_t / fn_t:.2f}x",
                             f"{target:.5f}", f"{np_t:.2f}", "not reached", "-"])
                continue
            rows.append([name, label, f"{np_t / iters * 1e3:.1f}", f"{fn_t / iters * 1e3:.1f}",
                         f"{np_t / fn_t:.2f}x", f"{target:.5f}", f"{np_t:.2f}",
                         f"{fn_hit_t:.2f}", f"**{np_t / fn_hit_t:.2f}x**"])
    table("semi-NMF and nonlinear semi-NMF vs plain NumPy (same update rules)",
          ["data (rank)", "algorithm", "NumPy ms/iter", "fastnmf ms/iter", "per-iter speed-up",
           "NumPy final error", "NumPy s", "fastnmf s to that error", "speed-up"], rows,
          "NumPy peer: bench/numpy_reference.py, the same rules from the same U0, V0 (their "
          "error trajectories agree to 8 digits). It evaluates the error each iteration as "
          "fastnmf does. Samples are columns (the layout the network trainer uses), so V "
          f"is the large factor. float32, {args.threads} threads; NumPy and fastnmf timed "
          f"in turns, medians of {args.repeat} runs (of at least 21 for runs under "
          f"{SHORT_S * 1e3:.0f} ms).")


# --------------------------------------------------------------------------- threads
def thread_counts(args):
    """The thread counts of the ``threads`` table: ``--thread-counts`` or
    1 and ``--threads``."""
    if args.thread_counts:
        counts = sorted({int(c) for c in args.thread_counts.split(",")})
    else:
        counts = sorted({1, args.threads})
    if counts[0] != 1:
        counts = [1] + counts       # speed-ups are relative to one thread
    return counts


def bench_threads(args):
    counts = thread_counts(args)
    rows = []
    for name, X, k in datasets(args.quick):
        rng = np.random.default_rng(0)
        U0 = rng.random((X.shape[0], k), dtype=np.float32)
        V0 = rng.random((k, X.shape[1]), dtype=np.float32)
        n = 20 if X.shape[0] < 10000 else 8
        A = X.T  # samples as columns for the nonlinear / semi cases
        Ac = np.asfortranarray(A - A.mean(axis=1, keepdims=True))
        Un = rng.standard_normal((A.shape[0], k)).astype(np.float32)
        Vn = rng.random((k, A.shape[1]), dtype=np.float32)
        cases = [
            ("nmf hals", lambda m: fastnmf.nmf(X, k, init=(U0, V0), max_iter=m, tol=0)),
            ("nmf mu", lambda m: fastnmf.nmf(X, k, solver="mu", init=(U0, V0), max_iter=m,
                                             tol=0)),
            ("semi_nmf hals (samples as columns)",
             lambda m: fastnmf.semi_nmf(Ac, k, init=(Un, Vn), max_iter=m, tol=0)),
            ("nonlinear_semi_nmf (samples as columns)",
             lambda m: fastnmf.nonlinear_semi_nmf(A, k, init=(Un, Vn), max_iter=m, tol=0)),
        ]
        for label, run in cases:
            # Every thread count timed in turns: one drift for all of them.
            def once(nt, run=run):
                with fastnmf.threads(nt):
                    return iter_time(run, n)
            for nt in counts:
                once(nt)
            runs = _n_runs(once(counts[-1])[1], args.repeat)
            ts = {nt: [] for nt in counts}
            for _ in range(runs):
                for nt in counts:
                    ts[nt].append(once(nt)[0])
            t = {nt: float(np.median(v)) for nt, v in ts.items()}
            rows.append([name, label] + [f"{t[nt] * 1e3:.1f}" for nt in counts]
                        + [f"**{t[1] / t[nt]:.2f}x**" for nt in counts[1:]])
    table(f"{' vs '.join(map(str, counts))} threads (per-iteration time)",
          ["data (rank)", "solver"]
          + [f"{nt} thread{'s' if nt > 1 else ''} ms" for nt in counts]
          + [f"speed-up {nt}" if len(counts) > 2 else "speed-up" for nt in counts[1:]], rows,
          f"float32, {os.cpu_count()} CPUs visible; the thread counts timed in turns, medians "
          f"of {args.repeat} (of at least 21 for runs under {SHORT_S * 1e3:.0f} ms); BLAS, "
          "OpenMP and Numba all limited by fastnmf.threads(n); speed-up over 1 thread.")


# --------------------------------------------------------------------------- compile time
COMPILE_SNIPPET = """
import time; t0 = time.perf_counter()
import numpy as np, fastnmf
t1 = time.perf_counter()
a = np.random.default_rng(0).random((70, 30))
for dt in (np.float32, np.float64):
    b = a.astype(dt)
    fastnmf.nmf(b, 3, solver="mu", max_iter=2); fastnmf.nmf(b, 3, max_iter=2)
    fastnmf.semi_nmf(b - b.mean(), 3, solver="mu", max_iter=2)
    fastnmf.nonlinear_semi_nmf(b, 3, max_iter=2)
t2 = time.perf_counter()
import scipy.sparse as sp
for dt in (np.float32, np.float64):   # sparse: the serial and the parallel product build
    for n, d in ((30, 0.5), (2000, 0.4)):
        s = sp.random(n, n, density=d, format="csr", dtype=dt, random_state=0)
        fastnmf.nmf(s, 3, solver="mu", max_iter=2); fastnmf.nmf(s, 3, max_iter=2)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def bench_compile(args):
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (compile, empty cache)", "warm (load from cache)"):
            out = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET], env=env,
                                 capture_output=True, text=True, check=True).stdout.split()
            rows.append([label] + [f"{float(v):.2f}" for v in out[:3]])
    table("Numba compile time (never inside a timed region)",
          ["first use", "import fastnmf s", "first calls, both dtypes s",
           "then sparse nmf, both dtypes s"], rows,
          "Fresh interpreter each; first calls of every solver on a 70x30 problem in float32 "
          "and float64 (the work itself is < 10 ms); then nmf (HALS, MU) on sparse 30x30 and "
          "2000x2000 matrices (the CSR product's serial and parallel builds; the larger "
          "one's work is about 0.1 s). The README's timings exclude this.")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", default=["all"],
                    choices=["nmf", "penalized", "sparse", "kl", "estimator", "init", "floor",
                             "numpy",
                             "threads", "compile", "all"])
    ap.add_argument("--quick", action="store_true",
                    help="digits only (sparse: one small corpus)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--thread-counts", default=None, metavar="1,2,4,...",
                    help="thread counts of the `threads` table (default: 1 and --threads)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seeds", default="0", metavar="0,1,2",
                    help="nmf table: seeds of the nndsvda start (one set of rows each)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    what = (["compile", "init", "floor", "numpy", "threads", "nmf", "penalized", "sparse", "kl",
             "estimator"]
            if "all" in args.what
            else args.what)
    header = (f"Machine: {machine()}. Command: `python bench/compare.py {' '.join(sys.argv[1:])}`"
              f", {time.strftime('%Y-%m-%d')}.\n")
    global OUT
    OUT = args.out
    if OUT is not None:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with open(OUT, "a") as fh:
            fh.write(header + "\n")
    print(header)
    RESULTS.append(header)
    warm_up()
    with fastnmf.threads(args.threads):
        for w in what:
            {"nmf": bench_nmf, "penalized": bench_penalized, "sparse": bench_sparse,
             "kl": bench_kl,
             "estimator": bench_estimator,
             "init": bench_init,
             "floor": bench_floor, "numpy": bench_numpy, "threads": bench_threads,
             "compile": bench_compile}[w](args)
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(RESULTS, indent=1))


if __name__ == "__main__":
    main()
