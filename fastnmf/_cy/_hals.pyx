# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# Baseline-ISA build of the HALS sweep (see _hals_impl.pxi).
include "_hals_impl.pxi"
