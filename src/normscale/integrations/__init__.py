"""Norm-indexed learning curves from training loops normscale does not own.

- :class:`RunTracker` -- a plain-PyTorch loop: ``tracker.log(step,
  test_error=...)`` measures the norms and stores the point; the one code
  path the callbacks below are built on;
- :mod:`normscale.integrations.lightning` -- ``NormCallback``, a
  ``lightning.pytorch.Callback`` (extra ``normscale[lightning]``);
- :mod:`normscale.integrations.hf` -- ``NormTrainerCallback``, a
  ``transformers.TrainerCallback`` (extra ``normscale[hf]``);
- :mod:`normscale.integrations.tensorboard` -- TensorBoard event files into
  the long table of ``normscale fit`` (extra ``normscale[tensorboard]``);
- :mod:`normscale.integrations.tables` -- CSV exports of W&B or MLflow,
  through a column map, into the same table.

This package imports none of the optional libraries: each submodule that
needs one imports it, and says which extra to install when it is missing.
"""

from normscale.integrations.schedule import Every, LogSpaced, Schedule, Steps
from normscale.integrations.tracker import RunTracker, run_id_of

__all__ = ["Every", "LogSpaced", "RunTracker", "Schedule", "Steps", "run_id_of"]
