"""normscale.scaling: forms, engine, multi-start, bootstrap, frontier, holdout, Epoch's data."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import huber

from normscale.errors import ParameterError
from normscale.scaling import (
    CostModel,
    ScalingWarning,
    bootstrap_fit,
    compute_optimal,
    epoch_grid,
    fit_cost,
    fit_form,
    get_form,
    holdout,
)
from normscale.scaling.engine import fit_batch, objective, rho
from normscale.scaling.fit import config_index
from normscale.scaling.holdout import split_largest

EPOCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "scaling" / "chinchilla_epoch.csv"

TRUE = {
    "power": {"a": 5.0, "alpha": 0.5, "c": 0.05},
    "joint": {"E": 0.5, "A": 40.0, "B": 80.0, "alpha": 0.4, "beta": 0.5},
    "broken": {"a": 0.02, "b": 2.0, "c0": 0.2, "c1": 0.6, "d1": 1e3, "f1": 0.5},
}


def design(form: str) -> np.ndarray:
    """Inputs of the synthetic studies: repeated sizes (seeds) for power and broken."""
    if form == "power":
        return np.repeat(np.geomspace(100, 1e5, 24), 2)[:, None]
    if form == "joint":
        P, N = np.meshgrid(np.geomspace(1e3, 1e6, 8), np.geomspace(1e4, 1e7, 8))
        return np.column_stack([P.ravel(), N.ravel()])
    return np.repeat(np.geomspace(10, 1e6, 60), 1)[:, None]


def draw(form: str, seed: int, sigma: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    x = design(form)
    rng = np.random.default_rng(seed)
    return x, get_form(form).predict(TRUE[form], x) * np.exp(rng.normal(0, sigma, len(x)))


# ---------------------------------------------------------------- forms and engine


@pytest.mark.parametrize("form", ["power", "joint", "broken"])
def test_jacobian_matches_finite_differences(form):
    f = get_form(form)
    x = design(form)
    lx = np.log(x)
    rng = np.random.default_rng(1)
    theta = f.from_natural(TRUE[form])[None] + rng.normal(0, 0.1, (3, len(f.params)))
    _, J = f.evaluate(theta, lx)
    h = 1e-6
    for j in range(len(f.params)):
        tp, tm = theta.copy(), theta.copy()
        tp[:, j] += h
        tm[:, j] -= h
        fp, fm = f.evaluate(tp, lx, jacobian=False)[0], f.evaluate(tm, lx, jacobian=False)[0]
        fd = (fp - fm) / (2 * h)
        np.testing.assert_allclose(J[:, j, :], fd, rtol=1e-5, atol=1e-7)


def test_extreme_terms_fall_back_to_the_stable_sum():
    """Terms beyond exp's range (a start far out) give the log-sum-exp, not inf or -inf."""
    f = get_form("joint")
    lx = np.log(design("joint"))
    theta = np.array([[800.0, 1.0, 0.5, 0.3, 0.2],        # A N^-alpha overflows exp
                      [-900.0, -900.0, -800.0, 0.0, 0.0],  # every term underflows
                      [6.0, 7.0, 0.5, 0.3, 0.3]])
    out, J = f.evaluate(theta, lx)
    tA = theta[:, 0, None] - theta[:, 3, None] * lx[None, :, 1]
    tB = theta[:, 1, None] - theta[:, 4, None] * lx[None, :, 0]
    ref = np.logaddexp(np.logaddexp(tA, tB), theta[:, 2, None])
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    np.testing.assert_allclose(J[:, :3].sum(axis=1), 1.0, rtol=1e-12)  # softmax weights


@pytest.mark.parametrize("form", ["power", "joint", "broken"])
def test_predict_is_the_equation(form):
    x = design(form)
    p = TRUE[form]
    if form == "power":
        expected = p["a"] * x[:, 0] ** -p["alpha"] + p["c"]
    elif form == "joint":
        expected = p["E"] + p["A"] * x[:, 1] ** -p["alpha"] + p["B"] * x[:, 0] ** -p["beta"]
    else:
        X = x[:, 0]
        expected = p["a"] + p["b"] * X ** -p["c0"] * (
            1 + (X / p["d1"]) ** (1 / p["f1"])) ** (-p["c1"] * p["f1"])
    np.testing.assert_allclose(get_form(form).predict(p, x), expected, rtol=1e-12)


