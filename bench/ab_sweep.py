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
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
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
    args = ap.parse_args(argv)
    from compare import machine
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
