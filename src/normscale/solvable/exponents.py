"""Asymptotic exponents of the PLRF model: the classic laws, compute-optimal, dynamical laws.

In the (a, b) convention (spectrum k^-b, target power k^-a per mode;
:mod:`~normscale.solvable.model` gives the map to (alpha, beta)):

- gradient flow, P, N -> infinity: L(t) ~ t^-(a-1)/b (:func:`time_exponent`);
- t -> infinity (minimum-norm solution), N -> infinity: L(P) ~ P^-min(a-1, 2b)
  (:func:`size_exponent`); Bordelon et al. give the same for L(N) at P -> infinity,
  but with a Gaussian projection the feature-limited floor is
  L(N) ~ N^-min(a-1, b) (:func:`model_exponent`; Paquette et al.'s F_0);
- compute C = N t at the frontier of L ~ t^-(a-1)/b + N^-min(a-1, b)
  (:func:`compute_optimal`);
- one-pass SGD (Paquette et al. 2024), d -> infinity, alpha > 1/2: the
  population-bias term decays as t^-(2 alpha + 2 beta - 1)/(2 alpha), the SGD
  noise term as t^-(2 - 1/(2 alpha)); the slower one sets the exponent
  (:func:`sgd_time_exponent`, :func:`sgd_phase`);
- the norm-indexed laws of gradient flow with label noise, derived in
  docs/science.md ("Solvable models"): gamma1 = 2(a-1)/(1+b-a),
  gamma2 = (1+b-a)/(2a), gamma = gamma1 gamma2 = (a-1)/a when a < 1 + b (a
  target of infinite norm); none of the norm laws holds when a > 1 + b
  (:func:`dynamical_exponents`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from normscale._validation import POSITIVE, Interval, check_param
from normscale.errors import ParameterError


def _check_ab(owner: str, a: float, b: float) -> None:
    from numbers import Real

    check_param(owner, "a", a, Interval(Real, 1, None, closed="neither"))
    check_param(owner, "b", b, POSITIVE)


def ab_from_alpha_beta(*, alpha: float, beta: float) -> tuple[float, float]:
    """(a, b) = (2 alpha + 2 beta, 2 alpha)."""
    return 2 * alpha + 2 * beta, 2 * alpha


def alpha_beta_from_ab(*, a: float, b: float) -> tuple[float, float]:
    """(alpha, beta) = (b/2, (a - b)/2)."""
    return b / 2, (a - b) / 2


def time_exponent(*, a: float, b: float) -> float:
    """(a - 1)/b: L(t) ~ t^-(a-1)/b under gradient flow with P, N -> infinity.

    Notes
    -----
    L(t) = sum_k k^-a exp(-2 t k^-b) ~ (1/b) Gamma((a-1)/b) (2t)^-(a-1)/b.
    """
    _check_ab("time_exponent", a, b)
    return (a - 1) / b


def size_exponent(*, a: float, b: float) -> float:
    """min(a - 1, 2b): L(P) (N, t -> infinity) and L(N) (P, t -> infinity)."""
    _check_ab("size_exponent", a, b)
    return min(a - 1, 2 * b)


def model_exponent(*, a: float, b: float) -> float:
    """min(a - 1, b): L(N) at P, t -> infinity in the PLRF model (Gaussian projection W).

    The best student of N features leaves the target's tail beyond mode N,
    sum_{k>N} k^-a ~ N^-(a-1), and, when the target has a finite norm (a > 1
    + b), the tail modes' leakage through the projection: fitting the first
    N modes with a coefficient vector of norm O(1) puts sum_{k>N} lam_k / N
    ~ N^-b of error on the rest. It is Paquette et al.'s capacity floor
    F_0 ~ d^(-2 alpha + max(0, 1 - 2 beta)). On samples the same leakage is
    second order (the implicit ridge squared), hence 2b in
    :func:`size_exponent`: the two sizes are not symmetric in this model.
    """
    _check_ab("model_exponent", a, b)
    return min(a - 1, b)


def size_branch(*, a: float, b: float) -> str:
    """Which term of min(a - 1, 2b) binds: ``"a-1"`` (the unlearned tail of the target) or
    ``"2b"`` (the implicit ridge of the minimum-norm solution, P^-b squared)."""
    _check_ab("size_branch", a, b)
    return "a-1" if a - 1 <= 2 * b else "2b"


@dataclass(frozen=True)
class ComputeOptimal:
    """The compute-optimal exponents of C = N t for L = t^-(a-1)/b + N^-min(a-1, b).

    Attributes
    ----------
    n_exp : float
        N_opt ~ C^n_exp: the model size at the optimum.
    t_exp : float
        t_opt ~ C^t_exp: the training time at the optimum (n_exp + t_exp = 1).
    loss_exp : float
        L_opt ~ C^-loss_exp: the loss at the optimum falls with this exponent.
    """

    n_exp: float
    t_exp: float
    loss_exp: float


def compute_optimal(*, a: float, b: float) -> ComputeOptimal:
    """The compute-optimal allocation of C = N t for L = t^-(a-1)/b + N^-m, m = min(a-1, b).

    Both terms are equal at the optimum (a sum of two power laws is minimised
    at fixed N t where their logarithmic slopes balance, which up to a
    constant equates them): t = N^(m b/(a-1)), so N ~ C^(1/(1 + m b/(a-1))).
    On the branch a - 1 < b: N ~ C^(1/(1+b)), t ~ C^(b/(1+b)),
    L ~ C^-(a-1)/(1+b) (Bordelon et al. 2024; Paquette et al.'s phase I, d* ~ f^(1/(1+2 alpha))).
    """
    m, r = model_exponent(a=a, b=b), time_exponent(a=a, b=b)
    ratio = m / r                        # t = N^ratio
    n_exp = 1 / (1 + ratio)
    return ComputeOptimal(n_exp, ratio * n_exp, m * n_exp)


def sgd_time_exponent(*, alpha: float, beta: float) -> float:
    """One-pass SGD, d -> infinity, alpha > 1/2: min((2a+2b-1)/(2a), 2 - 1/(2a)) in alpha, beta.

    The first is the population-bias (forcing) term, sum_j j^(-2alpha-2beta)
    exp(-2 gamma t j^-2alpha); the second the noise kernel k(t) ~ sum_j
    j^-4alpha exp(-2 gamma t j^-2alpha). Raises for alpha <= 1/2, where tr K
    grows with d and the step size must shrink with d (not covered here).
    """
    check_param("sgd_time_exponent", "alpha", alpha, POSITIVE)
    if alpha <= 0.5:
        raise ParameterError(f"sgd_time_exponent needs alpha > 1/2 (tr K bounded in d); "
                             f"got alpha={alpha:g}")
    if not 2 * alpha + 2 * beta > 1:
        raise ParameterError(f"sgd_time_exponent needs 2 alpha + 2 beta > 1; got "
                             f"alpha={alpha:g}, beta={beta:g}")
    return min((2 * alpha + 2 * beta - 1) / (2 * alpha), 2 - 1 / (2 * alpha))


def sgd_phase(*, alpha: float, beta: float) -> str:
    """The phase of Paquette et al. (2024) by which terms of the risk matter.

    ``"I"``: 2 beta < 1 < 2 alpha (population bias and the capacity floor);
    ``"II"``: 2 beta > 1, alpha > 1/2, beta < alpha (bias, feature embedding,
    floor); ``"III"``: beta > alpha > 1/2 (the SGD noise decays slowest);
    ``"IV"``: alpha < 1/2 < beta (tr K grows with d); ``"none"``: 2 alpha + 2
    beta <= 1. The subphases (a, b, c) of the paper are not resolved, and the
    leftover corner alpha < 1/2, beta < 1/2 is reported as ``"I"`` as in the paper's
    figure (its Ia/Ib).
    """
    if not 2 * alpha + 2 * beta > 1:
        return "none"
    if beta < 0.5:
        return "I"
    if alpha < 0.5:
        return "IV"
    return "II" if beta < alpha else "III"


@dataclass(frozen=True)
class DynamicalPrediction:
    """The norm-indexed laws of gradient flow with label noise at fixed noise, N -> infinity.

    Attributes
    ----------
    gamma1 : float
        The early-training law L ~ |theta|^-gamma1: 2(a-1)/(1+b-a); NaN when
        the laws do not hold.
    gamma2 : float
        The optimal norm |theta_opt| ~ P^gamma2: (1+b-a)/(2a); NaN when the
        laws do not hold.
    gamma : float
        The data exponent of the optimally stopped risk, L_opt ~ P^-gamma:
        (a-1)/a in both regimes (gamma1 gamma2 where the laws hold).
    holds : bool
        False when a >= 1 + b: the target then has a finite norm,
        |theta(t)| converges while the risk still falls, so there is no
        power law in the norm.
    reason : str
        Why the laws do not hold; empty when they do.
    """

    gamma1: float
    gamma2: float
    gamma: float
    holds: bool
    reason: str = ""


def dynamical_exponents(*, a: float, b: float) -> DynamicalPrediction:
    """gamma1 = 2(a-1)/(1+b-a), gamma2 = (1+b-a)/(2a), gamma = (a-1)/a (docs/science.md).

    Notes
    -----
    Early in training |theta(t)|^2 ~ sum_{k < t^(1/b)} k^(b-a) ~ t^((1+b-a)/b)
    and L(t) ~ t^-(a-1)/b, so L ~ |theta|^-gamma1. The optimal stopping time
    balances the bias t^-(a-1)/b against the variance sigma^2 t^(1/b) / P:
    t_opt ~ (P/sigma^2)^(b/a), L_opt ~ P^-(a-1)/a, and at t_opt the fitted
    noise adds to |theta|^2 a term of the same order as the signal, so
    |theta_opt| ~ P^((1+b-a)/(2a)).
    """
    _check_ab("dynamical_exponents", a, b)
    gamma = (a - 1) / a
    if a >= 1 + b:
        return DynamicalPrediction(math.nan, math.nan, gamma, False,
                                   f"a = {a:g} >= 1 + b = {1 + b:g}: the target has a finite norm; "
                                   "|theta| saturates while the risk falls (no law in the norm)")
    return DynamicalPrediction(2 * (a - 1) / (1 + b - a), (1 + b - a) / (2 * a), gamma, True)
