"""The solvable-model study: presets, one runner, and what it writes.

:func:`run_study` runs, for a preset (:data:`PRESETS`):

1. one-pass SGD: the Volterra theory against Monte Carlo for (alpha, beta)
   pairs in different phases (the largest |z| over the logged steps);
2. the classic laws L(t), L(P), L(N) for several (a, b), each fitted with
   ``normscale scaling``'s engine and set against its asymptotic exponent,
   with a held-out check of the largest sizes;
3. the crossover of L(P) and L(N) in a at fixed b;
4. the dynamical laws on gradient flow with label noise, fitted with
   ``normscale fit``'s analysis, against the derived prediction.

:func:`write_study` writes the long tables (CSV), ``exponents.md`` and
``exponents.csv`` (predicted against fitted), ``sgd.csv``, ``dynamical.md``
and the figures. BLAS runs on ``threads`` threads (1 by default: on a
shared machine a threaded BLAS is slower, not faster, for these sizes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from normscale.errors import ParameterError
from normscale.solvable.experiment import (
    ClassicFit,
    DynamicalFit,
    data_table,
    fit_classic,
    fit_dynamical,
    model_table,
    noisy_table,
    time_table,
)
from normscale.solvable.exponents import sgd_phase
from normscale.solvable.model import PowerLawModel, draw_features
from normscale.solvable.sgd import SGDCurve, log_steps, sgd_monte_carlo
from normscale.solvable.volterra import sgd_theory


@dataclass(frozen=True)
class Preset:
    """Sizes of a study: one per part of :func:`run_study`.

    Attributes
    ----------
    classic : tuple of (a, b)
        The models of the classic laws L(t), L(P), L(N), one fit of each law
        per pair.
    time_v : int
        Modes v of the L(t) tables (identity features with the tail beyond v,
        P = 10^8 samples).
    time_k : (float, float)
        The range of k of the L(t) times t = k^b (k the mode being learned;
        keep it far below ``time_v``).
    time_seeds : int
        Draws of the training set per L(t) table.
    sizes_P : tuple of int
        The P grid of the L(P) tables (classic and crossover).
    sizes_N : tuple of int
        The N grid (random features) of the L(N) tables.
    size_seeds : int
        Draws per size in the classic L(P) and L(N) tables.
    v_ratio_P : int
        v = v_ratio_P P modes in the L(P) tables.
    v_ratio_N : int
        v = v_ratio_N N modes in the L(N) tables.
    crossover_a : tuple of float
        The a grid of the crossover of L(P) and L(N), at b = ``crossover_b``.
    crossover_b : float
        The spectrum exponent b of the crossover.
    crossover_seeds : int
        Draws per size in the crossover tables.
    dynamical : tuple of (a, b, noise)
        The models of the norm-indexed curves (gradient flow with label noise
        of standard deviation ``noise``).
    dyn_v : int
        Modes v of the dynamical tables (identity features with the tail).
    dyn_P : tuple of int
        The P grid of the dynamical tables.
    dyn_seeds : int
        Draws of the training set per P in the dynamical tables.
    dyn_times : (float, float, int)
        (first, last, count) of the log-spaced gradient-flow times of the
        dynamical curves.
    sgd : tuple of (alpha, beta)
        The models of the SGD check, Volterra theory against Monte Carlo.
    sgd_v : int
        Modes v of the SGD check.
    sgd_d : int
        Random features d of the SGD check.
    sgd_steps : int
        One-pass SGD steps of the SGD check (batch 1).
    sgd_runs : int
        Monte Carlo runs of the SGD check.
    sgd_logged : int
        About this many log-spaced logged steps (:func:`~normscale.solvable.sgd.log_steps`).
    sgd_step_fraction : float
        The step size as a fraction of 1/lam_max, the largest eigenvalue of K
        (SGD check and SGD exponents).
    sgd_exponents : tuple of (alpha, beta)
        The models of the SGD time-exponent check (theory at d -> infinity).
    sgd_exp_v : int
        Modes v (identity features) of the SGD exponent check.
    sgd_exp_steps : int
        Steps T of the SGD exponent check: the slopes are read over its last
        three decades.
    n_boot_classic : int
        Bootstrap replicates of each classic fit.
    n_boot_laws : int
        Bootstrap replicates of each dynamical fit (``fit_laws``'s ``n_boot``).
    """

    classic: tuple[tuple[float, float], ...]
    time_v: int
    time_k: tuple[float, float]
    time_seeds: int
    sizes_P: tuple[int, ...]
    sizes_N: tuple[int, ...]
    size_seeds: int
    v_ratio_P: int
    v_ratio_N: int
    crossover_a: tuple[float, ...]
    crossover_b: float
    crossover_seeds: int
    dynamical: tuple[tuple[float, float, float], ...]
    dyn_v: int
    dyn_P: tuple[int, ...]
    dyn_seeds: int
    dyn_times: tuple[float, float, int]
    sgd: tuple[tuple[float, float], ...]
    sgd_v: int
    sgd_d: int
    sgd_steps: int
    sgd_runs: int
    sgd_logged: int
    sgd_step_fraction: float
    sgd_exponents: tuple[tuple[float, float], ...]
    sgd_exp_v: int
    sgd_exp_steps: int
    n_boot_classic: int
    n_boot_laws: int


#: ``demo``: the whole study in under 2 minutes on a shared 2-core machine; ``smoke``: every
#: step at toy sizes (seconds; the CLI tests), not for reading exponents
PRESETS: dict[str, Preset] = {
    "demo": Preset(
        classic=((1.6, 1.5), (5.0, 1.5), (2.2, 2.0)),
        time_v=1000, time_k=(4.0, 20.0), time_seeds=2,
        sizes_P=(16, 32, 64, 128, 256), sizes_N=(16, 32, 64, 128, 256), size_seeds=12,
        v_ratio_P=8, v_ratio_N=16,
        crossover_a=(1.5, 2.25, 3.0, 3.5, 4.0, 4.5, 5.25), crossover_b=1.5, crossover_seeds=6,
        dynamical=((1.5, 2.0, 1.0), (2.0, 2.0, 1.0), (3.5, 1.5, 1.0)), dyn_v=1000,
        dyn_P=(100, 200, 400, 800, 1600, 3200), dyn_seeds=4, dyn_times=(0.1, 1e7, 60),
        sgd=((1.0, 0.3), (1.0, 0.7), (0.7, 1.2), (0.4, 0.8)), sgd_v=400, sgd_d=40,
        sgd_steps=2000, sgd_runs=1000, sgd_logged=12, sgd_step_fraction=0.15,
        sgd_exponents=((1.0, 0.3), (1.0, 0.7), (0.7, 1.2), (1.0, 1.5)), sgd_exp_v=20_000,
        sgd_exp_steps=100_000, n_boot_classic=200, n_boot_laws=50),
    "smoke": Preset(
        classic=((2.0, 1.5),), time_v=100, time_k=(2.0, 6.0), time_seeds=2,
        sizes_P=(8, 16, 32, 64, 128), sizes_N=(8, 16, 32, 64, 128), size_seeds=3, v_ratio_P=4,
        v_ratio_N=4,
        crossover_a=(2.0, 5.0), crossover_b=1.5, crossover_seeds=2,
        dynamical=((1.5, 2.0, 1.0),), dyn_v=200, dyn_P=(50, 100, 200), dyn_seeds=2,
        dyn_times=(0.1, 1e6, 30),
        sgd=((1.0, 0.3),), sgd_v=50, sgd_d=10, sgd_steps=100, sgd_runs=20, sgd_logged=6,
        sgd_step_fraction=0.15, sgd_exponents=((1.0, 0.3),), sgd_exp_v=500, sgd_exp_steps=2000,
        n_boot_classic=20, n_boot_laws=0),
}


@dataclass(frozen=True)
class SGDCheck:
    """Theory against Monte Carlo of one-pass SGD at one (alpha, beta), on the same features.

    Attributes
    ----------
    alpha, beta : float
        The model's data and target exponents.
    phase : str
        Its phase of Paquette et al. (2024) (:func:`~normscale.solvable.exponents.sgd_phase`).
    gamma : float
        The step size: ``sgd_step_fraction`` / lam_max.
    theory : SGDCurve
        The expected risk by the Volterra recursion
        (:func:`~normscale.solvable.volterra.sgd_theory`).
    mc : SGDCurve
        The mean risk over ``sgd_runs`` simulated runs, with its standard error.
    max_z : float
        The largest |mc - theory| / s.e. over the logged steps after 0 (at
        step 0 both are the null risk exactly).
    frac_2se : float
        The fraction of those steps within 2 s.e.
    """

    alpha: float
    beta: float
    phase: str
    gamma: float
    theory: SGDCurve
    mc: SGDCurve
    max_z: float
    frac_2se: float


@dataclass(frozen=True)
class SGDExponent:
    """The Volterra theory at d -> infinity (identity features, v modes) against the
    predicted time exponent of one-pass SGD.

    Attributes
    ----------
    alpha, beta : float
        The model's data and target exponents.
    phase : str
        Its phase of Paquette et al. (2024).
    predicted : float
        The asymptotic time exponent, L ~ t^-predicted
        (:func:`~normscale.solvable.exponents.sgd_time_exponent`).
    slopes : (float, float, float)
        -d ln L / d ln t over the last three decades [T/10^(i+1), T/10^i],
        i = 2, 1, 0 (the last is the latest), read off the curve between the
        decade's end points (no fit).
    curve : SGDCurve
        The theory's expected risk over the T steps.
    """

    alpha: float
    beta: float
    phase: str
    predicted: float
    slopes: tuple[float, float, float]
    curve: SGDCurve


def sgd_exponent(alpha: float, beta: float, p: Preset) -> SGDExponent:
    """The expected risk of one-pass SGD over ``sgd_exp_steps`` steps at v = ``sgd_exp_v``
    identity features, and its local slopes over the last three decades."""
    from normscale.solvable.exponents import sgd_time_exponent

    feats = draw_features(PowerLawModel(alpha=alpha, beta=beta, v=p.sgd_exp_v))
    T = p.sgd_exp_steps
    steps = np.array(sorted({max(1, T // 10 ** i) for i in range(4)}))
    th = sgd_theory(feats, gamma=p.sgd_step_fraction / float(feats.lam[0]), steps=T,
                    log_times=np.unique(np.concatenate([log_steps(T, 60), steps])))
    at = dict(zip(th.steps.tolist(), th.mean, strict=True))
    slopes = tuple(float(-np.log(at[b] / at[a]) / np.log(b / a))
                   for a, b in zip(steps[:-1], steps[1:], strict=True))
    return SGDExponent(alpha, beta, sgd_phase(alpha=alpha, beta=beta),
                       sgd_time_exponent(alpha=alpha, beta=beta), slopes, th)


@dataclass
class Study:
    """What :func:`run_study` computed (tables, fits, checks) and how long each part took.

    Attributes
    ----------
    preset : str
        The name of the preset run (a key of :data:`PRESETS`).
    sgd : list of SGDCheck
        One per (alpha, beta) of the preset's ``sgd``.
    sgd_exponents : list of SGDExponent
        One per (alpha, beta) of the preset's ``sgd_exponents``.
    classic_tables : list of DataFrame
        The simulated long tables of the classic laws: for each (a, b),
        L(t), L(P) and L(N), in that order.
    classic : list of ClassicFit
        The fit of each of ``classic_tables``, in the same order.
    crossover : list of ClassicFit
        The L(P) and L(N) fits at each a of ``crossover_a`` (tables not kept).
    dynamical_tables : list of DataFrame
        The noisy gradient-flow tables, one per (a, b, noise) of ``dynamical``.
    dynamical : list of DynamicalFit
        The fit of each of ``dynamical_tables``.
    seconds : dict of str to float
        Wall-clock seconds of each part: ``sgd``, ``classic``, ``crossover``,
        ``dynamical``.
    """

    preset: str
    sgd: list[SGDCheck] = field(default_factory=list)
    sgd_exponents: list[SGDExponent] = field(default_factory=list)
    classic_tables: list[pd.DataFrame] = field(default_factory=list)
    classic: list[ClassicFit] = field(default_factory=list)
    crossover: list[ClassicFit] = field(default_factory=list)
    dynamical_tables: list[pd.DataFrame] = field(default_factory=list)
    dynamical: list[DynamicalFit] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def exponents(self) -> pd.DataFrame:
        """Predicted against fitted exponents: the classic laws, then the dynamical ones."""
        rows = [f.row() for f in self.classic]
        for d in self.dynamical:
            rows += d.rows()
        return pd.DataFrame(rows)


def sgd_check(alpha: float, beta: float, p: Preset, *, seed: int = 0) -> SGDCheck:
    """The Volterra theory and the Monte Carlo of the same features, at ``p``'s sizes; the
    step is ``sgd_step_fraction`` / lam_max, batch 1."""
    feats = draw_features(PowerLawModel(alpha=alpha, beta=beta, v=p.sgd_v, d=p.sgd_d), seed=seed)
    gamma = p.sgd_step_fraction / float(feats.lam[0])
    steps = log_steps(p.sgd_steps, p.sgd_logged)
    th = sgd_theory(feats, gamma=gamma, steps=p.sgd_steps, log_times=steps)
    mc = sgd_monte_carlo(feats, gamma=gamma, steps=p.sgd_steps, log_times=steps,
                         n_runs=p.sgd_runs, seed=seed)
    z = np.abs(mc.mean[1:] - th.mean[1:]) / mc.se[1:]
    return SGDCheck(alpha, beta, sgd_phase(alpha=alpha, beta=beta), gamma, th, mc,
                    float(z.max()), float(np.mean(z <= 2)))


def run_study(preset: str = "demo", *, threads: int | None = 1,
              log: Callable[[str], None] = lambda s: None) -> Study:
    """Run every part of the study for ``preset`` (module docstring)."""
    from threadpoolctl import threadpool_limits

    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; the presets are "
                             f"{', '.join(sorted(PRESETS))}")
    p = PRESETS[preset]
    st = Study(preset)
    with threadpool_limits(limits=threads, user_api="blas"):
        t0 = time.perf_counter()
        for alpha, beta in p.sgd:
            st.sgd.append(c := sgd_check(alpha, beta, p))
            log(f"SGD alpha={alpha:g} beta={beta:g} (phase {c.phase}): theory vs "
                f"{c.mc.n_runs} runs, max |z| = {c.max_z:.2f}")
        for alpha, beta in p.sgd_exponents:
            st.sgd_exponents.append(e := sgd_exponent(alpha, beta, p))
            log(f"SGD theory alpha={alpha:g} beta={beta:g}, d -> inf: last-decade slope "
                f"{e.slopes[-1]:.3f}, predicted {e.predicted:.3f}")
        t1 = time.perf_counter()
        st.seconds["sgd"] = t1 - t0
        seeds = range(p.size_seeds)
        for a, b in p.classic:
            for table in (time_table(a=a, b=b, v=p.time_v, P=10 ** 8, k_range=p.time_k,
                                     seeds=range(p.time_seeds)),
                          data_table(a=a, b=b, P_grid=p.sizes_P, v_ratio=p.v_ratio_P,
                                     seeds=seeds),
                          model_table(a=a, b=b, N_grid=p.sizes_N, v_ratio=p.v_ratio_N,
                                      seeds=seeds)):
                law = table["law"].iloc[0]
                fit = fit_classic(table, n_boot=p.n_boot_classic,
                                  holdout_k=0 if law == "time" else 1)
                st.classic_tables.append(table)
                st.classic.append(fit)
                log(f"L({ {'time': 't', 'data': 'P', 'model': 'N'}[law] }) a={a:g} b={b:g}: "
                    f"fitted {fit.fitted:.3f} [{fit.ci[0]:.3f}, {fit.ci[1]:.3f}], "
                    f"predicted {fit.predicted:.3f}")
        t2 = time.perf_counter()
        st.seconds["classic"] = t2 - t1
        cs = range(p.crossover_seeds)
        b = p.crossover_b
        for a in p.crossover_a:
            for table in (data_table(a=a, b=b, P_grid=p.sizes_P, v_ratio=p.v_ratio_P, seeds=cs),
                          model_table(a=a, b=b, N_grid=p.sizes_N, v_ratio=p.v_ratio_N,
                                      seeds=cs)):
                st.crossover.append(fit_classic(table, n_boot=p.n_boot_classic))
        t3 = time.perf_counter()
        st.seconds["crossover"] = t3 - t2
        lo, hi, n = p.dyn_times
        for a, b, noise in p.dynamical:
            table = noisy_table(a=a, b=b, noise=noise, v=p.dyn_v, P_grid=p.dyn_P,
                                times=np.geomspace(lo, hi, int(n)), seeds=range(p.dyn_seeds))
            st.dynamical_tables.append(table)
            st.dynamical.append(d := fit_dynamical(table, n_boot=p.n_boot_laws))
            log(f"dynamical a={a:g} b={b:g}: {d.fit.verdict_line()}")
        st.seconds["dynamical"] = time.perf_counter() - t3
    return st


def _fmt(x: float, nd: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


LAW_LABEL = {"time": "L(t)", "data": "L(P)", "model": "L(N)", "gamma1": "gamma1",
             "gamma2": "gamma2", "gamma_pred": "gamma_pred", "gamma_meas": "gamma_meas"}


def exponents_markdown(st: Study) -> str:
    """The table of predicted against fitted exponents (written as ``exponents.md``)."""
    lines = ["| law | a | b | alpha | beta | predicted | fitted | 95% interval | inside | "
             "fitted/predicted - 1 | largest size held out: RMSLE |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in st.exponents().iterrows():
        rel = r["fitted"] / r["predicted"] - 1 if math.isfinite(r["predicted"]) else math.nan
        lines.append(f"| {LAW_LABEL[r['law']]} | {r['a']:g} | {r['b']:g} | {r['b'] / 2:g} | "
                     f"{(r['a'] - r['b']) / 2:g} | {_fmt(r['predicted'], 4)} | "
                     f"{_fmt(r['fitted'], 4)} | [{_fmt(r['ci_lo'], 4)}, {_fmt(r['ci_hi'], 4)}] | "
                     f"{'yes' if r['inside'] else 'no'} | "
                     f"{'-' if not math.isfinite(rel) else f'{100 * rel:+.2f}%'} | "
                     f"{_fmt(r.get('holdout_rmsle', math.nan))} |")
    return "\n".join(lines) + "\n"


def sgd_markdown(st: Study) -> str:
    """Theory against Monte Carlo per (alpha, beta) (written as ``sgd.md``)."""
    lines = ["| alpha | beta | phase | gamma | runs | logged steps | max abs z | within 2 s.e. |",
             "|---|---|---|---|---|---|---|---|"]
    for c in st.sgd:
        lines.append(f"| {c.alpha:g} | {c.beta:g} | {c.phase} | {c.gamma:.3g} | {c.mc.n_runs} | "
                     f"{c.mc.steps.size} (to {c.mc.steps[-1]}) | {c.max_z:.2f} | "
                     f"{100 * c.frac_2se:.0f}% |")
    return "\n".join(lines) + "\n"


def crossover_markdown(st: Study) -> str:
    """Fitted L(P) and L(N) exponents across a at fixed b (``crossover.md``)."""
    if not st.crossover:
        return ""
    lines = ["| a | b | L(P): min(a-1, 2b) | fitted [95%] | L(N): min(a-1, b) | fitted [95%] |",
             "|---|---|---|---|---|---|"]
    for a in sorted({f.a for f in st.crossover}):
        d = next(f for f in st.crossover if f.a == a and f.law == "data")
        m = next(f for f in st.crossover if f.a == a and f.law == "model")
        lines.append(f"| {a:g} | {d.b:g} | {d.predicted:.3f} | {d.fitted:.3f} "
                     f"[{d.ci[0]:.3f}, {d.ci[1]:.3f}] | {m.predicted:.3f} | {m.fitted:.3f} "
                     f"[{m.ci[0]:.3f}, {m.ci[1]:.3f}] |")
    return "\n".join(lines) + "\n"


def sgd_exponents_markdown(st: Study) -> str:
    """The SGD time exponents against the theory's local slopes (``sgd_exponents.md``)."""
    if not st.sgd_exponents:
        return ""
    T = st.sgd_exponents[0].curve.steps[-1]
    heads = [f"t = {T // 10 ** (i + 1):,} to {T // 10 ** i:,}" for i in (2, 1, 0)]
    lines = ["| alpha | beta | phase | predicted | " + " | ".join(heads) + " |",
             "|---|---|---|---|---|---|---|"]
    for e in st.sgd_exponents:
        lines.append(f"| {e.alpha:g} | {e.beta:g} | {e.phase} | {e.predicted:.3f} | "
                     + " | ".join(f"{x:.3f}" for x in e.slopes) + " |")
    return "\n".join(lines) + "\n"


def dynamical_markdown(st: Study) -> str:
    """Per dynamical setting: the fitted laws, the predictions, the verdict (``dynamical.md``)."""
    lines = ["| a | b | noise | gamma1 (asymptote / window / fitted) | gamma2 (pred / fitted) | "
             "gamma_pred | gamma_meas (pred / fitted) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for d in st.dynamical:
        f, p = d.fit, d.prediction
        lines.append(
            f"| {d.a:g} | {d.b:g} | {d.noise:g} | {_fmt(p.gamma1)} / {_fmt(d.gamma1_window)} / "
            f"{_fmt(f.gamma1)} | {_fmt(p.gamma2)} / {_fmt(f.gamma2)} | {_fmt(f.gamma_pred)} | "
            f"{_fmt(p.gamma)} / {_fmt(f.gamma_meas)} | {f.verdict} |")
    return "\n".join(lines) + "\n"


def write_study(st: Study, out: str | Path) -> list[Path]:
    """Write the tables, the markdown summaries and the figures of ``st`` into ``out``."""
    from normscale.solvable.figures import write_figures

    out = Path(out)
    paths = []

    def put(name: str, text: str) -> None:
        (out / name).write_text(text)
        paths.append(out / name)

    pd.concat(st.classic_tables, ignore_index=True).to_csv(out / "classic.csv", index=False)
    paths.append(out / "classic.csv")
    if st.dynamical_tables:
        pd.concat(st.dynamical_tables, ignore_index=True).to_csv(out / "dynamical.csv",
                                                                  index=False)
        paths.append(out / "dynamical.csv")
    st.exponents().to_csv(out / "exponents.csv", index=False)
    paths.append(out / "exponents.csv")
    pd.DataFrame([{"alpha": c.alpha, "beta": c.beta, "phase": c.phase, "gamma": c.gamma,
                   "step": s, "theory": th, "mc_mean": m, "mc_se": se}
                  for c in st.sgd for s, th, m, se in zip(c.theory.steps, c.theory.mean,
                                                          c.mc.mean, c.mc.se, strict=True)]
                 ).to_csv(out / "sgd.csv", index=False)
    paths.append(out / "sgd.csv")
    put("exponents.md", exponents_markdown(st))
    put("sgd.md", sgd_markdown(st))
    put("sgd_exponents.md", sgd_exponents_markdown(st))
    put("crossover.md", crossover_markdown(st))
    put("dynamical.md", dynamical_markdown(st))
    paths += write_figures(st, out)
    return paths
