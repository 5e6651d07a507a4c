"""Analytic cost of one data-parallel training sweep (fastnmf_dnn.Trainer, ``comm=``).

    python bench/mpi_cost_model.py [--json bench/results/mpi_scaling.json] [--rate GFLOPS]

With the N samples split over P processes, one steady-state full-batch
sweep of a network ``sizes = (d, n_1, ..., c)`` costs each process

* **compute**: ``sweep_flops(sizes, ceil(N / P), options)`` flops, the
  products :meth:`Trainer.sweep_gemms` lists (2 m k n flops each) for the
  process's own sample count. Products with a sample dimension shrink with
  P; the ``m x k x k`` ones (applying a k x k inverse to a cross product)
  are replicated on every process and do not. k x k Cholesky factors and
  elementwise passes are not counted (see ``sweep_gemm_shapes``).
* **bandwidth**: ``sweep_comm(...).allreduce_bytes`` bytes through matrix
  allreduces (``MPIComm.sum_``, what ``MPIComm.allreduce_bytes`` counts):
  per U-step the ``(m + k) x k`` buffer ``[A V^T; V V^T]`` of
  ``fastnmf._blocks.cross_and_gram_``, except that the first layer's Gram
  is reduced once when the Trainer is built (its U-step reduces the
  ``m x k`` cross product only) and fixed-point iterations after the first
  reduce only the cross product; plus one float64 vector of squared
  residuals (``inner_iter + 1`` numbers) per ``relu_lstsq`` call.
* **latency**: ``sweep_comm(...).n_messages`` collectives: those matrix
  allreduces, the scalar sums (``MPIComm.sum``: norms, the sample
  count each solver checks, one per HALS sweep) and the validation
  allgathers every solver does (``collective`` and ``check_same``), each an
  ``Allgather`` of the pickle sizes then an ``Allgatherv`` in mpi4py, so 2;
  and with ``extrapolate`` the training loss of the step. A sweep whose
  extrapolated step is rejected evaluates the plain step too (one more
  loss, forward pass and output refit); the model counts accepted sweeps.

Time model (alpha: latency per message and tree level, B: link bandwidth)::

    T(P) = flops(ceil(N/P)) / R + n_messages alpha ceil(log2 P) + 2 (P-1)/P bytes / B

the last term being a ring (Rabenseifner) allreduce, and parallel efficiency
``E(P) = T(1) / (P T(P))`` at a fixed per-process rate R (one thread per
process). R is measured (``bench/mpi_scaling.py``): the *effective* rate
``sweep_flops / sweep time`` of one process on one thread, which charges
the elementwise work (it too scales with N / P) to the GEMMs. alpha and B
are assumptions (:data:`NETWORKS`) or, for the shared-memory validation
point, measured. The model ignores load imbalance, the replicated k x k
factorizations and any overlap of communication with compute.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import NamedTuple

from fastnmf_dnn.trainer import TrainOptions, sweep_gemm_shapes

__all__ = ["NETWORKS", "SweepComm", "sweep_flops", "sweep_comm", "sweep_time", "efficiency",
           "prediction_table"]

#: Assumed interconnects: name -> (alpha in s per message and level, B in bytes/s).
NETWORKS = {
    "InfiniBand 100 Gb/s (alpha 2 us, B 10 GB/s)": (2e-6, 10e9),
    "Ethernet 10 Gb/s (alpha 20 us, B 1.1 GB/s)": (20e-6, 1.1e9),
}

RESULTS = Path(__file__).resolve().parent / "results" / "mpi_scaling.json"


class SweepComm(NamedTuple):
    """Collectives of one steady-state sweep on every process (P > 1).

    Attributes
    ----------
    n_allreduce : int
        Matrix allreduces (``MPIComm.sum_``; ``MPIComm.n_allreduce``).
    allreduce_bytes : int
        Their total size (``MPIComm.allreduce_bytes``).
    n_sum : int
        Scalar float64 allreduces (``MPIComm.sum``).
    n_allgather : int
        Object allgathers (argument validation of every solver call).
    """

    n_allreduce: int
    allreduce_bytes: int
    n_sum: int
    n_allgather: int

    @property
    def n_messages(self) -> int:
        """Latency-bound collective operations (an object allgather is two)."""
        return self.n_allreduce + self.n_sum + 2 * self.n_allgather


def sweep_flops(sizes, N, options) -> float:
    """Flops ``sum 2 m k n`` of one full-batch sweep over N samples.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes ``(d, n_1, ..., c)``.
    N : int
        Samples (a process's own count gives its share of the work).
    options : fastnmf_dnn.trainer.TrainOptions

    Returns
    -------
    float
        Over the products of :func:`fastnmf_dnn.trainer.sweep_gemm_shapes`
        (what :meth:`Trainer.sweep_gemms` lists for a process holding N
        samples). ``sweep_flops(sizes, 0, options)`` is the part every
        process repeats.
    """
    return float(sum(2 * m * k * n for m, k, n in sweep_gemm_shapes(sizes, N, options)))


def sweep_comm(sizes, options, itemsize: int = 4, rejected: bool = False) -> SweepComm:
    """Collectives of one steady-state full-batch sweep with P > 1 processes.

    Parameters
    ----------
    sizes : sequence of int
    options : TrainOptions
        Full batch (``batch_size=None``); ``record_errors`` off.
    itemsize : int
        Bytes per weight (4: float32, 8: float64).
    rejected : bool
        With ``extrapolate > 1``: a sweep whose extrapolated step was
        rejected (``Trainer.beta`` halved), which evaluates the plain step
        too: one more training loss and output refit.

    Returns
    -------
    SweepComm
        Independent of N and P. The first sweep of a run with
        ``refit_output`` fits the output layer once more (one more ridge
        solve) than every later sweep counted here.
    """
    o, nb, L = options, int(options.bias), len(sizes) - 1
    # (rel_ridge / width_ridge need no collective of their own: the solves
    # read ||H||^2 off the trace of the allreduced Gram matrix.)
    sq_bytes = 8 * (o.inner_iter + 1)        # float64 squared residuals of relu_lstsq
    k = sizes[L - 1] + nb
    # Output layer ridge solve: [Y H; H^T H] (c + k) x k; validation.
    ridge = SweepComm(1, (sizes[-1] + k) * k * itemsize, 1, 2)
    n_red, nbytes, n_sum, n_ag = ridge
    if L > 1:   # target step (nnls): validation, ||Y||^2, HALS stopping sums
        if o.z_solver == "pgn":   # validation; ||Y||^2 and each step's residual in one
            n_sum += 1
            n_red, nbytes = n_red + 1, nbytes + 8 * (o.z_iter + 1)
        else:
            n_sum += 2 + (o.z_iter if o.z_solver == "hals" else 0)
        # validation; MU's denominator guard takes the largest |C| over processes
        n_ag += 2 + (o.z_solver == "mu")
    for i in range(L - 1, 0, -1):
        m, k = sizes[i], sizes[i - 1] + nb
        first = (m + k) * k if i > 1 else m * k   # the first layer's Gram is cached
        n_red += o.inner_iter + 1
        nbytes += (first + (o.inner_iter - 1) * m * k) * itemsize + sq_bytes
        n_sum += 1
        n_ag += 2
        if i > 1:                                  # V-step: residuals, validation
            n_red += 1
            nbytes += sq_bytes
            n_sum += 1
            n_ag += 2
    if o.extrapolate > 1 and L > 1:                # the training loss of the step
        n_sum += 1
        if rejected:                               # the plain step's loss and refit
            n_sum += 1
            if o.refit_output and o.refresh_targets:
                n_red, nbytes = n_red + ridge.n_allreduce, nbytes + ridge.allreduce_bytes
                n_sum, n_ag = n_sum + ridge.n_sum, n_ag + ridge.n_allgather
    return SweepComm(n_red, nbytes, n_sum, n_ag)


def sweep_time(sizes, N, P, options, rate, alpha, bandwidth, itemsize: int = 4) -> float:
    """Predicted seconds of one sweep on P processes (module docstring).

    ``rate``: flops/s of one process; ``alpha``: s per message and tree
    level; ``bandwidth``: bytes/s.
    """
    t = sweep_flops(sizes, math.ceil(N / P), options) / rate
    if P > 1:
        c = sweep_comm(sizes, options, itemsize)
        t += c.n_messages * alpha * math.ceil(math.log2(P))
        t += 2 * (P - 1) / P * c.allreduce_bytes / bandwidth
    return t


def efficiency(sizes, N, P, options, rate, alpha, bandwidth, itemsize: int = 4) -> float:
    """Parallel efficiency ``T(1) / (P T(P))`` at a fixed per-process rate."""
    t1 = sweep_time(sizes, N, 1, options, rate, alpha, bandwidth, itemsize)
    return t1 / (P * sweep_time(sizes, N, P, options, rate, alpha, bandwidth, itemsize))


def prediction_table(sizes, options, rate, Ns=(60_000, 6_000_000), Ps=(8, 64, 512),
                     networks=None) -> str:
    """Markdown table of predicted sweep time and efficiency E(P).

    One row per (N, P), one column pair per network in ``networks``
    (default :data:`NETWORKS`). GFLOP per process: in brackets the part
    every process repeats (the ``m x k x k`` products).
    """
    networks = NETWORKS if networks is None else networks
    head = "| N | P | GFLOP per process | " + " | ".join(
        f"{name}: s/sweep | E(P)" for name in networks) + " |"
    lines = [head, "|" + "---:|" * (3 + 2 * len(networks))]
    replicated = sweep_flops(sizes, 0, options) / 1e9     # the products without N
    for N in Ns:
        t1 = sweep_time(sizes, N, 1, options, rate, 0.0, 1.0)
        lines.append(f"| {N:,} | 1 | {sweep_flops(sizes, N, options) / 1e9:.1f} | "
                     + " | ".join(f"{t1:.3g} | 1" for _ in networks) + " |")
        for P in Ps:
            cells = []
            for alpha, bw in networks.values():
                cells.append(f"{sweep_time(sizes, N, P, options, rate, alpha, bw):.3g} | "
                             f"{efficiency(sizes, N, P, options, rate, alpha, bw):.2f}")
            flops = sweep_flops(sizes, math.ceil(N / P), options) / 1e9
            lines.append(f"| {N:,} | {P} | {flops:.2f} ({replicated:.2f}) | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=str(RESULTS),
                    help="results of bench/mpi_scaling.py --all (for the measured rate R)")
    ap.add_argument("--rate", type=float, help="per-process rate R in GFLOP/s "
                    "(default: the effective 1 rank x 1 thread rate in --json)")
    ap.add_argument("--sizes", default="784-500-500-10")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split("-")]
    options = TrainOptions()
    if args.rate is not None:
        rate = args.rate * 1e9
    elif Path(args.json).exists():
        rate = json.loads(Path(args.json).read_text())["model"]["rate_eff"]
    else:
        ap.error(f"{args.json} not found: pass --rate GFLOPS or run bench/mpi_scaling.py --all")
    c = sweep_comm(sizes, options)
    print(f"{args.sizes}, default TrainOptions, float32, R = {rate / 1e9:.1f} GFLOP/s per process")
    print(f"per sweep: {c.n_allreduce} matrix allreduces, {c.allreduce_bytes / 1e6:.3f} MB, "
          f"{c.n_sum} scalar sums, {c.n_allgather} allgathers: {c.n_messages} messages")
    print(prediction_table(sizes, options, rate))


if __name__ == "__main__":
    main()
