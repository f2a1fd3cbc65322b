"""The classic scaling laws beside the dynamical ones.

Forms (:mod:`~normscale.scaling.forms`): ``power`` y = a P^-alpha + c
(Hestness et al. 2017), ``joint`` y = E + A N^-alpha + B P^-beta (Rosenfeld
et al. 2020; Kaplan et al. 2020; Hoffmann et al. 2022) and ``broken``, a
smoothly broken power law (Caballero et al. 2022). One objective, a robust
loss on log y in log-sum-exp form, minimised by variable projection
(:mod:`~normscale.scaling.projection`: the exponents searched, the
coefficients solved linearly) with the Levenberg-Marquardt engine of
:mod:`~normscale.scaling.engine`, or by that engine from thousands of
starts at once, every start kept (:func:`fit_form`); a bootstrap over
configurations (:func:`bootstrap_fit`);
the compute-optimal allocation of a joint fit (:func:`compute_optimal`); an
extrapolation check on held-out largest configurations (:func:`holdout`);
:func:`analyse`, all of it on a table; and the model-size axis of
normscale's own width sweeps (:func:`load_runs`, :func:`optima`: eps_opt
per run with its parameter count N). See docs/scaling.md.
"""

from normscale.scaling.allocation import Allocation, CostModel, compute_optimal, fit_cost
from normscale.scaling.analysis import ScalingAnalysis, analyse, load_table
from normscale.scaling.figures import write_figures
from normscale.scaling.fit import (
    METHODS,
    Bootstrap,
    ScalingFit,
    ScalingWarning,
    Starts,
    bootstrap_fit,
    fit_form,
)
from normscale.scaling.forms import FORMS, epoch_grid, get_form
from normscale.scaling.holdout import Holdout, holdout
from normscale.scaling.runs import load_runs, optima
from normscale.scaling.width import fit_width_study

__all__ = ["FORMS", "METHODS", "Allocation", "Bootstrap", "CostModel", "Holdout", "ScalingAnalysis",
           "ScalingFit", "ScalingWarning", "Starts", "analyse", "bootstrap_fit",
           "compute_optimal", "epoch_grid", "fit_cost", "fit_form", "fit_width_study", "get_form",
           "holdout",
           "load_runs", "load_table", "optima", "write_figures"]
