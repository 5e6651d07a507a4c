/* One HALS (coordinate-descent) sweep over a tile of rows, register-blocked.
 *
 * Included by _hals_impl.pxi (three builds: baseline ISA, AVX2+FMA, and
 * AVX-512, whose 512-bit hot loop uses twice the tile rows; its
 * transpositions are the AVX 8 x 8 / 4 x 4 blocks).
 *
 * Problem, per row x = X[r] (length k): min 0.5 x G x^T - c x^T, x >= 0,
 * one Gauss-Seidel pass over the k coordinates. The tile's rows are held
 * transposed, xT[b * TILE + r], so the update of coordinate a is
 *
 *     s[r] = C[r, a] - sum_b G[a, b] xT[b, r]      (all tile rows r at once)
 *     xT[a, r] = max(0, xT[a, r] + s[r] / G[a, a])
 *
 * The sum over b is the hot loop. Its accumulator s (CHUNK rows) is written
 * as NACC vector variables, so it stays in registers for the whole b loop
 * and each multiply-add costs one load of xT (checked in the disassembly:
 * one broadcast and eight vfnmadd231ps per b). This alone measured within
 * noise of the previous Cython loop, which gcc had already kept in
 * registers; the 2x came from the transposition below, which was 55% of a
 * sweep. GCC/Clang vector extensions: the same source gives 512-bit code in
 * the -mavx512f build, 256-bit code in the -mavx2 build and 128-bit code
 * otherwise.
 *
 * Padding rows (r >= nr) are zero in xT and C, so they stay exactly zero.
 * Complexity: k * k * TILE multiply-adds per tile; xT and cT are k * TILE
 * scalars each (12.5 KiB for k = 50, float) and stay in L1/L2. Measured:
 * bench/bench_kernels.py, README "Kernels: which implementation, measured".
 */
#ifndef FASTNMF_HALS_TILE_H
#define FASTNMF_HALS_TILE_H

#include <stddef.h>

#if defined(__AVX512F__)
#define FN_VBYTES 64
#elif defined(__AVX__)
#define FN_VBYTES 32
#else
#define FN_VBYTES 16
#endif
#define FN_NACC 8                       /* independent accumulators (vectors) */

/* tile rows: a multiple of the chunk FN_NACC * (vector lanes) */
#if FN_VBYTES == 64
#define FN_TILE_F32 128
#define FN_TILE_F64 64
#else
#define FN_TILE_F32 64
#define FN_TILE_F64 32
#endif

typedef float fn_vf __attribute__((vector_size(FN_VBYTES)));
typedef double fn_vd __attribute__((vector_size(FN_VBYTES)));
/* the same, for unaligned loads and stores through a pointer */
typedef float fn_vf_u __attribute__((vector_size(FN_VBYTES), aligned(4), may_alias));
typedef double fn_vd_u __attribute__((vector_size(FN_VBYTES), aligned(8), may_alias));
typedef int fn_vfi __attribute__((vector_size(FN_VBYTES)));
typedef long long fn_vdi __attribute__((vector_size(FN_VBYTES)));

/* ---- tile transposition: X (nr rows, stride ldx) <-> xT (k rows of TILE) ----
 * Scalar transposition is store-bound (one scalar store per element) and
 * measured 55% of a sweep (k = 50, float32). With AVX, full 8 x 8 (float)
 * or 4 x 4 (double) blocks are transposed in registers: 8 vector loads,
 * 24 shuffles, 8 vector stores per 64 elements (SSE2: 4 x 4 / 2 x 2).
 * Partial tiles and the last k % W columns take the scalar path. */
/* rows [0, TILE) x columns [0, kb) of M (stride ld) -> MT (kb rows of TILE), or back */
#define FN_DEFINE_BLOCK_TR(NAME_IN, NAME_OUT, T, V, W, LOADU, STOREU, TR)                 \
static inline void NAME_IN(const T *M, ptrdiff_t ld, ptrdiff_t kb, T *MT, ptrdiff_t tile) \
{                                                                                        \
    ptrdiff_t r0, b0; int i;                                                             \
    for (r0 = 0; r0 < tile; r0 += W)                                                     \
        for (b0 = 0; b0 < kb; b0 += W) {                                                 \
            V v[W];                                                                      \
            for (i = 0; i < W; i++) v[i] = LOADU(M + (r0 + i) * ld + b0);                \
            TR(v);                                                                       \
            for (i = 0; i < W; i++) STOREU(MT + (b0 + i) * tile + r0, v[i]);             \
        }                                                                                \
}                                                                                        \
static inline void NAME_OUT(T *M, ptrdiff_t ld, ptrdiff_t kb, const T *MT, ptrdiff_t tile)\
{                                                                                        \
    ptrdiff_t r0, b0; int i;                                                             \
    for (r0 = 0; r0 < tile; r0 += W)                                                     \
        for (b0 = 0; b0 < kb; b0 += W) {                                                 \
            V v[W];                                                                      \
            for (i = 0; i < W; i++) v[i] = LOADU(MT + (b0 + i) * tile + r0);             \
            TR(v);                                                                       \
            for (i = 0; i < W; i++) STOREU(M + (r0 + i) * ld + b0, v[i]);                \
        }                                                                                \
}

