"""``fastnmf-dnn``: train, evaluate and pre-train backprop-free ReLU networks.

Subcommands (``fastnmf-dnn COMMAND --help`` for each):

train     fit an NMFNetClassifier, with a progress bar over sweeps, a summary
          table and the final test accuracy
evaluate  accuracy and per-class accuracy of a saved model on a test set
pretrain  fit a stacked NMF autoencoder and report its errors

Data: the 8x8 digits bundled with fastnmf (default; no download), Fashion-MNIST
or MNIST (found on disk or downloaded with --download), or your own IDX files
(--train-images/--train-labels/--test-images/--test-labels).

Exit status: 0 on success, 2 for a usage or input error (bad argument,
missing or corrupt file, dataset not found: one line on stderr, no
traceback), 130 when interrupted.

MPI: ``mpiexec -n P fastnmf-dnn train ...`` trains data-parallel (needs
``pip install "fastnmf[mpi]"``): each process reads only its block of the
training and test sets, every process holds the same weights, only process 0
prints and writes files, and an error on any process aborts the whole job.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

import numpy as np

import fastnmf
from fastnmf._comm import SERIAL, as_comm

from . import datasets
from ._warm_up import warm_up_fit
from .autoencoder import NMFAutoencoder
from .estimators import NMFNetClassifier, NMFNetRegressor
from .persistence import load_model, save_model
from .trainer import PRESETS

__all__ = ["main", "build_parser"]

PROG = "fastnmf-dnn"
DATASETS = ("digits", "fashion-mnist", "mnist")
_IDX_TRAIN = ("train_images", "train_labels")
_IDX_TEST = ("test_images", "test_labels")
_SVMLIGHT = ("train_svmlight", "test_svmlight")
_DEFAULT_HIDDEN = (100,)


class UsageError(Exception):
    """A problem with the command line or the user's input (exit status 2)."""


#: User errors (exit status 2, one line): bad values, missing/corrupt files,
#: data not found, a checkpoint of another run, missing matplotlib.
_USER_ERRORS = (UsageError, OSError, ValueError, ImportError)

#: The processes of this run: SERIAL, or MPI.COMM_WORLD under mpiexec.
_COMM = SERIAL
# Set by the MPI launchers: MPICH / Intel MPI (PMI), Open MPI, MVAPICH.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _launched_size() -> int:
    """Processes the MPI launcher started (1 when not started by mpiexec)."""
    size = 1
    for var in _LAUNCHER_SIZE_VARS:
        try:
            size = max(size, int(os.environ.get(var, "1")))
        except ValueError:
            pass
    return size


def _world():
    """MPI.COMM_WORLD (wrapped) when started by mpiexec with > 1 process."""
    size = _launched_size()
    if size == 1:
        return SERIAL
    try:
        from mpi4py import MPI
    except ImportError:
        raise UsageError(f"started by mpiexec with {size} processes, but mpi4py is not "
                         "installed: pip install \"fastnmf[mpi]\"") from None
    return as_comm(MPI.COMM_WORLD)


