# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# AVX2+FMA build of the HALS sweep (see _hals_impl.pxi); imported only on CPUs that have both.
include "_hals_impl.pxi"
