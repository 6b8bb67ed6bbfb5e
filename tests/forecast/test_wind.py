"""Wind power from NWP: synthetic farms with a known power curve, and the shared data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.forecast.wind import WindSettings, read_gefcom2012_wind, wind_backtest

from ._util import WIND_DIR, requires_wind

FAST = WindSettings(test_start="2010-03-01", refit="once", n_estimators=60, num_threads=1)


def power_curve(ws: np.ndarray) -> np.ndarray:
    return np.clip((ws - 3.0) / 9.0, 0.0, 1.0) ** 1.5


def make_folder(d: Path, days: int = 120, seed: int = 0) -> Path:
    """Two farms; true wind a smooth random walk; NWP = truth + error growing with lead."""
    rng = np.random.default_rng(seed)
    n = 24 * days + 48
    t = pd.date_range("2010-01-01", periods=n, freq="h")
    d.mkdir(parents=True, exist_ok=True)
    power = {}
    for f in (1, 2):
        wind = np.abs(7 + np.cumsum(rng.normal(0, 0.6, n)) * 0.3 + 3 * np.sin(np.arange(n) / 9))
        wind = np.clip(wind, 0, 25)
        power[f"wp{f}"] = np.round(power_curve(wind) + rng.normal(0, 0.03, n), 3).clip(0, 1)
        rows = []
        for i in range(0, 24 * days, 12):
            lead = np.arange(1, 49)
            ws = np.clip(wind[i + lead] + rng.normal(0, 0.4 + lead / 40, 48), 0, None)
            wd = rng.uniform(0, 360, 48)
            u, v = ws * np.sin(np.deg2rad(wd)), ws * np.cos(np.deg2rad(wd))
            stamp = t[i].strftime("%Y%m%d%H")
            rows += [(stamp, k, u[k - 1], v[k - 1], ws[k - 1], wd[k - 1]) for k in lead]
        pd.DataFrame(rows, columns=["date", "hors", "u", "v", "ws", "wd"]).to_csv(
            d / f"windforecasts_wf{f}.csv", index=False
        )
    frame = pd.DataFrame({"date": t.strftime("%Y%m%d%H"), **power})
    frame.to_csv(d / "windpowermeasurements.csv", index=False)
    return d


def test_synthetic_farms_beat_persistence_and_climatology(tmp_path: Path) -> None:
    data = read_gefcom2012_wind(make_folder(tmp_path / "w"))
    assert data.farms == ("wp1", "wp2") and data.nwp[0].shape[1:] == (48, 4)
    res = wind_backtest(data, FAST)
    for f in res.farms:
        assert f.rmse < 0.75 * f.persistence_rmse
        assert f.rmse < f.climatology_rmse
        assert f.pinball < f.climatology_pinball
        assert np.isnan(f.rmse_by_lead[:12]).all() and np.isfinite(f.rmse_by_lead[12:]).all()
    s = res.summary()
    assert s["improvement_vs_persistence"] > 0.25
    json.dumps(s)


def test_scores_against_direct_computation(tmp_path: Path) -> None:
    """Persistence RMSE recomputed from the files by pandas alone."""
    folder = make_folder(tmp_path / "w", days=80, seed=1)
    data = read_gefcom2012_wind(folder, farms=(1,))
    res = wind_backtest(data, WindSettings(test_start="2010-02-15", refit="once", n_estimators=30))
    p = pd.read_csv(folder / "windpowermeasurements.csv", dtype={"date": str})
    p.index = pd.to_datetime(p["date"], format="%Y%m%d%H")
    nwp = pd.read_csv(folder / "windforecasts_wf1.csv", dtype={"date": str})
    nwp["issue"] = pd.to_datetime(nwp["date"], format="%Y%m%d%H")
    nwp = nwp[(nwp["issue"] >= "2010-02-15") & nwp["hors"].between(13, 48)]
    target = nwp["issue"] + pd.to_timedelta(nwp["hors"], unit="h")
    y = p["wp1"].reindex(target).to_numpy()
    pers = p["wp1"].reindex(nwp["issue"]).to_numpy()
    ok = np.isfinite(y) & np.isfinite(pers)
    assert res.all.rows == int(ok.sum())
    assert res.all.persistence_rmse == pytest.approx(np.sqrt(np.mean((y - pers)[ok] ** 2)))


def test_bad_wind_files(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "w", days=20)
    with pytest.raises(CaseFormatError, match="wp3"):
        read_gefcom2012_wind(folder, farms=(3,))
    f = folder / "windforecasts_wf2.csv"
    text = f.read_text().splitlines()
    f.write_text("\n".join([*text, text[5]]) + "\n")
    with pytest.raises(CaseFormatError, match=r"windforecasts_wf2.csv:\d+: duplicated"):
        read_gefcom2012_wind(folder)
    f.write_text("\n".join(text).replace(",ws,", ",speed,") + "\n")
    with pytest.raises(CaseFormatError, match="no column 'ws'"):
        read_gefcom2012_wind(folder)
    with pytest.raises(ValidationError, match="eval_leads"):
        WindSettings(eval_leads=(0, 48))
    with pytest.raises(CaseFormatError, match="windpowermeasurements"):
        read_gefcom2012_wind(tmp_path)


def test_wind_cli_json(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "w", days=90, seed=2)
    res = CliRunner().invoke(
        app,
        ["forecast", "wind", str(folder), "--test-start", "2010-03-01", "--refit", "once",
         "--trees", "40", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["rmse"] < out["persistence_rmse"]
    assert [f["farm"] for f in out["farms"]] == ["wp1", "wp2"]


@pytest.mark.slow
@requires_wind
def test_gefcom2012_farm1_beats_persistence_by_30_percent() -> None:
    data = read_gefcom2012_wind(WIND_DIR, farms=(1,))
    res = wind_backtest(data, WindSettings(refit="once", n_estimators=150))
    assert res.all.rmse < 0.7 * res.all.persistence_rmse
    assert res.all.rmse < res.all.climatology_rmse
    assert res.all.pinball < res.all.climatology_pinball
    assert 0.72 < res.all.coverage_80 < 0.88  # calibrated (80.8 % with the defaults)


def test_calibration_brings_coverage_towards_nominal(tmp_path: Path) -> None:
    data = read_gefcom2012_wind(make_folder(tmp_path / "w", days=150, seed=4), farms=(1,))
    # An overfitted model: its raw intervals are too narrow out of sample.
    base = WindSettings(
        test_start="2010-03-15", refit="once", n_estimators=150, num_leaves=63, min_data_in_leaf=5
    )
    raw = wind_backtest(data, replace(base, calibration_days=0)).all.coverage_80
    cal = wind_backtest(data, replace(base, calibration_days=30)).all.coverage_80
    assert raw < 0.75
    assert abs(cal - 0.8) < abs(raw - 0.8)
