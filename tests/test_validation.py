"""Bad input: every public function raises ValueError/TypeError naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

import fastnmf

M, N, K = 6, 5, 2


def _data():
    rng = np.random.default_rng(0)
    A = rng.uniform(0, 1, (M, N))
    U = rng.uniform(0, 1, (M, K))
    V = rng.uniform(0, 1, (K, N))
    return A, U, V


_A, _U, _V = _data()

# Each public entry point as f(A, **kwargs) with small valid other arguments.
SOLVERS = {
    "nmf": lambda A, **kw: fastnmf.nmf(A, K, max_iter=2, **kw),
    "semi_nmf": lambda A, **kw: fastnmf.semi_nmf(A, K, max_iter=2, **kw),
    "nonlinear_semi_nmf": lambda A, **kw: fastnmf.nonlinear_semi_nmf(A, K, max_iter=2, **kw),
    "relu_lstsq-U": lambda A, **kw: fastnmf.relu_lstsq(A, _U, _V, update="U", n_iter=2, **kw),
    "relu_lstsq-V": lambda A, **kw: fastnmf.relu_lstsq(A, _U, _V, update="V", n_iter=2, **kw),
    "ridge_lstsq": lambda A, **kw: fastnmf.ridge_lstsq(A, _V, **kw),
    "nnls": lambda A, **kw: fastnmf.nnls(A, _U, max_iter=2, **kw),
}
NONNEG_REQUIRED = {"nmf", "nonlinear_semi_nmf", "relu_lstsq-U", "relu_lstsq-V"}
FACTORIZATIONS = {
    "nmf": fastnmf.nmf, "semi_nmf": fastnmf.semi_nmf,
    "nonlinear_semi_nmf": fastnmf.nonlinear_semi_nmf,
}
ALL = pytest.mark.parametrize("name", list(SOLVERS))
FACT = pytest.mark.parametrize("name", list(FACTORIZATIONS))


def _with(value, i=1, j=2, base=_A):
    A = base.copy()
    A[i, j] = value
    return A


# --------------------------------------------------------------------------
# The data matrix A
# --------------------------------------------------------------------------
@ALL
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_A(name, bad):
    with pytest.raises(ValueError, match=r"^A contains NaN or Inf"):
        SOLVERS[name](_with(bad))


@ALL
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_A_float32_too(name, dtype):
    with pytest.raises(ValueError, match=r"^A contains NaN or Inf"):
        SOLVERS[name](_with(np.nan).astype(dtype))


@ALL
def test_trusted_data_skips_only_the_value_scans(name):
    """Inside fastnmf.trusted_data() the NaN/Inf and sign scans are skipped
    (the caller vouches for its arrays); shapes and types are still checked,
    and the checks are back on after the block, also after an error."""
    A = _with(-0.5) if name in NONNEG_REQUIRED else _with(np.nan)
    with fastnmf.trusted_data():
        try:                                  # no scan: not our ValueError
            SOLVERS[name](A)
        except np.linalg.LinAlgError:
            pass                              # NaN reached LAPACK (undefined, as documented)
        with pytest.raises(ValueError, match=r"^A must be a 2-D array"):
            SOLVERS[name](np.ones(N))
        with pytest.raises(TypeError, match=r"^A has complex dtype"):
            SOLVERS[name](_A.astype(complex))
    with pytest.raises(ValueError, match=r"^A (contains NaN|must be nonnegative)"):
        SOLVERS[name](A)
    with pytest.raises(RuntimeError):
        with fastnmf.trusted_data():
            raise RuntimeError
    with pytest.raises(ValueError, match=r"^A (contains NaN|must be nonnegative)"):
        SOLVERS[name](A)


def test_trusted_data_is_per_thread():
    import threading
    seen = []

    def other():
        try:
            SOLVERS["nmf"](_with(np.nan))
        except ValueError as exc:
            seen.append(str(exc))

    with fastnmf.trusted_data():
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen and seen[0].startswith("A contains NaN or Inf")


@ALL
def test_negative_A(name):
    A = _with(-0.5)
    if name in NONNEG_REQUIRED:
        with pytest.raises(ValueError, match=r"^A must be nonnegative"):
            SOLVERS[name](A)
    else:  # semi-NMF, ridge and NNLS take data of any sign
        out = SOLVERS[name](A)
        assert np.isfinite(out if isinstance(out, np.ndarray) else out.V).all()


@ALL
@pytest.mark.parametrize("shape", [(0, N), (M, 0), (0, 0)])
def test_empty_A(name, shape):
    with pytest.raises(ValueError, match=r"^A is empty"):
        SOLVERS[name](np.zeros(shape))


@ALL
@pytest.mark.parametrize("A", [np.ones(N), np.ones((2, M, N)), np.float64(1.0)],
                         ids=["1-D", "3-D", "0-D"])
def test_wrong_ndim_A(name, A):
    with pytest.raises(ValueError, match=r"^A must be a 2-D array"):
        SOLVERS[name](A)


@ALL
@pytest.mark.parametrize("A", [
    np.full((M, N), "x"), np.full((M, N), b"x"), np.full((M, N), 1.0, dtype=object),
    np.zeros((M, N), dtype="M8[s]"), [["a", "b"], ["c", "d"]],
], ids=["str", "bytes", "object", "datetime", "list-of-str"])
def test_non_numeric_A(name, A):
    with pytest.raises(TypeError, match=r"^A has non-numeric dtype"):
        SOLVERS[name](A)


@ALL
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_A(name, dtype):
    with pytest.raises(TypeError, match=r"^A has complex dtype"):
        SOLVERS[name](_A.astype(dtype))


@pytest.mark.parametrize("name", [n for n in SOLVERS
                                  if n not in ("nmf", "nnls", "semi_nmf", "ridge_lstsq")])
@pytest.mark.parametrize("kind", ["csr_matrix", "csc_matrix", "coo_matrix", "csr_array"])
def test_sparse_A(name, kind):
    """Only nmf, semi_nmf, nnls and ridge_lstsq take sparse data
    (tests/test_sparse.py); the others say so."""
    S = getattr(scipy.sparse, kind)(_A)
    with pytest.raises(TypeError, match=r"^A is a sparse matrix; .*only fastnmf.nmf, semi_nmf, "
                                        r"nnls and ridge_lstsq"):
        SOLVERS[name](S)


@ALL
def test_ragged_A(name):
    with pytest.raises(TypeError, match=r"^A could not be converted"):
        SOLVERS[name]([[1.0, 2.0], [3.0]])


@ALL
@pytest.mark.parametrize("dtype,exc", [(np.int32, ValueError), (np.float16, ValueError),
                                       (np.complex128, ValueError), ("nonsense", TypeError)])
def test_bad_dtype_argument(name, dtype, exc):
    with pytest.raises(exc, match=r"^dtype must be numpy.float32 or numpy.float64"):
        SOLVERS[name](_A, dtype=dtype)


# --------------------------------------------------------------------------
# rank and scalar options
# --------------------------------------------------------------------------
@FACT
@pytest.mark.parametrize("rank", [0, -1])
def test_rank_below_one(name, rank):
    with pytest.raises(ValueError, match=r"^rank must be >= 1"):
        FACTORIZATIONS[name](_A, rank)


@FACT
@pytest.mark.parametrize("rank", [2.5, 2.0, "3", True, False, None, np.float64(2.0)])
def test_rank_not_an_integer(name, rank):
    with pytest.raises(TypeError, match=r"^rank must be an integer"):
        FACTORIZATIONS[name](_A, rank)


@FACT
def test_rank_numpy_integer_accepted(name):
    res = FACTORIZATIONS[name](_A, np.int64(2), max_iter=1)
    assert res.U.shape == (M, 2)


@pytest.mark.parametrize("call,arg", [
    (lambda v: fastnmf.nmf(_A, K, solver=v), "solver"),
    (lambda v: fastnmf.semi_nmf(_A, K, solver=v), "solver"),
    (lambda v: fastnmf.nnls(_A, _U, solver=v), "solver"),
    (lambda v: fastnmf.nmf(_A, K, init=v), "init"),
    (lambda v: fastnmf.semi_nmf(_A, K, init=v), "init"),
    (lambda v: fastnmf.nonlinear_semi_nmf(_A, K, init=v), "init"),
    (lambda v: fastnmf.nonlinear_semi_nmf(_A, K, activation=v), "activation"),
    (lambda v: fastnmf.relu_lstsq(_A, _U, _V, update=v), "update"),
])
@pytest.mark.parametrize("value", ["bogus", "", None, 3])
def test_unknown_names(call, arg, value):
    with pytest.raises(ValueError, match=rf"^{arg} must be one of"):
        call(value)


def test_name_choices_are_case_sensitive():
    with pytest.raises(ValueError, match=r"^solver must be one of"):
        fastnmf.nmf(_A, K, solver="HALS")
    with pytest.raises(ValueError, match=r"^update must be one of"):
        fastnmf.relu_lstsq(_A, _U, _V, update="u")


ITER_ARGS = [
    (lambda v: fastnmf.nmf(_A, K, max_iter=v), "max_iter"),
    (lambda v: fastnmf.semi_nmf(_A, K, max_iter=v), "max_iter"),
    (lambda v: fastnmf.nonlinear_semi_nmf(_A, K, max_iter=v), "max_iter"),
    (lambda v: fastnmf.nnls(_A, _U, max_iter=v), "max_iter"),
    (lambda v: fastnmf.relu_lstsq(_A, _U, _V, n_iter=v), "n_iter"),
]


@pytest.mark.parametrize("call,arg", ITER_ARGS)
def test_negative_iteration_count(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg} must be >= 0"):
        call(-1)


@pytest.mark.parametrize("call,arg", ITER_ARGS)
@pytest.mark.parametrize("value", [2.0, "3", True])
def test_non_integer_iteration_count(call, arg, value):
    with pytest.raises(TypeError, match=rf"^{arg} must be an integer"):
        call(value)


@pytest.mark.parametrize("call,arg", [
    (lambda v: fastnmf.nmf(_A, K, n_inner=v), "n_inner"),
    (lambda v: fastnmf.semi_nmf(_A, K, n_inner=v), "n_inner"),
    (lambda v: fastnmf.nonlinear_semi_nmf(_A, K, n_inner=v), "n_inner"),
])
def test_n_inner_below_one(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg} must be >= 1"):
        call(0)


NONNEG_FLOATS = [
    (lambda v: fastnmf.nmf(_A, K, tol=v), "tol"),
    (lambda v: fastnmf.semi_nmf(_A, K, tol=v), "tol"),
    (lambda v: fastnmf.nonlinear_semi_nmf(_A, K, tol=v), "tol"),
    (lambda v: fastnmf.nnls(_A, _U, tol=v), "tol"),
    (lambda v: fastnmf.nmf(_A, K, inner_tol=v), "inner_tol"),
    (lambda v: fastnmf.semi_nmf(_A, K, alpha=v), "alpha"),
    (lambda v: fastnmf.nonlinear_semi_nmf(_A, K, alpha=v), "alpha"),
    (lambda v: fastnmf.relu_lstsq(_A, _U, _V, alpha=v), "alpha"),
    (lambda v: fastnmf.relu_lstsq(_A, _U, _V, update="V", alpha=v), "alpha"),
    (lambda v: fastnmf.ridge_lstsq(_A, _V, alpha=v), "alpha"),
    (lambda v: fastnmf.relu_lstsq(_A, _U, _V, update="V", step_at_zero=v), "step_at_zero"),
]
POS_FLOATS = [
    (lambda v: fastnmf.nonlinear_semi_nmf(_A, K, omega=v), "omega"),
    (lambda v: fastnmf.relu_lstsq(_A, _U, _V, omega=v), "omega"),
    (lambda v: fastnmf.relu_lstsq(_A, _U, _V, update="V", omega=v), "omega"),
    (lambda v: fastnmf.nmf(_A, K, solver="mu", eps=v), "eps"),
    (lambda v: fastnmf.semi_nmf(_A, K, solver="mu", eps=v), "eps"),
    (lambda v: fastnmf.nnls(_A, _U, solver="mu", eps=v), "eps"),
    (lambda v: fastnmf.nmf(_A, K, inner_alpha=v), "inner_alpha"),
]


@pytest.mark.parametrize("call,arg", NONNEG_FLOATS)
def test_negative_nonneg_scalar(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg} must be >= 0"):
        call(-1e-3)


@pytest.mark.parametrize("call,arg", POS_FLOATS)
@pytest.mark.parametrize("value", [0.0, 0, -1.0])
def test_non_positive_positive_scalar(call, arg, value):
    with pytest.raises(ValueError, match=rf"^{arg} must be > 0"):
        call(value)


BAD_SCALARS = [
    (np.nan, ValueError, "must be finite"), (np.inf, ValueError, "must be finite"),
    ("0.1", TypeError, "must be a real number"), (None, TypeError, "must be a real number"),
    (True, TypeError, "must be a real number"), (1j, TypeError, "must be a real number"),
]


@pytest.mark.parametrize("call,arg,value,exc,msg", [
    (call, arg, *bad) for call, arg in NONNEG_FLOATS + POS_FLOATS for bad in BAD_SCALARS
    if not (arg == "eps" and bad[0] is None)  # eps=None is the documented default
])
def test_bad_scalar_types(call, arg, value, exc, msg):
    with pytest.raises(exc, match=rf"^{arg} {msg}"):
        call(value)


@FACT
@pytest.mark.parametrize("rs", ["seed", 1.5, True, [1, 2]])
def test_bad_random_state(name, rs):
    with pytest.raises(TypeError, match=r"^random_state must be"):
        FACTORIZATIONS[name](_A, K, random_state=rs)


@FACT
@pytest.mark.parametrize("rs", [None, 7, np.random.default_rng(1), np.random.RandomState(2),
                                np.random.SeedSequence(3)])
def test_good_random_state(name, rs):
    assert FACTORIZATIONS[name](_A, K, random_state=rs, max_iter=1).n_iter == 1


# --------------------------------------------------------------------------
# Factor arguments: init pairs, U / V / V0
# --------------------------------------------------------------------------
@FACT
@pytest.mark.parametrize("which,bad,pattern", [
    (0, np.ones((M + 1, K)), r"^init\[0\] \(U0\) must have shape \(6, 2\)"),
    (0, np.ones((M, K + 1)), r"^init\[0\] \(U0\) must have shape \(6, 2\)"),
    (0, np.ones(M), r"^init\[0\] \(U0\) must be a 2-D array"),
    (1, np.ones((K, N + 1)), r"^init\[1\] \(V0\) must have shape \(2, 5\)"),
    (1, np.ones((N, K)), r"^init\[1\] \(V0\) must have shape \(2, 5\)"),
    (1, -np.ones((K, N)), r"^init\[1\] \(V0\) must be nonnegative"),
    (0, np.full((M, K), np.nan), r"^init\[0\] \(U0\) contains NaN or Inf"),
    (1, np.full((K, N), np.inf), r"^init\[1\] \(V0\) contains NaN or Inf"),
])
def test_bad_init_pair(name, which, bad, pattern):
    pair = [_U, _V]
    pair[which] = bad
    with pytest.raises(ValueError, match=pattern):
        FACTORIZATIONS[name](_A, K, init=tuple(pair))


@FACT
def test_init_pair_of_wrong_length(name):
    with pytest.raises(ValueError, match=r"^init must be a method name or a \(U0, V0\) pair"):
        FACTORIZATIONS[name](_A, K, init=(_U, _V, _V))


def test_negative_U0_only_rejected_by_nmf():
    Uneg = -_U
    with pytest.raises(ValueError, match=r"^init\[0\] \(U0\) must be nonnegative"):
        fastnmf.nmf(_A, K, init=(Uneg, _V))
    assert fastnmf.semi_nmf(_A, K, init=(Uneg, _V), max_iter=1).n_iter == 1
    assert fastnmf.nonlinear_semi_nmf(_A, K, init=(Uneg, _V), max_iter=1).n_iter == 1


@pytest.mark.parametrize("update", ["U", "V"])
@pytest.mark.parametrize("U,V,pattern", [
    (np.ones((M + 1, K)), _V, r"^U must have 6 rows"),
    (_U, np.ones((K, N + 2)), r"^V must have 5 columns"),
    (np.ones((M, K + 1)), _V, r"^U has 3 columns but V has 2 rows"),
    (np.ones(M), _V, r"^U must be a 2-D array"),
    (_U, np.ones((K, N, 1)), r"^V must be a 2-D array"),
    (np.full((M, K), np.nan), _V, r"^U contains NaN or Inf"),
    (_U, np.full((K, N), np.inf), r"^V contains NaN or Inf"),
])
def test_relu_lstsq_bad_factors(update, U, V, pattern):
    with pytest.raises(ValueError, match=pattern):
        fastnmf.relu_lstsq(_A, U, V, update=update)


@pytest.mark.parametrize("U,V,exc,pattern", [
    (scipy.sparse.csr_matrix(_U), _V, TypeError, r"^U is a sparse matrix"),
    (_U.astype(complex), _V, TypeError, r"^U has complex dtype"),
    (_U, np.full((K, N), "a"), TypeError, r"^V has non-numeric dtype"),
])
def test_relu_lstsq_bad_factor_types(U, V, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastnmf.relu_lstsq(_A, U, V)


def test_relu_lstsq_sparse_V_only_as_the_fixed_factor():
    """A sparse V is the fixed factor of update='U'; with update='V' it is
    the dense starting point, and a sparse one is refused by name. Its
    values are checked as a dense V's are."""
    Vs = scipy.sparse.csr_matrix(_V)
    with pytest.raises(TypeError, match=r"^V may be sparse only with update='U'"):
        fastnmf.relu_lstsq(_A, _U, Vs, update="V")
    bad = Vs.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match=r"^V contains NaN or Inf"):
        fastnmf.relu_lstsq(_A, _U, bad)
    with pytest.raises(ValueError, match=r"^V must have 5 columns"):
        fastnmf.relu_lstsq(_A, _U, scipy.sparse.csr_matrix(np.ones((K, N + 2))))
    with pytest.raises(TypeError, match=r"^V has complex dtype"):
        fastnmf.relu_lstsq(_A, _U, Vs.astype(complex))
    with pytest.raises(ValueError, match=r"the last row of V is not all ones"):
        fastnmf.relu_lstsq(_A, _U, Vs, fixed_ones_row=True)
    assert fastnmf.relu_lstsq(_A, _U, Vs, n_iter=1).U.shape == _U.shape


