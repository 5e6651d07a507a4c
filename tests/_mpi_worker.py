"""Cases run under ``mpiexec -n P python -m mpi4py tests/_mpi_worker.py CASE``.

Every process computes the one-process reference on the whole data set and
the data-parallel result on its own block of samples (uneven blocks; with
3 processes process 0 gets none), compares, and process 0 prints
``OK CASE`` at the end. Any failed check raises, and ``-m mpi4py`` turns
an uncaught exception on any process into an abort of the whole job.
Driven by ``tests/test_mpi.py``.
"""
import sys

import fastnmf  # noqa: F401  (before numpy: short BLAS spin)
import numpy as np
import scipy.sparse
from mpi4py import MPI

from fastnmf_dnn import NMFAutoencoder, NMFNetClassifier, NMFNetRegressor
from fastnmf_dnn.datasets import load_digits

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
TOL = {np.float64: 1e-5, np.float32: 1e-3}


def block(n):
    """This process's samples: uneven blocks, the first one empty for 3+ processes."""
    if SIZE == 1:
        return slice(0, n)
    if SIZE == 2:
        cuts = [0, n // 2 - 7, n]
    else:
        cuts = [0, 0] + [int(c) for c in np.linspace(0, n, SIZE)[1:]]
    return slice(cuts[RANK], cuts[RANK + 1])


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def check(name, diff, dt, tol=None):
    tol = TOL[dt] if tol is None else tol
    if diff > tol:
        raise AssertionError(f"{name} ({np.dtype(dt).name}): relative difference {diff:.2e} "
                             f"> {tol:g} on rank {RANK} of {SIZE}")


def case_solvers():
    rng = np.random.default_rng(0)
    for dt in (np.float64, np.float32):
        A = rng.random((24, 90)).astype(dt)
        S = rng.standard_normal((24, 90)).astype(dt)
        b = block(A.shape[1])
        runs = [("nmf hals", fastnmf.nmf, A, {}), ("nmf mu", fastnmf.nmf, A, {"solver": "mu"}),
                ("nmf random", fastnmf.nmf, A, {"init": "random", "extrapolate": False}),
                ("semi_nmf hals", fastnmf.semi_nmf, S, {}),
                ("semi_nmf mu", fastnmf.semi_nmf, S, {"solver": "mu"}),
                ("nonlinear_semi_nmf", fastnmf.nonlinear_semi_nmf, A, {}),
                # penalties: sum(V) of the objective is summed over processes
                ("nmf hals l1 l2", fastnmf.nmf, A, {"l1": (0.5, 0.2), "l2": (1.0, 0.3)}),
                ("nmf mu l1 l2", fastnmf.nmf, A, {"solver": "mu", "l1": 0.3, "l2": 0.5}),
                # KL: the U-step's numerator, V's row sums and the log sum reduced
                ("nmf kl", fastnmf.nmf, A, {"solver": "mu", "loss": "kl", "check_every": 3}),
                ("nmf kl l1 l2", fastnmf.nmf, A, {"solver": "mu", "loss": "kl", "l1": 0.3,
                                                  "l2": (0.5, 0.1), "check_every": 1})]
        # sparse data: the same sums over samples from each process's CSR block
        Asp = np.where(rng.random(A.shape) < 0.3, A, 0).astype(dt)
        Ssp0 = np.where(rng.random(S.shape) < 0.3, S, 0).astype(dt)
        runs += [("nmf hals sparse", fastnmf.nmf, Asp, {"sparse": True}),
                 ("nmf mu sparse", fastnmf.nmf, Asp, {"solver": "mu", "sparse": True}),
                 ("semi_nmf hals sparse", fastnmf.semi_nmf, Ssp0, {"sparse": True}),
                 ("nmf kl sparse", fastnmf.nmf, Asp, {"solver": "mu", "loss": "kl",
                                                      "sparse": True, "check_every": 2})]
        for name, f, data, kw in runs:
            kw = dict(kw)
            mine = np.ascontiguousarray(data[:, b])
            if kw.pop("sparse", False):
                data, mine = scipy.sparse.csr_matrix(data), scipy.sparse.csc_matrix(mine)
            ref = f(data, 4, max_iter=25, random_state=3, **kw)
            got = f(mine, 4, max_iter=25, random_state=3, comm=COMM, **kw)
            assert got.n_iter == ref.n_iter, (name, got.n_iter, ref.n_iter)
            check(name + " U", rel(ref.U, got.U), dt)
            check(name + " V", rel(ref.V[:, b], got.V) if got.V.size else 0.0, dt)
            check(name + " errors", rel(ref.errors, got.errors), dt)
            if "objective" in ref.info:
                check(name + " objective", rel(ref.info["objective"], got.info["objective"]), dt)
        # single-block solves, with the ones row of a bias
        U0 = rng.standard_normal((24, 5)).astype(dt)
        V0 = np.vstack([rng.random((4, 90)), np.ones((1, 90))]).astype(dt)
        for update in ("U", "V"):
            kw = dict(update=update, n_iter=6, omega=1.2, alpha=0.1, fixed_ones_row=True)
            if update == "U":
                kw["l2"] = 0.5
            ref = fastnmf.relu_lstsq(A, U0, V0, **kw)
            got = fastnmf.relu_lstsq(np.ascontiguousarray(A[:, b]), U0,
                                     np.ascontiguousarray(V0[:, b]), comm=COMM, **kw)
            check(f"relu_lstsq {update}: U", rel(ref.U, got.U), dt)
            check(f"relu_lstsq {update}: V", rel(ref.V[:, b], got.V), dt)
            check(f"relu_lstsq {update}: errors", rel(ref.errors, got.errors), dt)
        ref = fastnmf.ridge_lstsq(S, V0, alpha=0.3)
        check("ridge_lstsq", rel(ref, fastnmf.ridge_lstsq(
            np.ascontiguousarray(S[:, b]), np.ascontiguousarray(V0[:, b]), alpha=0.3,
            comm=COMM)), dt)
        Ssp = np.where(rng.random(S.shape) < 0.3, S, 0).astype(dt)
        for solver in ("hals", "mu", "pgn", "hals sparse", "mu sparse"):
            kw = {"step_at_zero": 0.3} if solver == "pgn" else {}
            data, mine = S, np.ascontiguousarray(S[:, b])
            if solver.endswith(" sparse"):
                solver = solver.split()[0]
                data = scipy.sparse.csr_matrix(Ssp)
                mine = scipy.sparse.csr_matrix(np.ascontiguousarray(Ssp[:, b]))
            ref = fastnmf.nnls(data, U0, solver=solver, max_iter=30, tol=1e-3,
                               fixed_ones_row=True, **kw)
            got = fastnmf.nnls(mine, U0, solver=solver, max_iter=30,
                               tol=1e-3, fixed_ones_row=True, comm=COMM, **kw)
            assert got.n_iter == ref.n_iter, ("nnls", solver, got.n_iter, ref.n_iter)
            check(f"nnls {solver} V", rel(ref.V[:, b], got.V) if got.V.size else 0.0, dt)
            check(f"nnls {solver} errors", rel(ref.errors, got.errors), dt)


def _weights(est):
    return list(est.coefs_) + list(est.intercepts_)


def case_estimators():
    d = load_digits(dtype=np.float64)
    X, y = d.X_train, d.y_train
    b = block(X.shape[0])
    # float32 with the multiplicative output target step: with the default
    # "pgn" step, which targets clip to exactly 0 (and then stay there)
    # depends on the rounding of each process's GEMM blocks, and float32
    # weights after 4 sweeps differed by 1.1e-2 from one process's (float64:
    # within 1e-5, checked by the first run).
    runs = [(np.float64, {}), (np.float32, {"z_solver": "mu", "z_iter": 5}),
            (np.float64, {"pretrain": True, "pretrain_iter": 5}),
            (np.float64, {"bottom_up": True}), (np.float64, {"z_solver": "pgn", "z_iter": 2})]
    for dt, kw in runs:
        params = dict(hidden_layer_sizes=(20, 12), max_iter=4, random_state=1, dtype=dt, **kw)
        ref = NMFNetClassifier(**params).fit(X, y)
        got = NMFNetClassifier(**params).fit(X[b], y[b], comm=COMM)
        for u, v in zip(_weights(ref), _weights(got)):
            check(f"NMFNetClassifier {kw} weights", rel(u, v), dt)
        check("NMFNetClassifier loss curve", rel(ref.loss_curve_, got.loss_curve_), dt)
        assert ref.history_["train_score"] == got.history_["train_score"]
        assert list(got.classes_) == list(ref.classes_)
    # multilabel (a label indicator y): subset accuracy over all processes
    L = np.c_[y % 2, y < 5, y % 3 == 0].astype(np.int64)
    params = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0, dtype=np.float64)
    ref = NMFNetClassifier(**params).fit(X, L)
    got = NMFNetClassifier(**params).fit(X[b], L[b], comm=COMM)
    for u, v in zip(_weights(ref), _weights(got)):
        check("NMFNetClassifier multilabel weights", rel(u, v), np.float64)
    assert ref.history_["train_score"] == got.history_["train_score"]
    np.testing.assert_array_equal(ref.predict(X), got.predict(X))
    Y = np.c_[X[:, :3].sum(axis=1), X[:, 5] - X[:, 9]]
    ref = NMFNetRegressor((16,), max_iter=3, random_state=0, dtype=np.float64).fit(X, Y)
    got = NMFNetRegressor((16,), max_iter=3, random_state=0, dtype=np.float64).fit(
        X[b], Y[b], comm=COMM)
    for u, v in zip(_weights(ref), _weights(got)):
        check("NMFNetRegressor weights", rel(u, v), np.float64)
    check("NMFNetRegressor R^2", rel(ref.history_["train_score"], got.history_["train_score"]),
          np.float64)
    # the autoencoder, on dense X and (against one process on the same
    # sparse X: the NMF's inner sweeps follow the sparse product's cost) on
    # sparse X; with 3 processes the first block is empty
    for data, what in ((X, ""), (scipy.sparse.csr_matrix(X), " sparse X")):
        ref = NMFAutoencoder((12,), nmf_iter=8, random_state=0, dtype=np.float64).fit(data)
        got = NMFAutoencoder((12,), nmf_iter=8, random_state=0, dtype=np.float64).fit(
            data[b], comm=COMM)
        for u, v in zip(_weights(ref) + ref.components_, _weights(got) + got.components_):
            check(f"NMFAutoencoder{what} weights", rel(u, v), np.float64)
        check(f"NMFAutoencoder{what} error",
              rel(ref.reconstruction_err_, got.reconstruction_err_), np.float64)
    # sample weights (zeros included; with 3 processes the first block is
    # empty): the weighted fit over all processes
    w = np.random.default_rng(7).integers(0, 3, X.shape[0]).astype(np.float64)
    for Est, t in ((NMFNetClassifier, y), (NMFNetRegressor, Y)):
        params = dict(hidden_layer_sizes=(16, 12), max_iter=3, random_state=0, dtype=np.float64)
        ref = Est(**params).fit(X, t, sample_weight=w)
        got = Est(**params).fit(X[b], t[b], sample_weight=w[b], comm=COMM)
        for u, v in zip(_weights(ref), _weights(got)):
            check(f"{Est.__name__} sample_weight weights", rel(u, v), np.float64)
        check(f"{Est.__name__} sample_weight loss", rel(ref.loss_curve_, got.loss_curve_),
              np.float64)
        check(f"{Est.__name__} sample_weight scores",
              rel(ref.history_["train_score"], got.history_["train_score"]), np.float64)
    # sparse X (CSR; with 3 processes the first block is empty): as the
    # dense X on one process
    Xs = scipy.sparse.csr_matrix(X)
    for Est, t in ((NMFNetClassifier, y), (NMFNetRegressor, Y)):
        params = dict(hidden_layer_sizes=(16, 12), max_iter=3, random_state=0, dtype=np.float64)
        ref = Est(**params).fit(X, t)
        got = Est(**params).fit(Xs[b], t[b], comm=COMM)
        for u, v in zip(_weights(ref), _weights(got)):
            check(f"{Est.__name__} sparse X weights", rel(u, v), np.float64)
        check(f"{Est.__name__} sparse X loss", rel(ref.loss_curve_, got.loss_curve_),
              np.float64)
    # the first layer by CG (ImplicitGram: one allreduce per iteration). CG
    # does not reproduce to rounding under another summation order (session
    # 26, Jacobi preconditioner: 44/45/47 iterations per sweep on 2 processes
    # against 44/47/46 on one), so the fits agree to its tolerance (1e-4 a
    # solve; measured 2.4e-4 after 3 sweeps then), not to 1e-5
    params = dict(hidden_layer_sizes=(16, 12), max_iter=3, random_state=0, dtype=np.float64,
                  input_solver="cg")
    ref = NMFNetClassifier(**params).fit(Xs, y)
    got = NMFNetClassifier(**params).fit(Xs[b], y[b], comm=COMM)
    for u, v in zip(_weights(ref), _weights(got)):
        check("NMFNetClassifier input_solver=cg weights", rel(u, v), np.float64, tol=2e-3)
    check("NMFNetClassifier input_solver=cg loss", rel(ref.loss_curve_, got.loss_curve_),
          np.float64, tol=1e-4)
    # early stopping: scores over all processes, the same decision everywhere
    est = NMFNetClassifier((10,), max_iter=6, early_stopping=True, random_state=0).fit(
        X[b], y[b], comm=COMM)
    scores = COMM.allgather(est.validation_scores_)
    assert all(s == scores[0] for s in scores), scores


