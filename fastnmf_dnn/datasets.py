"""Datasets for the fastnmf_dnn examples and benchmarks: IDX files, MNIST, digits.

Everything here needs only NumPy and the standard library.

* :func:`read_idx`, :func:`idx_shape`, :func:`write_idx` read and write
  MNIST-format IDX files (gzipped or raw), with strict header checks and
  record slicing (``start``/``stop``) for data-parallel shards.
* :func:`load_fashion_mnist` and :func:`load_mnist` find the four standard
  IDX files on disk (``data_home``, ``$FASTNMF_DATA``, ``~/.cache/fastnmf``,
  Debian's ``/usr/share/datasets``) and optionally download them, verifying
  SHA-256 checksums.
* :func:`load_digits` gives a stratified train/test split of the small
  8x8 digits set bundled with ``fastnmf`` (no download, no scikit-learn).
* :func:`load_dataset` dispatches by name; :func:`load_idx_pair` loads a
  user's own pair of image/label IDX files.

All network access goes through the private function ``_fetch`` so that it
can be replaced in tests.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import math
import numbers
import os
import tempfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "Dataset",
    "idx_shape",
    "shard_range",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "read_idx",
    "write_idx",
]

# --------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------

#: IDX type code -> on-disk (big-endian) dtype.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32",
                   0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes read (and discarded) at a time when skipping in a gzip stream
# A deflate stream can expand at most 1032:1, which bounds what a gzip file of
# a given size can hold; used to reject absurd headers before allocating.
_MAX_DEFLATE_RATIO = 1032


def _supported_codes() -> str:
    return ", ".join(f"0x{c:02X} {n}" for c, n in _IDX_TYPE_NAMES.items())


def _fmt_dims(dims) -> str:
    return "x".join(str(d) for d in dims) if len(dims) else "()"


def _open_idx(path):
    """Open ``path`` for reading; return ``(raw_file, stream, is_gzip)``.

    Gzip is recognised by its magic bytes (1f 8b), not by the file name.
    """
    path = Path(os.fspath(path))
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "IDX file not found", str(path)) from None
    try:
        magic = raw.read(2)
        raw.seek(0)
        if magic == _GZIP_MAGIC:
            return raw, gzip.GzipFile(fileobj=raw, mode="rb"), True
        return raw, raw, False
    except BaseException:
        raw.close()
        raise


def _read_exact(fh, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at EOF."""
    parts = []
    while n > 0:
        b = fh.read(n)
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def _readinto_exact(fh, view: memoryview) -> int:
    """Fill ``view`` from ``fh``; return the number of bytes read (short only at EOF)."""
    got = 0
    total = len(view)
    while got < total:
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _parse_header(fh, path):
    """Read and validate an IDX header; return ``(dtype, dims, header_nbytes)``."""
    head = _read_exact(fh, 4)
    if len(head) == 0:
        raise ValueError(f"{path}: not an IDX file (the file is empty)")
    if len(head) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(head)} bytes, "
                         "shorter than the 4-byte magic number)")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic number starts with "
                         f"0x{head[0]:02X} 0x{head[1]:02X}, expected 0x00 0x00)")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unsupported IDX data type code 0x{code:02X} "
                         f"(supported: {_supported_codes()})")
    if ndim == 0:
        raise ValueError(f"{path}: invalid IDX header: number of dimensions is 0")
    raw_dims = _read_exact(fh, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated: header declares {ndim} dimensions but the "
                         f"file ends after {4 + len(raw_dims)} of {4 + 4 * ndim} header bytes")
    dims = tuple(int.from_bytes(raw_dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    return _IDX_TYPES[code], dims, 4 + 4 * ndim


def _check_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def _check_range(start, stop, n: int, path):
    start = _check_int(start, "start")
    stop = n if stop is None else _check_int(stop, "stop")
    if not 0 <= start <= stop <= n:
        raise ValueError(f"need 0 <= start <= stop <= n, got start={start}, stop={stop}, "
                         f"n={n} (records in {path})")
    return start, stop


def _to_native(arr: np.ndarray) -> np.ndarray:
    """Return ``arr`` (freshly allocated, so modified in place) in native byte order."""
    if not arr.dtype.isnative:
        arr = arr.byteswap(inplace=True).view(arr.dtype.newbyteorder())
    return arr


def read_idx(path, *, start=0, stop=None):
    """Read an IDX (MNIST-format) file, gzipped or raw, with strict checks.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the magic bytes
        ``1f 8b``, whatever the file is called.
    start, stop : int, optional
        Records ``start:stop`` along the first axis (default: all), e.g. one
        rank's shard for data-parallel training; ``0 <= start <= stop <= n``.
        A raw file is seeked and only those bytes are read. A gzip file is
        streamed: the records before ``start`` are decompressed in chunks and
        discarded (never held in memory together) and reading stops after
        ``stop``, so the part of a gzip file after ``stop`` is not checked.

    Returns
    -------
    numpy.ndarray, shape (stop - start, \\*dims[1:])
        dtype uint8 (type code 0x08), int8 (0x09), int16 (0x0B), int32
        (0x0C), float32 (0x0D) or float64 (0x0E), in native byte order.
        A new, writable, C-contiguous array.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Malformed file: not an IDX file (first two bytes not zero, empty or
        too short), unsupported type code, zero dimensions, truncated header
        or payload, trailing bytes after the payload, corrupt gzip stream; or
        ``start``/``stop`` out of range. The message names the file.
    TypeError
        ``start`` or ``stop`` is not an integer.
    """
    raw, fh, is_gzip = _open_idx(path)
    try:
        try:
            return _read_idx_body(fh, raw, is_gzip, path, start, stop)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if not is_gzip:
                raise
            raise ValueError(f"{path}: truncated or corrupt gzip stream ({exc})") from None
    finally:
        if fh is not raw:
            fh.close()
        raw.close()


def _read_idx_body(fh, raw, is_gzip, path, start, stop):
    dtype, dims, header_nbytes = _parse_header(fh, path)
    n = dims[0]
    start, stop = _check_range(start, stop, n, path)
    rec_nbytes = math.prod(dims[1:]) * dtype.itemsize
    expected = n * rec_nbytes
    what = f"header says {_fmt_dims(dims)} {dtype.name} ({expected} payload bytes)"
    want = (stop - start) * rec_nbytes
    out_shape = (stop - start,) + dims[1:]

    if not is_gzip:
        actual = os.fstat(raw.fileno()).st_size - header_nbytes
        if actual < expected:
            raise ValueError(f"{path}: truncated: {what} but the file holds {actual}")
        if actual > expected:
            raise ValueError(f"{path}: {actual - expected} trailing bytes: {what} but the "
                             f"file holds {actual}")
        raw.seek(header_nbytes + start * rec_nbytes)
        buf = np.empty(want, dtype=np.uint8)
        got = _readinto_exact(raw, memoryview(buf))
        if got != want:  # the file changed under us
            raise ValueError(f"{path}: truncated: {what} but reading stopped early")
        return _to_native(buf.view(dtype).reshape(out_shape))

    # gzip: the uncompressed size is unknown until it has been read.
    compressed = os.fstat(raw.fileno()).st_size
    if header_nbytes + stop * rec_nbytes > compressed * _MAX_DEFLATE_RATIO + 64:
        raise ValueError(f"{path}: truncated: {what} but a {compressed}-byte gzip file "
                         "cannot hold that much")
    skip = start * rec_nbytes
    while skip > 0:
        chunk = fh.read(min(skip, _CHUNK))
        if not chunk:
            break
        skip -= len(chunk)
    if skip > 0:
        got_total = start * rec_nbytes - skip
        raise ValueError(f"{path}: truncated: {what} but the payload has only {got_total}")
    buf = np.empty(want, dtype=np.uint8)
    got = _readinto_exact(fh, memoryview(buf))
    if got != want:
        raise ValueError(f"{path}: truncated: {what} but the payload has only "
                         f"{start * rec_nbytes + got}")
    if stop == n:
        extra = len(fh.read(_CHUNK))
        if extra:
            while True:
                more = len(fh.read(_CHUNK))
                if not more:
                    break
                extra += more
            raise ValueError(f"{path}: {extra} trailing bytes: {what} but the payload "
                             f"has {expected + extra}")
    return _to_native(buf.view(dtype).reshape(out_shape))


def idx_shape(path):
    """Return the dimensions declared in an IDX file's header (the payload is not read).

    Parameters
    ----------
    path : str or os.PathLike
        An IDX file, gzipped or raw.

    Returns
    -------
    tuple of int
        E.g. ``(60000, 28, 28)``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The header is malformed (see :func:`read_idx`).
    """
    raw, fh, is_gzip = _open_idx(path)
    try:
        try:
            return _parse_header(fh, path)[1]
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if not is_gzip:
                raise
            raise ValueError(f"{path}: truncated or corrupt gzip stream ({exc})") from None
    finally:
        if fh is not raw:
            fh.close()
        raw.close()


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (overwritten).
    array : array_like, shape (d0, d1, ...), 1 <= ndim <= 255
        dtype uint8, int8, int16, int32, float32 or float64 (stored big-endian
        with type code 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E); every
        dimension must be below 2**32.

    Raises
    ------
    TypeError
        ``array`` has another dtype.
    ValueError
        ``array`` has 0 or more than 255 dimensions, or a dimension >= 2**32.
    """
    arr = np.asarray(array)
    code = None
    for c, dt in _IDX_TYPES.items():
        if arr.dtype.kind == dt.kind and arr.dtype.itemsize == dt.itemsize:
            code = c
            break
    if code is None:
        raise TypeError(f"array: dtype {arr.dtype} cannot be stored in an IDX file "
                        f"(supported: {_supported_codes()})")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"array: an IDX file holds 1 to 255 dimensions, got ndim={arr.ndim}")
    if any(d >= 2 ** 32 for d in arr.shape):
        raise ValueError(f"array: every dimension must be < 2**32, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape)
    payload = np.ascontiguousarray(arr, dtype=_IDX_TYPES[code]).reshape(-1).view(np.uint8)
    path = Path(os.fspath(path))
    if path.name.endswith(".gz"):
        # mtime=0 and no stored file name: the same array gives the same bytes.
        with open(path, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
            fh.write(header)
            fh.write(payload)
    else:
        with open(path, "wb") as fh:
            fh.write(header)
            fh.write(payload)


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------

class Dataset(NamedTuple):
    """A train/test split; unpacks as ``X_train, y_train, X_test, y_test, name``.

    Attributes
    ----------
    X_train : numpy.ndarray, shape (n_train, n_features), float32 or float64
    y_train : numpy.ndarray, shape (n_train,), int64
    X_test : numpy.ndarray, shape (n_test, n_features), same dtype as X_train
    y_test : numpy.ndarray, shape (n_test,), int64
    name : str
        ``"digits"``, ``"fashion-mnist"``, ``"mnist"``, ...
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, X_train={self.X_train.shape} "
                f"{self.X_train.dtype}, X_test={self.X_test.shape} {self.X_test.dtype})")


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def shard_range(n: int, shard) -> tuple:
    """Records ``(start, stop)`` of shard ``shard = (index, count)`` of n.

    The n records are cut into ``count`` contiguous blocks whose sizes
    differ by at most one (``start = n * index // count``), e.g. the share
    of MPI rank ``index`` of ``count``; ``shard=None`` is ``(0, n)``.
    Raises TypeError/ValueError naming ``shard`` for anything else.
    """
    if shard is None:
        return 0, n
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                       for v in shard)):
        raise TypeError(f"shard must be None or a pair of ints (index, count), got {shard!r}")
    index, count = int(shard[0]), int(shard[1])
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must satisfy 0 <= index < count, got {shard!r}")
    return n * index // count, n * (index + 1) // count


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt not in _FLOAT_DTYPES:  # (a dtype compares equal to None)
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}")
    return dt


