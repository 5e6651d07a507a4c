"""The GEMMs the solvers spend most of their time in, timed alone, under
numpy's BLAS kernel set as this shell configures it and (in a child
process) as OpenBLAS chooses it for this CPU without ``OPENBLAS_CORETYPE``.

    python bench/blas_kernels.py                 # both kernel sets, 1 and 2 threads
    python bench/blas_kernels.py --out FILE      # also append the table to FILE

Shapes (float32): the two cross products of ``nmf`` on Fashion-MNIST
(60000 x 784 by 784 x 50, and its transpose by 60000 x 50), the model
product of the nonlinear solver (60000 x 784 by 784 x 50 from an
F-ordered operand), and a trainer-sized one (784 x 60000 by 60000 x 500).
Each is timed on 1 and 2 threads in turns (``fastnmf.threads``), medians
of ``--repeat``. The README's statements on the kernel set (AVX2 vs
AVX-512: 1.8x) and on GEMM thread scaling come from this table.
"""
from __future__ import annotations

import fastnmf  # first: short BLAS/OpenMP spin-waits before numpy loads BLAS

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fastnmf._threads import blas_kernels


def cases():
    rng = np.random.default_rng(0)
    A = rng.random((60000, 784), dtype=np.float32)
    V = rng.random((784, 50), dtype=np.float32)
    U = rng.random((60000, 50), dtype=np.float32)
    P = np.asfortranarray(A)
    W = rng.random((60000, 500), dtype=np.float32)
    return {
        "A @ Vt (60000x784x50)": lambda: A @ V,
        "A.T @ U (784x60000x50)": lambda: A.T @ U,
        "F-ordered A @ Vt (60000x784x50)": lambda: P @ V,
        "A.T @ H (784x60000x500)": lambda: A.T @ W,
    }


def measure(repeat):
    """{case: {threads: median seconds}} under this process's BLAS."""
    out = {}
    for name, f in cases().items():
        f()
        ts = {1: [], 2: []}
        for _ in range(repeat):
            for nt in (1, 2):
                with fastnmf.threads(nt):
                    t = time.perf_counter()
                    f()
                    ts[nt].append(time.perf_counter() - t)
        out[name] = {nt: float(np.median(v)) for nt, v in ts.items()}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:   # one kernel set, printed as JSON for the parent
        print(json.dumps({"kernels": blas_kernels(), "times": measure(args.repeat)}))
        return
    runs = []
    envs = [("this shell", dict(os.environ))]
    if "OPENBLAS_CORETYPE" in os.environ:
        env = dict(os.environ)
        del env["OPENBLAS_CORETYPE"]
        envs.append(("OPENBLAS_CORETYPE removed", env))
    for label, env in envs:
        res = subprocess.run([sys.executable, __file__, "--child", "--repeat", str(args.repeat)],
                             env=env, capture_output=True, text=True, check=True)
        runs.append((label, json.loads(res.stdout.strip().splitlines()[-1])))
    lines = [f"Command: `python bench/blas_kernels.py {' '.join(sys.argv[1:])}`, "
             f"{time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores visible; float32, "
             f"medians of {args.repeat}, 1 and 2 threads in turns.", "",
             "| GEMM | kernels | 1 thread ms | 2 threads ms | 1 -> 2 threads |"
             + (" vs first kernel set (2 threads) |" if len(runs) > 1 else ""),
             "|---|---|---:|---:|---:|" + ("---:|" if len(runs) > 1 else "")]
    base = runs[0][1]["times"]
    for name in base:
        for label, run in runs:
            t1, t2 = run["times"][name]["1"], run["times"][name]["2"]
            row = (f"| {name} | {run['kernels']} ({label}) | {t1 * 1e3:.1f} | {t2 * 1e3:.1f} | "
                   f"**{t1 / t2:.2f}x** |")
            if len(runs) > 1:
                row += f" {base[name]['2'] / t2:.2f}x |"
            lines.append(row)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n\n")


if __name__ == "__main__":
    main()