def _threads_per_process(comm) -> int:
    """Default threads under MPI: this machine's CPUs shared by its processes
    (BLAS and kernel threads of P processes must not oversubscribe the cores)."""
    from fastnmf._threads import _available_cpus
    from mpi4py import MPI
    local = comm.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    return max(1, _available_cpus() // local)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``prog: error: message (see prog --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- argument types -------------------------------------------------------------

def _int_at_least(minimum, what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    parse.__name__ = what  # argparse names the type in some messages
    return parse


def _nonneg_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _widths(text):
    """'500,500' or '500 500' -> [500, 500] (each a positive int)."""
    parts = [p for p in text.replace(",", " ").split()]
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} holds no layer width")
    out = []
    for p in parts:
        try:
            w = int(p)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{p!r} is not a layer width (positive integers, e.g. --hidden 500,500)") from None
        if w < 1:
            raise argparse.ArgumentTypeError(f"layer widths must be >= 1, got {w}")
        out.append(w)
    return out


def _hidden(args):
    if args.hidden is None:
        return _DEFAULT_HIDDEN
    return tuple(w for group in args.hidden for w in group)


# -- parser ---------------------------------------------------------------------

def _add_data_args(p, *, train):
    g = p.add_argument_group(
        "data", "A named dataset (--dataset), your own IDX files (raw or gzipped, as\n"
        "MNIST's), or svmlight / libsvm text files (sparse data); one of the three.\n"
        "uint8 images are scaled to [0, 1]; svmlight values are used as they are.")
    g.add_argument("--dataset", choices=DATASETS, default=None,
                   help="digits: the 8x8 digits bundled with fastnmf, a fixed stratified "
                        "80/20 split (no download); fashion-mnist, mnist: the standard "
                        "60000/10000 split, searched in --data-home, $FASTNMF_DATA, "
                        "~/.cache/fastnmf, /usr/share/datasets (default: digits)")
    g.add_argument("--data-home", metavar="DIR", default=None,
                   help="first directory searched for fashion-mnist/mnist, and where "
                        "--download puts the files")
    g.add_argument("--download", action="store_true",
                   help="download fashion-mnist/mnist if not found (SHA-256 checked)")
    if train:
        g.add_argument("--train-images", metavar="PATH", help="IDX file of training images")
        g.add_argument("--train-labels", metavar="PATH", help="IDX file of training labels")
    g.add_argument("--test-images", metavar="PATH", help="IDX file of test images")
    g.add_argument("--test-labels", metavar="PATH", help="IDX file of test labels")
    if train:
        g.add_argument("--train-svmlight", metavar="PATH",
                       help="svmlight/libsvm file of training samples and labels (read as a "
                            "sparse matrix and trained on as one; feature indices one- or "
                            "zero-based as scikit-learn's load_svmlight_file guesses)")
    g.add_argument("--test-svmlight", metavar="PATH",
                   help="svmlight/libsvm file of test samples and labels")
    if train:
        g.add_argument("--n-features", type=_int_at_least(1, "--n-features"), default=None,
                       metavar="D", help="svmlight input width (default: the largest feature "
                                         "index in the training file, plus one)")


def _add_compute_args(p, *, dtype=True):
    g = p.add_argument_group("computation")
    g.add_argument("--threads", type=_int_at_least(1, "--threads"), default=None, metavar="T",
                   help="threads for BLAS and the fastnmf kernels (default: every CPU this "
                        "process may use; fastnmf.get_num_threads())")
    if dtype:
        g.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="working precision (default: float32)")


