"""A/B of the training sweep's wall time between two source trees, in turns.

    python bench/ab_sweep.py OLD_TREE NEW_TREE                  # Fashion, 10 turns
    python bench/ab_sweep.py OLD_TREE NEW_TREE --dataset digits --rounds 6

Each tree is a directory holding ``fastnmf/`` and ``fastnmf_dnn/`` with the
compiled extension in place (an editable checkout, or ``git archive REV
fastnmf fastnmf_dnn | tar -x -C DIR`` plus a copy of ``fastnmf/_cy/*.so``).
Every turn runs one process per tree, A then B, with ``PYTHONPATH`` set to
the tree; the process builds the trainer of the compare_dnn network
(Fashion-MNIST 784-500-500-10 or digits 64-100-10, the estimator's default
options, seed 0), runs ``--warmup`` sweeps, then times ``--sweeps`` and
prints their median and the training loss after them (equal losses: the
two trees train the same). On a shared machine one turn's medians move by
20% or more; the report gives the medians over turns, the paired
differences B - A and how many turns B was faster (session 18: Fashion, 8
of 10). The machine line says what ran.

``--in-process``: both trees in one process instead, which the machine's
drift cannot separate. Each tree's ``fastnmf/`` and ``fastnmf_dnn/`` are
copied to a temporary directory as ``fastnmf_a`` / ``fastnmf_dnn_a`` and
``..._b`` (their absolute ``fastnmf`` imports renamed; the packages
import themselves relatively), a child process imports both, builds one
trainer per tree and times ``--blocks`` blocks of ``--block-sweeps``
sweeps, A and B in turns. Sweeps that rejected their extrapolated step
(one more forward pass and output refit) are reported apart from the
plain ones: the two kinds differ by ~45% on digits, so a median over both
moves with the share of rejections. The copies compile their own Numba
kernels (not timed). Session 20, digits: 0.84-0.86x where the one-process-
per-turn protocol read 0.907x with paired differences -3.8 .. +1.0 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import sys, time
import fastnmf, fastnmf_dnn                  # first: short BLAS spin-waits
import numpy as np
sys.path.insert(0, {bench!r})
from compare_dnn import SHAPES, load
from fastnmf_dnn.network import init_random
from fastnmf_dnn.trainer import Trainer
Xtr, ytr = load({dataset!r})[:2]
hidden = SHAPES[{dataset!r}]
Y = np.eye(int(ytr.max()) + 1, dtype=np.float32)[ytr]
opts = fastnmf_dnn.NMFNetClassifier(hidden).training_options()
net = init_random([Xtr.shape[1], *hidden, Y.shape[1]], np.random.default_rng(0), np.float32)
with fastnmf.threads({threads}):
    tr = Trainer(Xtr, Y, net, opts)
    for _ in range({warmup}):
        tr.sweep()
    ts = []
    for _ in range({sweeps}):
        t0 = time.perf_counter()
        tr.sweep()
        ts.append(time.perf_counter() - t0)
print(float(np.median(ts)), tr.fit_loss(), fastnmf.__file__)
"""


def paired_summary(a, b):
    """Medians of A and B over turns, B/A of those medians, the paired
    differences ``b - a`` and the number of turns in which B was faster."""
    diffs = [y - x for x, y in zip(a, b)]
    ma, mb = statistics.median(a), statistics.median(b)
    return {"median_a": ma, "median_b": mb, "ratio": mb / ma, "diffs": diffs,
            "b_faster": sum(d < 0 for d in diffs), "turns": len(diffs)}


# Absolute imports of the two packages, renamed in a tree's copy (``{t}``:
# the copy's tag). The packages' own modules import each other relatively.
_IMPORT_RULES = [
    (re.compile(r"^(\s*)from fastnmf_dnn(?=[\s.])", re.M), r"\1from fastnmf_dnn_{t}"),
    (re.compile(r"^(\s*)from fastnmf(?=[\s.])", re.M), r"\1from fastnmf_{t}"),
    (re.compile(r"^(\s*)import fastnmf_dnn as ", re.M), r"\1import fastnmf_dnn_{t} as "),
    (re.compile(r"^(\s*)import fastnmf as ", re.M), r"\1import fastnmf_{t} as "),
    (re.compile(r"^(\s*)import fastnmf_dnn(?=\s*(#|$))", re.M),
     r"\1import fastnmf_dnn_{t} as fastnmf_dnn"),
    (re.compile(r"^(\s*)import fastnmf(?=\s*(#|$))", re.M), r"\1import fastnmf_{t} as fastnmf"),
]


