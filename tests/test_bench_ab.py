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
