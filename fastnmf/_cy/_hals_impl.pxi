# Shared body of the HALS row-sweep extension(s); included by _hals.pyx and
# _hals_avx2.pyx, which differ only in the instruction set they are compiled
# for (see setup.py and fastnmf/_hals_dispatch.py).
"""HALS / coordinate-descent row sweeps for nonnegative least squares (OpenMP).

Problem, one row at a time: for every row ``x = X[i]`` (length k) minimise
``0.5 x G x^T - c x^T`` subject to ``x >= 0``, with ``c = C[i]`` and a
symmetric positive semidefinite ``G`` (k x k). This is a V-step of NMF /
semi-NMF written for the transposed factor: for ``A ~ U V`` with fixed ``U``,
``G = U^T U``, ``C = A^T U`` and ``X = V^T``.

Rows are independent given G, so a Gauss-Seidel sweep over the k coordinates
of every row is exactly the HALS update of Cichocki / Gillis-Glineur (which
sweeps components for all rows at once). The sweep is done on tiles of TILE
rows (64 float32 / 32 float64): the tile's rows of X and C are transposed
into (k, TILE) thread-local buffers, so the update of coordinate a is a
vector axpy over the tile's rows (``s[r] -= G[a, b] * x[b, r]``) with no
horizontal reduction, and the whole tile stays in L1/L2. That measured 3x
faster than the row-by-row loop (float32, k=50, 60000 rows: see
bench/bench_kernels.py). The tile itself is C (``hals_tile.h``): the axpy
accumulators stay in registers for the whole loop over b, and in the AVX2
build the transposition is done in 8 x 8 register blocks (it was 55% of a
scalar-transposed sweep; the blocks made the sweep 2x faster, 60000 x 50).

Complexity: O(p k^2) flops per sweep; reads and writes X once, reads C
once; 2 k TILE scalars of scratch per thread. GIL released; no validation.
"""
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free

ctypedef fused floating:
    float
    double

cdef extern from "hals_tile.h" nogil:
    enum:
        FN_TILE_F32
        FN_TILE_F64
    double fn_hals_tile_f32(float* X, Py_ssize_t ldx, const float* C, Py_ssize_t ldc,
                            const float* G, Py_ssize_t ldg, Py_ssize_t k, Py_ssize_t nr,
                            float* xT, float* cT)
    double fn_hals_tile_f64(double* X, Py_ssize_t ldx, const double* C, Py_ssize_t ldc,
                            const double* G, Py_ssize_t ldg, Py_ssize_t k, Py_ssize_t nr,
                            double* xT, double* cT)
    void fn_hals_tile_f32_in(const float* X, Py_ssize_t ldx, const float* C, Py_ssize_t ldc,
                             Py_ssize_t k, Py_ssize_t nr, float* xT, float* cT)
    void fn_hals_tile_f64_in(const double* X, Py_ssize_t ldx, const double* C, Py_ssize_t ldc,
                             Py_ssize_t k, Py_ssize_t nr, double* xT, double* cT)
    void fn_hals_tile_f32_out(float* X, Py_ssize_t ldx, Py_ssize_t k, Py_ssize_t nr,
                              const float* xT)
    void fn_hals_tile_f64_out(double* X, Py_ssize_t ldx, Py_ssize_t k, Py_ssize_t nr,
                              const double* xT)
    double fn_hals_tile_f32_core(const float* G, Py_ssize_t ldg, Py_ssize_t k, float* xT,
                                 const float* cT)
    double fn_hals_tile_f64_core(const double* G, Py_ssize_t ldg, Py_ssize_t k, double* xT,
                                 const double* cT)


cdef inline Py_ssize_t _tile(floating* dummy) noexcept nogil:
    if floating is float:
        return FN_TILE_F32
    else:
        return FN_TILE_F64


cdef inline double _sweep_tile(floating* X, Py_ssize_t ldx, const floating* C, Py_ssize_t ldc,
                               const floating* G, Py_ssize_t ldg, Py_ssize_t k, Py_ssize_t nr,
                               floating* xT, floating* cT) noexcept nogil:
    """One sweep over one tile of nr rows (hals_tile.h, register-blocked C)."""
    if floating is float:
        return fn_hals_tile_f32(X, ldx, C, ldc, G, ldg, k, nr, xT, cT)
    else:
        return fn_hals_tile_f64(X, ldx, C, ldc, G, ldg, k, nr, xT, cT)


cdef inline void _tile_in(const floating* X, Py_ssize_t ldx, const floating* C, Py_ssize_t ldc,
                          Py_ssize_t k, Py_ssize_t nr, floating* xT, floating* cT) noexcept nogil:
    if floating is float:
        fn_hals_tile_f32_in(X, ldx, C, ldc, k, nr, xT, cT)
    else:
        fn_hals_tile_f64_in(X, ldx, C, ldc, k, nr, xT, cT)


cdef inline void _tile_out(floating* X, Py_ssize_t ldx, Py_ssize_t k, Py_ssize_t nr,
                           const floating* xT) noexcept nogil:
    if floating is float:
        fn_hals_tile_f32_out(X, ldx, k, nr, xT)
    else:
        fn_hals_tile_f64_out(X, ldx, k, nr, xT)


cdef inline double _tile_core(const floating* G, Py_ssize_t ldg, Py_ssize_t k, floating* xT,
                              const floating* cT) noexcept nogil:
    if floating is float:
        return fn_hals_tile_f32_core(G, ldg, k, xT, cT)
    else:
        return fn_hals_tile_f64_core(G, ldg, k, xT, cT)


# Transposed copies of X and C of at most this many bytes (together) are kept
# for the whole of hals_sweeps (they stay in L2): each tile is transposed in
# once and out once per call instead of once per sweep. Measured (AVX2
# build, one thread, 1797 x 10 float32, 4 sweeps): see README "Kernels".
_RESIDENT_BYTES = 1 << 19


