"""The perceptron lab (docs/science.md 1.1-1.3, 1.5): teacher-student data, the fixed-norm
logistic perceptron along a lambda grid, free-norm gradient descent, and the two
reference rules (Hebb, maximal stability) that bound the fixed-norm curve.

lambda = |w| / sqrt(N) is the norm throughout.
"""

from normscale.perceptron.data import PerceptronData, generalization_error, make_data, overlap
from normscale.perceptron.experiment import COLUMNS, PerceptronConfig, run_perceptron
from normscale.perceptron.fixed import FixedNormPath, fixed_norm_path
from normscale.perceptron.gd import GDPath, default_lr, gradient_descent
from normscale.perceptron.rules import MaxStability, hebb, hebb_error, hebb_overlap, max_stability

__all__ = [
    "COLUMNS", "FixedNormPath", "GDPath", "MaxStability", "PerceptronConfig", "PerceptronData",
    "default_lr", "fixed_norm_path", "generalization_error", "gradient_descent", "hebb",
    "hebb_error", "hebb_overlap", "make_data", "max_stability", "overlap", "run_perceptron",
]