def test_relu_lstsq_step_at_zero_range():
    with pytest.raises(ValueError, match=r"^step_at_zero must be <= 1, got 1.5"):
        fastnmf.relu_lstsq(_A, _U, _V, update="V", step_at_zero=1.5)
    with pytest.raises(ValueError, match=r"^step_at_zero is only used with update='V'"):
        fastnmf.relu_lstsq(_A, _U, _V, update="U", step_at_zero=0.5)
    fastnmf.relu_lstsq(_A, _U, _V, update="U", step_at_zero=1)   # the default, accepted


def test_relu_lstsq_negative_V():
    with pytest.raises(ValueError, match=r"^V must be nonnegative"):
        fastnmf.relu_lstsq(_A, _U, -_V, update="V")
    # V is only the fixed factor for update="U": any sign is fine there.
    res = fastnmf.relu_lstsq(_A, _U, -_V, update="U", n_iter=1)
    assert np.isfinite(res.U).all()


@pytest.mark.parametrize("update", ["U", "V"])
def test_relu_lstsq_fixed_ones_row_checks(update):
    V = _V.copy()
    V[-1] = 1.0
    V[-1, 2] = 0.999
    with pytest.raises(ValueError, match=r"last row of V is not all ones"):
        fastnmf.relu_lstsq(_A, _U, V, update=update, fixed_ones_row=True)
    with pytest.raises(ValueError, match=r"^fixed_ones_row needs V with at least 2 rows"):
        fastnmf.relu_lstsq(_A, _U[:, :1], np.ones((1, N)), update=update, fixed_ones_row=True)


