"""The HTML report (Jinja2 + inline seaborn/matplotlib figures). Never imports JAX."""

from benchmark.report.html import build_report, write_report

__all__ = ["build_report", "write_report"]