def rename_imports(text: str, tag: str) -> str:
    """``text`` (a module of the packages) with its absolute imports of
    ``fastnmf`` / ``fastnmf_dnn`` pointing at the copies tagged ``tag``."""
    for pattern, repl in _IMPORT_RULES:
        text = pattern.sub(repl.replace("{t}", tag), text)
    return text


def copy_tree_as(tree, dest, tag) -> None:
    """Copy ``tree``'s two packages into ``dest`` as ``fastnmf_{tag}`` and
    ``fastnmf_dnn_{tag}`` (compiled extensions included, caches left out)."""
    for pkg in ("fastnmf", "fastnmf_dnn"):
        src = Path(tree) / pkg
        if not (src / "__init__.py").exists():
            raise RuntimeError(f"{tree} has no {pkg}/ package")
        out = Path(dest) / f"{pkg}_{tag}"
        shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi",
                                                               "*.nbc"))
        for py in out.rglob("*.py"):
            py.write_text(rename_imports(py.read_text(), tag))


CHILD_IN_PROCESS = r"""
import importlib, json, sys, time
mods = {{}}
for t in "ab":      # fastnmf_a first: it sets the short spin-waits before numpy loads BLAS
    fn = importlib.import_module("fastnmf_" + t)
    mods[t] = (fn, importlib.import_module("fastnmf_dnn_" + t),
               importlib.import_module("fastnmf_dnn_" + t + ".trainer"),
               importlib.import_module("fastnmf_dnn_" + t + ".network"))
import numpy as np
with np.load({data!r}) as z:
    Xtr, ytr = z["X"], z["y"]
hidden = {hidden!r}
Y = np.eye(int(ytr.max()) + 1, dtype=np.float32)[ytr]
trainers = {{}}
for t, (fn, dnn, T, N) in mods.items():
    opts = dnn.NMFNetClassifier(hidden).training_options()
    net = N.init_random([Xtr.shape[1], *hidden, Y.shape[1]], np.random.default_rng(0), np.float32)
    with fn.threads({threads}):
        trainers[t] = T.Trainer(Xtr, Y, net, opts)
        for _ in range({warmup}):
            trainers[t].sweep()
out = {{"a": [], "b": []}}
for blk in range(2 * {blocks}):
    t = "ab"[blk % 2]
    tr = trainers[t]
    with mods[t][0].threads({threads}):
        for _ in range({block_sweeps}):
            t0 = time.perf_counter()
            tr.sweep()
            out[t].append([time.perf_counter() - t0, bool(tr.last_sweep_rejected), blk // 2])
print(json.dumps({{t: {{"sweeps": out[t], "loss": trainers[t].fit_loss(),
                       "file": mods[t][0].__file__}} for t in "ab"}}))
"""


def in_process_summary(res) -> dict:
    """From the child's sweeps (seconds, rejected, block): per tree the
    medians of all, plain and rejected sweeps; B/A of each; and in how many
    block pairs B's median was below A's."""
    def med(v):
        return statistics.median(v) if v else float("nan")
    s = {}
    for t in "ab":
        rows = res[t]["sweeps"]
        s[t] = {"all": med([r[0] for r in rows]),
                "plain": med([r[0] for r in rows if not r[1]]),
                "rejected": med([r[0] for r in rows if r[1]]),
                "n_rejected": sum(r[1] for r in rows), "n": len(rows),
                "blocks": [med([r[0] for r in rows if r[2] == b])
                           for b in sorted({r[2] for r in rows})]}
    s["ratio"] = {k: s["b"][k] / s["a"][k] for k in ("all", "plain", "rejected")}
    pairs = list(zip(s["a"]["blocks"], s["b"]["blocks"]))
    s["b_faster"], s["pairs"] = sum(b < a for a, b in pairs), len(pairs)
    return s