def build_parser():
    """The argparse parser of ``fastnmf-dnn`` (for documentation tools)."""
    default_iter = NMFNetClassifier().max_iter
    default_nmf_iter = NMFAutoencoder().nmf_iter
    default_enc_iter = NMFAutoencoder().encoder_iter
    parser = _Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Backprop-free training of ReLU networks by alternating NMF solves "
                    "(fastnmf_dnn).",
        epilog="Run 'fastnmf-dnn COMMAND --help' for the options of each command.\n\n"
               "Examples:\n"
               f"  {PROG} train                                  # digits, 64-100-10, ~1 s\n"
               f"  {PROG} train --dataset fashion-mnist --hidden 500,500 --save model.npz\n"
               f"  {PROG} evaluate model.npz --dataset fashion-mnist\n"
               f"  {PROG} pretrain --hidden 100 --save ae.npz\n\n"
               "Exit status: 0 success, 2 usage or input error (one line on stderr), "
               "130 interrupted.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {fastnmf.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # train
    p = sub.add_parser(
        "train", help="fit an NMFNetClassifier and report its test accuracy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit an NMFNetClassifier (alternating NMF sweeps, no backprop) on the "
                    "training split.\n\nA progress bar over sweeps (stderr; --quiet turns it "
                    "off) shows the loss, training\naccuracy, validation accuracy (with "
                    "--early-stopping) and test accuracy. The test\nsplit is only monitored "
                    "(eval_set), never used to choose weights. Ends with a\nper-sweep table, "
                    "the training time (Numba/first-call warm-up excluded and\nstated) and "
                    "'final test accuracy: ...'.",
        epilog=f"Example: {PROG} train --dataset fashion-mnist --hidden 500,500 "
               "--max-iter 20 --checkpoint ck.npz --save model.npz --plot curves.png")
    _add_data_args(p, train=True)
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=_widths, nargs="+", default=None, metavar="W",
                   help="hidden layer widths, comma- or space-separated, e.g. --hidden "
                        "500,500 or --hidden 500 500 (default: 100)")
    g.add_argument("--max-iter", type=_int_at_least(0, "--max-iter"), default=None,
                   metavar="N",
                   help=f"training sweeps (total, including resumed ones; default: the "
                        f"estimator's, {default_iter})")
    g.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="option set: default (measured best) or paper (Sakurai et al. "
                        "2016: no biases, no regularization) (default: default)")
    g.add_argument("--alpha", type=_nonneg_float, default=None, metavar="F",
                   help="ridge penalty per sample (default: the preset's)")
    g.add_argument("--pretrain", action="store_true",
                   help="initialise the hidden layers by the stacked NMF autoencoder")
    g.add_argument("--early-stopping", action="store_true",
                   help="hold out 10%% of the training data, stop when its accuracy stalls "
                        "and keep the best weights")
    g.add_argument("--seed", type=_int_at_least(0, "--seed"), default=0, metavar="S",
                   help="random seed of the initial weights and the validation split "
                        "(default: 0)")
    _add_compute_args(p)
    g = p.add_argument_group("output")
    g.add_argument("--save", metavar="MODEL.npz", help="write the fitted model there")
    g.add_argument("--checkpoint", metavar="CK.npz",
                   help="write the training state there after every sweep")
    g.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint if it exists (same data and options; "
                        "--max-iter counts all sweeps)")
    g.add_argument("--plot", metavar="CURVES.png",
                   help="write loss and accuracies vs sweep and vs seconds (needs "
                        "matplotlib)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    # evaluate
    p = sub.add_parser(
        "evaluate", help="accuracy and per-class accuracy of a saved model",
        description="Load a model written by 'train --save' (or save_model) and score it on "
                    "a test set: accuracy and a per-class accuracy table for a classifier, "
                    "R^2 for a regressor, the reconstruction error for an autoencoder.",
        epilog=f"Example: {PROG} evaluate model.npz --dataset fashion-mnist")
    p.add_argument("model", metavar="MODEL.npz", help="model file")
    _add_data_args(p, train=False)
    _add_compute_args(p, dtype=False)
    p.set_defaults(func=_cmd_evaluate)

    # pretrain
    p = sub.add_parser(
        "pretrain", help="fit a stacked NMF autoencoder and print its errors",
        description="Fit an NMFAutoencoder (layer by layer: NMF of the layer input, then a "
                    "ReLU encoder fitted to the NMF code) on the training images; print each "
                    "layer's NMF and encoder errors and the reconstruction error on the "
                    "training and test images (relative Frobenius norms). Labels are not "
                    "used (--train-labels/--test-labels are optional with IDX files).",
        epilog=f"Example: {PROG} pretrain --dataset fashion-mnist --hidden 500,200 "
               "--save ae.npz")
    _add_data_args(p, train=True)
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=_widths, nargs="+", default=None, metavar="W",
                   help="code widths, outermost first (default: 100)")
    g.add_argument("--nmf-iter", type=_int_at_least(1, "--nmf-iter"),
                   default=default_nmf_iter, metavar="N",
                   help=f"NMF iterations per layer (default: {default_nmf_iter})")
    g.add_argument("--encoder-iter", type=_int_at_least(0, "--encoder-iter"),
                   default=default_enc_iter, metavar="N",
                   help=f"fixed-point iterations per encoder (default: {default_enc_iter})")
    g.add_argument("--seed", type=_int_at_least(0, "--seed"), default=0, metavar="S",
                   help="random seed (default: 0)")
    _add_compute_args(p)
    g = p.add_argument_group("output")
    g.add_argument("--save", metavar="AE.npz", help="write the fitted autoencoder there")
    p.set_defaults(func=_cmd_pretrain)
    return parser


# -- entry point ----------------------------------------------------------------

