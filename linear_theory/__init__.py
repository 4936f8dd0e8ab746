"""The mathematics of IBVI for linear models (docs/theory.md §1–2).

Gaussians with covariance factors and the 2-Wasserstein distance, row/null-space tools, the
closed forms (IBVI limit, W₂-GVI minimizers, GD iterate, Bayesian posterior), simulators and
problem generators. Everything is float64 and never forms a ``d × d`` matrix unless asked.
"""
from .closed_form import (bayes_posterior, expected_loss, gd_iterate, ibvi_limit, ibvi_limit_w2_squared,
                          w2_gvi)
from .gaussian import Gaussian, MeanFieldGaussian, Predictive, w2, w2_squared
from .problems import (ClassificationProblem, FeatureRegression1D, RegressionProblem, feature_regression_1d,
                       random_regression, separable_classification)
from .simulate import DivergenceError, SimulationResult, Trace, gd_ensemble, simulate, stability_bound
from .subspace import (RowSpaceBasis, RowSpaceSolver, project_null, project_row, row_space_basis,
                       row_space_solver)

__all__ = [
    "Gaussian", "MeanFieldGaussian", "Predictive", "w2", "w2_squared",
    "RowSpaceBasis", "RowSpaceSolver", "row_space_basis", "row_space_solver", "project_null", "project_row",
    "ibvi_limit", "ibvi_limit_w2_squared", "w2_gvi", "gd_iterate", "bayes_posterior", "expected_loss",
    "simulate", "stability_bound", "gd_ensemble", "DivergenceError", "SimulationResult", "Trace",
    "RegressionProblem", "random_regression", "FeatureRegression1D", "feature_regression_1d",
    "ClassificationProblem", "separable_classification",
]
from .stability import (ThresholdResult, critical_sharpness, descent_step_threshold, factor_signal_to_noise,
                        mc_factor_threshold, predicted_mc_threshold)
from .classification import (DEFAULT_QUADRATURE_NODES, LOSSES, ClassificationLoss, ClassificationResult,
                             ClassificationTrace, SVMSolution, classification_loss, classification_step_bound,
                             default_record_steps, hard_margin_svm, simulate_classification)

__all__ += ["ThresholdResult", "mc_factor_threshold", "predicted_mc_threshold", "critical_sharpness",
            "descent_step_threshold", "factor_signal_to_noise",
            "LOSSES", "ClassificationLoss", "classification_loss", "SVMSolution", "hard_margin_svm",
            "ClassificationTrace", "ClassificationResult", "simulate_classification",
            "classification_step_bound", "default_record_steps", "DEFAULT_QUADRATURE_NODES"]
from .kronecker import (KroneckerGaussian, KroneckerGradient, KroneckerLimit, KroneckerSimulation, KroneckerTrace,
                        expected_balance_drift, kronecker_expected_loss, kronecker_first_order, kronecker_gradients,
                        kronecker_limit, kronecker_step_bound, kronecker_w2_projection, kronecker_w2_squared,
                        simulate_kronecker)

__all__ += ["KroneckerGaussian", "KroneckerGradient", "KroneckerLimit", "KroneckerSimulation", "KroneckerTrace",
            "expected_balance_drift", "kronecker_expected_loss", "kronecker_first_order", "kronecker_gradients",
            "kronecker_limit", "kronecker_step_bound", "kronecker_w2_projection", "kronecker_w2_squared",
            "simulate_kronecker"]
