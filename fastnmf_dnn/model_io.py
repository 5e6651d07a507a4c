"""Model and checkpoint files: one ``.npz`` of plain arrays plus JSON metadata.

Never pickle: the file is read with ``allow_pickle=False``, the metadata is
a UTF-8 JSON document stored as a uint8 array under the key
``__metadata__`` (written and read by Python's json module: non-finite
floats, e.g. the loss of a run with no sweep, appear as ``NaN`` /
``Infinity`` so that they round-trip exactly). It names the format and its
version, the estimator class, its parameters and fitted scalar attributes;
arrays (weights, classes, history, best weights, carried-over targets) are
stored under their own names. Round trips are exact (arrays are stored in
their own dtype; object arrays of str, e.g. ``feature_names_in_``, as
unicode arrays that load_model turns back into dtype object).

Writes are atomic (a temporary file in the same directory, then
``os.replace``), so a run killed while checkpointing leaves the previous
checkpoint intact.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "write_npz", "read_npz", "ModelFileError"]

FORMAT = "fastnmf_dnn-model"
FORMAT_VERSION = 1
_META = "__metadata__"


class ModelFileError(ValueError):
    """A file that is not a readable fastnmf_dnn model/checkpoint."""


def write_npz(path, metadata: dict, arrays: dict) -> Path:
    """Atomically write ``arrays`` and ``metadata`` (JSON-able) to ``path``."""
    path = Path(path)
    meta = dict(metadata, format=FORMAT, format_version=FORMAT_VERSION)
    payload = {_META: np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)}
    for key, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype == object:
            raise TypeError(f"array {key!r} has dtype object, which cannot be saved without pickle")
        payload[key] = arr
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_npz(path, *, kind: str | None = None):
    """Read a file written by :func:`write_npz`: ``(metadata, arrays)``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError (a ValueError)
        Not an npz archive, no or unreadable metadata, another format, a
        newer format version, or (``kind`` given) another kind of file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a plain .npy array
            raise ModelFileError(f"{path}: not a fastnmf_dnn model file (a single array, "
                                 "not an npz archive)")
        with z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error,
            NotImplementedError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: not a fastnmf_dnn model file (unreadable npz: {exc})") from None
    if _META not in arrays:
        raise ModelFileError(f"{path}: not a fastnmf_dnn model file (no {_META} entry)")
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a fastnmf_dnn model file (format "
                             f"{meta.get('format') if isinstance(meta, dict) else meta!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION \
            or version < 1:
        raise ModelFileError(f"{path}: format version {version!r} is not supported by this "
                             f"fastnmf_dnn (reads versions 1..{FORMAT_VERSION})")
    if kind is not None and meta.get("kind") != kind:
        raise ModelFileError(f"{path}: is a {meta.get('kind')!r} file, expected {kind!r}")
    return meta, arrays