def main(argv=None) -> int:
    """Run ``fastnmf-dnn`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        print(f"{PROG}: error: choose a command: train, evaluate or pretrain "
              f"(see {PROG} --help)", file=sys.stderr)
        return 2
    prog = f"{PROG} {args.command}"
    global _COMM
    try:
        _COMM = _world()
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, prog)
    finally:
        _COMM = SERIAL


def _run(args, prog):
    try:
        if _COMM.size > 1 and args.command != "train":
            raise UsageError(f"only 'train' runs data-parallel under mpiexec; run "
                             f"'{args.command}' as one process")
        return args.func(args)
    except BaseException as exc:
        if _COMM.size > 1 and not isinstance(exc, SystemExit):
            # One process failing while the others wait in a collective would
            # hang the job: report it and abort every process.
            import traceback
            known = isinstance(exc, _USER_ERRORS)
            detail = _one_line(exc) if known else traceback.format_exc()
            print(f"{prog}: error on MPI rank {_COMM.rank} of {_COMM.size}: {detail}",
                  file=sys.stderr, flush=True)
            # The abort kills mpiexec's stdio forwarding too; give it a moment to
            # pass the message on (seen lost once in CI: empty stderr, exit 2).
            import time
            time.sleep(0.5)
            _COMM.abort(2 if known else 1)
        if isinstance(exc, KeyboardInterrupt):
            hint = (f"; rerun with --checkpoint {args.checkpoint} --resume to continue"
                    if getattr(args, "checkpoint", None) else "")
            print(f"\n{prog}: interrupted{hint}", file=sys.stderr)
            return 130
        if isinstance(exc, _USER_ERRORS):
            # one line, no traceback
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        raise


def _one_line(exc):
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        msg = f"{exc.strerror}: {exc.filename}"
    else:
        msg = str(exc) or type(exc).__name__
    msg = " ".join(line.strip() for line in msg.splitlines() if line.strip())
    if isinstance(exc, FileNotFoundError) and ("load_fashion_mnist(download=True)" in msg
                                               or "load_mnist(download=True)" in msg):
        msg += " (here: pass --data-home DIR, or --download)"
    return msg


# -- shared helpers -------------------------------------------------------------

def _out(*parts):
    if _COMM.rank == 0:   # under MPI only process 0 prints
        print(*parts, flush=True)


def _threads_ctx(n):
    return fastnmf.threads(n) if n else contextlib.nullcontext()


def _threads_line(n_threads):
    """Which thread counts fit will use: fastnmf's, the BLAS pools', Numba's."""
    import numba
    from threadpoolctl import threadpool_info
    with _threads_ctx(n_threads):
        n = fastnmf.get_num_threads()
        blas = [f"{d.get('internal_api', '?')} {d.get('version') or ''}".strip()
                + f" ({d.get('num_threads')} threads)"
                for d in threadpool_info() if d.get("user_api") == "blas"]
        nb = numba.get_num_threads()
    src = "--threads" if n_threads else "default: the CPUs this process may use"
    from fastnmf._threads import blas_kernels
    return (f"threads: {n} (fastnmf.get_num_threads(), {src}); BLAS: "
            f"{', '.join(blas) or 'none detected'}; numpy's: {blas_kernels()}; Numba: {nb}; "
            "solves too small to gain from threads run on 1")


def _given(args, names):
    return [n for n in names if getattr(args, n, None) is not None]


def _flag(name):
    return "--" + name.replace("_", "-")


def _load_data(args, *, need_train, labels_optional=False, dtype=np.float32, shard=None,
               n_features=None):
    """(X_train, y_train, X_test, y_test, description) from the data options.

    X_train/y_train are None when ``need_train`` is False; y_* may be None
    with ``labels_optional`` and IDX files without labels. ``shard``:
    (index, count), read only that block of every set (MPI process index).
    ``n_features``: the width svmlight test data must have (a model's input).
    """
    svm = _given(args, _SVMLIGHT)
    idx = _given(args, _IDX_TRAIN + _IDX_TEST)
    if getattr(args, "n_features", None) is not None and not svm:
        raise UsageError("--n-features applies to svmlight input only")
    if svm:
        return _load_svmlight(args, svm + idx, need_train, dtype, shard, n_features)
    if idx and args.dataset is not None:
        raise UsageError(f"give either --dataset or IDX files ({', '.join(map(_flag, idx))}), "
                         "not both")
    if idx:
        if args.data_home is not None or args.download:
            raise UsageError("--data-home and --download apply to --dataset fashion-mnist/mnist, "
                             "not to IDX files")
        need = [n for n in ((_IDX_TRAIN if need_train else ()) + _IDX_TEST)
                if not (labels_optional and n.endswith("labels"))]
        missing = [n for n in need if getattr(args, n, None) is None]
        if missing:
            raise UsageError("IDX input needs " + ", ".join(map(_flag, need)) + "; missing: "
                             + ", ".join(map(_flag, missing)))
        t0 = time.perf_counter()
        Xtr = ytr = None
        if need_train:
            Xtr, ytr = _read_pair(args.train_images, args.train_labels, dtype, shard)
        Xte, yte = _read_pair(args.test_images, args.test_labels, dtype, shard)
        if Xtr is not None and Xtr.shape[1] != Xte.shape[1]:
            raise UsageError(f"training images have {Xtr.shape[1]} features but test images "
                             f"{Xte.shape[1]}")
        return Xtr, ytr, Xte, yte, f"IDX files (loaded in {time.perf_counter() - t0:.2f} s)"
    name = args.dataset or "digits"
    kw = {"dtype": dtype}
    if shard is not None:
        kw["shard"] = shard
    if name == "digits":
        if args.data_home is not None or args.download:
            raise UsageError("--data-home and --download apply to fashion-mnist and mnist; the "
                             "digits are bundled")
    else:
        kw.update(data_home=args.data_home, download=bool(args.download))
    t0 = time.perf_counter()
    d = datasets.load_dataset(name, **kw)
    secs = time.perf_counter() - t0
    what = ("digits (bundled 8x8, fixed stratified 80/20 split)" if name == "digits"
            else f"{name}")
    return d.X_train, d.y_train, d.X_test, d.y_test, f"{what}, loaded in {secs:.2f} s"


