"""The classic scaling forms, each written as log y = LSE(terms) of its parameters.

Every form is a log-sum-exp of a few terms that are smooth in unconstrained
parameters (Hoffmann et al. 2022, as refitted by Besiroglu et al. 2024):

- ``power`` (Hestness et al. 2017): y = a x^-alpha + c,
  log y = LSE(log a - alpha log x, log c);
- ``joint`` (Rosenfeld et al. 2020; Kaplan et al. 2020; Hoffmann et al. 2022):
  y = E + A N^-alpha + B P^-beta,
  log y = LSE(log A - alpha log N, log B - beta log P, log E);
- ``broken`` (Caballero et al. 2022, one break):
  y = a + b x^-c0 (1 + (x/d1)^(1/f1))^(-c1 f1),
  log y = LSE(log a, log b - c0 log x - c1 f1 softplus((log x - log d1)/f1)),
  with f1 = exp(log f1) > 0; its exponent is c0 below the break and c0 + c1
  above it.

A form maps a batch of parameter vectors ``theta`` of shape (M, p) and the
log inputs ``lx`` of shape (n, d) to the predicted log y, shape (M, n), and
its Jacobian, shape (M, p, n): the fitting engine needs nothing else. Its
prefactors and floors enter as logs, so every parameter is free and every
prediction is positive.

The inputs are columns ``x`` of a table: ``power`` and ``broken`` take one
(the data size P, or any size), ``joint`` two, in the order (P, N): the data
size first, the model size second (``--data D --model N`` on the Chinchilla
table).

Every form is also separable: y = sum_j c_j phi_j(x; omega), linear in the
prefactors and floors c >= 0 once the exponents (and break) omega are fixed.
:meth:`Form.basis` gives the basis phi and its derivatives in omega, and
:meth:`Form.exponent_grid` the grid of omega that variable projection
(:mod:`normscale.scaling.projection`) ranks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


def _lse(*terms: np.ndarray, weights: bool = True) -> tuple[np.ndarray, list]:
    """log-sum-exp of same-shape terms and the softmax weight of each term."""
    top = terms[0]
    for t in terms[1:]:
        top = np.maximum(top, t)
    e = [np.exp(t - top) for t in terms]
    total = e[0]
    for x in e[1:]:
        total = total + x
    f = top + np.log(total)
    if not weights:
        return f, [None] * len(terms)
    inv = 1.0 / total
    return f, [x * inv for x in e]


def _lse_linear(terms: list[np.ndarray], const: np.ndarray,
                weights: bool = True) -> tuple[np.ndarray, list]:
    """LSE of (M, n) ``terms`` and an (M, 1) ``const`` term, summed in linear space.

    One exp per (M, n) term and no max pass: 1.5-2x cheaper than :func:`_lse`.
    Rows where that overflows or underflows (a term beyond about +-700) are
    redone with :func:`_lse`; the weights of the terms follow ``terms`` and
    then ``const``.
    """
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        e = [np.exp(t) for t in terms]
        ec = np.exp(const)
        total = e[0] + ec
        for x in e[1:]:
            total += x
        f = np.log(total)
    bad = ~(np.isfinite(f).all(axis=1) & (total.min(axis=1) > 1e-290))
    if bad.any():
        fb, sb = _lse(*(t[bad] for t in terms), np.broadcast_to(const[bad], f[bad].shape),
                      weights=weights)
        f[bad] = fb
    if not weights:
        return f, [None] * (len(terms) + 1)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        inv = 1.0 / total                              # rows in ``bad`` are redone below
        out = [x * inv for x in e] + [ec * inv]
    if bad.any():
        for w, wb in zip(out[:-1], sb[:-1], strict=True):
            w[bad] = wb
        out[-1] = np.broadcast_to(out[-1], f.shape).copy()
        out[-1][bad] = sb[-1]
    else:
        out[-1] = np.broadcast_to(out[-1], f.shape)
    return f, out


def _grid(*axes) -> np.ndarray:
    return np.array(list(itertools.product(*axes)), dtype=float)


@dataclass(frozen=True)
class Form:
    """A scaling form: names, LSE parameters, and their natural counterparts.

    Attributes
    ----------
    name : str
        The form's name: ``"power"``, ``"joint"`` or ``"broken"``.
    equation : str
        The form in its own symbols, e.g. ``y = E + A N^-alpha + B P^-beta``.
    params : tuple of str
        The free (LSE) parameters the engine moves, in the order of the
        columns of ``theta`` (prefactors and floors as logs: ``log_A,
        log_B, log_E, alpha, beta`` for ``joint``).
    natural : tuple of str
        The reported parameters, prefactors and floors as themselves (``E,
        A, B, alpha, beta`` for ``joint``), in the order of
        :meth:`to_natural`'s columns.
    x_names : tuple of str
        The inputs in the order of the columns of ``lx``: (x,) for ``power``
        and ``broken``, (P, N) for ``joint``.
    linear : tuple of str
        The coefficients c that enter y linearly once the searched
        parameters are fixed (prefactors and floors), in the order of
        :meth:`basis`'s terms.
    searched : tuple of str
        The parameters omega that variable projection searches on
        :meth:`exponent_grid` (exponents, and the break of ``broken``).
    """

    name: str
    equation: str
    params: tuple[str, ...]
    natural: tuple[str, ...]
    x_names: tuple[str, ...]
    linear: tuple[str, ...] = ()
    searched: tuple[str, ...] = ()

    @property
    def n_x(self) -> int:
        return len(self.x_names)

    def basis(self, omega: np.ndarray, lx: np.ndarray, derivatives: bool = True
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """The separable basis at searched parameters ``omega`` (M, q).

        Returns phi, shape (M, k, n), with y = sum_j c_j phi_j for the
        coefficients c of :attr:`linear`, and d(phi)/d(omega), shape
        (M, q, k, n) (None without ``derivatives``).
        """
        raise NotImplementedError

    def exponent_grid(self, lx: np.ndarray) -> np.ndarray:
        """The grid of searched parameters that variable projection ranks, shape (S, q)."""
        raise NotImplementedError

    def join(self, c: np.ndarray, omega: np.ndarray) -> np.ndarray:
        """LSE parameters (M, p) from coefficients ``c`` (M, k) >= 0 and ``omega`` (M, q).

        A coefficient at 0 (on the bound) enters as log(``TINY``): its term is
        nil to float precision and every parameter stays finite.
        """
        raise NotImplementedError

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients c (M, k) and searched parameters omega (M, q) of LSE ``theta`` (M, p)."""
        raise NotImplementedError

    def evaluate(self, theta: np.ndarray, lx: np.ndarray,
                 jacobian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Predicted log y, shape (M, n), and d(log y)/d(theta), shape (M, p, n)."""
        raise NotImplementedError

    def to_natural(self, theta: np.ndarray) -> np.ndarray:
        """Natural parameters, shape (..., p), from LSE ones."""
        raise NotImplementedError

    def from_natural(self, values: dict[str, float]) -> np.ndarray:
        """LSE parameters, shape (p,), from a dict of natural ones."""
        raise NotImplementedError

    def starts(self, lx: np.ndarray, logy: np.ndarray) -> np.ndarray:
        """The default start grid, shape (S, p), scaled to the data."""
        raise NotImplementedError

    def predict(self, natural: dict[str, float], x: np.ndarray) -> np.ndarray:
        """y at inputs ``x`` of shape (n, d) (or (n,) for one input) from natural parameters."""
        x = np.asarray(x, dtype=float).reshape(len(x), -1)
        f, _ = self.evaluate(self.from_natural(natural)[None], np.log(x), jacobian=False)
        return np.exp(f[0])


#: exponents tried by the start grids (Epoch's grid spans 0 to 2 in steps of 0.5)
START_EXPONENTS = (0.0, 0.5, 1.0, 1.5, 2.0)
#: share of the median y that a term holds at the median input, in the start grids
START_SHARES = (0.01, 0.05, 0.2, 0.5, 1.0, 2.0)
#: floor (c, E, a) as a fraction of the smallest y, in the start grids
START_FLOORS = (0.1, 0.3, 0.6, 0.9, 0.99)
#: exponent grid of variable projection: step 0.2 over (0, 3) (Epoch's step of 0.5 lands in
#: a wrong minimum with E = 0 on their data; 0.2 finds the right basin, and a step of 0.1
#: ranks 4x the points for the same best 4 starts)
PROJECTION_EXPONENTS = tuple(np.round(np.arange(0.1, 3.0, 0.2), 2))
#: a coefficient on its bound (0) enters the LSE parameters as log(TINY)
TINY = 1e-300


def _log(c: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(c, TINY))


class _Power(Form):
    def evaluate(self, theta, lx, jacobian=True):
        la, alpha, lc = theta[:, 0, None], theta[:, 1, None], theta[:, 2, None]
        lxx = lx[None, :, 0]
        t0 = la - alpha * lxx                                     # (M, n)
        f, (s0, s1) = _lse_linear([t0], lc, weights=jacobian)
        if not jacobian:
            return f, None
        J = np.stack([s0, -s0 * lxx, s1], axis=1)                 # (M, 3, n)
        return f, J

    def to_natural(self, theta):
        theta = np.asarray(theta, dtype=float)
        return np.stack([np.exp(theta[..., 0]), theta[..., 1], np.exp(theta[..., 2])], axis=-1)

    def from_natural(self, values):
        return np.array([np.log(values["a"]), values["alpha"], np.log(values["c"])])

    def basis(self, omega, lx, derivatives=True):
        lxx = lx[None, :, 0]
        g = np.exp(-omega[:, 0, None] * lxx)                      # (M, n)
        phi = np.stack([g, np.ones_like(g)], axis=1)              # (M, 2, n): a, c
        if not derivatives:
            return phi, None
        dphi = np.stack([-lxx * g, np.zeros_like(g)], axis=1)[:, None]   # (M, 1, 2, n)
        return phi, dphi

    def exponent_grid(self, lx):
        return np.arange(0.025, 3.0, 0.05)[:, None]

    def join(self, c, omega):
        return np.stack([_log(c[:, 0]), omega[:, 0], _log(c[:, 1])], axis=1)

    def split(self, theta):
        return np.exp(theta[:, [0, 2]]), theta[:, [1]]

    def starts(self, lx, logy):
        lx_med, ly_med, ly_min = np.median(lx[:, 0]), np.median(logy), logy.min()
        alphas = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
        g = _grid(alphas, np.log(START_SHARES), np.log(START_FLOORS))
        la = g[:, 0] * lx_med + ly_med + g[:, 1]
        return np.stack([la, g[:, 0], ly_min + g[:, 2]], axis=1)


class _Joint(Form):
    def evaluate(self, theta, lx, jacobian=True):
        lA, lB, lE = theta[:, 0, None], theta[:, 1, None], theta[:, 2, None]
        alpha, beta = theta[:, 3, None], theta[:, 4, None]
        lP, lN = lx[None, :, 0], lx[None, :, 1]
        tA = lA - alpha * lN
        tB = lB - beta * lP
        f, (sA, sB, sE) = _lse_linear([tA, tB], lE, weights=jacobian)
        if not jacobian:
            return f, None
        J = np.empty((len(theta), 5, lx.shape[0]))                 # (M, 5, n)
        J[:, 0], J[:, 1], J[:, 2] = sA, sB, sE
        np.multiply(sA, -lN, out=J[:, 3])
        np.multiply(sB, -lP, out=J[:, 4])
        return f, J

    def to_natural(self, theta):
        theta = np.asarray(theta, dtype=float)
        return np.stack([np.exp(theta[..., 2]), np.exp(theta[..., 0]), np.exp(theta[..., 1]),
                         theta[..., 3], theta[..., 4]], axis=-1)

    def from_natural(self, values):
        return np.array([np.log(values["A"]), np.log(values["B"]), np.log(values["E"]),
                         values["alpha"], values["beta"]])

    def basis(self, omega, lx, derivatives=True):
        lP, lN = lx[None, :, 0], lx[None, :, 1]
        gA = np.exp(-omega[:, 0, None] * lN)                      # (M, n)
        gB = np.exp(-omega[:, 1, None] * lP)
        phi = np.stack([np.ones_like(gA), gA, gB], axis=1)        # (M, 3, n): E, A, B
        if not derivatives:
            return phi, None
        dphi = np.zeros((len(omega), 2, 3, lx.shape[0]))          # (M, 2, 3, n)
        dphi[:, 0, 1] = -lN * gA
        dphi[:, 1, 2] = -lP * gB
        return phi, dphi

    def exponent_grid(self, lx):
        return _grid(PROJECTION_EXPONENTS, PROJECTION_EXPONENTS)

    def join(self, c, omega):
        return np.stack([_log(c[:, 1]), _log(c[:, 2]), _log(c[:, 0]), omega[:, 0], omega[:, 1]],
                        axis=1)

    def split(self, theta):
        return np.exp(theta[:, [2, 0, 1]]), theta[:, 3:5]

    def starts(self, lx, logy):
        lP_med, lN_med = np.median(lx[:, 0]), np.median(lx[:, 1])
        ly_med, ly_min = np.median(logy), logy.min()
        shares = np.log(START_SHARES)
        g = _grid(START_EXPONENTS, START_EXPONENTS, shares, shares, np.log(START_FLOORS))
        alpha, beta = g[:, 0], g[:, 1]
        lA = alpha * lN_med + ly_med + g[:, 2]
        lB = beta * lP_med + ly_med + g[:, 3]
        return np.stack([lA, lB, ly_min + g[:, 4], alpha, beta], axis=1)


def _softplus(u: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, u)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))


class _Broken(Form):
    def evaluate(self, theta, lx, jacobian=True):
        la, lb, c0, c1, ld1, lf1 = (theta[:, i, None] for i in range(6))
        lxx = lx[None, :, 0]
        f1 = np.exp(lf1)
        u = (lxx - ld1) / f1                                      # (M, n)
        sp = _softplus(u)
        tb = lb - c0 * lxx - c1 * f1 * sp
        f, (sa, sb) = _lse(np.broadcast_to(la, tb.shape), tb, weights=jacobian)
        if not jacobian:
            return f, None
        sig = _sigmoid(u)
        J = np.stack([sa, sb, -sb * lxx, -sb * f1 * sp, sb * c1 * sig,
                      -sb * c1 * f1 * (sp - sig * u)], axis=1)    # (M, 6, n)
        return f, J

    def to_natural(self, theta):
        theta = np.asarray(theta, dtype=float)
        return np.stack([np.exp(theta[..., 0]), np.exp(theta[..., 1]), theta[..., 2],
                         theta[..., 3], np.exp(theta[..., 4]), np.exp(theta[..., 5])], axis=-1)

    def from_natural(self, values):
        return np.array([np.log(values["a"]), np.log(values["b"]), values["c0"], values["c1"],
                         np.log(values["d1"]), np.log(values["f1"])])

    def basis(self, omega, lx, derivatives=True):
        c0, c1, ld1, lf1 = (omega[:, i, None] for i in range(4))
        lxx = lx[None, :, 0]
        f1 = np.exp(lf1)
        u = (lxx - ld1) / f1                                      # (M, n)
        sp, sig = _softplus(u), _sigmoid(u)
        g = np.exp(-c0 * lxx - c1 * f1 * sp)
        phi = np.stack([np.ones_like(g), g], axis=1)              # (M, 2, n): a, b
        if not derivatives:
            return phi, None
        dg = np.stack([-lxx * g, -f1 * sp * g, c1 * sig * g, -c1 * f1 * (sp - sig * u) * g],
                      axis=1)                                     # (M, 4, n)
        dphi = np.stack([np.zeros_like(dg), dg], axis=2)          # (M, 4, 2, n)
        return phi, dphi

    def exponent_grid(self, lx):
        breaks = np.quantile(lx[:, 0], np.linspace(0.1, 0.9, 7))
        c0 = np.arange(0.0, 1.3, 0.2)
        c1 = np.arange(-0.6, 1.3, 0.2)             # a break can flatten the curve (c1 < 0)
        return _grid(c0, c1, breaks, np.log((0.1, 0.3, 1.0)))

    def join(self, c, omega):
        return np.column_stack([_log(c[:, 0]), _log(c[:, 1]), omega])

    def split(self, theta):
        return np.exp(theta[:, :2]), theta[:, 2:6]

    def starts(self, lx, logy):
        lxx = lx[:, 0]
        ly_med, ly_min = np.median(logy), logy.min()
        breaks = np.quantile(lxx, (0.2, 0.35, 0.5, 0.65, 0.8))
        g = _grid((0.0, 0.25, 0.5, 1.0), (0.0, 0.25, 0.5, 1.0), breaks, np.log((0.1, 0.3, 1.0)),
                  np.log((0.2, 0.5, 1.0)), np.log((0.1, 0.5, 0.9)))
        c0 = g[:, 0]
        lb = c0 * np.median(lxx) + ly_med + g[:, 4]
        return np.stack([ly_min + g[:, 5], lb, c0, g[:, 1], g[:, 2], g[:, 3]], axis=1)


FORMS: dict[str, Form] = {
    "power": _Power("power", "y = a x^-alpha + c", ("log_a", "alpha", "log_c"),
                    ("a", "alpha", "c"), ("x",), ("a", "c"), ("alpha",)),
    "joint": _Joint("joint", "y = E + A N^-alpha + B P^-beta",
                    ("log_A", "log_B", "log_E", "alpha", "beta"),
                    ("E", "A", "B", "alpha", "beta"), ("P", "N"), ("E", "A", "B"),
                    ("alpha", "beta")),
    "broken": _Broken("broken", "y = a + b x^-c0 (1 + (x/d1)^(1/f1))^(-c1 f1)",
                      ("log_a", "log_b", "c0", "c1", "log_d1", "log_f1"),
                      ("a", "b", "c0", "c1", "d1", "f1"), ("x",), ("a", "b"),
                      ("c0", "c1", "log_d1", "log_f1")),
}


def get_form(name: str) -> Form:
    """The form called ``name`` (one of :data:`FORMS`)."""
    from normscale.errors import ParameterError

    if name not in FORMS:
        raise ParameterError(f"The 'form' parameter must be one of {', '.join(FORMS)}. "
                             f"Got {name!r} instead.")
    return FORMS[name]


def epoch_grid() -> np.ndarray:
    """Epoch AI's 4,500-point start grid for ``joint`` (Besiroglu et al. 2024), LSE parameters.

    e in {-1, -0.5, ..., 1}, a and b in {0, 5, ..., 25}, alpha and beta in
    {0, 0.5, ..., 2}; rows in the order (log_A, log_B, log_E, alpha, beta).
    """
    g = _grid(np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5), np.arange(-1, 1.5, 0.5),
              np.arange(0, 30, 5), np.arange(0, 30, 5))
    alpha, beta, e, a, b = g.T
    return np.stack([a, b, e, alpha, beta], axis=1)
