"""The fit loop shared by NMFNetClassifier and NMFNetRegressor (internal).

Parameters, validation, initialisation (random or NMF pre-training), the
sweep loop with history, early stopping on a validation split (keeping the
best weights), checkpoint/resume and warm start. Subclasses only say how
targets are encoded (``_encode_targets``) and how a prediction is scored
(``_score_outputs``).
"""
from __future__ import annotations

import numbers
import time
import zlib

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

import fastnmf
from fastnmf._comm import SERIAL, as_comm, check_same, collective
from fastnmf._validation import check_magnitude

from . import model_io
from .network import Network, init_random
from .pretrain import pretrain_stack
from .trainer import PRESETS, TrainOptions, Trainer, check_data_parallel, check_options

_OPTION_PARAMS = ("bias", "alpha", "ridge", "rel_ridge", "width_ridge", "inner_iter", "omega", "z_iter", "z_solver", "z_prox", "l1",
                  "batch_size", "weight_prox", "margin_targets",
                  "refit_output", "extrapolate", "input_ridge", "input_damping",
                  "refresh_targets", "bottom_up", "inactive_step", "input_solver")


#: The regressor's extrapolation cap with the default preset. Session 22
#: raised the preset's to 8, measured on classification; on the regression
#: cases of ``bench/regression.py`` 8 fitted no better and overfitted
#: sooner (digits-half best test R^2 0.396 -> 0.379 over three seeds), so
#: the regressor keeps the previous 4.
REGRESSOR_EXTRAPOLATE = 4.0


def _check_magnitude(X, name):
    """ValueError if X's largest |entry| is outside
    :func:`fastnmf.magnitude_range` (the training products would overflow
    or underflow): the solvers' own check on their data, with advice for
    a network's inputs and targets. X dense or scipy.sparse."""
    check_magnitude(X, name, amax=_abs_max(X) if sp.issparse(X) else None,
                    hint="e.g. to features and targets of about unit scale, which train best")


def _abs_max(X) -> float:
    """Largest |entry| of a dense or scipy.sparse X (0 if it has none)."""
    data = X.data if sp.issparse(X) else X
    return float(np.abs(data).max()) if data.size else 0.0