def _load_svmlight(args, given, need_train, dtype, shard, n_features):
    """svmlight/libsvm files (scikit-learn's reader): X as a CSR matrix in
    ``dtype``, y as integer labels when they are all integers. Every
    process reads the whole file and keeps its ``shard`` of the rows."""
    from sklearn.datasets import load_svmlight_file
    others = [n for n in given if n not in _SVMLIGHT]
    if others or args.dataset is not None or args.data_home is not None or args.download:
        what = others and ", ".join(map(_flag, others)) or "--dataset/--data-home/--download"
        raise UsageError(f"svmlight input ({', '.join(map(_flag, _SVMLIGHT))}) cannot be "
                         f"combined with {what}")
    need = _SVMLIGHT if need_train else _SVMLIGHT[1:]
    if need_train and args.n_features is not None:
        n_features = args.n_features
    missing = [n for n in need if getattr(args, n, None) is None]
    if missing:
        raise UsageError("svmlight input needs " + ", ".join(map(_flag, need)) + "; missing: "
                         + ", ".join(map(_flag, missing)))

    def read(path, width):
        try:
            X, y = load_svmlight_file(path, dtype=dtype, n_features=width)
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UsageError(f"{path}: not a readable svmlight file of width {width}: {exc}"
                             if width else f"{path}: not a readable svmlight file: {exc}") \
                from None
        if y.size and np.array_equal(y, np.round(y)):
            y = y.astype(np.int64)
        start, stop = datasets.shard_range(X.shape[0], shard)
        return X[start:stop], y[start:stop]

    t0 = time.perf_counter()
    Xtr = ytr = None
    if need_train:
        Xtr, ytr = read(args.train_svmlight, n_features)
        n_features = Xtr.shape[1]
    Xte, yte = read(args.test_svmlight, n_features)
    return Xtr, ytr, Xte, yte, (f"svmlight files, sparse (loaded in "
                                f"{time.perf_counter() - t0:.2f} s)")


def _read_pair(images, labels, dtype, shard=None):
    start, stop = datasets.shard_range(datasets.idx_shape(images)[0], shard)
    if labels is not None:
        return datasets.load_idx_pair(images, labels, dtype=dtype, start=start, stop=stop)
    raw = datasets.read_idx(images, start=start, stop=stop)
    X = raw.reshape(raw.shape[0], -1).astype(dtype)
    if raw.dtype == np.uint8:
        X /= 255
    return X, None


def _layers(est):
    sizes = [est.coefs_[0].shape[0]] + [c.shape[1] for c in est.coefs_]
    return "-".join(map(str, sizes))


def _table(header, rows, aligns):
    """Plain-text table: columns right-aligned ('>') or left-aligned ('<')."""
    cells = [list(header)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        lines.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, aligns, widths)).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v, spec=".4f"):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


# -- train ----------------------------------------------------------------------

