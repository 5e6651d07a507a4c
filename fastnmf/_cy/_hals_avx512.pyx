# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# AVX-512 build of the HALS sweep (see _hals_impl.pxi); imported only on CPUs with AVX-512F (and AVX2+FMA).
include "_hals_impl.pxi"
