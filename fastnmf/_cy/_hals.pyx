# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""HALS / coordinate-descent row sweeps for nonnegative least squares (OpenMP).

Problem solved, one row at a time: for every row ``x = X[i]`` (length k)
minimise ``0.5 x G x^T - c x^T`` subject to ``x >= 0``, with ``c = C[i]`` and a
symmetric positive semidefinite ``G`` (k x k). This is the V-step of NMF /
semi-NMF written for the transposed factor: for ``A ~ U V`` with fixed ``U``,
``G = U^T U`` and ``C = A^T U`` and ``X = V^T``.

Rows are independent, so one Gauss-Seidel sweep over the k coordinates of
every row gives exactly the HALS update of Cichocki / Gillis-Glineur (which
sweeps over components for all rows at once); doing it row by row keeps the
k-length row, its cross-product row and ``G`` in cache and parallelises over
rows with no synchronisation.

Complexity: O(p k^2) flops per sweep, reads X, C once. No allocation, no
validation, GIL released. ``X`` and ``C`` may be column slices (row stride
larger than k) as long as their last axis is contiguous; same for ``G``.
"""
from cython.parallel cimport prange

ctypedef fused floating:
    float
    double


cdef inline double _sweep_row(floating* x, const floating* c, const floating* g,
                              Py_ssize_t ldg, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t a, b
    cdef floating s, gaa, new, diff
    cdef double delta = 0.0
    for a in range(k):
        gaa = g[a * ldg + a]
        if gaa <= 0:
            # Component a has no energy in the fixed factor, so x[a] does not
            # affect the fit. Leave it as it is: zeroing it would make the
            # other factor's Gram diagonal zero too and kill the component
            # for good, while keeping it lets the next step revive it.
            continue
        s = c[a]
        for b in range(k):
            s = s - g[a * ldg + b] * x[b]
        new = x[a] + s / gaa
        if new < 0:
            new = 0
        diff = new - x[a]
        delta += <double>diff * diff
        x[a] = new
    return delta


def hals_update_rows(floating[:, :] X, const floating[:, :] C,
                     const floating[:, :] G, int n_threads):
    """One in-place sweep over all rows; returns sum of squared changes (float).

    X : (p, k) factor, updated in place, kept >= 0.
    C : (p, k) cross products, G : (k, k) Gram matrix, same dtype as X.
    """
    cdef Py_ssize_t p = X.shape[0]
    cdef Py_ssize_t k = X.shape[1]
    cdef Py_ssize_t ldx = X.strides[0] // sizeof(floating)
    cdef Py_ssize_t ldc = C.strides[0] // sizeof(floating)
    cdef Py_ssize_t ldg = G.strides[0] // sizeof(floating)
    cdef Py_ssize_t i
    cdef double total = 0.0
    if p == 0 or k == 0:
        return 0.0
    if X.strides[1] != sizeof(floating) or C.strides[1] != sizeof(floating) \
            or G.strides[1] != sizeof(floating):
        raise ValueError("hals_update_rows needs unit stride along the last axis")
    cdef floating* xp = &X[0, 0]
    cdef const floating* cp = &C[0, 0]
    cdef const floating* gp = &G[0, 0]
    if n_threads < 1:
        n_threads = 1
    with nogil:
        for i in prange(p, schedule="static", num_threads=n_threads):
            total += _sweep_row(xp + i * ldx, cp + i * ldc, gp, ldg, k)
    return total
