"""Norm-based complexity of a saved model: per-layer table and totals (docs/science.md 2.1).

A normscale training checkpoint rebuilds its model from its config; a bare
state dict needs --arch, --in-channels, --image-size and --num-classes (the
same sizes it was trained with; --dataset, --width and --depth as in training).
With --out, a folder gets the figure (norms.png, norms.pdf: the per-layer
factors of R_A, every total and, from a training checkpoint, their growth
along the run), norms.json (the --json result) and layers.csv.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normscale import safeio
from normscale.cli import _common
from normscale.errors import NormscaleError

if TYPE_CHECKING:  # torch is imported when the command runs, not when the CLI starts
    import torch

HELP = "spectral complexity and other norms of a checkpoint, layer by layer"
ARCHS = ("cnn", "resnet", "vit")
#: the files --out writes, each replaced if it is there
OUT_FILES = ("norms.json", "layers.csv", "norms.png", "norms.pdf")
#: largest model sizes built from a file or a flag: far above the paper's models, and
#: small enough that building the model cannot exhaust the memory before its weights load
LIMITS = {"in_channels": 4096, "image_size": 4096, "num_classes": 100_000, "width": 64.0,
          "depth": 64.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a normscale checkpoint (.pt) or a bare state dict")
    parser.add_argument("--arch", choices=ARCHS, help="architecture of a bare state dict")
    parser.add_argument("--in-channels",
                        type=_common.positive_int("--in-channels", maximum=LIMITS["in_channels"]))
    parser.add_argument("--image-size",
                        type=_common.positive_int("--image-size", maximum=LIMITS["image_size"]))
    parser.add_argument("--num-classes",
                        type=_common.positive_int("--num-classes", maximum=LIMITS["num_classes"]))
    parser.add_argument("--dataset", help="data set the model was built for (preset family)")
    parser.add_argument("--width", type=_common.positive_float("--width", maximum=LIMITS["width"]),
                        default=1.0,
                        help="width multiplier of a bare state dict's model (default 1)")
    parser.add_argument("--depth", type=_common.positive_float("--depth", maximum=LIMITS["depth"]),
                        default=1.0,
                        help="depth multiplier of a bare state dict's model (default 1)")
    parser.add_argument("--reference", metavar="PATH",
                        help="checkpoint or state dict of the reference weights M (e.g. at init)"
                             " of the (2,1) terms and of distance_from_init; default M = 0")
    parser.add_argument("--conv", default="reshape",
                        help="convolution spectral norm: 'reshape', the reshaped kernel (paper,"
                             " default) or 'operator', the exact"
                             " operator norm on the model's input size (circular padding)")
    parser.add_argument("--norm-layers", default="ignore",
                        help="normalisation layers: 'ignore' (default), 'fold' BatchNorm into the"
                             " preceding layer, or count their scale as a 'diagonal' layer")
    parser.add_argument("--bias", action="store_true", help="count biases (a last column)")
    parser.add_argument("--csv", metavar="FILE",
                        help="also write the per-layer table (normscale.norms.layers) as CSV")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the figure (norms.png, norms.pdf), norms.json and "
                             "layers.csv")


def run(args: argparse.Namespace) -> _common.Result:
    from normscale._validation import Options, check_param
    from normscale.norms import NormTracker
    from normscale.norms.discovery import NORM_LAYER_MODES
    from normscale.norms.tracker import CONV_MODES

    check_param("normscale norms", "conv", args.conv, Options(CONV_MODES))
    check_param("normscale norms", "norm_layers", args.norm_layers, Options(NORM_LAYER_MODES))
    obj = _load(args.checkpoint)  # the inputs first: --csv naming one is refused before work
    ref_obj = _load(args.reference) if args.reference else None
    if args.csv:
        _common.writable_file(args.csv, "--csv", mkdir=getattr(args, "mkdir", False))
    records = _records(obj, args.checkpoint)
    if args.out:
        out = _common.output_dir(args.out, mkdir=getattr(args, "mkdir", False))
        for name in OUT_FILES:  # none of them a folder, a link or an input: refused before work
            safeio.check_output(out / name, "--out")
    model, shape = _load_model(args, args.checkpoint, obj)
    reference = None
    if args.reference:
        reference = _state_of(ref_obj, args.reference)
    try:
        tracker = NormTracker(model, reference=reference, spectral="exact", conv=args.conv,
                              input_shape=shape, norm_layers=args.norm_layers, bias=args.bias)
    except NormscaleError as exc:
        if args.reference:  # most likely the reference does not fit the model
            raise NormscaleError(f"{exc} (reference '{args.reference}')") from None
        raise
    report = tracker.report()
    if args.csv:
        from normscale.store import write_table

        write_table(report.frame(), args.csv, fmt="csv")
        _common.log(args, f"wrote the per-layer table to {args.csv}")
    _common.log(args, f"{len(report.layers)} matrices counted, "
                      f"{len(report.ignored)} parameters not counted")
    totals = report.complexity.as_dict()
    data = {"checkpoint": args.checkpoint, "reference": args.reference,
            "layers": report.layers, "totals": totals, "ignored": report.ignored,
            "records": records}
    if args.out:
        _write_out(args, report, data)
    return _common.Result(data=data, text=_table(report, totals))


def _write_out(args: argparse.Namespace, report, data: dict[str, Any]) -> None:
    """norms.json (the --json result), layers.csv and the figure, in the folder --out."""
    import json

    from normscale.norms.figure import plot_norms
    from normscale.store import write_table

    out = Path(args.out)
    safeio.write_text(out / "norms.json",
                      json.dumps(_common.to_jsonable(data), indent=1, allow_nan=False), "--out")
    write_table(report.frame(), out / "layers.csv", fmt="csv")
    reference = f"M = {Path(args.reference).name}" if args.reference else "M = 0"
    paths = plot_norms(report.layers, data["totals"], out / "norms", records=data["records"],
                       reference=reference)
    _common.log(args, f"wrote norms.json, layers.csv and {', '.join(p.name for p in paths)} "
                      f"in {out}")


def _records(obj: Any, path: str) -> list[dict[str, float]]:
    """The logged points a normscale checkpoint carries (``records``), sorted by step; none
    for a bare state dict. Missing values (NaN stored as None) become NaN."""
    rows = obj.get("records") if isinstance(obj, dict) and "model_state" in obj else None
    if rows is None:
        return []
    plain = (int, float, type(None))
    if not isinstance(rows, list | tuple) or not all(
            isinstance(r, dict) and isinstance(r.get("step"), int)
            and all(isinstance(k, str) and isinstance(v, plain) for k, v in r.items())
            for r in rows):
        raise NormscaleError(f"the checkpoint '{path}' has malformed records (expected rows "
                             "of numbers, each with an integer 'step')")
    out = [{k: math.nan if v is None else float(v) for k, v in r.items()} for r in rows]
    return sorted(out, key=lambda r: r["step"])


def _table(report, totals: dict[str, float]) -> str:
    from normscale.norms import MEASURES

    lines = [f"{'layer':<28} {'kind':<18} {'shape':>12} {'spectral':>12} {'(2,1)':>12} "
             f"{'Frobenius':>12} {'stable rank':>12}"]
    for r in report.frame().itertuples():
        shape = f"{r.rows}x{r.cols}"
        lines.append(f"{r.name:<28} {r.kind:<18} {shape:>12} {r.spectral_norm:12.5g} "
                     f"{r.two_one:12.5g} {r.frobenius:12.5g} {r.stable_rank:12.5g}")
    lines.append("")
    lines += [f"{k:<26} {totals[k]:.6g}" for k in MEASURES]
    if report.ignored:
        lines.append(f"not counted: {', '.join(report.ignored)}")
    return "\n".join(lines)


def _load(path: str) -> Any:
    """Tensors and plain values only (``weights_only``): a planted file runs no code."""
    return safeio.load_torch(path, "the file")


def _state_of(obj: Any, path: str) -> dict[str, torch.Tensor]:
    import torch

    state = obj.get("model_state", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state \
            or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NormscaleError(f"the file '{path}' holds neither a normscale checkpoint nor a "
                             "state dict")
    return state


def _load_model(args: argparse.Namespace, path: str, obj: Any
                ) -> tuple[torch.nn.Module, tuple[int, ...]]:
    from normscale import nets  # the model zoo: only the CLI needs it

    state = _state_of(obj, path)
    config = obj.get("config") if isinstance(obj, dict) and "model_state" in obj else None
    if isinstance(config, dict):  # a normscale checkpoint knows its model
        kwargs = {k: config[k] for k in ("in_channels", "image_size", "num_classes")
                  if k in config}
        arch = config.get("model")
        extra = {k: config[k] for k in ("preset", "width", "depth", "dataset") if k in config}
    else:
        missing = [f"--{k.replace('_', '-')}" for k in ("arch", "in_channels", "image_size",
                                                         "num_classes")
                   if getattr(args, k) is None]
        if missing:
            raise NormscaleError(f"'{path}' is a bare state dict: give {', '.join(missing)}")
        arch = args.arch
        kwargs = {"in_channels": args.in_channels, "image_size": args.image_size,
                  "num_classes": args.num_classes}
        extra = {"width": args.width, "depth": args.depth, "dataset": args.dataset}
    if len(kwargs) < 3 or arch not in ARCHS:
        raise NormscaleError(f"the checkpoint '{path}' has an incomplete config "
                             "(model, in_channels, image_size, num_classes)")
    for key, value in (*kwargs.items(), *((k, extra.get(k)) for k in ("width", "depth"))):
        limit = LIMITS.get(key)
        if limit is None or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0 < value <= limit or (key in kwargs and value != int(value)):
            raise NormscaleError(f"the checkpoint '{path}' has {key} = {value!r} in its config; "
                                 f"expected a number > 0 and <= {limit:g}")
    try:
        model = nets.build(arch, **kwargs, **extra)
    except (TypeError, ValueError) as exc:  # a config value of the wrong type
        raise NormscaleError(f"the checkpoint '{path}' has an invalid config "
                             f"({str(exc).splitlines()[0][:200]})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise NormscaleError(f"the weights in '{path}' do not fit a {arch} with {kwargs} "
                             f"({first})") from None
    model.eval()
    return model, (kwargs["in_channels"], kwargs["image_size"], kwargs["image_size"])
