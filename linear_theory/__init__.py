"""The mathematics of IBVI for linear models (THEORY.md §1–2).

Gaussians with covariance factors and the 2-Wasserstein distance, row/null-space tools, the
closed forms (IBVI limit, W₂-GVI minimizers, GD iterate, Bayesian posterior), simulators and
problem generators. Everything is float64 and never forms a ``d × d`` matrix unless asked.
"""
from .closed_form import (bayes_posterior, expected_loss, gd_iterate, ibvi_limit, ibvi_limit_w2_squared,
                          w2_gvi)
from .gaussian import Gaussian, MeanFieldGaussian, Predictive, w2, w2_squared
from .problems import (ClassificationProblem, FeatureRegression1D, RegressionProblem, feature_regression_1d,
                       random_regression, separable_classification)
from .simulate import DivergenceError, SimulationResult, Trace, simulate, stability_bound
from .subspace import (RowSpaceBasis, RowSpaceSolver, project_null, project_row, row_space_basis,
                       row_space_solver)

__all__ = [
    "Gaussian", "MeanFieldGaussian", "Predictive", "w2", "w2_squared",
    "RowSpaceBasis", "RowSpaceSolver", "row_space_basis", "row_space_solver", "project_null", "project_row",
    "ibvi_limit", "ibvi_limit_w2_squared", "w2_gvi", "gd_iterate", "bayes_posterior", "expected_loss",
    "simulate", "stability_bound", "DivergenceError", "SimulationResult", "Trace",
    "RegressionProblem", "random_regression", "FeatureRegression1D", "feature_regression_1d",
    "ClassificationProblem", "separable_classification",
]
from .classification import *  # noqa: F401,F403,E402  (claims C7, C8: exponential/logistic loss, SVM)
from .classification import __all__ as _classification_all  # noqa: E402
__all__ += _classification_all
