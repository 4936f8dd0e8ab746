"""Conformance kit: check anyone's IBVI trainer against the theorems on the linear model."""
from .checks import (CHECKS, CheckResult, Claims, ConformanceReport, assert_conforms, check_conformance,
                     shared_sample_noise)
from .protocol import (TensorTrainer, Trainer, TrainerError, TrainerOptions, TrainerResult, TrainerTrace,
                       as_result, reference_trainer)