def _check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(value, name, *, minimum=0.0, strict=False, maximum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < minimum or (strict and value == minimum) or (
            maximum is not None and value >= maximum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        bound += f" and < {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return value


def check_hidden_layer_sizes(sizes):
    if isinstance(sizes, (int, np.integer)) and not isinstance(sizes, bool):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise TypeError("hidden_layer_sizes must be an int or a sequence of ints, "
                        f"got {type(sizes).__name__}") from None
    return tuple(_check_positive_int(s, "hidden_layer_sizes entries") for s in sizes)


def _dtype(value):
    try:
        dt = np.dtype(value)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {value!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be numpy.float32 or numpy.float64, got {dt}")
    return dt


def _fingerprint(*arrays, comm=SERIAL):
    """Cheap identity of the training data, stored in checkpoints (with
    ``comm``: of every process's block, in rank order)."""
    crc = 0
    for a in arrays:
        for part in ((a.indptr, a.indices, a.data) if sp.issparse(a) else (a,)):
            crc = zlib.crc32(np.ascontiguousarray(part).view(np.uint8).ravel(), crc)
    mine = f"{[a.shape for a in arrays]}:{crc:08x}"
    return mine if comm.size == 1 else "|".join(comm.allgather(mine))


#: the per-sweep records of ``history_`` (and of a checkpoint)
_HISTORY_KEYS = ("loss", "train_score", "validation_score", "eval_score", "seconds")


def _seeded_rng(random_state):
    """numpy Generator of ``random_state`` (None, int, Generator, or a legacy
    RandomState, which is drawn from once)."""
    rs = random_state
    return np.random.default_rng(
        rs if not isinstance(rs, np.random.RandomState) else rs.randint(2**31 - 1))


def _check_sample_weight(sample_weight, n_samples):
    """``sample_weight`` as a float64 array (n_samples,), finite and >= 0 (a
    number: that weight for every sample). Unlike scikit-learn's check, an
    all-zero block is allowed here (a process's share of a data-parallel
    fit may be); the total is checked over all processes by the caller."""
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    w = check_array(sample_weight, ensure_2d=False, dtype=np.float64, ensure_min_samples=0,
                    input_name="sample_weight")
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},) (one weight per "
                         f"sample of X), got {w.shape}")
    if (w < 0).any():
        raise ValueError(f"sample_weight must be >= 0, got minimum {w.min()!r}")
    return w


def _check_scaled_range(X, Y, w):
    """The trainer scales sample j's row of X and Y by ``sqrt(w_j)`` (w > 0):
    the scaled arrays must stay in :func:`fastnmf.magnitude_range`, and no
    scale may fall below the working dtype's normal numbers. ValueError naming
    ``sample_weight`` otherwise (weights spanning too many decades)."""
    if w is None or not w.size:
        return
    dt = X.dtype
    top, low = float(np.sqrt(w.max())), float(np.sqrt(w.min()))
    if not low >= float(np.finfo(dt).tiny) or not np.isfinite(dt.type(top)):
        raise ValueError(f"sample_weight spans [{w.min():.3g}, {w.max():.3g}]: its square root "
                         f"is not representable in {dt.name}; rescale sample_weight (only "
                         "ratios between weights and their sum matter)")
    hint = "e.g. rescale sample_weight (only ratios between weights and their sum matter)"
    for arr, name in ((X, "X scaled by sqrt(sample_weight)"),
                      (Y, "y scaled by sqrt(sample_weight)")):
        amax = _abs_max(arr) * top
        check_magnitude(arr, name, amax=amax, hint=hint)


def _given(sample_weight):
    """``(sample_weight,)``, or ``()`` for None (checkpoints of unweighted
    runs keep their fingerprint)."""
    return () if sample_weight is None else (sample_weight,)


class BaseNMFNet(BaseEstimator):
    """Shared parameters and fit loop (see NMFNetClassifier for the docs)."""

    _target_is_label = False

    def __init__(self, hidden_layer_sizes=(100,), *, max_iter=30, alpha=None, ridge=None,
                 rel_ridge=None, width_ridge=None, preset="default",
                 bias=None, inner_iter=None, omega=None, z_iter=None, z_solver=None,
                 z_prox=None, l1=None, refresh_targets=None, batch_size=None, weight_prox=None,
                 margin_targets=None, refit_output=None, extrapolate=None, input_ridge=None,
                 input_damping=None, bottom_up=None, inactive_step=None, input_solver=None,
                 pretrain=False,
                 pretrain_iter=30, init_scale=1.0, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, warm_start=False, random_state=None,
                 n_threads=None, dtype=np.float32, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_iter = max_iter
        self.alpha = alpha
        self.ridge = ridge
        self.rel_ridge = rel_ridge
        self.width_ridge = width_ridge
        self.preset = preset
        self.bias = bias
        self.inner_iter = inner_iter
        self.omega = omega
        self.z_iter = z_iter
        self.z_solver = z_solver
        self.z_prox = z_prox
        self.l1 = l1
        self.refresh_targets = refresh_targets
        self.batch_size = batch_size
        self.weight_prox = weight_prox
        self.margin_targets = margin_targets
        self.refit_output = refit_output
        self.extrapolate = extrapolate
        self.input_ridge = input_ridge
        self.input_damping = input_damping
        self.bottom_up = bottom_up
        self.inactive_step = inactive_step
        self.input_solver = input_solver
        self.pretrain = pretrain
        self.pretrain_iter = pretrain_iter
        self.init_scale = init_scale
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.n_threads = n_threads
        self.dtype = dtype
        self.verbose = verbose

    # -- parameters ----------------------------------------------------------
    def training_options(self) -> TrainOptions:
        """The :class:`TrainOptions` these parameters select (preset + overrides)."""
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        opts = PRESETS[self.preset]
        changes = {k: getattr(self, k) for k in _OPTION_PARAMS if getattr(self, k) is not None}
        if "batch_size" in changes:
            if changes["batch_size"] == "full":
                changes["batch_size"] = None
            else:
                changes["batch_size"] = _check_positive_int(changes["batch_size"], "batch_size")
        for k in ("alpha", "ridge", "rel_ridge", "width_ridge", "z_prox", "l1", "weight_prox",
                  "input_ridge", "input_damping", "inactive_step"):
            if k in changes:
                changes[k] = _check_real(changes[k], k)
        if "omega" in changes:
            changes["omega"] = _check_real(changes["omega"], "omega", strict=True)
        if "extrapolate" in changes:
            changes["extrapolate"] = _check_real(changes["extrapolate"], "extrapolate",
                                                 minimum=1.0)
        for k in ("inner_iter", "z_iter"):
            if k in changes:
                changes[k] = _check_positive_int(changes[k], k)
        if "z_solver" in changes and changes["z_solver"] not in ("hals", "mu", "pgn"):
            raise ValueError(f"z_solver must be 'hals', 'mu' or 'pgn', "
                             f"got {changes['z_solver']!r}")
        for k in ("bias", "refresh_targets", "margin_targets", "refit_output", "bottom_up"):
            if k in changes and not isinstance(changes[k], (bool, np.bool_)):
                raise TypeError(f"{k} must be True, False or None, got {changes[k]!r}")
        if changes.get("margin_targets") and not self._target_is_label:
            raise ValueError("margin_targets=True is for classification (one-hot targets); "
                             f"{type(self).__name__} fits real-valued targets")
        if not self._target_is_label and "margin_targets" not in changes:
            changes["margin_targets"] = False
        if not self._target_is_label and self.preset == "default" and \
                "extrapolate" not in changes:
            changes["extrapolate"] = REGRESSOR_EXTRAPOLATE
        opts = opts.replace(**changes)
        check_options(opts)
        return opts

    def _validate_params(self):
        check_hidden_layer_sizes(self.hidden_layer_sizes)
        _check_positive_int(self.max_iter, "max_iter", minimum=0)
        _check_positive_int(self.pretrain_iter, "pretrain_iter")
        _check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        _check_real(self.init_scale, "init_scale", strict=True)
        _check_real(self.tol, "tol")
        _check_real(self.validation_fraction, "validation_fraction", strict=True, maximum=1.0)
        if self.n_threads is not None:
            _check_positive_int(self.n_threads, "n_threads")
        for k in ("pretrain", "early_stopping", "warm_start"):
            if not isinstance(getattr(self, k), (bool, np.bool_)):
                raise TypeError(f"{k} must be True or False, got {getattr(self, k)!r}")
        _dtype(self.dtype)
        return self.training_options()

    # -- hooks for subclasses --------------------------------------------------
    def _encode_targets(self, y, first_fit, n_samples, comm=SERIAL):  # pragma: no cover
        raise NotImplementedError

    def _score_outputs(self, out, y_enc, comm=SERIAL, sample_weight=None):  # pragma: no cover
        """Score of outputs ``out`` against encoded targets, over all
        processes, weighted by ``sample_weight`` if given."""
        raise NotImplementedError

    # -- fitting ---------------------------------------------------------------
    def _layer_sizes(self, n_features, n_outputs):
        return [n_features, *check_hidden_layer_sizes(self.hidden_layer_sizes), n_outputs]

    def _split(self, X, y, Y, w, comm=SERIAL):
        """``(X, Y, y, w)`` of the training part and ``(X, y, w)`` of the
        validation part (None without early stopping); w: sample weights
        or None."""
        if not self.early_stopping:
            return X, Y, y, w, None, None, None
        part = (lambda idx: None) if w is None else (lambda idx: w[idx])
        if comm.size > 1:
            # Each process holds out the same fraction of its own samples
            # (a shard may be tiny or empty: no stratification).
            g = np.random.default_rng([self._split_seed, comm.rank])
            perm = g.permutation(X.shape[0])
            n_va = int(round(self.validation_fraction * X.shape[0]))
            va, tr = np.sort(perm[:n_va]), np.sort(perm[n_va:])
            return X[tr], Y[tr], y[tr], part(tr), X[va], y[va], part(va)
        from sklearn.model_selection import train_test_split
        idx = np.arange(X.shape[0])
        # (a multilabel indicator y is not stratified: its rows are label sets)
        strat = y if (self._target_is_label and y.ndim == 1 and self._can_stratify(y)) else None
        tr, va = train_test_split(idx, test_size=self.validation_fraction,
                                  random_state=self._split_seed, stratify=strat)
        tr.sort()
        va.sort()
        return X[tr], Y[tr], y[tr], part(tr), X[va], y[va], part(va)

    @staticmethod
    def _can_stratify(y):
        _, counts = np.unique(y, return_counts=True)
        return counts.min() >= 2

    def _check_warm_start_sizes(self, sizes):
        fitted = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        if fitted != list(sizes):
            raise ValueError(f"warm_start=True continues the fitted network of layer sizes "
                             f"{fitted}, but hidden_layer_sizes and the data now give {sizes}; "
                             "set warm_start=False to train a new network")

    def _initial_network(self, X, sizes, opts, rng, comm=SERIAL, sample_weight=None):
        dt = X.dtype
        if self.warm_start and hasattr(self, "coefs_"):
            return Network([c.astype(dt) for c in self.coefs_],
                           [b.astype(dt) for b in self.intercepts_])
        net = init_random(sizes, rng, dt, scale=self.init_scale)
        if self.pretrain and len(sizes) > 2:
            with collective(comm):
                if X.size and X.min() < 0:
                    raise ValueError("pretrain=True needs nonnegative X (NMF of the input); "
                                     f"X has minimum {X.min()!r}")
            st = pretrain_stack(X, sizes[1:-1], nmf_iter=self.pretrain_iter, alpha=opts.alpha,
                                bias=opts.bias, random_state=rng,
                                verbose=bool(self.verbose) and comm.rank == 0, comm=comm,
                                sample_weight=sample_weight)
            net.coefs[:-1] = st.coefs
            net.intercepts[:-1] = st.intercepts
        return net

    def _fit(self, X, y, *, sample_weight=None, eval_set=None, checkpoint=None, resume=False,
             callback=None, comm=None):
        t_fit = time.perf_counter()
        comm = as_comm(comm)
        split = comm.size > 1
        with collective(comm):
            opts = self._validate_params()
            check_data_parallel(opts, comm)   # before pre-training, not after it
            if split and checkpoint is not None and not opts.refresh_targets:
                raise ValueError("checkpoint with comm needs refresh_targets=True (the carried-"
                                 "over targets are per-process state a checkpoint does not hold)")
            dt = _dtype(self.dtype)
            first_fit = not (self.warm_start and hasattr(self, "coefs_"))
            X = validate_data(self, X, dtype=dt, reset=first_fit, order="C", accept_sparse="csr",
                              **({"ensure_min_samples": 0} if split else {}))
            _check_magnitude(X, "X")
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X.shape[0])
        check_same(comm, X.shape[1], "the number of features of X")
        check_same(comm, sample_weight is None, "whether sample_weight is given")
        if sample_weight is not None and not comm.sum(float(sample_weight.sum())) > 0:
            raise ValueError("sample_weight is zero for every sample: nothing to train on")
        with collective(comm):
            y_enc, Y = self._encode_targets(y, first_fit, n_samples=X.shape[0], comm=comm)
        Y = Y.astype(dt, copy=False)
        _check_magnitude(Y, "y")   # regression targets are the output layer's data
        check_same(comm, Y.shape[1], "the number of outputs (columns of y / classes)")
        if comm.sum(X.shape[0]) < 1:
            raise ValueError("X has no samples on any process")
        rs = self.random_state
        if split and rs is None:  # every process must draw the same weights
            rs = comm.bcast(int(np.random.default_rng().integers(2**62)))
        rng = _seeded_rng(rs)
        self._split_seed = int(rng.integers(2**31 - 1))
        sizes = self._layer_sizes(X.shape[1], Y.shape[1])
        if not first_fit:
            self._check_warm_start_sizes(sizes)
        state = None
        if checkpoint is not None and resume:
            with collective(comm):
                state = self._read_checkpoint(checkpoint, X, y_enc, opts, sizes, comm,
                                              sample_weight)
        if state is not None and state["split_seed"] is not None:
            # the validation split of the interrupted run (random_state=None
            # would otherwise draw another split than the one trained on)
            self._split_seed = state["split_seed"]
        Xtr, Ytr, ytr, wtr, Xva, yva, wva = self._split(X, y_enc, Y, sample_weight, comm)
        if wtr is not None:
            # A sample of weight 0 changes no fit: left out (the trainer's
            # scaled buffers could not give its output back).
            keep = wtr > 0
            if not comm.sum(int(np.count_nonzero(keep))):
                raise ValueError("sample_weight: every training sample has weight 0"
                                 + (" (after the early-stopping split)" if self.early_stopping
                                    else ""))
            if not keep.all():
                Xtr, Ytr, ytr, wtr = Xtr[keep], Ytr[keep], ytr[keep], wtr[keep]
        with collective(comm):
            _check_scaled_range(Xtr, Ytr, wtr)
        if eval_set is not None:
            with collective(comm):
                Xev, yev = eval_set
                Xev = validate_data(self, Xev, dtype=dt, reset=False, accept_sparse="csr",
                                    **({"ensure_min_samples": 0} if split else {}))
                yev = self._encode_eval(yev)
        with fastnmf.threads(self.n_threads) if self.n_threads else _nullcontext():
            if state is not None:
                net = state["network"]
            else:
                net = self._initial_network(Xtr, sizes, opts, rng, comm, sample_weight=wtr)
            trainer = Trainer(Xtr, Ytr, net, opts, seed=self._split_seed, comm=comm,
                              sample_weight=wtr)
            if state is None and not first_fit and getattr(self, "n_iter_", 0) > 0:
                trainer.resume_at(0, output_fitted=True)  # warm start after >= 1 sweep
                if getattr(self, "_extrapolation_state", None) is not None:
                    trainer.beta, trainer.prev_loss = self._extrapolation_state
            if state is not None:
                trainer.load_state_arrays(state["arrays"])
                trainer.resume_at(len(state["history"]["loss"]))
                hist = state["history"]
                best = state["best"]
            else:
                hist = {k: [] for k in _HISTORY_KEYS}
                best = {"score": -np.inf, "loss": np.inf, "iter": 0, "no_improve": 0,
                        "network": None}
            it = len(hist["loss"])
            self.setup_seconds_ = time.perf_counter() - t_fit
            while it < self.max_iter and not best.get("stopped", False):
                t0 = time.perf_counter()
                out = trainer.sweep()
                secs = time.perf_counter() - t0
                it += 1
                # The loss the sweeps minimise (the squared hinge with margin
                # targets), not the squared error to the one-hot targets: that
                # one rises while the network fits better (Fashion-MNIST: from
                # sweep 2 on), and the n_iter_no_change rule read on it stopped
                # the default classifier after 12 of its 30 sweeps.
                loss = trainer.fit_loss()
                net_now = trainer.network()
                hist["loss"].append(loss)
                hist["train_score"].append(self._score_outputs(out, ytr, comm, wtr))
                hist["seconds"].append(secs)
                hist["validation_score"].append(
                    self._score_outputs(net_now.forward(Xva), yva, comm, wva) if Xva is not None
                    else None)
                hist["eval_score"].append(
                    self._score_outputs(net_now.forward(Xev), yev, comm) if eval_set is not None
                    else None)
                self._update_best(best, hist, net_now, it, (trainer.beta, trainer.prev_loss))
                if checkpoint is not None:
                    self._write_checkpoint(checkpoint, X, y_enc, trainer, hist, best, sizes,
                                           comm, sample_weight)
                if self.verbose and comm.rank == 0:
                    self._print_progress(it, hist)
                if callback is not None:
                    callback(self, it, {k: v[-1] for k, v in hist.items()})
            final = best["network"] if (self.early_stopping and best["network"] is not None) \
                else trainer.network()
            if final is None:  # max_iter == 0
                final = trainer.network()
        # a warm start goes on with the same extrapolation step (exactly as
        # an uninterrupted run), unless the weights kept are early stopping's
        self._extrapolation_state = (best.get("extrapolation") if self.early_stopping
                                     else (trainer.beta, trainer.prev_loss))
        self._store_network(final, sizes, opts)
        self.n_iter_ = it
        self.loss_curve_ = list(hist["loss"])
        self.loss_ = hist["loss"][-1] if hist["loss"] else np.nan
        self.best_loss_ = None if self.early_stopping else (min(hist["loss"]) if hist["loss"]
                                                            else np.nan)
        self.validation_scores_ = list(hist["validation_score"]) if self.early_stopping else None
        self.best_validation_score_ = best["score"] if self.early_stopping else None
        self.history_ = {k: list(v) for k, v in hist.items()}
        return self

    def _store_network(self, net, sizes, opts):
        """The fitted network's attributes (``coefs_``, ``intercepts_``, as
        MLPClassifier's) and the options it was trained with."""
        self.coefs_ = [np.ascontiguousarray(c) for c in net.coefs]
        self.intercepts_ = [np.ascontiguousarray(b) for b in net.intercepts]
        self.n_layers_ = len(sizes)
        self.n_outputs_ = sizes[-1]
        self.out_activation_ = "identity"
        self.training_options_ = opts

    # -- partial_fit ----------------------------------------------------------
    def _partial_fit(self, X, y, sample_weight=None, classes=None):
        """One damped sweep over the batch (X, y), from the current weights
        (random ones, or NMF pre-training on this batch, at the first call).

        The batch is one block of a mini-batch sweep (``Trainer(...,
        incremental=True)``): each weight update is pulled towards the
        current weights by ``weight_prox`` times the batch's size (or
        weight), so a stream of batches trains as ``batch_size`` sweeps do.
        """
        t0 = time.perf_counter()
        opts = self._validate_params()
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True (there is no "
                             "validation split of a stream); use fit")
        first = not hasattr(self, "coefs_")
        dt = _dtype(self.dtype)
        X = validate_data(self, X, dtype=dt, reset=first, order="C", accept_sparse="csr")
        _check_magnitude(X, "X")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X.shape[0])
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight is zero for every sample: nothing to train on")
        y_enc, Y = self._encode_batch(y, first, X.shape[0], classes)
        Y = Y.astype(dt, copy=False)
        _check_magnitude(Y, "y")
        if sample_weight is not None and not (sample_weight > 0).all():
            keep = sample_weight > 0
            X, Y, y_enc, sample_weight = X[keep], Y[keep], y_enc[keep], sample_weight[keep]
        _check_scaled_range(X, Y, sample_weight)
        sizes = self._layer_sizes(X.shape[1], Y.shape[1])
        with fastnmf.threads(self.n_threads) if self.n_threads else _nullcontext():
            if first:
                rng = _seeded_rng(self.random_state)
                self._split_seed = int(rng.integers(2**31 - 1))
                net = self._initial_network(X, sizes, opts, rng, sample_weight=sample_weight)
            else:
                self._check_warm_start_sizes(sizes)
                net = Network([c.astype(dt) for c in self.coefs_],
                              [b.astype(dt) for b in self.intercepts_])
            trainer = Trainer(X, Y, net, opts, seed=self._split_seed + getattr(self, "t_", 0),
                              sample_weight=sample_weight, incremental=True)
            t1 = time.perf_counter()
            out = trainer.sweep()
            secs = time.perf_counter() - t1
            loss = trainer.fit_loss()
            score = self._score_outputs(out, y_enc, SERIAL, sample_weight)
        self._store_network(trainer.network(), sizes, opts)
        self.n_iter_ = getattr(self, "n_iter_", 0) + 1
        self.t_ = getattr(self, "t_", 0) + X.shape[0]
        self.loss_curve_ = list(getattr(self, "loss_curve_", [])) + [loss]
        self.loss_ = loss
        self.best_loss_ = min(self.loss_curve_)
        self.validation_scores_ = None
        self.best_validation_score_ = None
        hist = getattr(self, "history_", None) or {k: [] for k in _HISTORY_KEYS}
        for key, value in (("loss", loss), ("train_score", score), ("validation_score", None),
                           ("eval_score", None), ("seconds", secs)):
            hist[key].append(value)
        self.history_ = hist
        self._extrapolation_state = None     # a later warm-start fit starts its own
        self.setup_seconds_ = t1 - t0
        return self

    def _encode_batch(self, y, first, n_samples, classes):
        """Targets of a partial_fit batch (the regressor's; the classifier
        adds ``classes``)."""
        return self._encode_targets(y, first, n_samples)

    def _update_best(self, best, hist, net, it, extrapolation):
        if self.early_stopping:
            score = hist["validation_score"][-1]
            if score > best["score"] + self.tol:
                best["no_improve"] = 0
            else:
                best["no_improve"] += 1
            if score > best["score"]:
                best.update(score=score, iter=it, network=net.copy(),
                            extrapolation=list(extrapolation))
        else:
            loss = hist["loss"][-1]
            if loss < best["loss"] - self.tol * max(abs(best["loss"]), 1e-300) \
                    if np.isfinite(best["loss"]) else True:
                best["no_improve"] = 0
            else:
                best["no_improve"] += 1
            best["loss"] = min(best["loss"], loss)
        if best["no_improve"] >= self.n_iter_no_change:
            best["stopped"] = True

    def _print_progress(self, it, hist):
        parts = [f"iter {it:3d}", f"loss {hist['loss'][-1]:.5f}",
                 f"train {hist['train_score'][-1]:.4f}"]
        if hist["validation_score"][-1] is not None:
            parts.append(f"val {hist['validation_score'][-1]:.4f}")
        if hist["eval_score"][-1] is not None:
            parts.append(f"eval {hist['eval_score'][-1]:.4f}")
        parts.append(f"{hist['seconds'][-1]:.2f}s")
        print("  ".join(parts), flush=True)

    # -- checkpoints -----------------------------------------------------------
    def _write_checkpoint(self, path, X, y, trainer, hist, best, sizes, comm=SERIAL,
                          sample_weight=None):
        data = _fingerprint(X, y, *_given(sample_weight), comm=comm)   # collective: first
        if comm.rank != 0:   # every process has the same weights; one writes
            return
        net = trainer.network()
        arrays = _network_arrays(net, "coef", "intercept")
        if best["network"] is not None:
            arrays.update(_network_arrays(best["network"], "best_coef", "best_intercept"))
        arrays.update(trainer.state_arrays())
        arrays.update(self._class_arrays())
        meta = {
            "kind": "checkpoint", "estimator": type(self).__name__,
            "params": _json_params(self.get_params()), "layer_sizes": sizes,
            "data": data, "history": hist, "split_seed": self._split_seed,
            "best": {k: (None if (isinstance(v, float) and not np.isfinite(v)) else v)
                     for k, v in best.items() if k != "network"},
            "fastnmf_version": fastnmf.__version__,
        }
        model_io.write_npz(path, meta, arrays)

    def _read_checkpoint(self, path, X, y, opts, sizes, comm=SERIAL, sample_weight=None):
        import os
        fingerprint = _fingerprint(X, y, *_given(sample_weight), comm=comm)   # collective
        if not os.path.exists(path):
            return None
        meta, arrays = model_io.read_npz(path, kind="checkpoint")
        try:
            estimator, layer_sizes = meta["estimator"], meta["layer_sizes"]
            data, theirs = meta["data"], meta["params"]
            history, best_meta = meta["history"], meta["best"]
            split_seed = meta.get("split_seed")
        except (KeyError, TypeError) as exc:
            raise model_io.ModelFileError(f"{path}: corrupt checkpoint (missing {exc})") from None
        if estimator != type(self).__name__:
            raise ValueError(f"checkpoint {path} was written by {estimator}, "
                             f"not {type(self).__name__}")
        if layer_sizes != sizes:
            raise ValueError(f"checkpoint {path} has layer sizes {layer_sizes}, "
                             f"this model {sizes}")
        mine = _json_params(self.get_params())
        differ = sorted(k for k in mine if k not in ("max_iter", "verbose", "n_threads")
                        and mine.get(k) != theirs.get(k))
        if differ:  # before the data check: another dtype also changes the data's bytes
            raise ValueError(f"checkpoint {path} was written with other parameters: {differ}")
        if data != fingerprint:
            raise ValueError(f"checkpoint {path} was written for other training data")
        try:
            best = {k: (-np.inf if k == "score" and v is None else
                        np.inf if k == "loss" and v is None else v)
                    for k, v in best_meta.items()}
            # "stopped" is kept: a run that had stopped early stays stopped
            best.setdefault("stopped", False)
            best["network"] = (_arrays_network(arrays, "best_coef", "best_intercept")
                               if "best_coef_0" in arrays else None)
            network = _arrays_network(arrays, "coef", "intercept")
            hist = {k: list(history[k]) for k in _HISTORY_KEYS}
            if len({len(v) for v in hist.values()}) != 1:
                raise ValueError("history lists of different lengths")
            _check_network(network, sizes)
            if best["network"] is not None:
                _check_network(best["network"], sizes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise model_io.ModelFileError(f"{path}: corrupt checkpoint ({exc})") from None
        return {"network": network, "arrays": arrays, "history": hist, "best": best,
                "split_seed": split_seed if isinstance(split_seed, int) else None}

    def _class_arrays(self):
        return {}

    # -- prediction ------------------------------------------------------------
    def _forward(self, X):
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, dtype=self.coefs_[0].dtype, reset=False, accept_sparse="csr")
        return Network(self.coefs_, self.intercepts_).forward(X)

    # -- files -----------------------------------------------------------------
    def save(self, path):
        """Save the fitted model to ``path`` (.npz + JSON metadata, no pickle)."""
        from .persistence import save_model
        return save_model(self, path)

    @classmethod
    def load(cls, path):
        """Load a model saved by :meth:`save` (must be of this class)."""
        from .persistence import load_model
        est = load_model(path)
        if not isinstance(est, cls):
            raise ValueError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}")
        return est


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _network_arrays(net, cname, bname):
    out = {}
    for i, (c, b) in enumerate(zip(net.coefs, net.intercepts)):
        out[f"{cname}_{i}"] = c
        out[f"{bname}_{i}"] = b
    return out