def load_idx_pair(images_path, labels_path, *, dtype=np.float32, start=0, stop=None):
    """Load a user's pair of IDX files as a design matrix and labels.

    Parameters
    ----------
    images_path : str or os.PathLike
        IDX file of shape (n, \\*rest), gzipped or raw, any IDX dtype.
    labels_path : str or os.PathLike
        IDX file of shape (n,) with integer labels.
    dtype : {numpy.float32, numpy.float64}, keyword-only
        dtype of ``X``.
    start, stop : int, keyword-only
        Records ``start:stop`` of both files (see :func:`read_idx`).

    Returns
    -------
    X : numpy.ndarray, shape (stop - start, prod(rest)), ``dtype``
        Scaled to [0, 1] (divided by 255) when the images are uint8,
        otherwise just converted.
    y : numpy.ndarray, shape (stop - start,), int64

    Raises
    ------
    FileNotFoundError
        A file does not exist.
    ValueError
        A malformed file, labels not 1-D or not integers, or the two files
        hold different numbers of records.
    TypeError
        ``dtype`` is not float32/float64.
    """
    dt = _check_dtype(dtype)
    n_img = idx_shape(images_path)[0]
    lab_shape = idx_shape(labels_path)
    if len(lab_shape) != 1:
        raise ValueError(f"{labels_path}: labels must be 1-D, header says {_fmt_dims(lab_shape)}")
    if lab_shape[0] != n_img:
        raise ValueError(f"record counts differ: {images_path} has {n_img} images but "
                         f"{labels_path} has {lab_shape[0]} labels")
    images = read_idx(images_path, start=start, stop=stop)
    labels = read_idx(labels_path, start=start, stop=stop)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{labels_path}: labels must be integers, got {labels.dtype}")
    X = images.reshape(images.shape[0], -1).astype(dt)
    if images.dtype == np.uint8:
        X /= 255
    return X, labels.astype(np.int64)


