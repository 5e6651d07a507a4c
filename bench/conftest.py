"""pytest-benchmark configuration for the bench/ suite.

    pytest bench --quick             # small sizes only (about a minute)
    pytest bench                     # everything
    pytest bench --benchmark-disable # correctness smoke run, no timing

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


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}thr")
def n_threads(request):
    with fastnmf.threads(request.param):
        yield request.param