def test_huber_objective_is_scipys():
    r = np.linspace(-0.01, 0.01, 41)
    np.testing.assert_allclose(rho(r, 1e-3), huber(1e-3, r), rtol=1e-12)
    np.testing.assert_allclose(rho(r, None), 0.5 * r * r)


@pytest.mark.parametrize("form", ["power", "joint", "broken"])
def test_noiseless_data_is_recovered_exactly(form):
    x, _ = draw(form, 0)
    y = get_form(form).predict(TRUE[form], x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        fit = fit_form(form, x, y, delta=None, starts=get_form(form).starts(
            np.log(x), np.log(y))[::7])
    assert fit.converged
    for k, v in TRUE[form].items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4), k
    assert fit.objective < 1e-16


def test_weights_are_counts():
    """A row of weight 2 is the row given twice."""
    x, y = draw("power", 3)
    f = get_form("power")
    th = f.starts(np.log(x), np.log(y))[::30]
    w = np.ones(len(y))
    w[:5] = 2.0
    a = fit_batch(f, th, np.log(x), np.log(y), delta=1e-3, weights=w)
    xx, yy = np.concatenate([x, x[:5]]), np.concatenate([y, y[:5]])
    b = fit_batch(f, th, np.log(xx), np.log(yy), delta=1e-3)
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-9)
    np.testing.assert_allclose(
        objective(f, a.theta, np.log(x), np.log(y), 1e-3, w), a.objective, rtol=1e-12)


