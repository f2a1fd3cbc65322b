"""Figures (a), (b), (c) of docs/science.md 1.5 from the replica theory."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from normscale.theory.analysis import TheoryLaws  # noqa: E402


def _colors(n: int):
    return plt.cm.viridis(np.linspace(0.0, 0.9, n))


def plot_laws(laws: TheoryLaws, out_dir: Path, *, sim: pd.DataFrame | None = None) -> list[Path]:
    """Write ``theory_a_curves``, ``theory_b_lambda_opt``, ``theory_c_collapse`` (PNG and PDF).

    ``sim`` (optional): perceptron-lab rows with columns alpha, lam, eps_hat,
    drawn as points (mean over seeds) on the curve of the same alpha.
    """
    colors = _colors(len(laws.curves))
    paths: list[Path] = []

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for c, col in zip(laws.curves, colors, strict=True):
        ax.loglog(c.lam, c.eps_hat, color=col, label=f"alpha={c.alpha:g}")
        if sim is not None:
            rows = sim[np.isclose(sim["alpha"], c.alpha, rtol=1e-6)]
            if len(rows):
                m = rows.groupby("lam")["eps_hat"].agg(["mean", "sem"]).reset_index()
                ax.errorbar(m["lam"], m["mean"], yerr=m["sem"].fillna(0), fmt="o", ms=3,
                            color=col, mfc="none")
    for o, col in zip(laws.optima, colors, strict=True):
        ax.plot(o.lam_opt, o.eps_hat_opt, "x", color=col)
    ax.set_xlabel("lambda (norm)")
    ax.set_ylabel("eps / eps_0")
    ax.set_title(f"(a) replica theory, gamma1 = {laws.gamma1:.3f}")
    ax.legend(fontsize=6, ncol=2)
    paths += _save(fig, out_dir / "theory_a_curves")

    alphas = np.array([o.alpha for o in laws.optima])
    lam_opt = np.array([o.lam_opt for o in laws.optima])
    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    ax.loglog(alphas, lam_opt, "o", label="lambda_opt (scalar search)")
    ax.loglog(alphas, laws.lambda_law(alphas), "-",
              label=f"{laws.lambda_law.prefactor:.3g} alpha^{laws.gamma2:.3f}")
    ax.set_xlabel("alpha = P/N")
    ax.set_ylabel("lambda_opt")
    ax.set_title("(b) optimal norm")
    ax.legend(fontsize=8)
    paths += _save(fig, out_dir / "theory_b_lambda_opt")

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for c, o, col in zip(laws.curves, laws.optima, colors, strict=True):
        ax.loglog(c.lam / o.lam_opt, c.eps_hat / o.eps_hat_opt, color=col, label=f"{c.alpha:g}")
    ax.set_xlabel("lambda / lambda_opt")
    ax.set_ylabel("eps / eps_opt")
    ax.set_title(f"(c) collapse, rms spread {laws.collapse.rms_spread:.3g}")
    ax.legend(fontsize=6, ncol=2, title="alpha")
    paths += _save(fig, out_dir / "theory_c_collapse")
    return paths


def _save(fig, stem: Path) -> list[Path]:
    out = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.tight_layout()
    for p in out:
        fig.savefig(p, dpi=130)
    plt.close(fig)
    return out