#if defined(__AVX__)
#include <immintrin.h>

static inline void fn_tr8x8_ps(__m256 *r)
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

static inline void fn_tr4x4_pd(__m256d *r)
{
    __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

FN_DEFINE_BLOCK_TR(fn_tr_in_f32, fn_tr_out_f32, float, __m256, 8, _mm256_loadu_ps,
                   _mm256_storeu_ps, fn_tr8x8_ps)
FN_DEFINE_BLOCK_TR(fn_tr_in_f64, fn_tr_out_f64, double, __m256d, 4, _mm256_loadu_pd,
                   _mm256_storeu_pd, fn_tr4x4_pd)
#define FN_BLOCK_W_f32 8
#define FN_BLOCK_W_f64 4
#elif defined(__SSE2__)                 /* baseline x86-64 build: 4 x 4 / 2 x 2 */
#include <emmintrin.h>

static inline void fn_tr4x4_ps(__m128 *r) { _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]); }

static inline void fn_tr2x2_pd(__m128d *r)
{
    __m128d t0 = _mm_unpacklo_pd(r[0], r[1]), t1 = _mm_unpackhi_pd(r[0], r[1]);
    r[0] = t0;
    r[1] = t1;
}

FN_DEFINE_BLOCK_TR(fn_tr_in_f32, fn_tr_out_f32, float, __m128, 4, _mm_loadu_ps,
                   _mm_storeu_ps, fn_tr4x4_ps)
FN_DEFINE_BLOCK_TR(fn_tr_in_f64, fn_tr_out_f64, double, __m128d, 2, _mm_loadu_pd,
                   _mm_storeu_pd, fn_tr2x2_pd)
#define FN_BLOCK_W_f32 4
#define FN_BLOCK_W_f64 2
#else
#define FN_BLOCK_W_f32 0                /* no block transposition: scalar only */
#define FN_BLOCK_W_f64 0
#define fn_tr_in_f32(M, ld, kb, MT, tile) ((void)0)
#define fn_tr_out_f32(M, ld, kb, MT, tile) ((void)0)
#define fn_tr_in_f64(M, ld, kb, MT, tile) ((void)0)
#define fn_tr_out_f64(M, ld, kb, MT, tile) ((void)0)
#endif

/* acc0..acc7 -= g * xb[0 .. 8L): eight independent accumulators, written out
 * so that they live in registers for the whole loop over b. */
#define FN_FMA8(VU, L)                                                                   \
    acc0 -= g * *(const VU *)(xb + 0 * L); acc1 -= g * *(const VU *)(xb + 1 * L);        \
    acc2 -= g * *(const VU *)(xb + 2 * L); acc3 -= g * *(const VU *)(xb + 3 * L);        \
    acc4 -= g * *(const VU *)(xb + 4 * L); acc5 -= g * *(const VU *)(xb + 5 * L);        \
    acc6 -= g * *(const VU *)(xb + 6 * L); acc7 -= g * *(const VU *)(xb + 7 * L);

/* x <- max(0, x + acc * inv) on one vector; adds the squared change to d2.
 * NaN stays NaN (only negative values are cleared), like the scalar code. */
#define FN_UPDATE(VT, VU, VI, ACC, J, L)                                                  \
    {                                                                                    \
        VT old = *(VU *)(xa + (J) * L);                                                  \
        VT nw = old + ACC * inv;                                                         \
        VI neg = nw < zero;                                                              \
        VT d;                                                                            \
        nw = (VT)((VI)nw & ~neg);                                                        \
        d = nw - old;                                                                    \
        d2 += d * d;                                                                     \
        *(VU *)(xa + (J) * L) = nw;                                                      \
    }

/* A tile sweep in three parts, so that a caller running several sweeps on a
 * small matrix can keep every tile transposed between sweeps (NAME_in once,
 * NAME_core per sweep, NAME_out once): at k = 10 the transpositions are
 * about half of a sweep. NAME does all three, for one sweep. The same
 * arithmetic either way: results are bitwise equal. */