def case_tiny_shards():
    """One sample on every process but the last, which holds the rest."""
    d = load_digits(dtype=np.float64)
    X, y = d.X_train[:200], d.y_train[:200]
    b = slice(RANK, RANK + 1) if RANK < SIZE - 1 else slice(SIZE - 1, 200)
    ref = NMFNetClassifier((10,), max_iter=2, random_state=0, dtype=np.float64).fit(X, y)
    got = NMFNetClassifier((10,), max_iter=2, random_state=0, dtype=np.float64).fit(
        X[b], y[b], comm=COMM)
    for u, v in zip(_weights(ref), _weights(got)):
        check("tiny shards", rel(u, v), np.float64)


def expect_error_everywhere(fn, must_contain):
    try:
        fn()
    except (ValueError, TypeError) as exc:
        msg = str(exc)
    else:
        raise AssertionError(f"no error on rank {RANK}")
    assert must_contain in msg, (RANK, msg)
    return msg


def case_errors():
    rng = np.random.default_rng(0)
    # features differ on one process: a clear error on every process
    X = rng.random((30, 8 if RANK != 1 else 9))
    y = np.arange(30) % 3
    expect_error_everywhere(lambda: NMFNetClassifier((4,), max_iter=1).fit(X, y, comm=COMM),
                            "number of features of X differs across MPI ranks")
    # sample weights on some processes only
    Xs = rng.random((30, 8))
    expect_error_everywhere(lambda: NMFNetClassifier((4,), max_iter=1).fit(
        Xs, y, sample_weight=np.ones(30) if RANK == 0 else None, comm=COMM),
        "whether sample_weight is given differs across MPI ranks")
    # all-zero weights on one process are fine; on all of them, an error everywhere
    NMFNetClassifier((4,), max_iter=1, random_state=0).fit(
        Xs, y, sample_weight=np.zeros(30) if RANK == 0 else np.ones(30), comm=COMM)
    expect_error_everywhere(lambda: NMFNetClassifier((4,), max_iter=1).fit(
        Xs, y, sample_weight=np.zeros(30), comm=COMM), "sample_weight is zero for every sample")
    # bad data on one process only: that process gets its own error, the
    # others name it (nobody is left waiting in an allreduce)
    A = rng.random((10, 20))
    if RANK == SIZE - 1:
        A[0, 0] = -1.0
    msg = expect_error_everywhere(lambda: fastnmf.nmf(A, 3, comm=COMM), "nonnegative")
    assert (RANK == SIZE - 1) or f"rank {SIZE - 1} of {SIZE} failed" in msg, msg
    A = rng.random((10 + (RANK == 0), 20))
    expect_error_everywhere(lambda: fastnmf.semi_nmf(A, 3, comm=COMM), "differs across MPI")
    # no samples anywhere
    expect_error_everywhere(lambda: fastnmf.nmf(np.ones((5, 0)), 2, comm=COMM),
                            "no columns on any process")
    expect_error_everywhere(lambda: fastnmf.nmf(np.ones((5, 4)), 2, comm=object()),
                            "comm must be None or an mpi4py communicator")


def case_crash():
    """One process fails in the middle of training: the job must abort, not hang."""
    d = load_digits()

    def boom(est, it, record):
        if RANK == SIZE - 1 and it == 2:
            raise RuntimeError("simulated failure")

    b = block(d.X_train.shape[0])
    NMFNetClassifier((10,), max_iter=50, random_state=0).fit(d.X_train[b], d.y_train[b],
                                                            comm=COMM, callback=boom)


if __name__ == "__main__":
    name = sys.argv[1]
    globals()[f"case_{name}"]()
    COMM.Barrier()
    if RANK == 0:
        print(f"OK {name} on {SIZE} processes", flush=True)