@pytest.mark.parametrize("U,pattern", [
    (np.ones((M + 1, K)), r"^U must have 6 rows"),
    (np.ones((K, M)), r"^U must have 6 rows"),
    (np.ones(M), r"^U must be a 2-D array"),
    (np.full((M, K), np.nan), r"^U contains NaN or Inf"),
])
def test_nnls_bad_U(U, pattern):
    with pytest.raises(ValueError, match=pattern):
        fastnmf.nnls(_A, U)


@pytest.mark.parametrize("V0,pattern", [
    (np.ones((K + 1, N)), r"^V0 must have shape \(2, 5\)"),
    (np.ones((N, K)), r"^V0 must have shape \(2, 5\)"),
    (-np.ones((K, N)), r"^V0 must be nonnegative"),
    (np.full((K, N), np.nan), r"^V0 contains NaN or Inf"),
])
def test_nnls_bad_V0(V0, pattern):
    with pytest.raises(ValueError, match=pattern):
        fastnmf.nnls(_A, _U, V0=V0)


@pytest.mark.parametrize("kw,pattern", [
    ({"solver": "pgn", "step_at_zero": 1.5}, r"^step_at_zero must be <= 1"),
    ({"solver": "pgn", "step_at_zero": -0.1}, r"^step_at_zero must be >= 0"),
    ({"solver": "pgn", "step_at_zero": "a"}, r"^step_at_zero must be a real number"),
    ({"solver": "mu", "step_at_zero": 0.5}, r"^step_at_zero is only used with solver='pgn'"),
    ({"solver": "pgn", "l1": 0.1}, r"^l1 is not supported with solver='pgn'"),
    ({"solver": "gn"}, r"^solver must be one of .*'pgn'"),
])
def test_nnls_bad_pgn_options(kw, pattern):
    exc = TypeError if kw.get("step_at_zero") == "a" else ValueError
    with pytest.raises(exc, match=pattern):
        fastnmf.nnls(_A, _U, **kw)


def test_nnls_fixed_ones_row_checks():
    V0 = np.ones((K, N))
    V0[-1, 0] = 2.0
    with pytest.raises(ValueError, match=r"last row of V0 is not all ones"):
        fastnmf.nnls(_A, _U, V0=V0, fixed_ones_row=True)
    with pytest.raises(ValueError, match=r"^fixed_ones_row needs U with at least 2 columns"):
        fastnmf.nnls(_A, _U[:, :1], fixed_ones_row=True)


@pytest.mark.parametrize("V,pattern", [
    (np.ones((K, N + 1)), r"^V must have 5 columns"),
    (np.ones(N), r"^V must be a 2-D array"),
    (np.full((K, N), np.inf), r"^V contains NaN or Inf"),
])
def test_ridge_lstsq_bad_V(V, pattern):
    with pytest.raises(ValueError, match=pattern):
        fastnmf.ridge_lstsq(_A, V)
