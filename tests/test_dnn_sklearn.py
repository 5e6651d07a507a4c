"""scikit-learn's estimator checks for the fastnmf_dnn estimators.

Every check runs on a float32 (the default working precision) and a float64
instance of each estimator. The only expected failure, float32 only:

* ``check_methods_subset_invariance``: it requires predictions on single
  rows to equal those on the whole batch to rtol = atol = 1e-7. In float32
  (eps = 1.2e-7) the BLAS GEMM of a 1-row batch and of a 20-row batch
  accumulate in different orders (different kernels/blocking), so outputs
  differ by a few ulp (measured 3.6e-7 for outputs of size ~1). This is a
  property of float32 arithmetic, not of the estimator; the float64 instances
  pass the same check.
* ``check_regressor_multioutput`` (NMFNetRegressor only): it requires float64
  predictions. The regressor predicts in its working precision (the
  ``dtype`` parameter, default float32), like MLPRegressor does for float32
  input; the float64 instance passes.

* ``check_sample_weight_equivalence_on_dense_data`` and
  ``..._on_sparse_data`` (the network estimators, which take sparse X
  too): they require a fit with integer ``sample_weight`` to predict
  as the fit on the samples repeated that often, to rtol 1e-7. Both fits
  solve the same problems, but sum their terms in different orders (and
  the repeated fit sees the samples shuffled); in float32 that rounding
  grows over the sweeps to about 1e-4 in the outputs (measured 7e-5 on
  the check's data). The float64 instances pass it;
  ``tests/test_dnn_estimators.py`` checks float32 against repeated samples
  at float32's tolerance.

and one for every dtype:

* ``check_classifiers_multilabel_output_format_predict_proba``
  (NMFNetClassifier): it requires every multilabel probability strictly
  inside (0, 1), as a logistic output gives. NMFNetClassifier fits the 0/1
  indicators by least squares and reports each output clipped to [0, 1]
  (an estimate of P(label | x), not a squashed score), so outputs beyond
  a target give exactly 0 or 1. The shape and dtype the check also asks
  for are tested in ``test_dnn_estimators.py``.
"""
from __future__ import annotations

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastnmf_dnn import NMFAutoencoder, NMFNetClassifier, NMFNetRegressor

SUBSET_REASON = ("float32: BLAS GEMM of a 1-row and of a 20-row batch round differently "
                 "(~3e-7 measured), above the check's rtol = atol = 1e-7; the float64 "
                 "instance passes it")


def _instances():
    for dtype in (np.float32, np.float64):
        yield NMFNetClassifier(hidden_layer_sizes=(10,), max_iter=10, random_state=0,
                               dtype=dtype)
        yield NMFNetRegressor(hidden_layer_sizes=(10,), max_iter=10, random_state=0,
                              dtype=dtype)
        yield NMFAutoencoder(hidden_layer_sizes=(10,), nmf_iter=10, encoder_iter=5,
                             random_state=0, dtype=dtype)


MULTIOUTPUT_REASON = ("predictions are in the working precision (dtype=float32 here), the "
                      "check wants float64; the float64 instance passes it")


MULTILABEL_PROBA_REASON = ("multilabel predict_proba is the least-squares output clipped to "
                           "[0, 1], which reaches 0 and 1 exactly; the check wants the open "
                           "interval of a logistic output")


SAMPLE_WEIGHT_REASON = ("float32: the weighted and the repeated fits sum in different orders; "
                        "the rounding (~7e-5 in the outputs after 10 sweeps) exceeds the "
                        "check's rtol = 1e-7; the float64 instance passes it")


def _expected_failed_checks(estimator):
    failing = {}
    if isinstance(estimator, NMFNetClassifier):
        failing["check_classifiers_multilabel_output_format_predict_proba"] = \
            MULTILABEL_PROBA_REASON
    if np.dtype(estimator.dtype) != np.float32:
        return failing
    failing["check_methods_subset_invariance"] = SUBSET_REASON
    if not isinstance(estimator, NMFAutoencoder):
        failing["check_sample_weight_equivalence_on_dense_data"] = SAMPLE_WEIGHT_REASON
        failing["check_sample_weight_equivalence_on_sparse_data"] = SAMPLE_WEIGHT_REASON
    if isinstance(estimator, NMFNetRegressor):
        failing["check_regressor_multioutput"] = MULTIOUTPUT_REASON
    return failing


@parametrize_with_checks(list(_instances()), expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
