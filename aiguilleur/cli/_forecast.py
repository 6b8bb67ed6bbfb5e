"""``aiguilleur forecast ...``: day-ahead load backtests, model files, wind power."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aiguilleur.cli._common import (
    JsonOpt,
    _fmt,
    _guard,
    _print_json,
    _progress_bar,
    _stderr,
    _stdout,
)

if TYPE_CHECKING:
    from aiguilleur.forecast import HourlySeries

__all__ = ["forecast_app"]

forecast_app = typer.Typer(
    help="Day-ahead probabilistic forecasts of demand and wind power.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DataArg = Annotated[
    str,
    typer.Argument(
        metavar="DATA.csv",
        help="Hourly CSV: a 'timestamp' column (hour start) or GEFCom's Date + Hour (ending).",
        show_default=False,
    ),
]
TargetOpt = Annotated[str, typer.Option("--target", help="Column to forecast.")]
TempOpt = Annotated[
    str | None, typer.Option("--temperature", help="Temperature column (none: no weather).")
]
SettingOpt = Annotated[
    str | None,
    typer.Option(
        "--setting",
        help="ex-ante (past weather only; default with --temperature), ex-post (observed "
        "temperature of day D as a perfect forecast) or none.",
    ),
]
ImputeOpt = Annotated[
    bool, typer.Option("--impute", help="Fill gaps by linear interpolation (else reported).")
]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="LightGBM threads.")]
TreesOpt = Annotated[
    int,
    typer.Option(
        "--trees",
        min=10,
        help="Boosting rounds of the median's model (the other quantiles use 40 % of them).",
    ),
]
HolidaysOpt = Annotated[
    str, typer.Option("--holidays", help="Country of the public holidays (holidays package code).")
]


def _read(data: str, target: str, temperature: str | None, impute: bool) -> HourlySeries:
    from aiguilleur.forecast import read_series

    s = read_series(data, target, temperature, impute=impute)
    if s.gaps:
        hours = sum(g.hours for g in s.gaps)
        _stderr().print(
            f"[yellow]note[/]: {len(s.gaps)} gap(s), {hours} missing value(s) kept missing "
            f"(first: {s.gaps[0]}); --impute fills them"
        )
    elif s.imputed_hours:
        _stderr().print(f"note: {s.imputed_hours} missing value(s) filled by interpolation")
    return s


def _setting(setting: str | None, temperature: str | None) -> str:
    if setting is None:
        return "ex-ante" if temperature else "none"
    return setting


@forecast_app.command("backtest")
@_guard
def forecast_backtest(
    data: DataArg,
    target: TargetOpt = "load",
    temperature: TempOpt = None,
    setting: SettingOpt = None,
    model: Annotated[
        str, typer.Option("--model", help="lightgbm (default) or seasonal_naive.")
    ] = "lightgbm",
    start: Annotated[
        str | None, typer.Option("--start", help="First test day (default: last full year).")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last test day (inclusive).")] = None,
    refit: Annotated[
        str, typer.Option("--refit", help="daily, weekly, monthly, quarterly, yearly or once.")
    ] = "monthly",
    calibration_days: Annotated[
        int, typer.Option("--calibration-days", min=0, help="Rolling calibration window.")
    ] = 90,
    plots: Annotated[
        str | None,
        typer.Option("--plots", metavar="DIR", help="Write fan_chart.svg and error_by_hour.svg."),
    ] = None,
    impute: ImputeOpt = False,
    threads: ThreadsOpt = 1,
    trees: TreesOpt = 1000,
    holidays: HolidaysOpt = "US",
    as_json: JsonOpt = False,
) -> None:
    """Rolling-origin day-ahead backtest: issued 12:00 on D-1 for the 24 hours of D.

    JSON: mape and baseline_mape (seasonal naive) in percent, rmse, pinball
    (mean over P05..P95), crps, coverage_80 and coverage_90 as fractions.
    """
    from aiguilleur.forecast import BacktestSettings, ForecastSettings, backtest

    series = _read(data, target, temperature, impute)
    s = ForecastSettings(
        model=model,  # type: ignore[arg-type]  # checked by ForecastSettings
        temperature=_setting(setting, temperature),  # type: ignore[arg-type]
        calibration_days=calibration_days,
        num_threads=threads,
        holiday_country=holidays,
        median_n_estimators=trees,
        n_estimators=max(trees * 2 // 5, 4),
    )
    o = BacktestSettings(start=start, end=end, refit=refit)  # type: ignore[arg-type]
    with _progress_bar(not as_json, "refits") as progress:
        res = backtest(series, s, o, progress=progress)
    out = res.summary()
    if plots is not None:
        out["plots"] = [str(p) for p in res.write_plots(plots)]
    if as_json:
        _print_json(out)
        return
    t = Table(
        title=f"{target}: day-ahead backtest {out['first_day']} .. {out['last_day']} "
        f"({out['temperature']}, {out['days']} days, {res.refits} refits)",
        title_justify="left",
    )
    t.add_column("model")
    for col in ("MAPE %", "RMSE", "pinball", "CRPS", "cover 80 %", "cover 90 %"):
        t.add_column(col, justify="right")

    def row(name: str, sc: Any) -> None:
        t.add_row(
            name,
            _fmt(sc.mape_pct, 2),
            _fmt(sc.rmse, 1),
            _fmt(sc.pinball, 2),
            _fmt(sc.crps, 2),
            _fmt(sc.coverage_80 * 100, 1),
            _fmt(sc.coverage_90 * 100, 1),
        )

    row(s.model, res.model)
    row(f"{s.model}, raw", res.raw)
    if res.baseline is not None:
        row("seasonal naive", res.baseline)
    _stdout().print(t)
    for p in out.get("plots", []):
        _stdout().print(f"wrote {p}")


@forecast_app.command("fit")
@_guard
def forecast_fit(
    data: DataArg,
    out: Annotated[str, typer.Option("--out", "-o", help="Model file to write (JSON).")],
    target: TargetOpt = "load",
    temperature: TempOpt = None,
    setting: SettingOpt = None,
    calibration_days: Annotated[
        int, typer.Option("--calibration-days", min=0, help="Days held out to calibrate.")
    ] = 90,
    impute: ImputeOpt = False,
    threads: ThreadsOpt = 1,
    trees: TreesOpt = 1000,
    holidays: HolidaysOpt = "US",
    as_json: JsonOpt = False,
) -> None:
    """Fit a day-ahead forecaster on the whole file and save it."""
    from aiguilleur.forecast import ForecastSettings, fit, save_model

    series = _read(data, target, temperature, impute)
    s = ForecastSettings(
        temperature=_setting(setting, temperature),  # type: ignore[arg-type]
        calibration_days=calibration_days,
        num_threads=threads,
        holiday_country=holidays,
        median_n_estimators=trees,
        n_estimators=max(trees * 2 // 5, 4),
    )
    m = fit(series, s)
    save_model(m, out)
    info = {
        "model": out,
        "temperature": s.temperature,
        "features": list(m.features),
        "trained_until": str(m.trained_until),
    }
    if as_json:
        _print_json(info)
    else:
        _stdout().print(f"wrote {out} ({s.temperature}, trained until {m.trained_until})")


@forecast_app.command("predict")
@_guard
def forecast_predict(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="A file from 'forecast fit'.")],
    data: DataArg,
    issue_time: Annotated[
        str | None,
        typer.Option("--issue-time", help="Issue time, e.g. 2014-02-27T12 (default: latest)."),
    ] = None,
    impute: ImputeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Forecast the next day from a saved model and the history in DATA.csv."""
    from aiguilleur.forecast import load_model, predict

    m = load_model(model)
    series = _read(data, m.target_name, m.temperature_name, impute)
    frame = predict(m, series, issue_time)
    wide = frame.pivot(index="timestamp", columns="quantile", values="value")
    if as_json:
        _print_json(
            {
                "timestamp": [str(t) for t in wide.index],
                "quantiles": [float(q) for q in wide.columns],
                "values": wide.to_numpy(),
            }
        )
        return
    t = Table(title=f"{m.target_name}: day-ahead forecast", title_justify="left")
    t.add_column("hour")
    for q in wide.columns:
        t.add_column(f"P{float(q) * 100:g}", justify="right")
    for ts, vals in zip(wide.index, wide.to_numpy(), strict=True):
        t.add_row(str(ts), *(_fmt(float(v), 0) for v in vals))
    _stdout().print(t)


