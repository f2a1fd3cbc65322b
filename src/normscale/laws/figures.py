"""Figures of the laws, one four-panel figure per group (PNG and PDF).

(a) eps vs norm per P with the gamma1 fit line, (b) lambda_opt vs P with
the gamma2 fit, (c) the collapse eps/eps_opt vs lambda/lambda_opt,
(d) eps_opt vs P with the gamma_meas fit and the gamma_pred line.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from normscale.laws.analysis import LawsFit  # noqa: E402


def plot_fit(fit: LawsFit, stem: Path) -> list[Path]:
    """Draw the four panels of ``fit``; save ``stem``.png and ``stem``.pdf."""
    fig, ax = plt.subplots(2, 2, figsize=(10, 8))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(fit.curves)))
    lam, eps, P = (np.array([getattr(o, k) for o in fit.optima])
                   for k in ("lambda_opt", "eps_opt", "P"))
    for c, color, lo, eo in zip(fit.curves, colors, lam, eps, strict=False):
        ax[0, 0].loglog(c.mean.norm, c.mean.error, ".-", color=color, ms=3, lw=1,
                        label=f"P={c.P:g}")
        ax[1, 0].loglog(c.mean.norm / lo, c.mean.error / eo, "-", color=color, lw=1)
    w = fit.window
    if w.units == "norm":
        x = np.geomspace(w.lo, w.hi, 20)
        ax[0, 0].loglog(x, fit.k1 * x ** -fit.gamma1, "r-", lw=2.5,
                        label=f"$\\gamma_1$={fit.gamma1:.3f}")
        ax[0, 0].axvspan(w.lo, w.hi, color="r", alpha=0.08)
    else:
        ax[1, 0].axvspan(w.lo, w.hi, color="r", alpha=0.08, label=f"$\\gamma_1$={fit.gamma1:.3f}")
        ax[1, 0].legend()
    ax[0, 0].set(xlabel="norm $\\lambda$", ylabel="error $\\epsilon$", title="(a) curves")
    ax[0, 0].legend(fontsize=6, ncol=2)
    Pg = np.geomspace(P.min(), P.max(), 50)
    ax[0, 1].loglog(P, lam, "o", label="$\\lambda_{opt}$")
    ax[0, 1].loglog(Pg, fit.lambda_law(Pg), "-", label=f"$\\gamma_2$={fit.gamma2:.3f}")
    ax[0, 1].set(xlabel="P", ylabel="$\\lambda_{opt}$", title="(b) optimal norm")
    ax[0, 1].legend()
    ax[1, 0].set(xlabel="$\\lambda/\\lambda_{opt}$", ylabel="$\\epsilon/\\epsilon_{opt}$",
                 xscale="log", yscale="log",
                 title=f"(c) collapse, quality {fit.collapse_quality:.3g}")
    ax[1, 1].loglog(P, eps, "o", label="$\\epsilon_{opt}$")
    ax[1, 1].loglog(Pg, fit.eps_law(Pg), "-", label=f"$\\gamma_{{meas}}$={fit.gamma_meas:.3f}")
    ln_a = np.mean(np.log(eps) + fit.gamma_pred * np.log(P))
    ax[1, 1].loglog(Pg, np.exp(ln_a) * Pg ** -fit.gamma_pred, "--",
                    label=f"$\\gamma_{{pred}}$={fit.gamma_pred:.3f}")
    if fit.offset is not None:
        ax[1, 1].loglog(Pg, fit.offset(Pg), ":", label="offset form")
    ax[1, 1].set(xlabel="P", ylabel="$\\epsilon_{opt}$", title="(d) data scaling")
    ax[1, 1].legend()
    title = ", ".join(f"{k}={v}" for k, v in fit.group.items())
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return paths
