"""pytest-benchmark configuration for the bench/ suite.

    pytest bench --quick             # small and medium sizes only (python -m bench quick)
    pytest bench                     # everything (python -m bench full)
    pytest bench --benchmark-disable # correctness smoke run, no timing

``python -m bench`` (bench/__main__.py) wraps these with baselines, compare
and report; see the README section "Benchmarks".

Numba kernels are compiled in each benchmark's untimed setup (warm-up
round), never inside a timed round.
"""
import fastnmf  # noqa: I001 -- before numpy where possible (short BLAS spin)
import pytest


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true", help="only the small problem sizes")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--quick"):
        skip = pytest.mark.skip(reason="--quick: large sizes skipped")
        for item in items:
            if "large" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "large: a large problem size (skipped by --quick)")
    import _floor
    timer = config.getoption("benchmark_timer", None)
    if callable(timer):   # GEMM floors on the benchmarks' own clock
        _floor.TIMER = timer


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}thr")
def n_threads(request):
    with fastnmf.threads(request.param):
        yield request.param

