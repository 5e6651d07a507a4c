"""Data-parallel runs under mpiexec: the same weights as one process.

Each test launches ``mpiexec -n P`` on ``tests/_mpi_worker.py`` (or the CLI)
with a timeout, so a deadlock fails the test instead of hanging the suite.
Needs ``mpi4py`` and an ``mpiexec`` (``pip install ".[mpi]"`` installs both,
the MPICH wheel providing ``mpiexec`` next to the Python executable). They
are skipped when missing, except when ``FASTNMF_REQUIRE_MPI=1`` (set by
``.ci/run``), where a missing MPI is a failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
WORKER = HERE / "_mpi_worker.py"


def _mpiexec():
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        why = "mpi4py or mpiexec missing (pip install '.[mpi]')"
        if os.environ.get("FASTNMF_REQUIRE_MPI") == "1":
            pytest.fail(f"FASTNMF_REQUIRE_MPI=1 but {why}")
        pytest.skip(why)
    return found


def _run(n, args, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [_mpiexec(), "-n", str(n), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=HERE)  # not the checkout root: import the installed package
    except subprocess.TimeoutExpired as exc:  # a hang is the failure this guards against
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s (deadlock?)\n"
                    f"{exc.stdout}\n{exc.stderr}")


def _worker(n, case):
    return _run(n, [sys.executable, "-m", "mpi4py", str(WORKER), case])


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("case", ["solvers", "estimators", "tiny_shards", "errors"])
def test_worker_case(case, n):
    """Solvers and estimators equal one process (1e-5 float64, 1e-3 float32),
    uneven and empty blocks, and errors raised on every process."""
    r = _worker(n, case)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"OK {case} on {n} processes" in r.stdout


def test_failure_on_one_process_aborts_the_job():
    r = _worker(2, "crash")
    assert r.returncode != 0
    assert "simulated failure" in r.stderr + r.stdout


def _cli(args, n=None):
    cmd = [sys.executable, "-m", "fastnmf_dnn", *args]
    if n is None:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=HERE)
    return _run(n, cmd)


def test_cli_train_under_mpiexec_matches_one_process(tmp_path):
    args = ["train", "--max-iter", "3", "--quiet", "--threads", "1",
            "--save", str(tmp_path / "m.npz")]
    one = _cli(args)
    two = _cli(args, n=2)
    assert one.returncode == 0 and two.returncode == 0, two.stdout + two.stderr
    acc = [line for line in two.stdout.splitlines() if line.startswith("final test accuracy")]
    assert len(acc) == 1, two.stdout          # only process 0 prints
    assert acc == [line for line in one.stdout.splitlines()
                   if line.startswith("final test accuracy")]
    assert "MPI: 2 processes" in two.stdout
    assert (tmp_path / "m.npz").exists()


def test_cli_train_on_svmlight_under_mpiexec_matches_one_process(tmp_path):
    """Each process reads the svmlight files and trains on its block of rows
    (sparse): the same final accuracy as one process."""
    from sklearn.datasets import dump_svmlight_file
    from fastnmf_dnn.datasets import load_digits
    d = load_digits(dtype=np.float64)
    for split, X, y in (("train", d.X_train, d.y_train), ("test", d.X_test, d.y_test)):
        dump_svmlight_file(X, y, str(tmp_path / f"{split}.svm"), zero_based=False)
    args = ["train", "--max-iter", "3", "--quiet", "--threads", "1", "--dtype", "float64",
            "--train-svmlight", str(tmp_path / "train.svm"),
            "--test-svmlight", str(tmp_path / "test.svm")]
    one = _cli(args)
    two = _cli(args, n=2)
    assert one.returncode == 0 and two.returncode == 0, two.stdout + two.stderr
    acc = [line for line in two.stdout.splitlines() if line.startswith("final test accuracy")]
    assert len(acc) == 1 and acc == [line for line in one.stdout.splitlines()
                                     if line.startswith("final test accuracy")], two.stdout
    assert "svmlight files, sparse" in two.stdout and "MPI: 2 processes" in two.stdout


def test_cli_aborts_when_one_process_cannot_read_its_shard(tmp_path):
    """A training file truncated in its second half: process 1's shard cannot
    be read, process 0's can. The job must end with an error, not hang."""
    from fastnmf_dnn.datasets import write_idx
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(100, 4, 4), dtype=np.uint8)
    labels = (np.arange(100) % 3).astype(np.uint8)
    write_idx(tmp_path / "train-images", images)
    write_idx(tmp_path / "train-labels", labels)
    write_idx(tmp_path / "test-images", images[:20])
    write_idx(tmp_path / "test-labels", labels[:20])
    path = tmp_path / "train-images"
    path.write_bytes(path.read_bytes()[: 16 + 70 * 16])   # header + 70 of 100 records
    r = _cli(["train", "--train-images", str(path),
              "--train-labels", str(tmp_path / "train-labels"),
              "--test-images", str(tmp_path / "test-images"),
              "--test-labels", str(tmp_path / "test-labels"), "--max-iter", "2", "--quiet"],
             n=2)
    assert r.returncode != 0
    assert "error on MPI rank 1 of 2" in r.stderr, r.stderr