def test_coarse_stage_ends_at_the_full_data_minimum():
    """On a large table the coarse-to-fine path ends where the direct one does."""
    P, N = np.meshgrid(np.geomspace(1e3, 1e6, 12), np.geomspace(1e4, 1e7, 12))
    x = np.column_stack([P.ravel(), N.ravel()])                     # 144 points: coarse on
    y = get_form("joint").predict(TRUE["joint"], x) * np.exp(
        np.random.default_rng(0).normal(0, 0.03, len(x)))
    f = get_form("joint")
    th = f.starts(np.log(x), np.log(y))[::50]
    a = fit_batch(f, th, np.log(x), np.log(y), delta=1e-3)
    b = fit_batch(f, th, np.log(x), np.log(y), delta=1e-3, coarse=False)
    assert a.converged.all() and b.converged.all()
    assert a.objective.min() == pytest.approx(b.objective.min(), rel=1e-9)
    np.testing.assert_allclose(a.theta[np.argmin(a.objective)], b.theta[np.argmin(b.objective)],
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- multi-start and warnings


def test_every_start_is_kept_and_counted():
    x, y = draw("joint", 1)
    f = get_form("joint")
    starts = f.starts(np.log(x), np.log(y))[::40]
    fit = fit_form("joint", x, y, delta=None, starts=starts)
    assert fit.starts.theta0.shape == starts.shape
    np.testing.assert_array_equal(fit.starts.theta0, starts)
    assert fit.n_starts == len(starts)
    assert fit.n_at_best == int(fit.starts.at_best.sum()) >= 2
    assert fit.objective == pytest.approx(fit.starts.objective.min())


def test_one_start_at_the_best_warns():
    x, y = draw("power", 2)
    th = get_form("power").from_natural(TRUE["power"])[None]
    with pytest.warns(ScalingWarning, match="1 of 1 starts"):
        fit = fit_form("power", x, y, starts=th)
    assert any("1 of 1" in w for w in fit.warnings)


def test_no_convergence_is_reported_not_hidden():
    x, y = draw("joint", 2)
    th = epoch_grid()[:20]
    with pytest.warns(ScalingWarning, match="did not converge"):
        fit = fit_form("joint", x, y, starts=th, max_iter=2)
    assert not fit.converged
    assert fit.n_converged < 20


def test_bad_inputs_are_refused():
    x, y = draw("power", 0)
    with pytest.raises(ParameterError, match="finite and > 0"):
        fit_form("power", x, -y)
    with pytest.raises(ParameterError, match="2 input column"):
        fit_form("joint", x, y)
    with pytest.raises(ParameterError, match="form"):
        fit_form("cubic", x, y)
    with pytest.raises(ParameterError, match="more configurations"):
        fit_form("broken", x[:12], y[:12])


# ---------------------------------------------------------------- bootstrap

#: seeded draws of each synthetic recovery study
N_DRAWS = 40
#: bootstrap replicates per draw
N_BOOT = 200
#: starts per draw: every k-th start of the form's grid (the full grids are for real data)
STRIDE = {"power": 3, "joint": 100, "broken": 40}


@pytest.mark.parametrize("form", ["power", "joint", "broken"])
def test_known_parameters_fall_in_the_intervals(form):
    """Known parameters plus 3% log-normal noise: each parameter inside its 95% BCa
    interval in at least 90% of the seeded draws (and the interval not absurdly wide)."""
    f = get_form(form)
    hits = {k: 0 for k in f.natural}
    widths = {k: [] for k in f.natural}
    for seed in range(N_DRAWS):
        x, y = draw(form, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScalingWarning)
            fit = fit_form(form, x, y, delta=None,
                           starts=f.starts(np.log(x), np.log(y))[::STRIDE[form]])
            fit = bootstrap_fit(fit, x, y, n_boot=N_BOOT, seed=seed)
        for k, v in TRUE[form].items():
            lo, hi = fit.bootstrap.intervals[k]
            hits[k] += lo <= v <= hi
            widths[k].append((hi - lo) / abs(v))
    coverage = {k: h / N_DRAWS for k, h in hits.items()}
    assert min(coverage.values()) >= 0.9, coverage
    assert max(np.median(w) for w in widths.values()) < 5.0, widths


def test_bootstrap_resamples_whole_configurations():
    x, y = draw("power", 4)
    g = config_index(x)
    assert g.max() + 1 == 24 and np.all(np.bincount(g) == 2)
    fit = bootstrap_fit(fit_form("power", x, y, delta=None), x, y, n_boot=50, seed=0)
    assert fit.bootstrap.n_configs == 24
    assert fit.bootstrap.cov.shape == (3, 3)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.bootstrap.cov)),
                               [fit.bootstrap.se[k] for k in ("a", "alpha", "c")], rtol=1e-10)


def test_seed_copies_do_not_shrink_the_errors():
    """Two identical copies of every row are one configuration: the errors stay those of
    the single copy (row resampling would divide them by about sqrt(2))."""
    x, y = draw("power", 5)
    x1, y1 = x[::2], y[::2]
    one = bootstrap_fit(fit_form("power", x1, y1, delta=None), x1, y1, n_boot=400, seed=1)
    xx, yy = np.repeat(x1, 2, axis=0), np.repeat(y1, 2)
    two = bootstrap_fit(fit_form("power", xx, yy, delta=None), xx, yy, n_boot=400, seed=1)
    assert two.bootstrap.se["alpha"] == pytest.approx(one.bootstrap.se["alpha"], rel=1e-6)


# ---------------------------------------------------------------- compute-optimal allocation


