"""Day-ahead load and wind-power forecasts: aiguilleur against the reference models.

Load (GEFCom2014-E, every day of the test year, default 2014): forecasts issued
at 12:00 on D-1 for the 24 hours of D (lead 13-36 h), from what is known at
the issue time, in both temperature settings (ex-ante: past weather only;
ex-post: the observed temperature of D as a perfect weather forecast). The
LightGBM quantile model is refitted at the start of each ``--refit`` period
(monthly by default) on the data before that period's first issue time and
calibrated on the 90 days before each issue time whose outcome was known.
References on the same days: seasonal naive (same hour a week earlier,
calibrated the same way) and statsforecast's MSTL (daily and weekly
seasonality, AutoETS trend, its own 80/90 % intervals; refitted for every
issue time on the ``--mstl-weeks`` weeks before it, the origin at the last
known hour, 36 h ahead, the last 24 kept).

Wind (GEFCom2012 wind track, 7 farms): quantile forecasts per farm from the
NWP, lead 13-48 h, issue times from 2011-01-01, against persistence and
climatology (see ``aiguilleur.forecast.wind``).

Targets (issue 6): ex-ante MAPE <= 3.0 % and mean pinball loss >= 25 % below
MSTL's; ex-post MAPE <= 1.8 %; 80 % interval coverage in 78-82 % in both
settings; wind RMSE of the median >= 30 % below persistence.

Run from the repository root (statsforecast from the ``bench`` extra)::

    .venv/bin/python benchmarks/bench_forecast.py
    .venv/bin/python benchmarks/bench_forecast.py --refit quarterly --wind-refit once --threads 1
    .venv/bin/python benchmarks/bench_forecast.py --settings ex-ante --skip-wind --plots out/
    .venv/bin/python benchmarks/bench_forecast.py --skip-load --wind-refit once
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.forecast import (
    BacktestSettings,
    ForecastSettings,
    HourlySeries,
    backtest,
    read_series,
    scores,
)
from aiguilleur.forecast.wind import WindSettings, read_gefcom2012_wind, wind_backtest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
QUANTILES = (0.05, 0.1, 0.5, 0.9, 0.95)


def mstl_forecasts(
    series: HourlySeries, first: np.datetime64, last: np.datetime64, weeks: int, issue_hour: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """MSTL quantiles ``(n_days, 24, 5)`` and outcomes ``(n_days, 24)`` for days first..last."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL

    n_days = int((last - first).astype(np.int64)) + 1
    horizon = 24 + (24 - issue_hour)  # from the issue hour to the end of D
    end = series.index_of((last + 1).astype("datetime64[h]"))  # first hour after D_last
    start = max(end - horizon - 24 * (n_days - 1) - 24 * 7 * weeks, 0)
    df = pd.DataFrame(
        {
            "unique_id": "load",
            "ds": series.time[start:end].astype("datetime64[ns]"),
            "y": series.target[start:end],
        }
    )
    sf = StatsForecast(models=[MSTL(season_length=[24, 168])], freq="h", n_jobs=1)
    t0 = time.perf_counter()
    cv = sf.cross_validation(
        df=df,
        h=horizon,
        step_size=24,
        n_windows=n_days,
        input_size=24 * 7 * weeks,
        level=[80, 90],
    )
    elapsed = time.perf_counter() - t0
    cv = cv.sort_values(["cutoff", "ds"])
    cols = ["MSTL-lo-90", "MSTL-lo-80", "MSTL", "MSTL-hi-80", "MSTL-hi-90"]
    vals = cv[cols].to_numpy().reshape(n_days, horizon, 5)[:, -24:, :]
    actual = cv["y"].to_numpy().reshape(n_days, horizon)[:, -24:]
    first_day = cv["ds"].iloc[horizon - 24]
    assert np.datetime64(first_day, "D") == first, (first_day, first)
    return np.sort(vals, axis=-1), actual, elapsed