def run_in_process(args):
    from compare_dnn import SHAPES, load
    Xtr, ytr = load(args.dataset)[:2]
    with tempfile.TemporaryDirectory(prefix="ab_sweep_") as tmp:
        copy_tree_as(args.tree_a, tmp, "a")
        copy_tree_as(args.tree_b, tmp, "b")
        data = str(Path(tmp) / "data.npz")
        import numpy as np
        np.savez(data, X=Xtr, y=ytr)
        code = CHILD_IN_PROCESS.format(data=data, hidden=SHAPES[args.dataset],
                                       threads=args.threads, warmup=args.warmup,
                                       blocks=args.blocks, block_sweeps=args.block_sweeps)
        env = dict(os.environ, PYTHONPATH=tmp)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           cwd=tmp)
        if r.returncode:
            raise RuntimeError(f"the in-process run failed:\n{r.stderr[-3000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        for t in "ab":
            if not Path(res[t]["file"]).resolve().is_relative_to(Path(tmp).resolve()):
                raise RuntimeError(f"tree {t} ran {res[t]['file']}, not its copy")
    return res


def run_turn(tree, args):
    code = CHILD.format(bench=str(HERE), dataset=args.dataset, threads=args.threads,
                        warmup=args.warmup, sweeps=args.sweeps)
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=str(Path(tree).resolve()))
    if r.returncode:
        raise RuntimeError(f"the run of {tree} failed:\n{r.stderr[-3000:]}")
    med, loss, where = r.stdout.split()
    if not Path(where).resolve().is_relative_to(Path(tree).resolve()):
        raise RuntimeError(f"{tree}: imported fastnmf from {where}, not from the tree")
    return float(med), float(loss)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tree_a")
    ap.add_argument("tree_b")
    ap.add_argument("--dataset", choices=["fashion", "digits"], default="fashion")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--sweeps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--in-process", action="store_true",
                    help="both trees in one process, blocks of sweeps in turns")
    ap.add_argument("--blocks", type=int, default=20, help="--in-process: blocks per tree")
    ap.add_argument("--block-sweeps", type=int, default=20,
                    help="--in-process: sweeps per block")
    args = ap.parse_args(argv)
    from compare import machine
    if args.in_process:
        print(f"Machine: {machine()}; {args.threads} threads; {args.dataset}; one process, "
              f"{args.blocks} blocks of {args.block_sweeps} sweeps per tree in turns, after "
              f"{args.warmup} warm-up sweeps", flush=True)
        res = run_in_process(args)
        s = in_process_summary(res)
        print("| tree | sweeps (rejected) | median ms | plain ms | rejected ms | loss |\n"
              "|---|---:|---:|---:|---:|---:|")
        for t, name in (("a", args.tree_a), ("b", args.tree_b)):
            v = s[t]
            print(f"| {t.upper()}: {name} | {v['n']} ({v['n_rejected']}) | {1e3 * v['all']:.3f} | "
                  f"{1e3 * v['plain']:.3f} | {1e3 * v['rejected']:.3f} | {res[t]['loss']:.6f} |")
        r = s["ratio"]
        print(f"\nB/A: all sweeps {r['all']:.3f}, plain {r['plain']:.3f}, rejected "
              f"{r['rejected']:.3f}; B's block median below A's in {s['b_faster']} of "
              f"{s['pairs']} block pairs")
        return 0
    print(f"Machine: {machine()}; {args.threads} threads; {args.dataset}, "
          f"{args.sweeps} timed sweeps after {args.warmup} per process", flush=True)
    a, b = [], []
    # milliseconds: a digits sweep is ~3 ms (seconds with 3 decimals hid it)
    print("| turn | A median ms | B median ms | A loss | B loss |\n|---:|---:|---:|---:|---:|")
    for t in range(1, args.rounds + 1):
        (ta, la), (tb, lb) = run_turn(args.tree_a, args), run_turn(args.tree_b, args)
        a.append(ta)
        b.append(tb)
        print(f"| {t} | {1e3 * ta:.3f} | {1e3 * tb:.3f} | {la:.6f} | {lb:.6f} |", flush=True)
    s = paired_summary(a, b)
    print(f"\nmedians over turns: A {1e3 * s['median_a']:.3f} ms, B {1e3 * s['median_b']:.3f} ms, "
          f"B/A {s['ratio']:.3f}; B faster in {s['b_faster']} of {s['turns']} turns; "
          f"paired differences B - A {1e3 * min(s['diffs']):+.3f} .. "
          f"{1e3 * max(s['diffs']):+.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
