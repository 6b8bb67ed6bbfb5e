"""forecast is a leaf: no other area, no benchmark-only or plotting package."""

from __future__ import annotations

import subprocess
import sys


def test_forecast_imports_no_other_area_nor_optional_packages() -> None:
    code = (
        "import sys, aiguilleur.forecast, aiguilleur.forecast.wind, aiguilleur.forecast.plots\n"
        "from aiguilleur.forecast import sample_series, fit\n"
        "bad = [m for m in ('aiguilleur.grid', 'aiguilleur.logistics', 'aiguilleur.health',"
        " 'aiguilleur.ops', 'aiguilleur.cli', 'statsforecast', 'matplotlib', 'typer')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
