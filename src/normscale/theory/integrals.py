"""Quadrature over the pre-learning stability t (docs/science.md 1.4).

The integrands of the saddle-point equations have features at several
scales at once: the teacher-student density P_R(t) = 2 phi(t) H(-R t / s)
changes over |t| ~ s = sqrt(1 - R^2) (~1/alpha at large alpha), the
Gaussian N(0, s^2) of the R equation lives on the same scale, and the
proximal map of the loss has kinks or transitions of width ~1/lambda at
positions that move with x. A fixed Gauss-Hermite rule misses them
silently. Here the t axis is cut into panels that grow geometrically (ratio
2) away from every feature point, from a size well below the smallest scale
up to |t| = T_MAX, with Gauss-Legendre nodes on each panel. Such graded
meshes integrate functions with a kink or a narrow transition at a panel
end to near machine precision with a few hundred nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

T_MAX = 11.0  # 2 phi(11) ~ 1e-26: the t axis is cut at +-T_MAX
_N_GL = 10  # Gauss-Legendre nodes per panel
_RATIO = 2.0  # geometric growth of the panels away from a feature point
_RESOLVE = 32.0  # the smallest panel is the smallest scale / _RESOLVE
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(_N_GL)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class Grid:
    """Quadrature nodes ``t`` and weights ``w`` on [-T_MAX, T_MAX]: sum(w f(t)) ~ int f."""

    t: np.ndarray  # the nodes, increasing, in [-T_MAX, T_MAX]
    w: np.ndarray  # the weight of each node


def graded_grid(points: tuple[float, ...] | list[float], scale: float) -> Grid:
    """A composite Gauss-Legendre rule graded towards every feature point.

    Parameters
    ----------
    points : sequence of float
        Feature positions on the t axis (those outside [-T_MAX, T_MAX] are ignored).
    scale : float
        The smallest length scale to resolve (> 0).

    Returns
    -------
    Grid
    """
    h_min = scale / _RESOLVE
    n_levels = int(np.ceil(np.log(2.0 * T_MAX / h_min) / np.log(_RATIO))) + 1
    offsets = h_min * _RATIO ** np.arange(n_levels)
    centres = np.array([p for p in points if -T_MAX < p < T_MAX], dtype=float)
    edges = np.concatenate([
        [-T_MAX, T_MAX],
        centres,
        (centres[:, None] + offsets[None, :]).ravel(),
        (centres[:, None] - offsets[None, :]).ravel(),
    ])
    edges = np.unique(np.clip(edges, -T_MAX, T_MAX))
    lo, hi = edges[:-1], edges[1:]
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    t = (mid[:, None] + half[:, None] * _GL_NODES[None, :]).ravel()
    w = (half[:, None] * _GL_WEIGHTS[None, :]).ravel()
    return Grid(t, w)


def teacher_density(t: np.ndarray, theta: float) -> np.ndarray:
    """P_R(t) = 2 phi(t) H(-R t / s) with R = cos(theta), s = sin(theta) (docs/science.md 1.4)."""
    return 2.0 * _INV_SQRT_2PI * np.exp(-0.5 * t * t) * ndtr(t / np.tan(theta))


def teacher_density_dtheta(t: np.ndarray, theta: float) -> np.ndarray:
    """d P_R(t) / d theta, with R = cos(theta)."""
    a = 1.0 / np.tan(theta)
    s = np.sin(theta)
    return -2.0 * _INV_SQRT_2PI**2 * np.exp(-0.5 * t * t * (1.0 + a * a)) * t / (s * s)


def gaussian_density(t: np.ndarray, s: float) -> np.ndarray:
    """The density of N(0, s^2)."""
    u = t / s
    return _INV_SQRT_2PI * np.exp(-0.5 * u * u) / s


def gaussian_density_ds(t: np.ndarray, s: float) -> np.ndarray:
    """d/ds of the density of N(0, s^2)."""
    u = t / s
    return gaussian_density(t, s) * (u * u - 1.0) / s
