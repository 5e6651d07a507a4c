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

extensions = [
    Extension(
        "fastnmf._cy._hals",
        ["fastnmf/_cy/_hals.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=omp_compile + fp_flags,
        extra_link_args=omp_link,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

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