#define FN_DEFINE_TILE_SWEEP(NAME, T, VT, VU, VI, TILE, BW, TR_IN, TR_OUT)                \
static void NAME##_in(const T *X, ptrdiff_t ldx, const T *C, ptrdiff_t ldc, ptrdiff_t k, \
                      ptrdiff_t nr, T *xT, T *cT)                                        \
{                                                                                        \
    ptrdiff_t b, r;                                                                      \
    /* columns [0, kb) by register blocks when the tile is full */                       \
    const ptrdiff_t kb = (BW && nr == TILE) ? k - k % (BW ? BW : 1) : 0;                 \
    if (kb) {                                                                            \
        TR_IN(X, ldx, kb, xT, TILE);                                                     \
        TR_IN(C, ldc, kb, cT, TILE);                                                     \
    }                                                                                    \
    for (b = kb; b < k; b++) {                                                           \
        for (r = 0; r < nr; r++) {                                                       \
            xT[b * TILE + r] = X[r * ldx + b];                                           \
            cT[b * TILE + r] = C[r * ldc + b];                                           \
        }                                                                                \
        for (r = nr; r < TILE; r++) {                                                    \
            xT[b * TILE + r] = 0;                                                        \
            cT[b * TILE + r] = 0;                                                        \
        }                                                                                \
    }                                                                                    \
}                                                                                        \
static void NAME##_out(T *X, ptrdiff_t ldx, ptrdiff_t k, ptrdiff_t nr, const T *xT)      \
{                                                                                        \
    ptrdiff_t b, r;                                                                      \
    const ptrdiff_t kb = (BW && nr == TILE) ? k - k % (BW ? BW : 1) : 0;                 \
    if (kb) TR_OUT(X, ldx, kb, xT, TILE);                                                \
    for (b = kb; b < k; b++)                                                             \
        for (r = 0; r < nr; r++)                                                         \
            X[r * ldx + b] = xT[b * TILE + r];                                           \
}                                                                                        \
static double NAME##_core(const T *G, ptrdiff_t ldg, ptrdiff_t k, T *xT, const T *cT)    \
{                                                                                        \
    enum { L = FN_VBYTES / sizeof(T), CHUNK = FN_NACC * L };                             \
    ptrdiff_t a, b, h;                                                                   \
    int i;                                                                               \
    double delta = 0.0;                                                                  \
    const VT zero = {0};                                                                 \
    for (a = 0; a < k; a++) {                                                            \
        const T gaa = G[a * ldg + a];                                                    \
        const T *ga = G + a * ldg;                                                       \
        T inv;                                                                           \
        /* Dead component: x[a] does not affect the fit. Leave it (zeroing it */         \
        /* would zero the other factor's Gram diagonal and kill it for good). */        \
        if (!(gaa > 0)) continue;                                                        \
        inv = 1 / gaa;                                                                   \
        for (h = 0; h < TILE; h += CHUNK) {                                              \
            const T *ca = cT + a * TILE + h;                                             \
            T *xa = xT + a * TILE + h;                                                   \
            VT acc0 = *(const VU *)(ca + 0 * L), acc1 = *(const VU *)(ca + 1 * L);       \
            VT acc2 = *(const VU *)(ca + 2 * L), acc3 = *(const VU *)(ca + 3 * L);       \
            VT acc4 = *(const VU *)(ca + 4 * L), acc5 = *(const VU *)(ca + 5 * L);       \
            VT acc6 = *(const VU *)(ca + 6 * L), acc7 = *(const VU *)(ca + 7 * L);       \
            VT d2 = zero;                                                                \
            for (b = 0; b < k; b++) {                                                    \
                const T g = ga[b];                                                       \
                const T *xb = xT + b * TILE + h;                                         \
                FN_FMA8(VU, L)                                                           \
            }                                                                            \
            FN_UPDATE(VT, VU, VI, acc0, 0, L) FN_UPDATE(VT, VU, VI, acc1, 1, L)          \
            FN_UPDATE(VT, VU, VI, acc2, 2, L) FN_UPDATE(VT, VU, VI, acc3, 3, L)          \
            FN_UPDATE(VT, VU, VI, acc4, 4, L) FN_UPDATE(VT, VU, VI, acc5, 5, L)          \
            FN_UPDATE(VT, VU, VI, acc6, 6, L) FN_UPDATE(VT, VU, VI, acc7, 7, L)          \
            for (i = 0; i < (int)L; i++) delta += d2[i];                                 \
        }                                                                                \
    }                                                                                    \
    return delta;                                                                        \
}                                                                                        \
static double NAME(T *X, ptrdiff_t ldx, const T *C, ptrdiff_t ldc, const T *G,            \
                   ptrdiff_t ldg, ptrdiff_t k, ptrdiff_t nr, T *xT, T *cT)                \
{                                                                                        \
    double delta;                                                                        \
    NAME##_in(X, ldx, C, ldc, k, nr, xT, cT);                                            \
    delta = NAME##_core(G, ldg, k, xT, cT);                                              \
    NAME##_out(X, ldx, k, nr, xT);                                                       \
    return delta;                                                                        \
}

FN_DEFINE_TILE_SWEEP(fn_hals_tile_f32, float, fn_vf, fn_vf_u, fn_vfi, FN_TILE_F32,
                     FN_BLOCK_W_f32, fn_tr_in_f32, fn_tr_out_f32)
FN_DEFINE_TILE_SWEEP(fn_hals_tile_f64, double, fn_vd, fn_vd_u, fn_vdi, FN_TILE_F64,
                     FN_BLOCK_W_f64, fn_tr_in_f64, fn_tr_out_f64)

#endif