def _arrays_network(arrays, cname, bname):
    n = sum(1 for k in arrays if k.startswith(cname + "_") and k[len(cname) + 1:].isdigit())
    return Network([arrays[f"{cname}_{i}"] for i in range(n)],
                   [arrays[f"{bname}_{i}"] for i in range(n)])


def _check_network(net, sizes):
    """Weights read from a file have the shapes of ``sizes`` (else ValueError)."""
    if len(net.coefs) != len(sizes) - 1:
        raise ValueError(f"{len(net.coefs)} weight matrices for layer sizes {sizes}")
    for c, b, n_in, n_out in zip(net.coefs, net.intercepts, sizes[:-1], sizes[1:]):
        if c.shape != (n_in, n_out) or b.shape != (n_out,) or c.dtype.kind != "f" \
                or b.dtype != c.dtype:
            raise ValueError(f"weights of shape {c.shape} / {b.shape} for a {n_in} -> {n_out} "
                             "layer")


def _json_params(params):
    out = {}
    for k, v in params.items():
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        elif isinstance(v, tuple):
            v = [int(x) for x in v]
        elif isinstance(v, type) or isinstance(v, np.dtype):
            v = np.dtype(v).name
        elif isinstance(v, (np.random.Generator, np.random.RandomState)):
            v = repr(type(v).__name__)
        out[k] = v
    return out
