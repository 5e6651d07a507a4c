"""``python -m bench report`` and the compare verdict, on synthetic JSON
(no benchmark is run here: the guard end to end is test_bench_guard.py)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
import report  # noqa: E402


def _bench(name, size, work, dtype, thr, median, kind="solver", ratio=1.25):
    x = {"kind": kind, "name": name, "size": size, "dtype": dtype, "threads": thr, "work": work}
    if kind != "kernel":
        x.update(gemm_floor_s=median / ratio, floor_ratio=ratio)
    return {"name": f"test_x[{name}-{size}-{dtype}-{thr}thr]",
            "fullname": f"bench/bench_x.py::test_x[{name}-{size}-{dtype}-{thr}thr]",
            "stats": {"median": median, "iqr": median / 10, "rounds": 5}, "extra_info": x}


def write_run(path, scale=1.0, ratio=1.25):
    bs = []
    for name, kind in (("nmf-hals", "solver"), ("relu_lstsq-U", "solver"),
                       ("trainer-sweep", "trainer"), ("hals_sweep numba-tiled", "kernel")):
        for size, work in (("2000x300-k20", 1.2e7), ("6000x784-k50", 2.4e8)):
            for dtype in ("float32", "float64"):
                for thr in (1, 2):
                    bs.append(_bench(name, size, work, dtype, thr, scale * work * 1e-9 / thr,
                                     kind, ratio))
    path.write_text(json.dumps({
        "benchmarks": bs, "datetime": "2026-01-01T00:00:00",
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}, "python_version": "3.x"},
        "commit_info": {"id": "0123456789abcdef", "dirty": False}}))
    return path


DNN_MD = """Machine: test

### digits 64-100-10 (2 threads)

| iter | backprop test acc | backprop s | NMF test acc | NMF s |
|---:|---:|---:|---:|---:|
| 1 | 0.4624 | 0.0 | 0.9387 | 0.0 |
| 2 | 0.7409 | 0.1 | 0.9443 | 0.1 |
| 3 | 0.7744 | 0.2 | | |

- best test accuracy: backprop **0.7744**, NMF **0.9443**

| time to test acc | 0.95 | 0.96 | 0.97 | 0.98 |
|---|---:|---:|---:|---:|
| backprop (Adam) | not reached | not reached | not reached | not reached |
"""


def test_report_writes_tables_plots_and_readme_block(tmp_path):
    run = write_run(tmp_path / "0001_base.json")
    dnn = tmp_path / "compare_dnn.json"
    dnn.write_text(json.dumps({"threads": 2, "datasets": {"digits": {
        "shape": "64-100-10", "backprop": [[1, 0.5, 0.01], [2, 0.8, 0.02], [3, 0.9, 0.03]],
        "nmf": [[1, 0.93, 0.005], [2, 0.95, 0.01]]}}}))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Benchmarks\n\n<!-- bench-report:start -->\nold\n"
                      "<!-- bench-report:end -->\n\n## Tests\nkeep me\n")
    out = tmp_path / "out"
    assert report.main([str(run), "--out", str(out), "--dnn", str(dnn),
                        "--readme", str(readme)]) == 0
    md = (out / "benchmarks.md").read_text()
    assert "| benchmark | size | dtype | 1 thread | floor ratio | 2 threads | floor ratio |" in md
    assert "| nmf-hals | 6000x784-k50 | float32 | 240 | 1.25 | 120 | 1.25 |" in md
    assert "Test CPU" in md and "**Kernels**" in md
    for png in ("bench_time_vs_size.png", "bench_floor_ratio.png", "dnn_time_to_accuracy.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in md
    text = readme.read_text()
    assert "old" not in text and "## Tests\nkeep me\n" in text
    assert "](out/bench_time_vs_size.png)" in text and "| nmf-hals |" in text


def test_load_dnn_parses_compare_dnn_markdown(tmp_path):
    md = tmp_path / "compare_dnn.md"
    md.write_text(DNN_MD)
    d = report.load_dnn(md)
    assert list(d) == ["digits"]
    assert d["digits"]["backprop"] == [(1, 0.4624, 0.0), (2, 0.7409, 0.1), (3, 0.7744, 0.2)]
    assert d["digits"]["nmf"] == [(1, 0.9387, 0.0), (2, 0.9443, 0.1)]
    assert d["digits"]["threads"] == 2 and d["digits"]["shape"] == "64-100-10"


def load_cli():
    """bench/__main__.py (what ``python -m bench`` runs) as a module."""
    spec = importlib.util.spec_from_file_location("bench_cli", BENCH / "__main__.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_verdict_follows_the_threshold(tmp_path):
    cli = load_cli()
    base = write_run(tmp_path / "base.json")
    same, _ = cli.compare_runs(base, write_run(tmp_path / "a.json", scale=1.09), 10)
    assert same[-1].startswith("OK: no benchmark regressed")
    lines, reg = cli.compare_runs(base, write_run(tmp_path / "b.json", scale=1.11), 10)
    assert len(reg) == 32 and "PERFORMANCE REGRESSION: 32 of 32 benchmarks:" in lines
    # Machine-independent: 2x slower wall time everywhere (a slower machine),
    # same floor ratios -> passes with --floor-only; a grown ratio fails.
    slow = write_run(tmp_path / "c.json", scale=2.0)
    assert cli.compare_runs(base, slow, 10, floor_threshold=10, floor_only=True)[1] == []
    worse = write_run(tmp_path / "d.json", scale=2.0, ratio=1.25 * 1.2)
    _, reg = cli.compare_runs(base, worse, 10, floor_threshold=10, floor_only=True)
    assert len(reg) == 24 and "floor ratio +20.0% > +10%" in reg[0][-1][0]