cdef double _sweep_resident(floating* xT, const floating* cT, const floating* gp,
                            Py_ssize_t ldg, Py_ssize_t ntiles, Py_ssize_t k, Py_ssize_t tile,
                            int n_threads) noexcept nogil:
    """One sweep over tiles already transposed into xT / cT (k * tile each)."""
    cdef Py_ssize_t t
    cdef double total = 0.0
    for t in prange(ntiles, schedule="static", num_threads=n_threads):
        total += _tile_core(gp, ldg, k, xT + t * k * tile, cT + t * k * tile)
    return total


cdef double _sweep_all(floating* xp, Py_ssize_t ldx, const floating* cp, Py_ssize_t ldc,
                       const floating* gp, Py_ssize_t ldg, Py_ssize_t p, Py_ssize_t k,
                       int n_threads) noexcept nogil:
    """One sweep over all rows, tiles in parallel; returns sum of squared changes."""
    cdef Py_ssize_t t, nr
    cdef Py_ssize_t tile = _tile(xp)
    cdef Py_ssize_t ntiles = (p + tile - 1) // tile
    cdef double total = 0.0
    cdef floating* xT
    cdef floating* cT
    with parallel(num_threads=n_threads):
        xT = <floating*> malloc(2 * k * tile * sizeof(floating))
        if xT != NULL:
            cT = xT + k * tile
            for t in prange(ntiles, schedule="static"):
                nr = min(tile, p - t * tile)
                total += _sweep_tile(xp + t * tile * ldx, ldx, cp + t * tile * ldc, ldc,
                                     gp, ldg, k, nr, xT, cT)
        free(xT)
    return total


cdef _check(floating[:, :] X, const floating[:, :] C, const floating[:, :] G):
    if C.shape[0] != X.shape[0] or C.shape[1] != X.shape[1] or G.shape[0] != X.shape[1] \
            or G.shape[1] != X.shape[1]:
        raise ValueError("hals sweep: shapes of X, C, G do not match")
    if X.shape[0] and X.shape[1] and (X.strides[1] != sizeof(floating)
                                      or C.strides[1] != sizeof(floating)
                                      or G.strides[1] != sizeof(floating)):
        raise ValueError("hals sweep needs unit stride along the last axis")


def hals_update_rows(floating[:, :] X, const floating[:, :] C, const floating[:, :] G,
                     int n_threads):
    """One in-place sweep over all rows; returns the sum of squared changes.

    X : (p, k) factor, updated in place, kept >= 0.
    C : (p, k) cross products, G : (k, k) Gram matrix, same dtype as X.
    Any row strides; unit stride along the last axis is required.
    """
    cdef double total
    _check(X, C, G)
    if X.shape[0] == 0 or X.shape[1] == 0:
        return 0.0
    with nogil:
        total = _sweep_all(&X[0, 0], X.strides[0] // sizeof(floating), &C[0, 0],
                           C.strides[0] // sizeof(floating), &G[0, 0],
                           G.strides[0] // sizeof(floating), X.shape[0], X.shape[1],
                           max(1, n_threads))
    return total


def hals_sweeps(floating[:, :] X, const floating[:, :] C, const floating[:, :] G,
                int max_sweeps, double inner_tol, int n_threads):
    """Up to ``max_sweeps`` sweeps, stopping once a sweep's squared change is
    <= ``inner_tol`` times the first sweep's (Gillis & Glineur 2012).

    The loop runs in C without the GIL: the small V-side problems need
    hundreds of sweeps, and a Python round trip per sweep cost more than the
    sweep. Returns the number of sweeps run.
    """
    cdef int done = 0
    cdef double first = 0.0, delta
    _check(X, C, G)
    if X.shape[0] == 0 or X.shape[1] == 0 or max_sweeps < 1:
        return 0
    cdef floating* xp = &X[0, 0]
    cdef const floating* cp = &C[0, 0]
    cdef const floating* gp = &G[0, 0]
    cdef Py_ssize_t ldx = X.strides[0] // sizeof(floating)
    cdef Py_ssize_t ldc = C.strides[0] // sizeof(floating)
    cdef Py_ssize_t ldg = G.strides[0] // sizeof(floating)
    cdef Py_ssize_t p = X.shape[0], k = X.shape[1]
    n_threads = max(1, n_threads)
    cdef Py_ssize_t tile = _tile(xp)
    cdef Py_ssize_t ntiles = (p + tile - 1) // tile
    cdef Py_ssize_t t, size = ntiles * k * tile
    cdef floating* buf = NULL
    if max_sweeps > 1 and 2 * size * <Py_ssize_t> sizeof(floating) <= _RESIDENT_BYTES:
        buf = <floating*> malloc(2 * size * sizeof(floating))
    with nogil:
        if buf != NULL:   # small X: transpose once, sweep the resident copies
            for t in range(ntiles):
                _tile_in(xp + t * tile * ldx, ldx, cp + t * tile * ldc, ldc, k,
                         min(tile, p - t * tile), buf + t * k * tile, buf + size + t * k * tile)
        while done < max_sweeps:
            if buf != NULL:
                delta = _sweep_resident(buf, buf + size, gp, ldg, ntiles, k, tile, n_threads)
            else:
                delta = _sweep_all(xp, ldx, cp, ldc, gp, ldg, p, k, n_threads)
            done += 1
            if done == 1:
                first = delta
            elif delta <= inner_tol * first:
                break
        if buf != NULL:
            for t in range(ntiles):
                _tile_out(xp + t * tile * ldx, ldx, k, min(tile, p - t * tile), buf + t * k * tile)
            free(buf)
    return done
