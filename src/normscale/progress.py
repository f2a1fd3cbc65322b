"""A minimal progress bar on stderr.

Written here rather than taken from tqdm: the CLI needs only "n of total,
rate, ETA" on one line, silent when ``--quiet``; when stderr is not a terminal
(a log file, a cluster job) it writes a plain line every ``log_every``
seconds instead, so a long job is never silent for hours. That is 60 lines
and one fewer dependency for every user.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Context manager: ``with Progress(total, "fixed-norm") as bar: bar.update()``."""

    def __init__(self, total: int, label: str = "", *, enabled: bool | None = None,
                 stream: TextIO | None = None, log_every: float | None = None) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.log_every = None if enabled else log_every  # plain lines, only without the bar
        self.done = 0
        self._t0 = time.perf_counter()
        self._last = 0.0

    def __enter__(self) -> Progress:
        self._t0 = time.perf_counter()
        self._draw(force=True)
        return self

    def __exit__(self, *exc) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, n: int = 1, status: str = "") -> None:
        self.done += n
        self._draw(status=status)
        self._log_line(status)

    def _log_line(self, status: str) -> None:
        if self.log_every is None:
            return
        now = time.perf_counter()
        if now - max(self._t0, self._last) < self.log_every:
            return
        self._last = now
        self.stream.write(f"{self.label}: {self.done}/{self.total} after {now - self._t0:.0f} s"
                          + (f", {status}" if status else "") + "\n")
        self.stream.flush()

    def _draw(self, force: bool = False, status: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self._t0
        frac = self.done / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta_s = f"{eta:5.0f}s" if eta == eta else "    ?s"
        line = (f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.0f}s "
                f"eta {eta_s} {status}")
        self.stream.write(line[:200])
        self.stream.flush()