# Where the four files are looked for, after data_home and $FASTNMF_DATA and
# the user cache. A module constant so tests can point it elsewhere.
SYSTEM_DIRS = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),  # Debian: dataset-fashion-mnist
    "mnist": Path("/usr/share/datasets/mnist"),
}

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

_MIRRORS = {
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
}

# SHA-256 of the .gz files as published by the upstream mirrors; a download
# is accepted only if it matches. Confirmed against TensorFlow Datasets'
# url_checksums/fashion_mnist.txt and url_checksums/mnist.txt (which also list
# the sizes noted here) and against torchvision's prototype dataset tables.
#
# Debian's dataset-fashion-mnist ships the same IDX content in re-made gzip
# containers (no stored file name, 2020 mtime: each file is 23-24 bytes
# shorter), so its .gz SHA-256 differ from these:
#   train-images b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
#   train-labels 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
#   t10k-images  cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
#   t10k-labels  8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
# Their decompressed content equals upstream's: see _FASHION_PAYLOAD_SHA256.
# Files found on disk are not checksummed; only downloads are.
_SHA256 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz":  # 26421880 bytes
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz":  # 29515 bytes
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz":  # 4422102 bytes
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz":  # 5148 bytes
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz":  # 9912422 bytes
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":  # 28881 bytes
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":  # 1648877 bytes
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":  # 4542 bytes
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
}

