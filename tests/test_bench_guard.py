"""The performance-regression guard itself: ``python -m bench save`` a
baseline, ``python -m bench compare`` the same code against it (passes),
then a 2x slowdown (fails, naming the benchmark and the slowdown).

The benchmark is a dedicated file written to tmp_path: a single-threaded
float64 matmul of a few milliseconds, 25 timed rounds. The slowdown is made
in that file only (an environment variable read by it wraps the benchmarked
function to do its work twice); nothing in the library can be slowed down.

Clock: the main test saves its baseline with ``--timer cpu`` (process CPU
time), which other processes on a shared machine do not inflate for this
single-threaded benchmark: measured under a fully loaded 2-core machine,
identical runs moved -1%..+10% (wall time: up to +265%) and the 2x
slowdown read +101%..+108%. So the 2x compare runs at the default 10%
threshold; the same-code compare at 25%, so that a loaded CI machine cannot
make it flaky. A verdict that goes the wrong way is re-measured (at most 3
attempts): a broken guard fails all of them. The default wall clock is
checked too (2x must fail at 40%), unless the machine is so loaded
(load average above the CPU count) that wall-clock verdicts mean nothing.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")

ROOT = Path(__file__).resolve().parents[1]

BENCH_FILE = textwrap.dedent('''
    import os

    import numpy as np

    A = np.random.default_rng(0).random((400, 400))


    def matmul():
        return A @ A


    fn = matmul
    if os.environ.get("BENCH_GUARD_TWICE"):
        def fn():  # the 2x slowdown, in this test file only
            matmul()
            return matmul()


    def test_matmul(benchmark):
        benchmark.pedantic(fn, rounds=25, warmup_rounds=3)
''')

CONFTEST = textwrap.dedent('''
    def pytest_addoption(parser):  # python -m bench passes --quick, like bench/conftest.py
        parser.addoption("--quick", action="store_true")


    def pytest_benchmark_generate_machine_info(config):  # skip the slow CPU probe
        return {"node": "test", "cpu": {}}
''')


@pytest.fixture
def suite(tmp_path):
    d = tmp_path / "suite"
    d.mkdir()
    (d / "bench_guard_tiny.py").write_text(BENCH_FILE)
    (d / "conftest.py").write_text(CONFTEST)
    return d


def bench_cli(*args, twice=False):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("BENCH_GUARD_TWICE", None)
    if twice:
        env["BENCH_GUARD_TWICE"] = "1"
    r = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def attempts(run, ok, n=3):
    """Run ``run()`` until ``ok(result)`` or n times; returns (result, attempts)."""
    for i in range(1, n + 1):
        res = run()
        if ok(res):
            return res, i
    return res, n


def test_compare_passes_same_code_and_fails_2x_slowdown(suite, tmp_path):
    store = str(tmp_path / "store")
    target = str(suite / "bench_guard_tiny.py")
    rc, out = bench_cli("save", "base", "--timer", "cpu", "--storage", store, "--", target)
    assert rc == 0, out
    saved = list(Path(store).glob("*/0001_base.json"))
    assert len(saved) == 1, out

    (rc, out), n = attempts(
        lambda: bench_cli("compare", "base", "--threshold", "25%", "--storage", store, "--",
                          target), lambda res: res[0] == 0)
    assert rc == 0, f"same code failed the compare ({n} attempts):\n{out}"
    assert "OK: no benchmark regressed" in out, out
    assert "(cpu time;" in out, out

    (rc, out), n = attempts(
        lambda: bench_cli("compare", "base", "--storage", store, "--", target, twice=True),
        lambda res: res[0] != 0)
    assert rc != 0, f"a 2x slowdown passed the compare ({n} attempts):\n{out}"
    # Readable: which benchmark, by how much, against what threshold.
    assert "PERFORMANCE REGRESSION: 1 of 1 benchmarks" in out, out
    # the benchmark's name (pytest may prefix it with a path, depending on rootdir)
    line = next((ln for ln in out.splitlines() if "bench_guard_tiny.py::" in ln
                 and "median" in ln), "")
    assert "test_matmul" in line and "> +10%" in line, out
    # ... and pytest-benchmark's own --benchmark-compare-fail verdict.
    assert "Performance has regressed" in out, out


def test_wall_clock_compare_fails_2x_slowdown(suite, tmp_path):
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        pytest.skip(f"load average {load:.1f} above the CPU count: wall-clock verdicts "
                    "measure the other processes")
    target = str(suite / "bench_guard_tiny.py")

    def save_then_compare(attempt=[0]):
        # Each attempt saves its own baseline: on this shared machine a
        # baseline taken during another tenant's burst (CI, session 18:
        # 5.4 ms for a 2.7-3.3 ms matmul) made every compare against it
        # read +23%, so re-comparing alone could not recover.
        attempt[0] += 1
        store = str(tmp_path / f"store{attempt[0]}")
        rc, out = bench_cli("save", "base", "--storage", store, "--", target)
        assert rc == 0, out
        return bench_cli("compare", "base", "--threshold", "40%", "--storage", store, "--",
                         target, twice=True)

    (rc, out), n = attempts(save_then_compare, lambda res: res[0] != 0)
    assert rc != 0, f"a 2x slowdown passed the wall-clock compare ({n} attempts):\n{out}"
    assert "(wall time;" in out and "PERFORMANCE REGRESSION" in out, out


def test_compare_unknown_baseline_is_a_clear_error(tmp_path):
    rc, out = bench_cli("compare", "nope", "--storage", str(tmp_path))
    assert rc != 0
    assert "no baseline named 'nope'" in out, out