@pytest.mark.parametrize("cost", [CostModel(), CostModel(k=3.0, u=1.2, v=0.9)])
def test_frontier_is_the_minimum_at_fixed_cost(cost):
    """The closed-form optimum against a 1-d numerical minimisation along C = k N^u P^v."""
    x, y = draw("joint", 0)
    fit = bootstrap_fit(fit_form("joint", x, y, delta=None,
                                 starts=get_form("joint").starts(np.log(x), np.log(y))[::25]),
                        x, y, n_boot=50, seed=0)
    al = compute_optimal(fit, cost=cost, C=np.array([1e9, 1e12]))
    p = fit.params
    for i, C in enumerate(al.C):
        def loss(logN, C=C):
            N = np.exp(logN)
            P = (C / (cost.k * N ** cost.u)) ** (1 / cost.v)
            return p["E"] + p["A"] * N ** -p["alpha"] + p["B"] * P ** -p["beta"]

        res = minimize_scalar(loss, bounds=(0, 40), method="bounded",
                              options={"xatol": 1e-10})
        assert np.log(al.N[i]) == pytest.approx(res.x, abs=1e-5)
        assert al.y[i] == pytest.approx(res.fun, rel=1e-9)
        assert cost.cost(al.N[i], al.P[i]) == pytest.approx(C, rel=1e-9)
    denom = cost.u * p["beta"] + cost.v * p["alpha"]
    assert al.a == pytest.approx(p["beta"] / denom)
    assert al.b == pytest.approx(p["alpha"] / denom)
    assert al.a_ci[0] < al.a < al.a_ci[1]
    slope = np.diff(np.log(al.N)) / np.diff(np.log(al.C))
    assert slope[0] == pytest.approx(al.a, rel=1e-9)


def test_cost_model_is_read_off_a_cost_column():
    rng = np.random.default_rng(0)
    N, P = np.exp(rng.uniform(5, 15, 30)), np.exp(rng.uniform(5, 15, 30))
    c = fit_cost(N, P, 2.5 * N ** 1.1 * P ** 0.95)
    assert (c.k, c.u, c.v) == pytest.approx((2.5, 1.1, 0.95), rel=1e-9)
    assert c.fitted and c.rms < 1e-9
    with pytest.raises(ParameterError, match="collinear"):
        fit_cost(N, N, N * N)


def test_frontier_needs_the_joint_form():
    x, y = draw("power", 0)
    with pytest.raises(ParameterError, match="joint"):
        compute_optimal(fit_form("power", x, y, delta=None))


# ---------------------------------------------------------------- holdout


def test_holdout_takes_the_largest_configurations():
    x = design("joint")
    held = split_largest(x, 5)
    prod = x[:, 0] * x[:, 1]
    assert held.sum() == 5 and prod[held].min() >= prod[~held].max()
    assert split_largest(x, 2, size=x[:, 1]).sum() == 2
    with pytest.raises(ParameterError, match="holdout"):
        split_largest(x, 64)