def _cmd_train(args):
    prog = f"{PROG} train"
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint PATH (the file to continue from)")
    if args.save and os.path.isdir(args.save):
        raise UsageError(f"--save {args.save}: is a directory")
    if args.plot:
        from .plotting import require_matplotlib
        require_matplotlib()  # fail now, not after training
        if os.path.isdir(args.plot):
            raise UsageError(f"--plot {args.plot}: is a directory")
    dtype = np.dtype(args.dtype)
    hidden = _hidden(args)
    comm = _COMM
    mpi = comm.size > 1
    if mpi and args.threads is None:
        args.threads = _threads_per_process(comm)
    Xtr, ytr, Xte, yte, where = _load_data(args, need_train=True, dtype=dtype.type,
                                           shard=(comm.rank, comm.size) if mpi else None)
    params = dict(hidden_layer_sizes=hidden, preset=args.preset, alpha=args.alpha,
                  pretrain=args.pretrain, early_stopping=args.early_stopping,
                  random_state=args.seed, n_threads=args.threads, dtype=dtype.type)
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    est = NMFNetClassifier(**params)
    est._validate_params()  # bad values are user errors: report them before any work
    classes = np.unique(np.concatenate(comm.allgather(np.unique(ytr))))
    n_train, n_test = (int(round(comm.sum(a.shape[0]))) for a in (Xtr, Xte))
    _out(f"{prog} (fastnmf {fastnmf.__version__}): NMFNetClassifier, layers "
         f"{Xtr.shape[1]}-{'-'.join(map(str, hidden))}-{classes.size}, preset {args.preset}, "
         f"max_iter {est.max_iter}{', pretrain' if args.pretrain else ''}"
         f"{', early stopping' if args.early_stopping else ''}, seed {args.seed}, {dtype.name}")
    _out(f"data: {where}: train {n_train} x {Xtr.shape[1]}, test {n_test} x "
         f"{Xte.shape[1]}, {classes.size} classes")
    if mpi:
        _out(f"MPI: {comm.size} processes (data-parallel), each reads and trains on its own "
             f"block of samples ({Xtr.shape[0]} training samples on process 0); "
             f"{args.threads} thread{'s' if args.threads != 1 else ''} per process")
    _out(_threads_line(args.threads))
    warm_s, warm_rows, note = warm_up_fit(est, Xtr, ytr, [Xtr.shape[1], *hidden, classes.size],
                                       eval_set=(Xte, yte))
    _out(f"warm-up (Numba compile or cache load, first calls; one sweep on "
         f"{warm_rows} samples): {warm_s:.2f} s"
         + (f", {note}" if note else "") + "; not included in the times below")

    bar = _progress(est.max_iter, args.quiet)
    seen = {"first": None, "sweeps": 0}

    def callback(estimator, iteration, record):
        if seen["first"] is None:
            seen["first"] = iteration
            if iteration > 1:  # resumed: start the bar where the checkpoint left off
                bar.n = bar.last_print_n = bar.initial = iteration - 1
        seen["sweeps"] += 1
        parts = [f"loss {record['loss']:.5f}", f"train {record['train_score']:.4f}"]
        if record.get("validation_score") is not None:
            parts.append(f"val {record['validation_score']:.4f}")
        if record.get("eval_score") is not None:
            parts.append(f"test {record['eval_score']:.4f}")
        parts.append(f"{record['seconds']:.3f} s/sweep")
        bar.set_postfix_str(", ".join(parts), refresh=False)
        bar.update(1)

    t0 = time.perf_counter()
    try:
        est.fit(Xtr, ytr, eval_set=(Xte, yte), checkpoint=args.checkpoint,
                resume=args.resume, callback=callback, comm=comm)
    finally:
        bar.refresh()  # the last state reaches logs even when sweeps beat tqdm's refresh
        bar.close()
    fit_s = time.perf_counter() - t0
    with _threads_ctx(args.threads):   # over every process's block of the test set
        hits = comm.sum(np.count_nonzero(est.predict(Xte) == yte) if Xte.shape[0] else 0)
        test_acc = hits / n_test

    hist = est.history_
    n = len(hist["loss"])
    run_here = seen["sweeps"]
    resumed = n - run_here
    rows, cum = [], 0.0
    for i in range(n):
        cum += hist["seconds"][i]
        rows.append([i + 1, _fmt(hist["loss"][i], ".6f"), _fmt(hist["train_score"][i]),
                     _fmt(hist["validation_score"][i]), _fmt(hist["eval_score"][i]),
                     _fmt(hist["seconds"][i], ".3f"), _fmt(cum, ".3f")])
    _out()
    if rows:
        _out(_table(["iter", "loss", "train acc", "val acc", "test acc", "seconds", "cum. s"],
                    rows, [">"] * 7))
    else:
        _out("(no sweeps: --max-iter 0)")
    if resumed:
        _out(f"sweeps 1-{resumed} resumed from {args.checkpoint}; "
             f"{run_here} run now")
    elif args.resume:
        _out(f"--resume: no checkpoint at {args.checkpoint}, started from scratch")
    if n < est.max_iter:
        if args.early_stopping:
            best_it = int(np.nanargmax(np.array(est.validation_scores_, dtype=float))) + 1
            _out(f"stopped after {n} of {est.max_iter} sweeps: validation accuracy did not "
                 f"improve for {est.n_iter_no_change} sweeps; kept the weights of sweep "
                 f"{best_it} (validation accuracy {est.best_validation_score_:.4f})")
        else:
            _out(f"stopped after {n} of {est.max_iter} sweeps: the training loss did not "
                 f"improve by tol={est.tol:g} for {est.n_iter_no_change} sweeps")
    elif args.early_stopping and n:
        best_it = int(np.nanargmax(np.array(est.validation_scores_, dtype=float))) + 1
        _out(f"early stopping: kept the weights of sweep {best_it} (validation accuracy "
             f"{est.best_validation_score_:.4f})")
    if args.save and comm.rank == 0:
        save_model(est, args.save)
        _out(f"saved model to {args.save}")
    if args.checkpoint:
        _out(f"checkpoint: {args.checkpoint}")
    if args.plot and comm.rank == 0:
        if n:
            from .plotting import plot_history
            plot_history(hist, args.plot, title=f"NMFNetClassifier {_layers(est)}")
            _out(f"wrote curves to {args.plot}")
        else:
            _out("--plot: no sweeps, nothing plotted")
    sweep_s = float(sum(hist["seconds"][resumed:]))
    pretrained = " with pre-training" if args.pretrain and not resumed else ""
    rest = [f"setup {est.setup_seconds_:.2f} s{pretrained}", "per-sweep scoring"] + (
        ["checkpoints"] if args.checkpoint else [])
    _out(f"train time: {fit_s:.2f} s for {run_here} sweep{'s' if run_here != 1 else ''} "
         f"(fit wall time: {sweep_s:.2f} s in the sweeps, the rest {', '.join(rest)}); "
         f"warm-up {warm_s:.2f} s excluded")
    _out(f"final test accuracy: {test_acc:.4f}")
    return 0


