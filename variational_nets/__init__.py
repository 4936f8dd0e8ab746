"""PyTorch-free variational networks trained by IBVI (NumPy, optionally CuPy), SP, μP and NTP.

Modules: :mod:`.backend` (array namespace), :mod:`.validation` (the argument checks every
public function uses), :mod:`.tensors` (a trainable tensor as a type), :mod:`.parametrization`
(SP/μP/NTP), :mod:`.covariances` (one class per covariance family), :mod:`.activations`,
:mod:`.layers`, :mod:`.model` (MLP, per-layer activations), :mod:`.losses` (closed-form and Monte
Carlo expected losses), :mod:`.optim` (momentum SGD as in PyTorch, :func:`~.optim.update_factor`),
:mod:`.factor_update` (the NumPy factor update), :mod:`.bfloat16` (the buffer codec),
:mod:`.kernels` (the fused CUDA factor update), :mod:`.train` (IBVI, deterministic and mean-field
VI baselines, :func:`~.train.train_step`), :mod:`.metrics`, :mod:`.data`, :mod:`.experiment`,
:mod:`.sweep` (grids on local processes or Dask, resumable), :mod:`.coordcheck` (μP coordinate
check, claim C9), :mod:`.transfer` (step-size transfer, claim C10), :mod:`.corruptions`
(MNIST-C-style corruptions and the out-of-distribution set), :mod:`.baselines` (the methods the
paper compares IBVI with), :mod:`.benchmark` (all of them over seeds on images, claim C11),
:mod:`.plots` and :mod:`.cli` (``python -m variational_nets train|sweep|benchmark|corruptions ...``).
"""
from .backend import get_xp, to_numpy
from .experiment import ExperimentConfig, ExperimentResult, run_experiment
from .model import MLP, layer_activations
from .optim import sgd, update_factor
from .parametrization import Parametrization
from .tensors import Parameter, TensorSpec
from .train import TrainingDiverged, fit, predict, train_state, train_step

__all__ = ["get_xp", "to_numpy", "ExperimentConfig", "ExperimentResult", "run_experiment", "MLP",
           "layer_activations", "sgd", "update_factor", "Parametrization", "Parameter", "TensorSpec", "TrainingDiverged",
           "fit", "predict", "train_state", "train_step"]
