"""The training-settings scan: which CPU settings give the CNN an early law that the P share.

Every study that normscale ran from its own training at init factor 1 ended
`untestable`. This scan measures, for each of a set of *settings* (data set,
init factor, optimizer, learning rate; the paper's CNN at width 1/8), from two
short runs at two training-set sizes P (one seed):

- the decades of the norm (spectral complexity) and of the test error that
  the early descent covers: from the last point on the initial plateau (the
  error still within 10% of chance) to the minimum of the curve;
- whether a stretch of the averaged local-slope profile holds
  (:func:`normscale.laws.profile.profile_gamma1`, the laws' own rule), and
  the scatter of the per-P slopes in it (sd / mean; the laws call more than
  35% "no shared early law");
- the steps and seconds spent on the initial plateau;
- the wall time per run;
- and, by replaying each run's logged points, where each stop rule of
  :mod:`normscale.train.stop` would have stopped it: its time and whether
  the minimum is bracketed (the error has risen by 2 noise levels at the
  stop) or is at the edge.

To see past every rule, each run trains under the most permissive one (2x
norm growth past the best point) up to a cap. A run is `normscale train`'s
(same subset, init, batch order and optimizer from the seed) with lighter
logging (see :func:`train_run`) and its test error measured on a
class-balanced subset of ``--n-test`` test images (1,000: a logged point
costs a tenth of the full 10,000-image set; the binomial noise at 20% error
is 1.3%). The 1,000 images make the stop rules' replay on the scan's own runs
coarse (the best point moves only by more than that noise), so the rules are
also replayed on a preset's store (``--stop-store``).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_scan.py \
        --runs scan-runs.jsonl --out docs/scan --doc docs/scan.md \
        [--data ../shared/data] [--fashion DIR] [--only mnist,digits]
    PYTHONPATH=src .venv/bin/python benchmarks/bench_scan.py \
        --stop-store w8.db --work cut --doc docs/example-cnn-mnist-w8/README.md

Runs already in ``--runs`` (one JSON line each) are not trained again, so
the command resumes and, once everything is trained, only rewrites the
table (``scan.csv``) and the figure (``scan.png``) in ``--out`` and the
markdown tables in the page ``--doc`` (between its ``bench_scan:table`` and
``bench_scan:stop`` markers; printed without ``--doc``). A data set whose
files are absent is skipped with a line on stderr.

With ``--stop-store STORE`` it replays every rule of ``STOP_RULES`` on a
store trained under the 2x rule instead, cuts a copy of the store per rule
(``--work``), fits each copy and writes the table into ``--doc`` between its
``bench_scan:stop:STORE_STEM`` markers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
WIDTH = 0.125  # the paper's CNN at 1/8 of its width (0.2M weights): 33 ms a step on one core
N_TEST = 1000  # test images per logged point (class-balanced subset, see the docstring)
N_LOG = 25  # log-spaced steps up to the cap ...
LOG_GROWTH = 1.3  # ... plus a point per 1.3x of norm growth off the plateau
SCAN_GROWTH = 2.0  # the scan's runs stop 2x past their best point: every rule is replayed
PLATEAU_FRACTION = 0.9  # "on the plateau": test error above this fraction of chance
SEED = 0

#: the two P of each data set and their caps (epochs): the small P needs many more epochs
P_CAPS = {"digits": ((100, 1000), (400, 300)), "mnist": ((250, 160), (1000, 40)),
          "fashion-mnist": ((250, 160), (1000, 40)), "cifar10": ((250, 160), (1000, 40))}


@dataclass(frozen=True)
class Setting:
    """One point of the scan: data set, init factor, optimizer and learning rate."""

    dataset: str
    init: float
    optimizer: str = "adam"
    lr: float = 1e-3

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.optimizer}-{self.lr:g}/init-{self.init:g}"


def _grid(dataset: str, inits, adam_slow=(), sgd=()) -> list[Setting]:
    return ([Setting(dataset, i) for i in inits]
            + [Setting(dataset, i, "adam", 3e-4) for i in adam_slow]
            + [Setting(dataset, i, "sgd", 0.05) for i in sgd])


#: MNIST and the bundled digits (8x8, 5x cheaper a step) get the full init grid and both
#: alternatives to Adam at lr 1e-3; Fashion-MNIST and CIFAR-10 a subset (one core, shared)
SETTINGS = (_grid("mnist", (0.05, 0.1, 0.2, 0.5, 1.0), (1.0,), (1.0,))
            + _grid("digits", (0.05, 0.1, 0.2, 0.5, 1.0), (1.0,), (0.2, 1.0))
            + _grid("fashion-mnist", (0.1, 1.0), (), (1.0,))
            + _grid("cifar10", (0.1, 1.0)))


# ---------------------------------------------------------------------------- training

def _data_root(dataset: str, args) -> tuple[str, str | None] | None:
    """(registry name, root) of a scan data set, or None when its files are absent."""
    if dataset == "digits":
        return "digits", None
    if dataset == "mnist":
        root = Path(args.data) / "mnist"
        return ("mnist", str(root)) if root.is_dir() else None
    if dataset == "fashion-mnist":
        root = Path(args.fashion)
        return ("fashion-mnist", str(root)) if root.is_dir() else None
    zip_path = Path(args.data) / "cifar10-jpeg.zip"  # CIFAR-10 as JPEG class folders
    return ("imagefolder", str(zip_path)) if zip_path.is_file() else None


def train_run(setting: Setting, P: int, cap: int, name: str, root: str | None,
              n_test: int) -> dict:
    """Train one scan run and return it as a JSON-able dict.

    The run is `normscale train`'s (same subset, init, batch order and optimizer from
    the seed) with lighter logging: ``N_LOG`` log-spaced steps up to the cap, plus a point
    per ``LOG_GROWTH`` of norm growth once the error has left the initial plateau (a small
    init grows its norm by decades at chance, where points tell nothing), the test error
    on ``n_test`` images, and the stop rule at ``SCAN_GROWTH``.
    """
    import torch
    import torch.nn.functional as F

    from normscale import data, norms
    from normscale.store import Record
    from normscale.train import TrainConfig
    from normscale.train.loop import epoch_order, evaluate, init_run
    from normscale.train.optim import make_optimizer
    from normscale.train.schedule import log_points
    from normscale.train.stop import StopRule

    torch.set_num_threads(1)
    cfg = TrainConfig(model="cnn", dataset=name, P=P, seed=SEED, epochs=cap,
                      optimizer=setting.optimizer, lr=setting.lr, width=WIDTH,
                      init_factor=setting.init, until="optimum")
    info = data.info(name, root=root)
    train_full = data.load_dataset(name, root=root, split="train")
    test = data.load_dataset(name, root=root, split="test")
    shape = {"in_channels": int(train_full.images.shape[1]),
             "image_size": int(train_full.images.shape[-1]),
             "num_classes": len(train_full.classes)}
    t_idx = data.subset_indices(test.labels, P=min(n_test, len(test)), seed=SEED)
    test_x, test_y = data.normalize(test.images[t_idx], info), test.labels[t_idx]
    idx, model = init_run(cfg, train_full.labels, shape, torch.device("cpu"))
    train_raw, train_y = train_full.images[idx], train_full.labels[idx]
    train_x = data.normalize(train_raw, info)
    tracker = norms.NormTracker(model, reference="init")
    opt = make_optimizer(model.parameters(), cfg)
    kind = "spectral_complexity"
    chance = 1.0 - 1.0 / shape["num_classes"]

    def norm() -> float:
        with torch.no_grad():
            return float(tracker.measure([kind])[kind])

    B = cfg.batch_size
    n_batches = math.ceil(P / B)
    total = cap * n_batches
    log_steps = set(log_points(total, N_LOG))
    rule = StopRule(n_test=len(test_y), growth=SCAN_GROWTH)
    records, reason, last_norm, on_plateau = [], None, math.nan, True
    t0 = time.perf_counter()
    step, perm = 0, None
    model.train()
    while step < total and reason is None:
        epoch, batch = divmod(step, n_batches)
        if batch == 0:
            perm = epoch_order(SEED, epoch, P)
        b = perm[batch * B:(batch + 1) * B]
        loss = F.cross_entropy(model(data.normalize(train_raw[b], info)), train_y[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if not torch.isfinite(loss):
            reason = "diverged"
            break
        logged, value = step in log_steps, None
        if not logged and not on_plateau and step % max(2, step // 8) == 0:
            value = norm()
            logged = value >= LOG_GROWTH * last_norm
        if not logged:
            continue
        value = norm() if value is None else value
        test_error, test_loss = evaluate(model, test_x, test_y)
        train_error, train_loss = evaluate(model, train_x, train_y)
        record = Record(epoch=step / n_batches, step=step, test_error=test_error,
                        test_loss=test_loss, train_error=train_error, train_loss=train_loss,
                        wall_time=time.perf_counter() - t0, norms={kind: value})
        records.append(record)
        last_norm, on_plateau = value, on_plateau and test_error >= PLATEAU_FRACTION * chance
        reason = rule.update(record)
    return {"key": setting.key, **dataclasses.asdict(setting), "P": P, "cap_epochs": cap,
            "n_test": int(len(test_y)), "log_growth": LOG_GROWTH,
            "stop_reason": reason or "max_epochs", "wall_s": time.perf_counter() - t0,
            "records": [{"step": r.step, "epoch": r.epoch, "wall": r.wall_time,
                         "test_error": r.test_error, "train_error": r.train_error,
                         "train_loss": r.train_loss, "norm": r.norms[kind]}
                        for r in records]}


def train_missing(args) -> None:
    path = Path(args.runs)
    done = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            done.add((row["key"], row["P"]))
    only = set(args.only.split(",")) if args.only else None
    for setting in SETTINGS:
        if only and setting.dataset not in only:
            continue
        found = _data_root(setting.dataset, args)
        if found is None:
            print(f"bench_scan: no files for {setting.dataset}; skipped", file=sys.stderr)
            continue
        for P, cap in P_CAPS[setting.dataset]:
            if (setting.key, P) in done:
                continue
            row = train_run(setting, P, cap, *found, args.n_test)
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{setting.key} P={P}: {row['stop_reason']} after "
                  f"{row['records'][-1]['step'] if row['records'] else 0} steps, "
                  f"{row['wall_s']:.0f} s", file=sys.stderr, flush=True)


def load_runs(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------- analysis

def run_curve(run: dict):
    """The run's test error against its norm, sorted by norm (a laws ``Curve``)."""
    from normscale.laws.curves import Curve

    pts = sorted((r["norm"], r["test_error"]) for r in run["records"]
                 if math.isfinite(r["norm"]) and r["norm"] > 0 and r["test_error"] > 0)
    norm, err = (np.array(v, float) for v in zip(*pts, strict=True))
    return Curve(P=float(run["P"]), norm=norm, error=err,
                 stopped_early=run["stop_reason"] == "max_epochs",
                 past_optimum=run["stop_reason"] == "past_optimum")


