"""Conformance kit: check anyone's IBVI trainer against the theorems on the linear model.

A trainer is a callable ``trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options)``
(:mod:`~proofs_check.conform.protocol`); :func:`check_conformance` runs it on a generated problem
and judges it against the closed forms (:mod:`~proofs_check.conform.checks`),
:func:`assert_conforms` does the same inside a test, and ``python -m proofs_check.conform
MODULE:CALLABLE`` from the command line (:mod:`~proofs_check.conform.cli`). docs/conformance.md
shows the whole workflow.
"""
from .checks import CHECKS, assert_conforms, check_conformance, mc_step_spread, run_checks
from .cli import add_arguments, main, run
from .protocol import (TensorTrainer, Trainer, TrainerError, TrainerOptions, TrainerResult, TrainerTrace,
                       as_result, reference_trainer)
from .report import CheckResult, ConformanceReport
from .setup import Claims, Setup, prepare

__all__ = ["CHECKS", "assert_conforms", "check_conformance", "run_checks", "mc_step_spread", "add_arguments",
           "main", "run", "TensorTrainer", "Trainer", "TrainerError", "TrainerOptions", "TrainerResult",
           "TrainerTrace", "as_result", "reference_trainer", "CheckResult", "ConformanceReport", "Claims", "Setup",
           "prepare"]