def _progress(total, quiet):
    from tqdm import tqdm
    return tqdm(total=total, desc="sweeps", unit="sweep", file=sys.stderr,
                disable=quiet or _COMM.rank != 0,
                dynamic_ncols=True, leave=False,
                bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}"
                           "{postfix}")


# -- evaluate -------------------------------------------------------------------

def _cmd_evaluate(args):
    prog = f"{PROG} evaluate"
    est = load_model(args.model)
    if getattr(est, "_multilabel", None) is not None:
        raise UsageError(f"{args.model} is a multilabel classifier (fitted on a label "
                         "indicator matrix); the datasets here have one label per sample: "
                         "score it in Python (est.score(X, Y))")
    dtype = np.dtype(getattr(est, "dtype", np.float32))
    _, _, Xte, yte, where = _load_data(args, need_train=False, dtype=dtype.type,
                                       n_features=est.coefs_[0].shape[0])
    kind = type(est).__name__
    trained = getattr(est, "n_iter_", None)
    _out(f"{prog}: {args.model}: {kind}, layers {_layers(est)}, {dtype.name}"
         + (f", {trained} sweeps" if trained is not None else ""))
    _out(f"data: {where}: test {Xte.shape[0]} x {Xte.shape[1]}")
    _out(_threads_line(args.threads))
    with _threads_ctx(args.threads):
        if isinstance(est, NMFNetClassifier):
            pred = est.predict(Xte)
            _report_classifier(yte, pred, est.classes_)
        elif isinstance(est, NMFNetRegressor):
            _out(f"test R^2: {est.score(Xte, yte):.4f}")
        else:  # NMFAutoencoder
            err = _reconstruction_error(est, Xte)
            _out(f"test reconstruction error (relative Frobenius): {err:.4f}")
    return 0


