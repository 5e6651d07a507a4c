"""python -m bench: run the benchmark suite, save a baseline, compare, report.

Run from the repository root (``bench`` is a directory there, not an
installed package):

    python -m bench quick                       # small sizes (under 2 minutes)
    python -m bench full                        # every size
    python -m bench check                       # quick subset, --benchmark-disable (no timing)
    python -m bench save NAME [--full] [--timer cpu|wall]   # run and save baseline NAME in .benchmarks/
    python -m bench compare NAME [--full] [--threshold 10%] [--floor-threshold 25%] [--floor-only]
    python -m bench report [JSON ...] [--out DIR] [--dnn PATH] [--readme README.md]

Everything is pytest-benchmark underneath: ``save`` is ``--benchmark-save``,
``compare`` is ``--benchmark-compare=<baseline file>
--benchmark-compare-fail=median:THRESHOLD``, and afterwards prints which
benchmarks regressed and by how much, with the GEMM-floor ratio of both runs
next to the wall times (``--floor-threshold``: also fail when a floor ratio
grew by more than that; ``--floor-only``: judge by the floor ratios alone,
for a baseline saved on another machine). Exit status 1 on a regression.

``save --timer cpu`` times the process's CPU time instead of wall-clock
time (pytest-benchmark's ``--benchmark-timer=time.process_time``; the GEMM
floors then use the same clock), and a compare uses the clock its baseline
was saved with. CPU time is what other processes on a shared machine do not
inflate, for single-threaded benchmarks: there identical runs moved by
-1%..+10% under full load where wall time moved by up to +265%. It is no
cure for multi-threaded ones: a thread left without a core makes the others
spin at the next barrier, which counts as CPU time (+1000% measured).

``save`` and ``compare`` run the quick subset unless ``--full`` (compare a
baseline with the subset it was saved with: only benchmarks present in both
runs are compared). Arguments after ``--`` go to pytest unchanged: a path
(``-- bench/bench_solvers.py``) replaces the default target ``bench/``,
``-- -k nmf`` selects benchmarks. ``--storage DIR`` keeps baselines
elsewhere than ``.benchmarks/``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import report  # noqa: E402


# pytest as its console script runs it: without the current directory on
# sys.path ("python -m pytest" in the repository root would import the
# checkout's fastnmf, which has no compiled extension unless built in place,
# instead of the installed one). pytest-benchmark ends a session whose
# --benchmark-compare-fail check failed by raising PerformanceRegression out
# of pytest (after printing "Performance has regressed: ..."): exit 1 with
# one line instead of its traceback.
_RUNNER = """
import sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import pytest
try:
    rc = pytest.main()
except Exception as exc:
    if type(exc).__name__ != "PerformanceRegression":
        raise
    print("pytest-benchmark: --benchmark-compare-fail failed (see 'Performance has regressed')")
    rc = 1
