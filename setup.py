"""Build the Cython extension (OpenMP). Metadata is in pyproject.toml."""
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

if sys.platform == "win32":
    omp_compile, omp_link = ["/openmp"], []
elif sys.platform == "darwin":
    omp_compile, omp_link = ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
else:
    omp_compile, omp_link = ["-fopenmp"], ["-fopenmp"]

# Floating-point flags that let gcc vectorise the short dot-product reductions
# in the HALS row sweep without changing NaN/Inf semantics we rely on.
fp_flags = [] if sys.platform == "win32" else [
    "-O3", "-fno-math-errno", "-fno-signed-zeros", "-fno-trapping-math", "-fassociative-math",
]

import platform


def _ext(name, isa_flags=()):
    return Extension(
        f"fastnmf._cy.{name}",
        [f"fastnmf/_cy/{name}.pyx"],
        include_dirs=[np.get_include(), "fastnmf/_cy"],  # hals_tile.h
        extra_compile_args=omp_compile + fp_flags + list(isa_flags),
        extra_link_args=omp_link,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )


# The HALS sweep is built from one source for the baseline ISA and, on
# x86-64, also for AVX2+FMA and for AVX-512 (the widest the CPU has is
# picked at import time: fastnmf/_hals_dispatch.py). The tiled sweep is
# FMA-throughput bound, so the wider vectors matter (README "Where each
# kernel lives").
extensions = [_ext("_hals")]
if sys.platform != "win32" and platform.machine().lower() in ("x86_64", "amd64"):
    extensions.append(_ext("_hals_avx2", ["-mavx2", "-mfma"]))
    extensions.append(_ext("_hals_avx512", ["-mavx512f", "-mavx512vl", "-mavx2", "-mfma"]))

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