def _report_classifier(y, pred, classes):
    correct = pred == y
    acc = float(np.mean(correct))
    _out(f"test accuracy: {acc:.4f} ({int(correct.sum())} of {y.size})")
    labels = np.union1d(classes, np.unique(y))
    rows = []
    for c in labels:
        mask = y == c
        k = int(mask.sum())
        rows.append([c, k, int(correct[mask].sum()), _fmt(float(correct[mask].mean()) if k
                                                          else None),
                     int((pred == c).sum())])
    _out()
    _out(_table(["class", "n", "correct", "accuracy", "predicted"], rows, ["<"] + [">"] * 4))
    unseen = np.setdiff1d(np.unique(y), classes)
    if unseen.size:
        _out(f"note: classes {unseen.tolist()} are not known to the model")
    return acc


def _reconstruction_error(ae, X):
    """Relative Frobenius error of the autoencoder on X (dense or sparse)."""
    from .autoencoder import _reconstruction_sq
    sq_err, sq_x = _reconstruction_sq(ae.inverse_transform(ae.transform(X)), X)
    return float(np.sqrt(sq_err) / (np.sqrt(sq_x) if sq_x > 0 else 1.0))


# -- pretrain -------------------------------------------------------------------

def _cmd_pretrain(args):
    prog = f"{PROG} pretrain"
    if args.save and os.path.isdir(args.save):
        raise UsageError(f"--save {args.save}: is a directory")
    dtype = np.dtype(args.dtype)
    hidden = _hidden(args)
    Xtr, _, Xte, _, where = _load_data(args, need_train=True, labels_optional=True,
                                       dtype=dtype.type)
    if Xtr.min() < 0 or Xte.min() < 0:
        raise UsageError("the NMF autoencoder needs nonnegative images")
    ae = NMFAutoencoder(hidden, nmf_iter=args.nmf_iter, encoder_iter=args.encoder_iter,
                        random_state=args.seed, n_threads=args.threads, dtype=dtype.type)
    _out(f"{prog} (fastnmf {fastnmf.__version__}): NMFAutoencoder, layers "
         f"{Xtr.shape[1]}-{'-'.join(map(str, hidden))}, nmf_iter {args.nmf_iter}, "
         f"encoder_iter {args.encoder_iter}, seed {args.seed}, {dtype.name}")
    _out(f"data: {where}: train {Xtr.shape[0]} x {Xtr.shape[1]}, test {Xte.shape[0]} x "
         f"{Xte.shape[1]}")
    _out(_threads_line(args.threads))
    warm_s, _, note = warm_up_fit(ae, Xtr, None, [Xtr.shape[1], *hidden])
    _out(f"warm-up (Numba compile or cache load, first calls): {warm_s:.2f} s"
         + (f", {note}" if note else "") + "; not included in the time below")
    t0 = time.perf_counter()
    ae.fit(Xtr)
    fit_s = time.perf_counter() - t0
    with _threads_ctx(args.threads):
        test_err = _reconstruction_error(ae, Xte)
    widths = [Xtr.shape[1], *hidden]
    rows = [[i + 1, f"{widths[i]} -> {widths[i + 1]}", f"{e_nmf:.4f}", f"{e_enc:.4f}"]
            for i, (e_nmf, e_enc) in enumerate(zip(ae.nmf_errors_, ae.encoder_errors_))]
    _out()
    _out(_table(["layer", "width", "NMF error", "encoder error"], rows, [">", ">", ">", ">"]))
    _out("(relative Frobenius errors: NMF ||H - C D|| / ||H|| of the layer input H; "
         "encoder ||C - relu(H W + b)|| / ||C|| of the NMF code C)")
    if args.save:
        save_model(ae, args.save)
        _out(f"saved autoencoder to {args.save}")
    _out(f"fit time: {fit_s:.2f} s (warm-up {warm_s:.2f} s excluded)")
    _out(f"reconstruction error (relative Frobenius): train {ae.reconstruction_err_:.4f}, "
         f"test {test_err:.4f}")
    return 0
