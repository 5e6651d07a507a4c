"""Single-block ReLU least squares: ``min_U ||A - relu(U V)||`` or ``min_{V>=0}``."""
from __future__ import annotations

import time

import numpy as np

from . import _blocks as B
from ._kernels import all_ones
from ._comm import as_comm, collective
from ._threads import sized_by, columns_of_second
from .fixed_gram import FixedGram
from .implicit_gram import ImplicitGram
from ._result import FactorizationResult
from ._sparse import SparseData, check_sparse, is_sparse
from ._validation import check_choice, check_distributed, check_float, check_int, check_matrix
from ._workspace import scratch

__all__ = ["relu_lstsq"]


def check_ones_row(V, name: str):
    if V.shape[0] < 2:
        raise ValueError(f"fixed_ones_row needs {name} with at least 2 rows (free rows + ones row)")
    if isinstance(V, SparseData):   # its last row, from the CSR arrays of V
        lo, hi = int(V.indptr[-2]), int(V.indptr[-1])
        if hi - lo != V.shape[1] or not (V.data[lo:hi] == 1).all():
            raise ValueError(f"fixed_ones_row=True but the last row of {name} is not all ones")
        return
    if not all_ones(V[-1]):
        raise ValueError(f"fixed_ones_row=True but the last row of {name} is not all ones")


def check_fixed_row(V, name: str):
    """``fixed_last_row``: V needs a free row besides the fixed one (its
    values, >= 0, are checked with the rest of V)."""
    if V.shape[0] < 2:
        raise ValueError(f"fixed_last_row needs {name} with at least 2 rows (free rows + "
                         "the fixed row)")