# SHA-256 of the decompressed Fashion-MNIST IDX files. Computed from Debian's
# package on the development machine (zcat | sha256sum) and equal to the
# values other projects derive from the upstream archives; their MD5s
# (f4a8712d..., 9018921c..., 8181f547..., 15d48437...) equal torchvision's
# FashionMNIST "raw" checksums. Informational (used by a test on real data).
_FASHION_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

_PRETTY = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST"}


def _fetch(url: str, dest: str) -> None:
    """Download ``url`` to the file ``dest`` (the only network access in this module)."""
    import shutil
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"refusing to fetch non-HTTP URL {url!r}")
    with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
        shutil.copyfileobj(resp, out, _CHUNK)


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _as_dir(value, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    return Path(os.fspath(value)).expanduser()


def _cache_dir(name: str) -> Path:
    return Path.home() / ".cache" / "fastnmf" / name


def _candidates(name: str, data_home):
    """The directories searched, in order, as ``(path, why)`` pairs."""
    out = []
    if data_home is not None:
        out.append((_as_dir(data_home, "data_home"), "data_home"))
    env = os.environ.get("FASTNMF_DATA")
    if env:
        out.append((Path(env).expanduser(), "$FASTNMF_DATA"))
        out.append((Path(env).expanduser() / name, f"$FASTNMF_DATA/{name}"))
    out.append((_cache_dir(name), "user cache"))
    system = SYSTEM_DIRS.get(name)
    if system is not None:
        out.append((Path(system), "system"))
    return out


def _files_in(directory: Path):
    """Map each standard base name to its file in ``directory`` (.gz or raw)."""
    found = {}
    for base in _FILES:
        for cand in (directory / f"{base}.gz", directory / base):
            if cand.is_file():
                found[base] = cand
                break
    return found


def _not_found(name: str, searched) -> FileNotFoundError:
    lines = []
    for path, why, found in searched:
        if found:
            note = (f"has {len(found)} of 4 files, missing "
                    + ", ".join(b for b in _FILES if b not in found))
        else:
            note = "none of the files" if path.is_dir() else "no such directory"
        lines.append(f"  - {path} ({why}): {note}")
    pretty = _PRETTY[name]
    fn = "load_fashion_mnist" if name == "fashion-mnist" else "load_mnist"
    how = ["put the four files in one of these directories (or point $FASTNMF_DATA at one)",
           f"or call {fn}(download=True) to download them into data_home or {_cache_dir(name)}"]
    if name == "fashion-mnist":
        how.insert(0, "on Debian/Ubuntu: apt-get install dataset-fashion-mnist "
                      f"(installs {SYSTEM_DIRS['fashion-mnist']})")
    return FileNotFoundError(
        f"{pretty} not found: no directory holds all four of "
        + ", ".join(f"{b}[.gz]" for b in _FILES)
        + ". Searched:\n" + "\n".join(lines) + "\nTo get it: " + "; ".join(how) + ".")


def _download(name: str, target: Path, have: dict) -> None:
    """Download the files missing from ``target``, verifying SHA-256, atomically."""
    target.mkdir(parents=True, exist_ok=True)
    for base in _FILES:
        if base in have:
            continue
        fname = f"{base}.gz"
        expected = _SHA256[name][fname]
        errors = []
        for mirror in _MIRRORS[name]:
            url = mirror + fname
            fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{fname}.", suffix=".part")
            os.close(fd)
            try:
                try:
                    _fetch(url, tmp)
                except OSError as exc:  # includes urllib's URLError
                    errors.append(f"{url}: {exc}")
                    continue
                digest = _sha256(tmp)
                if digest != expected:
                    errors.append(f"{url}: SHA-256 mismatch (got {digest}, expected {expected})")
                    continue
                os.replace(tmp, target / fname)
                break
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            msg = f"could not download {fname} for {_PRETTY[name]}:\n  " + "\n  ".join(errors)
            if any("SHA-256 mismatch" in e for e in errors):
                raise ValueError(msg)
            raise OSError(msg)


def _load_mnist_like(name: str, data_home, download: bool, dtype, shard=None) -> Dataset:
    dt = _check_dtype(dtype)
    shard_range(1, shard)  # validate before touching any file
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    searched = []
    directory = None
    for path, why in _candidates(name, data_home):
        found = _files_in(path)
        searched.append((path, why, found))
        if len(found) == len(_FILES):
            directory = found
            break
    if directory is None:
        if not download:
            raise _not_found(name, searched)
        target = (_as_dir(data_home, "data_home") if data_home is not None
                  else _cache_dir(name))
        _download(name, target, _files_in(target))
        directory = _files_in(target)
    parts = []
    for split in ("train", "t10k"):
        images, labels = directory[f"{split}-images-idx3-ubyte"], directory[f"{split}-labels-idx1-ubyte"]
        start, stop = shard_range(idx_shape(images)[0], shard)
        parts.append(load_idx_pair(images, labels, dtype=dt, start=start, stop=stop))
    (X_train, y_train), (X_test, y_test) = parts
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"{_PRETTY[name]}: train images have {X_train.shape[1]} features "
                         f"but test images have {X_test.shape[1]}")
    return Dataset(X_train, y_train, X_test, y_test, name)


