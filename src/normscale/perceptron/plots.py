"""Figures of docs/science.md 1.5: (a) eps_hat vs lambda per alpha; (d) GD over fixed-norm curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_eps_hat(df: pd.DataFrame, path: str | Path) -> Path:
    """Figure (a): seed-mean eps_hat(lambda) of the fixed-norm rows, one curve per alpha."""
    fixed = df[df["mode"] == "fixed"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, fixed["alpha"].nunique()))
    for color, (alpha, g) in zip(colors, fixed.groupby("alpha"), strict=True):
        m = g.groupby("lam")["eps_hat"].agg(["mean", "std", "count"])
        ax.plot(m.index, m["mean"], color=color, label=f"alpha = {alpha:g}")
        if (m["count"] > 1).any():
            se = m["std"] / np.sqrt(m["count"])
            ax.fill_between(m.index, m["mean"] - se, m["mean"] + se, color=color, alpha=0.2)
    ax.set(xscale="log", yscale="log", xlabel="lambda = |w| / sqrt(N)",
           ylabel="eps_hat = eps / eps_Hebb", title="(a) fixed-norm perceptron")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return Path(path)


def plot_gd_over_fixed(fixed: pd.DataFrame, gd: pd.DataFrame, path: str | Path, *,
                       alpha: float = 5.0) -> Path:
    """Figure (d): GD eps(lambda(t)) over the fixed-norm curve, at the alpha nearest ``alpha``."""
    fixed = fixed[fixed["mode"] == "fixed"]
    gd = gd[gd["mode"] == "gd"]
    common = np.intersect1d(fixed["alpha"].unique(), gd["alpha"].unique())
    if common.size == 0:
        raise ValueError("no alpha has both fixed-norm and GD rows")
    a = float(common[np.argmin(np.abs(np.log(common / alpha)))])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for seed, g in gd[gd["alpha"] == a].groupby("seed"):
        g = g[g["step"] > 0]
        ax.plot(g["lam"], g["eps"], ".", ms=4, alpha=0.7, label=f"GD seed {seed}")
    m = fixed[fixed["alpha"] == a].groupby("lam")["eps"].mean()
    ax.plot(m.index, m.values, "k-", lw=1.5, label="fixed norm (seed mean)")
    ax.set(xscale="log", xlabel="lambda", ylabel="eps",
           title=f"(d) GD vs fixed norm, alpha = {a:g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return Path(path)
