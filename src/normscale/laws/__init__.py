"""The dynamical scaling laws from learning curves (docs/science.md, introduction and 2.3).

``load_curves`` reads a table of curves, ``fit_laws`` fits gamma1, gamma2,
gamma_pred and gamma_meas with their uncertainties, the offset form, the
collapse (its variance and the Houdayer-Hartmann S) and a back-test;
``write_report`` writes figures and tables.
"""

from normscale.laws.fit import LawsFit, fit_laws
from normscale.laws.load import load_curves
from normscale.laws.report import write_report

__all__ = ["LawsFit", "fit_laws", "load_curves", "write_report"]
