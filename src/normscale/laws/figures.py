"""Figures of the laws, one six-panel figure per group (PNG and PDF), the verdict in its title.

(a) eps vs norm per P, censored curves dashed; (b) the local-slope profile
-d ln eps / d ln lambda against lambda/lambda_opt (each P faint, their
average bold) with the gamma1 window and gamma1; (c) the collapse
eps/eps_opt vs lambda/lambda_opt; (d) lambda_opt vs P with its basin error
bars, censored optima hollow, and the gamma2 fit on each nested range of P;
(e) eps_opt vs P with the gamma_meas fit and the gamma_pred line; (f) the
window-free check: eps_opt against lambda_opt across P, with slope -gamma1.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from normscale import safeio  # noqa: E402
from normscale.laws.fit import LawsFit  # noqa: E402

_RANGE_STYLES = ("-", "--", ":")


def _title(fit: LawsFit) -> str:
    group = ", ".join(f"{k}={safeio.plot_label(v)}" for k, v in fit.group.items())
    r = fit.assessment.range
    z = f", z = {r.z:+.1f}" if np.isfinite(r.z) else ""
    head = f"{group}\n" if group else ""
    pred = (f"; $\\gamma_{{pred}}$ = {r.gamma_pred:.3f} ± {r.gamma_pred_err:.3f}, "
            f"$\\gamma_{{meas}}$ = {r.gamma_meas:.3f} ± {r.gamma_meas_err:.3f}"
            if np.isfinite(r.gamma_pred) else "")
    return (f"{head}{fit.verdict.upper()} on P = {r.P_range[0]:g}..{r.P_range[1]:g} "
            f"({r.name}{z}){pred}")


def _profile_panel(ax, fit: LawsFit) -> None:
    g = fit.profile
    if g is not None and g.profile is not None and g.profile.x.size:
        for _, x, s in g.profile.per_curve:
            ax.plot(10 ** x, s, "-", color="0.75", lw=0.8)
        ax.plot(10 ** g.profile.x, g.profile.slope, "k-", lw=2, label="mean over P")
    w = fit.window
    if w is not None and w.units == "lambda/lambda_opt":
        ax.axvspan(w.lo, w.hi, color="r", alpha=0.12)
        ax.axhline(fit.gamma1, color="r", lw=1.5, label=f"$\\gamma_1$={fit.gamma1:.3f}")
    elif w is not None:
        ax.axhline(fit.gamma1, color="r", lw=1.5, label=f"$\\gamma_1$={fit.gamma1:.3f} "
                                                        "(window in norm units)")
    else:
        ax.text(0.02, 0.95, "$\\gamma_1$ undefined", transform=ax.transAxes, va="top",
                color="r")
    ax.set(xscale="log", xlabel="$\\lambda/\\lambda_{opt}$",
           ylabel="$-d\\ln\\epsilon/d\\ln\\lambda$", title="(b) local slope")
    ax.legend(fontsize=7)


def _readable_log_ticks(ax) -> None:
    """Log axes labelled at 1, 2 and 5 times powers of ten (at most 6 labels) and never at the
    minor ticks: matplotlib's default labels every minor tick of an axis spanning about one
    decade (the P range of a laptop study), and they print over each other."""
    from matplotlib.ticker import LogLocator, NullFormatter

    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            lo, hi = sorted(axis.get_view_interval())
            subs = ((1.0, 2.0, 3.0, 5.0) if hi / lo < 10 else (1.0, 2.0, 5.0) if hi / lo < 1e2
                    else (1.0,))
            axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
            axis.set_minor_formatter(NullFormatter())


def plot_fit(fit: LawsFit, stem: Path) -> list[Path]:
    """Draw the six panels of ``fit``; save ``stem``.png and ``stem``.pdf."""
    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(fit.curves)))
    lam, eps, P, err = (np.array([getattr(o, k) for o in fit.optima])
                        for k in ("lambda_opt", "eps_opt", "P", "lambda_opt_err"))
    cens = np.array([o.censored for o in fit.optima])
    for c, color, lo, eo, ce in zip(fit.curves, colors, lam, eps, cens, strict=False):
        style = "--" if ce else "-"
        ax[0, 0].loglog(c.mean.norm, c.mean.error, style, color=color, lw=1,
                        label=f"P={c.P:g}" + (" (censored)" if ce else ""))
        ax[1, 0].loglog(c.mean.norm / lo, c.mean.error / eo, style, color=color, lw=1)
    ax[0, 0].set(xlabel="norm $\\lambda$", ylabel="error $\\epsilon$", title="(a) curves")
    ax[0, 0].legend(fontsize=6, ncol=2)
    _profile_panel(ax[0, 1], fit)
    ax[1, 0].set(xlabel="$\\lambda/\\lambda_{opt}$", ylabel="$\\epsilon/\\epsilon_{opt}$",
                 title=f"(c) collapse, S = {fit.collapse_S:.3g}")
    if fit.window is not None and fit.window.units == "lambda/lambda_opt":
        ax[1, 0].axvspan(fit.window.lo, fit.window.hi, color="r", alpha=0.12)
    # (d) lambda_opt(P) with its nested-range fits
    yerr = np.abs(lam * (10.0 ** np.vstack([-err, err]) - 1))
    yerr = np.where(np.isfinite(yerr), yerr, 0.0)
    ax[0, 2].errorbar(P[~cens], lam[~cens], yerr=yerr[:, ~cens], fmt="o", color="C0",
                      label="$\\lambda_{opt}$")
    if cens.any():
        ax[0, 2].errorbar(P[cens], lam[cens], yerr=yerr[:, cens], fmt="o", mfc="none",
                          color="C0", label="censored (lower bound)")
    for r, ls in zip(fit.assessment.ranges, _RANGE_STYLES, strict=False):
        Pg = np.geomspace(min(r.P), max(r.P), 30)
        ax[0, 2].plot(Pg, r.lambda_law(Pg), ls, color="C1",
                      label=f"{r.name}: $\\gamma_2$={r.gamma2:.3f}")
    ax[0, 2].set(xscale="log", yscale="log", xlabel="P", ylabel="$\\lambda_{opt}$",
                 title="(d) optimal norm")
    ax[0, 2].legend(fontsize=7)
    # (e) eps_opt(P)
    Pg = np.geomspace(P.min(), P.max(), 50)
    ax[1, 1].loglog(P, eps, "o", label="$\\epsilon_{opt}$")
    ax[1, 1].loglog(Pg, fit.eps_law(Pg), "-", label=f"$\\gamma_{{meas}}$={fit.gamma_meas:.3f}")
    if np.isfinite(fit.gamma_pred):
        ln_a = np.mean(np.log(eps) + fit.gamma_pred * np.log(P))
        ax[1, 1].loglog(Pg, np.exp(ln_a) * Pg ** -fit.gamma_pred, "--",
                        label=f"$\\gamma_{{pred}}$={fit.gamma_pred:.3f}")
    if fit.offset is not None:
        ax[1, 1].loglog(Pg, fit.offset(Pg), ":", label="offset form")
    ax[1, 1].set(xlabel="P", ylabel="$\\epsilon_{opt}$", title="(e) data scaling")
    ax[1, 1].legend(fontsize=7)
    # (f) eps_opt against lambda_opt: slope -gamma1 if the laws hold
    ax[1, 2].loglog(lam, eps, "o", label="$\\epsilon_{opt}$ vs $\\lambda_{opt}$")
    lg = np.geomspace(lam.min(), lam.max(), 30)
    d = fit.assessment.ranges[0].direct
    if d is not None:
        ax[1, 2].loglog(lg, d(lg), "-", label=f"$\\gamma_1^{{direct}}$={fit.gamma1_direct:.3f}")
    if np.isfinite(fit.gamma1):
        ln_b = np.mean(np.log(eps) + fit.gamma1 * np.log(lam))
        ax[1, 2].loglog(lg, np.exp(ln_b) * lg ** -fit.gamma1, "--",
                        label=f"slope $-\\gamma_1$={-fit.gamma1:.3f}")
    ax[1, 2].set(xlabel="$\\lambda_{opt}$", ylabel="$\\epsilon_{opt}$",
                 title="(f) window-free check")
    ax[1, 2].legend(fontsize=7)
    for a in ax.flat:
        _readable_log_ticks(a)
    fig.suptitle(_title(fit))
    fig.tight_layout()
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for p in paths:
        safeio.write_with(p, lambda tmp, p=p: fig.savefig(tmp, dpi=110, format=p.suffix[1:]))
    plt.close(fig)
    return paths
