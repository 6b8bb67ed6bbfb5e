"""``aiguilleur forecast ...``: day-ahead load backtests, model files, wind power."""

from __future__ import annotations

import math
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
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, max=256, help="LightGBM threads.")]
TreesOpt = Annotated[
    int,
    typer.Option(
        "--trees",
        min=10,
        max=100_000,
        help="Boosting rounds of the median's model (the other quantiles use 40 % of them).",
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace an existing output file or write into a folder.")
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


def _farm_numbers(farms: str | None) -> tuple[int, ...] | None:
    """``--farms 1,3``: farm numbers, checked (one line naming the option)."""
    from aiguilleur.errors import ValidationError

    if farms is None:
        return None
    parts = [f.strip() for f in farms.split(",")]
    if not any(parts):
        raise ValidationError("--farms: expected comma-separated farm numbers, e.g. 1,3, got none")
    out: list[int] = []
    for f in parts:
        if not f:
            continue
        if not (f.isascii() and f.isdigit()) or int(f) < 1 or len(f) > 6:
            shown = f if len(f) <= 20 else f[:17] + "..."
            raise ValidationError(f"--farms: expected farm numbers >= 1 (e.g. 1,3), got {shown!r}")
        if int(f) in out:
            raise ValidationError(f"--farms: farm {int(f)} is listed twice")
        out.append(int(f))
    return tuple(out)


def _num(x: float | None, digits: int = 1, unit: str = "") -> str:
    """A figure, or ``n/a`` (never ``nan``) when it could not be computed."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return _fmt(x, digits, unit)


def _explain_na(table: Table) -> None:
    """Say why a figure is ``n/a`` when the table shows one."""
    cells = [c for col in table.columns for c in col.cells]
    if "n/a" in cells:
        _stdout().print(
            "n/a: not computable on these hours (no scored hour, or the interval's quantiles "
            "are not among those forecast)"
        )


def _report_status(status: str, missing: list[str]) -> None:
    """The status line, and what was left undone (on stderr) when not ok."""
    from aiguilleur.status import is_ok

    if is_ok(status):
        _stdout().print(f"status: {status}")
        return
    _stdout().print(f"status: {status}")
    for m in missing:
        _stderr().print(f"[yellow]not done[/]: {m}")


def _exit_for(ok: bool) -> None:
    """Exit 1 when the result did not meet what was asked (the status says why)."""
    from aiguilleur.status import exit_code

    if not ok:
        raise typer.Exit(exit_code(ok))


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
        int, typer.Option("--calibration-days", min=0, max=3660, help="Rolling calibration window.")
    ] = 90,
    plots: Annotated[
        str | None,
        typer.Option("--plots", metavar="DIR", help="Write fan_chart.svg and error_by_hour.svg."),
    ] = None,
    impute: ImputeOpt = False,
    threads: ThreadsOpt = 1,
    trees: TreesOpt = 1000,
    holidays: HolidaysOpt = "US",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Rolling-origin day-ahead backtest: issued 12:00 on D-1 for the 24 hours of D.

    JSON: mape and baseline_mape (seasonal naive) in percent, rmse, pinball
    (mean over P05..P95), crps, coverage_80 and coverage_90 as fractions.
    """
    from aiguilleur._files import check_output_dir
    from aiguilleur.forecast import BacktestSettings, ForecastSettings, backtest

    if plots is not None:
        check_output_dir(plots, force=force)  # before the work: a result is never lost
    o = BacktestSettings(start=start, end=end, refit=refit)  # type: ignore[arg-type]
    s = ForecastSettings(
        model=model,  # type: ignore[arg-type]  # checked by ForecastSettings
        temperature=_setting(setting, temperature),  # type: ignore[arg-type]
        calibration_days=calibration_days,
        num_threads=threads,
        holiday_country=holidays,
        median_n_estimators=trees,
        n_estimators=max(trees * 2 // 5, 4),
    )
    series = _read(data, target, temperature, impute)
    with _progress_bar(not as_json, "refits") as progress:
        res = backtest(series, s, o, progress=progress)
    out = res.summary()
    if plots is not None:
        out["plots"] = [str(p) for p in res.write_plots(plots)]
    if as_json:
        _print_json(out)
        _exit_for(res.ok)
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
            _num(sc.mape_pct, 2),
            _num(sc.rmse, 1),
            _num(sc.pinball, 2),
            _num(sc.crps, 2),
            _num(sc.coverage_80 * 100, 1),
            _num(sc.coverage_90 * 100, 1),
        )

    row(s.model, res.model)
    row(f"{s.model}, raw", res.raw)
    if res.baseline is not None:
        row("seasonal naive", res.baseline)
    _stdout().print(t)
    _explain_na(t)
    for p in out.get("plots", []):
        _stdout().print(f"wrote {p}")
    _report_status(res.status, res.missing())
    _exit_for(res.ok)


@forecast_app.command("fit")
@_guard
def forecast_fit(
    data: DataArg,
    out: Annotated[str, typer.Option("--out", "-o", help="Model file to write (JSON).")],
    target: TargetOpt = "load",
    temperature: TempOpt = None,
    setting: SettingOpt = None,
    calibration_days: Annotated[
        int, typer.Option("--calibration-days", min=0, max=3660, help="Days held out to calibrate.")
    ] = 90,
    impute: ImputeOpt = False,
    threads: ThreadsOpt = 1,
    trees: TreesOpt = 1000,
    holidays: HolidaysOpt = "US",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit a day-ahead forecaster on the whole file and save it."""
    from aiguilleur._files import check_output_file
    from aiguilleur.forecast import ForecastSettings, fit, save_model

    check_output_file(out, force=force)  # before the work: a result is never lost
    s = ForecastSettings(
        temperature=_setting(setting, temperature),  # type: ignore[arg-type]
        calibration_days=calibration_days,
        num_threads=threads,
        holiday_country=holidays,
        median_n_estimators=trees,
        n_estimators=max(trees * 2 // 5, 4),
    )
    series = _read(data, target, temperature, impute)
    m = fit(series, s)
    save_model(m, out)
    info = {
        "status": "feasible",
        "ok": True,
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
                "status": "feasible",
                "ok": True,
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
        t.add_row(str(ts), *(_num(float(v), 0) for v in vals))
    _stdout().print(t)
    _stdout().print("status: feasible")


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
    trees: Annotated[
        int, typer.Option("--trees", min=10, max=100_000, help="Boosting rounds.")
    ] = 300,
    calibration_days: Annotated[
        int,
        typer.Option(
            "--calibration-days", min=0, max=3660, help="Calibration window before each refit."
        ),
    ] = 60,
    as_json: JsonOpt = False,
) -> None:
    """Quantile wind-power forecasts per farm from NWP, against persistence and climatology."""
    from aiguilleur.forecast.wind import WindSettings, read_gefcom2012_wind, wind_backtest

    farm_ids = _farm_numbers(farms)
    ws = WindSettings(
        test_start=test_start,
        refit=refit,  # type: ignore[arg-type]  # checked by WindSettings
        num_threads=threads,
        n_estimators=trees,
        calibration_days=calibration_days,
    )
    data = read_gefcom2012_wind(folder, farms=farm_ids)
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

    def gain(rmse: float, pers: float) -> float:
        return 100 * (1 - rmse / pers) if pers > 0 else float("nan")

    for f in [*out["farms"], {**out["all"], "farm": "all"}]:
        t.add_row(
            f["farm"],
            _num(f["rmse"], 4),
            _num(f["persistence_rmse"], 4),
            _num(f["climatology_rmse"], 4),
            _num(gain(f["rmse"], f["persistence_rmse"]), 1, " %"),
            _num(f["pinball"], 4),
            _num(100 * f["coverage_80"], 1),
        )
    _stdout().print(t)
    _explain_na(t)
    _stdout().print("status: feasible")