def load_fashion_mnist(*, data_home=None, download=False, dtype=np.float32,
                       shard=None) -> Dataset:
    """Load Fashion-MNIST: 60000 training and 10000 test 28x28 images, 10 classes.

    Zalando Research, MIT licence.

    The directory holding the four files ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz`` (each may also be uncompressed, without
    ``.gz``) is searched for in this order: ``data_home``;
    ``$FASTNMF_DATA`` and ``$FASTNMF_DATA/fashion-mnist``;
    ``~/.cache/fastnmf/fashion-mnist``;
    ``/usr/share/datasets/fashion-mnist`` (Debian package
    ``dataset-fashion-mnist``). Files found on disk are used as they are;
    only downloads are checksummed.

    Parameters
    ----------
    data_home : str or os.PathLike, optional, keyword-only
        First directory searched, and where ``download=True`` puts the files
        (default ``~/.cache/fastnmf/fashion-mnist``).
    download : bool, keyword-only
        If the files are not found, download the missing ones from the
        upstream mirror (fashion-mnist.s3-website.eu-central-1.amazonaws.com),
        verify their SHA-256 and move them into place atomically. Default False: raise instead.
    dtype : {numpy.float32, numpy.float64}, keyword-only
        dtype of the images.
    shard : (index, count) or None, keyword-only
        Read only block ``index`` of ``count`` contiguous blocks of the
        training set and of the test set (:func:`shard_range`), e.g.
        ``(comm.rank, comm.size)`` for data-parallel training: only those
        records are read from the files.

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784) and ``X_test`` (10000, 784) in ``dtype``
        (with ``shard``: that block of each),
        pixel values scaled to [0, 1] (uint8 divided by 255); ``y_train``
        (60000,) and ``y_test`` (10000,) int64 labels 0..9; ``name``
        ``"fashion-mnist"``.

    Raises
    ------
    FileNotFoundError
        Not found and ``download`` is False; the message lists every
        directory searched and how to get the data.
    ValueError
        A downloaded file fails its checksum (it is deleted), a file is
        malformed, or images and labels hold different numbers of records.
    OSError
        ``download=True`` and no mirror delivered a missing file.
    TypeError
        ``dtype`` is not float32/float64, or a bad ``data_home``/``download``.
    """
    return _load_mnist_like("fashion-mnist", data_home, download, dtype, shard)


