"""Norm-based complexity of any PyTorch model (docs/science.md 2.1).

- :func:`measure` -- the measures of :data:`MEASURES` (spectral complexity
  R_A and its log10 and factors, l1, l2, G_{2,1}, spectral product, distance
  from initialisation), exact, in float64;
- :func:`layers` -- what was counted, one row per matrix (a pandas DataFrame,
  or :class:`LayerNorms` with ``frame=False``);
- :class:`NormTracker` -- the same, repeated cheaply during training
  (warm-started power iteration);
- :func:`discover` -- the weight matrices of a model;
- :func:`conv_operator_norm` -- the exact operator norm of a circular
  convolution; :func:`power_iteration` -- one spectral norm.
"""

from normscale.norms.conv_operator import conv_input_sizes, conv_operator_norm
from normscale.norms.discovery import Discovery, LayerSpec, discover
from normscale.norms.measures import (
    MEASURES,
    Complexity,
    LayerNorms,
    log_spectral_complexity,
    two_one_norm,
)
from normscale.norms.power import PowerResult, power_iteration
from normscale.norms.tracker import LAYER_COLUMNS, NormReport, NormTracker, layers, measure

__all__ = [
    "LAYER_COLUMNS",
    "MEASURES",
    "Complexity",
    "Discovery",
    "LayerNorms",
    "LayerSpec",
    "NormReport",
    "NormTracker",
    "PowerResult",
    "conv_input_sizes",
    "conv_operator_norm",
    "discover",
    "layers",
    "log_spectral_complexity",
    "measure",
    "power_iteration",
    "two_one_norm",
]
