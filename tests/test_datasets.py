"""fastnmf_dnn.datasets: IDX reading/writing, dataset discovery, download, digits split.

Fast and offline: IDX files are built in tmp_path with write_idx, the
network function ``_fetch`` is replaced, and the system directory, $HOME and
$FASTNMF_DATA are redirected so that nothing on the machine interferes.
"""
from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnmf_dnn.datasets as ds

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _array(dtype, shape=(9, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _labels(n):
    return (np.arange(n) % 10).astype(np.uint8)


def make_fashion_dir(directory, n_train=12, n_test=5, *, gz=True, seed=0, skip=()):
    """Write the four standard files (small) into ``directory``; return the arrays."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": _images(n_train, seed),
        "train-labels-idx1-ubyte": _labels(n_train),
        "t10k-images-idx3-ubyte": _images(n_test, seed + 1),
        "t10k-labels-idx1-ubyte": _labels(n_test),
    }
    for base, arr in arrays.items():
        if base not in skip:
            ds.write_idx(directory / (base + (".gz" if gz else "")), arr)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $FASTNMF_DATA, an empty $HOME, system dirs that do not exist."""
    monkeypatch.delenv("FASTNMF_DATA", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(ds.SYSTEM_DIRS):
        monkeypatch.setitem(ds.SYSTEM_DIRS, name, tmp_path / "system" / name)
    return tmp_path


def _no_fetch(url, dest):
    raise AssertionError(f"network access attempted: {url}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(ds, "_fetch", _no_fetch)


# ---------------------------------------------------------------- IDX round trip

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", IDX_DTYPES, ids=lambda d: np.dtype(d).name)
def test_roundtrip_every_type_code(tmp_path, dtype, gz):
    arr = _array(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    ds.write_idx(path, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    out = ds.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == arr.shape and out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    assert ds.idx_shape(path) == arr.shape


def test_header_bytes_are_the_standard_ones(tmp_path):
    ds.write_idx(tmp_path / "l", np.arange(3, dtype=np.uint8))
    assert (tmp_path / "l").read_bytes() == b"\x00\x00\x08\x01\x00\x00\x00\x03\x00\x01\x02"
    ds.write_idx(tmp_path / "i", np.array([[1, -2]], dtype=np.int32))
    assert (tmp_path / "i").read_bytes() == (b"\x00\x00\x0c\x02" + b"\x00\x00\x00\x01"
                                             + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01"
                                             + b"\xff\xff\xff\xfe")


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    arr = _array(np.int16, (4, 5))
    ds.write_idx(tmp_path / "z.gz", arr)
    (tmp_path / "z.gz").rename(tmp_path / "compressed.bin")
    np.testing.assert_array_equal(ds.read_idx(tmp_path / "compressed.bin"), arr)
    ds.write_idx(tmp_path / "plain", arr)
    (tmp_path / "plain").rename(tmp_path / "plain.gz")
    np.testing.assert_array_equal(ds.read_idx(str(tmp_path / "plain.gz")), arr)


def test_zero_records_and_1d(tmp_path):
    ds.write_idx(tmp_path / "e.gz", np.zeros((0, 3), np.float32))
    out = ds.read_idx(tmp_path / "e.gz")
    assert out.shape == (0, 3) and out.dtype == np.float32
    ds.write_idx(tmp_path / "v", np.arange(5, dtype=np.float64))
    np.testing.assert_array_equal(ds.read_idx(tmp_path / "v", start=1, stop=4), [1, 2, 3])


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64], ids=["uint8", "float64"])
def test_start_stop_equals_slicing_full_read(tmp_path, monkeypatch, dtype, gz):
    monkeypatch.setattr(ds, "_CHUNK", 7)  # many small chunks when skipping in gzip
    arr = _array(dtype, (23, 4, 3))
    path = tmp_path / ("s.gz" if gz else "s")
    ds.write_idx(path, arr)
    full = ds.read_idx(path)
    n = arr.shape[0]
    for start, stop in [(0, None), (0, n), (0, 0), (n, n), (n, None), (3, 9), (5, 6),
                        (22, 23), (10, None), (0, 1)]:
        out = ds.read_idx(path, start=start, stop=stop)
        np.testing.assert_array_equal(out, full[start:stop])
        assert out.shape == full[start:stop].shape and out.dtype == full.dtype


def test_shards_cover_the_file(tmp_path):
    arr = _array(np.uint8, (10, 2))
    ds.write_idx(tmp_path / "s.gz", arr)
    bounds = [0, 3, 7, 10]
    parts = [ds.read_idx(tmp_path / "s.gz", start=a, stop=b) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), arr)


@pytest.mark.parametrize("kw, exc, word", [
    (dict(start=-1), ValueError, "start"),
    (dict(start=4, stop=3), ValueError, "start"),
    (dict(stop=8), ValueError, "stop"),
    (dict(start=8), ValueError, "start"),
    (dict(start=1.0), TypeError, "start"),
    (dict(stop="3"), TypeError, "stop"),
    (dict(start=True), TypeError, "start"),
])
def test_bad_start_stop(tmp_path, kw, exc, word):
    ds.write_idx(tmp_path / "a", _array(np.uint8, (7, 2)))
    with pytest.raises(exc, match=word):
        ds.read_idx(tmp_path / "a", **kw)


def test_numpy_integer_start_stop(tmp_path):
    arr = _array(np.uint8, (7, 2))
    ds.write_idx(tmp_path / "a", arr)
    np.testing.assert_array_equal(ds.read_idx(tmp_path / "a", start=np.int64(2),
                                              stop=np.int32(5)), arr[2:5])


def test_missing_file(tmp_path):
    path = tmp_path / "nope.gz"
    for fn in (ds.read_idx, ds.idx_shape):
        with pytest.raises(FileNotFoundError, match="nope.gz"):
            fn(path)


def test_write_idx_rejects(tmp_path):
    with pytest.raises(TypeError, match="array"):
        ds.write_idx(tmp_path / "x", np.arange(3, dtype=np.int64))
    with pytest.raises(TypeError, match="array"):
        ds.write_idx(tmp_path / "x", np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="array"):
        ds.write_idx(tmp_path / "x", np.uint8(3))


# ---------------------------------------------------------------- malformed files

_HDR_3x2_U8 = b"\x00\x00\x08\x02" + (3).to_bytes(4, "big") + (2).to_bytes(4, "big")
MALFORMED = {
    "empty": (b"", "not an IDX file"),
    "too-short": (b"\x00\x00", "not an IDX file"),
    "bad-magic": (b"\x01\x02\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "not an IDX file"),
    "bad-magic-second-byte": (b"\x00\x07\x08\x01" + (1).to_bytes(4, "big") + b"\x00",
                              "not an IDX file"),
    "bad-type-code": (b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x00", "type code 0x07"),
    "type-code-0x0A": (b"\x00\x00\x0a\x01" + (1).to_bytes(4, "big") + b"\x00", "type code 0x0A"),
    "ndim-0": (b"\x00\x00\x08\x00", "dimensions is 0"),
    "truncated-dims": (b"\x00\x00\x08\x03" + (60000).to_bytes(4, "big"), "truncated"),
    "truncated-payload": (_HDR_3x2_U8 + b"\x01" * 5, "truncated: header says 3x2"),
    "no-payload": (_HDR_3x2_U8, "truncated"),
    "trailing-bytes": (_HDR_3x2_U8 + b"\x01" * 7, "1 trailing bytes"),
    "partial-int32": (b"\x00\x00\x0c\x01" + (2).to_bytes(4, "big") + b"\x00" * 7, "truncated"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_raises_valueerror_naming_path(tmp_path, case, gz):
    data, words = MALFORMED[case]
    path = tmp_path / f"bad-{case}.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError) as info:
        ds.read_idx(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)


@pytest.mark.parametrize("case", ["empty", "bad-magic", "bad-type-code", "ndim-0",
                                  "truncated-dims"])
def test_idx_shape_checks_header(tmp_path, case):
    path = tmp_path / "h"
    path.write_bytes(MALFORMED[case][0])
    with pytest.raises(ValueError, match="h"):
        ds.idx_shape(path)


def test_truncated_raw_rejected_even_when_slicing_the_intact_part(tmp_path):
    path = tmp_path / "t"
    path.write_bytes(_HDR_3x2_U8 + b"\x01" * 5)
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(path, start=0, stop=1)


def test_truncated_gzip_payload_when_slicing(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(_HDR_3x2_U8 + b"\x01" * 3))
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(path, start=2, stop=3)
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(path, start=1, stop=2)
    np.testing.assert_array_equal(ds.read_idx(path, start=0, stop=1), [[1, 1]])


def test_corrupt_gzip(tmp_path):
    ds.write_idx(tmp_path / "ok.gz", _array(np.float32, (50, 10)))
    good = (tmp_path / "ok.gz").read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match="cut.gz"):
        ds.read_idx(cut)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x1f\x8b" + b"\xff" * 40)
    with pytest.raises(ValueError, match="junk"):
        ds.read_idx(junk)


def test_absurd_gzip_header_rejected_before_allocating(tmp_path):
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x0e\x02" + (2 ** 31).to_bytes(4, "big")
                                   + (2 ** 31).to_bytes(4, "big")))
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(path)


# ---------------------------------------------------------------- finding the files

def _n_train(dataset):
    return dataset.X_train.shape[0]


def test_search_order(isolated, monkeypatch):
    tmp = isolated
    make_fashion_dir(tmp / "dh", n_train=11)
    make_fashion_dir(tmp / "env", n_train=12)
    make_fashion_dir(tmp / "home" / ".cache" / "fastnmf" / "fashion-mnist", n_train=13)
    make_fashion_dir(tmp / "system" / "fashion-mnist", n_train=14)
    monkeypatch.setenv("FASTNMF_DATA", str(tmp / "env"))

    assert _n_train(ds.load_fashion_mnist(data_home=tmp / "dh")) == 11
    assert _n_train(ds.load_fashion_mnist(data_home=str(tmp / "dh"))) == 11
    assert _n_train(ds.load_fashion_mnist()) == 12
    # a data_home without the files falls through to the next place
    assert _n_train(ds.load_fashion_mnist(data_home=tmp / "empty")) == 12
    monkeypatch.delenv("FASTNMF_DATA")
    assert _n_train(ds.load_fashion_mnist()) == 13
    for base in FILES:
        (tmp / "home" / ".cache" / "fastnmf" / "fashion-mnist" / f"{base}.gz").unlink()
    assert _n_train(ds.load_fashion_mnist()) == 14


def test_env_subdirectory(isolated, monkeypatch):
    tmp = isolated
    make_fashion_dir(tmp / "env" / "fashion-mnist", n_train=15)
    make_fashion_dir(tmp / "env" / "mnist", n_train=16)
    monkeypatch.setenv("FASTNMF_DATA", str(tmp / "env"))
    assert _n_train(ds.load_fashion_mnist()) == 15
    assert _n_train(ds.load_mnist()) == 16


def test_mnist_system_dir(isolated):
    make_fashion_dir(isolated / "system" / "mnist", n_train=17)
    d = ds.load_mnist()
    assert d.name == "mnist" and _n_train(d) == 17
    with pytest.raises(FileNotFoundError):
        ds.load_fashion_mnist()


def test_loaded_values(isolated):
    arrays = make_fashion_dir(isolated / "d", n_train=12, n_test=5)
    for dtype in (np.float32, np.float64):
        d = ds.load_fashion_mnist(data_home=isolated / "d", dtype=dtype)
        X_train, y_train, X_test, y_test, name = d  # unpacks
        assert name == "fashion-mnist"
        assert X_train.shape == (12, 784) and X_test.shape == (5, 784)
        assert X_train.dtype == dtype and X_test.dtype == dtype
        assert y_train.dtype == np.int64 and y_test.shape == (5,)
        assert 0.0 <= X_train.min() and X_train.max() <= 1.0
        np.testing.assert_array_equal(
            X_train, (arrays["train-images-idx3-ubyte"].reshape(12, 784).astype(dtype) / 255))
        np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert "fashion-mnist" in repr(d) and "(12, 784)" in repr(d)


def test_uncompressed_names_accepted(isolated):
    make_fashion_dir(isolated / "raw", n_train=9, gz=False)
    assert _n_train(ds.load_fashion_mnist(data_home=isolated / "raw")) == 9
    # mixed: some .gz, some raw
    make_fashion_dir(isolated / "mixed", n_train=8, skip=FILES[:2])
    make_fashion_dir(isolated / "mixed", n_train=8, gz=False, skip=FILES[2:])
    assert _n_train(ds.load_fashion_mnist(data_home=isolated / "mixed")) == 8


def test_not_found_lists_every_place(isolated, monkeypatch):
    tmp = isolated
    make_fashion_dir(tmp / "dh", skip=FILES[1:3])  # 2 of 4 files
    monkeypatch.setenv("FASTNMF_DATA", str(tmp / "env"))
    with pytest.raises(FileNotFoundError) as info:
        ds.load_fashion_mnist(data_home=tmp / "dh")
    msg = str(info.value)
    for place in [tmp / "dh", tmp / "env", tmp / "env" / "fashion-mnist",
                  tmp / "home" / ".cache" / "fastnmf" / "fashion-mnist",
                  tmp / "system" / "fashion-mnist"]:
        assert str(place) in msg
    assert "has 2 of 4 files" in msg and "train-labels-idx1-ubyte" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "download=True" in msg

    with pytest.raises(FileNotFoundError) as info:
        ds.load_mnist()
    msg = str(info.value)
    assert str(tmp / "system" / "mnist") in msg and "load_mnist(download=True)" in msg


# ---------------------------------------------------------------- download

def _gz_files(n_train=12, n_test=5, seed=3):
    """The four .gz files' bytes, as a mirror would serve them."""
    arrays = {
        "train-images-idx3-ubyte": _images(n_train, seed),
        "train-labels-idx1-ubyte": _labels(n_train),
        "t10k-images-idx3-ubyte": _images(n_test, seed + 1),
        "t10k-labels-idx1-ubyte": _labels(n_test),
    }
    out = {}
    for base, arr in arrays.items():
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
        out[base + ".gz"] = gzip.compress(header + arr.tobytes(), mtime=0)
    return out, arrays


class FakeNet:
    """A replacement for ``_fetch``: serves ``files``; ``down`` hosts raise OSError."""

    def __init__(self, files, down=()):
        self.files, self.down, self.calls = files, tuple(down), []

    def __call__(self, url, dest):
        self.calls.append(url)
        if url.startswith(self.down):
            raise OSError(f"connection refused: {url}")
        with open(dest, "wb") as fh:
            fh.write(self.files[url.rsplit("/", 1)[1]])


def _leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir()) if Path(directory).exists() else []


def test_download_success(isolated, monkeypatch):
    files, arrays = _gz_files()
    for fname, data in files.items():
        monkeypatch.setitem(ds._SHA256["fashion-mnist"], fname, hashlib.sha256(data).hexdigest())
    net = FakeNet(files)
    monkeypatch.setattr(ds, "_fetch", net)
    target = isolated / "dl"
    d = ds.load_fashion_mnist(data_home=target, download=True)
    assert sorted(net.calls) == sorted(ds._MIRRORS["fashion-mnist"][0] + f for f in files)
    assert _leftovers(target) == sorted(files)  # no temporary files left
    for fname, data in files.items():
        assert (target / fname).read_bytes() == data
    np.testing.assert_array_equal(d.y_train, arrays["train-labels-idx1-ubyte"])
    assert d.X_train.shape == (12, 784) and d.X_test.shape == (5, 784)
    # a second call finds them and does not download again
    net.calls.clear()
    ds.load_fashion_mnist(data_home=target, download=True)
    assert net.calls == []


def test_download_only_missing_files_into_cache_with_mirror_fallback(isolated, monkeypatch):
    files, _ = _gz_files()
    for fname, data in files.items():
        monkeypatch.setitem(ds._SHA256["mnist"], fname, hashlib.sha256(data).hexdigest())
    cache = isolated / "home" / ".cache" / "fastnmf" / "mnist"
    cache.mkdir(parents=True)
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(files["train-labels-idx1-ubyte.gz"])
    first, second = ds._MIRRORS["mnist"]
    net = FakeNet(files, down=(first,))
    monkeypatch.setattr(ds, "_fetch", net)
    d = ds.load_mnist(download=True)
    assert d.name == "mnist" and d.X_train.shape == (12, 784)
    fetched = [u.rsplit("/", 1)[1] for u in net.calls if u.startswith(second)]
    assert sorted(fetched) == sorted(f for f in files if f != "train-labels-idx1-ubyte.gz")
    assert all(u.startswith((first, second)) for u in net.calls)
    assert _leftovers(cache) == sorted(files)


def test_download_checksum_mismatch_leaves_nothing(isolated, monkeypatch):
    files, _ = _gz_files()  # their SHA-256 are not the published ones
    monkeypatch.setattr(ds, "_fetch", FakeNet(files))
    target = isolated / "dl"
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        ds.load_fashion_mnist(data_home=target, download=True)
    assert _leftovers(target) == []
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        ds.load_mnist(data_home=target, download=True)  # both mirrors tried
    assert _leftovers(target) == []


def test_download_all_mirrors_down(isolated, monkeypatch):
    files, _ = _gz_files()
    monkeypatch.setattr(ds, "_fetch", FakeNet(files, down=("http",)))
    target = isolated / "dl"
    with pytest.raises(OSError, match="could not download"):
        ds.load_mnist(data_home=target, download=True)
    assert _leftovers(target) == []


def test_no_download_when_found_locally(isolated):
    make_fashion_dir(isolated / "system" / "fashion-mnist", n_train=7)
    assert _n_train(ds.load_fashion_mnist(download=True)) == 7  # _fetch would raise


def test_published_checksum_tables():
    for name in ("fashion-mnist", "mnist"):
        assert sorted(ds._SHA256[name]) == sorted(f + ".gz" for f in FILES)
        for digest in ds._SHA256[name].values():
            assert len(digest) == 64 and int(digest, 16) >= 0
    assert ds._SHA256["fashion-mnist"]["train-images-idx3-ubyte.gz"].startswith("3aede38d")
    assert ds._SHA256["mnist"]["train-images-idx3-ubyte.gz"].startswith("440fcabf")


# ---------------------------------------------------------------- record counts, load_idx_pair

def test_mismatched_record_counts(isolated):
    d = isolated / "d"
    make_fashion_dir(d, n_train=12)
    ds.write_idx(d / "train-labels-idx1-ubyte.gz", _labels(11))
    with pytest.raises(ValueError, match="record counts differ") as info:
        ds.load_fashion_mnist(data_home=d)
    assert "12" in str(info.value) and "11" in str(info.value)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz"):
        ds.load_idx_pair(d / "train-images-idx3-ubyte.gz", d / "train-labels-idx1-ubyte.gz")


def test_load_idx_pair(tmp_path):
    imgs = _images(10)
    ds.write_idx(tmp_path / "i.gz", imgs)
    ds.write_idx(tmp_path / "l", _labels(10))
    X, y = ds.load_idx_pair(tmp_path / "i.gz", tmp_path / "l", dtype=np.float64, start=2, stop=6)
    assert X.shape == (4, 784) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, imgs[2:6].reshape(4, -1) / 255.0)
    np.testing.assert_array_equal(y, [2, 3, 4, 5])
    # non-uint8 images are converted, not scaled
    f = np.linspace(-1, 3, 30, dtype=np.float32).reshape(10, 3)
    ds.write_idx(tmp_path / "f", f)
    X, _ = ds.load_idx_pair(tmp_path / "f", tmp_path / "l")
    np.testing.assert_array_equal(X, f)
    # labels must be 1-D integers
    ds.write_idx(tmp_path / "l2", np.zeros((10, 2), np.uint8))
    with pytest.raises(ValueError, match="1-D"):
        ds.load_idx_pair(tmp_path / "i.gz", tmp_path / "l2")
    ds.write_idx(tmp_path / "lf", np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="integers"):
        ds.load_idx_pair(tmp_path / "i.gz", tmp_path / "lf")


# ---------------------------------------------------------------- digits

def test_load_digits_shapes_range_and_determinism():
    d = ds.load_digits()
    assert d.name == "digits"
    assert d.X_train.shape == (1437, 64) and d.X_test.shape == (360, 64)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    for X in (d.X_train, d.X_test):
        assert X.min() >= 0.0 and X.max() <= 1.0
    assert max(d.X_train.max(), d.X_test.max()) == 1.0  # 16 / 16
    again = ds.load_digits()
    for a, b in zip(d[:4], again[:4]):
        np.testing.assert_array_equal(a, b)
    other = ds.load_digits(random_state=1)
    assert not np.array_equal(d.y_test, other.y_test)
    d64 = ds.load_digits(dtype=np.float64)
    assert d64.X_train.dtype == np.float64
    np.testing.assert_allclose(d64.X_train, d.X_train, rtol=1e-7)


@pytest.mark.parametrize("test_size", [0.2, 0.5, 0.05, 0.9])
def test_load_digits_stratified(test_size):
    from fastnmf.datasets import load_digits as bundled

    X_all, y_all = bundled()
    d = ds.load_digits(test_size=test_size, random_state=3)
    n = y_all.shape[0]
    assert d.y_test.shape[0] == int(np.ceil(test_size * n))
    full = np.bincount(y_all, minlength=10)
    tr = np.bincount(d.y_train, minlength=10)
    te = np.bincount(d.y_test, minlength=10)
    np.testing.assert_array_equal(tr + te, full)  # a partition
    assert np.all(np.abs(te - full * test_size) <= 1.0)  # stratified
    np.testing.assert_allclose(d.X_train.sum(dtype=np.float64) + d.X_test.sum(dtype=np.float64),
                               X_all.sum() / 16, rtol=1e-6)
    assert not np.all(np.diff(d.y_test) >= 0)  # shuffled, not grouped by class


# ---------------------------------------------------------------- bad input, dispatch

@pytest.mark.parametrize("dtype", [np.int32, np.float16, "float16", None, "nonsense", object])
def test_bad_dtype(isolated, dtype):
    with pytest.raises(TypeError, match="dtype"):
        ds.load_digits(dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        ds.load_fashion_mnist(dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        ds.load_idx_pair("x", "y", dtype=dtype)


@pytest.mark.parametrize("test_size", [0, 1, 0.0, 1.0, 1.5, -0.1, "0.2", None, True, float("nan")])
def test_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        ds.load_digits(test_size=test_size)


def test_bad_random_state_and_options(isolated):
    with pytest.raises(TypeError, match="random_state"):
        ds.load_digits(random_state=1.5)
    with pytest.raises(ValueError, match="random_state"):
        ds.load_digits(random_state=-1)
    with pytest.raises(TypeError):
        ds.load_fashion_mnist("somewhere")  # keyword-only
    with pytest.raises(TypeError, match="data_home"):
        ds.load_fashion_mnist(data_home=3)
    with pytest.raises(TypeError, match="download"):
        ds.load_fashion_mnist(download="yes")


def test_load_dataset_dispatch(isolated):
    make_fashion_dir(isolated / "f", n_train=6)
    for name in ("fashion-mnist", "fashion_mnist", "Fashion-MNIST"):
        d = ds.load_dataset(name, data_home=isolated / "f")
        assert d.name == "fashion-mnist" and _n_train(d) == 6
    make_fashion_dir(isolated / "m", n_train=4)
    assert _n_train(ds.load_dataset("mnist", data_home=isolated / "m")) == 4
    d = ds.load_dataset("digits", dtype=np.float64, test_size=0.25)
    assert d.name == "digits" and d.X_test.shape == (450, 64)
    with pytest.raises(ValueError) as info:
        ds.load_dataset("cifar10")
    for known in ("digits", "fashion-mnist", "fashion_mnist", "mnist", "cifar10"):
        assert known in str(info.value)
    with pytest.raises(TypeError, match="name"):
        ds.load_dataset(None)
    with pytest.raises(TypeError):
        ds.load_dataset("digits", colour=True)


# ---------------------------------------------------------------- the real thing, if installed

REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not all((REAL / f"{b}.gz").is_file() for b in FILES),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTNMF_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setitem(ds.SYSTEM_DIRS, "fashion-mnist", REAL)
    d = ds.load_fashion_mnist()
    assert d.X_train.shape == (60000, 784) and d.X_test.shape == (10000, 784)
    assert d.X_train.dtype == np.float32
    assert 0.0 <= d.X_train.min() and d.X_train.max() <= 1.0
    for y, n in ((d.y_train, 6000), (d.y_test, 1000)):
        np.testing.assert_array_equal(np.unique(y), np.arange(10))
        np.testing.assert_array_equal(np.bincount(y), np.full(10, n))
    # the same content as upstream (labels only: cheap)
    for base in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(REAL / f"{base}.gz", "rb") as fh:
            payload = fh.read()
        assert hashlib.sha256(payload).hexdigest() == ds._FASHION_PAYLOAD_SHA256[base]
    tail = ds.read_idx(REAL / "t10k-images-idx3-ubyte.gz", start=9990)
    np.testing.assert_array_equal(tail.reshape(10, 784) / np.float32(255), d.X_test[9990:])


def test_module_imports_only_numpy_and_stdlib():
    # Load the file by path: the package's __init__ may import more, legitimately.
    import subprocess

    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('_ds', {ds.__file__!r}); "
            "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); "
            "bad = [m for m in ('fastnmf', 'numba', 'scipy', 'sklearn', 'torch') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(Path(ds.__file__).parent), check=True)
    assert out.stdout.strip() == "[]"