def run_summary(run: dict) -> dict:
    """Plateau, early descent and minimum of one run (see the module docstring)."""
    from normscale.laws.basin import find_basin

    recs = run["records"]
    chance = PLATEAU_FRACTION * 0.9  # 10 classes in every scan data set
    left = next((r for r in recs if r["test_error"] < chance), None)
    curve = run_curve(run)
    basin = find_basin(curve)
    i_min = int(np.argmin(curve.error))
    above = np.flatnonzero(curve.error[:i_min + 1] >= chance)
    i0 = int(above[-1]) if above.size else 0
    return {"plateau_steps": left["step"] - 1 if left else recs[-1]["step"],
            "plateau_s": (left["wall"] if left else recs[-1]["wall"]),
            "left_plateau": left is not None,
            "norm_decades": float(np.log10(curve.norm[i_min] / curve.norm[i0])),
            "error_decades": float(np.log10(curve.error[i0] / curve.error[i_min])),
            "eps_opt": float(curve.error[i_min]), "lambda_opt": basin.lambda_opt,
            "descent_from_first_point": bool(i0 == 0 and curve.error[0] < chance),
            "wall_s": float(run["wall_s"]), "stop_reason": run["stop_reason"],
            "n_points": len(recs)}


def setting_summary(runs: list[dict]) -> dict:
    """The early law of one setting: the laws' slope profile over its two P."""
    from normscale.errors import NormscaleError
    from normscale.laws.profile import profile_gamma1
    from normscale.laws.window import fit_window

    runs = sorted(runs, key=lambda r: r["P"])
    curves = [run_curve(r) for r in runs]
    lam = np.array([run_summary(r)["lambda_opt"] for r in runs])
    g = profile_gamma1(curves, lam)
    slopes = np.array(g.window.slopes) if g.defined else np.array([])
    if not g.defined and g.stretch is not None:  # the stretch held; how far apart are the P?
        try:
            slopes = np.array(fit_window(curves, lam, (10 ** g.stretch[0],
                                                       10 ** g.stretch[1])).slopes)
        except NormscaleError:
            pass
    spread = float(np.std(slopes, ddof=1) / abs(np.mean(slopes))) if slopes.size > 1 \
        else math.nan
    return {"shared": g.defined, "gamma1": g.value, "reason": g.reason,
            "stretch": g.stretch, "slopes": slopes.tolist(), "spread": spread}


