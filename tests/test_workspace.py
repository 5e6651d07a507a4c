"""fastnmf.Workspace: solves inside one give the same results, reuse their
scratch from call to call, and never hand workspace memory back."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import DTYPES, ORDERS, as_order

import fastnmf


def problem(rng, dtype, order="C", m=6, n=40, k=4, ones_row=True):
    A = as_order(rng.uniform(0, 1, (m, n)).astype(dtype), order)
    U = rng.standard_normal((m, k)).astype(dtype)
    V = rng.uniform(0.1, 1, (k, n)).astype(dtype)
    if ones_row:
        V[-1] = 1
    return A, U, V


# Every solve that takes scratch from a workspace, with the options that
# change which scratch it takes.
SOLVES = {
    "nnls hals": lambda A, U, V: fastnmf.nnls(A, U, V0=V, max_iter=4, fixed_ones_row=True).V,
    "nnls hals, no start": lambda A, U, V: fastnmf.nnls(A, U, max_iter=3).V,
    "nnls mu": lambda A, U, V: fastnmf.nnls(A, U, V0=V, solver="mu", max_iter=4,
                                            fixed_ones_row=True, prox=0.1).V,
    "nnls mu, thin U (low-rank route)": lambda A, U, V: fastnmf.nnls(
        A[:1], np.ascontiguousarray(np.tile(U[:1], (1, 2))), solver="mu", max_iter=3,
        track_error=False).V,
    "relu_lstsq U": lambda A, U, V: fastnmf.relu_lstsq(A, U, V, update="U", n_iter=3,
                                                       alpha=0.1, l2=0.01).U,
    "relu_lstsq V": lambda A, U, V: fastnmf.relu_lstsq(A, U, V, update="V", n_iter=3,
                                                       fixed_ones_row=True).V,
    "ridge_lstsq": lambda A, U, V: fastnmf.ridge_lstsq(A, V, alpha=0.1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("solve", sorted(SOLVES))
def test_same_results_inside_a_workspace(rng, dtype, order, solve):
    A, U, V = problem(rng, dtype, order)
    expected = SOLVES[solve](A, U, V)
    ws = fastnmf.Workspace()
    with ws:
        first = SOLVES[solve](A, U, V)
        held = ws.nbytes
        again = SOLVES[solve](A, U, V)
    assert held > 0, "the solve took no scratch from the workspace"
    assert ws.nbytes == held, "a second same-shaped call allocated new scratch"
    assert first.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(again, expected)


@pytest.mark.parametrize("solve", sorted(SOLVES))
def test_results_are_not_workspace_memory(rng, solve):
    """A result survives later solves with the same workspace (on other data)."""
    A, U, V = problem(rng, np.float64)
    A2, U2, V2 = problem(rng, np.float64)
    ws = fastnmf.Workspace()
    with ws:
        first = SOLVES[solve](A, U, V)
        kept = first.copy()
        SOLVES[solve](A2, U2, V2)
    np.testing.assert_array_equal(first, kept)
    for buf in ws._buffers.values():
        assert not np.shares_memory(first, buf)


def test_slots_grow_to_the_largest_request_and_clear(rng):
    ws = fastnmf.Workspace()
    held = []
    with ws:
        for n in (40, 40, 30, 60):
            A, U, V = problem(rng, np.float32, n=n)
            fastnmf.relu_lstsq(A, U, V, update="V", n_iter=2)
            held.append(ws.nbytes)
    assert held[0] == held[1] == held[2] < held[3]   # a smaller call fits, a larger grows
    assert repr(ws).startswith("Workspace(") and "MiB" in repr(ws)
    ws.clear()
    assert ws.nbytes == 0


def test_holds_what_the_largest_call_needs_not_the_sum(rng):
    """Different solves share the slots (they never run at once)."""
    A, U, V = problem(rng, np.float64, m=6, n=200)
    sizes = {}
    for name in ("nnls", "relu", "both"):
        ws = fastnmf.Workspace()
        with ws:
            if name in ("nnls", "both"):
                fastnmf.nnls(A, U, V0=V, solver="mu", max_iter=2)
            if name in ("relu", "both"):
                fastnmf.relu_lstsq(A, U, V, update="V", n_iter=2)
        sizes[name] = ws.nbytes
    assert sizes["both"] <= max(sizes["nnls"], sizes["relu"]) + 8 * 6 * 200
    assert sizes["both"] < sizes["nnls"] + sizes["relu"]


def test_one_slot_serves_any_dtype_and_order():
    ws = fastnmf.Workspace()
    a = ws.get(0, (3, 4), np.float64, "F")
    assert a.shape == (3, 4) and a.dtype == np.float64 and a.flags.f_contiguous
    b = ws.get(0, (5,), np.float32)
    assert b.dtype == np.float32 and np.shares_memory(a, b)   # same slot: same memory
    assert ws.get(1, (0, 3), np.float32).shape == (0, 3)


def test_only_inside_with(rng):
    A, U, V = problem(rng, np.float64)
    ws = fastnmf.Workspace()
    fastnmf.nnls(A, U, max_iter=2)
    assert ws.nbytes == 0
    outer, inner = fastnmf.Workspace(), fastnmf.Workspace()
    with outer:
        with inner:
            fastnmf.nnls(A, U, max_iter=2)
        assert inner.nbytes > 0 and outer.nbytes == 0
        fastnmf.nnls(A, U, max_iter=2)
        assert outer.nbytes > 0
    held = outer.nbytes, inner.nbytes
    fastnmf.nnls(A[:, :20], U, max_iter=2)   # a new shape, outside: neither grows
    assert (outer.nbytes, inner.nbytes) == held


def test_one_thread_at_a_time():
    import threading
    ws = fastnmf.Workspace()
    errors = []

    def enter():
        try:
            with ws:
                pass
        except RuntimeError as exc:
            errors.append(str(exc))

    with ws:
        with ws:            # re-entering from the same thread is fine
            t = threading.Thread(target=enter)
            t.start()
            t.join()
    assert len(errors) == 1 and "another thread" in errors[0]
    t = threading.Thread(target=enter)   # free again once the first thread left
    t.start()
    t.join()
    assert len(errors) == 1


def test_trainer_keeps_its_scratch_across_sweeps(rng):
    from fastnmf_dnn.network import init_random
    from fastnmf_dnn.trainer import Trainer, TrainOptions
    X = rng.uniform(0, 1, (60, 8)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    net = init_random([8, 7, 5, 3], np.random.default_rng(0), np.float32)
    tr = Trainer(X, Y, net, TrainOptions())
    tr.sweep()
    held = tr.workspace.nbytes
    ids = {key: id(buf) for key, buf in tr.workspace._buffers.items()}
    tr.sweep()
    assert held > 0 and tr.workspace.nbytes == held
    assert ids == {key: id(buf) for key, buf in tr.workspace._buffers.items()}


def _vmflags_of(arr):
    """VmFlags of the mapping holding ``arr``'s middle byte (Linux only;
    numpy advises only the 2 MiB-aligned part of an allocation)."""
    addr = arr.__array_interface__["data"][0] + arr.nbytes // 2
    lines = open("/proc/self/smaps").read().splitlines()
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= addr < hi
        elif inside and line.startswith("VmFlags:"):
            return line.split()[1:]
    raise LookupError("mapping not found")


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_large_buffers_skip_the_huge_page_request():
    """Buffers of 4 MiB and more are mapped without MADV_HUGEPAGE (numpy's
    own large arrays carry it, "hg" in VmFlags, where numpy asks for it),
    are page-aligned and writable; small ones come from numpy."""
    from fastnmf._alloc import DIRECT_MAP_BYTES, empty_bytes
    big = empty_bytes(DIRECT_MAP_BYTES + 12345)
    assert big.nbytes == DIRECT_MAP_BYTES + 12345 and big.flags.writeable
    assert big.__array_interface__["data"][0] % 4096 == 0
    big[:] = 7
    assert "hg" not in _vmflags_of(big)
    ref = np.empty(DIRECT_MAP_BYTES * 2, np.uint8)
    ref[:] = 1
    if "hg" not in _vmflags_of(ref):
        pytest.skip("numpy does not request huge pages here: nothing to compare")
    small = empty_bytes(1000)
    assert small.nbytes == 1000 and small.flags.writeable
    ws = fastnmf.Workspace()
    a = ws.get(("mine", 0), (3000, 500), np.float32)
    a[...] = 1.5
    assert "hg" not in _vmflags_of(a) and a.flags.c_contiguous
