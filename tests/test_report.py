"""`normscale table` and `normscale report` on a store filled with curves of known exponents."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laws_synthetic import synthetic_curves
from normscale.store import Record, Store
from normscale.train import TrainConfig


def _fill(store: Store, curves, **config) -> None:
    for (P, seed), c in curves.groupby(["P", "seed"]):
        cfg = TrainConfig(model="cnn", dataset="digits", P=int(P), seed=int(seed), epochs=10,
                          **config)
        store.start_run(cfg.run_id, cfg.to_dict())
        records = [Record(epoch=float(i + 1), step=i + 1, test_error=float(e), test_loss=1.0,
                          train_error=0.0, train_loss=0.1, wall_time=float(i),
                          norms={"spectral_complexity": float(n), "l2": float(np.sqrt(n))})
                   for i, (n, e) in enumerate(zip(c["norm"], c["test_error"], strict=True))]
        store.add_records(cfg.run_id, records)
        # seed 0 of the smallest P sat on its plateau, the others passed their optimum
        # (neither is censored, so the fits are those of the curves)
        first = (P == curves["P"].min() and seed == 0)
        store.finish_run(cfg.run_id, status="finished", wall_time=1.0,
                         stop_reason="plateau" if first else "past_optimum")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "runs.db"
    with Store(path) as store:
        rng = np.random.default_rng(7)
        _fill(store, synthetic_curves(gamma1=0.5, gamma2=1.0, n_seeds=3, noise=0.02, rng=rng),
              optimizer="adam")
        _fill(store, synthetic_curves(gamma1=0.3, gamma2=1.5, n_seeds=3, noise=0.02, rng=rng),
              optimizer="sgd", lr=0.01)
        # a group with a single P cannot be fitted: it is reported, the others still are
        _fill(store, synthetic_curves(P=(1000,), n_seeds=2, rng=rng), optimizer="adamw")
    return path


def test_table_recovers_each_groups_exponents(cli, store_path):
    r = cli("table", "--store", store_path, "--n-boot", "30", "--json", "--quiet")
    assert r.code == 0, r.err
    rows = {row["group"]["optimizer"]: row for row in r.json()}
    assert set(rows) == {"adam", "sgd", "adamw"}
    assert "error" in rows["adamw"] and "gamma1" not in rows["adamw"]
    for opt, (g1, g2) in {"adam": (0.5, 1.0), "sgd": (0.3, 1.5)}.items():
        row = rows[opt]
        assert abs(row["gamma1"] - g1) < max(3 * row["gamma1_err"], 0.03), row
        assert abs(row["gamma2"] - g2) < max(3 * row["gamma2_err"], 0.05), row
        assert row["gamma_pred"] == pytest.approx(row["gamma1"] * row["gamma2"], rel=1e-9)
        assert row["stop_reasons"] == {"past_optimum": 17, "plateau": 1}  # from the store
    text = cli("table", "--store", store_path, "--n-boot", "10", "--quiet")
    assert text.code == 0 and text.out.count("\n| cnn | digits |") == 2
    assert text.out.count("18 runs stopped: 17 past_optimum, 1 plateau; minimum at the last "
                          "logged point on ") == 2


def test_table_bad_input(cli, tmp_path, store_path):
    r = cli("table", "--store", tmp_path / "none.db")
    assert r.code == 2 and "none.db" in r.err and "Traceback" not in r.err
    r = cli("table", "--store", store_path, "--group-by", "model,colour")
    assert r.code == 2 and "colour" in r.err
    r = cli("table", "--store", store_path, "--norm", "l7")
    assert r.code == 2 and "l7" in r.err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_dom(page: Path, profile: Path, *, width: int = 1280) -> str:
    """The DOM of ``page`` after its scripts ran, in headless Chromium at ``width`` px."""
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--window-size={width},900",
         "--hide-scrollbars", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-1000:]
    return dom.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory, store_path):
    from normscale.cli import main

    out = tmp_path_factory.mktemp("report") / "report"
    assert main(["report", "--store", str(store_path), "--out", str(out), "--n-boot", "10",
                 "--quiet"]) == 0
    return out


def _groups(page: str) -> list[str]:
    return re.findall(r"<section class='group'>.*?</section>", page, re.DOTALL)


def test_report_leads_each_group_with_its_verdict_table(cli, report, store_path):
    page = (report / "index.html").read_text()
    rows = {row["group"]["optimizer"]: row for row in
            cli("table", "--store", store_path, "--n-boot", "10", "--json", "--quiet").json()}
    groups = _groups(page)
    assert len(groups) == 2
    for g in groups:
        opt = re.search(r"<h2>[^<]*optimizer=(\w+)", g).group(1)
        row = rows[opt]
        cells = dict(re.findall(r"<td class='(z|gamma_pred|gamma_meas|stops)'>([^<]*)</td>", g))
        verdict = re.search(r"<b class='verdict (\w+)'>(\w+)</b>", g)
        assert verdict.group(1) == verdict.group(2) == row["verdict"]
        assert cells["gamma_pred"] == f"{row['gamma_pred']:.3f} ± {row['gamma_pred_err']:.3f}"
        assert cells["gamma_meas"] == f"{row['gamma_meas']:.3f} ± {row['gamma_meas_err']:.3f}"
        assert cells["z"] == f"{row['z']:+.1f}"
        assert cells["stops"] == "17 past_optimum, 1 plateau"
        assert len(re.findall(r"<li>", g)) == len(row["verdict_reasons"])
        # the short table first, then the figure, then every column behind a click
        table, img, details = (g.index(s) for s in ("<table class='verdict'>", "<img ",
                                                    "<details class='columns'>"))
        assert table < img < details
        laws = pd.read_csv(report / "figures" / "laws.csv")
        shown = re.findall(r"<tr><th>(\w+)</th>", g[details:])
        assert shown == list(laws.columns)  # all of them, behind the click
        assert re.search(r"<span class='edge'>\d+</span> of 6 P", g)  # synthetic_curves: 6 P


def test_report_page_shows_every_figure(report):
    page = (report / "index.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) == 2 and all((report / src).is_file() for src in images)
    assert "Not fitted: " in page and "torch" in page  # the failure and the environment
    assert page.count("<details>") == 18 + 18 + 2 + 1  # every run's config, the environment
    assert page.count("<td class='stop'>past_optimum</td>") == 17 + 17 + 1
    assert page.count("<td class='stop'>plateau</td>") == 3


def test_report_names_no_folder_of_the_machine(report, store_path):
    page = (report / "index.html").read_text()
    for folder in (store_path.parent, report, Path.home(), Path("/tmp")):
        assert str(folder) not in page
    assert "<code>runs.db</code>" in page


def test_scrub_paths_keeps_the_name_only():
    from normscale.report.html import scrub_paths

    assert scrub_paths("the store '/tmp/s3/x.db' holds none") == "the store '.../x.db' holds none"
    assert scrub_paths(r"at C:\Users\me\runs.db, ~/data/mnist") == "at .../runs.db, .../mnist"
    # a ratio, a fraction or a relative link are not paths
    kept = "lambda/lambda_opt in [0.01, 1], 1/2 of P, figures/laws.md"
    assert scrub_paths(kept) == kept


def test_report_page_fits_the_screen_with_its_figures(report, tmp_path):
    """In Chromium every figure loads and the page needs no sideways scrolling at 1280 px."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium, or make browser)")
    probe = report / "probe.html"
    probe.write_text((report / "index.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium_dom(probe, tmp_path / "profile")
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded is not None, "the page's image check did not run"
    assert loaded.group(1) == loaded.group(2) == "2"
    width = re.search(r'data-scroll-width="(\d+)" data-view-width="(\d+)"', dom)
    assert width is not None and int(width.group(1)) <= int(width.group(2)), width.group(0)


# appended to a copy of a page: its width against the window's, after the images loaded
PROBE = """<script>window.addEventListener("load", function () {
  var d = document.createElement("div");
  d.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
  d.setAttribute("data-view-width", window.innerWidth);
  document.body.appendChild(d); });</script>"""


@pytest.mark.parametrize("P", [(250, 500, 1000, 2000, 4000), (100, 200, 400, 800)])
def test_log_axes_of_the_report_figure_have_no_overlapping_tick_labels(monkeypatch, tmp_path, P):
    """The P ranges of the cpu presets (cnn-mnist, cnn-digits): every tick label readable."""
    import matplotlib.pyplot as plt

    from normscale.laws import figures, fit_laws

    curves = synthetic_curves(P=P, n_seeds=2, noise=0.02, rng=np.random.default_rng(3))
    kept = []
    monkeypatch.setattr(figures.plt, "close", kept.append)
    figures.plot_fit(fit_laws(curves)[0], tmp_path / "fit")
    (fig,) = kept
    renderer = fig.canvas.get_renderer()
    overlaps = []
    for ax in fig.axes:
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            boxes = [(t.get_window_extent(renderer), t.get_text())
                     for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]
            overlaps += [f"{ax.get_title()} {name}: {sa!r} over {sb!r}"
                         for i, (a, sa) in enumerate(boxes) for b, sb in boxes[i + 1:]
                         if a.overlaps(b)]
    plt.close(fig)
    assert not overlaps, overlaps


def test_report_figure_title_fits_the_figure(monkeypatch, tmp_path):
    """The title carries the verdict: it must be read whole, not cut at the figure's edges."""
    import matplotlib.pyplot as plt

    from normscale.laws import figures, fit_laws

    curves = synthetic_curves(P=(250, 500, 1000, 2000, 4000), n_seeds=2, noise=0.02,
                              rng=np.random.default_rng(3))
    curves["model"], curves["dataset"], curves["optimizer"] = "cnn", "fashion-mnist", "adamw"
    curves["weight_decay"], curves["norm_kind"] = 0.0005, "spectral_complexity"
    groups = ("model", "dataset", "optimizer", "weight_decay", "norm_kind")
    kept = []
    monkeypatch.setattr(figures.plt, "close", kept.append)
    figures.plot_fit(fit_laws(curves, group_by=groups)[0], tmp_path / "fit")
    (fig,) = kept
    title = fig._suptitle
    box = title.get_window_extent(fig.canvas.get_renderer())
    width = fig.bbox.width
    plt.close(fig)
    assert "CONSISTENT" in title.get_text() or "TENSION" in title.get_text() \
        or "UNTESTABLE" in title.get_text() or "INCONCLUSIVE" in title.get_text()
    assert box.x0 >= 0 and box.x1 <= width, (box.x0, box.x1, width, title.get_text())


def test_report_sets_the_norms_side_by_side(report):
    """The store tracked two norms; here l2 = sqrt(spectral complexity), a change of units
    only, so the test must give both the same verdict, z and gamma_pred."""
    page = (report / "index.html").read_text()
    assert "<h2>Norms side by side</h2>" in page
    section = page[page.index("<h2>Norms side by side</h2>"):]
    section = section[:section.index("</table>")]
    rows = re.findall(r"<tr>(<td>.*?)</tr>", section)
    cells = [re.findall(r"<td>(?:<b>)?([^<]*)", r) for r in rows]
    by_opt: dict[str, dict[str, list[str]]] = {}
    for c in cells:
        opt = next(v for v in c if v in ("adam", "sgd", "adamw"))
        kind = next(v for v in c if v in ("l2", "spectral_complexity"))
        by_opt.setdefault(opt, {})[kind] = c[-4:]  # verdict, z, gamma_pred, gamma_meas
    assert set(by_opt) == {"adam", "sgd"}  # adamw has one P: not fitted
    for kinds in by_opt.values():
        assert kinds["l2"] == kinds["spectral_complexity"]
