"""The paper's perceptron analysis in the N -> infinity limit (docs/science.md 1.5).

Learning curves eps_hat(lambda) from the replica theory for several alpha,
lambda_opt(alpha) from the scalar search, and the laws: gamma1 (early
power law, window found automatically by :func:`normscale.laws.window.find_window`
in lambda/lambda_opt units), gamma2 (lambda_opt ~ alpha^gamma2), gamma_meas
(eps_hat_opt ~ alpha^-gamma_meas) and gamma_pred = gamma1 * gamma2, and the
collapse (:func:`normscale.laws.collapse.collapse_variance`).

Errors are relative, eps_hat = eps / eps_0 (eps_0 = Hebb): eps_0 ~ alpha^-1/2,
so eps_hat_opt ~ alpha^-1/2 while eps_opt itself ~ alpha^-1 (near Bayes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale._validation import POSITIVE, check_array
from normscale.laws.collapse import Collapse, collapse_variance
from normscale.laws.curves import Curve
from normscale.laws.estimate import Exponents
from normscale.laws.powerlaw import PowerLaw, fit_power_law
from normscale.laws.window import Window, find_window
from normscale.theory.curves import LambdaOpt, LearningCurve, lambda_opt, learning_curve


@dataclass(frozen=True)
class TheoryLaws(Exponents):
    """The scaling laws of the N -> infinity perceptron over a set of alphas."""

    curves: tuple[LearningCurve, ...]  # eps(lambda) at each alpha, alpha increasing
    optima: tuple[LambdaOpt, ...]  # lambda_opt and the error there, at each alpha
    window: Window           # gamma1 = window.gamma1
    lambda_law: PowerLaw     # lambda_opt = k2 alpha^gamma2
    eps_law: PowerLaw        # eps_hat_opt = k alpha^(-gamma_meas)
    collapse: Collapse  # spread of eps_hat/eps_hat_opt against lambda/lambda_opt across alphas

    def summary(self) -> dict:
        """The numbers, JSON-able."""
        return {
            "gamma1": self.gamma1, "gamma1_err": self.window.gamma1_err,
            "window": [self.window.lo, self.window.hi],
            "gamma2": self.gamma2, "gamma2_err": self.lambda_law.exponent_err,
            "k2": self.lambda_law.prefactor,
            "gamma_pred": self.gamma_pred,
            "gamma_meas": self.gamma_meas, "gamma_meas_err": self.eps_law.exponent_err,
            "collapse_rms_spread": self.collapse.rms_spread,
            "optima": [{"alpha": o.alpha, "lam_opt": o.lam_opt, "eps_opt": o.eps_opt,
                        "eps_hat_opt": o.eps_hat_opt} for o in self.optima],
        }


def perceptron_laws(*, alphas, lams, loss: str = "logistic") -> TheoryLaws:
    """Run the paper's perceptron analysis on the replica theory (docs/science.md 1.5).

    Parameters
    ----------
    alphas : array-like of shape (n_alpha,)
        P/N values (3 or more), > 0.
    lams : array-like of shape (n_lam,)
        Norms of the learning curves, > 0.
    loss : str
        Loss family (default the paper's logistic loss).

    Returns
    -------
    TheoryLaws
    """
    alphas = np.unique(check_array("perceptron_laws", "alphas", alphas, POSITIVE))
    lams = np.unique(check_array("perceptron_laws", "lams", lams, POSITIVE))
    curves = tuple(learning_curve(alpha=float(a), lams=lams, loss=loss) for a in alphas)
    optima = tuple(lambda_opt(alpha=float(a), loss=loss, lam_min=min(lams[0], 1e-2),
                              lam_max=max(lams[-1], 1e3)) for a in alphas)
    lam_opt = np.array([o.lam_opt for o in optima])
    eps_hat_opt = np.array([o.eps_hat_opt for o in optima])
    law_curves = [Curve(float(c.alpha), c.lam, c.eps_hat) for c in curves]
    return TheoryLaws(
        curves=curves,
        optima=optima,
        window=find_window(law_curves, lam_opt),
        lambda_law=fit_power_law(alphas, lam_opt, what="lambda_opt(alpha)"),
        eps_law=fit_power_law(alphas, eps_hat_opt, what="eps_hat_opt(alpha)"),
        collapse=collapse_variance(law_curves, lam_opt, eps_hat_opt),
    )
