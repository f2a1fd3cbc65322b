"""The paper's five released rows: the paper's numbers, paper mode and the automatic verdict.

Writes the markdown table that docs/laws.md includes:

    python benchmarks/laws_rows.py --data ../shared/data/paper-curves --out docs/laws/rows.md

For each row: the paper's reported numbers, paper mode with the paper's choices, and the
automatic mode from the curves alone and with the row's per-seed optima (``--optima``), each
with its verdict, z and gamma_pred +- error; the automatic verdict in other units of the norm
(lambda -> lambda^k, k = 1/2 and 2) beside it.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from normscale.laws import fit_laws
from normscale.laws.paper import PaperChoices, fit_paper

ROWS = {"CNN_MNIST": "cnn_mnist", "CNN_CIFAR10": "cnn_cifar10", "ResNet_MNIST": "resnet_mnist",
        "ResNet_CIFAR10": "resnet_cifar10", "ViT_MNIST": "vit_mnist"}


def _pm(v: float, e: float) -> str:
    return f"{v:.3f} ± {e:.3f}" if np.isfinite(v) else "undefined"


def _auto(df: pd.DataFrame, opt: pd.DataFrame | None, k: float = 1.0):
    d = df.assign(norm=df.norm ** k)
    o = None if opt is None else opt.assign(lambda_opt=opt.lambda_opt ** k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_laws(d, optima=o)[0]


def rows_table(data: Path) -> str:
    reported = json.loads((data / "reported.json").read_text())
    head = ("| row | analysis | gamma1 | gamma2 | gamma_pred | gamma_meas | z | verdict "
            "| verdict at k = 1/2, 2 |")
    lines = [head, "|" + "---|" * 9]
    reasons = []
    for key, name in ROWS.items():
        rep = reported[key]
        df = pd.read_csv(data / f"{name}.csv")
        opt = pd.read_csv(data / f"{name}_optima.csv")
        ch = rep["paper_choices"]
        p = fit_paper(df, choices=PaperChoices(ch["window_lo"], ch["window_hi"],
                                               ch["gamma1_P_min"], ch["gamma2_P_min"],
                                               ch["gamma_meas_P_min"]), optima=opt)[0]
        lines.append(f"| {key} | paper | {rep['gamma1']:.3f} ± {rep['gamma1_err']:.3f} | "
                     f"{rep['gamma2']:.3f} ± {rep['gamma2_err']:.3f} | {rep['gamma_pred']:.2f} | "
                     f"{rep['gamma_meas']:.2f} | | | |")
        lines.append(f"| | paper mode | {_pm(p.gamma1, p.gamma1_err)} | "
                     f"{_pm(p.gamma2, p.gamma2_err)} | {p.gamma_pred:.3f} | {p.gamma_meas:.3f} "
                     f"| {p.z:+.1f} | | |")
        for label, o in (("auto", None), ("auto --optima", opt)):
            f = _auto(df, o)
            other = ", ".join(_auto(df, o, k).verdict for k in (0.5, 2.0))
            z = f"{f.z:+.2f}" if np.isfinite(f.z) else "-"
            lines.append(f"| | {label} (P = {f.P_range[0]:g}..{f.P_range[1]:g}) | "
                         f"{_pm(f.gamma1, f.gamma1_err)} | {_pm(f.gamma2, f.gamma2_err)} | "
                         f"{_pm(f.gamma_pred, f.gamma_pred_err)} | "
                         f"{_pm(f.gamma_meas, f.gamma_meas_err)} | {z} | **{f.verdict}** | "
                         f"{other} |")
            reasons.append(f"- **{key}, {label}: {f.verdict}.** " + "; ".join(f.verdict_reasons))
    return "\n".join(lines) + "\n\nReasons, as the tool gives them:\n\n" + "\n".join(reasons) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/paper-curves"))
    ap.add_argument("--out", type=Path, default=None, help="markdown file to write")
    args = ap.parse_args()
    text = ("<!-- written by: python benchmarks/laws_rows.py --data PAPER_CURVES "
            "--out docs/laws/rows.md -->\n" + rows_table(args.data))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
