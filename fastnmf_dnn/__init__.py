"""fastnmf_dnn: backprop-free training of ReLU networks by alternating NMF solves.

A thin layer over :mod:`fastnmf` (public functions only):

NMFNetClassifier, NMFNetRegressor
    scikit-learn estimators trained by the alternating semi-NMF / nonlinear
    semi-NMF sweeps of Sakurai et al. (2016), with biases and ridge
    regularization (Arai et al. 2018); no gradients, no learning rate.
NMFAutoencoder
    Stacked NMF autoencoder (pre-training, or features on its own).
Trainer, TrainOptions, PRESETS, Network
    The trainer itself, for users who want the sweep without scikit-learn.
save_model, load_model
    Portable ``.npz`` + JSON model files (no pickle).
datasets
    IDX reader and Fashion-MNIST / MNIST / digits loaders.
"""
import fastnmf as _fastnmf  # noqa: F401  (sets the thread-spin environment before numpy)

from .autoencoder import NMFAutoencoder
from .estimators import NMFNetClassifier, NMFNetRegressor
from .network import Network
from .persistence import load_model, save_model
from .pretrain import pretrain_stack
from .trainer import PRESETS, TrainOptions, Trainer

__version__ = _fastnmf.__version__
__all__ = [
    "NMFAutoencoder", "NMFNetClassifier", "NMFNetRegressor", "Network", "PRESETS",
    "TrainOptions", "Trainer", "load_model", "pretrain_stack", "save_model",
]
