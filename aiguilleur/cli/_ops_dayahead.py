"""``aiguilleur ops day-ahead``: the security assessment of tomorrow."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from aiguilleur.cli._common import (
    CaseArg,
    JsonOpt,
    _fmt,
    _guard,
    _load_case,
    _print_json,
    _progress_bar,
    _stdout,
)

__all__ = ["register"]

EXIT_NOT_COMPLETE = 1


def register(ops_app: typer.Typer) -> None:
    """Add ``day-ahead`` to the ``ops`` command group."""
    ops_app.command("day-ahead")(day_ahead)


@_guard
def day_ahead(
    case: CaseArg,
    history: Annotated[
        Path,
        typer.Option("--history", help="Hourly load history CSV (the forecast package's format)."),
    ],
    day: Annotated[str, typer.Option("--day", help="Target day, YYYY-MM-DD.")],
    scenarios: Annotated[
        int,
        typer.Option(
            "--scenarios",
            help="1 (P50), 3 (P10, P50, P90) or N sampled paths (Gaussian copula).",
        ),
    ] = 3,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS|auto",
            help="Run on Ray: 'auto' starts a local runtime, host:port joins a cluster.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Worker processes (default: the machine's cores)."),
    ] = None,
    outage: Annotated[
        list[str] | None,
        typer.Option(
            "--outage", help="Planned outage for the day: branch:K or gen:J (repeatable)."
        ),
    ] = None,
    failure_rates: Annotated[
        Path | None,
        typer.Option(
            "--failure-rates",
            help="CSV element,probability[,hour]: hourly failure probabilities for the EENS.",
        ),
    ] = None,
    renewables: Annotated[
        Path | None,
        typer.Option("--renewables", help="CSV hour,bus_id,available_mw: renewable forecast."),
    ] = None,
    target: Annotated[str, typer.Option("--target", help="Load column of the history.")] = "load",
    temperature: Annotated[
        str | None,
        typer.Option("--temperature", help="Temperature column of the history (none: no weather)."),
    ] = "T",
    samples: Annotated[
        int,
        typer.Option("--samples", min=0, help="Monte Carlo outage states per hour and scenario."),
    ] = 64,
    rating: Annotated[str, typer.Option("--rating", help="Branch rating: a, b or c.")] = "a",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the sampling.")] = 0,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write the HTML report (a .html file or a folder)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the report if it exists.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Day-ahead security assessment: forecast, plan, AC N-1 per hour and scenario, remedies, EENS.

    Exit code 0 when every hour of every scenario was assessed, 1 when some
    could not be (the summary says which), 2 on bad input.
    """
    from aiguilleur.forecast import ForecastSettings, read_series
    from aiguilleur.ops._dayahead_report import check_report_path
    from aiguilleur.ops.cluster import make_executor
    from aiguilleur.ops.dayahead import (
        DayAheadOptions,
        assess_day_ahead,
        parse_outages,
        read_failure_rates,
        read_renewables,
    )

    if report is not None:  # before the work: never a finished assessment with nowhere to go
        check_report_path(report, force=force)
    net = _load_case(case)
    series = read_series(history, target, temperature, impute=True)
    outs = parse_outages(outage or [], net)
    rates = None if failure_rates is None else read_failure_rates(failure_rates, net)
    ren = None if renewables is None else read_renewables(renewables, net)
    fs = ForecastSettings(temperature="ex-ante" if temperature else "none")
    opts = DayAheadOptions(
        scenarios=scenarios,
        rating=rating,  # type: ignore[arg-type]
        forecast=fs,
        samples=samples,
        seed=seed,
    )
    ex = make_executor(ray, workers)
    try:
        with _progress_bar(not json_out, "day-ahead") as bar:

            def progress(stage: str, done: int, total: int) -> None:
                bar(done, total)

            res = assess_day_ahead(
                net, series, day, opts, outages=outs, failure_rates=rates, renewables=ren,
                executor=ex, progress=progress,
            )  # fmt: skip
    finally:
        ex.close()
    if report is not None:
        path = res.write_report(report)
    out = res.to_dict()
    if json_out:
        if report is not None:
            out["report"] = str(path)
        _print_json(out)
    else:
        con = _stdout()
        con.rule(f"[bold]{net.name}: day-ahead security assessment of {res.day}")
        con.print(
            f"status {res.status}; {out['scenarios']} scenario(s) "
            f"({', '.join(out['scenario_labels'][:5])}{'...' if out['scenarios'] > 5 else ''}); "
            f"{out['contingencies_per_hour']:,} contingencies per hour"
        )
        con.print(
            f"{out['critical_total']:,} critical (hour, contingency, branch) triples; "
            f"{out['overloaded_branches']:,} branches at risk; preventive cost "
            f"{_fmt(out['preventive_cost'], 0)}"
        )
        lo, hi = out["eens_ci_mwh"]
        eens = out["eens_mwh"]
        if eens is not None and math.isfinite(eens):
            con.print(f"EENS {eens:,.3f} MWh (95 % interval {lo:,.3f} - {hi:,.3f})")
        for c in out["critical"][:10]:
            con.print(
                f"  hour {c['hour']:2d}: {c['contingency']:>12s} -> {c['branch']:<12s} "
                f"p = {c['probability']:.2f}, worst {_fmt(c['max_loading_pct'], 1, ' %')}"
            )
        for m in out["messages"]:
            con.print(f"[yellow]{m}")
        con.print(
            f"{out['wall_s']:.1f} s, {out['tasks']} tasks on {out['workers']} "
            f"{out['executor']} worker(s), {out['retries']} retried"
        )
        if report is not None:
            con.print(f"report: {path}")
    if not res.ok:
        raise typer.Exit(EXIT_NOT_COMPLETE)
