"""bench/ab_sweep.py: the paired summary, and one turn end to end (digits,
the installed package as both trees: the same code must train the same)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import fastnmf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def test_paired_summary():
    import ab_sweep
    s = ab_sweep.paired_summary([2.0, 3.0, 2.5, 4.0], [1.8, 3.1, 2.0, 3.0])
    assert s["median_a"] == 2.75 and s["median_b"] == 2.5
    assert s["ratio"] == pytest.approx(2.5 / 2.75)
    assert s["diffs"] == pytest.approx([-0.2, 0.1, -0.5, -1.0])
    assert s["b_faster"] == 3 and s["turns"] == 4


def test_one_turn_of_the_same_tree(capsys):
    pytest.importorskip("sklearn")
    import ab_sweep
    tree = str(Path(fastnmf.__file__).resolve().parents[1])   # what this process imports
    assert ab_sweep.main([tree, tree, "--dataset", "digits", "--rounds", "1", "--warmup", "1",
                          "--sweeps", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.startswith("| 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == cells[4]                   # the same loss: the same training
    assert "B faster in" in out and out.startswith("Machine:")


def test_a_tree_without_the_package_fails_clearly(tmp_path):
    import ab_sweep
    with pytest.raises(RuntimeError, match="fastnmf"):
        ab_sweep.main([str(tmp_path), str(tmp_path), "--dataset", "digits", "--rounds", "1",
                       "--warmup", "0", "--sweeps", "1"])


def test_rename_imports_only_touches_imports_of_the_two_packages():
    import ab_sweep
    src = ("import fastnmf\n"
           "import fastnmf as _fastnmf  # noqa: F401\n"
           "    import fastnmf_dnn\n"
           "import fastnmf_dnn as dnn\n"
           "from fastnmf._comm import SERIAL\n"
           "from fastnmf_dnn.trainer import Trainer\n"
           "from fastnmf import threads\n"
           "from . import _blocks\n"
           "import fastnmfx\n"
           'PROG = "fastnmf-dnn"  # import fastnmf in a comment stays\n'
           "x = fastnmf.nmf\n")
    out = ab_sweep.rename_imports(src, "a").splitlines()
    assert out == ["import fastnmf_a as fastnmf",
                   "import fastnmf_a as _fastnmf  # noqa: F401",
                   "    import fastnmf_dnn_a as fastnmf_dnn",
                   "import fastnmf_dnn_a as dnn",
                   "from fastnmf_a._comm import SERIAL",
                   "from fastnmf_dnn_a.trainer import Trainer",
                   "from fastnmf_a import threads",
                   "from . import _blocks",
                   "import fastnmfx",
                   'PROG = "fastnmf-dnn"  # import fastnmf in a comment stays',
                   "x = fastnmf.nmf"]


def test_copies_import_side_by_side(tmp_path):
    """Two renamed copies of the installed packages load in one process
    next to each other (and to the original), each module from its copy."""
    import importlib
    import ab_sweep
    tree = Path(fastnmf.__file__).resolve().parents[1]
    for tag in ("x1", "x2"):
        ab_sweep.copy_tree_as(tree, tmp_path, tag)
    sys.path.insert(0, str(tmp_path))
    try:
        for tag in ("x1", "x2"):
            fn = importlib.import_module(f"fastnmf_{tag}")
            tr = importlib.import_module(f"fastnmf_dnn_{tag}.trainer")
            assert Path(fn.__file__).parent == tmp_path / f"fastnmf_{tag}"
            assert tr.fastnmf is fn                       # the copy uses its own fastnmf
            assert importlib.import_module(f"fastnmf_{tag}._hals_dispatch").load_build(
                "baseline").__name__ == f"fastnmf_{tag}._cy._hals"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith(("fastnmf_x1", "fastnmf_x2",
                                                             "fastnmf_dnn_x1", "fastnmf_dnn_x2"))]:
            del sys.modules[name]


def test_in_process_summary():
    import ab_sweep
    res = {"a": {"sweeps": [[2.0, False, 0], [3.0, True, 0], [2.2, False, 1], [3.2, True, 1]]},
           "b": {"sweeps": [[1.8, False, 0], [2.7, True, 0], [2.0, False, 1], [3.3, True, 1]]}}
    s = ab_sweep.in_process_summary(res)
    assert s["a"]["plain"] == pytest.approx(2.1) and s["a"]["rejected"] == pytest.approx(3.1)
    assert s["b"]["n_rejected"] == 2 and s["b"]["n"] == 4
    assert s["ratio"]["plain"] == pytest.approx(1.9 / 2.1)
    assert s["ratio"]["rejected"] == pytest.approx(3.0 / 3.1)
    assert s["a"]["blocks"] == pytest.approx([2.5, 2.7]) and s["b"]["blocks"] == pytest.approx(
        [2.25, 2.65])
    assert s["b_faster"] == 2 and s["pairs"] == 2


def test_in_process_run_of_the_same_tree(capsys):
    """Both copies of one tree in one process train the same (digits, a
    block of one sweep each): equal losses, every sweep accounted for."""
    pytest.importorskip("sklearn")
    import ab_sweep
    tree = str(Path(fastnmf.__file__).resolve().parents[1])
    assert ab_sweep.main([tree, tree, "--dataset", "digits", "--in-process", "--warmup", "1",
                          "--blocks", "2", "--block-sweeps", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in out.splitlines()
            if ln.startswith(("| A:", "| B:"))]
    assert len(rows) == 2 and rows[0][-1] == rows[1][-1]      # the same loss
    assert rows[0][1].startswith("4 (") and rows[1][1].startswith("4 (")
    assert "block pairs" in out and out.startswith("Machine:")