def load_mnist(*, data_home=None, download=False, dtype=np.float32, shard=None) -> Dataset:
    """Load MNIST: 60000 training and 10000 test 28x28 images, 10 classes.

    Yann LeCun, Corinna Cortes and Christopher J.C. Burges.

    The directory holding the four files ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz`` (each may also be uncompressed, without
    ``.gz``) is searched for in this order: ``data_home``;
    ``$FASTNMF_DATA`` and ``$FASTNMF_DATA/mnist``; ``~/.cache/fastnmf/mnist``;
    ``/usr/share/datasets/mnist`` if it exists. Files found on disk are used as they are;
    only downloads are checksummed.

    Parameters
    ----------
    data_home : str or os.PathLike, optional, keyword-only
        First directory searched, and where ``download=True`` puts the files
        (default ``~/.cache/fastnmf/mnist``).
    download : bool, keyword-only
        If the files are not found, download the missing ones from the
        upstream mirrors (ossci-datasets.s3.amazonaws.com, then
        storage.googleapis.com/cvdf-datasets), verify their SHA-256 and move them
        into place atomically. Default False: raise instead.
    dtype : {numpy.float32, numpy.float64}, keyword-only
        dtype of the images.
    shard : (index, count) or None, keyword-only
        As in :func:`load_fashion_mnist`.

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784) and ``X_test`` (10000, 784) in ``dtype``,
        pixel values scaled to [0, 1] (uint8 divided by 255); ``y_train``
        (60000,) and ``y_test`` (10000,) int64 labels 0..9; ``name``
        ``"mnist"``.

    Raises
    ------
    FileNotFoundError
        Not found and ``download`` is False; the message lists every
        directory searched and how to get the data.
    ValueError
        A downloaded file fails its checksum (it is deleted), a file is
        malformed, or images and labels hold different numbers of records.
    OSError
        ``download=True`` and no mirror delivered a missing file.
    TypeError
        ``dtype`` is not float32/float64, or a bad ``data_home``/``download``.
    """
    return _load_mnist_like("mnist", data_home, download, dtype, shard)


