"""Figures of the solvable-model study (PNG), each from a :class:`~normscale.solvable.study.Study`.

- ``sgd``: the Volterra theory of one-pass SGD against Monte Carlo;
- ``sgd_exponents``: the theory at d -> infinity over 10^5 steps, with the predicted slopes;
- ``classic``: L(t), L(P), L(N) with the fitted law and the predicted slope;
- ``crossover``: fitted L(P) and L(N) exponents across a, against min(a-1, 2b) and
  min(a-1, b);
- ``dynamical``: test error against |theta| per P, and the master-curve collapse;
- ``phases``: the (alpha, beta) plane with the regions where each exponent applies.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from normscale.solvable.experiment import LAW_X, predicted_exponent  # noqa: E402
from normscale.solvable.exponents import size_exponent  # noqa: E402


def _save(fig, path: Path) -> Path:
    for ax in fig.axes:                      # minor log ticks unlabelled: no overlapping labels
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sgd(st, out: Path) -> Path:
    n = len(st.sgd)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.2), squeeze=False)
    for ax, c in zip(axes[0], st.sgd, strict=True):
        s = np.maximum(c.theory.steps, 0.5)
        ax.loglog(s, c.theory.mean, "-", color="k", label="Volterra theory")
        ax.errorbar(np.maximum(c.mc.steps, 0.5), c.mc.mean, yerr=2 * c.mc.se, fmt="o", ms=3,
                    mfc="none", color="C1", label=f"MC, {c.mc.n_runs} runs (2 s.e.)")
        ax.set_title(f"alpha={c.alpha:g}, beta={c.beta:g} (phase {c.phase})", fontsize=9)
        ax.set_xlabel("SGD step (batch 1)")
    axes[0][0].set_ylabel("expected risk")
    axes[0][0].legend(fontsize=7)
    return _save(fig, out / "sgd.png")


def plot_sgd_exponents(st, out: Path) -> Path | None:
    if not st.sgd_exponents:
        return None
    fig, ax = plt.subplots(figsize=(5.4, 4.0))
    for i, e in enumerate(st.sgd_exponents):
        c = e.curve
        keep = c.steps > 0
        t, L = c.steps[keep], c.mean[keep]
        ax.loglog(t, L, "-", color=f"C{i}",
                  label=f"alpha={e.alpha:g}, beta={e.beta:g} ({e.phase}): "
                        f"slope {e.slopes[-1]:.3f}")
        ref = L[-1] * (t / t[-1]) ** (-e.predicted)
        ax.loglog(t[t >= t[-1] / 1000], ref[t >= t[-1] / 1000], "--", color=f"C{i}", lw=0.8)
    ax.set_xlabel("SGD step (batch 1), d -> infinity")
    ax.set_ylabel("expected risk (Volterra theory)")
    ax.set_title("dashed: predicted slopes", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, out / "sgd_exponents.png")


def plot_classic(st, out: Path) -> Path:
    settings = sorted({(f.a, f.b) for f in st.classic}, key=lambda ab: st.classic.index(
        next(f for f in st.classic if (f.a, f.b) == ab)))
    fig, axes = plt.subplots(len(settings), 3, figsize=(10, 2.9 * len(settings)), squeeze=False)
    for i, (a, b) in enumerate(settings):
        for j, law in enumerate(("time", "data", "model")):
            ax = axes[i][j]
            fit = next((f for f in st.classic if (f.a, f.b, f.law) == (a, b, law)), None)
            if fit is None:
                ax.axis("off")
                continue
            an = fit.analysis
            x = an.x[:, 0]
            xs = np.unique(x)
            ym = np.array([np.mean(an.y[x == u]) for u in xs])
            ax.loglog(x, an.y, ".", color="0.7", ms=3)
            ax.loglog(xs, ym, "o", color="C0", ms=4, label="mean over seeds")
            grid = np.geomspace(xs.min(), xs.max(), 100)
            with np.errstate(divide="ignore"):          # a floor c = 0 enters as log 0
                pred = an.fit.predict(grid[:, None])
            ax.loglog(grid, pred, "-", color="C1",
                      label=f"fit: {fit.fitted:.3f} [{fit.ci[0]:.3f}, {fit.ci[1]:.3f}]")
            ref = ym[0] * (grid / xs[0]) ** (-fit.predicted)
            ax.loglog(grid, ref, "--", color="k", lw=0.8,
                      label=f"predicted slope {fit.predicted:.3g}")
            ax.set_xlabel({"time": "t", "data": "P (N = inf, t = inf)",
                           "model": "N (P = inf, t = inf)"}[law])
            ax.set_title(f"L({LAW_X[law].replace('step', 't')}), a={a:g}, b={b:g}", fontsize=9)
            ax.legend(fontsize=6.5)
    return _save(fig, out / "classic.png")


def plot_crossover(st, out: Path) -> Path | None:
    if not st.crossover:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    b = st.crossover[0].b
    a = np.linspace(1.05, max(f.a for f in st.crossover) + 0.3, 200)
    ax.plot(a, [size_exponent(a=x, b=b) for x in a], "-", color="C0", label="min(a-1, 2b): L(P)")
    ax.plot(a, np.minimum(a - 1, b), "-", color="C3", label="min(a-1, b): L(N), PLRF")
    for law, color, mark in (("data", "C0", "o"), ("model", "C3", "s")):
        fs = [f for f in st.crossover if f.law == law]
        ax.errorbar([f.a for f in fs], [f.fitted for f in fs],
                    yerr=np.array([[f.fitted - f.ci[0], f.ci[1] - f.fitted] for f in fs]).T,
                    fmt=mark, color=color, mfc="none", capsize=2,
                    label=f"fitted L({'P' if law == 'data' else 'N'}) exponent")
    ax.set_xlabel(f"a (target power k^-a), b = {b:g}")
    ax.set_ylabel("exponent")
    ax.legend(fontsize=7)
    return _save(fig, out / "crossover.png")


def plot_dynamical(st, out: Path) -> Path | None:
    if not st.dynamical:
        return None
    n = len(st.dynamical)
    fig, axes = plt.subplots(n, 2, figsize=(9, 3.2 * n), squeeze=False)
    for row, d, table in zip(axes, st.dynamical, st.dynamical_tables, strict=True):
        mean = table.groupby(["P", "step"], as_index=False)[["norm", "test_error"]].mean()
        Ps = sorted(mean["P"].unique())
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(Ps)))
        opt = {o.P: o for o in d.fit.optima}
        for P, col in zip(Ps, colors, strict=True):
            m = mean[mean["P"] == P]
            row[0].loglog(m["norm"], m["test_error"], "-", color=col, label=f"P={P:g}")
            if P in opt:
                o = opt[P]
                row[0].plot(o.lambda_opt, o.eps_opt, "x", color=col)
                row[1].loglog(m["norm"] / o.lambda_opt, m["test_error"] / o.eps_opt, "-",
                              color=col)
        p = d.prediction
        if np.isfinite(p.gamma1):
            x = np.geomspace(0.02, 0.5, 20)
            row[1].loglog(x, x ** -p.gamma1, "--", color="k", lw=0.8,
                          label=f"slope -gamma1 = -{p.gamma1:.3g} (asymptote)")
            row[1].legend(fontsize=7)
        row[0].set_xlabel("|theta|")
        row[0].set_ylabel("test error (clean)")
        row[0].set_title(f"a={d.a:g}, b={d.b:g}, noise {d.noise:g}: {d.fit.verdict}", fontsize=9)
        row[0].legend(fontsize=6.5, ncol=2)
        row[1].set_xlabel("|theta| / lambda_opt(P)")
        row[1].set_ylabel("error / eps_opt(P)")
        row[1].set_ylim(0.5, None)
    return _save(fig, out / "dynamical.png")


def plot_phases(st, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    al = np.linspace(0.0, 2.0, 300)
    ax.fill_between(al, -0.5, 0.5 - al, color="0.85", label="2 alpha + 2 beta <= 1: no law")
    ax.plot(al, al + 0.5, "-", color="C0", label="beta = alpha + 1/2: L(P) a-1 | 2b")
    ax.axhline(0.5, color="C3", label="beta = 1/2: L(N) a-1 | b; norm laws hold below")
    ax.plot([0.5, 0.5], [0.5, 2.5], ":", color="k", lw=1)
    ax.plot(al[al >= 0.5], al[al >= 0.5], ":", color="k", lw=1,
            label="SGD phases: beta = alpha, alpha = 1/2")
    for x, y, s in ((1.2, 0.2, "I"), (1.4, 0.9, "II"), (0.8, 1.8, "III"), (0.25, 1.5, "IV")):
        ax.text(x, y, s, fontsize=12, color="k", ha="center")
    marks = [(f.b / 2, (f.a - f.b) / 2) for f in st.classic]
    if marks:
        ax.plot(*zip(*marks, strict=True), "o", color="C1", mfc="none", label="classic settings")
    dyn = [(d.b / 2, (d.a - d.b) / 2) for d in st.dynamical]
    if dyn:
        ax.plot(*zip(*dyn, strict=True), "^", color="C2", label="dynamical settings")
    sgd = [(c.alpha, c.beta) for c in st.sgd]
    if sgd:
        ax.plot(*zip(*sgd, strict=True), "x", color="C4", label="SGD checks")
    ax.set_xlim(0, 2)
    ax.set_ylim(-0.5, 2.5)
    ax.set_xlabel("alpha (b = 2 alpha)")
    ax.set_ylabel("beta (a = 2 alpha + 2 beta)")
    ax.legend(fontsize=6.5, loc="upper right")
    return _save(fig, out / "phases.png")


def write_figures(st, out: Path) -> list[Path]:
    """All figures of ``st`` into ``out``; returns their paths."""
    paths = [plot_sgd(st, out), plot_sgd_exponents(st, out), plot_classic(st, out),
             plot_crossover(st, out), plot_dynamical(st, out), plot_phases(st, out)]
    return [p for p in paths if p is not None]


__all__ = ["predicted_exponent", "write_figures"]
