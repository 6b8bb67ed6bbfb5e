"""``aiguilleur grid ...``: case files, power flow, N-1 screening, OPF, state estimation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aiguilleur.cli._common import (
    OPERATING_POINT_AS_IS,
    OPERATING_POINT_SCALED,
    CaseArg,
    JsonOpt,
    _fail,
    _fmt,
    _guard,
    _load_case,
    _print_json,
    _progress_bar,
    _stdout,
)
from aiguilleur.status import exit_code

if TYPE_CHECKING:
    from aiguilleur.grid import ContingencyResult, Network
    from aiguilleur.grid.acopf import ACOPFResult
    from aiguilleur.grid.estimation import EstimationResult

__all__ = ["grid_app"]

grid_app = typer.Typer(
    help="Energy networks: case files, power flow, N-1 screening, dispatch.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# -- grid ---------------------------------------------------------------------------------


def _load(case: str) -> Network:
    """The case, checked for what a solver needs (ratings, unit limits, magnitudes).

    The error names the case as given, then the row (``grid info`` and
    ``grid export`` read a case without this check).
    """
    from aiguilleur.errors import CaseFormatError, ValidationError

    net = _load_case(case)
    try:
        net.check_solvable()
    except ValidationError as e:
        raise CaseFormatError(str(e), case) from None
    return net


@grid_app.command("info")
@_guard
def grid_info(case: CaseArg, as_json: JsonOpt = False) -> None:
    """Sizes and totals of a case."""
    net = _load_case(case)
    summary = net.summary()
    if as_json:
        _print_json(dict(summary))
        return
    table = Table(title=f"{summary['name']}", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key == "name":
            continue
        text = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        table.add_row(key.replace("_", " "), text)
    _stdout().print(table)


@grid_app.command("powerflow")
@_guard
def grid_powerflow(
    case: CaseArg,
    dc: Annotated[bool, typer.Option("--dc", help="DC power flow instead of AC.")] = False,
    enforce_q_limits: Annotated[
        bool, typer.Option("--enforce-q-limits", help="Hold generators within Q limits.")
    ] = False,
    distributed_slack: Annotated[
        bool,
        typer.Option("--distributed-slack", help="Share the imbalance among all generators."),
    ] = False,
    scaled: Annotated[
        bool,
        typer.Option(
            "--scaled/--as-is",
            help="Scale the stored generator set-points to the load first, or use them as is.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """AC (Newton-Raphson) or DC power flow of a case.

    Status ``feasible`` (exit 0) when the power flow converges and every load
    is served; ``partial`` (exit 1) when some load is left unserved (islands
    without a generator, isolated buses: ``unserved_mw`` says how much);
    ``infeasible`` (exit 1) when nothing is energised; ``not_converged`` (exit 1,
    the figures are printed but are not a solution); exit 2 on bad input.
    """
    from aiguilleur.grid import (
        PowerFlowOptions,
        PowerFlowResult,
        ac_power_flow,
        dc_power_flow,
        scaled_dispatch,
    )

    net = _load(case)
    if scaled:
        net = scaled_dispatch(net)
    opts = PowerFlowOptions(enforce_q_limits=enforce_q_limits, distributed_slack=distributed_slack)
    res = dc_power_flow(net, opts) if dc else ac_power_flow(net, opts)
    is_ac = isinstance(res, PowerFlowResult)
    vm = res.vm_pu if isinstance(res, PowerFlowResult) else [1.0] * net.n_bus
    out: dict[str, Any] = {
        "case": net.name,
        "method": "ac" if is_ac else "dc",
        "operating_point": OPERATING_POINT_SCALED if scaled else OPERATING_POINT_AS_IS,
        "status": res.status,
        "ok": res.ok,
        "message": res.message,
        "unserved_mw": res.unserved_mw,
        "converged": res.converged,
        "iterations": res.iterations,
        "max_mismatch_pu": res.max_mismatch_pu,
        "time_s": res.time_s,
        "bus_id": res.bus_id,
        "vm_pu": vm,
        "va_deg": res.va_deg,
        "pg_mw": res.pg_mw,
    }
    if isinstance(res, PowerFlowResult):
        out["qg_mvar"] = res.qg_mvar
        out["losses_mw"] = res.losses_mw
    out["islands"] = [vars(i) for i in res.islands]
    if as_json:
        _print_json(out)
    else:
        _print_powerflow(net, res, out)
    raise typer.Exit(exit_code(res.ok))


def _print_powerflow(net: Network, res: Any, out: dict[str, Any]) -> None:
    import numpy as np

    con = _stdout()
    t = Table(
        title=f"{net.name}: {out['method'].upper()} power flow ({out['operating_point']})",
        show_header=False,
        title_justify="left",
    )
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("status", res.status if res.ok else f"[bold red]{res.status}[/]")
    t.add_row("converged", "yes" if res.converged else "[bold red]NO[/]")
    if res.unserved_mw > 0:
        t.add_row("unserved load", f"[bold red]{res.unserved_mw:,.1f} MW[/]")
    t.add_row("iterations", str(res.iterations))
    mism = res.max_mismatch_pu
    t.add_row("largest mismatch", f"{mism:.2e} pu" if np.isfinite(mism) else "-")
    t.add_row("time", f"{res.time_s * 1000:.1f} ms")
    if not res.converged:
        # the last iterate of a diverged solve is no solution: its figures are not shown
        con.print(t)
        con.print(f"[bold red]{res.message}[/]")
        return
    t.add_row("generation", _fmt(float(np.sum(res.pg_mw)), 1, " MW"))
    if out["method"] == "ac":
        on = res.vm_pu > 0
        vm = np.where(on, res.vm_pu, np.nan)
        if np.any(on):
            lo, hi = int(np.nanargmin(vm)), int(np.nanargmax(vm))
            t.add_row("lowest voltage", f"{_fmt(vm[lo], 4)} pu (bus {int(res.bus_id[lo])})")
            t.add_row("highest voltage", f"{_fmt(vm[hi], 4)} pu (bus {int(res.bus_id[hi])})")
        t.add_row("losses", _fmt(res.losses_mw, 1, " MW"))
    load = np.where(np.isfinite(res.loading_pct), res.loading_pct, -np.inf)
    if load.size and np.isfinite(load.max()):
        k = int(np.argmax(load))
        b = net.branch
        t.add_row(
            "most loaded branch",
            f"{load[k]:.1f} % (branch {k + 1}, {int(b.from_bus_id[k])}-{int(b.to_bus_id[k])})",
        )
        t.add_row("branches above rating A", str(int(np.sum(load > 100.0))))
    t.add_row("islands", str(len(res.islands)))
    con.print(t)
    for isl in res.islands:
        if isl.other_ref_bus_ids:
            others = ", ".join(str(b) for b in isl.other_ref_bus_ids)
            con.print(
                f"[yellow]note[/]: island {isl.island} has several reference buses: bus "
                f"{isl.ref_bus_id} is the angle reference, bus(es) {others} are solved as "
                "generator (PV) buses"
            )
    if not res.ok:
        con.print(f"[bold red]{res.message}[/]")


@grid_app.command("opf")
@_guard
def grid_opf(
    case: CaseArg,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="pglib: PowerModels' DC model (PGLib's references); matpower: 1/(x tap).",
        ),
    ] = "pglib",
    rating: Annotated[str, typer.Option("--rating", help="Branch rating: a, b or c.")] = "a",
    voll: Annotated[
        float | None,
        typer.Option("--voll", help="Value of lost load (per MWh): shed load instead of failing."),
    ] = None,
    ac: Annotated[
        bool, typer.Option("--ac", help="AC optimal power flow (PGLib's polar model, IPOPT).")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            metavar="flat|dc|FILE",
            help="AC start: flat (default), dc (from a DC-OPF) or a JSON file from --ac --json.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """DC (default) or AC optimal power flow: cheapest dispatch and locational marginal prices.

    Exit code 0 when optimal with every load served; 1 for an infeasible or failed
    problem (the status and the reason are printed, no objective) or, with
    ``--voll``, when load is shed (``ok`` false, ``shed_mw``); 2 on bad input.
    """
    import numpy as np

    from aiguilleur.grid import DCOPFOptions, dc_opf

    if ac:
        _grid_opf_ac(case, rating, voll, start, as_json)
        return
    if start is not None:
        raise _fail("--start applies to the AC OPF only: add --ac")
    net = _load(case)
    opts = DCOPFOptions(model=model, rating=rating, voll_eur_per_mwh=voll)  # type: ignore[arg-type]
    res = dc_opf(net, opts)
    out: dict[str, Any] = {
        "case": net.name,
        "status": res.status,
        "objective": res.objective,
        "time_s": res.time_s,
        "model": res.model,
        "pg_mw": res.pg_mw,
        "lmp": res.lmp,
        "shed_mw": float(np.sum(res.shed_mw)),
        "ok": res.ok,
        "message": res.message,
        "binding_branches": [int(k) + 1 for k in res.binding_branches],
    }
    if as_json:
        _print_json(out)
    else:
        t = Table(title=f"{net.name}: DC-OPF ({res.model})", show_header=False)
        t.add_column("what")
        t.add_column("value", justify="right")
        t.add_row("status", res.status if res.ok else f"[bold red]{res.status}[/]")
        t.add_row("objective", _fmt(res.objective, 2, " per h"))
        t.add_row("time", f"{res.time_s * 1000:.1f} ms")
        if res.status == "optimal" and res.lmp.size:
            t.add_row("LMP range", f"{np.min(res.lmp):,.2f} to {np.max(res.lmp):,.2f} per MWh")
        t.add_row("binding branches", str(len(res.binding_branches)))
        t.add_row("load shed", _fmt(float(np.sum(res.shed_mw)), 1, " MW"))
        _stdout().print(t)
        if res.status != "optimal" and res.message:
            _stdout().print(f"[bold red]{res.status}[/]: {' '.join(res.message.split())}")
        elif not res.ok:
            _stdout().print(f"[bold red]load shed[/]: {res.total_shed_mw:,.1f} MW not served")
    raise typer.Exit(exit_code(res.ok))


def _grid_opf_ac(
    case: str, rating: str, voll: float | None, start: str | None, as_json: bool
) -> None:
    from aiguilleur.grid.acopf import ACOPFOptions, ACOPFStart, ac_opf

    if voll is not None:
        raise _fail("--voll applies to the DC OPF only: the AC OPF does not shed load")
    net = _load(case)
    opts = ACOPFOptions(rating=rating)  # type: ignore[arg-type]  # checked by ACOPFOptions
    kind = start or "flat"
    init = ACOPFStart.from_json(kind) if kind not in ("flat", "dc") else kind
    res = ac_opf(net, opts, start=init)  # type: ignore[arg-type]  # a literal here
    out: dict[str, Any] = {
        "case": net.name,
        "method": "ac",
        "status": res.status,
        "objective": res.objective,
        "time_s": res.time_s,
        "iterations": res.iterations,
        "max_violation": res.max_violation,
        "message": res.message,
        "start": res.start,
        "vm_pu": res.vm_pu,
        "va_deg": res.va_deg,
        "pg_mw": res.pg_mw,
        "qg_mvar": res.qg_mvar,
        "losses_mw": res.losses_mw,
        "lmp": res.lmp,
        "lmp_q": res.lmp_q,
        "binding": res.binding.counts(),
        "binding_branches": sorted(
            {int(k) + 1 for k in (*res.binding.flow_from, *res.binding.flow_to)}
        ),
        "violations": list(res.violations),
    }
    if as_json:
        _print_json(out)
    else:
        _print_acopf(net, res)
    if res.status != "optimal":
        raise typer.Exit(1)


def _print_acopf(net: Network, res: ACOPFResult) -> None:
    import numpy as np

    con = _stdout()
    t = Table(title=f"{net.name}: AC-OPF", show_header=False, title_justify="left")
    t.add_column("what")
    t.add_column("value", justify="right")
    ok = res.status == "optimal"
    t.add_row("status", res.status if ok else f"[bold red]{res.status}[/]")
    t.add_row("solver", res.message)
    # the last iterate of a failed solve has a cost, but it is not a solution's
    t.add_row("objective", _fmt(res.objective if ok else None, 2, " per h"))
    t.add_row("iterations", str(res.iterations))
    t.add_row(
        "largest violation",
        f"{res.max_violation:.2e} pu" if np.isfinite(res.max_violation) else "-",
    )
    t.add_row("time", f"{res.time_s:.2f} s (build {res.build_time_s * 1000:.0f} ms)")
    t.add_row("start", res.start)
    t.add_row("generation", _fmt(float(np.sum(res.pg_mw)), 1, " MW"))
    t.add_row("losses", _fmt(res.losses_mw, 1, " MW"))
    if ok and np.any(np.isfinite(res.lmp)):
        t.add_row("LMP range", f"{np.nanmin(res.lmp):,.2f} to {np.nanmax(res.lmp):,.2f} per MWh")
    for kind, n in res.binding.counts().items():
        if n:
            t.add_row(f"binding: {kind.replace('_', ' ')}", str(n))
    con.print(t)
    for v in res.violations:
        con.print(f"[red]violated[/]: {v}")


@grid_app.command("contingencies")
@_guard
def grid_contingencies(
    case: CaseArg,
    rating: Annotated[
        str,
        typer.Option(help="Rating to hold flows against: a (long-term), b, c (emergency)."),
    ] = "a",
    ac_verify: Annotated[
        bool,
        typer.Option(
            "--ac-verify/--dc-only",
            help="Verify flagged outages by AC power flow, or stop at the DC screen.",
        ),
    ] = True,
    generators: Annotated[
        bool, typer.Option("--generators", help="Also screen single-generator outages.")
    ] = False,
    margin: Annotated[
        float,
        typer.Option(
            "--margin",
            metavar="PCT",
            help="AC-verify outages whose DC estimate reaches 100 - PCT % of a rating.",
        ),
    ] = 10.0,
    top: Annotated[
        int,
        typer.Option("--top", metavar="N", min=0, help="How many worst contingencies (0: all)."),
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """N-1 screening of every branch (and generator) outage.

    Runs on the stored set-points scaled to the load (PGLib set-points do not
    balance it). Rows are 1-based, as in the case file.
    """
    from aiguilleur.grid import ContingencyOptions, scaled_dispatch, screen_n1

    net = scaled_dispatch(_load(case))
    opts = ContingencyOptions(
        rating=rating,  # type: ignore[arg-type]  # checked by ContingencyOptions
        ac_verify=ac_verify,
        generators=generators,
        margin_pct=margin,
    )
    with _progress_bar(not as_json, "N-1 screening") as progress:
        res = screen_n1(net, opts, progress=progress)
    order = res.ranked()
    worst = [int(p) for p in (order if top == 0 else order[:top])]
    isl = [int(p) for p in order if res.status[p] == "islanding"]
    isl.sort(key=lambda p: -float(res.lost_load_mw[p]))
    if top:
        isl = isl[:top]
    out: dict[str, Any] = {
        "case": net.name,
        "operating_point": OPERATING_POINT_SCALED,
        "rating": rating,
        "method": res.method,
        "contingencies": len(res),
        "secure": res.count("secure"),
        "overload": res.count("overload"),
        "islanding": res.count("islanding"),
        "diverged": res.count("diverged"),
        "time_s": res.time_s,
        "base_overloaded": [int(j) + 1 for j in res.base_overloaded],
        "worst": [_contingency(res, p) for p in worst],
        "worst_islanding": [_contingency(res, p) for p in isl],
    }
    if as_json:
        _print_json(out)
        return
    _print_contingencies(net, res, out, worst, isl)


def _contingency(res: ContingencyResult, p: int) -> dict[str, Any]:
    kind = str(res.kind[p])
    k = int(res.element[p]) + 1
    w = int(res.worst_branch[p])
    return {
        "kind": kind,
        "branch": k if kind == "branch" else None,
        "generator": k if kind == "generator" else None,
        "status": str(res.status[p]),
        "max_loading_pct": float(res.max_loading_pct[p]),
        "worst_branch": w + 1 if w >= 0 else None,
        "overloaded": [int(j) + 1 for j in res.overloaded[p]],
        "lost_load_mw": float(res.lost_load_mw[p]),
        "lost_generation_mw": float(res.lost_generation_mw[p]),
        "cut_buses": int(res.cut_buses[p]),
    }


def _element(net: Network, kind: str, row: int) -> str:
    if kind == "branch":
        b = net.branch
        return f"branch {row + 1} ({int(b.from_bus_id[row])}-{int(b.to_bus_id[row])})"
    return f"generator {row + 1} (bus {int(net.gen.bus_id[row])})"


def _print_contingencies(
    net: Network,
    res: ContingencyResult,
    out: dict[str, Any],
    worst: Sequence[int],
    isl: Sequence[int],
) -> None:
    con = _stdout()
    con.print(
        f"[bold]{net.name}[/]: N-1 screening, {out['contingencies']:,} contingencies, "
        f"rating {out['rating'].upper()}, {res.method}, {res.time_s:.2f} s"
    )
    con.print(f"operating point: {out['operating_point']}")
    con.print(
        f"secure {out['secure']:,}  overload {out['overload']:,}  "
        f"islanding {out['islanding']:,}  diverged {out['diverged']:,}"
    )
    if out["base_overloaded"]:
        con.print(
            f"[yellow]{len(out['base_overloaded'])} branches are above their rating before any "
            "outage[/]"
        )
    t = Table(title="Most severe contingencies", title_justify="left")
    for col, just in (
        ("contingency", "left"),
        ("status", "left"),
        ("max loading %", "right"),
        ("most loaded branch", "left"),
        ("overloaded", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for p in worst:
        w = int(res.worst_branch[p])
        status = str(res.status[p])
        style = {"overload": "red", "diverged": "bold red", "islanding": "yellow"}.get(status, "")
        t.add_row(
            _element(net, str(res.kind[p]), int(res.element[p])),
            f"[{style}]{status}[/]" if style else status,
            _fmt(float(res.max_loading_pct[p])),
            _element(net, "branch", w) if w >= 0 else "-",
            str(len(res.overloaded[p])),
        )
    con.print(t)
    if isl:
        ti = Table(title="Islanding outages, by load cut off", title_justify="left")
        ti.add_column("contingency")
        ti.add_column("buses cut off", justify="right")
        ti.add_column("load MW", justify="right")
        ti.add_column("generation MW", justify="right")
        for p in isl:
            ti.add_row(
                _element(net, str(res.kind[p]), int(res.element[p])),
                str(int(res.cut_buses[p])),
                _fmt(float(res.lost_load_mw[p])),
                _fmt(float(res.lost_generation_mw[p])),
            )
        con.print(ti)


@grid_app.command("estimate")
@_guard
def grid_estimate(
    case: CaseArg,
    measurements: Annotated[
        str,
        typer.Option(
            "--measurements",
            metavar="FILE.csv",
            help="Readings, one a line: id,kind,element,value,sigma.",
            show_default=False,
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """AC state estimation (weighted least squares) with bad-data removal.

    Exit code 0 when the estimate converged over the whole grid and passed the
    bad-data tests, 1 otherwise (not converged, unobservable buses, bad data
    left: the result is still printed, with the reason), 2 on bad input.
    """
    from aiguilleur.grid.estimation import estimate_state, read_measurements

    net = _load(case)
    res = estimate_state(net, read_measurements(measurements, net))
    if as_json:
        _print_json({"case": net.name, **res.to_dict()})
    else:
        _print_estimate(net, res)
    if not res.ok:
        raise typer.Exit(1)


def _print_estimate(net: Network, res: EstimationResult) -> None:
    import numpy as np

    con = _stdout()
    t = Table(title=f"{net.name}: state estimation", show_header=False, title_justify="left")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("status", res.status if res.ok else f"[bold red]{res.status}[/]")
    t.add_row("iterations", str(res.iterations))
    t.add_row("time", f"{res.time_s * 1000:.1f} ms")
    t.add_row(
        "objective",
        f"{_fmt(res.objective, 2)} (chi-square threshold {_fmt(res.chi2_threshold, 2)})",
    )
    t.add_row("degrees of freedom", str(res.degrees_of_freedom))
    est = np.isfinite(res.vm_pu) & (res.vm_pu > 0)
    if np.any(est):
        vm = np.where(est, res.vm_pu, np.nan)
        lo, hi = int(np.nanargmin(vm)), int(np.nanargmax(vm))
        t.add_row("lowest voltage", f"{vm[lo]:.4f} pu (bus {int(res.bus_id[lo])})")
        t.add_row("highest voltage", f"{vm[hi]:.4f} pu (bus {int(res.bus_id[hi])})")
    t.add_row("bad readings removed", str(len(res.bad_data)))
    t.add_row("unobservable buses", str(res.unobservable_buses.size))
    t.add_row("readings not used", str(len(res.unused_measurements)))
    con.print(t)
    for mid, rn in res.bad_data:
        con.print(f"[yellow]rejected[/]: {mid} (normalised residual {rn:.1f})")
    if res.suspect_measurements:
        con.print(f"[yellow]suspect (not identifiable)[/]: {', '.join(res.suspect_measurements)}")
    for isl in res.unobservable_islands:
        con.print(f"[red]unobservable island[/]: buses {', '.join(str(b) for b in isl)}")
    if res.message:
        con.print(res.message if res.ok else f"[bold red]{res.message}[/]")
