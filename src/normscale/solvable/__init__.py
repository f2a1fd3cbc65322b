"""Solvable models of neural scaling laws: linear random features on power-law data.

The power-law random-feature model (PLRF) of Paquette, Paquette, Xiao,
Pennington (2024), in their (alpha, beta) convention and in the (a, b) one of
Maloney, Roberts, Sully (2022) and Bordelon, Atanasov, Pehlevan (2024)
(:mod:`~normscale.solvable.model`); gradient flow on P samples, exact per
draw (:mod:`~normscale.solvable.flow`); one-pass SGD simulated
(:mod:`~normscale.solvable.sgd`) and its exact expected risk, a Volterra
recursion (:mod:`~normscale.solvable.volterra`); the asymptotic exponents
(:mod:`~normscale.solvable.exponents`); tables in the long format of
``normscale fit`` and ``normscale scaling``, fitted by their own code
(:mod:`~normscale.solvable.experiment`); the study, its presets and figures
(:mod:`~normscale.solvable.study`, :mod:`~normscale.solvable.figures`).
See docs/solvable.md.
"""

from normscale.solvable.exponents import (
    ComputeOptimal,
    DynamicalPrediction,
    ab_from_alpha_beta,
    alpha_beta_from_ab,
    compute_optimal,
    dynamical_exponents,
    model_exponent,
    sgd_phase,
    sgd_time_exponent,
    size_branch,
    size_exponent,
    time_exponent,
)
from normscale.solvable.flow import FlowCurve, gradient_flow, population_flow
from normscale.solvable.model import Features, PowerLawModel, draw_features
from normscale.solvable.sgd import SGDCurve, log_steps, sgd_monte_carlo
from normscale.solvable.volterra import max_stable_gamma, noise_kernel_norm, sgd_theory

__all__ = [
    "ComputeOptimal", "DynamicalPrediction", "Features", "FlowCurve", "PowerLawModel",
    "SGDCurve", "ab_from_alpha_beta", "alpha_beta_from_ab", "compute_optimal",
    "draw_features", "dynamical_exponents", "gradient_flow", "log_steps", "max_stable_gamma",
    "model_exponent", "noise_kernel_norm", "population_flow", "sgd_monte_carlo", "sgd_phase",
    "sgd_theory", "sgd_time_exponent", "size_branch", "size_exponent", "time_exponent",
]