@forecast_app.command("wind")
@_guard
def forecast_wind(
    folder: Annotated[
        str,
        typer.Argument(
            metavar="FOLDER",
            help="GEFCom2012 wind folder (windpowermeasurements.csv, windforecasts_wf*.csv.gz).",
        ),
    ],
    test_start: Annotated[
        str, typer.Option("--test-start", help="First issue time of the test period.")
    ] = "2011-01-01",
    refit: Annotated[
        str, typer.Option("--refit", help="monthly, quarterly or once.")
    ] = "quarterly",
    farms: Annotated[
        str | None, typer.Option("--farms", help="Comma-separated farm numbers (default all).")
    ] = None,
    threads: ThreadsOpt = 1,
    trees: Annotated[int, typer.Option("--trees", min=10, help="Boosting rounds.")] = 300,
    calibration_days: Annotated[
        int,
        typer.Option("--calibration-days", min=0, help="Calibration window before each refit."),
    ] = 60,
    as_json: JsonOpt = False,
) -> None:
    """Quantile wind-power forecasts per farm from NWP, against persistence and climatology."""
    from aiguilleur.forecast.wind import WindSettings, read_gefcom2012_wind, wind_backtest

    farm_ids = None if farms is None else tuple(int(f) for f in farms.split(",") if f.strip())
    data = read_gefcom2012_wind(folder, farms=farm_ids)
    ws = WindSettings(
        test_start=test_start,
        refit=refit,  # type: ignore[arg-type]  # checked by WindSettings
        num_threads=threads,
        n_estimators=trees,
        calibration_days=calibration_days,
    )
    with _progress_bar(not as_json, "wind farms") as progress:
        res = wind_backtest(data, ws, progress=progress)
    out = res.summary()
    if as_json:
        _print_json(out)
        return
    t = Table(
        title=f"Wind power (normalised): RMSE of the median, lead {ws.eval_leads[0]}-"
        f"{ws.eval_leads[1]} h, issues from {test_start}; gain = 1 - RMSE / persistence's",
        title_justify="left",
    )
    for col, just in (
        ("farm", "left"),
        ("RMSE", "right"),
        ("persist.", "right"),
        ("climat.", "right"),
        ("gain", "right"),
        ("pinball", "right"),
        ("cov80 %", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for f in out["farms"]:
        t.add_row(
            f["farm"],
            _fmt(f["rmse"], 4),
            _fmt(f["persistence_rmse"], 4),
            _fmt(f["climatology_rmse"], 4),
            _fmt(100 * (1 - f["rmse"] / f["persistence_rmse"]), 1, " %"),
            _fmt(f["pinball"], 4),
            _fmt(100 * f["coverage_80"], 1),
        )
    a = out["all"]
    t.add_row(
        "all",
        _fmt(a["rmse"], 4),
        _fmt(a["persistence_rmse"], 4),
        _fmt(a["climatology_rmse"], 4),
        _fmt(100 * (1 - a["rmse"] / a["persistence_rmse"]), 1, " %"),
        _fmt(a["pinball"], 4),
        _fmt(100 * a["coverage_80"], 1),
    )
    _stdout().print(t)
