"""The N -> infinity replica theory of the fixed-norm teacher-student perceptron.

docs/science.md 1.4: the replica-symmetric zero-temperature saddle point for any
convex loss (:mod:`~normscale.theory.losses`), solved by
:func:`solve_saddle` / :func:`solve` / :func:`learning_curve`, the optimal
norm :func:`lambda_opt`, the reference curves of docs/science.md 1.2
(:mod:`~normscale.theory.closed_forms`) and the paper's perceptron analysis
(:func:`perceptron_laws`, imported from :mod:`normscale.theory.analysis`).
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for readers and the API docs; at run time each is imported on first use
    from normscale.theory.closed_forms import (
        bayes,
        gibbs,
        hebb_error,
        hebb_overlap,
        max_stability,
    )
    from normscale.theory.curves import (
        LambdaOpt,
        LearningCurve,
        lambda_opt,
        learning_curve,
        solve,
    )
    from normscale.theory.losses import Hinge, Linear, Logistic, Loss, Square, loss_family
    from normscale.theory.saddle import SaddlePoint, solve_saddle, variational_energy

__all__ = [
    "Hinge", "LambdaOpt", "LearningCurve", "Linear", "Logistic", "Loss", "SaddlePoint",
    "Square", "bayes", "gibbs", "hebb_error", "hebb_overlap", "lambda_opt", "learning_curve",
    "loss_family", "max_stability", "solve", "solve_saddle", "variational_energy",
]
#: where each public name lives: imported on first use (PEP 562), so that importing one
#: submodule (the CLI's parser needs none) does not import scipy.integrate for all of them
_WHERE = {
    **dict.fromkeys(("bayes", "gibbs", "hebb_error", "hebb_overlap", "max_stability"),
                    "normscale.theory.closed_forms"),
    **dict.fromkeys(("LambdaOpt", "LearningCurve", "lambda_opt", "learning_curve", "solve"),
                    "normscale.theory.curves"),
    **dict.fromkeys(("Hinge", "Linear", "Logistic", "Loss", "Square", "loss_family"),
                    "normscale.theory.losses"),
    **dict.fromkeys(("SaddlePoint", "solve_saddle", "variational_energy"),
                    "normscale.theory.saddle"),
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'normscale.theory' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