sys.exit(rc)
"""
PYTEST = [sys.executable, "-c", _RUNNER]


def _threshold(text: str) -> int:
    t = text.strip().rstrip("%")
    if not t.isdigit():
        raise argparse.ArgumentTypeError(f"threshold must be a whole percentage like 10%, got {text!r}")
    return int(t)


def _is_path(arg):
    return not arg.startswith("-") and Path(arg.split("::")[0]).exists()


def _pytest_cmd(args, extra, *options):
    # pytest runs in the repository root: make path arguments absolute first.
    extra = [str(Path(a).resolve()) if _is_path(a) and "::" not in a else a for a in extra]
    has_target = any(_is_path(a) for a in extra)
    cmd = PYTEST + ([] if has_target else [str(BENCH)])
    if not getattr(args, "full", False):
        cmd.append("--quick")
    if getattr(args, "timer", None) == "cpu":
        cmd.append("--benchmark-timer=time.process_time")
    cmd += [f"--benchmark-storage=file://{args.storage.resolve()}",
            "--benchmark-columns=median,iqr,rounds", "--benchmark-group-by=func",
            "--benchmark-sort=fullname", "-p", "no:cacheprovider", *options, *extra]
    return cmd


def _run(cmd):
    print("+ pytest", shlex.join(cmd[len(PYTEST):]), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def find_baseline(storage: Path, name: str) -> Path:
    """The newest saved ``NNNN_<name>.json`` (or ``name`` itself if it is a file)."""
    if Path(name).is_file():
        return Path(name)
    hits = [p for p in storage.glob(f"*/[0-9][0-9][0-9][0-9]_{name}.json")]
    if not hits:
        hits = [p for p in storage.glob("*/*.json") if p.stem == name]
    if not hits:
        have = sorted({p.stem.split("_", 1)[-1] for p in storage.glob("*/*.json")})
        raise SystemExit(f"bench: no baseline named {name!r} under {storage} "
                         f"(saved: {', '.join(have) or 'none'}; python -m bench save {name})")
    return max(hits, key=lambda p: (p.name[:4], p.stat().st_mtime))


def baseline_timer(path: Path) -> str:
    """"cpu" or "wall": the clock a saved baseline was measured with."""
    benches = json.loads(Path(path).read_text()).get("benchmarks") or [{}]
    timer = str((benches[0].get("options") or {}).get("timer", ""))
    return "cpu" if "process_time" in timer else "wall"


def compare_runs(base_file, now_file, threshold, floor_threshold=None, floor_only=False):
    """Readable comparison of two pytest-benchmark JSON files (medians).

    Returns (lines, regressions); a regression is a median slower by more
    than ``threshold`` percent (pytest-benchmark's PercentageRegressionCheck:
    ``now / base * 100 - 100 > threshold``), or with ``floor_threshold`` a
    floor ratio that grew by more than that many percent.
    """
    base = {b["fullname"]: b for b in json.loads(Path(base_file).read_text())["benchmarks"]}
    now = {b["fullname"]: b for b in json.loads(Path(now_file).read_text())["benchmarks"]}
    both = [n for n in now if n in base]
    rows, regressions = [], []
    for name in both:
        b, c = base[name]["stats"]["median"], now[name]["stats"]["median"]
        change = c / b * 100 - 100 if b else float("inf")
        rb = (base[name].get("extra_info") or {}).get("floor_ratio")
        rc = (now[name].get("extra_info") or {}).get("floor_ratio")
        rchange = rc / rb * 100 - 100 if rb and rc else None
        why = []
        if not floor_only and change > threshold:
            why.append(f"median {change:+.1f}% > +{threshold}%")
        if floor_threshold is not None and rchange is not None and rchange > floor_threshold:
            why.append(f"floor ratio {rchange:+.1f}% > +{floor_threshold}%")
        rows.append((change, name, b, c, rb, rc, why))
        if why:
            regressions.append((name, b, c, change, rb, rc, why))
    rows.sort(key=lambda r: -r[0])
    crit = [] if floor_only else [f"median slower by more than {threshold}%"]
    if floor_threshold is not None:
        crit.append(f"floor ratio up by more than {floor_threshold}%")
    lines = [f"Compared {len(both)} benchmarks with baseline {Path(base_file).name} "
             f"({baseline_timer(base_file)} time; fail: {' or '.join(crit) or 'nothing'}).",
             f"{'change':>8}  {'baseline':>10}  {'now':>10}  {'floor ratio':>13}  benchmark"]
    for change, name, b, c, rb, rc, why in rows:
        fr = f"{rb:.2f} -> {rc:.2f}" if rb and rc else ""
        lines.append(f"{change:+7.1f}%  {report.fmt_time(b):>10}  {report.fmt_time(c):>10}  "
                     f"{fr:>13}  {name}" + ("   <-- REGRESSED" if why else ""))
    only_base = len([n for n in base if n not in now])
    only_now = len([n for n in now if n not in base])
    if only_base or only_now:
        lines.append(f"(not compared: {only_base} only in the baseline, {only_now} only in this run)")
    if regressions:
        lines.append(f"PERFORMANCE REGRESSION: {len(regressions)} of {len(both)} benchmarks:")
        for name, b, c, change, rb, rc, why in regressions:
            lines.append(f"  {name}: median {report.fmt_time(b)} -> {report.fmt_time(c)} "
                         f"({change:+.1f}%); " + "; ".join(why))
    elif both:
        lines.append(f"OK: no benchmark regressed ({'; '.join(crit) or 'nothing checked'}).")
    return lines, regressions


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n")[2])
    sub = ap.add_subparsers(dest="cmd", required=True)
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument("--storage", type=Path, default=ROOT / ".benchmarks",
                         help="baseline storage directory (default: .benchmarks/)")
    full = argparse.ArgumentParser(add_help=False)
    full.add_argument("--full", action="store_true", help="every size, not the quick subset")
    sub.add_parser("quick", parents=[storage], help="run the quick subset")
    sub.add_parser("full", parents=[storage], help="run everything")
    sub.add_parser("check", parents=[storage],
                   help="quick subset with --benchmark-disable (correctness only)")
    p = sub.add_parser("save", parents=[storage, full], help="run and save a named baseline")
    p.add_argument("name")
    p.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                   help="wall-clock time (default) or process CPU time (robust to other "
                        "processes for single-threaded benchmarks)")
    p = sub.add_parser("compare", parents=[storage, full],
                       help="run and compare with a saved baseline")
    p.add_argument("name", help="baseline name given to save (or a JSON file)")
    p.add_argument("--threshold", type=_threshold, default=10,
                   help="fail when a median is slower by more than this (default 10%%)")
    p.add_argument("--floor-threshold", type=_threshold,
                   help="also fail when a floor ratio grew by more than this")
    p.add_argument("--floor-only", action="store_true",
                   help="judge by floor ratios only (baseline from another machine)")
    p.add_argument("--json", type=Path, help="also keep this run's results in this JSON file")
    sub.add_parser("report", add_help=False, help="Markdown tables and PNG plots from saved JSON")
    if argv[:1] == ["report"]:
        return report.main(argv[1:] + extra)
    args = ap.parse_args(argv)

    if args.cmd in ("quick", "full"):
        args.full = args.cmd == "full"
        return _run(_pytest_cmd(args, extra))
    if args.cmd == "check":
        return _run(_pytest_cmd(args, extra, "--benchmark-disable", "-q"))
    if args.cmd == "save":
        rc = _run(_pytest_cmd(args, extra, f"--benchmark-save={args.name}"))
        if rc == 0:
            print(f"bench: saved baseline {find_baseline(args.storage, args.name)}")
        return rc
    # compare
    if args.floor_only and args.floor_threshold is None:
        ap.error("--floor-only needs --floor-threshold")
    baseline = find_baseline(args.storage, args.name).resolve()
    args.timer = baseline_timer(baseline)
    with tempfile.TemporaryDirectory() as tmp:
        now = args.json.resolve() if args.json else Path(tmp) / "now.json"
        if now.exists():
            now.unlink()  # never compare against a stale file if the run dies early
        opts = [f"--benchmark-compare={baseline}", f"--benchmark-json={now}"]
        if not args.floor_only:
            opts.append(f"--benchmark-compare-fail=median:{args.threshold}%")
        rc = _run(_pytest_cmd(args, extra, *opts))
        if not now.exists():
            print(f"bench: the benchmark run failed before writing results (pytest exit {rc})")
            return rc or 1
        lines, regressions = compare_runs(baseline, now, args.threshold, args.floor_threshold,
                                          args.floor_only)
    print("\n".join(lines), flush=True)
    if regressions:
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
