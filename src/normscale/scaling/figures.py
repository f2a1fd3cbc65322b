"""Figures and files of a scaling analysis: the fit with its band and the held-out points,
the iso-loss contours and the compute-optimal frontier of a ``joint`` fit, every start."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from normscale.scaling.analysis import ScalingAnalysis
from normscale.scaling.forms import get_form

#: model sizes drawn as fitted curves in the joint fit's figure
N_CURVES = 5


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fit_figure(a: ScalingAnalysis, path: Path) -> None:
    plt = _plt()
    fit = a.fit
    fig, ax = plt.subplots(figsize=(6, 4.5))
    x_all = a.x if a.holdout is None else np.vstack([a.x, a.holdout.x])
    held = a.holdout
    shown = held.fit if held is not None else fit
    grid = np.geomspace(x_all[:, 0].min(), x_all[:, 0].max(), 200)
    if fit.form == "joint":
        N_values = np.unique(a.x[:, 1])
        picks = N_values[np.unique(np.linspace(0, len(N_values) - 1, N_CURVES).round().astype(int))]
        sc = ax.scatter(a.x[:, 0], a.y, c=np.log10(a.x[:, 1]), s=12, cmap="viridis", zorder=3)
        fig.colorbar(sc, ax=ax, label=f"log10 {fit.x_names[1]}")
        cmap = plt.get_cmap("viridis")
        lo_c, hi_c = np.log10(a.x[:, 1].min()), np.log10(a.x[:, 1].max())
        for N in picks:
            xx = np.column_stack([grid, np.full_like(grid, N)])
            color = cmap((np.log10(N) - lo_c) / max(hi_c - lo_c, 1e-12))
            ax.plot(grid, shown.predict(xx), color=color, lw=1)
            lo, hi = shown.band(xx)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.2, lw=0)
    else:
        ax.scatter(a.x[:, 0], a.y, s=12, color="C0", zorder=3, label="data")
        xx = grid[:, None]
        ax.plot(grid, shown.predict(xx), color="C1", label="fit")
        lo, hi = shown.band(xx)
        ax.fill_between(grid, lo, hi, color="C1", alpha=0.25, lw=0,
                        label=f"{round(100 * (shown.bootstrap.level if shown.bootstrap else 0.95))}"
                              "% band")
    if held is not None:
        ax.errorbar(held.x[:, 0], held.predicted,
                    yerr=[held.predicted - held.lo, held.hi - held.predicted], fmt="none",
                    ecolor="C3", lw=1)
        ax.scatter(held.x[:, 0], held.y, marker="x", color="C3", s=40, zorder=4,
                   label=f"held out ({held.k}), RMSLE {held.rmsle:.3g}")
    ax.set(xscale="log", yscale="log", xlabel=fit.x_names[0], ylabel=fit.y_name,
           title=f"{fit.form}: {fit.equation}" + (" (fit without held-out)" if held else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _contour_figure(a: ScalingAnalysis, path: Path) -> None:
    plt = _plt()
    fit = a.fit
    P = np.geomspace(a.x[:, 0].min() / 3, a.x[:, 0].max() * 3, 120)
    N = np.geomspace(a.x[:, 1].min() / 3, a.x[:, 1].max() * 3, 120)
    PP, NN = np.meshgrid(P, N)
    Z = fit.predict(np.column_stack([PP.ravel(), NN.ravel()])).reshape(PP.shape)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    levels = np.quantile(a.y, np.linspace(0.02, 0.98, 12))
    cs = ax.contour(PP, NN, Z, levels=np.unique(levels), cmap="magma")
    ax.clabel(cs, fontsize=7, fmt="%.3g")
    ax.scatter(a.x[:, 0], a.x[:, 1], c="0.5", s=6, label="runs")
    if a.allocation is not None:
        al = a.allocation
        ax.plot(al.P, al.N, color="C0", lw=2,
                label=f"compute-optimal: N ~ C^{al.a:.3f}, {fit.x_names[0]} ~ C^{al.b:.3f}")
    ax.set(xscale="log", yscale="log", xlim=(P[0], P[-1]), ylim=(N[0], N[-1]),
           xlabel=fit.x_names[0], ylabel=fit.x_names[1], title=f"iso-{fit.y_name} contours")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _frontier_figure(a: ScalingAnalysis, path: Path) -> None:
    plt = _plt()
    al, fit = a.allocation, a.fit
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for arr, lo, hi, name, c in ((al.N, al.N_lo, al.N_hi, fit.x_names[1], "C0"),
                                 (al.P, al.P_lo, al.P_hi, fit.x_names[0], "C2")):
        ax1.plot(al.C, arr, color=c, label=f"{name}_opt")
        ax1.fill_between(al.C, lo, hi, color=c, alpha=0.25, lw=0)
    ax1.set(xscale="log", yscale="log", xlabel="compute C", ylabel="optimal size",
            title=f"a = {al.a:.3f} [{al.a_ci[0]:.3f}, {al.a_ci[1]:.3f}], "
                  f"b = {al.b:.3f} [{al.b_ci[0]:.3f}, {al.b_ci[1]:.3f}]")
    ax1.legend(fontsize=8)
    ax2.plot(al.C, al.y, color="C1")
    ax2.fill_between(al.C, al.y_lo, al.y_hi, color="C1", alpha=0.25, lw=0)
    ax2.scatter(al.cost.cost(a.x[:, 1], a.x[:, 0]), a.y, s=6, c="0.5", label="runs")
    ax2.set(xscale="log", yscale="log", xlabel="compute C", ylabel=f"{fit.y_name} on the frontier")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_figures(a: ScalingAnalysis, out: str | Path) -> list[Path]:
    """Write the figures (PNG), ``scaling.json`` and ``starts.csv`` into ``out``; return paths."""
    import pandas as pd

    from normscale.jsonable import to_jsonable

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "fit.png"]
    _fit_figure(a, paths[0])
    if a.fit.form == "joint":
        paths.append(out / "contours.png")
        _contour_figure(a, paths[-1])
        if a.allocation is not None:
            paths.append(out / "frontier.png")
            _frontier_figure(a, paths[-1])
    (out / "scaling.json").write_text(json.dumps(to_jsonable(a.to_dict()), indent=1))
    paths.append(out / "scaling.json")
    s, form = a.fit.starts, get_form(a.fit.form)
    cols = {f"start_{k}": s.theta0[:, i] for i, k in enumerate(form.params)}
    cols.update({k: s.theta[:, i] for i, k in enumerate(form.params)})
    cols.update(objective=s.objective, converged=s.converged, n_iter=s.n_iter, at_best=s.at_best)
    pd.DataFrame(cols).to_csv(out / "starts.csv", index=False)
    paths.append(out / "starts.csv")
    return paths
