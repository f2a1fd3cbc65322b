"""Sweeps: many training runs from one TOML file, on this machine or a Ray cluster.

- :mod:`~normscale.sweep.spec`: sweep files and the shipped presets, expanded
  into :class:`~normscale.train.TrainConfig` objects;
- :mod:`~normscale.sweep.worker`: what one worker does for one run;
- :mod:`~normscale.sweep.executors`: a local process pool, or Ray tasks;
- :mod:`~normscale.sweep.driver`: the driver, the store's single writer.
"""

from normscale.sweep.driver import SweepSummary, run_sweep
from normscale.sweep.spec import SweepSpec, list_presets, load_spec

__all__ = ["SweepSpec", "SweepSummary", "list_presets", "load_spec", "run_sweep"]
