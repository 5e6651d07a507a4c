"""Pick the HALS sweep build for this CPU: AVX-512, else AVX2+FMA, else the
portable baseline.

``FASTNMF_HALS_ISA`` forces a narrower build: ``avx2`` or ``baseline``
(used by the tests to check that the builds agree, and by the benchmarks
to compare them).
"""
from __future__ import annotations

import importlib
import os

from ._cy import _hals as _baseline


def _cpu_features() -> dict:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as feats
        except ImportError:
            return {}
    return feats


def _cpu_has(*names) -> bool:
    feats = _cpu_features()
    return all(feats.get(n) for n in names)


# widest first: (name, module, CPU features it needs)
_BUILDS = (("avx512", "_hals_avx512", ("AVX512F", "AVX512VL", "AVX2", "FMA3")),
           ("avx2", "_hals_avx2", ("AVX2", "FMA3")))


def load_build(name):
    """The compiled module of build ``name`` if it exists and this CPU runs it,
    else None (``"baseline"`` always exists)."""
    if name == "baseline":
        return _baseline
    for build, module, needs in _BUILDS:
        if build == name and _cpu_has(*needs):
            try:
                return importlib.import_module(f"._cy.{module}", __package__)
            except ImportError:
                return None
    return None


def _select():
    forced = os.environ.get("FASTNMF_HALS_ISA", "").lower()
    names = [b for b, _, _ in _BUILDS]
    if forced == "baseline":
        return _baseline, "baseline"
    start = names.index(forced) if forced in names else 0
    for name in names[start:]:
        module = load_build(name)
        if module is not None:
            return module, name
    return _baseline, "baseline"


_module, HALS_ISA = _select()
hals_update_rows = _module.hals_update_rows
hals_sweeps = _module.hals_sweeps
hals_update_rows_baseline = _baseline.hals_update_rows
