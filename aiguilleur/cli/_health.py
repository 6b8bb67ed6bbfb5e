"""``aiguilleur health ...``: remaining useful life of assets from telemetry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from aiguilleur.cli._common import JsonOpt, _fmt, _guard, _print_json, _stdout

__all__ = ["health_app"]

health_app = typer.Typer(
    help="Asset health: remaining useful life, anomalies, failure probability.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@health_app.command("backtest")
@_guard
def health_backtest(
    train: Annotated[
        str, typer.Option("--train", help="Run-to-failure readings (C-MAPSS train_FDxxx.txt).")
    ],
    test: Annotated[
        str, typer.Option("--test", help="Truncated readings (C-MAPSS test_FDxxx.txt).")
    ],
    rul: Annotated[
        str,
        typer.Option("--rul", help="True RUL after each test unit's last cycle (RUL_FDxxx.txt)."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Fit the RUL model on TRAIN, predict each TEST unit at its last cycle, score against RUL.

    Prints the RMSE and the PHM08 score against the true (uncapped) RUL, and
    the coverage of the 80 % prediction intervals.
    """
    from aiguilleur.health import backtest, read_cmapss, read_rul
    from aiguilleur.status import exit_code

    tr = read_cmapss(train)
    te = read_cmapss(test)
    truth = read_rul(rul, te.units.size)
    res = backtest(tr, te, truth)
    if as_json:
        _print_json(dict(res.summary()))
        if not res.ok:
            raise typer.Exit(exit_code(res.ok))
        return
    table = Table(title="RUL backtest (last cycle of each test unit)", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("test units", f"{res.units}")
    table.add_row("RMSE (cycles)", _fmt(res.rmse, 2))
    table.add_row("PHM08 score", _fmt(res.score, 1))
    table.add_row(f"coverage of the {res.level:.0%} intervals", _fmt(100 * res.coverage, 0, " %"))
    table.add_row("mean interval width (cycles)", _fmt(res.mean_interval_width, 1))
    table.add_row("training time", _fmt(res.train_time_s, 1, " s"))
    table.add_row("training processor time", _fmt(res.train_cpu_s, 1, " s"))
    _stdout().print(table)
    _stdout().print(f"status: {res.status}")
    if not res.ok:
        for m in res.prediction.missing():
            typer.echo(f"not trusted: {m}", err=True)
        raise typer.Exit(exit_code(res.ok))
