"""The backprop peer of the network benchmarks: PyTorch Adam on the same MLP.

``run_backprop`` trains a ``torch.nn`` ReLU MLP (Adam lr 1e-3, batch 128,
PyTorch's default init) and returns its test accuracy (R^2 with
``loss="mse"``, regression) and cumulative training seconds per epoch.
By default it trains in a **child process that never imports fastnmf**,
so the peer runs as a PyTorch user runs it:

* Numba's OpenMP layer, once a fastnmf call has started it, had turned
  nested parallelism on in the libgomp that PyTorch shares when imported
  after fastnmf: Adam ran 1.3-2.5x slower after an NMF fit in the same
  process (on a 16-core lease, three half epochs took over 40 s). fastnmf
  now turns it back off (``fastnmf._threads.keep_openmp_nesting_off``).
* ``import fastnmf`` sets ``GOMP_SPINCOUNT=10000`` (a short OpenMP spin,
  right for fastnmf's kernels on few cores) unless the user set it, which
  PyTorch's libgomp then reads too: on the 16-core lease Adam's
  Fashion-MNIST half epoch took 0.75 s with fastnmf imported first,
  0.59-0.70 s alone, 0.56 s with ``GOMP_SPINCOUNT=300000`` (two runs each;
  on 2 cores no difference beyond this machine's noise).

The child gets the parent's environment minus the variables fastnmf set
itself (``fastnmf._ENV_SET_AT_IMPORT``) and the data through ``.npy`` files
in a temporary directory. ``isolated=False`` trains in this process (the
tests use it on small problems).

    python bench/backprop.py CHILD_DIR     # the child's entry point (internal)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def backprop_loss(name):
    """The loss ``f(outputs, labels)`` of a backprop run: ``cross_entropy``
    (the baseline), or the least-squares losses NMF training fits:
    ``squared_error`` on one-hot targets and ``squared_hinge`` (no cost
    beyond the one-hot target on the right side: ``margin_targets``); for
    regression ``mse`` on float targets (``bench/regression.py``). The
    least-squares ones summed over outputs, averaged over the batch."""
    import torch
    if name == "cross_entropy":
        return torch.nn.functional.cross_entropy

    def least_squares(out, y):
        Y = torch.nn.functional.one_hot(y, out.shape[1]).to(out.dtype)
        R = out - Y
        if name == "squared_hinge":
            R = torch.where(Y > 0, torch.clamp(R, max=0), torch.clamp(R, min=0))
        return (R * R).sum(1).mean()
    if name == "mse":
        return lambda out, y: ((out - y) ** 2).sum(1).mean()
    if name not in ("squared_error", "squared_hinge"):
        raise ValueError(f"unknown backprop loss {name!r}")
    return least_squares


def r2_score(Y, P):
    """R^2 of predictions P for targets Y (n, c), averaged over the outputs
    (scikit-learn's ``r2_score`` default); an output constant within the
    rounding of its mean counts as 1 if predicted exactly, else 0: the rule
    of ``NMFNetRegressor``'s per-sweep scores (``_score_outputs``), written
    again here because this module's child process never imports fastnmf."""
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    P = np.asarray(P, dtype=np.float64).reshape(Y.shape)
    ss_res = ((Y - P) ** 2).sum(0)
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    n = len(Y)
    ok = ss_tot > n * (4 * n * np.finfo(np.float64).eps * np.abs(Y.mean(0))) ** 2
    r2 = np.where(ok, 1 - ss_res / np.where(ok, ss_tot, 1), np.where(ss_res == 0, 1.0, 0.0))
    return float(r2.mean())


def _train(Xtr, ytr, Xte, yte, hidden, epochs, threads, seed, loss):
    """Adam in this process. Returns ``(rows, weights, train_acc)``: rows
    ``(epoch, test accuracy, cumulative seconds)``; weights ``[(W, b)]`` per
    layer as float32 arrays, W (outputs, inputs) as ``torch.nn.Linear``
    holds it; the final training accuracy. ``loss="mse"``: regression,
    ``ytr``/``yte`` float targets (n, c), and R^2 in place of accuracy."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    regression = loss == "mse"
    if regression:
        ytr = np.asarray(ytr, dtype=np.float32).reshape(len(ytr), -1)
        yte = np.asarray(yte, dtype=np.float32).reshape(len(yte), -1)
    d, c = Xtr.shape[1], ytr.shape[1] if regression else int(ytr.max()) + 1
    layers, n_in = [], d
    for h in hidden:
        layers += [torch.nn.Linear(n_in, h), torch.nn.ReLU()]
        n_in = h
    layers.append(torch.nn.Linear(n_in, c))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = backprop_loss(loss)
    Xt = torch.from_numpy(Xtr)
    yt = torch.from_numpy(ytr) if regression else torch.from_numpy(ytr.astype(np.int64))

    def score(out, y):
        if regression:
            return r2_score(y, out.numpy())
        return float((out.argmax(1).numpy() == y).mean())
    Xe = torch.from_numpy(Xte)
    gen = torch.Generator().manual_seed(seed)
    # Warm-up outside the timing (thread pool start, allocator, kernels):
    # a few batches through a throwaway copy of the model.
    import copy
    tmp = copy.deepcopy(model)
    tmp_opt = torch.optim.Adam(tmp.parameters(), lr=1e-3)
    for s in range(0, min(len(yt), 20 * 128), 128):
        tmp_opt.zero_grad(set_to_none=True)
        lossf(tmp(Xt[s: s + 128]), yt[s: s + 128]).backward()
        tmp_opt.step()
    del tmp, tmp_opt
    rows, total = [], 0.0
    for ep in range(epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        for s in range(0, len(yt), 128):
            b = perm[s: s + 128]
            opt.zero_grad(set_to_none=True)
            lossf(model(Xt[b]), yt[b]).backward()
            opt.step()
        total += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            acc = score(model(Xe), yte)
        rows.append((ep + 1, acc, total))
    with torch.no_grad():
        train_acc = score(model(Xt), ytr)
    weights = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
               for m in model if isinstance(m, torch.nn.Linear)]
    return rows, weights, train_acc


def child_env() -> dict:
    """This process's environment minus what ``import fastnmf`` set itself."""
    env = dict(os.environ)
    fastnmf = sys.modules.get("fastnmf")
    for name in getattr(fastnmf, "_ENV_SET_AT_IMPORT", ()):
        env.pop(name, None)
    return env


def run_backprop(Xtr, ytr, Xte, yte, hidden, epochs, threads, seed, *,
                 loss="cross_entropy", isolated=True, full=False):
    """Adam backprop of a ReLU MLP with hidden widths ``hidden``.

    Returns the rows ``(epoch, test accuracy, cumulative training seconds)``
    (``loss="mse"``: regression on float targets (n, c), test R^2);
    with ``full=True`` ``(rows, weights, train_acc)`` (see :func:`_train`).
    ``isolated``: train in a child process that does not import fastnmf
    (module docstring); its failure raises ``RuntimeError`` with its stderr.
    """
    if not isolated:
        import torch
        before = torch.get_num_threads()   # may be the OpenMP pool fastnmf shares
        try:
            out = _train(Xtr, ytr, Xte, yte, hidden, epochs, threads, seed, loss)
        finally:
            torch.set_num_threads(before)
        return out if full else out[0]
    with tempfile.TemporaryDirectory(prefix="fastnmf_backprop_") as tmp:
        d = Path(tmp)
        for key, arr in (("Xtr", Xtr), ("ytr", ytr), ("Xte", Xte), ("yte", yte)):
            np.save(d / f"{key}.npy", np.ascontiguousarray(arr))
        (d / "args.json").write_text(json.dumps(
            {"hidden": list(hidden), "epochs": epochs, "threads": threads, "seed": seed,
             "loss": loss}))
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(d)],
                              env=child_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"backprop child failed ({proc.returncode}):\n{proc.stderr}")
        res = json.loads((d / "result.json").read_text())
        rows = [tuple(r) for r in res["rows"]]
        if not full:
            return rows
        with np.load(d / "weights.npz") as z:
            weights = [(z[f"W{i}"], z[f"b{i}"]) for i in range(len(hidden) + 1)]
        return rows, weights, res["train_acc"]


def _child(d: Path) -> int:
    if "fastnmf" in sys.modules:   # the point of the child: never in it
        raise RuntimeError("fastnmf was imported in the backprop child")
    args = json.loads((d / "args.json").read_text())
    arrs = {k: np.load(d / f"{k}.npy") for k in ("Xtr", "ytr", "Xte", "yte")}
    rows, weights, train_acc = _train(arrs["Xtr"], arrs["ytr"], arrs["Xte"], arrs["yte"],
                                      tuple(args["hidden"]), args["epochs"], args["threads"],
                                      args["seed"], args["loss"])
    np.savez(d / "weights.npz", **{f"{n}{i}": a for i, wb in enumerate(weights)
                                   for n, a in zip("Wb", wb)})
    (d / "result.json").write_text(json.dumps({"rows": rows, "train_acc": train_acc}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1])))
