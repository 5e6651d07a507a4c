"""save_model / load_model: fitted estimators as ``.npz`` + JSON (no pickle)."""
from __future__ import annotations

import numpy as np

import fastnmf

from . import model_io

__all__ = ["save_model", "load_model"]


def _registry():
    from .autoencoder import NMFAutoencoder
    from .estimators import NMFNetClassifier, NMFNetRegressor
    return {c.__name__: c for c in (NMFNetClassifier, NMFNetRegressor, NMFAutoencoder)}


def save_model(estimator, path):
    """Write a fitted estimator to ``path``.

    The file holds every fitted array (weights, biases, classes, decoders)
    in its own dtype and JSON metadata: format version, estimator class,
    its parameters, scalar fitted attributes and the training history.
    Loading it back gives predictions identical bit for bit.
    """
    from sklearn.utils.validation import check_is_fitted
    from ._base import _json_params
    name = type(estimator).__name__
    if name not in _registry():
        raise TypeError(f"save_model saves fastnmf_dnn estimators, not {name}")
    check_is_fitted(estimator)
    arrays, scalars = {}, {}
    for key, value in vars(estimator).items():
        if not key.endswith("_") or key.startswith("__"):
            continue
        if isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
            for i, v in enumerate(value):
                arrays[f"{key}{i}"] = v
            scalars[key] = {"list_of_arrays": len(value)}
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                # e.g. classes_ of an object array of str labels, feature_names_in_:
                # stored as a unicode array (loadable without pickle), restored
                # to dtype object on load
                if not all(isinstance(v, str) for v in value.ravel()):
                    raise TypeError(f"cannot save {key}: an object array whose entries are "
                                    "not all str needs pickle")
                arrays[key] = value.astype(str)
                scalars[key] = {"object_array": True}
            else:
                arrays[key] = value
        elif key == "training_options_":
            scalars[key] = {"options": vars(value) if not hasattr(value, "__dataclass_fields__")
                            else {f: getattr(value, f) for f in value.__dataclass_fields__}}
        else:
            scalars[key] = {"value": _jsonable(value)}
    if hasattr(estimator, "_y_ndim"):
        scalars["_y_ndim"] = {"value": int(estimator._y_ndim)}
    if getattr(estimator, "_multilabel", None) is not None:   # the fitted y's dtype name
        scalars["_multilabel"] = {"value": str(estimator._multilabel)}
    if getattr(estimator, "_extrapolation_state", None) is not None:
        # so that a loaded model warm-starts exactly where fit left off
        scalars["_extrapolation_state"] = {"value": _jsonable(list(estimator._extrapolation_state))}
    meta = {"kind": "model", "estimator": name,
            "params": _json_params(estimator.get_params()),
            "fitted": scalars, "fastnmf_version": fastnmf.__version__}
    return model_io.write_npz(path, meta, arrays)


def load_model(path):
    """Read a file written by :func:`save_model`; returns the fitted estimator.

    Raises FileNotFoundError for a missing file and ValueError
    (``ModelFileError``) for anything else than a fastnmf_dnn model file.
    """
    meta, arrays = model_io.read_npz(path, kind="model")
    reg = _registry()
    if meta.get("estimator") not in reg:
        raise model_io.ModelFileError(f"{path}: unknown estimator {meta.get('estimator')!r}")
    cls = reg[meta["estimator"]]
    try:
        params = dict(meta["params"])
        if "dtype" in params:
            params["dtype"] = np.dtype(params["dtype"]).type
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        if isinstance(params.get("random_state"), str):
            params["random_state"] = None
        est = cls(**params)
        used = set()
        for key, spec in meta["fitted"].items():
            if "list_of_arrays" in spec:
                names = [f"{key}{i}" for i in range(spec["list_of_arrays"])]
                setattr(est, key, [arrays[n] for n in names])
                used.update(names)
            elif "object_array" in spec:
                setattr(est, key, arrays[key].astype(object))
                used.add(key)
            elif "options" in spec:
                from .trainer import TrainOptions
                setattr(est, key, TrainOptions(**spec["options"]))
            else:
                setattr(est, key, spec["value"])
        for key, arr in arrays.items():
            if key not in used:
                setattr(est, key, arr)
        if not hasattr(est, "coefs_"):
            raise KeyError("coefs_")
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise model_io.ModelFileError(f"{path}: corrupt model file ({exc!r})") from None
    return est


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value  # non-finite floats round-trip as JSON NaN / Infinity (Python's json)
