"""NMFAutoencoder: the stacked NMF autoencoder of method.md section 4 as a
scikit-learn transformer."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

import fastnmf
from fastnmf._comm import as_comm, check_same, collective

from ._base import (_check_magnitude, _check_positive_int, _check_real, _dtype, _nullcontext,
                    check_hidden_layer_sizes)
from .pretrain import StackedNMF, pretrain_stack

__all__ = ["NMFAutoencoder"]


class NMFAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Stacked NMF autoencoder: nonnegative codes of nonnegative data.

    Layer by layer, an NMF ``H_{i-1} ~ H_i D_i`` gives a nonnegative code and
    decoder, and a ReLU encoder ``H_i = relu(H_{i-1} W_i + b_i)`` is fitted
    to the code by the ReLU least-squares solve of fastnmf. ``transform``
    runs the encoders; ``inverse_transform`` the (linear, nonnegative)
    decoders. The encoders are what ``NMFNetClassifier(pretrain=True)``
    starts from.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Code widths, outermost first; the last is the output of transform.
    nmf_iter : int >= 1, default 50
        NMF (HALS) iterations per layer.
    encoder_iter : int >= 0, default 10
        Fixed-point iterations of each encoder fit.
    alpha : float >= 0, default 1e-4
        Ridge on encoder weights per sample.
    bias : bool, default True
        Encoders have biases.
    random_state : int, Generator or None
    n_threads : int or None
    dtype : numpy.float32 or numpy.float64, default float32

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Encoder weights (n_{i-1}, n_i) and biases (n_i,).
    components_ : list of ndarray
        Decoders (n_i, n_{i-1}) >= 0.
    reconstruction_err_ : float
        Relative Frobenius error of ``inverse_transform(transform(X))`` on
        the training data.
    nmf_errors_, encoder_errors_ : list of float
        Per layer, relative errors of the NMF and of the encoder fit.
    n_features_in_ : int
    """

    def __init__(self, hidden_layer_sizes=(100,), *, nmf_iter=50, encoder_iter=10, alpha=1e-4,
                 bias=True, random_state=None, n_threads=None, dtype=np.float32):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.nmf_iter = nmf_iter
        self.encoder_iter = encoder_iter
        self.alpha = alpha
        self.bias = bias
        self.random_state = random_state
        self.n_threads = n_threads
        self.dtype = dtype

    def fit(self, X, y=None, *, comm=None):
        """Fit on nonnegative X (n_samples, n_features), dense or
        scipy.sparse (kept sparse in the first layer's NMF and encoder fit;
        the codes are dense); y is ignored.

        ``comm`` (mpi4py communicator): data-parallel fit, every process
        passing its own samples; all get the same model (see
        :meth:`NMFNetClassifier.fit`). ``reconstruction_err_`` is then over
        all processes' samples.
        """
        comm = as_comm(comm)
        split = comm.size > 1
        with collective(comm):
            sizes = check_hidden_layer_sizes(self.hidden_layer_sizes)
            if not sizes:
                raise ValueError("hidden_layer_sizes must name at least one code layer, got "
                                 f"{self.hidden_layer_sizes!r}")
            nmf_iter = _check_positive_int(self.nmf_iter, "nmf_iter")
            enc_iter = _check_positive_int(self.encoder_iter, "encoder_iter", minimum=0)
            alpha = _check_real(self.alpha, "alpha")
            if not isinstance(self.bias, (bool, np.bool_)):
                raise TypeError(f"bias must be True or False, got {self.bias!r}")
            if self.n_threads is not None:
                _check_positive_int(self.n_threads, "n_threads")
            dt = _dtype(self.dtype)
            X = validate_data(self, X, dtype=dt, order="C", accept_sparse="csr",
                              **({"ensure_min_samples": 0} if split else {}))
            if X.size and X.min() < 0:
                # "Negative values in data" is scikit-learn's wording for this error
                raise ValueError("Negative values in data passed to NMFAutoencoder.fit: X must "
                                 f"be nonnegative, its minimum is {float(X.min())!r}")
            _check_magnitude(X, "X")
        check_same(comm, X.shape[1], "the number of features of X")
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            rs = rs.randint(2**31 - 1)
        if split and rs is None:  # every process must draw the same numbers
            rs = comm.bcast(int(np.random.default_rng().integers(2**62)))
        with fastnmf.threads(self.n_threads) if self.n_threads else _nullcontext():
            st = pretrain_stack(X, sizes, nmf_iter=nmf_iter, encoder_iter=enc_iter, alpha=alpha,
                                bias=bool(self.bias), random_state=rs, comm=comm)
        self.coefs_ = st.coefs
        self.intercepts_ = st.intercepts
        self.components_ = st.decoders
        self.nmf_errors_ = [float(e) for e in st.nmf_errors]
        self.encoder_errors_ = [float(e) for e in st.encoder_errors]
        sq = comm.sum_(_reconstruction_sq(st.decode(st.encode(X)), X))
        nX = float(np.sqrt(sq[1]))
        self.reconstruction_err_ = float(np.sqrt(sq[0])) / (nX if nX > 0 else 1.0)
        return self

    @property
    def _n_features_out(self):
        """Width of transform's output (for get_feature_names_out); derived
        from the fitted decoders so that a loaded model has it too."""
        return self.components_[-1].shape[0]

    def _stack(self):
        return StackedNMF(self.coefs_, self.intercepts_, self.components_, [], [])

    def transform(self, X):
        """Codes (n_samples, hidden_layer_sizes[-1]) >= 0 of X."""
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, dtype=self.coefs_[0].dtype, reset=False, accept_sparse="csr")
        return self._stack().encode(X)

    def inverse_transform(self, X):
        """Reconstruction (n_samples, n_features_in_) from codes
        (n_samples, hidden_layer_sizes[-1])."""
        check_is_fitted(self, "coefs_")
        H = np.asarray(X)
        if H.ndim != 2 or H.shape[1] != self.components_[-1].shape[0]:
            raise ValueError(f"X must have shape (n_samples, {self.components_[-1].shape[0]}), "
                             f"got {H.shape}")
        H = _as_float(H, self.coefs_[0].dtype)
        return self._stack().decode(H)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True     # X as a scipy.sparse matrix (CSR)
        # transform's output has the dtype the ``dtype`` parameter selects
        try:
            tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name]
        except TypeError:  # an invalid dtype is reported by fit
            pass
        return tags


def _reconstruction_sq(D, X):
    """``[||D - X||^2, ||X||^2]`` (float64) for the dense reconstruction D
    and X dense or scipy.sparse (then from ``||D||^2 - 2 <D, X> + ||X||^2``
    over X's stored entries: no dense copy of X)."""
    if not sp.issparse(X):
        R = D - X
        return np.array([np.sum(R * R, dtype=np.float64), np.sum(X * X, dtype=np.float64)])
    X = X.tocsr()
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    x = X.data.astype(np.float64)
    cross = float(np.dot(D[rows, X.indices].astype(np.float64), x))
    nx = float(np.dot(x, x))
    nd = float(np.sum(D * D, dtype=np.float64))
    return np.array([max(nd - 2.0 * cross + nx, 0.0), nx])


def _as_float(H, dt):
    if H.dtype.kind not in "fiub":
        raise TypeError(f"X must be numeric, got dtype {H.dtype}")
    H = np.ascontiguousarray(H, dtype=dt)
    if not np.isfinite(H).all():
        raise ValueError("X contains NaN or Inf")
    return H
