"""The communicator layer and sharded loading, without MPI (one process).

The data-parallel runs themselves are in test_mpi.py (under mpiexec).
"""
import numpy as np
import pytest

import fastnmf
from fastnmf._comm import SERIAL, SerialComm, as_comm, check_same, collective
from fastnmf_dnn import NMFNetClassifier
from fastnmf_dnn.datasets import load_digits, load_fashion_mnist, shard_range, write_idx
from fastnmf_dnn.network import init_random
from fastnmf_dnn.trainer import PRESETS, Trainer


class FakeTwo(SerialComm):
    """Claims two processes but reduces nothing (for call-pattern checks)."""

    rank, size = 0, 2

    def allgather(self, obj):
        return [obj, obj]


def test_as_comm():
    assert as_comm(None) is SERIAL
    assert as_comm(SERIAL) is SERIAL
    with pytest.raises(TypeError, match="comm must be None or an mpi4py communicator"):
        as_comm("world")


def test_collective_one_process_is_a_plain_block():
    with pytest.raises(ValueError, match="boom"):
        with collective(SERIAL):
            raise ValueError("boom")
    with collective(SERIAL):
        pass
    check_same(SERIAL, 3, "x")


@pytest.mark.parametrize("f, data", [(fastnmf.nmf, "nn"), (fastnmf.semi_nmf, "any"),
                                     (fastnmf.nonlinear_semi_nmf, "nn")])
def test_comm_none_and_serial_are_the_same_run(f, data):
    rng = np.random.default_rng(0)
    A = rng.random((12, 30)) if data == "nn" else rng.standard_normal((12, 30))
    a = f(A, 3, max_iter=10, random_state=1)
    b = f(A, 3, max_iter=10, random_state=1, comm=SERIAL)
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.V, b.V)


def test_solvers_reject_a_bad_comm():
    A = np.ones((4, 5))
    for call in (lambda: fastnmf.nmf(A, 2, comm=1),
                 lambda: fastnmf.nnls(A, np.ones((4, 2)), comm=1),
                 lambda: fastnmf.ridge_lstsq(A, np.ones((2, 5)), comm=1),
                 lambda: fastnmf.relu_lstsq(A, np.ones((4, 2)), np.ones((2, 5)), comm=1)):
        with pytest.raises(TypeError, match="comm"):
            call()


def test_minibatch_with_a_communicator_is_refused():
    X = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[np.arange(20) % 2]
    net = init_random([4, 3, 2], np.random.default_rng(0), np.float32)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(X, Y, net, PRESETS["default"].replace(batch_size=5), comm=FakeTwo())
    with pytest.raises(ValueError, match="batch_size"):
        NMFNetClassifier((3,), batch_size=5).fit(X, np.arange(20) % 2, comm=FakeTwo())


@pytest.mark.parametrize("n, count", [(10, 3), (7, 7), (3, 5), (0, 2), (60000, 4)])
def test_shard_range_partitions(n, count):
    parts = [shard_range(n, (i, count)) for i in range(count)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    sizes = [b - a for a, b in parts]
    assert max(sizes) - min(sizes) <= 1
    assert shard_range(n, None) == (0, n)


@pytest.mark.parametrize("shard, exc", [((1, 1), ValueError), ((-1, 2), ValueError),
                                        ((0, 0), ValueError), ((0,), TypeError),
                                        ("0/2", TypeError), ((0.0, 2), TypeError),
                                        ((True, 2), TypeError)])
def test_shard_range_rejects(shard, exc):
    with pytest.raises(exc, match="shard"):
        shard_range(10, shard)
    with pytest.raises(exc, match="shard"):
        load_digits(shard=shard)


def test_load_digits_shards_concatenate_to_the_whole():
    whole = load_digits()
    parts = [load_digits(shard=(i, 3)) for i in range(3)]
    for j in range(4):
        np.testing.assert_array_equal(whole[j], np.concatenate([p[j] for p in parts]))


def test_idx_loader_reads_only_its_shard(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("t10k", 11)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 3, 3), dtype=np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz",
                  rng.integers(0, 10, n).astype(np.uint8))
    whole = load_fashion_mnist(data_home=tmp_path)
    parts = [load_fashion_mnist(data_home=tmp_path, shard=(i, 4)) for i in range(4)]
    assert [p.X_train.shape[0] for p in parts] == [12, 13, 12, 13]
    for j in range(4):
        np.testing.assert_array_equal(whole[j], np.concatenate([p[j] for p in parts]))
