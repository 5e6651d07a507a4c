"""scikit-learn estimators: NMFNetClassifier and NMFNetRegressor."""
from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from fastnmf._comm import SERIAL, collective

from ._base import BaseNMFNet

__all__ = ["NMFNetClassifier", "NMFNetRegressor"]

_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Widths of the hidden ReLU layers.
    max_iter : int >= 0, default 30
        Training sweeps (one sweep updates every layer once: method.md
        section 3). Training stops earlier when the training loss (or, with
        ``early_stopping``, the validation score) has not improved by
        ``tol`` for ``n_iter_no_change`` sweeps.
    alpha : float >= 0, optional
        Ridge penalty on the weights per training sample (``alpha * N`` is
        added to every U-step's Gram matrix). Default: the preset's.
    preset : {"default", "paper"}, default "default"
        Option set: "default" is what measurement chose (README), "paper"
        the published algorithm (Sakurai et al. 2016: no biases, no
        regularization, targets carried over between sweeps).
    bias, inner_iter, omega, z_iter, z_solver, z_prox, l1, refresh_targets, weight_prox, \
extrapolate, margin_targets, refit_output, ridge, rel_ridge, width_ridge, input_ridge, \
input_damping, bottom_up, inactive_step, input_solver : optional
        Override single options of the preset; see
        :class:`fastnmf_dnn.TrainOptions` for what each does.
    batch_size : int, "full" or None
        Samples per block of a mini-batch sweep, or "full" for full-batch
        sweeps. None: the preset's.
    pretrain : bool, default False
        Initialise the hidden layers by the stacked NMF autoencoder
        (method.md section 4; X must be nonnegative). Otherwise He-scaled
        random weights.
    pretrain_iter : int >= 1, default 30
        NMF iterations per pre-trained layer.
    init_scale : float > 0, default 1.0
        Variance scale of the random initial weights (1 = He).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified
        for classification), stop when its score has not improved by
        ``tol`` for ``n_iter_no_change`` sweeps, and keep the best weights.
    validation_fraction : float in (0, 1), default 0.1
    n_iter_no_change : int >= 1, default 10
    tol : float >= 0, default 1e-4
    warm_start : bool, default False
        Continue from the fitted weights on the next ``fit``.
    random_state : int, Generator or None
        Seeds the initial weights, pre-training and the validation split.
    n_threads : int or None
        Threads for BLAS and the kernels during fit (``fastnmf.threads``);
        None leaves the current setting.
    dtype : numpy.float32 or numpy.float64, default float32
        Working precision of training and prediction.
    verbose : bool, default False
        Print one line per sweep.
