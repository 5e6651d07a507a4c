"""Several Numba builds of one loop body (parallel and serial), cached apart.

Numba's on-disk cache (``cache=True``) files a function's machine code under
its module, qualified name and bytecode, not under the options it was
compiled with. Two dispatchers made from one Python function, say
``njit(parallel=True)(body)`` and ``njit(body)``, therefore share one cache
entry: whichever compiles first writes it, and the other then loads that
code instead of compiling its own (a "serial" build running the parallel
code, with its launch cost, or a "parallel" build running serially).
:func:`njit_build` gives every build its own copy of the function under its
own qualified name, so each is compiled and cached as itself.
"""
from __future__ import annotations

import types

from numba import njit


def njit_build(body, name: str, **options):
    """``njit(cache=True, **options)`` of a copy of ``body`` named ``name``.

    ``name`` must be unique within body's module (it names the cache files).
    The copy shares body's code, globals and defaults.
    """
    fn = types.FunctionType(body.__code__, body.__globals__, name, body.__defaults__,
                            body.__closure__)
    fn.__qualname__ = name
    fn.__module__ = body.__module__
    fn.__doc__ = body.__doc__
    return njit(cache=True, **options)(fn)
