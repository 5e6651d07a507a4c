"""Backprop-free training of a ReLU MLP by alternating (semi-)NMF solves.

One call of :meth:`Trainer.sweep` is one outer iteration of method.md
section 3 (Sakurai et al. 2016), written with samples as rows:

1. output layer, semi-NMF ``Y ~ [Z_{L-1}, 1] W_L^T``: ``W_L`` by ridge least
   squares (:func:`fastnmf.ridge_lstsq`), then the targets ``Z_{L-1} >= 0``
   by nonnegative least squares (:func:`fastnmf.nnls`, HALS) with the ones
   column fixed;
2. hidden layers ``i = L-1 .. 2``, nonlinear semi-NMF
   ``Z_i ~ relu([Z_{i-1}, 1] W_i^T)``: the U-step then the V-step of
   :func:`fastnmf.relu_lstsq` (ones column fixed);
3. first layer: only the U-step (the data X is fixed);
4. a forward pass, which is both the training loss users see and (with
   ``refresh_targets``) the hidden targets of the next sweep.

With ``bottom_up`` steps 2-3 run in another order: every hidden layer's
V-step first (top-down), then every U-step bottom-up, each on the
activations the updated layers below produce (:class:`TrainOptions`).

Every N-sized buffer is allocated once, in :class:`Trainer`; the public
fastnmf solves update them in place (``overwrite=True``).

Data parallelism (``comm``): every process holds its own block of samples
(rows of X and Y). Each U-step's Gram and cross product is summed over the
processes inside the fastnmf solve (one allreduce, ``comm=``), target
steps and the forward pass are local, so every process ends each sweep
with the same weights as one process training on all samples. Cost per sweep:
a few GEMMs of size ``n_i x n_{i-1} x N`` per layer (see
``bench/bench_trainer.py`` for the measured ratio to the GEMM floor).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Optional

import numpy as np
import scipy.sparse as sp

import fastnmf
from fastnmf._comm import as_comm
from fastnmf._linalg import gram

from . import _passes as P
from ._inputs import scale_rows, with_bias_column
from .network import Network, stack_layer, unstack_layer

__all__ = ["TrainOptions", "Trainer", "PRESETS", "sweep_gemm_shapes"]


@dataclass(frozen=True)
class TrainOptions:
    """Every open choice of method.md section 3 (defaults: see ``PRESETS``).

    Attributes
    ----------
    bias : bool
        A ones column on every layer's input (Arai et al. 2018) that no
        target update may change.
    alpha : float >= 0
        Ridge penalty on the weights per sample: every U-step adds
        ``alpha * N`` to the Gram matrix's diagonal (N = training samples),
        so the same alpha means the same thing for any N.
    ridge : float >= 0
        Absolute weight decay ``ridge ||W||^2`` on every layer (output: in
        its ridge least squares; ReLU layers: the ``l2`` of
        :func:`fastnmf.relu_lstsq`, which, unlike ``alpha`` there, moves
        the fixed point): the prior of a Bayesian ridge, whose weight
        relative to the data fades as N grows.
    rel_ridge : float >= 0
        Weight decay in units of the layer's input: ``rel_ridge * mean(h^2)``
        (mean over the layer input's entries) is added to ``ridge``. Like
        ``ridge`` it is a prior whose weight relative to the data fades as
        N grows (it regularizes small training sets most), and unlike it, it
        follows the size of the activations, which is not fixed for ReLU
        layers (scale-invariant).
    width_ridge : float >= 0
        Weight decay that also grows with the layer's width:
        ``width_ridge * sum(h^2) / N`` (h the layer input's entries, N the
        training samples) is added to ``ridge``, i.e. a ridge of
        ``width_ridge * k / N`` relative to the mean diagonal of the layer's
        Gram matrix (k inputs per unit, bias included): decay in proportion
        to the parameters per unit over the samples. ``rel_ridge`` is that
        with ``rel_ridge / k`` in place of ``width_ridge``. The default,
        0.0255, is the decay the earlier default ``rel_ridge=20`` gave a
        784-input layer; it replaced that default after measurement
        (README, ablation: digits +0.8 to +1.4 points over four seeds,
        Fashion-MNIST and its 5,000-image subset +0.1).
    inner_iter : int >= 1
        Fixed-point iterations per nonlinear block (U- and V-step each).
    omega : float > 0
        Relaxation factor of the fixed-point iterations.
    z_iter : int >= 1
        HALS sweeps (MU updates, Gauss-Newton steps) of the output layer's
        target update.
    z_solver : {"hals", "mu", "pgn"}
        The output layer's target (V-) step: exact NNLS sweeps, the
        Ding-Li-Jordan multiplicative update, or projected Gauss-Newton
        steps that leave the targets at 0 where they are 0, as MU does
        (``fastnmf.nnls(solver="pgn", step_at_zero=0)``, ``z_prox`` its
        damping). MU moves each target by a step proportional to its value;
        "pgn" moves every positive target by the Gauss-Newton step and
        costs O(N c k) per step instead of MU's O(N k^2). "pgn" is the
        default since session 16 (README "Ablation"): on Fashion-MNIST
        (50,000 / 10,000 split, 30 sweeps, seeds 0-2) its validation best
        is 0.19-0.45 points above MU's and the test accuracy there
        0.33-0.39 points, the training set fitted better (0.941-0.944
        against 0.933-0.935), and each step is cheaper.
    z_prox : float >= 0
        Proximal weight gamma of every target update: the targets move to
        ``argmin ||layer residual||^2 + gamma ||Z - Z_start||^2``, i.e. they
        stay near the forward activations they start from (for the
        nonlinear blocks this is the damping of the Gauss-Newton step).
        0 is the published algorithm.
    l1 : float >= 0
        l1 penalty on the output layer's targets (sparsity).
    refresh_targets : bool
        Reset the hidden targets to the forward activations at the start of
        every sweep (True) or carry them over from the previous sweep.
    batch_size : int or None
        None: every sweep solves each layer on all N samples at once (the
        published method). An int B: a sweep runs the layer updates on
        N / B blocks of B samples in turn, like mini-batch NMF.
    margin_targets : bool
        Classification: before each update, outputs already beyond their
        one-hot target on the right side (above 1 for the true class, below
        0 for the others) get their current value as the target, so the
        least-squares fit spends nothing on them (a squared-hinge loss,
        majorized by least squares).
    refit_output : bool
        Full batch with ``refresh_targets`` only: refit the output layer's weights (ridge least
        squares, the sweep's first step) to the features of the closing
        forward pass, so the network evaluated after a sweep has the best
        output layer for its features; the next sweep then starts from the
        target step. Costs one Gram and one product of the last hidden layer.
    weight_prox : float >= 0
        Mini-batch only: every weight update on a block of b samples is
        damped towards the current weights by ``weight_prox * b`` (a
        proximal term, so one block cannot undo what the others learned).
    extrapolate : float >= 1
        Full batch only: the cap of an adaptive extrapolation of the hidden
        layers' weights over whole sweeps. After a sweep moved them from
        ``W_old`` to ``W``, they become ``W_old + beta (W - W_old)``, then the
        forward pass (and output refit) runs. If the training loss (squared
        hinge with ``margin_targets``, else least squares) came out higher
        than after the previous sweep, the plain step (``beta = 1``) is taken
        instead and beta is halved (once halved to 1, the rest of the run
        takes plain sweeps); otherwise beta grows by 1.2, up to this
        cap. It starts at the cap. 1 turns it off (the published sweep).
        A rejected step costs one more forward pass and output refit. The
        default was 3 until ``inactive_step``, whose slower start 4 made
        up for, and 4 until session 22: with the pgn output target step
        no Fashion-MNIST sweep was rejected at 4 (the cap, not the rule,
        held beta), and 8 reached test accuracy 0.892 in 40-60% of the
        time on three seeds, with the same best accuracy (12 was worse;
        README, "Ablation").
    input_ridge : float >= 0
        Weight decay on the first layer only, in units of its input's Gram
        matrix: ``input_ridge * trace(X^T X) / d`` (the mean diagonal of that
        Gram, bias column included; with mini-batches, of the block's) is
        added to the first layer's ``l2``. Unlike ``ridge`` and
        ``rel_ridge`` its weight relative to the data does not fade as N
        grows: it damps the input directions of low variance, which the
        exact least-squares update of the first layer otherwise fits in
        full (training accuracy up, test accuracy not).
    input_damping : float >= 0
        Damping of the first layer's U-step, in the same units:
        ``input_damping * trace(X^T X) / d`` is added to that step's
        ``alpha`` (the ridge of its pseudo-inverse only, not a penalty, so
        the fixed points stay those without it). It shortens the step most
        in the input directions of low variance, where the exact
        least-squares step is longest. README "Ablation": with 0.01, +0.15
        points on Fashion-MNIST over three seeds (+0.23 after 8 sweeps).
    bottom_up : bool
        With two or more hidden layers: first every target, top-down (the
        output layer's target step, then each hidden layer's V-step with
        its weights as they are), then every hidden layer's weights,
        bottom-up, each fitted to the activations that the already-updated
        layers below it now produce (one more forward product per hidden
        layer but the last). False: the published order, each layer's
        U-step then its V-step, top-down, every U-step on the previous
        sweep's activations. Needs ``refresh_targets``. (README, "Ablation":
        with ``z_prox=0.1`` +0.1 to +0.3 points on Fashion-MNIST over three
        seeds, not the default.)
    inactive_step : float in [0, 1]
        The hidden layers' target steps (V-steps; ``relu_lstsq``'s
        ``step_at_zero``): relative length of the step for the units that
        are inactive (0) in the activations the step starts from. 1 is the
        published step, which can switch any of them on; 0 leaves them off,
        as backpropagation's ReLU mask and the output layer's
        multiplicative target step do; in between, they can switch on by a
        shorter step. README "Ablation": on Fashion-MNIST (three seeds, 30
        sweeps, with ``extrapolate=4``) 0.3 reached 0.8906-0.8912 where
        session 11's defaults (1, with ``extrapolate=3``) reached
        0.8825-0.8848 and 0.5 0.8861-0.8901, fitting the training set
        better (its activations are sparser).
    input_solver : {"auto", "direct", "cg", "cg-jacobi"}
        How the first layer's weight step applies the inverse of its
        input's shifted (d + 1) x (d + 1) Gram matrix. "auto" (default):
        "cg" for a sparse X wider than ``AUTO_CG_WIDTH`` (8000) features,
        "direct" otherwise. "direct": formed
        and inverted once per fit (float64, O(d^3) time, O(d^2) memory),
        then one GEMM per sweep. "cg": never formed
        (:class:`fastnmf.ImplicitGram`): each sweep solves by conjugate
        gradients preconditioned by a rank-100 Nystrom sketch of the Gram
        matrix plus Jacobi, each iteration two products with the input
        (O(nnz) for a sparse X); "cg-jacobi": the same with Jacobi alone.
        For inputs too wide for the direct inverse (d of 5000 and more,
        sparse); slower where the direct one is cheap (README "Sparse X").
    """

    bias: bool = True
    alpha: float = 1e-4
    ridge: float = 0.0
    rel_ridge: float = 0.0
    width_ridge: float = 0.0255
    inner_iter: int = 1
    omega: float = 1.5
    z_iter: int = 3
    z_solver: str = "pgn"
    z_prox: float = 0.03
    l1: float = 0.0
    refresh_targets: bool = True
    batch_size: Optional[int] = None
    weight_prox: float = 1.0
    margin_targets: bool = True
    refit_output: bool = True
    extrapolate: float = 8.0
    input_ridge: float = 0.002
    input_damping: float = 0.01
    bottom_up: bool = False
    inactive_step: float = 0.3
    input_solver: str = "auto"

    def replace(self, **changes) -> "TrainOptions":
        d = asdict(self)
        unknown = set(changes) - set(d)
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        d.update(changes)
        return TrainOptions(**d)

    @classmethod
    def names(cls):
        return [f.name for f in fields(cls)]


#: input_solver="auto" takes "cg" for a sparse X wider than this. Session 27,
#: tf-idf 16000 documents, 2 threads, 30 sweeps (the estimators' default):
#: bench/results/sparse_input_solvers_30sweeps_s27.md (d = 5000 direct faster,
#: d = 10000 cg faster), the crossover estimated from direct's d^3 one-off
#: cost and the per-sweep difference. A dense X stays direct at any width (CG
#: would read it twice per iteration by GEMMs).
AUTO_CG_WIDTH = 8000
#: the values of TrainOptions.input_solver
INPUT_SOLVERS = ("auto", "direct", "cg", "cg-jacobi")


def resolve_input_solver(solver: str, n_features: int, sparse: bool) -> str:
    """The input_solver a fit runs: "auto" resolved by the input's width
    and format (:data:`AUTO_CG_WIDTH`), the others as given."""
    if solver != "auto":
        return solver
    return "cg" if sparse and n_features > AUTO_CG_WIDTH else "direct"


#: Named option sets. "paper": the published algorithm (Sakurai et al. 2016:
#: no biases, no regularization, targets carried over, one fixed-point
#: iteration, omega = 1). "default": what measurement chose (README table).
PRESETS = {
    "paper": TrainOptions(bias=False, alpha=0.0, inner_iter=1, omega=1.0, z_iter=1,
                          z_solver="mu", z_prox=0.0, l1=0.0, refresh_targets=False,
                          batch_size=None, margin_targets=False, refit_output=False,
                          ridge=0.0, rel_ridge=0.0, width_ridge=0.0, extrapolate=1.0,
                          input_ridge=0.0, input_damping=0.0, bottom_up=False,
                          inactive_step=1.0),
    "default": TrainOptions(),
}


class Trainer:
    """Buffers and the sweep of the alternating trainer for one training set.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix, shape (N, d), float32 or float64
        Training inputs (copied once into the first layer's input buffer).
        Sparse X stays sparse (CSR, its bias column appended): the first
        layer's products are then O(nnz) compiled loops and its Gram
        matrix, formed once, a dense (d + 1) x (d + 1) array.
    Y : ndarray, shape (N, c), same dtype
        Training targets (one-hot rows for classification).
    network : Network
        Initial weights; layer sizes ``d, n_1, ..., c``.
    options : TrainOptions
    seed : int, default 0
        Mini-batch sweeps only: the fixed shuffle of the samples into blocks
        and the block order of sweep t (drawn from ``(seed, t)``, so a
        resumed run visits the same blocks).
    comm : mpi4py communicator or None
        Data-parallel training: X and Y are this process's samples (maybe
        none); every process passes the same network and options and gets
        the same weights. Full-batch sweeps only.
    sample_weight : ndarray, shape (N,), > 0, optional
        Per-sample weights: every loss and least-squares fit becomes its
        weighted sum, ``sum_j w_j ||y_j - f(x_j)||^2``, and the
        regularisation's sample count N becomes ``sum(w)`` (integer weights
        train as the samples repeated that often, to rounding). Done by
        scaling sample j's input, bias input and targets by ``sqrt(w_j)``:
        a ReLU network is positively homogeneous per sample, so every block
        solve on the scaled buffers is the weighted one (the fixed bias row
        then holds ``sqrt(w)``, ``fixed_last_row``). No extra work per
        sweep. Samples of weight 0 must be left out by the caller.
    incremental : bool, default False
        These samples are one batch of a stream (``partial_fit``): every
        weight update is damped towards the current weights by
        ``weight_prox`` times the batch's size, as a mini-batch sweep's
        blocks are (``batch_size``), and there is no extrapolation and no
        closing refit of the output layer. A sweep is then exactly one
        block of a mini-batch sweep.
    """

    def __init__(self, X, Y, network: Network, options: TrainOptions, seed: int = 0,
                 comm=None, sample_weight=None, incremental: bool = False):
        self.options = o = options
        self.comm = comm = as_comm(comm)
        dt = X.dtype
        self.N_local = N = X.shape[0]   # this process's samples
        check_options(o)
        check_data_parallel(o, comm)
        #: training samples over all processes
        self.N = int(round(comm.sum(N)))
        # sample weights: sqrt(w) scales each sample's row of every buffer
        self.row_scale = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (N,):
                raise ValueError(f"sample_weight must have shape ({N},), got {w.shape}")
            if not (np.isfinite(w).all() and (w > 0).all()):
                raise ValueError("sample_weight must be finite and > 0 (leave out the samples "
                                 "of weight 0)")
            self.row_scale = np.sqrt(w).astype(dt)
        #: the regularisation's sample count: sum of the weights over all
        #: processes (N without weights)
        self.weight_total = (float(self.N) if sample_weight is None
                             else float(comm.sum(float(np.sum(w)))))
        self.sizes = sizes = network.layer_sizes
        self.nb = nb = 1 if o.bias else 0
        self.seed = int(seed)
        self.n_sweeps = 0
        self.last_sweep_rejected = False  # the last sweep rejected its extrapolated step
        # Mini-batch sweeps work on contiguous row blocks of a once-shuffled
        # copy of the data (the buffers below are in that order).
        B = o.batch_size
        self.perm = None
        if B is not None and B < N:
            self.perm = np.random.default_rng([self.seed, 2**31]).permutation(N)
            self.blocks = [slice(s, min(s + B, N)) for s in range(0, N, B)]
        else:
            self.blocks = [slice(0, N)]
        #: weight updates damped towards the current weights (mini-batch
        #: blocks, or one batch of a stream)
        self.damped = len(self.blocks) > 1 or bool(incremental)
        take = (lambda a: a) if self.perm is None else (lambda a: a[self.perm])
        rs = None if self.row_scale is None else take(self.row_scale)
        if rs is not None:
            self.row_scale = rs      # in the buffers' (shuffled) order
            w = take(w)
        # block b's weight total (its sample count without weights)
        self._block_weights = [float(b.stop - b.start) if rs is None else float(np.sum(w[b]))
                               for b in self.blocks]
        self.Y0 = np.ascontiguousarray(take(Y), dtype=dt)
        if rs is not None:   # (a new array: Y0 may be the caller's Y)
            self.Y0 = self.Y0 * rs[:, None]
        # Y: the targets the output layer is fitted to (Y0, or margin targets).
        self.Y = self.Y0.copy() if o.margin_targets else self.Y0
        #: scratch of the solves, reused by every sweep; it also holds the
        #: trainer's own N-sized arrays below (keys ("H", i) etc.; its large
        #: buffers skip numpy's huge-page request, see fastnmf.Workspace)
        self.workspace = ws = fastnmf.Workspace()
        # H[i]: input of layer i+1, (N, n_i + nb), ones in the last column;
        # H[0] is the data, H[i >= 1] holds forward activations / targets.
        # A sparse X: H[0] is None, and X_blocks holds one fastnmf.SparseData
        # of each block's rows of [X, bias input] (_input).
        self.sparse_input = sp.issparse(X)
        if self.sparse_input and len(sizes) < 3:
            raise ValueError("a sparse X needs at least one hidden layer (hidden_layer_sizes "
                             "is empty: the output layer's fit on the input itself is dense)")
        self.H = [None if i == 0 and self.sparse_input else ws.get(("H", i), (N, n + nb), dt)
                  for i, n in enumerate(sizes[:-1])]
        bias_input = 1 if rs is None else rs
        if self.sparse_input:
            Xb = with_bias_column(scale_rows(take(X.tocsr()).astype(dt), rs), nb, rs, dt)
            with fastnmf.trusted_data():   # (checked by the caller)
                # each block's rows, through the transpose: a process may
                # hold no samples at all
                self.X_blocks = [fastnmf.sparse_data(Xb[b].T, dtype=dt,
                                                     allow_empty_columns=True).T
                                 for b in self.blocks]
        else:
            self.H[0][:, : sizes[0]] = take(X)
            if rs is not None:
                self.H[0][:, : sizes[0]] *= rs[:, None]
        for H in self.H:
            if nb and H is not None:
                H[:, -1] = bias_input
        # T[i]: a copy of layer i's target (the ``A`` of its block), only
        # with bottom_up, where H[i] receives the new activations while T[i]
        # is still to be fitted. Otherwise the solves read the target in
        # place, H[i][:, :n_i] (a padded layout next to the ones column;
        # until session 18 it was copied to a contiguous buffer: 2 x 16 ms
        # and 2 x 120 MB on Fashion-MNIST).
        self.T = ([None] + [ws.get(("T", i), (N, n), dt) for i, n in enumerate(sizes[1:-1], 1)]
                  if _runs_bottom_up(o, len(sizes) - 1) else None)
        # Separate forward buffers when targets persist across sweeps.
        self.F = None
        if not o.refresh_targets:
            self.F = [None] + [ws.get(("F", i), (N, n + nb), dt)
                               for i, n in enumerate(sizes[1:-1], 1)]
            for F in self.F[1:]:
                if nb:
                    F[:, -1] = bias_input
        # Z[i]: layer i's pre-activations from the last forward pass over
        # the rows ``self._pre_rows[i]`` (``slice.indices``; None: stale).
        # While the layer's weights and input are unchanged they are the
        # model product ``W_i H[i-1]^T`` of its U-step, which then skips
        # that GEMM (relu_lstsq's ``model``; 77 of the 478 GFLOP of a
        # Fashion-MNIST 784-500-500-10 sweep). Only when the U-step's input
        # is the forward activation: refreshed targets (top-down: every
        # layer; bottom_up: the first).
        self.Z = None
        if o.refresh_targets:
            self.Z = [None] + [ws.get(("Z", i), (N, n), dt) for i, n in enumerate(sizes[1:-1], 1)]
        self._pre_rows = [None] * len(sizes)
        self.out = ws.get("out", (N, sizes[-1]), dt)
        self.W = [stack_layer(c.astype(dt), b.astype(dt), o.bias)
                  for c, b in zip(network.coefs, network.intercepts)]
        self.block_errors = []
        self._output_fresh = False  # W_L already fitted to the current features
        #: adaptive extrapolation state: the current beta and the training
        #: loss after the last sweep (None before the first)
        self.beta, self.prev_loss = float(o.extrapolate), None
        # The first layer's input never changes: its Gram matrix (one per
        # block, summed over processes) is formed once here, not every sweep.
        # A FixedGram: the first layer's U-step then also reuses its
        # regularised inverse (the shift is the same every full-batch sweep).
        #: the first layer's solver this fit runs ("auto" resolved)
        self.input_solver = resolve_input_solver(o.input_solver, sizes[0], self.sparse_input)
        if self.input_solver != "direct":   # never formed: CG solves with products by the input
            # (its default tol 1e-4, session 26 with Jacobi alone: on 16000 x
            # 5000 tf-idf, 34-41 iterations a sweep and 0.8005 test accuracy
            # against the direct 0.8015; 1e-3: 28-35 and 0.7985)
            pre = "jacobi" if self.input_solver == "cg-jacobi" else "nystrom"
            self.gram0 = [fastnmf.ImplicitGram(self._input(b).T, preconditioner=pre, comm=comm)
                          for b in self.blocks]
        else:
            self.gram0 = [fastnmf.FixedGram(comm.sum_(
                self._input(b).gram() if self.sparse_input
                else gram(self.H[0][b]))) for b in self.blocks]
        self.forward()
        if self.F is not None:  # targets start at the forward activations
            for i in range(1, len(self.H)):
                self.H[i][...] = self.F[i]

    # -- network view -------------------------------------------------------
    def network(self) -> Network:
        coefs, intercepts = zip(*(unstack_layer(W, self.options.bias) for W in self.W))
        return Network(list(coefs), list(intercepts))

    def set_network(self, network: Network) -> None:
        dt = self.out.dtype
        self.W = [stack_layer(c.astype(dt), b.astype(dt), self.options.bias)
                  for c, b in zip(network.coefs, network.intercepts)]
        self._pre_rows = [None] * len(self._pre_rows)   # no longer W's products

    def forward(self, rows=slice(None)):
        """Forward pass over the training set (or a block of ``rows``) into
        the activation buffers. One GEMM per layer, ReLU in place."""
        acts = self.H if self.F is None else [self.H[0]] + self.F[1:]
        for i in range(1, len(self.W)):
            self._forward_layer(i, rows, acts)
        np.matmul(acts[-1][rows], self.W[-1].T, out=self.out[rows])
        return self.out[rows]

    def _forward_layer(self, i, rows, acts=None):
        """``acts[i] <- relu(acts[i - 1] W_i^T)`` on ``rows`` (hidden layer
        i; ``acts`` defaults to the H buffers). One GEMM, then the ReLU: in
        place, or, into the H buffers, from the pre-activations kept in
        ``Z[i]``."""
        acts = self.H if acts is None else acts
        if i + 1 < len(self._pre_rows):
            self._pre_rows[i + 1] = None          # its input changes
        if self.Z is not None and acts is self.H:
            # Pre-activations kept in Z[i] for the U-step, activations
            # written from them.
            self._layer_product(i, acts, rows, self.Z[i][rows])
            P.relu_copy(acts[i][rows], self.Z[i][rows])
            self._pre_rows[i] = rows.indices(self.N_local)
            return
        self._layer_product(i, acts, rows, acts[i][rows, : self.sizes[i]])
        # ReLU over whole contiguous rows, the ones column too (it stays
        # 1): NumPy took 10 ms for 60000 x 501 (20 ms for the column
        # slice), the parallel pass 2.8 ms on 2 threads.
        P.relu_inplace(acts[i][rows])

    def _layer_product(self, i, acts, rows, out):
        """``out <- acts[i - 1][rows] W_i^T`` (pre-activations of layer i);
        for i = 1 with a sparse input, from its CSR blocks (out in C order,
        or a padded column slice, through the workspace's scratch)."""
        if i > 1 or not self.sparse_input:
            np.matmul(acts[i - 1][rows], self.W[i - 1].T, out=out)
            return
        Wt = np.ascontiguousarray(self.W[0].T)
        lo, hi, _ = rows.indices(self.N_local)
        for b in self.blocks:
            if b.start >= lo and b.stop <= hi:   # the blocks ``rows`` covers
                dst = out[b.start - lo: b.stop - lo]
                if dst.flags.c_contiguous:
                    self._input(b).matmul(Wt, out=dst)
                else:
                    dst[...] = self._input(b).matmul(
                        Wt, out=self.workspace.get("sparse_product", dst.shape, dst.dtype))

    def _input(self, rows):
        """The first layer's input on the block ``rows`` (one of ``blocks``):
        a row slice of H[0], or the block's fastnmf.SparseData."""
        if not self.sparse_input:
            return self.H[0][rows]
        return self.X_blocks[self.blocks.index(rows)]

    def output(self):
        """The network's output on the training set (N, c), in the order of
        the X given to the constructor."""
        out = self.out
        if self.row_scale is not None:   # the buffers hold sqrt(w_j) f(x_j)
            out = out / self.row_scale[:, None]
        if self.perm is None:
            return out
        ordered = np.empty_like(out)
        ordered[self.perm] = out
        return ordered

    def _target(self, i, rows):
        """Layer i's target on ``rows`` as an (n_i, b) matrix in F order:
        the view ``H[i][rows, :n_i].T`` (padded by the ones column), or with
        bottom_up a contiguous copy of it."""
        if self.T is None:
            return self.H[i][rows, : self.sizes[i]].T
        P.copy_columns(self.T[i][rows], self.H[i][rows])   # 9 ms serial for 60000 x 500
        return self.T[i][rows].T

    # -- one outer iteration ------------------------------------------------
    def sweep(self, record_errors: bool = False):
        """One outer iteration, then the forward pass (step 4). Returns the
        network's output on the training set (N, c), in the input order.

        Full batch: one backward sweep (method.md section 3, steps 1-3).
        Mini-batch (``options.batch_size``): the same sweep on each block of
        samples in turn (in an order drawn from ``(seed, sweep)``), every
        weight update damped towards the current weights by
        ``weight_prox * block size``, each block's targets refreshed by a
        forward pass of that block first.

        ``record_errors``: append ``(layer, step, errors before, after)`` of
        every block to ``self.block_errors`` (costs one GEMM per block).
        """
        # The solves below run on this trainer's own buffers, whose inputs
        # were checked when training started: skip the per-call NaN/Inf and
        # sign scans of every array (fastnmf.trusted_data). Their n-sized
        # scratch is this trainer's, kept from sweep to sweep
        # (fastnmf.Workspace: fresh 120 MB buffers cost 0.3 s of page faults
        # per Fashion-MNIST sweep).
        with fastnmf.trusted_data(), self.workspace:
            return self._sweep(record_errors)

    def _sweep(self, record_errors):
        o = self.options
        L = len(self.W)
        self.last_sweep_rejected = False
        # beta == 1: rejections brought it down to the plain step, and it
        # stays there (below); the sweep is then the plain one.
        extrapolating = (o.extrapolate > 1 and not self.damped and L > 1
                         and self.beta > 1)
        if extrapolating:
            W_old = [W.copy() for W in self.W[: L - 1]]
        if len(self.blocks) == 1:
            self._margin_targets(self.blocks[0])
            self._update(self.blocks[0], self.gram0[0], record_errors,
                         fit_output=not self._output_fresh)
        else:
            order = np.random.default_rng([self.seed, self.n_sweeps]).permutation(len(self.blocks))
            for j in order:
                self.forward(self.blocks[j])
                self._margin_targets(self.blocks[j])
                self._update(self.blocks[j], self.gram0[j], record_errors)
        self.n_sweeps += 1
        if not extrapolating:
            self._forward_and_refit()
            return self.output()
        # Adaptive extrapolation of the hidden weights (``extrapolate``).
        W_plain = self.W[: L - 1]
        self.W[: L - 1] = [Wo + self.beta * (Wp - Wo) for Wo, Wp in zip(W_old, W_plain)]
        self._output_fresh = False
        self._forward_and_refit()
        loss = self.fit_loss()
        if self.prev_loss is not None and loss > self.prev_loss and self.beta > 1:
            self.W[: L - 1] = W_plain               # reject: the plain step
            self._output_fresh = False
            self._forward_and_refit()
            loss = self.fit_loss()
            # Halved; at 1 it stays there for the rest of the run: it takes
            # consecutive rejections from the cap to get there, and on
            # Fashion-MNIST every later attempt (beta 1.2) alternated with
            # a plain step and was rejected, each costing one more forward
            # pass and output refit for the same plain iterate.
            self.beta = max(1.0, self.beta / 2)
            self.last_sweep_rejected = True
        else:
            self.beta = min(float(o.extrapolate), self.beta * 1.2)
        self.prev_loss = loss
        return self.output()

    def _forward_and_refit(self):
        """Step 4: the forward pass (the real network's output and the next
        sweep's targets), then with ``refit_output`` the output layer's
        weights refitted to its features."""
        self.forward()
        o = self.options
        if _refits_output(o, len(self.W), mini_batch=self.damped):
            self._margin_targets(self.blocks[0])
            HL = self.H[-1]
            self.W[-1] = fastnmf.ridge_lstsq(self.Y.T, HL.T,
                                             **self._output_ridge(HL, self.blocks[0]),
                                             comm=self.comm)
            np.matmul(HL, self.W[-1].T, out=self.out)
            self._output_fresh = True

    def fit_loss(self) -> float:
        """Training loss of the current output over all samples: half the
        mean squared hinge (``margin_targets``: no cost beyond the one-hot
        target on the right side) or half the mean squared error, weighted
        by ``sample_weight`` (a weighted mean). O(N c)."""
        sq = P.sq_loss(self.out, self.Y0, self.options.margin_targets)
        return 0.5 * self.comm.sum(sq) / (self.weight_total * self.out.shape[1])

    def resume_at(self, n_sweeps: int, output_fitted: bool = None) -> None:
        """Continue a run whose weights are those after ``n_sweeps`` sweeps
        (a checkpoint or a warm start): the mini-batch block order goes on
        from there, and with ``refit_output`` the output layer is known to be
        fitted to its features already (as after any sweep), so the next
        sweep skips that fit exactly as an uninterrupted run would."""
        self.n_sweeps = int(n_sweeps)
        fitted = n_sweeps > 0 if output_fitted is None else output_fitted
        o = self.options
        self._output_fresh = bool(fitted and _refits_output(o, len(self.W),
                                                            mini_batch=self.damped))

    def _output_ridge(self, HL, rows):
        """Ridge of the output layer's least squares on the block ``rows``
        (HL (b, k) its features), as ``ridge_lstsq`` keywords: ``alpha b +
        ridge b / N`` and the :meth:`_trace_ridge` share (all of it a true
        ridge); b and N are weight totals with sample weights."""
        o, b = self.options, self._block_size(rows)
        return {"alpha": o.alpha * b + o.ridge * b / self.weight_total,
                "alpha_trace": self._trace_ridge(HL.shape[1])}

    def _block_size(self, rows) -> float:
        """Samples of the block ``rows`` (a slice of ``blocks``), over all
        processes (full batch: N); with sample weights, their sum."""
        if len(self.blocks) == 1:
            return self.weight_total
        return self._block_weights[self.blocks.index(rows)]

    def _trace_ridge(self, k):
        """``(rel_ridge / k + width_ridge) / N``: the ridge per unit of
        ``||H||_F^2 = trace(H^T H)`` for a layer input H (b, k) of a block
        of b of the N samples (``rel_ridge`` times the mean squared
        activation plus ``width_ridge`` times the summed one, this block's
        share b / N of it). The solves read the trace off the Gram matrix
        they form anyway (``alpha_trace`` / ``l2_trace``): on Fashion-MNIST
        a separate ``||H||^2`` pass cost ~12 ms, three per sweep."""
        o = self.options
        return (o.rel_ridge / k + o.width_ridge) / self.weight_total

    def _margin_targets(self, rows):
        """Y <- max(out, Y0) where Y0 is 1, min(out, Y0) elsewhere (O(b c))."""
        if not self.options.margin_targets:
            return
        P.margin_targets(self.Y[rows], self.out[rows], self.Y0[rows])

    def _update(self, rows, gram0, record_errors, fit_output=True):
        """Steps 1-3 of method.md section 3 on the samples ``rows``."""
        o = self.options
        comm = self.comm
        L = len(self.W)
        b = self._block_size(rows)
        lam = o.alpha * b                      # per-sample ridge / step damping
        lam_w = o.ridge * b / self.weight_total   # absolute weight decay, this block's share
        mu = o.weight_prox * b if self.damped else 0.0
        fixed = bool(o.bias)
        # the bias row: ones, or sqrt(w) with sample weights
        bias_row = {"fixed_ones_row" if self.row_scale is None else "fixed_last_row": fixed}
        YT = self.Y[rows].T
        # 1. output layer: W_L by ridge LS, then its input targets by NNLS.
        HL = self.H[L - 1][rows]
        VL = HL.T
        if fit_output:
            if record_errors:
                e0 = _linear_error(YT, self.W[L - 1], VL, comm)
            self.W[L - 1] = fastnmf.ridge_lstsq(YT, VL, **self._output_ridge(HL, rows), prox=mu,
                                                U0=self.W[L - 1] if mu else None, comm=comm)
            if record_errors:
                self.block_errors.append((L, "U", e0, _linear_error(YT, self.W[L - 1], VL, comm)))
        if L > 1:
            pgn = {"step_at_zero": 0.0} if o.z_solver == "pgn" else {"l1": o.l1}
            r = fastnmf.nnls(YT, self.W[L - 1], V0=VL, solver=o.z_solver, max_iter=o.z_iter,
                             tol=0.0, **bias_row, prox=o.z_prox, overwrite=True,
                             track_error=record_errors, comm=comm, **pgn)
            _written(HL, r.V.T)
            if record_errors:
                self.block_errors.append((L, "V", r.errors[0], r.errors[-1]))
        def u_step(i, A):            # layer i's weights, on its input H[i - 1]
            Hin = self._input(rows) if i == 1 else self.H[i - 1][rows]
            l2 = lam_w
            damp = 0.0
            if i == 1 and (o.input_ridge or o.input_damping):
                mean_diag = gram0.trace / gram0.shape[0]
                l2 += o.input_ridge * mean_diag
                damp = o.input_damping * mean_diag
            pre = self.Z[i][rows].T if self._pre_rows[i] == rows.indices(self.N_local) else None
            self._pre_rows[i] = None    # used as scratch, and W_i changes
            r = fastnmf.relu_lstsq(A, self.W[i - 1], Hin.T, update="U", n_iter=o.inner_iter,
                                   omega=o.omega, alpha=lam + mu + damp, l2=l2,
                                   l2_trace=self._trace_ridge(Hin.shape[1]), overwrite=True,
                                   final_error=record_errors, model=pre,
                                   fixed_gram=gram0 if i == 1 else None, comm=comm)
            _written(self.W[i - 1], r.U)
            if record_errors:
                self.block_errors.append((i, "U", r.errors[0], r.errors[-1]))

        def v_step(i, A):            # layer i's input targets, in place in H[i - 1]
            Hin = self.H[i - 1][rows]
            self._pre_rows[i] = None    # its input becomes the targets
            r = fastnmf.relu_lstsq(A, self.W[i - 1], Hin.T, update="V", n_iter=o.inner_iter,
                                   omega=o.omega, alpha=o.z_prox, **bias_row,
                                   step_at_zero=o.inactive_step, overwrite=True,
                                   final_error=record_errors, comm=comm)
            _written(Hin, r.V.T)
            if record_errors:
                self.block_errors.append((i, "V", r.errors[0], r.errors[-1]))

        if _runs_bottom_up(o, L):
            # Every target top-down (T[i] keeps layer i's), then the weights
            # bottom-up, each on what the updated layers below produce.
            for i in range(L - 1, 1, -1):
                v_step(i, self._target(i, rows))
            self._target(1, rows)
            for i in range(1, L):
                u_step(i, self.T[i][rows].T)
                if i < L - 1:
                    self._forward_layer(i, rows)
        else:
            # 2.-3. hidden layers top-down, then the first layer (U-step only).
            for i in range(L - 1, 0, -1):
                A = self._target(i, rows)
                u_step(i, A)
                if i > 1:
                    v_step(i, A)

    def sweep_gemms(self, *, rejected: bool = False, grams: bool = False):
        """The matrix products one :meth:`sweep` issues, as ``(m, k, n)``
        shapes (an ``m x k`` times ``k x n`` product, 2 m k n flops each):
        :func:`sweep_gemm_shapes` for this network, options and this
        process's samples. ``rejected``: for a sweep whose extrapolated step
        was rejected (``last_sweep_rejected``), which then ran one more
        forward pass and output refit: their products too. ``grams``: mark
        the Gram matrices (``(m, k, n, is_gram)``, see
        :func:`sweep_gemm_shapes`)."""
        g = sweep_gemm_shapes(self.sizes, self.N_local, self.options,
                              mini_batch=self.damped, grams=True)
        if rejected:
            o = self.options
            g += _gram_flags(_forward_and_refit_shapes(
                self.sizes, self.N_local, o, refit=_refits_output(o, len(self.W))), True)
        return _gram_flags(g, grams)

    def state_arrays(self):
        """State needed to resume exactly: the carried-over targets (N-sized,
        only without ``refresh_targets``) and the extrapolation's beta and
        last loss."""
        state = {"extrapolation": np.array([self.beta, np.nan if self.prev_loss is None
                                            else self.prev_loss])}
        if not self.options.refresh_targets:
            state.update({f"target_{i}": self.H[i] for i in range(1, len(self.H))})
        return state

    def load_state_arrays(self, arrays):
        for i in range(1, len(self.H)):
            key = f"target_{i}"
            if key in arrays:
                self.H[i][...] = arrays[key]
        if "extrapolation" in arrays:
            beta, prev = (float(v) for v in arrays["extrapolation"])
            self.beta, self.prev_loss = beta, None if np.isnan(prev) else prev


def _refits_output(options, n_layers, *, mini_batch=False) -> bool:
    """Whether a sweep ends with the output layer refitted to the closing
    forward pass (``refit_output``): full batch, hidden targets refreshed
    (the forward pass writes them), more than one layer."""
    return bool(options.refit_output and options.refresh_targets and not mini_batch
                and n_layers > 1)


def _runs_bottom_up(options, n_layers) -> bool:
    """Whether a sweep takes the ``bottom_up`` order: asked for, and two or
    more hidden layers (with one there is nothing below to update first)."""
    return bool(options.bottom_up and n_layers > 2)


def check_options(options) -> None:
    """ValueError for option combinations the trainer does not run."""
    if not 0.0 <= options.inactive_step <= 1.0:
        raise ValueError(f"inactive_step must be in [0, 1], got {options.inactive_step}")
    if options.bottom_up and not options.refresh_targets:
        raise ValueError("bottom_up=True needs refresh_targets=True (its bottom-up pass "
                         "overwrites the hidden buffers with new activations)")
    if options.input_solver not in INPUT_SOLVERS:
        raise ValueError("input_solver must be 'auto', 'direct', 'cg' or 'cg-jacobi', got "
                         f"{options.input_solver!r}")
    if options.z_solver == "pgn" and options.l1 > 0:
        raise ValueError("l1 (on the output layer's targets) is not supported with "
                         "z_solver='pgn'; use z_solver='mu' or 'hals'")


def check_data_parallel(options, comm) -> None:
    """ValueError if ``options`` cannot train over several processes
    (mini-batch sweeps: the blocks would differ from one process's)."""
    if comm.size > 1 and options.batch_size is not None:
        raise ValueError("batch_size (mini-batch sweeps) cannot be combined with comm "
                         "(data-parallel training): use full-batch sweeps")


def sweep_gemm_shapes(sizes, N, options, *, mini_batch=False, grams=False):
    """The matrix products of one sweep of a network ``sizes = (d, n_1, ...,
    c)`` on N samples, as ``(m, k, n)`` shapes (2 m k n flops each).

    HALS sweeps are listed as the ``N x kf x kf`` product they equal in
    flops; a Ding-Li-Jordan MU update issues two such products, or, when
    the c outputs are few (4 c <= kf: :func:`fastnmf.nnls` then forms
    ``X G+`` through the output weights), one ``N x kf x (kf + c)`` product
    ``[X W^T | X G-]`` (the second thin product is fused into the update's
    elementwise pass). k x k
    factorizations and elementwise passes are left out: this is the GEMM
    floor of method.md section 7 (``bench/compare_dnn.py`` times these
    shapes with BLAS to get the floor in seconds; ``bench/mpi_cost_model.py``
    prices a data-parallel sweep with them). ``mini_batch``: each block's
    own forward pass too.

    ``grams``: entries ``(m, k, n, is_gram)`` instead, ``is_gram`` True for
    the Gram matrices ``H^T H`` of a layer input (m = n, k = N), which the
    trainer forms as ``H.T @ H`` of one buffer: numpy computes that with
    syrk, in half the flops of a general product, so a floor that replays
    it as a general product is too slow (it overstated the floor by about
    6% on Fashion-MNIST 784-500-500-10).
    """
    o, nb = options, 1 if options.bias else 0
    L = len(sizes) - 1
    k = sizes[L - 1] + nb
    c = sizes[-1]
    refit = _refits_output(o, L, mini_batch=mini_batch)
    # The output layer's ridge_lstsq: in the update, or (refit) after the
    # closing forward pass, listed with it below.
    g = [] if refit else [(k, N, k, True), (c, N, k), (c, k, k)]
    if L > 1:
        kf = k - nb
        if o.z_solver == "pgn":  # U^+ once, then per step U V^T and R^T U^+ (thin)
            # U^+ through the smaller Gram matrix (fastnmf._linalg.pinv_factor_into)
            g += [(c, kf, c, True), (c, c, kf)] if c < kf else [(kf, c, kf, True), (c, kf, kf)]
            g += [(c, k, N), (N, c, kf)] * o.z_iter
        else:
            g += [(N, c, k), (c, c, k)]                      # A^T U and U^T U, once
        if o.z_solver == "hals":
            g += [(N, kf, kf)] * o.z_iter                    # HALS sweeps
        elif o.z_solver == "mu" and 4 * c <= kf:  # [X W^T | X G-] ((X W^T) W: fused, not BLAS)
            g += [(N, kf, kf + c)] * o.z_iter
        elif o.z_solver == "mu":                             # MU: X G+, X G-
            g += [(N, kf, kf)] * (2 * o.z_iter)
    bottom_up = _runs_bottom_up(o, L)
    for i in range(L - 1, 0, -1):
        m, k = sizes[i], sizes[i - 1] + nb
        g += [(k, N, k, True)] if i > 1 else []               # Gram (layer 1: cached)
        u = [(m, k, N), (m, N, k), (m, k, k)] * o.inner_iter                   # U-step
        if o.refresh_targets and o.inner_iter and (i == 1 or not bottom_up):
            u = u[1:]      # its first model product: the forward pass's pre-activations
        g += u
        if i > 1:
            g += [(m, k, N), (N, m, k - nb)] * o.inner_iter                  # V-step
    if bottom_up:               # the bottom-up pass's forward products (all but the last)
        g += [(N, sizes[i - 1] + nb, sizes[i]) for i in range(1, L - 1)]
    if mini_batch:
        g += _forward_and_refit_shapes(sizes, N, options, refit=False)  # each block's own
    g += _forward_and_refit_shapes(sizes, N, options, refit=refit)
    return _gram_flags(g, grams)


def _gram_flags(shapes, grams):
    """``(m, k, n, is_gram)`` for every entry (``grams``), else ``(m, k, n)``;
    entries are listed as ``(m, k, n)`` or, for a Gram, ``(m, k, n, True)``."""
    full = [s if len(s) == 4 else (*s, False) for s in shapes]
    return full if grams else [s[:3] for s in full]


def _forward_and_refit_shapes(sizes, N, options, *, refit):
    """The products of a forward pass on N samples and, with ``refit``, of
    the output layer's refit after it (:meth:`Trainer._forward_and_refit`;
    a sweep whose extrapolated step is rejected runs them twice)."""
    nb = 1 if options.bias else 0
    L = len(sizes) - 1
    g = [(N, sizes[i] + nb, sizes[i + 1]) for i in range(L)]                # forward
    if refit:
        k, c = sizes[L - 1] + nb, sizes[-1]
        g += [(k, N, k, True), (c, N, k), (c, k, k), (N, k, c)]    # ridge_lstsq, output
    return g


def _written(dst, src):
    """Make sure an in-place update landed in ``dst`` (copy if the solver
    had to work on a copy, e.g. an unexpected layout)."""
    if not np.shares_memory(dst, src):
        dst[...] = src


def _linear_error(AT, W, V, comm):
    """Relative error ``||A - W V|| / ||A||`` for the output block (A = AT)."""
    R = AT - W @ V
    s = comm.sum_(np.array([np.sum(R * R, dtype=np.float64), np.sum(AT * AT, dtype=np.float64)]))
    return float(np.sqrt(s[0]) / (np.sqrt(s[1]) if s[1] > 0 else 1.0))