@sized_by(columns_of_second)
def relu_lstsq(A, U, V, *, update="U", n_iter=10, omega=1.0, alpha=0.0, fixed_ones_row=False,
               fixed_last_row=False, final_error=True, overwrite=False, fixed_gram=None, l2=0.0,
               l2_trace=0.0,
               model=None, step_at_zero=1.0, dtype=None, comm=None):
    """Solve one block of ``A ~ relu(U V)`` with the other factor fixed.

    ``update="U"``: ``min_U ||A - relu(U V)||_F^2 (+ l2 ||U||^2)`` (U free).
    ``update="V"``: ``min_{V >= 0} ||A - relu(U V)||_F^2``. Both by the
    fixed-point iterations of method.md section 2, whose pseudo-inverse
    carries the ridge ``alpha`` (a damping of each step, as in method.md:
    it does not change the fixed point); the fixed factor's regularised Gram
    matrix is Cholesky-factored once per call.

    Parameters
    ----------
    A : array_like, shape (m, n), nonnegative
        Target (e.g. a ReLU layer's output). C or F order, or a column or
        row slice of such an array (``H[:, :k].T``: a padded layout), not
        copied.
    U : array_like, shape (m, k)
        Starting point (``update="U"``) or fixed factor (``update="V"``).
    V : array_like, shape (k, n)
        Fixed factor (``update="U"``) or starting point, >= 0
        (``update="V"``). With ``update="U"`` it may be sparse (a
        scipy.sparse matrix, or :func:`fastnmf.sparse_data` of one to skip
        its conversion on repeated calls; e.g. a network's sparse input):
        its products are then O(m nnz) compiled loops, its Gram matrix
        (unless ``fixed_gram``) an O(sum over columns of nnz^2) one.
    update : {"U", "V"}, default "U"
    n_iter : int >= 0, default 10
    omega : float > 0, default 1.0
        Relaxation factor of the fixed-point step.
    alpha : float >= 0, default 0
        Ridge lambda added to the fixed factor's Gram matrix in the
        pseudo-inverse (method.md's lambda): damps every step.
    l2 : float >= 0, default 0
        ``update="U"`` only: weight decay ``l2 ||U||^2`` in the objective;
        each step is ``(R V^T - l2 U) (V V^T + (alpha + l2) I)^{-1}``, the
        minimiser of the linearised penalised problem.
    l2_trace : float >= 0, default 0
        ``update="U"`` only: more weight decay in proportion to the fixed
        factor's size, ``l2_trace * trace(V V^T) = l2_trace * ||V||_F^2``
        added to ``l2`` (a decay that scales with the data, as a network
        layer's does with its input). Read off the Gram matrix the step
        factors anyway: no pass over V of its own.
    fixed_ones_row : bool, default False
        The last row of V is a constant row of ones (a bias input; then the
        last column of U is the bias). With ``update="V"`` that row is never
        changed: the step solves for the free rows only, with the Gram matrix
        of the first k - 1 columns of U ("constrained" semi-NMF). V's last
        row must be exactly ones.
    fixed_last_row : bool, default False
        As ``fixed_ones_row``, but the fixed last row of V may hold any
        values (>= 0 with ``update="V"``). Per-sample weights w_j: scale
        column j of A and of V, fixed row included, by ``sqrt(w_j)``; the
        solve is then the weighted one, ``min sum_j w_j ||a_j -
        relu(U v_j)||^2`` (a ReLU is positively homogeneous), and with
        ``update="V"`` returns the weighted problem's columns times
        ``sqrt(w_j)``. This is how :class:`fastnmf_dnn.NMFNetClassifier`
        takes ``sample_weight``.
    final_error : bool, default True
        Also compute the error of the returned point (one more GEMM).
    overwrite : bool, default False
        Update the starting factor in place when it is already in the
        working layout (``update="U"``: U C-contiguous; ``update="V"``:
        ``V.T`` C-contiguous) and dtype: saves an n-sized copy. Otherwise
        neither input is modified. The fixed factor is never copied.
    fixed_gram : array_like, shape (k, k), or FixedGram, optional
        ``update="U"`` only: the Gram matrix ``V V^T`` of the fixed factor,
        when the caller already has it (e.g. a network's first layer, whose
        input never changes): saves its n x k x k product. Used as given;
        only its shape and finiteness are checked. A
        :class:`fastnmf.FixedGram` also keeps the regularised inverse from
        call to call (while the shift ``alpha + l2`` is the same): pass one
        when solving against the same V repeatedly. A
        :class:`fastnmf.ImplicitGram` of V instead solves every step by
        preconditioned conjugate gradients with products by V, never
        forming the k x k matrix (for k in the tens of thousands: a wide
        sparse V; needs ``alpha + l2 > 0``).
    model : array_like, shape (m, n), optional
        The product ``U V`` of the starting point, when the caller has it
        already (e.g. a network layer's pre-activations, from the forward
        pass that produced V): saves the first iteration's m x k x n
        product. Used as given, not recomputed or compared with ``U V``
        (only its shape and finiteness are checked). With ``overwrite`` and
        in A's memory order it is the solve's scratch and is overwritten;
        otherwise it is copied.
    step_at_zero : float in [0, 1], default 1
        ``update="V"`` only: relative length of the step for the entries of
        V that are 0 when a step starts (a ReLU layer's inputs that are
        inactive). 1 is the plain projected step; 0 keeps them at 0, so the
        step only moves the support V already has (as multiplicative
        updates do); in between, a shorter step away from the bound. The
        fixed points with V > 0 are unchanged. Costs nothing extra.
    dtype : {None, numpy.float32, numpy.float64}
        Working dtype; default that of A.
    comm : mpi4py communicator or None
        Data-parallel solve: every process passes its own block of columns
        (samples) of A and V and the same U (and ``fixed_gram``, which must
        then be the Gram matrix over all processes). ``update="U"``: one
        allreduce of ``[R V^T; V V^T]`` per iteration, and every process
        gets the same U; ``update="V"``: no communication but one reduction
        of the errors at the end.

    Returns
    -------
    FactorizationResult
        Both factors (the fixed one is the input itself, or a contiguous
        copy if it was in neither C nor F order), ``n_iter`` and
        ``errors`` (relative error entering each iteration, plus the final
        point's if ``final_error``).
    """
    comm = as_comm(comm)
    split = comm.size > 1
    with collective(comm):
        A = check_matrix(A, "A", nonnegative=True, dtype=dtype, allow_empty_columns=split,
                         keep_padded=True)
        check_choice(update, "update", ("U", "V"))
        dt = A.dtype
        m, n = A.shape
        U = check_matrix(U, "U", dtype=dt)
        sparse_V = is_sparse(V)
        if sparse_V and update != "U":
            raise TypeError("V may be sparse only with update='U' (the fixed factor); "
                            "with update='V' it is the dense starting point")
        V_given = V
        V = (check_sparse if sparse_V else check_matrix)(
            V, "V", nonnegative=(update == "V"), dtype=dt, allow_empty_columns=split)
        if U.shape[0] != m:
            raise ValueError(f"U must have {m} rows (A is {m} x {n}), got shape {U.shape}")
        if V.shape[1] != n:
            raise ValueError(f"V must have {n} columns (A is {m} x {n}), got shape {V.shape}")
        if U.shape[1] != V.shape[0]:
            raise ValueError(f"U has {U.shape[1]} columns but V has {V.shape[0]} rows")
        n_iter = check_int(n_iter, "n_iter", minimum=0)
        omega = check_float(omega, "omega", strict=True)
        alpha = check_float(alpha, "alpha")
        if fixed_ones_row:
            check_ones_row(V, "V")
        if fixed_last_row:
            check_fixed_row(V, "V")
        k = U.shape[1]
        l2 = check_float(l2, "l2")
        if l2 > 0 and update != "U":
            raise ValueError("l2 (weight decay) is only used with update='U'")
        l2_trace = check_float(l2_trace, "l2_trace")
        if l2_trace > 0 and update != "U":
            raise ValueError("l2_trace (weight decay) is only used with update='U'")
        step_at_zero = check_float(step_at_zero, "step_at_zero")
        if step_at_zero > 1:
            raise ValueError(f"step_at_zero must be <= 1, got {step_at_zero}")
        if step_at_zero != 1 and update != "V":
            raise ValueError("step_at_zero is only used with update='V' (V >= 0)")
        if fixed_gram is not None:
            if update != "U":
                raise ValueError("fixed_gram is only used with update='U' (the Gram of V)")
            if isinstance(fixed_gram, ImplicitGram) and not (alpha + l2 > 0 or l2_trace > 0):
                raise ValueError("fixed_gram=ImplicitGram(...) needs a positive ridge "
                                 "(alpha, l2 or l2_trace): its CG solve is for G + (alpha + "
                                 "l2) I")
            if not isinstance(fixed_gram, (FixedGram, ImplicitGram)):
                fixed_gram = FixedGram._of_checked(check_matrix(fixed_gram, "fixed_gram",
                                                                dtype=dt, magnitude=False))
            if fixed_gram.shape != (k, k):
                raise ValueError(f"fixed_gram must have shape {(k, k)}, got {fixed_gram.shape}")
        if model is not None:
            model = check_matrix(model, "model", dtype=dt, allow_empty_columns=split)
            if model.shape != (m, n):
                raise ValueError(f"model must have the shape of A, {(m, n)}, got {model.shape}")
    check_distributed(comm, A)

    def working(F, moves):  # the moving factor is copied unless overwrite allows otherwise
        if moves and not (overwrite and F.flags.c_contiguous):
            return np.array(F, order="C", copy=True)
        return np.ascontiguousarray(F)

    U = working(U, update == "U")
    Vt = V.T if sparse_V else working(V.T, update == "V")

    # Scratch (from the active fastnmf.Workspace, if any): slot 0 the
    # model U V, 1 and 2 the step's (n or m, k) and Gram-sized arrays.
    t0 = time.perf_counter()
    # ||A||^2, then ||R||^2 of every point: reduced once at the end. The
    # first residual pass (of the starting point) is made here, where it
    # also yields ||A||^2 (relu_residual_norms_: no pass over A of its own).
    sq = [0.0]
    given = model is not None and n_iter > 0
    if given and overwrite and B.same_order(model, A):
        P = model
    else:
        P = B.model_buffer(A, slot=0)
        if given:
            np.copyto(P, model)
    if n_iter > 0:
        if not given:
            B.model_into_(P, U, Vt)
        r2, sq[0] = B.relu_residual_norms_(P, A)
        sq.append(r2)
        if update == "U":
            B.relu_update_left_(A, U, Vt, P, scratch(1, (m, k), dt),
                                B.cross_gram_buffer(m, k, dt, slot=2),
                                alpha, omega, n_iter, sq, residual_ready=True,
                                gram_V=fixed_gram, l2=l2, l2_trace=l2_trace, comm=comm)
        else:
            fixed = bool(fixed_ones_row or fixed_last_row)
            kf = k - 1 if fixed else k
            B.relu_update_right_(A, U, Vt, P, scratch(1, (n, kf), dt),
                                 scratch(2, (m, kf), dt), alpha, omega, n_iter, sq,
                                 fixed_last_row=fixed, residual_ready=True,
                                 step_at_zero=step_at_zero)
    if final_error or n_iter == 0:
        B.model_into_(P, U, Vt)
        if n_iter == 0:
            r2, sq[0] = B.relu_residual_norms_(P, A)
        else:
            r2 = B.relu_residual_(P, A)
        sq.append(r2)
    sq = comm.sum_(np.asarray(sq, dtype=np.float64))
    elapsed = time.perf_counter() - t0
    normA = np.sqrt(sq[0]) if sq[0] > 0 else 1.0
    errors = np.sqrt(sq[1:]) / normA
    return FactorizationResult(
        U=U, V=V_given if sparse_V else Vt.T, n_iter=n_iter, errors=errors,
        times=np.full(errors.shape, np.nan),
        converged=False, solver=f"relu_lstsq-{update}", info={"seconds": elapsed},
    )
