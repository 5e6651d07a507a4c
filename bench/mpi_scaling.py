"""Data-parallel scaling of the trainer: sweep time over MPI processes x threads.

    mpiexec -n P python -m mpi4py bench/mpi_scaling.py [--threads T] [--samples N]
        [--sweeps S] [--floor] [--json OUT] [--md OUT]
    python bench/mpi_scaling.py ...               # one process, no mpiexec
    python bench/mpi_scaling.py --all [--samples N] [--sweeps S] [--note TEXT]
    python bench/mpi_scaling.py --report [--note TEXT]  # rewrite the report from its JSON
    python bench/mpi_scaling.py --thread-scan 1,2,4,8,16 [--samples N] [--sweeps S]
        [--md OUT] [--json OUT]   # one process, each thread count in a fresh interpreter

One run trains a 784-500-500-10 ReLU network (float32, default
``TrainOptions``, He-initialised from seed 0) with
:class:`fastnmf_dnn.trainer.Trainer` on Fashion-MNIST (every process reads
only its block of the 60000 training images; ``--samples N``: its block of
the first N), one untimed warm-up sweep (Numba compilation, the first
sweep's extra output fit) then ``--sweeps`` timed ones, each started
together after a barrier. Per process and sweep it records the wall time,
the seconds inside the communicator's collectives (every ``sum_``, ``sum``,
``allgather`` and ``bcast`` of the ``MPIComm`` instance is wrapped with a
timer, so waiting for a slower process counts there too), their calls
and the bytes ``MPIComm`` counts; ``--floor`` also times the GEMM floor
(this process's share of the sweep's products, ``bench/_floor.py``). After
the timed sweeps: the test accuracy over every process's test block and the
weights' squared norm, which show every configuration trains the same
network. Reported sweep time: median over sweeps of the slowest process.

``--all`` runs 1 process x 1 thread, 1 x 2 and 2 x 1 one after another
(each under ``mpiexec``, with ``--floor``) and writes one report (default
``bench/results/mpi_scaling.md`` / ``.json``) with the cost model of
``bench/mpi_cost_model.py`` checked against the measurement: bytes and
collectives per sweep, and the 2-process sweep time predicted from the
1-process rate and the latency and bandwidth of this machine's allreduce
(probed after the 2-process run's sweeps).
"""
import fastnmf  # noqa: I001 -- before numpy (short BLAS/OpenMP spin)

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

import _floor as F
import mpi_cost_model as M
from fastnmf._comm import as_comm
from fastnmf_dnn.datasets import load_fashion_mnist, shard_range
from fastnmf_dnn.network import init_random
from fastnmf_dnn.trainer import TrainOptions, Trainer

HIDDEN = [500, 500]
CONFIGS = [(1, 1), (1, 2), (2, 1)]          # (processes, threads per process) of --all
RESULTS = Path(__file__).resolve().parent / "results"
COLLECTIVES = ("sum_", "sum", "allgather", "bcast")