def test_holdout_of_exact_data_predicts_exactly():
    x = design("power")
    y = get_form("power").predict(TRUE["power"], x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        h = holdout("power", x, y, k=4, delta=None, n_boot=20)
    assert len(h.y) == 8                    # 4 configurations, 2 rows each
    assert h.x[:, 0].min() >= x[~np.isin(x[:, 0], h.x[:, 0]), 0].max()
    assert h.rmsle < 1e-6 and h.residual_rms < 1e-6
    x2, y2 = draw("power", 7, sigma=0.1)
    h2 = holdout("power", x2, y2, k=4, delta=None, n_boot=50)
    err = np.log(h2.predicted / h2.y)
    assert h2.rmsle == pytest.approx(np.sqrt(np.mean(err ** 2)))
    assert np.all(h2.lo <= h2.predicted) and np.all(h2.predicted <= h2.hi)
    assert 0.07 < h2.residual_rms < 0.12          # the 10% log-normal scatter of the runs


# ---------------------------------------------------------------- Epoch AI's Chinchilla data


@pytest.mark.slow
@pytest.mark.skipif(not EPOCH.is_file(), reason="Epoch's Chinchilla table not at hand")
def test_epoch_replication():
    """Besiroglu et al. 2024's choices: D = C/(6N), 5 highest losses out, Huber 1e-3.
    Their fit: E 1.817, A 482 (s.e. 124.58), B 2085 (s.e. 1293.23), alpha 0.348 (0.015),
    beta 0.366 (0.021)."""
    import pandas as pd

    df = pd.read_csv(EPOCH)
    df = df.drop(index=df["loss"].nlargest(5).index)
    x, y = df[["D", "N"]].to_numpy(), df["loss"].to_numpy()
    fit = fit_form("joint", x, y, delta=1e-3, starts=epoch_grid()[::5])
    vp = fit_form("joint", x, y, delta=1e-3)               # variable projection: the same
    assert vp.objective == pytest.approx(fit.objective, rel=1e-9)
    for k, v in fit.params.items():
        assert vp.params[k] == pytest.approx(v, rel=1e-4), k
    p = fit.params
    assert fit.converged and fit.n_at_best > 100
    assert abs(p["alpha"] - 0.348) < 0.005 and abs(p["beta"] - 0.366) < 0.005
    assert abs(p["E"] / 1.817 - 1) < 0.01
    assert abs(p["A"] - 482) < 124.58 and abs(p["B"] - 2085) < 1293.23
    fit = bootstrap_fit(fit, x, y, n_boot=1000, seed=0, method="percentile")
    se = fit.bootstrap.se
    assert 0.015 / 1.5 < se["alpha"] < 0.015 * 1.5
    assert 0.021 / 1.5 < se["beta"] < 0.021 * 1.5


# ---------------------------------------------------------------- variable projection


def test_small_nnls_is_scipys():
    """The support enumeration is the exact NNLS (scipy's active-set solver, independently)."""
    from scipy.optimize import nnls

    from normscale.scaling.projection import _nnls

    rng = np.random.default_rng(0)
    A = rng.normal(size=(200, 30, 3)) * np.array([1.0, 1e-3, 1e3])   # columns decades apart
    t = rng.normal(size=(200, 30))
    G = np.einsum("mnk,mnj->mkj", A, A)
    b = np.einsum("mnk,mn->mk", A, t)
    c = _nnls(G, b)
    ref = np.array([nnls(A[i], t[i])[0] for i in range(200)])
    assert np.any(ref == 0) and np.any(np.all(ref > 0, axis=1))      # both cases occur
    np.testing.assert_allclose(c, ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("form", ["power", "joint", "broken"])
def test_basis_is_the_form(form):
    """sum_j c_j phi_j is the form's prediction, and d(phi)/d(omega) its finite difference."""
    f = get_form(form)
    lx = np.log(design(form))
    theta = f.from_natural(TRUE[form])[None]
    c, omega = f.split(theta)
    np.testing.assert_allclose(f.join(c, omega), theta, rtol=1e-12)
    phi, dphi = f.basis(omega, lx)
    np.testing.assert_allclose(np.log(np.einsum("mkn,mk->mn", phi, c)),
                               f.evaluate(theta, lx, jacobian=False)[0], rtol=1e-12)
    h = 1e-6
    for q in range(omega.shape[1]):
        up, down = omega.copy(), omega.copy()
        up[:, q] += h
        down[:, q] -= h
        fd = (f.basis(up, lx)[0] - f.basis(down, lx)[0]) / (2 * h)
        np.testing.assert_allclose(dphi[:, q], fd, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("form", ["power", "joint", "broken"])
def test_projection_reaches_the_full_grid_objective(form):
    """Variable projection and the engine from the full start grid minimise one objective:
    the same best value (1e-9 relative) and the same parameters (1e-4 relative)."""
    x, y = draw(form, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        grid = fit_form(form, x, y, delta=1e-3, method="grid")
        vp = fit_form(form, x, y, delta=1e-3)
    assert vp.method == "projection" and grid.method == "grid"
    assert vp.n_ranked == len(get_form(form).exponent_grid(np.log(x)))
    assert vp.converged and vp.n_at_best >= 2
    assert vp.objective == pytest.approx(grid.objective, rel=1e-9)
    for k, v in grid.params.items():
        assert vp.params[k] == pytest.approx(v, rel=1e-4, abs=1e-10), k
    # the reported objective is the engine's own objective at the reported parameters
    f = get_form(form)
    assert objective(f, vp.theta, np.log(x), np.log(y), 1e-3)[0] == pytest.approx(
        vp.objective, rel=1e-12)


def test_projection_bootstrap_is_the_grid_bootstrap():
    """The bootstrap refits start from the projection's minimum: with one minimum, the
    replicates (same seed) are those of the grid fit."""
    x, y = draw("power", 12)
    grid = fit_form("power", x, y, delta=None, method="grid")
    vp = fit_form("power", x, y, delta=None)
    a = bootstrap_fit(grid, x, y, n_boot=200, seed=3).bootstrap
    b = bootstrap_fit(vp, x, y, n_boot=200, seed=3).bootstrap
    assert a.n_ok == b.n_ok == 200
    for k in a.se:
        assert b.se[k] == pytest.approx(a.se[k], rel=1e-5), k
        np.testing.assert_allclose(b.intervals[k], a.intervals[k], rtol=1e-5)


def test_bootstrap_in_blocks_is_the_bootstrap_at_once(monkeypatch):
    """Replicates drawn and refitted block by block (bounded memory) are the same replicates."""
    from normscale.scaling import engine
    from normscale.scaling import fit as fit_module

    x, y = draw("power", 13)
    fit = fit_form("power", x, y, delta=None)
    whole = bootstrap_fit(fit, x, y, n_boot=60, seed=5).bootstrap
    monkeypatch.setattr(fit_module, "MEMORY", 8 * len(y) * 7)    # 7 replicates a block
    monkeypatch.setattr(engine, "MEMORY", 1)                      # one start per pool
    blocks = bootstrap_fit(fit, x, y, n_boot=60, seed=5).bootstrap
    assert whole.n_ok == blocks.n_ok == 60
    np.testing.assert_allclose(blocks.samples, whole.samples, rtol=1e-9)
    for k in whole.intervals:
        np.testing.assert_allclose(blocks.intervals[k], whole.intervals[k], rtol=1e-9)


def test_projection_refuses_a_start_grid():
    x, y = draw("power", 0)
    with pytest.raises(ParameterError, match="method='grid'"):
        fit_form("power", x, y, method="projection", starts=3)
    with pytest.raises(ParameterError, match="method"):
        fit_form("power", x, y, method="newton")


def test_degenerate_data_is_refused():
    """A constant y has no law (its interval could not hold the estimate); a constant input
    has no exponent."""
    x, y = draw("joint", 0)
    with pytest.raises(ParameterError, match="all equal"):
        fit_form("joint", x, np.full_like(y, 2.5))
    x2 = x.copy()
    x2[:, 1] = 1e6
    with pytest.raises(ParameterError, match="'N' takes one value"):
        fit_form("joint", x2, y)


def test_scaling_modules_import_without_a_circle():
    """Every import between the modules of normscale.scaling, at the top or inside a function,
    forms a graph without a cycle (analysis and runs imported each other)."""
    import ast
    import graphlib

    import normscale.scaling as pkg

    root = Path(pkg.__file__).parent
    modules = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for m in modules:
        deps = set()
        for node in ast.walk(ast.parse((root / f"{m}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                name = node.module.removeprefix("normscale.scaling.")
                if name in modules:
                    deps.add(name)
                elif node.module == "normscale.scaling":
                    deps |= {a.name for a in node.names if a.name in modules}
        graph[m] = deps
    assert graph["width"] == {"analysis"} and "analysis" not in graph["runs"]
    tuple(graphlib.TopologicalSorter(graph).static_order())     # raises CycleError on a cycle


def test_projection_finds_a_flattening_break():
    """A pure power law with a floor, fitted by ``broken``: its best fit bends to a flatter
    exponent (c1 < 0), which the exponent grid covers; projection reaches the full grid's best."""
    P = np.repeat(np.geomspace(100, 1e5, 12), 2)[:, None]
    y = (5 * P[:, 0] ** -0.5 + 0.05) * np.exp(np.random.default_rng(0).normal(0, 0.02, len(P)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        grid = fit_form("broken", P, y, method="grid")
        vp = fit_form("broken", P, y)
    assert grid.params["c1"] < 0
    assert vp.objective == pytest.approx(grid.objective, rel=1e-6)
