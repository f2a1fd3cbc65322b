"""From a run store to the paper's table and a self-contained HTML report.

:func:`fit_store` fits the dynamical laws for every group of runs in a store
(via :mod:`normscale.laws`); :func:`write_html_report` writes every figure,
the table and an ``index.html`` that opens from the file system.
"""

from normscale.report.html import write_html_report
from normscale.report.study import GroupFailure, fit_store

__all__ = ["GroupFailure", "fit_store", "write_html_report"]