def fmt_row(name: str, sc: Any, extra: str = "") -> str:
    return (
        f"  {name:<28} {sc.mape_pct:7.2f} {sc.rmse:8.1f} {sc.pinball:9.2f} {sc.crps:8.2f} "
        f"{100 * sc.coverage_80:7.1f} {100 * sc.coverage_90:7.1f} {extra}"
    )


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    series = read_series(args.data, "load", "T")
    first = np.datetime64(f"{args.year}-01-01", "D")
    last = np.datetime64(f"{args.year}-12-31", "D")
    out: dict[str, Any] = {}
    header = (
        f"  {'model':<28} {'MAPE %':>7} {'RMSE':>8} {'pinball':>9} {'CRPS':>8} "
        f"{'cov80 %':>7} {'cov90 %':>7}"
    )
    mstl = None
    if not args.skip_mstl:
        try:
            mq, ma, mt = mstl_forecasts(series, first, last, args.mstl_weeks, 12)
            mstl = scores(ma, mq, np.array(QUANTILES))
            print(f"MSTL: {mt:.1f} s for {int((last - first).astype(int)) + 1} refits")
        except ImportError:
            print("statsforecast is not installed: MSTL skipped (pip install '.[bench]')")
    for setting in args.settings:
        s = ForecastSettings(temperature=setting, num_threads=args.threads)
        t0 = time.perf_counter()
        res = backtest(
            series, s, BacktestSettings(start=str(first), end=str(last), refit=args.refit)
        )
        wall = time.perf_counter() - t0
        print(
            f"\nGEFCom2014-E {args.year}, {setting}: {res.days.size} days, {res.refits} refits "
            f"({args.refit}), training {res.fit_time_s:.0f} s, backtest {wall:.0f} s"
        )
        print(header)
        print(fmt_row("aiguilleur LightGBM + conformal", res.model))
        print(fmt_row("  same, raw quantiles", res.raw))
        assert res.baseline is not None
        print(fmt_row("seasonal naive (calibrated)", res.baseline))
        entry: dict[str, Any] = {
            "model": res.model.as_dict(),
            "raw": res.raw.as_dict(),
            "seasonal_naive": res.baseline.as_dict(),
            "refits": res.refits,
            "fit_time_s": res.fit_time_s,
            "wall_s": wall,
        }
        if mstl is not None:
            print(fmt_row("statsforecast MSTL", mstl))
            ratio = res.model.pinball / mstl.pinball
            print(
                f"  pinball ratio aiguilleur / MSTL: {ratio:.3f} ({100 * (1 - ratio):.1f} % lower)"
            )
            entry["mstl"] = mstl.as_dict()
            entry["pinball_ratio_vs_mstl"] = ratio
        targets = {"coverage_80": 0.78 <= res.model.coverage_80 <= 0.82}
        if setting == "ex-ante":
            targets["mape<=3.0"] = res.model.mape_pct <= 3.0
            if mstl is not None:
                targets["pinball>=25%_below_mstl"] = res.model.pinball <= 0.75 * mstl.pinball
        elif setting == "ex-post":
            targets["mape<=1.8"] = res.model.mape_pct <= 1.8
        print(
            "  targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in targets.items())
        )
        entry["targets"] = targets
        if args.plots:
            d = Path(args.plots) / setting
            for p in res.write_plots(d):
                print(f"  wrote {p}")
        out[setting] = entry
    return out


def run_wind(args: argparse.Namespace) -> dict[str, Any]:
    data = read_gefcom2012_wind(args.wind_dir)
    ws = WindSettings(refit=args.wind_refit, num_threads=args.threads)
    t0 = time.perf_counter()
    res = wind_backtest(data, ws)
    wall = time.perf_counter() - t0
    print(
        f"\nGEFCom2012 wind, issues from {ws.test_start}, lead {ws.eval_leads[0]}-"
        f"{ws.eval_leads[1]} h, refit {ws.refit}: {wall:.0f} s (training {res.fit_time_s:.0f} s)"
    )
    print(
        f"  {'farm':<6} {'RMSE':>7} {'persist':>8} {'climat':>7} {'vs persist':>11} "
        f"{'pinball':>8} {'clim pin':>8} {'cov80 %':>7}"
    )
    for f in (*res.farms, res.all):
        print(
            f"  {f.farm:<6} {f.rmse:7.4f} {f.persistence_rmse:8.4f} {f.climatology_rmse:7.4f} "
            f"{100 * (1 - f.rmse / f.persistence_rmse):10.1f}% {f.pinball:8.4f} "
            f"{f.climatology_pinball:8.4f} {100 * f.coverage_80:7.1f}"
        )
    gain = 1 - res.all.rmse / res.all.persistence_rmse
    print(f"  target RMSE >= 30 % below persistence: {'met' if gain >= 0.30 else 'MISSED'}")
    return {"summary": res.summary(), "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "load" / "GEFCom2014-E.csv")
    ap.add_argument("--wind-dir", type=Path, default=SHARED / "renewables" / "gefcom2012_wind")
    ap.add_argument("--year", type=int, default=2014)
    ap.add_argument("--settings", nargs="+", default=["ex-ante", "ex-post"])
    ap.add_argument("--refit", default="monthly")
    ap.add_argument("--wind-refit", default="quarterly")
    ap.add_argument("--mstl-weeks", type=int, default=8, help="history of each MSTL fit")
    ap.add_argument("--threads", type=int, default=2, help="LightGBM threads")
    ap.add_argument("--skip-mstl", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-wind", action="store_true")
    ap.add_argument("--plots", type=Path, help="write the fan charts and error-by-hour plots")
    ap.add_argument("--json", type=Path, help="write every figure to this JSON file")
    args = ap.parse_args()
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores "
        f"(shared with other jobs), LightGBM threads {args.threads}"
    )
    out: dict[str, Any] = {}
    if not args.skip_load:
        if not args.data.is_file():
            sys.exit(f"no {args.data}; pass --data")
        out["load"] = run_load(args)
    if not args.skip_wind:
        if not (args.wind_dir / "windpowermeasurements.csv").is_file():
            sys.exit(f"no wind data in {args.wind_dir}; pass --wind-dir")
        out["wind"] = run_wind(args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
