"""The N -> infinity replica theory of the fixed-norm teacher-student perceptron.

docs/science.md 1.4: the replica-symmetric zero-temperature saddle point for any
convex loss (:mod:`~normscale.theory.losses`), solved by
:func:`solve_saddle` / :func:`solve` / :func:`learning_curve`, the optimal
norm :func:`lambda_opt`, the reference curves of docs/science.md 1.2
(:mod:`~normscale.theory.closed_forms`) and the paper's perceptron analysis
(:func:`perceptron_laws`, imported from :mod:`normscale.theory.analysis`).
"""

from normscale.theory.closed_forms import (
    bayes,
    gibbs,
    hebb_error,
    hebb_overlap,
    max_stability,
)
from normscale.theory.curves import LambdaOpt, LearningCurve, lambda_opt, learning_curve, solve
from normscale.theory.losses import Hinge, Linear, Logistic, Loss, Square, loss_family
from normscale.theory.saddle import SaddlePoint, solve_saddle, variational_energy

__all__ = [
    "Hinge", "LambdaOpt", "LearningCurve", "Linear", "Logistic", "Loss", "SaddlePoint",
    "Square", "bayes", "gibbs", "hebb_error", "hebb_overlap", "lambda_opt", "learning_curve",
    "loss_family", "max_stability", "solve", "solve_saddle", "variational_energy",
]
