"""Shared helpers of the forecast tests (private)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiguilleur.forecast import ForecastSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared" / "data"
GEFCOM_E = SHARED / "load" / "GEFCom2014-E.csv"
WIND_DIR = SHARED / "renewables" / "gefcom2012_wind"

requires_gefcom = pytest.mark.skipif(
    not GEFCOM_E.is_file(),
    reason="GEFCom2014-E is not available: expected ../shared/data/load/GEFCom2014-E.csv "
    "beside the repository",
)
requires_wind = pytest.mark.skipif(
    not (WIND_DIR / "windpowermeasurements.csv").is_file(),
    reason="GEFCom2012 wind is not available: expected ../shared/data/renewables/"
    "gefcom2012_wind beside the repository",
)

# Small and fast models for the tests: one thread, few trees.
FAST = ForecastSettings(
    n_estimators=40,
    median_n_estimators=80,
    learning_rate=0.1,
    median_learning_rate=0.1,
    num_leaves=15,
    median_num_leaves=15,
    calibration_days=28,
    num_threads=1,
)
