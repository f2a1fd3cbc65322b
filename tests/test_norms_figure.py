"""``normscale norms --out``: the figure draws the numbers of its own JSON, which equal an
independent SVD of the weights, and bad outputs are refused before any work."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from normscale import nets
from normscale.norms import measure
from normscale.norms.figure import GROWTH, TOTALS, growth, layer_ratios

SHAPE = {"in_channels": 1, "image_size": 8, "num_classes": 3}
CONFIG = {"model": "cnn", "dataset": "mnist", **SHAPE, "preset": "paper", "width": 0.125,
          "depth": 1.0}
STEPS = (0, 3, 10, 40)  # step 0 is the reference of panel (d) but not drawn (log axis)


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return nets.build("cnn", **SHAPE, width=0.125)


def _records(model: torch.nn.Module) -> list[dict[str, float]]:
    """Logged points as a training run writes them: the measures of the weights scaled by
    1 + step/20 (M = the unscaled weights), a falling test error."""
    init = {k: v.clone() for k, v in model.state_dict().items()}
    rows = []
    for i, step in enumerate(STEPS):
        scaled = _cnn()
        scaled.load_state_dict({k: v * (1 + step / 20) for k, v in init.items()})
        rows.append({"epoch": float(step), "step": step, "test_error": 0.6 / (1 + i),
                     "test_loss": 1.0, "train_error": 0.5, "train_loss": 1.0,
                     "wall_time": float(i), **measure(scaled, reference=init)})
    return rows


@pytest.fixture
def drawn(monkeypatch):
    """Every figure saved while the test runs, captured as it is written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figures, save = [], Figure.savefig

    def capture(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    return figures


def _independent_norms(model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """sigma_i and b_i (M = 0) of each Conv2d/Linear, from an SVD of the reshaped weight."""
    sigma, b = [], []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            a = m.weight.detach().double().reshape(m.weight.shape[0], -1)
            sigma.append(float(torch.linalg.svdvals(a)[0]))
            b.append(float(a.norm(dim=1).sum()))
    return np.array(sigma), np.array(b)


def test_the_figure_draws_the_numbers_of_its_json(cli, drawn, tmp_path):
    model = _cnn()
    records = _records(model)
    path = tmp_path / "run.pt"
    torch.save({"model_state": model.state_dict(), "config": CONFIG, "records": records}, path)
    out = tmp_path / "figs"
    run = cli("norms", path, "--out", out, "--json")
    assert run.code == 0, run.err
    assert (out / "norms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "norms.pdf").read_bytes()[:5] == b"%PDF-"
    data = json.loads((out / "norms.json").read_text())
    assert data == run.json()  # the file is the --json result
    assert (out / "layers.csv").read_text().count("\n") == len(data["layers"]) + 1

    # (a) and (b): the bars are the JSON's sigma_i and b_i / sigma_i, and those equal an SVD
    fig = drawn[0]
    assert len(drawn) == 2  # the PNG and the PDF, one figure
    ax_sigma, ax_ratio, ax_totals, ax_growth = fig.axes[:4]
    sigma = np.array([r["spectral_norm"] for r in data["layers"]])
    ratio = np.array([r["two_one"] / r["spectral_norm"] for r in data["layers"]])
    svd_sigma, svd_b = _independent_norms(model)
    np.testing.assert_allclose(sigma, svd_sigma, rtol=1e-10)
    np.testing.assert_allclose(ratio, svd_b / svd_sigma, rtol=1e-10)
    np.testing.assert_allclose([p.get_height() for p in ax_sigma.patches], sigma, rtol=1e-12)
    np.testing.assert_allclose([p.get_height() for p in ax_ratio.patches], ratio, rtol=1e-12)
    shares = [float(t.get_text().rstrip("%")) for t in ax_ratio.texts]
    want = ratio ** (2 / 3) / np.sum(ratio ** (2 / 3)) * 100
    np.testing.assert_allclose(shares, np.round(want), atol=0)
    totals = data["totals"]
    assert f"{totals['max_expansion']:.4g}" in ax_sigma.get_title()
    assert f"{totals['effective_rank_factor']:.4g}" in ax_ratio.get_title()
    # the factors of the panels give R_A back (docs/science.md 2.1)
    r_a = np.prod(sigma) * np.sum(ratio ** (2 / 3)) ** 1.5
    assert r_a == pytest.approx(totals["spectral_complexity"], rel=1e-10)

    # (c): log10 of each finite total, labelled; R_A's bar is the sum of its factors' bars
    labels = [t.get_text() for t in ax_totals.get_yticklabels()]
    widths = dict(zip(labels, (p.get_width() for p in ax_totals.patches), strict=True))
    shown = {label: math.log10(totals[k]) for k, label in TOTALS.items()
             if totals[k] is not None and totals[k] > 0}
    assert widths == pytest.approx(shown, rel=1e-12)
    assert "distance from init" not in widths  # NaN without a reference
    assert widths["R_A"] == pytest.approx(widths["max expansion"]
                                          + widths["effective-rank factor"], rel=1e-12)

    # (d): each line is the records' measure over its value at the first point, against step
    lines = {line.get_label(): line for line in ax_growth.get_lines()}
    assert set(lines) == {TOTALS[k] for k in GROWTH}
    for k in GROWTH:
        x, y = lines[TOTALS[k]].get_data()
        np.testing.assert_array_equal(x, STEPS[1:])
        # M = the step-0 weights: R_A and its effective-rank factor are 0 there, so their
        # lines are relative to step 3, the others to step 0
        first = 1 if k in ("spectral_complexity", "effective_rank_factor") else 0
        assert records[0][k] == 0.0 if first else records[0][k] > 0
        np.testing.assert_allclose(y, [r[k] / records[first][k] for r in records[1:]],
                                   rtol=1e-12)
    # R_A grows as (1 + step/20)^L times its effective-rank factor's growth (L = 5 matrices)
    x, y = lines["max expansion"].get_data()
    # (to float32's precision: the weights were scaled in float32)
    np.testing.assert_allclose(y, (1 + np.asarray(x) / 20) ** len(sigma), rtol=1e-6)
    (error,) = fig.axes[4].get_lines()  # the test error, on the twin axis
    np.testing.assert_allclose(error.get_ydata(), [r["test_error"] for r in records[1:]])


def test_a_bare_state_dict_gets_three_panels_and_no_records(cli, drawn, tmp_path):
    model = _cnn()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    ref = tmp_path / "init.pt"
    torch.save({k: v * 0.5 for k, v in model.state_dict().items()}, ref)
    run = cli("norms", path, "--arch", "cnn", "--in-channels", "1", "--image-size", "8",
              "--num-classes", "3", "--width", "0.125", "--reference", ref,
              "--out", tmp_path / "o", "--json")
    assert run.code == 0, run.err
    data = run.json()
    assert data["records"] == [] and data["reference"] == str(ref)
    (fig,) = set(drawn)
    assert len(fig.axes) == 3 and "M = init.pt" in fig.texts[0].get_text()
    # with M = A/2 every b_i is half the weights' (2,1) norm, and the distance is drawn
    sigma, b = _independent_norms(model)
    np.testing.assert_allclose([p.get_height() for p in fig.axes[1].patches], b / 2 / sigma,
                               rtol=1e-10)
    labels = [t.get_text() for t in fig.axes[2].get_yticklabels()]
    assert "distance from init" in labels


def test_growth_and_ratios_refuse_to_invent_numbers():
    rows = [{"step": 0, "l1": 0.0, "l2": 2.0, "l": math.nan},
            {"step": 5, "l1": 3.0, "l2": 3.0, "l": math.nan},
            {"step": 9, "l1": 6.0, "l2": 1.0, "l": -1.0}]
    steps, ratio = growth(rows, "l2")  # step 0: the reference, not drawn (log axis)
    assert steps.tolist() == [5.0, 9.0] and ratio.tolist() == [1.5, 0.5]
    steps, ratio = growth(rows, "l1")  # 0 at step 0: relative to its first value > 0
    assert steps.tolist() == [5.0, 9.0] and ratio.tolist() == [1.0, 2.0]
    assert growth(rows, "l")[0].size == 0  # never finite and > 0: nothing to draw
    assert growth(rows, "group_2_1")[0].size == 0  # a measure the records lack

    class Layer:
        def __init__(self, sigma, b):
            self.spectral_norm, self.two_one = sigma, b

    r = layer_ratios([Layer(2.0, 3.0), Layer(0.0, 1.0)])
    assert r[0] == 1.5 and math.isnan(r[1])


def _checkpoint(tmp_path, **extra):
    path = tmp_path / "run.pt"
    torch.save({"model_state": _cnn().state_dict(), "config": CONFIG, **extra}, path)
    return path


def _one_line_error(run, *words):
    assert run.code == 2, (run.out, run.err)
    assert run.err.count("\n") == 1 and "Traceback" not in run.err, run.err
    for w in words:
        assert w in run.err, run.err


def test_bad_outputs_and_records_exit_2_before_any_work(cli, drawn, tmp_path):
    path = _checkpoint(tmp_path)
    (tmp_path / "file").write_text("mine")
    _one_line_error(cli("norms", path, "--out", tmp_path / "file"), "--out", "not a folder")
    _one_line_error(cli("norms", path, "--out", tmp_path / "no" / "such" / "dir"), "--out",
                    "--mkdir")
    # an output that is a folder, or an input of the command, is refused before any work
    (tmp_path / "o" / "norms.png").mkdir(parents=True)
    _one_line_error(cli("norms", path, "--out", tmp_path / "o"), "--out", "norms.png")
    inside = tmp_path / "p"
    inside.mkdir()
    ckpt = inside / "norms.pdf"
    ckpt.write_bytes(path.read_bytes())
    _one_line_error(cli("norms", ckpt, "--out", inside), "--out", "input")
    assert ckpt.read_bytes() == path.read_bytes() and not (inside / "norms.json").exists()
    bad = _checkpoint(tmp_path, records=[{"step": "one", "l1": 1.0}])
    _one_line_error(cli("norms", bad, "--out", tmp_path / "q"), str(bad), "records")
    assert not (tmp_path / "q").exists() and drawn == []