#: the stop rules replayed on every scan run: (name, growth, rise in noise levels or None)
STOP_RULES = (("norm 1.2x", 1.2, None), ("norm 1.5x", 1.5, None), ("norm 2x", 2.0, None),
              ("rise 2 noise, cap 1.5x", 1.5, 2.0), ("rise 2 noise, cap 2x", 2.0, 2.0))


def replay(run: dict, growth: float, rise: float | None) -> int | None:
    """Index of the logged point where a rule stops ``run`` past its optimum, or None."""
    from normscale.store import Record
    from normscale.train.stop import StopRule

    rule = StopRule(n_test=int(run["n_test"]), growth=growth, rise=rise)
    for i, r in enumerate(run["records"]):
        rec = Record(epoch=r["epoch"], step=r["step"], test_error=r["test_error"],
                     test_loss=math.nan, train_error=r["train_error"],
                     train_loss=r["train_loss"], wall_time=r["wall"],
                     norms={"spectral_complexity": r["norm"]})
        if rule.update(rec) == "past_optimum":
            return i
    return None


def stop_rule_rows(runs: list[dict]) -> list[dict]:
    """Per rule: runs stopped, minima bracketed by a rise, stops before the run's lowest
    error, and the training time against the 1.2x rule's."""
    from normscale.train.stop import error_noise

    out, base = [], None
    for name, growth, rise in STOP_RULES:
        stopped = bracketed = early = 0
        wall = 0.0
        for run in runs:
            errs = [r["test_error"] for r in run["records"]]
            i = replay(run, growth, rise)
            end = len(errs) - 1 if i is None else i
            wall += run["records"][end]["wall"]
            if i is None:
                continue
            stopped += 1
            low = min(errs[:i + 1])
            noise = error_noise(low, int(run["n_test"]))
            bracketed += errs[i] >= low + 2 * noise
            early += low > min(errs) + 2 * noise
        base = wall if base is None else base
        out.append({"rule": name, "runs": len(runs), "stopped": stopped,
                    "bracketed": bracketed, "edge": stopped - bracketed,
                    "before_lowest": early, "time": wall / base if base else math.nan})
    return out


