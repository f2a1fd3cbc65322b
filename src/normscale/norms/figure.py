"""The figure of one norm measurement: what R_A is made of, every total, and their growth.

Bartlett's spectral complexity (docs/science.md 2.1) is a product of two
factors, R_A = (prod_i rho_i sigma_i) (sum_i (b_i / sigma_i)^(2/3))^(3/2),
with sigma_i = ||A_i||_sigma and b_i = ||A_i^T - M_i^T||_{2,1}. A total alone
does not say which layers make it large; the four panels do:

(a) sigma_i per layer (log axis): the factors of the maximum expansion;
(b) b_i / sigma_i per layer (log axis), each bar labelled with its share of
    sum_i (b_i / sigma_i)^(2/3): the layers that make the effective-rank factor;
(c) log10 of every total of :data:`~normscale.norms.MEASURES` that is finite
    (R_A's bar is the sum of its two factors' bars);
(d) when the file holds the training's logged points: each measure divided by
    its first value > 0 (its value at the first logged point, unless that is
    0), against the optimizer step (log axes), with the test error on a
    second axis. Those points were measured during training with M = the
    weights at initialisation, so their R_A differs from panel (c)'s unless
    the measurement used the same reference.

matplotlib is imported when a figure is drawn, not with :mod:`normscale.norms`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from normscale import safeio
from normscale.norms.measures import MEASURES, LayerNorms

#: most layers whose names label the x axis of panels (a) and (b); beyond it the ticks
#: show the layer's index (a ResNet's 21 matrices fit, a ViT's 70 do not)
MAX_NAMED_LAYERS = 24
#: the totals of panel (c), with their labels, in the order of MEASURES (the log10 and
#: spectral-product twins are left out: the same numbers as R_A and max_expansion)
TOTALS = {"spectral_complexity": "R_A", "max_expansion": "max expansion",
          "effective_rank_factor": "effective-rank factor", "l1": "l1", "l2": "l2",
          "group_2_1": "G_(2,1)", "distance_from_init": "distance from init"}
#: the measures drawn against training step in panel (d) (the distance from init starts
#: near 0 at the first point, so its ratio says nothing; it is left out)
GROWTH = ("spectral_complexity", "max_expansion", "effective_rank_factor", "l1", "l2",
          "group_2_1")
#: panel (d) needs this many logged points (a line needs two)
MIN_POINTS = 2
#: resolution of the PNG, in dots per inch
DPI = 120

assert set(TOTALS) <= set(MEASURES) and set(GROWTH) <= set(TOTALS)


def layer_ratios(layers: Sequence[LayerNorms]) -> np.ndarray:
    """b_i / sigma_i of each layer (NaN where sigma_i = 0): the terms of R_A's second factor."""
    sigma = np.array([r.spectral_norm for r in layers], dtype=np.float64)
    b = np.array([r.two_one for r in layers], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sigma > 0, b / sigma, math.nan)


