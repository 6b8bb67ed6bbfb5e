"""The operations centre: composes the grid (and later logistics, forecasts, asset health)
into jobs an operator runs, and reports what they found."""

from aiguilleur.ops.demo import BranchLoading, DemoProgress, DemoResult, Outage, run_demo
from aiguilleur.ops.report import Bar, Table, write_html_report

__all__ = [
    "Bar",
    "BranchLoading",
    "DemoProgress",
    "DemoResult",
    "Outage",
    "Table",
    "run_demo",
    "write_html_report",
]