def _fmt(values, spec: str = ".2f") -> str:
    return " / ".join(format(v, spec) for v in values)


def scan_rows(runs: list[dict]) -> list[dict]:
    by_key: dict[str, list[dict]] = {}
    for run in runs:
        by_key.setdefault(run["key"], []).append(run)
    rows = []
    for setting in SETTINGS:
        group = sorted(by_key.get(setting.key, []), key=lambda r: r["P"])
        if len(group) < 2:
            continue
        per = [run_summary(r) for r in group]
        st = setting_summary(group)
        rows.append({"setting": setting.key, "dataset": setting.dataset,
                     "init": setting.init, "optimizer": setting.optimizer, "lr": setting.lr,
                     "P": [r["P"] for r in group], "runs": per, **st})
    return rows


def _law_cell(row: dict) -> str:
    if row["shared"]:
        return f"**yes**, gamma1 {row['gamma1']:.2f}"
    r = row["reason"]
    if "monotone" in r:
        return "no: profile monotone"
    if "scatter" in r:
        return "no: P disagree"
    if "no stretch" in r:
        return "no: no stretch holds"
    if "fewer than 2 curves" in r:
        return "no: too few points in the stretch"
    return "no: " + r[:40]


def scan_markdown(rows: list[dict]) -> str:
    head = ("| setting | P | plateau (steps) | descent: norm decades | error decades | "
            "eps_opt | stretch (lambda/lambda_opt) | per-P slopes | scatter | "
            "shared early law | wall (s) | stop |\n|" + "---|" * 12 + "\n")
    lines = []
    for r in rows:
        per = r["runs"]
        stretch = (f"{10 ** r['stretch'][0]:.2g}-{10 ** r['stretch'][1]:.2g}"
                   if r["stretch"] else "none")
        lines.append(
            f"| {r['setting']} | {_fmt(r['P'], 'd')} | "
            f"{_fmt([p['plateau_steps'] for p in per], 'd')} | "
            f"{_fmt([p['norm_decades'] for p in per], '.1f')} | "
            f"{_fmt([p['error_decades'] for p in per], '.2f')} | "
            f"{_fmt([p['eps_opt'] for p in per], '.3f')} | {stretch} | "
            f"{_fmt(r['slopes']) if r['slopes'] else '-'} | "
            f"{'-' if math.isnan(r['spread']) else format(r['spread'], '.0%')} | "
            f"{_law_cell(r)} | {_fmt([p['wall_s'] for p in per], '.0f')} | "
            f"{' / '.join(p['stop_reason'] for p in per)} |")
    return head + "\n".join(lines) + "\n"