def growth(records: Sequence[Mapping[str, float]], measure: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and ``measure`` divided by its first finite value > 0, for panel (d).

    The points before that value are left out (with M = the weights at
    initialisation, R_A and its effective-rank factor are 0 at step 0), and so
    are points at step 0 (log axis). Empty arrays when the measure is missing
    or never finite and > 0: no ratio to draw.
    """
    values = np.array([float(r.get(measure, math.nan)) for r in records], dtype=np.float64)
    steps = np.array([float(r["step"]) for r in records], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        positive = np.flatnonzero(np.isfinite(values) & (values > 0))
    if positive.size == 0:
        return np.empty(0), np.empty(0)
    first = positive[0]
    keep = (np.arange(values.size) >= first) & (steps > 0)
    return steps[keep], values[keep] / values[first]


def plot_norms(layers: Sequence[LayerNorms], totals: Mapping[str, float], stem: str | Path, *,
               records: Sequence[Mapping[str, float]] | None = None,
               reference: str = "M = 0") -> list[Path]:
    """Draw the panels of this module's docstring; save ``stem``.png and ``stem``.pdf.

    Parameters
    ----------
    layers : sequence of LayerNorms
        The counted matrices, in discovery order (``NormReport.layers``).
    totals : mapping of str to float
        The measures of :data:`~normscale.norms.MEASURES` (``Complexity.as_dict()``).
    stem : str or Path
        The file name without suffix; its folder must exist.
    records : sequence of mappings, optional
        The logged points of the training run (``Record.to_row()``: ``step``,
        ``test_error`` and the measures); panel (d) is drawn when at least
        :data:`MIN_POINTS` of them are given.
    reference : str
        What M is in panels (a) to (c), for the title (``"M = 0"``, ``"M = init.pt"``).

    Returns
    -------
    list of Path
        The PNG and the PDF, written through :func:`normscale.safeio.write_with`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = list(records or ())
    with_history = len(history) >= MIN_POINTS
    fig, axes = plt.subplots(2, 2, figsize=(11, 8)) if with_history else \
        plt.subplots(1, 3, figsize=(15, 4.2))
    axes = np.ravel(axes)
    _layer_panels(axes[0], axes[1], layers, totals)
    _totals_panel(axes[2], totals)
    if with_history:
        _growth_panel(axes[3], history)
    fig.suptitle(f"Norms of {len(layers)} matrices: sigma_i = ||A_i||_sigma, "
                 f"b_i = ||A_i^T - M_i^T||_(2,1), {safeio.plot_label(reference)}", fontsize=11)
    fig.tight_layout()
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for p in paths:
        safeio.write_with(p, lambda tmp, p=p: fig.savefig(tmp, dpi=DPI, format=p.suffix[1:]),
                          "the figure")
    plt.close(fig)
    return paths


def _plain_log_labels(ax, values: np.ndarray) -> None:
    """Plain labels on a log y axis whose ``values`` span less than two decades: evenly
    spaced values below a span of 10 (0.8, 1, 1.2, ...), 1, 2 and 5 x 10^k below 100
    (matplotlib would label a single tick, or print 2x10^0, 3x10^0, ...); a wider axis
    keeps its labels at the powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    shown = values[np.isfinite(values) & (values > 0)]
    if not shown.size or shown.max() / shown.min() >= 100:
        return
    narrow = shown.max() / shown.min() < 10
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]) if narrow
                               else LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _layer_ticks(ax, layers: Sequence[LayerNorms]) -> None:
    x = np.arange(len(layers))
    ax.set_xticks(x)
    if len(layers) <= MAX_NAMED_LAYERS:
        ax.set_xticklabels([safeio.plot_label(r.name) for r in layers], rotation=45,
                           ha="right", fontsize=7)
    else:
        ax.set_xticklabels([str(i) if i % 5 == 0 else "" for i in x], fontsize=7)
        ax.set_xlabel("layer (discovery order)")


def _layer_panels(ax_sigma, ax_ratio, layers: Sequence[LayerNorms],
                  totals: Mapping[str, float]) -> None:
    x = np.arange(len(layers))
    sigma = np.array([r.spectral_norm for r in layers], dtype=np.float64)
    ax_sigma.bar(x, sigma, color="C0")
    ax_sigma.set_yscale("log")
    ax_sigma.axhline(1.0, color="k", lw=0.6, ls=":")  # above it a layer can expand its input
    _plain_log_labels(ax_sigma, sigma)
    ax_sigma.set_ylabel("spectral norm sigma_i")
    ax_sigma.set_title(f"(a) prod sigma_i: max expansion {totals['max_expansion']:.4g}",
                       fontsize=10)
    _layer_ticks(ax_sigma, layers)

    ratio = layer_ratios(layers)
    ax_ratio.bar(x, ratio, color="C1")
    ax_ratio.set_yscale("log")
    _plain_log_labels(ax_ratio, ratio)
    ax_ratio.set_ylabel("b_i / sigma_i")
    ax_ratio.set_title("(b) (sum (b_i/sigma_i)^(2/3))^(3/2): effective-rank factor "
                       f"{totals['effective_rank_factor']:.4g}", fontsize=10)
    terms = ratio ** (2.0 / 3.0)
    total = np.nansum(terms)
    if len(layers) <= MAX_NAMED_LAYERS and total > 0:
        for xi, (r, t) in enumerate(zip(ratio, terms, strict=True)):
            if math.isfinite(r) and r > 0:
                ax_ratio.annotate(f"{100 * t / total:.0f}%", (xi, r), ha="center",
                                  va="bottom", fontsize=7)
    _layer_ticks(ax_ratio, layers)


def _totals_panel(ax, totals: Mapping[str, float]) -> None:
    shown = [(label, float(totals[k])) for k, label in TOTALS.items()
             if k in totals and math.isfinite(float(totals[k])) and float(totals[k]) > 0]
    y = np.arange(len(shown))[::-1]
    logs = np.array([math.log10(v) for _, v in shown])
    colors = ["C3", "C0", "C1"] + ["0.55"] * max(len(shown) - 3, 0)
    ax.barh(y, logs, color=colors[:len(shown)])
    for yi, (_, v), lg in zip(y, shown, logs, strict=True):
        ax.annotate(f" {v:.4g}", (max(lg, 0.0), yi), va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([label for label, _ in shown], fontsize=8)
    ax.axvline(0.0, color="k", lw=0.6)
    ax.set_xlim(min(0.0, logs.min(initial=0.0)) - 0.2, logs.max(initial=1.0) * 1.3 + 0.5)
    ax.set_xlabel("log10 of the total")
    ax.set_title("(c) totals: R_A = max expansion x effective-rank factor", fontsize=10)


def _growth_panel(ax, records: Sequence[Mapping[str, float]]) -> None:
    drawn = [np.ones(1)]
    for i, k in enumerate(GROWTH):
        steps, ratio = growth(records, k)
        if steps.size:
            ax.plot(steps, ratio, color=f"C{[3, 0, 1, 2, 4, 5][i]}", marker=".", ms=3, lw=1.2,
                    label=TOTALS[k])
            drawn.append(ratio)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_labels(ax, np.concatenate(drawn))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("measure / its first logged value")
    first = records[0]
    ax.set_title(f"(d) during training (M = init), from step {int(first['step'])}",
                 fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    steps = np.array([float(r["step"]) for r in records])
    err = np.array([float(r.get("test_error", math.nan)) for r in records])
    keep = (steps > 0) & np.isfinite(err)
    if keep.any():
        twin = ax.twinx()
        (line,) = twin.plot(steps[keep], err[keep], color="k", ls="--", lw=1)
        twin.set_ylabel("test error (dashed)")
        # the curve in the lower 60% of the panel, the legend above it
        twin.set_ylim(0.0, max(float(err[keep].max()) * 1.6, 1e-3))
        handles, labels = [*handles, line], [*labels, "test error"]
    ax.legend(handles, labels, fontsize=7, loc="upper left", ncol=2)
