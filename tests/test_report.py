"""`normscale table` and `normscale report` on a store filled with curves of known exponents."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
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


def test_report_page_shows_every_figure(cli, tmp_path, store_path):
    out = tmp_path / "report"
    r = cli("report", "--store", store_path, "--out", out, "--n-boot", "10", "--quiet",
            "--json")
    assert r.code == 0, r.err
    assert r.json()["groups"] == 2 and r.json()["failed_groups"] == 1
    page = (out / "index.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) == 2 and all((out / src).is_file() for src in images)
    assert "Not fitted" in page and "torch" in page  # the failure and the environment
    assert page.count("<details>") == 18 + 18 + 2  # every run with its config
    # each run's stop reason, and per group the verdict, the stop reasons and edge minima
    assert page.count("<td class='stop'>past_optimum</td>") == 17 + 17 + 1
    assert page.count("<td class='stop'>plateau</td>") == 3
    assert page.count("18 runs stopped: 17 past_optimum, 1 plateau") == 2
    assert len(re.findall(r"<span class='edge'>\d+</span> of \d+ P", page)) == 2
    assert len(re.findall(r"verdict <b class='verdict'>(consistent|tension|untestable)</b>",
                          page)) == 2
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-1000:]
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom.stdout)
    assert loaded is not None, "the page's image check did not run"
    assert loaded.group(1) == loaded.group(2) == "2"
