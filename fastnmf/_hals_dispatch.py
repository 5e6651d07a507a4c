"""Pick the HALS sweep build for this CPU (AVX2+FMA when available).

``FASTNMF_HALS_ISA=baseline`` forces the portable build (used by the tests
to check both builds agree).
"""
from __future__ import annotations

import os

from ._cy import _hals as _baseline


def _cpu_has_avx2_fma() -> bool:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as feats
        except ImportError:
            return False
    return bool(feats.get("AVX2")) and bool(feats.get("FMA3"))


def _select():
    if os.environ.get("FASTNMF_HALS_ISA", "").lower() != "baseline" and _cpu_has_avx2_fma():
        try:
            from ._cy import _hals_avx2
            return _hals_avx2, "avx2"
        except ImportError:
            pass
    return _baseline, "baseline"


_module, HALS_ISA = _select()
hals_update_rows = _module.hals_update_rows
hals_sweeps = _module.hals_sweeps
hals_update_rows_baseline = _baseline.hals_update_rows