"""

_ATTRS_DOC = """
    Attributes
    ----------
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape (n_i, n_{i+1}), as in MLPClassifier.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` has shape (n_{i+1},).
    n_iter_ : int
        Sweeps run (including those of a resumed checkpoint).
    loss_curve_ : list of float
        Training loss after each sweep, the one the sweeps minimise, of the
        real network's output (a forward pass, not a factorization
        residual): half the mean squared error against the targets, with
        ``margin_targets`` (the classifier's default) the squared hinge,
        i.e. not counting an output beyond its one-hot target (above 1 for
        the true class, below 0 for the others). The ``tol`` /
        ``n_iter_no_change`` rule reads it.
    best_validation_score_ : float or None
        Best validation score (``early_stopping`` only).
    history_ : dict of lists
        Per sweep: ``loss``, ``train_score``, ``validation_score``,
        ``eval_score`` (on ``eval_set``), ``seconds`` (the sweep alone).
    setup_seconds_ : float
        Seconds of the last ``fit`` before its first sweep: validation, the
        initial network (with ``pretrain``, the NMF pre-training), the
        trainer's buffers and first forward pass. Training time to a given
        sweep is this plus the sum of ``history_["seconds"]`` up to it.
    n_features_in_ : int
    training_options_ : TrainOptions
        The options actually used (preset plus overrides).
"""


class NMFNetClassifier(ClassifierMixin, BaseNMFNet):
    __doc__ = """Fully-connected ReLU network trained without backpropagation.

    Each training sweep updates the layers top-down by alternating
    (nonlinear) semi-NMF solves (Sakurai et al. 2016, with the biases and
    regularization of Arai et al. 2018); there is no learning rate. Classes
    are coded one-hot and fitted by least squares; ``predict_proba``
    normalises the clipped outputs. A label indicator matrix y fits a
    multilabel classifier (one output per label).
    """ + _PARAMS_DOC + _ATTRS_DOC + """
    classes_ : ndarray of shape (n_classes,)
    """

    _target_is_label = True

    def fit(self, X, y, sample_weight=None, *, eval_set=None, checkpoint=None, resume=False,
            callback=None, comm=None):
        """Train on X (n_samples, n_features) and labels y (n_samples,), or
        a label indicator matrix y (n_samples, n_labels) (multilabel).

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, shape (n_samples, n_features)
            Dense, or sparse (any scipy format; converted to CSR once, never
            densified): the first layer's products are then O(nnz) compiled
            loops instead of GEMMs, its Gram matrix (formed once per fit,
            dense (n_features + 1)^2) an O(sum of squared row counts) one.
            The same fit as on ``X.toarray()``, to rounding (tested); with
            ``pretrain=True`` the first layer's NMF takes the sparse X too.
            An empty ``hidden_layer_sizes`` needs a dense X.
        y : array_like, shape (n_samples,) or (n_samples, n_labels)
            Class labels (at least two classes), or for multilabel
            classification a matrix of 0 and 1 (array, list of lists or
            sparse; at least two columns), as MLPClassifier takes: each
            label is an output fitted to its 0/1 column (with the margin
            targets, a squared hinge per label), ``classes_`` is
            ``arange(n_labels)``, and :meth:`predict` returns the outputs
            above 0.5 as such a matrix. Scores are subset accuracy.
        sample_weight : array_like, shape (n_samples,), >= 0, optional
            Weights of the samples in the training loss, as MLPClassifier
            takes them: every sweep fits ``sum_j w_j loss_j`` and the
            weight decay's sample count is ``sum(w)``, so integer weights
            train as the samples repeated that often (to rounding; tested
            against repeated data). Samples of weight 0 are left out. With
            ``early_stopping`` the validation split keeps its samples'
            weights and the validation score is weighted; so are the
            training scores and loss in ``history_``. (Done by scaling each
            sample's input, bias input and targets by ``sqrt(w)``, which
            the sweeps' solves take as a weighted problem: no extra work
            per sweep. The one term that is not quadratic, the optional
            ``l1`` on hidden targets, then weighs a sample by ``sqrt(w)``.)
        eval_set : (X_eval, y_eval), optional
            Scored after every sweep into ``history_["eval_score"]`` (for
            monitoring only; never used to choose weights).
        checkpoint : path, optional
            Write the full training state there after every sweep
            (atomically), so a killed run loses at most one sweep.
        resume : bool, default False
            If ``checkpoint`` exists, continue from it (same data and
            parameters required) up to ``max_iter`` sweeps in total.
        callback : callable(estimator, iteration, record), optional
            Called after every sweep with that sweep's history record.
        comm : mpi4py communicator or None
            Data-parallel training (``mpiexec``): every process passes its
            own samples as X, y (a block may be empty) and the same
            parameters; every process ends with the same fitted model,
            equal (to rounding) to one process fitted on all samples.
            Scores, loss and early stopping are over all processes; with
            ``early_stopping`` each process holds out ``validation_fraction``
            of its own samples; only process 0 writes ``checkpoint``.
            Full-batch sweeps only. See the README section "MPI".
        """
        return self._fit(X, y, sample_weight=sample_weight, eval_set=eval_set,
                         checkpoint=checkpoint, resume=resume, callback=callback, comm=comm)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One sweep over the batch (X, y), from the current weights: for
        data that comes in batches or does not fit in memory (as
        MLPClassifier's ``partial_fit``).

        Each weight update is damped towards the current weights by
        ``weight_prox`` times the batch size (or its weight), exactly as a
        block of a mini-batch sweep (``batch_size``): batches fed in turn
        train as ``fit(..., batch_size=...)``'s sweeps do (tested). There is
        no extrapolation, no output refit and no early stopping (a stream
        has no validation split: ``early_stopping=True`` is refused). The
        first call draws the initial weights (or pre-trains on its batch,
        ``pretrain=True``); after ``fit`` it continues from the fitted ones.
        Every call appends to ``loss_curve_`` and ``history_`` and counts
        in ``n_iter_``; ``t_`` counts the samples seen.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, shape (n_samples, n_features)
            As in :meth:`fit`.
        y : array_like, shape (n_samples,), or a label indicator matrix
        sample_weight : array_like, shape (n_samples,), optional
            As in :meth:`fit`.
        classes : array_like, shape (n_classes,)
            All the classes the stream will have; required on the first
            call (unless y is a label indicator matrix), and if given later
            it must be the same.
        """
        return self._partial_fit(X, y, sample_weight, classes)

    def _encode_batch(self, y, first, n_samples, classes):
        if classes is not None:
            classes = np.unique(column_or_1d(classes))
        if first and _label_indicator(y) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(all the classes the batches will have)")
            if classes.size < 2:
                raise ValueError(f"classes has {classes.size} class; a classifier needs at "
                                 "least 2")
            self.classes_ = classes
            self._multilabel = None
            return self._encode_targets(y, False, n_samples)
        if classes is not None and not first and not (
                classes.shape == self.classes_.shape and np.all(classes == self.classes_)):
            raise ValueError(f"classes={classes!r} is not the classes of the first call "
                             f"{self.classes_!r}")
        return self._encode_targets(y, first, n_samples)

    def _encode_targets(self, y, first_fit, n_samples, comm=SERIAL):
        with collective(comm):
            if y is None:
                raise ValueError("NMFNetClassifier requires y to be passed, "
                                 "but the target y is None")
            indicator = _label_indicator(y)
            if indicator is None:
                y = column_or_1d(y, warn=True)
                if y.dtype.kind == "f" and not np.isfinite(y).all():
                    raise ValueError("Input y contains NaN or infinity.")
            else:
                y = indicator
            if y.shape[0] != n_samples:
                raise ValueError(f"y has {y.shape[0]} samples but X has {n_samples}")
            if y.size and indicator is None:
                check_classification_targets(y)
        multilabel = indicator is not None
        if comm.size > 1 and len(set(comm.allgather(multilabel))) > 1:
            raise ValueError("y is a label indicator matrix on some processes and not on others")
        if first_fit:
            self._multilabel = y.dtype.name if multilabel else None
            if multilabel:
                classes = np.arange(y.shape[1])
            else:
                classes = np.unique(y)
                if comm.size > 1:  # the classes seen by any process (empty blocks have none)
                    classes = np.unique(np.concatenate(
                        [c for c in comm.allgather(classes) if c.size] or [classes]))
            if classes.size < 2:
                raise ValueError("y has only one class "
                                 f"({classes[0]!r}); a classifier needs at least 2 classes")
            self.classes_ = classes
        else:
            with collective(comm):
                if multilabel != self._is_multilabel():
                    raise ValueError("y is " + ("" if multilabel else "not ") + "a label "
                                     "indicator matrix, but the first fit's was" +
                                     ("n't" if multilabel else ""))
                if multilabel and y.shape[1] != self.classes_.size:
                    raise ValueError(f"y has {y.shape[1]} labels, the first fit "
                                     f"{self.classes_.size}")
                unseen = (np.setdiff1d(np.unique(y), self.classes_) if y.size and not multilabel
                          else y[:0])
                if unseen.size:
                    raise ValueError(f"y contains classes not seen in the first fit: {unseen}")
        if multilabel:
            return y, y.astype(np.float64)
        codes = np.searchsorted(self.classes_, y)
        Y = np.zeros((y.shape[0], self.classes_.size))
        Y[np.arange(y.shape[0]), codes] = 1.0
        return codes, Y

    def _is_multilabel(self):
        return getattr(self, "_multilabel", None) is not None

    def _encode_eval(self, y):
        if self._is_multilabel():
            Y = _label_indicator(y)
            if Y is None or Y.shape[1] != self.classes_.size:
                raise ValueError(f"eval_set's y must be a label indicator matrix with "
                                 f"{self.classes_.size} columns")
            return Y
        y = column_or_1d(y)
        codes = np.searchsorted(self.classes_, y)
        codes[codes >= self.classes_.size] = 0
        ok = self.classes_[codes] == y
        return np.where(ok, codes, -1)

    def _score_outputs(self, out, codes, comm=SERIAL, sample_weight=None):
        """Accuracy over all processes (multilabel: of the whole label set of
        a sample, as scikit-learn's ``accuracy_score``), weighted by
        ``sample_weight`` if given."""
        if codes.ndim == 2:
            right = ((out > 0.5) == (codes != 0)).all(axis=1)
        else:
            right = out.argmax(axis=1) == codes
        if sample_weight is None:
            hits, n = comm.sum(np.count_nonzero(right)), comm.sum(codes.shape[0])
        else:
            hits = comm.sum(float(np.sum(sample_weight[right])))
            n = comm.sum(float(np.sum(sample_weight)))
        return float(hits / n) if n else float("nan")

    def _class_arrays(self):
        return {"classes": self.classes_}

    def predict(self, X):
        """Class labels (n_samples,): the largest network output. Multilabel
        (fitted on a label indicator matrix): the indicator matrix
        (n_samples, n_labels) of the outputs above 0.5, in the dtype of the
        fitted y."""
        out = self._forward(X)  # checks fitted before classes_ is read
        if self._is_multilabel():
            return (out > 0.5).astype(self._multilabel)
        return self.classes_[out.argmax(axis=1)]

    def predict_proba(self, X):
        """Outputs clipped at 0 and normalised per row (n_samples, n_classes);
        a row with no positive output falls back to a softmax of the outputs.
        The argmax equals :meth:`predict`. Multilabel: each output clipped to
        [0, 1] (n_samples, n_labels), above 0.5 where :meth:`predict` is 1."""
        out = self._forward(X).astype(np.float64)
        if self._is_multilabel():
            return np.clip(out, 0.0, 1.0)
        P = np.maximum(out, 0)
        s = P.sum(axis=1, keepdims=True)
        dead = s[:, 0] <= 0
        if dead.any():
            z = out[dead] - out[dead].max(axis=1, keepdims=True)
            e = np.exp(z)
            P[dead] = e / e.sum(axis=1, keepdims=True)
            s[dead] = 1.0
        return P / s

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True   # y as a label indicator matrix
        tags.input_tags.sparse = True             # X as a scipy.sparse matrix (CSR)
        return tags


def _label_indicator(y):
    """y as a label indicator matrix (n_samples, n_labels >= 2) of 0 and 1
    (a list of lists, an array or a sparse matrix), or None for anything
    that is not two-dimensional with two or more columns. Raises ValueError
    for such a y with other values than 0 and 1."""
    import scipy.sparse as sp
    if sp.issparse(y):
        y = y.toarray()
    elif not hasattr(y, "shape"):
        if not isinstance(y, (list, tuple)) or not y or not isinstance(y[0], (list, tuple,
                                                                             np.ndarray)):
            return None
        y = np.asarray(y)
    if np.ndim(y) != 2 or y.shape[1] < 2:
        return None
    y = np.asarray(y)
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise ValueError("a two-dimensional y must be a label indicator matrix of 0 and 1 "
                         f"(multilabel classification); got {y.shape} of dtype {y.dtype} "
                         "with other values")
    return y


class NMFNetRegressor(RegressorMixin, BaseNMFNet):
    __doc__ = """Fully-connected ReLU network for (multi-output) least-squares
    regression, trained without backpropagation (see NMFNetClassifier).

    With the default preset it differs from the classifier in two options:
    ``margin_targets=False`` (real-valued targets) and ``extrapolate=4``
    (the classifier's 8 overfitted sooner on regression, README
    "Regression").
    """ + _PARAMS_DOC + _ATTRS_DOC

    def fit(self, X, y, sample_weight=None, *, eval_set=None, checkpoint=None, resume=False,
            callback=None, comm=None):
        """Train on X (n_samples, n_features), dense or scipy.sparse, and y
        (n_samples,) or (n_samples, n_outputs). X, ``sample_weight`` and the
        keywords (``comm`` included) as in :meth:`NMFNetClassifier.fit`; scores are
        R^2 (weighted as scikit-learn's ``r2_score`` with weights)."""
        return self._fit(X, y, sample_weight=sample_weight, eval_set=eval_set,
                         checkpoint=checkpoint, resume=resume, callback=callback, comm=comm)

    def partial_fit(self, X, y, sample_weight=None):
        """One sweep over the batch (X, y) from the current weights, as
        :meth:`NMFNetClassifier.partial_fit` (without ``classes``)."""
        return self._partial_fit(X, y, sample_weight)

    def _encode_targets(self, y, first_fit, n_samples, comm=SERIAL):
        with collective(comm):
            return self._encode_local(y, first_fit, n_samples, comm.size > 1)

    def _encode_local(self, y, first_fit, n_samples, split):
        if y is None:
            raise ValueError("NMFNetRegressor requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.dtype.kind not in "fiubO":
            raise TypeError(f"y must be numeric, got dtype {y.dtype}")
        if y.ndim not in (1, 2) or y.shape[0] != n_samples:
            raise ValueError(f"y must have shape ({n_samples},) or ({n_samples}, n_outputs), "
                             f"got {y.shape}")
        # object arrays of numbers become float64 (scikit-learn convention);
        # NaN / Inf raise "Input y contains ..."
        try:
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y",
                            **({"ensure_min_samples": 0} if split else {}))
        except ValueError as exc:
            if "Input y contains" in str(exc):
                raise
            raise ValueError(f"y must be numeric: {exc}") from None
        if first_fit:
            self._y_ndim = y.ndim
        Y = y.reshape(n_samples, y.shape[1] if y.ndim == 2 else 1).astype(np.float64)
        return Y, Y

    def _encode_eval(self, y):
        return np.asarray(y, dtype=np.float64).reshape(len(y), -1)

    def _score_outputs(self, out, Y, comm=SERIAL, sample_weight=None):
        """Mean R^2 over the outputs, over all processes (two reductions:
        the mean first, then the centred sums), weighted by
        ``sample_weight`` if given (weighted mean and sums, as
        ``r2_score``).

        An output that is constant in Y scores 1 if predicted exactly and 0
        otherwise (scikit-learn's ``r2_score``). Constant means a root mean
        square deviation within the rounding of the mean itself,
        ``4 n eps |mean|`` (a sum of n values along an axis is accumulated
        one row at a time, error up to ~n eps): the mean of 359 equal
        values differed from them by ~1e-16, a test set's constant column
        then gave ``ss_tot ~ 7e-30`` and R^2 ~ -1e29 (seen in
        ``bench/regression.py``).
        This is the score of ``history_`` and of early stopping;
        ``score`` is scikit-learn's ``RegressorMixin.score``, whose
        ``r2_score`` still gives such values.
        """
        if sample_weight is None:
            n = comm.sum(Y.shape[0])
            mean = comm.sum_(Y.sum(axis=0)) / n
            ss = comm.sum_(np.concatenate([((Y - out) ** 2).sum(axis=0),
                                           ((Y - mean) ** 2).sum(axis=0)]))
        else:
            w = sample_weight[:, None]
            n = comm.sum(float(sample_weight.sum()))
            mean = comm.sum_((w * Y).sum(axis=0)) / n
            ss = comm.sum_(np.concatenate([(w * (Y - out) ** 2).sum(axis=0),
                                           (w * (Y - mean) ** 2).sum(axis=0)]))
        ss_res, ss_tot = ss[: Y.shape[1]], ss[Y.shape[1]:]
        varies = ss_tot > n * (4 * n * np.finfo(np.float64).eps * np.abs(mean)) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(varies, 1 - ss_res / np.where(varies, ss_tot, 1),
                          np.where(ss_res > 0, 0.0, 1.0))
        return float(np.mean(r2))

    def predict(self, X):
        """Predictions (n_samples,) or (n_samples, n_outputs) like y in fit."""
        check_is_fitted(self, "coefs_")
        out = self._forward(X)
        return out.ravel() if getattr(self, "_y_ndim", 2) == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y of shape (n_samples, n_outputs)
        tags.input_tags.sparse = True         # X as a scipy.sparse matrix (CSR)
        return tags
