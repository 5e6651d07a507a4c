"""Saved pytest-benchmark JSON -> Markdown tables and PNG plots.

    python -m bench report                          # newest saved run in .benchmarks/
    python -m bench report RUN.json [...] --out bench/results
    python -m bench report --readme README.md      # also rewrite the README's table

Writes into ``--out`` (default bench/results):

* ``benchmarks.md``: median wall time per benchmark, 1 and 2 threads side
  by side, with the GEMM-floor ratio of every solver and training sweep;
* ``bench_time_vs_size.png``: median time against problem size per solver
  (log-log, one panel per dtype and thread count; dotted: its GEMM floor),
  and ``bench_floor_ratio.png``: the floor ratio against size;
* ``dnn_time_to_accuracy.png``: test accuracy against cumulative training
  seconds, fastnmf_dnn vs PyTorch Adam backprop, per dataset, from
  ``bench/compare_dnn.py --json`` output (``--dnn``; without a JSON, the
  per-epoch tables of ``bench/results/compare_dnn.md`` are parsed).

``--readme``: the text between ``<!-- bench-report:start -->`` and
``<!-- bench-report:end -->`` is replaced by the tables and image links;
nothing else in the file changes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
START, END = "<!-- bench-report:start -->", "<!-- bench-report:end -->"


# --------------------------------------------------------------------------- loading
def saved_runs(storage: Path):
    """Saved runs (``NNNN_name.json`` under storage/<machine>/), oldest first."""
    files = [p for p in Path(storage).glob("*/[0-9][0-9][0-9][0-9]_*.json")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def load(paths):
    """Benchmarks of the given JSON files, merged by full name (a later
    file wins), and the metadata of the last file (``runs``: every file's
    name, date and commit)."""
    merged, meta, runs = {}, {}, []
    for path in paths:
        data = json.loads(Path(path).read_text())
        for b in data.get("benchmarks", []):
            merged[b["fullname"]] = b
        meta = {k: data.get(k) for k in ("machine_info", "commit_info", "datetime")}
        ci = data.get("commit_info") or {}
        runs.append((Path(path).stem, (data.get("datetime") or "?")[:19],
                     (ci.get("id") or "")[:10] + (" (dirty)" if ci.get("dirty") else "")))
    meta["runs"] = runs
    return list(merged.values()), meta


_ID = re.compile(r"\[(.*)\]$")


def describe(b):
    """(kind, name, size, dtype, threads) of a benchmark: from extra_info
    (written by every benchmark in bench/), else parsed from its id."""
    x = b.get("extra_info") or {}
    if "kind" in x:
        return x["kind"], x["name"], str(x["size"]), x["dtype"], int(x["threads"])
    parts = _ID.search(b["name"]).group(1).split("-") if _ID.search(b["name"]) else []
    threads = next((int(p[:-3]) for p in parts if p.endswith("thr") and p[:-3].isdigit()), 0)
    dtype = next((p for p in parts if p in ("f32", "f64")), "")
    return "other", b["name"].split("[")[0], b.get("param") or "", dtype, threads


def fmt_time(s):
    if s is None:
        return ""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def fmt_ms(s):
    if s is None:
        return ""
    ms = s * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


# --------------------------------------------------------------------------- markdown
def _size_key(size):
    nums = [int(t) for t in re.findall(r"\d+", size)]
    return nums


def markdown(benchmarks, meta, images=()):
    """The report as Markdown: a header line, then one table per kind."""
    rows = {}
    threads_seen = set()
    for b in benchmarks:
        kind, name, size, dtype, thr = describe(b)
        st = b["stats"]
        x = b.get("extra_info") or {}
        rows.setdefault((kind, name, size, dtype), {})[thr] = (
            st["median"], st.get("iqr"), st.get("rounds"), x.get("gemm_floor_s"),
            x.get("floor_ratio"))
        threads_seen.add(thr)
    threads = sorted(threads_seen)
    mi = meta.get("machine_info") or {}
    cpu = (mi.get("cpu") or {}).get("brand_raw") or mi.get("processor") or "?"
    runs = meta.get("runs") or [("", (meta.get("datetime") or "?")[:19], "")]
    when = "; ".join(f"{name + ' ' if len(runs) > 1 else ''}{dt}"
                     + (f" (commit {commit})" if commit else "") for name, dt, commit in runs)
    out = [f"Machine: {cpu}, {(mi.get('cpu') or {}).get('count', '?')} logical CPUs, "
           f"Python {mi.get('python_version', '?')}. "
           + ("Run" if len(runs) == 1 else "Runs (merged, a later one wins)") + f": {when}."]

    def table(kinds, title, with_floor):
        sel = sorted((k for k in rows if k[0] in kinds),
                     key=lambda k: (k[0] != "solver", k[1], _size_key(k[2]), k[3]))
        if not sel:
            return
        out.append(f"\n**{title}** (median of the timed rounds; ms)\n")
        head = ["benchmark", "size", "dtype"]
        for t in threads:
            lab = f"{t} thread" + ("s" if t != 1 else "")
            head += [lab] + (["floor ratio"] if with_floor else [])
        out.append("| " + " | ".join(head) + " |")
        out.append("|---|---|---|" + ("---:|" * (len(head) - 3)))
        for key in sel:
            cells = [key[1], key[2], key[3]]
            for t in threads:
                v = rows[key].get(t)
                cells.append(fmt_ms(v[0]) if v else "")
                if with_floor:
                    cells.append(f"{v[4]:.2f}" if v and v[4] is not None else "")
            out.append("| " + " | ".join(cells) + " |")

    table({"solver", "trainer"}, "Solvers (5 iterations) and one training sweep", True)
    table({"kernel"}, "Kernels", False)
    table({"other"}, "Other benchmarks", False)
    out.append("\nFloor ratio: median time / GEMM floor, the time of the same call's "
               "matrix products replayed alone with numpy (same shapes, layouts, dtype and "
               "thread limit) before every timed round, in the same process. It does not "
               "depend on the machine's speed the way the wall time does: compare it across "
               "machines (or runs on a noisy one), the wall time only on the same quiet "
               "machine.")
    for title, path in images:
        out.append(f"\n![{title}]({path})")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plots
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_time_vs_size(benchmarks, path, ratio=False):
    """Median time vs problem size, one line per solver (and the training
    sweep), one panel per (dtype, threads); dotted: the GEMM floor.
    ``ratio``: the floor ratio vs size instead."""
    series = {}
    for b in benchmarks:
        kind, name, size, dtype, thr = describe(b)
        x = b.get("extra_info") or {}
        if kind not in ("solver", "trainer") or not x.get("work"):
            continue
        series.setdefault((dtype, thr), {}).setdefault(name, []).append(
            (x["work"], b["stats"]["median"], x.get("gemm_floor_s")))
    if not series:
        return None
    plt = _plt()
    panels = sorted(series)
    dtypes = sorted({p[0] for p in panels})
    thrs = sorted({p[1] for p in panels})
    fig, axes = plt.subplots(len(dtypes), len(thrs), figsize=(5.2 * len(thrs), 4.2 * len(dtypes)),
                             squeeze=False, sharex=True, sharey=True)
    names = sorted({n for s in series.values() for n in s})
    colors = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
    for (dt, thr), lines in series.items():
        ax = axes[dtypes.index(dt)][thrs.index(thr)]
        for name, pts in sorted(lines.items()):
            pts.sort()
            if ratio:
                fl = [(p[0], p[1] / p[2]) for p in pts if p[2]]
                ax.plot([p[0] for p in fl], [p[1] for p in fl], "o-", color=colors[name],
                        label=name)
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[name], label=name)
            fl = [(p[0], p[2]) for p in pts if p[2]]
            if fl:
                ax.plot([p[0] for p in fl], [p[1] for p in fl], ":", color=colors[name], lw=1)
        ax.set_xscale("log")
        if ratio:
            ax.axhline(1.0, color="k", lw=0.8)
        else:
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{dt}, {thr} thread{'s' if thr != 1 else ''}")
    for ax in axes[-1]:
        ax.set_xlabel("size: m n k (solvers), N sum(n_i n_i+1) (sweep)")
    for row in axes:
        row[0].set_ylabel("median time / GEMM floor" if ratio else "median seconds per call")
    handles, labels = axes[0][0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for row in axes:
        for ax in row:
            h, lab = ax.get_legend_handles_labels()
            seen.update(zip(lab, h))
    fig.legend(list(seen.values()), list(seen.keys()), loc="lower center",
               ncol=min(4, len(seen)), fontsize=8, frameon=False)
    fig.suptitle("Floor ratio vs size per solver (1 = the call's GEMMs alone)" if ratio else
                 "Time vs size per solver (dotted: the call's GEMM floor)")
    fig.tight_layout(rect=(0, 0.04 + 0.02 * ((len(seen) - 1) // 4), 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_dnn(path):
    """{dataset: {"shape", "threads", "backprop": [(iter, acc, s)], "nmf": [...]}} from
    ``compare_dnn.py --json`` output or its Markdown (``--out``) tables."""
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        res = {}
        for name, d in data["datasets"].items():
            res[name] = {"shape": d.get("shape", ""), "threads": data.get("threads"),
                         "backprop": [tuple(r) for r in d["backprop"]],
                         "nmf": [tuple(r) for r in d["nmf"]]}
        return res
    res, cur = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"^### (\w+) (\S+) \((\d+) threads?\)", line)
        if m:
            cur = res.setdefault(m.group(1), {"shape": m.group(2), "threads": int(m.group(3)),
                                              "backprop": [], "nmf": []})
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cur is None or len(cells) != 5 or not cells[0].isdigit():
            continue  # only the per-iteration rows: | iter | acc | s | acc | s |
        it = int(cells[0])
        if cells[1] and cells[2]:
            cur["backprop"].append((it, float(cells[1]), float(cells[2])))
        if cells[3] and cells[4]:
            cur["nmf"].append((it, float(cells[3]), float(cells[4])))
    return {k: v for k, v in res.items() if v["backprop"] or v["nmf"]}


def plot_time_to_accuracy(dnn, path, source=""):
    """Test accuracy vs cumulative training seconds, per dataset."""
    plt = _plt()
    names = sorted(dnn, key=lambda n: (n != "digits", n))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        d = dnn[name]
        for key, label, style in (("backprop", "backprop (PyTorch Adam)", "s-"),
                                  ("nmf", "fastnmf_dnn (NMFNetClassifier)", "o-")):
            rows = d[key]
            if rows:
                ax.plot([r[2] for r in rows], [r[1] for r in rows], style, ms=3, label=label)
        ax.set_title(f"{name} {d['shape']}" + (f", {d['threads']} threads" if d.get("threads")
                                               else ""))
        if all(r[2] > 0 for k in ("backprop", "nmf") for r in d[k]):
            ax.set_xscale("log")  # the first epochs/sweeps and the long tail both show
            from matplotlib.ticker import NullFormatter
            ax.xaxis.set_minor_formatter(NullFormatter())   # labelled minor ticks overlap
        ax.set_xlabel("cumulative training seconds")
        ax.set_ylabel("test accuracy")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Time to accuracy: fastnmf_dnn vs backprop" + (f" ({source})" if source else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- README
def update_readme(readme: Path, block: str):
    """Replace the text between the report markers in ``readme``."""
    text = readme.read_text()
    i, j = text.find(START), text.find(END)
    if i < 0 or j < i:
        raise SystemExit(f"report: {readme} has no {START} ... {END} block")
    readme.write_text(text[: i + len(START)] + "\n" + block + text[j:])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench report", description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="*", type=Path,
                    help="pytest-benchmark JSON files (default: the newest saved run)")
    ap.add_argument("--storage", type=Path, default=ROOT / ".benchmarks")
    ap.add_argument("--out", type=Path, default=BENCH / "results")
    ap.add_argument("--dnn", type=Path,
                    help="compare_dnn.py --json output (default: bench/results/compare_dnn.json, "
                    "else the tables of bench/results/compare_dnn.md)")
    ap.add_argument("--readme", type=Path, help="rewrite this file's bench-report block")
    args = ap.parse_args(argv)
    paths = args.json
    if not paths:
        runs = saved_runs(args.storage)
        if not runs:
            raise SystemExit(f"report: no saved runs under {args.storage} "
                             "(python -m bench save NAME first)")
        paths = [runs[-1]]
    benchmarks, meta = load(paths)
    args.out.mkdir(parents=True, exist_ok=True)
    pngs = []
    if plot_time_vs_size(benchmarks, args.out / "bench_time_vs_size.png"):
        pngs.append(("time vs size per solver", args.out / "bench_time_vs_size.png"))
        plot_time_vs_size(benchmarks, args.out / "bench_floor_ratio.png", ratio=True)
        pngs.append(("floor ratio vs size per solver", args.out / "bench_floor_ratio.png"))
    else:
        print("report: no solver or training-sweep benchmarks: no time-vs-size plot")
    dnn_src = args.dnn
    if dnn_src is None:
        for cand in (BENCH / "results" / "compare_dnn.json", BENCH / "results" / "compare_dnn.md"):
            if cand.exists():
                dnn_src = cand
                break
    if dnn_src is not None:
        dnn = load_dnn(dnn_src)
        if dnn:
            pngs.append(("time to accuracy, fastnmf_dnn vs backprop", plot_time_to_accuracy(
                dnn, args.out / "dnn_time_to_accuracy.png", source=Path(dnn_src).name)))
    md = markdown(benchmarks, meta, [(t, p.name) for t, p in pngs])
    (args.out / "benchmarks.md").write_text(md)
    print(md)
    for _, p in pngs:
        print(f"wrote {p}")
    print(f"wrote {args.out / 'benchmarks.md'} (from {', '.join(map(str, paths))})")
    if args.readme:
        rel = [(t, os.path.relpath(p, args.readme.resolve().parent)) for t, p in pngs]
        update_readme(args.readme, markdown(benchmarks, meta, rel))
        print(f"updated the bench-report block of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
