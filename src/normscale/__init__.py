"""normscale: neural scaling laws from learning curves indexed by a norm of the weights.

Implements and extends D'Amico, Bocchi, Negri, "Implicit bias produces neural
scaling laws in learning curves, from perceptrons to deep networks",
arXiv 2505.13230 (2025).

The pipeline, one subpackage per concept:
``data -> nets -> train (with norms) -> store -> laws -> report``, and beside
it the perceptron lab (``perceptron``) with its replica theory (``theory``).
"""

from normscale.errors import NormscaleError, ParameterError

__version__ = "0.1.0"
__all__ = ["NormscaleError", "ParameterError", "__version__"]