def _check_test_size(test_size) -> float:
    if (isinstance(test_size, bool) or not isinstance(test_size, numbers.Real)
            or not 0.0 < float(test_size) < 1.0):
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}")
    return float(test_size)


def _stratified_split(y: np.ndarray, test_size: float, rng: np.random.Generator):
    """Indices ``(train, test)``: each class split in proportion ``test_size``.

    The test set has ``ceil(test_size * n)`` samples, shared among classes by
    largest remainder; both index arrays are shuffled.
    """
    n = y.shape[0]
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} leaves an empty train or test split "
                         f"of {n} samples")
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (n_test / n)
    take = np.floor(quota).astype(np.int64)
    short = n_test - int(take.sum())
    if short > 0:
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:short]] += 1
    train, test = [], []
    for c, k in zip(classes, take):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:k])
        train.append(idx[k:])
    train = rng.permutation(np.concatenate(train))
    test = rng.permutation(np.concatenate(test))
    return train, test


def load_digits(*, dtype=np.float32, test_size=0.2, random_state=0, shard=None) -> Dataset:
    """The 8x8 digits bundled with fastnmf, scaled to [0, 1], split stratified.

    1797 images (UCI optical recognition of handwritten digits, as in
    scikit-learn), read from ``fastnmf/data/digits.npz`` through
    :func:`fastnmf.datasets.load_digits`; no download, no scikit-learn.

    Parameters
    ----------
    dtype : {numpy.float32, numpy.float64}, keyword-only
        dtype of ``X``.
    test_size : float, keyword-only
        Fraction in (0, 1) of each class put in the test set; the test set
        has ``ceil(test_size * 1797)`` samples (360 for 0.2).
    random_state : int or None, keyword-only
        Seed of the shuffle (``numpy.random.default_rng``); the same seed
        gives the same split. None: a fresh random split.
    shard : (index, count) or None, keyword-only
        Keep only block ``index`` of ``count`` contiguous blocks of the
        (shuffled) training set and of the test set (:func:`shard_range`).

    Returns
    -------
    Dataset
        ``X_train`` (n_train, 64) and ``X_test`` (n_test, 64) in ``dtype``,
        values in [0, 1] (the 0..16 intensities divided by 16); ``y_train``,
        ``y_test`` int64 labels 0..9 with the class proportions of the whole
        set; ``name`` ``"digits"``.

    Raises
    ------
    TypeError
        ``dtype`` is not float32/float64, or ``random_state`` is not an int.
    ValueError
        ``test_size`` is not a float in (0, 1), or ``random_state`` < 0.
    """
    from fastnmf.datasets import load_digits as _load_bundled

    dt = _check_dtype(dtype)
    ts = _check_test_size(test_size)
    if random_state is not None:
        random_state = _check_int(random_state, "random_state")
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
    shard_range(1, shard)
    X, y = _load_bundled(dtype=np.float64)
    X = (X / 16.0).astype(dt)
    train, test = _stratified_split(y, ts, np.random.default_rng(random_state))
    train = train[slice(*shard_range(train.size, shard))]
    test = test[slice(*shard_range(test.size, shard))]
    return Dataset(X[train], y[train], X[test], y[test], "digits")


_LOADERS = {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
}
_ALIASES = {"fashion_mnist": "fashion-mnist"}


def load_dataset(name: str, **kw) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        ``"digits"`` (:func:`load_digits`), ``"fashion-mnist"`` or
        ``"fashion_mnist"`` (:func:`load_fashion_mnist`), ``"mnist"``
        (:func:`load_mnist`); case-insensitive.
    **kw
        Keyword options of that loader (e.g. ``dtype``, ``data_home``).

    Returns
    -------
    Dataset
        See the loader; X (n_samples, n_features) float, y (n_samples,) int64.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    TypeError
        ``name`` is not a str, or an option the loader does not take.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _LOADERS:
        known = sorted(set(_LOADERS) | set(_ALIASES))
        raise ValueError(f"unknown dataset name {name!r}; known: {', '.join(known)}")
    return _LOADERS[key](**kw)
