"""The paper's table (gamma1, gamma2, gamma_pred, gamma_meas, sigma, window, collapse,
back-test) for every group of finished runs in a store, via normscale.laws."""

from __future__ import annotations

import argparse

from normscale.cli._common import MAX_BOOT, Result, input_file, log, nonnegative_int
from normscale.errors import NormscaleError

HELP = "the paper's table of exponents for every group of runs in a store"


def add_store_fit_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `table` and `report`."""
    from normscale.store.schema import GROUP_COLUMNS

    p.add_argument("--store", default="runs.db", help="the run store (SQLite file)")
    p.add_argument("--group-by", default=",".join(GROUP_COLUMNS),
                   help="comma-separated columns; one analysis per group")
    p.add_argument("--norm", default="spectral_complexity",
                   help="the norm kind indexing the curves, or 'all' (then group by norm_kind)")
    p.add_argument("--n-boot", type=nonnegative_int("--n-boot", maximum=MAX_BOOT), default=0,
                   help="bootstrap replicates over seeds, reported beside the analytic errors "
                        "as a check (default 0: off)")
    p.add_argument("--seed", type=nonnegative_int("--seed"), default=0,
                   help="seed of the bootstrap")


def fit_from_args(args: argparse.Namespace):
    """Open the store named by ``args`` read-only and fit every group.

    Returns (store, fits, failures); raises when no group could be fitted (a
    one-P store, say), so that `table` and `report` refuse it alike.
    """
    from normscale.report import fit_store
    from normscale.store import Store

    input_file(args.store, "--store")
    group_by = tuple(c.strip() for c in args.group_by.split(",") if c.strip())
    norm = None if args.norm == "all" else args.norm
    if norm is None and "norm_kind" not in group_by:
        group_by = (*group_by, "norm_kind")
    store = Store(args.store, readonly=True)  # a reader: the store is never written
    try:
        _, fits, failures = fit_store(store, group_by=group_by, norm=norm, n_boot=args.n_boot,
                                      seed=args.seed)
    except BaseException:
        store.close()
        raise
    for f in failures:
        log(args, f"not fitted {f.group}: {f.error}")
    if not fits:
        store.close()
        raise NormscaleError("no group of the store could be fitted: "
                             + "; ".join(f.error for f in failures))
    return store, fits, failures


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_store_fit_arguments(p)


def run(args: argparse.Namespace) -> Result:
    from normscale.laws.summary import markdown
    from normscale.report.study import stop_line, stop_reasons

    store, fits, failures = fit_from_args(args)
    with store:  # why the runs stopped is in the store, not in the curves
        reasons = [stop_reasons(store, f.group) for f in fits]
        joint = _width_study(args, store)
    data = [{**f.to_dict(), "stop_reasons": r} for f, r in zip(fits, reasons, strict=True)] + [
        {"group": f.group, "error": f.error} for f in failures]
    lines = [f"Stopped ({', '.join(f'{k}={v}' for k, v in f.group.items())}): {stop_line(r)}; "
             f"minimum at the last logged point on {f.n_edge_minima} of {len(f.P)} P"
             for f, r in zip(fits, reasons, strict=True)]
    text = markdown(fits) + "\n" + "\n".join(lines)
    if joint is not None:
        from normscale.cli.scaling import analysis_text

        data.append({"joint_eps_opt_N_P": joint.to_dict()})
        text += "\n\nModel size and data, eps_opt(N, P) per run:\n" + analysis_text(joint)
    return Result(data, text)


def _width_study(args: argparse.Namespace, store):
    """The joint law eps_opt(N, P) when the store's runs span several widths (a width x P
    sweep); None otherwise or when it cannot be fitted (said in the log)."""
    from normscale.scaling import fit_width_study, optima
    from normscale.store import long_table

    table = long_table(store, norm=None if args.norm == "all" else args.norm)
    if "width" not in table.columns or table["width"].nunique() < 2:
        return None
    try:
        # its bootstrap needs replicates even when the laws' is off (--n-boot 0)
        return fit_width_study(optima(table), n_boot=max(args.n_boot, 20), seed=args.seed)
    except NormscaleError as exc:
        log(args, f"joint law eps_opt(N, P) not fitted: {exc}")
        return None