def stop_markdown(rows: list[dict]) -> str:
    head = ("| rule | runs stopped past the optimum | minimum bracketed by a rise "
            "(2 noise levels) | flat end | stopped before the run's lowest error | "
            "training time (vs 1.2x) |\n|---|---|---|---|---|---|\n")
    return head + "\n".join(
        f"| {r['rule']} | {r['stopped']} of {r['runs']} | {r['bracketed']} | {r['edge']} | "
        f"{r['before_lowest']} | {r['time']:.2f}x |" for r in rows) + "\n"


def plot_scan(rows: list[dict], runs: list[dict], path: Path) -> None:
    """One panel per setting: test error against the norm for its two P."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_key: dict[str, list[dict]] = {}
    for run in runs:
        by_key.setdefault(run["key"], []).append(run)
    n = len(rows)
    cols = 5
    nrows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        for run, color in zip(sorted(by_key[row["setting"]], key=lambda r: r["P"]),
                              ("tab:blue", "tab:red"), strict=False):
            c = run_curve(run)
            ax.loglog(c.norm, c.error, ".-", color=color, ms=3, lw=1, label=f"P={run['P']}")
        if row["stretch"]:
            lam = [p["lambda_opt"] for p in row["runs"]]
            for lo_hi, color in zip([lam[0], lam[-1]], ("tab:blue", "tab:red"), strict=False):
                ax.axvspan(lo_hi * 10 ** row["stretch"][0], lo_hi * 10 ** row["stretch"][1],
                           color=color, alpha=0.12)
        ax.set_title(f"{row['setting']}\n{_law_cell(row).replace('**', '')}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="lower left")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.supxlabel("spectral complexity (shaded: the stretch of the slope profile)", fontsize=8)
    fig.supylabel("test error", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(runs: list[dict], out: Path) -> dict[str, str]:
    """The scan's CSV and figure in ``out``; returns its markdown tables (``summary``,
    ``table``, ``stop``) for the page (markdown under docs/ would be a page of its own)."""
    import csv

    out.mkdir(parents=True, exist_ok=True)
    rows = scan_rows(runs)
    with (out / "scan.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setting", "dataset", "init", "optimizer", "lr", "P", "plateau_steps",
                    "plateau_s", "norm_decades", "error_decades", "eps_opt", "lambda_opt",
                    "stop_reason", "wall_s", "shared_early_law", "gamma1", "spread", "reason"])
        for r in rows:
            for P, p in zip(r["P"], r["runs"], strict=True):
                w.writerow([r["setting"], r["dataset"], r["init"], r["optimizer"], r["lr"], P,
                            p["plateau_steps"], f"{p['plateau_s']:.1f}",
                            f"{p['norm_decades']:.3f}", f"{p['error_decades']:.3f}",
                            f"{p['eps_opt']:.4f}", f"{p['lambda_opt']:.4g}", p["stop_reason"],
                            f"{p['wall_s']:.1f}", r["shared"], f"{r['gamma1']:.3f}",
                            f"{r['spread']:.3f}", r["reason"]])
    plot_scan(rows, runs, out / "scan.png")
    n_data = len({r["dataset"] for r in rows})
    n_runs = sum(len(r["runs"]) for r in rows)
    wall = sum(p["wall_s"] for r in rows for p in r["runs"])
    shared = [r["setting"] for r in rows if r["shared"]]
    summary = (f"{len(rows)} settings over {n_data} data sets, {n_runs} runs, "
               f"{wall / 60:.0f} min of training in all ({wall / max(n_runs, 1):.0f} s a run "
               f"on one shared core); a shared early law in {len(shared)}: "
               f"{', '.join(shared) if shared else 'none'}.\n")
    return {"summary": summary, "table": scan_markdown(rows),
            "stop": stop_markdown(stop_rule_rows(runs))}


# ---------------------------------------------------------------------------- stop rules

def _slug(rule: str) -> str:
    return rule.replace(" ", "-").replace(",", "").replace(".", "p")


def truncate_store(src: Path, dst: Path, growth: float, rise: float | None) -> None:
    """Copy the store ``src`` to ``dst`` with every run cut where a rule would stop it.

    Training is seeded, so a run's records up to that point are the records a run under
    that rule logs: the copy is the store the rule would have written (the wall time of a
    cut run is that of its last kept point)."""
    import shutil
    import sqlite3

    from normscale import data
    from normscale.store import Record
    from normscale.train.stop import StopRule

    shutil.copyfile(src, dst)
    con = sqlite3.connect(dst)
    with con:
        for run_id, config in con.execute("SELECT run_id, config FROM runs").fetchall():
            n_test = data.info(json.loads(config)["dataset"]).n_test  # the full test set
            rule = StopRule(n_test=n_test, growth=growth, rise=rise)
            rows = con.execute("SELECT step, epoch, test_error, test_loss, train_error, "
                               "train_loss, wall_time, norms FROM records WHERE run_id = ? "
                               "ORDER BY step", (run_id,)).fetchall()
            for step, epoch, te, tl, tre, trl, wall, norms in rows:
                rec = Record(epoch=epoch, step=step, test_error=te, test_loss=tl,
                             train_error=tre, train_loss=trl, wall_time=wall,
                             norms=json.loads(norms))
                if rule.update(rec) == "past_optimum":
                    con.execute("DELETE FROM records WHERE run_id = ? AND step > ?",
                                (run_id, step))
                    con.execute("UPDATE runs SET stop_reason = 'past_optimum', "
                                "wall_time = ? WHERE run_id = ?", (wall, run_id))
                    break
    con.close()


def _fit_json(db: Path, work: Path) -> dict:
    import subprocess

    csv_path = work / (db.stem + ".csv")
    cmd = [sys.executable, "-m", "normscale"]
    subprocess.run([*cmd, "export", "--store", str(db), "--out", str(csv_path), "--quiet"],
                   check=True)
    out = subprocess.run([*cmd, "fit", str(csv_path), "--group-by", "model,dataset",
                          "--json", "--quiet"], check=True, capture_output=True, text=True)
    data = json.loads(out.stdout)
    return (data[0] if isinstance(data, list) else data.get("fits", [data])[0])


def stop_rule_study(store: Path, work: Path, out: Path) -> Path:
    """Every rule of ``STOP_RULES`` replayed on a store trained under the most permissive
    one: runs past their optimum, edge minima of the laws' fit, its verdict, and the
    training time, as a markdown table ``out``."""
    import sqlite3

    work.mkdir(parents=True, exist_ok=True)
    lines = ["| rule | runs past their optimum | at their cap | edge minima | verdict | z | "
             "training time (min) |", "|---|---|---|---|---|---|---|"]
    for name, growth, rise in STOP_RULES:
        db = work / f"{_slug(name)}.db"
        truncate_store(store, db, growth, rise)
        con = sqlite3.connect(db)
        reasons = [r for (r,) in con.execute(
            "SELECT stop_reason FROM runs WHERE status = 'finished'")]
        wall = sum(w for (w,) in con.execute(
            "SELECT wall_time FROM runs WHERE status = 'finished'"))
        con.close()
        fit = _fit_json(db, work)
        z = fit.get("z")
        n_p = len(fit.get("P", [])) or "?"
        lines.append(
            f"| {name} | {reasons.count('past_optimum')} of {len(reasons)} | "
            f"{reasons.count('max_epochs')} | {fit.get('n_edge_minima', '?')} of {n_p} | "
            f"{fit.get('verdict', '?')} | {'-' if z is None else format(z, '.2f')} | "
            f"{wall / 60:.1f} |")
    out.write_text("\n".join(lines) + "\n")
    return out


def fill_doc(doc: Path, marker: str, text: str) -> None:
    """Write ``text`` into ``doc`` between its ``<!-- marker:start -->`` and ``:end`` lines."""
    import re

    page = doc.read_text()
    new, n = re.subn(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)",
                     lambda m: m.group(1) + text + m.group(2), page, flags=re.S)
    if n != 1:
        sys.exit(f"bench_scan: no '{marker}' markers in {doc}")
    doc.write_text(new)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=None, help="JSON-lines file of the scan's runs")
    p.add_argument("--out", default=None, help="folder for the table and figure")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder with mnist/, cifar10-jpeg.zip")
    p.add_argument("--fashion", default="fashion", help="folder with Fashion-MNIST's IDX files")
    p.add_argument("--only", default="", help="comma-separated data sets to train")
    p.add_argument("--n-test", type=int, default=N_TEST)
    p.add_argument("--no-train", action="store_true", help="only tabulate the runs at hand")
    p.add_argument("--stop-store", default=None,
                   help="a store trained under the 2x rule: replay every stop rule on it "
                        "(the cut stores and stop_rules_STORE.md go to --work)")
    p.add_argument("--work", default="scan-work", help="folder for the cut stores")
    p.add_argument("--doc", default=None,
                   help="a page to write the tables into, between its bench_scan markers")
    args = p.parse_args(argv)
    if args.stop_store:
        store = Path(args.stop_store)
        md = stop_rule_study(store, Path(args.work),
                             Path(args.work) / f"stop_rules_{store.stem}.md")
        if args.doc:
            fill_doc(Path(args.doc), f"bench_scan:stop:{store.stem}", md.read_text())
        return 0
    if args.runs is None:  # `make bench` runs every script bare: the scan is too long for it
        print("bench_scan: nothing to do without --runs FILE (the scan: 40 runs, about 25 "
              "minutes on one core) or --stop-store STORE; see the docstring", file=sys.stderr)
        return 0
    if not args.no_train:
        train_missing(args)
    if args.out:
        md = write_all(load_runs(args.runs), Path(args.out))
        if args.doc:
            fill_doc(Path(args.doc), "bench_scan:table", md["summary"] + "\n" + md["table"])
            fill_doc(Path(args.doc), "bench_scan:stop", md["stop"])
        else:
            print(md["summary"], md["table"], md["stop"], sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