class CommTimer:
    """Times and counts the collectives of one communicator instance.

    Each method in :data:`COLLECTIVES` of ``comm`` is replaced (on the
    instance) by a wrapper adding its wall time to ``seconds`` and one to
    ``calls[name]``; the solvers call them through the same instance.
    """

    def __init__(self, comm):
        self.seconds = 0.0
        self.calls = dict.fromkeys(COLLECTIVES, 0)
        for name in COLLECTIVES:
            setattr(comm, name, self._timed(name, getattr(comm, name)))

    def _timed(self, name, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls[name] += 1
        return timed


def load(samples, rank, size):
    """This process's (X, one-hot Y, X_test, y_test): its block of the
    training set (of its first ``samples`` records) and of the test set."""
    if samples is None:
        ds = load_fashion_mnist(shard=(rank, size))
        X, y, Xte, yte = ds.X_train, ds.y_train, ds.X_test, ds.y_test
    else:
        ds = load_fashion_mnist()
        X, y = (a[slice(*shard_range(samples, (rank, size)))] for a in (ds.X_train, ds.y_train))
        te = slice(*shard_range(len(ds.y_test), (rank, size)))
        Xte, yte = ds.X_test[te], ds.y_test[te]
    return X, np.eye(10, dtype=X.dtype)[y], Xte, yte


def probe_allreduce(comm, nbytes, reps=50):
    """Median seconds of an in-place Allreduce of 8 bytes and of ``nbytes``
    (slowest process), and the alpha and B they give for
    :func:`mpi_cost_model.sweep_time` (1 tree level at P = 2)."""
    from mpi4py import MPI

    out = {}
    for key, buf in (("t_small", np.zeros(1)), ("t_large", np.zeros(nbytes // 4, np.float32))):
        ts = []
        for _ in range(reps):
            comm.comm.Barrier()
            t0 = time.perf_counter()
            comm.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            ts.append(time.perf_counter() - t0)
        out[key] = max(comm.allgather(float(np.median(ts))))
    P = comm.size
    out["bytes"] = int(nbytes)
    out["alpha"] = out["t_small"] / np.ceil(np.log2(P))
    out["bandwidth"] = 2 * (P - 1) / P * nbytes / max(out["t_large"] - out["t_small"], 1e-9)
    return out


def measure(args):
    """One configuration (this process's part); returns the merged result on rank 0."""
    from mpi4py import MPI

    comm = as_comm(MPI.COMM_WORLD)
    timer = CommTimer(comm)
    options = TrainOptions()
    with fastnmf.threads(args.threads):
        X, Y, Xte, yte = load(args.samples, comm.rank, comm.size)
        sizes = [X.shape[1], *HIDDEN, Y.shape[1]]
        tr = Trainer(X, Y, init_random(sizes, np.random.default_rng(0), np.float32), options,
                     comm=comm)
        tr.sweep()                                            # warm-up, untimed
        sweeps = []
        for _ in range(args.sweeps):
            comm.comm.Barrier()
            before = (timer.seconds, dict(timer.calls), comm.allreduce_bytes, comm.n_allreduce,
                      tr.beta)
            t0 = time.perf_counter()
            tr.sweep()
            wall = time.perf_counter() - t0
            sweeps.append({"wall_s": wall, "comm_s": timer.seconds - before[0],
                           "calls": {k: timer.calls[k] - before[1][k] for k in COLLECTIVES},
                           "allreduce_bytes": comm.allreduce_bytes - before[2],
                           "n_allreduce": comm.n_allreduce - before[3],
                           "rejected": tr.beta < before[4]})   # extrapolated step not taken
        floor = None
        if args.floor:
            ops = F.trainer_ops(tr)                          # this process's products
            comm.comm.Barrier()
            floor = F.gemm_floor(ops, np.float32, repeat=3)
        net = tr.network()
        correct = comm.sum(np.sum(net.forward(Xte).argmax(axis=1) == yte))
        accuracy = correct / comm.sum(len(yte))
        weights_sq = float(sum(np.sum(a.astype(np.float64) ** 2)
                               for a in net.coefs + net.intercepts))
        probe = probe_allreduce(comm, M.sweep_comm(sizes, options).allreduce_bytes) \
            if comm.size > 1 else None
    ranks = comm.allgather({"samples": X.shape[0], "sweeps": sweeps, "floor_s": floor})
    if comm.rank:
        return None
    walls = np.array([[s["wall_s"] for s in r["sweeps"]] for r in ranks])   # (ranks, sweeps)
    return {
        "ranks": comm.size, "threads": args.threads, "samples": tr.N, "sizes": sizes,
        "options": asdict(options), "sweeps": args.sweeps,
        "sweep_s": float(np.median(walls.max(axis=0))),
        "comm_s": [float(np.median([s["comm_s"] for s in r["sweeps"]])) for r in ranks],
        "floor_s": None if floor is None else max(r["floor_s"] for r in ranks),
        "accuracy": float(accuracy), "weights_sq": weights_sq, "probe": probe, "per_rank": ranks,
    }


# --------------------------------------------------------------------------- report
def measurement_table(configs):
    """Markdown table of measured configurations (ratios to the first one)."""
    base = configs[0]["sweep_s"]
    lines = ["| processes x threads | s/sweep | speed-up | s in collectives (per process) "
             "| matrix allreduces | MB allreduced | GEMM floor s | floor ratio "
             "| rejected steps | test accuracy | sum of squared weights |",
             "|---|" + "---:|" * 10]
    for c in configs:
        t, fl, sweeps = c["sweep_s"], c["floor_s"], c["per_rank"][0]["sweeps"]
        if c["ranks"] > 1:
            comm = " / ".join(f"{s:.3f}" for s in c["comm_s"])
            red = (" / ".join(str(s["n_allreduce"]) for s in sweeps) + " | "
                   + " / ".join(f"{s['allreduce_bytes'] / 1e6:.3f}" for s in sweeps))
        else:
            comm, red = "-", "- | -"
        floor = "- | -" if fl is None else f"{fl:.3f} | {t / fl:.2f}"
        rejected = sum(s["rejected"] for s in sweeps)
        lines.append(f"| {c['ranks']} x {c['threads']} | {t:.3f} | {base / t:.2f} | {comm} "
                     f"| {red} | {floor} | {rejected} of {len(sweeps)} "
                     f"| {c['accuracy']:.4f} | {c['weights_sq']:.6g} |")
    return "\n".join(lines)


def model_section(configs, options):
    """The cost model checked against the measured 1 x 1 and 2 x 1 runs."""
    one = next(c for c in configs if (c["ranks"], c["threads"]) == (1, 1))
    two = next(c for c in configs if (c["ranks"], c["threads"]) == (2, 1))
    sizes, N = one["sizes"], one["samples"]
    flops = M.sweep_flops(sizes, N, options)
    rate = flops / one["sweep_s"]
    model = {"flops": flops, "rate_eff": rate,
             "rate_gemm": None if one["floor_s"] is None else flops / one["floor_s"]}
    c = M.sweep_comm(sizes, options)
    measured = [M.SweepComm(s["n_allreduce"], s["allreduce_bytes"], s["calls"]["sum"],
                            s["calls"]["allgather"]) for s in two["per_rank"][0]["sweeps"]]
    rejected = [s["rejected"] for s in two["per_rank"][0]["sweeps"]]
    rows = [("model", c)] + ([("model, step rejected", M.sweep_comm(sizes, options,
                                                                    rejected=True))]
                             if any(rejected) else [])
    rows += [(f"measured, sweep {j + 2}" + (" (step rejected)" if r else ""), m)
             for j, (m, r) in enumerate(zip(measured, rejected))]
    probe = two["probe"]
    alpha, bw = probe["alpha"], probe["bandwidth"]
    pred2 = M.sweep_time(sizes, N, 2, options, rate, alpha, bw)
    pred_comm = c.n_messages * alpha + c.allreduce_bytes / bw
    pred_floor = None if one["floor_s"] is None else \
        one["floor_s"] * M.sweep_flops(sizes, -(-N // 2), options) / flops
    model.update(comm_model=c._asdict(), comm_measured=[m._asdict() for m in measured],
                 rejected=rejected, alpha=alpha,
                 bandwidth=bw, predicted_2x1_s=pred2, measured_2x1_s=two["sweep_s"],
                 predicted_comm_s=pred_comm, measured_comm_s=min(two["comm_s"]))
    rg = model["rate_gemm"]
    lines = [
        "## Cost model (`bench/mpi_cost_model.py`)",
        "",
        f"Flops per sweep (the products of `Trainer.sweep_gemms()`, N = {N:,}): "
        f"{flops / 1e9:.1f} GFLOP. Per-process rate R from the 1 x 1 run: "
        f"effective {rate / 1e9:.1f} GFLOP/s (flops / sweep time; used below)"
        + ("" if rg is None else f", GEMM floor {rg / 1e9:.1f} GFLOP/s (the products alone)")
        + ".",
        "",
        "Collectives per steady-state sweep, model vs measured (2 x 1 run, process 0; "
        "sweep 1 is the warm-up):",
        "",
        "| | matrix allreduces | bytes allreduced | scalar sums | allgathers | messages |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {name} | {m.n_allreduce} | {m.allreduce_bytes:,} | {m.n_sum} | {m.n_allgather} "
          f"| {m.n_messages} |" for name, m in rows),
        "",
        f"This machine's allreduce (2 processes, shared memory, probed after the sweeps, "
        f"median of 50): {probe['t_small'] * 1e6:.1f} us for 8 bytes (alpha), "
        f"{probe['t_large'] * 1e3:.3f} ms for {probe['bytes'] / 1e6:.2f} MB "
        f"(B = {bw / 1e9:.2f} GB/s).",
        "",
        "| 2 x 1 | predicted | measured |",
        "|---|---:|---:|",
        f"| s/sweep | {pred2:.3f} | {two['sweep_s']:.3f} |",
        f"| s in collectives per sweep | {pred_comm:.4f} | {min(two['comm_s']):.4f} "
        "(least of the processes) |",
        f"| speed-up over 1 x 1 | {one['sweep_s'] / pred2:.2f} | "
        f"{one['sweep_s'] / two['sweep_s']:.2f} |",
        *([f"| GEMM floor s (the products alone) | {pred_floor:.3f} | {two['floor_s']:.3f} |"]
          if pred_floor is not None and two["floor_s"] is not None else []),
        "",
        "Predicted sweep time and parallel efficiency E(P) = T(1) / (P T(P)) of "
        "784-500-500-10 at R fixed per process (one thread each); GFLOP per process "
        "in brackets: the replicated part (m x k x k products, independent of P):",
        "",
        M.prediction_table(sizes, options, rate),
    ]
    return model, "\n".join(lines)


def machine():
    """CPU model, cores and library versions, one line."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
               platform.processor())
    return (f"{cpu}, {os.cpu_count()} cores, numpy {np.__version__}, "
            f"Python {platform.python_version()}")


def write(result, args, md):
    """The JSON and Markdown outputs asked for (``--json``, ``--md``)."""
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.md:
        Path(args.md).write_text(md + "\n")


def config_args(threads, run):
    """Arguments of one configuration's run under ``--all`` (``run``: its samples, sweeps)."""
    extra = [] if run["samples"] is None else ["--samples", str(run["samples"])]
    return ["--threads", str(threads), "--sweeps", str(run["sweeps"]), "--floor", *extra]


def run_all(args, run):
    """Each configuration of :data:`CONFIGS` under mpiexec in turn; their results."""
    mpiexec = args.mpiexec or shutil.which("mpiexec", path=str(Path(sys.executable).parent)) \
        or "mpiexec"
    configs = []
    with tempfile.TemporaryDirectory() as tmp:
        for ranks, threads in CONFIGS:
            out = Path(tmp) / f"{ranks}x{threads}.json"
            cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py", __file__,
                   *config_args(threads, run), "--json", str(out)]
            load = os.getloadavg()[0]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            configs.append(dict(json.loads(out.read_text()), loadavg_before=load))
    return configs


def report(configs, run, args):
    """Write the merged report (``--md``, ``--json``) of an ``--all`` run."""
    model, model_md = model_section(configs, TrainOptions())
    sizes = "-".join(map(str, configs[0]["sizes"]))
    samples = "" if run["samples"] is None else f" --samples {run['samples']}"
    md = "\n".join([
        "# Data-parallel scaling (MPI)",
        "",
        f"`python bench/mpi_scaling.py --all{samples} --sweeps {run['sweeps']}` ran, "
        "one after another:",
        "",
        *(f"    mpiexec -n {c['ranks']} python -m mpi4py bench/mpi_scaling.py "
          + " ".join(config_args(c["threads"], run)) for c in configs),
        "",
        f"Machine: {run['machine']}; MPI: {run['mpi']}.",
        f"Fashion-MNIST, {configs[0]['samples']:,} training samples split evenly over the "
        f"processes, {sizes}, float32, default `TrainOptions` ("
        + ", ".join(f"{k}={v}" for k, v in configs[0]["options"].items())
        + f"); one warm-up sweep, then {run['sweeps']} timed sweeps: median over sweeps of "
        "the slowest process. Collectives include waiting for the other process. "
        "Load average before each run: "
        + ", ".join(f"{c['ranks']} x {c['threads']}: {c['loadavg_before']:.2f}" for c in configs)
        + ".",
        *(["", f"**{run['note']}**"] if run["note"] else []),
        "",
        measurement_table(configs),
        "",
        model_md,
    ])
    write({"run": run, "configs": configs, "model": model}, args, md)
    print(md)


def thread_scan(args):
    """``--thread-scan``: one process per thread count, one after another
    (a fresh interpreter each, with ``--floor``); a Markdown report of the
    sweep time, its speed-up over the first count and its GEMM floor ratio
    (the part of a sweep that is not BLAS shows up as a growing ratio)."""
    counts = sorted({int(c) for c in args.thread_scan.split(",")})
    run = {"samples": args.samples, "sweeps": args.sweeps}
    configs = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in counts:
            out = Path(tmp) / f"1x{t}.json"
            cmd = [sys.executable, __file__, *config_args(t, run), "--json", str(out)]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            configs.append(json.loads(out.read_text()))
    samples = "" if args.samples is None else f" --samples {args.samples}"
    md = "\n".join([
        "# Thread scaling of a training sweep (one process)",
        "",
        f"`python bench/mpi_scaling.py --thread-scan {args.thread_scan}{samples} "
        f"--sweeps {args.sweeps}`, {time.strftime('%Y-%m-%d')}. Machine: {machine()}.",
        f"Fashion-MNIST, {configs[0]['samples']:,} training samples, "
        + "-".join(map(str, configs[0]["sizes"]))
        + f", float32, default `TrainOptions`; one warm-up sweep, then {args.sweeps} timed "
        "sweeps (median); GEMM floor: the sweep's products alone (`bench/_floor.py`), "
        "on the same thread count.",
        "",
        measurement_table(configs),
    ])
    if args.md:
        Path(args.md).write_text(md + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": run, "configs": configs}, indent=1) + "\n")
    print(md)


def mpi_version():
    """The MPI library's name and version."""
    from mpi4py import MPI
    return " ".join(MPI.Get_library_version().split()[:3])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="threads per process")
    ap.add_argument("--samples", type=int, help="train on the first N samples (default: all)")
    ap.add_argument("--sweeps", type=int, default=3, help="timed sweeps")
    ap.add_argument("--floor", action="store_true", help="also time the GEMM floor")
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--md", help="write a Markdown table")
    ap.add_argument("--all", action="store_true",
                    help="run every configuration under mpiexec and write the merged report")
    ap.add_argument("--mpiexec", help="launcher for --all (default: next to python, or on PATH)")
    ap.add_argument("--note", help="--all: a line to put in bold above the table")
    ap.add_argument("--thread-scan", metavar="1,2,4,...",
                    help="one process per thread count in turn; a report of the sweep time "
                         "and floor ratio per count (--md, --json)")
    ap.add_argument("--report", action="store_true",
                    help="rewrite the report from the --json of an earlier --all run")
    args = ap.parse_args(argv)
    if args.thread_scan:
        return thread_scan(args)
    if args.all or args.report:
        args.json = args.json or str(RESULTS / "mpi_scaling.json")
        args.md = args.md or str(RESULTS / "mpi_scaling.md")
    if args.report:
        data = json.loads(Path(args.json).read_text())
        run = dict(data["run"], note=args.note or data["run"]["note"])
        return report(data["configs"], run, args)
    if args.all:
        run = {"samples": args.samples, "sweeps": args.sweeps, "note": args.note,
               "machine": machine(), "mpi": mpi_version()}
        return report(run_all(args, run), run, args)
    result = measure(args)
    if result is not None:
        md = measurement_table([result])
        write(result, args, md)
        print(md)


if __name__ == "__main__":
    main()
