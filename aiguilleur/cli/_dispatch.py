"""``aiguilleur grid dispatch | redispatch | commit``: energy decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aiguilleur.cli._common import (
    CaseArg,
    JsonOpt,
    _fail,
    _fmt,
    _guard,
    _print_json,
    _stdout,
)
from aiguilleur.cli._grid import _load, grid_app

__all__ = ["grid_commit", "grid_dispatch", "grid_redispatch"]

EXIT_NOT_OPTIMAL = 1

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="pglib: PowerModels' DC model (PGLib's references); matpower: 1/(x tap)."
    ),
]
RatingOpt = Annotated[str, typer.Option("--rating", help="Branch rating: a, b or c.")]


@grid_app.command("dispatch")
@_guard
def grid_dispatch(
    case: CaseArg,
    security: Annotated[
        str | None,
        typer.Option(
            "--security",
            metavar="n-1",
            help="Preventive N-1: every non-islanding branch outage within the emergency limit.",
        ),
    ] = None,
    model: ModelOpt = "pglib",
    rating: RatingOpt = "a",
    emergency_factor: Annotated[
        float | None,
        typer.Option(
            "--emergency-factor",
            help="Post-outage limit as a factor of rate_c [default: rate_c where the case gives "
            "one, else 1.2 x rate_a].",
        ),
    ] = None,
    voll: Annotated[
        float | None,
        typer.Option("--voll", help="Value of lost load (per MWh): allow load shedding."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Economic dispatch with the network (DC-OPF), optionally N-1 secure, with prices.

    Exit code 0 with an optimal plan serving every load; 1 when load is shed
    (``--voll``; ``ok`` false, ``shed_mw``), when some outages cannot be secured
    (status ``insecure``: the plan is printed and the outages are named with the
    relaxation that would secure them), when the base problem is infeasible or
    the solver failed; 2 on bad input.
    """
    from aiguilleur.grid import DCOPFOptions, dc_opf
    from aiguilleur.grid.security import SCEDOptions, sced

    if security is not None and security.lower() not in ("n-1", "n1"):
        raise _fail(f"--security: expected n-1, got {security!r}")
    net = _load(case)
    dopts = DCOPFOptions(model=model, rating=rating, voll_eur_per_mwh=voll)  # type: ignore[arg-type]
    out: dict[str, Any]
    if security is None:
        res = dc_opf(net, dopts)
        out = {
            "case": net.name,
            "status": res.status,
            "objective": res.objective,
            "time_s": res.time_s,
            "lmp": res.lmp,
            "pg_mw": res.pg_mw,
            "shed_mw": res.total_shed_mw if res.ok else None,
            "message": res.message,
            "binding_branches": [int(k) + 1 for k in res.binding_branches],
        }
        ok = res.ok
    else:
        sres = sced(net, SCEDOptions(dcopf=dopts, emergency_factor=emergency_factor))
        d = sres.dispatch
        out = {
            "case": net.name,
            "status": sres.status,
            "message": sres.message,
            "objective": sres.objective,
            "time_s": sres.time_s,
            "lmp": d.lmp,
            "pg_mw": d.pg_mw,
            "shed_mw": d.total_shed_mw if d.ok else None,
            "dcopf_objective": sres.dcopf_objective,
            "security_cost": sres.security_cost,
            "binding_contingencies": [c.to_dict() for c in sres.binding],
            "unsecured": [c.to_dict() for c in sres.unsecured],
            "rounds": sres.rounds,
            "constraints_added": sres.constraints_added,
            "screened_outages": sres.screened_outages,
            "islanding_outages": [int(k) + 1 for k in sres.islanding_outages],
            "limit_rule": sres.limit_rule,
        }
        ok = sres.status == "optimal" and d.ok
    out["ok"] = ok
    if as_json:
        _print_json(out)
    else:
        _print_dispatch(out, security is not None)
    if not ok:
        raise typer.Exit(EXIT_NOT_OPTIMAL)


def _print_dispatch(out: dict[str, Any], secure: bool) -> None:
    import numpy as np

    con = _stdout()
    title = f"{out['case']}: {'N-1 secure dispatch' if secure else 'economic dispatch (DC-OPF)'}"
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("status", str(out["status"]))
    t.add_row("cost /h", _fmt(out["objective"], 2))
    lmp = np.asarray(out["lmp"], dtype=float)
    if np.any(np.isfinite(lmp)):
        t.add_row("LMP min / max", f"{np.nanmin(lmp):,.2f} / {np.nanmax(lmp):,.2f}")
    t.add_row("shed MW", _fmt(out["shed_mw"], 1))
    if secure:
        t.add_row("cost without security /h", _fmt(out["dcopf_objective"], 2))
        t.add_row("cost of security /h", _fmt(out["security_cost"], 2))
        t.add_row("post-outage limit", str(out["limit_rule"]))
        t.add_row("outages screened", f"{out['screened_outages']:,}")
        t.add_row("islanding outages skipped", f"{len(out['islanding_outages']):,}")
        t.add_row("rounds / constraints added", f"{out['rounds']} / {out['constraints_added']}")
        t.add_row("binding contingencies", f"{len(out['binding_contingencies']):,}")
    t.add_row("time s", _fmt(out["time_s"], 3))
    con.print(t)
    if secure:
        for c in out["binding_contingencies"][:10]:
            con.print(
                f"  branch {c['outage_branch']} out -> branch {c['monitored_branch']} at "
                f"{c['post_flow_mw']:,.1f} MW (limit {c['limit_mw']:,.1f}, price "
                f"{c['dual']:,.2f} /MWh)"
            )
        if out["unsecured"]:
            con.print(f"[bold red]{out['message']}[/]")
    if not out["ok"] and out["status"] == "optimal":
        con.print(f"[bold red]load shed[/]: {_fmt(out['shed_mw'], 1)} MW not served")
    elif not out["ok"] and out.get("message"):
        con.print(f"[bold red]{out['status']}[/]: {' '.join(str(out['message']).split())}")


@grid_app.command("redispatch")
@_guard
def grid_redispatch(
    case: CaseArg,
    outage: Annotated[
        list[str],
        typer.Option(
            "--outage",
            metavar="branch:K|gen:J",
            help="An element lost (1-based row in the case file); repeat for several.",
        ),
    ],
    dispatch: Annotated[
        str,
        typer.Option(
            "--dispatch",
            metavar="opf|case",
            help="The dispatch before the event: the DC-OPF optimum, or the case's set-points.",
        ),
    ] = "opf",
    minutes: Annotated[
        float, typer.Option("--minutes", help="Time allowed: units move at most ramp x minutes.")
    ] = 15.0,
    voll: Annotated[
        float, typer.Option("--voll", help="Value of lost load per MWh (load shedding price).")
    ] = 10_000.0,
    rating: RatingOpt = "a",
    as_json: JsonOpt = False,
) -> None:
    """Corrective redispatch after an outage: the cheapest moves that remove every overload.

    When no redispatch can, load is shed at the value of lost load (reported in
    MW per bus). Exit code 0 with a plan that removes every overload without
    shedding; 1 when load is shed (``ok`` false, MW per bus listed), overloads
    remain (``overloads_remain``), the problem is infeasible or the solver
    failed; 2 on bad input.
    """
    from aiguilleur.grid import DCOPFOptions, dc_opf
    from aiguilleur.grid.redispatch import RedispatchOptions, parse_outage, redispatch

    if not outage:
        raise _fail("give at least one --outage branch:K or gen:J")
    outs = [parse_outage(o) for o in outage]
    net = _load(case)
    opts = RedispatchOptions(minutes=minutes, voll_eur_per_mwh=voll, rating=rating)  # type: ignore[arg-type]
    if dispatch == "opf":
        base = dc_opf(net, DCOPFOptions(rating=opts.rating, voll_eur_per_mwh=voll))
        if base.status != "optimal":
            raise _fail(f"the DC-OPF of the pre-event state is {base.status}: {base.message}")
        pg = base.pg_mw
    elif dispatch == "case":
        pg = net.gen.pg_mw
    else:
        raise _fail(f"--dispatch: expected opf or case, got {dispatch!r}")
    res = redispatch(net, outs, pg, opts)
    out = res.to_dict()
    out["case"] = net.name
    if as_json:
        _print_json(out)
    else:
        con = _stdout()
        con.rule(f"[bold]{net.name}: corrective redispatch after {', '.join(out['outages'])}")
        con.print(
            f"status {res.status}; {len(res.overloads_before)} overload(s) after the event, "
            f"{len(res.remaining_overloads)} after the plan; redispatch cost "
            f"{_fmt(res.redispatch_cost, 0)} /h, shed {res.total_shed_mw:,.1f} MW"
        )
        if res.reason:
            con.print(res.reason)
        for a in res.actions[:15]:
            con.print(f"  {a.explanation}")
        if len(res.actions) > 15:
            con.print(f"  ... and {len(res.actions) - 15} more moves")
        for s in out["shed_by_bus"][:10]:
            con.print(f"  shed {s['shed_mw']:,.1f} MW at bus {s['bus_id']}")
    if not res.ok:
        raise typer.Exit(EXIT_NOT_OPTIMAL)


def _data_file(name: str) -> Path:
    """An existing file, else a bundled profile of that name."""
    from aiguilleur.data import bundled_profile_path
    from aiguilleur.errors import ValidationError

    p = Path(name)
    if p.exists() or p.suffix or len(p.parts) > 1:
        return p
    try:
        return bundled_profile_path(name)
    except ValidationError as e:
        raise _fail(f"{name!r} is neither a file nor a bundled profile ({e})") from None


@grid_app.command("commit")
@_guard
def grid_commit(
    case: CaseArg,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            metavar="FILE.csv|NAME|synthetic",
            help="period,bus_id,load_mw[,renewable_mw] per step; a bundled profile "
            "(case118_24h); or 'synthetic' (a winter day from the case's loads, with wind).",
        ),
    ],
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Storage units CSV (name,bus_id,power_mw,energy_mwh,...) or a bundled name.",
        ),
    ] = None,
    units: Annotated[
        Path | None,
        typer.Option("--units", help="Unit data CSV (gen,min_up_h,min_down_h,startup_cost,...)."),
    ] = None,
    horizon: Annotated[
        int | None, typer.Option("--horizon", help="Steps to plan [default: the whole profile].")
    ] = None,
    step_minutes: Annotated[
        float, typer.Option("--step-minutes", help="Length of a step (60 or 15).")
    ] = 60.0,
    network: Annotated[
        bool, typer.Option("--network/--no-network", help="DC flows and branch limits.")
    ] = False,
    mip_gap: Annotated[float, typer.Option("--mip-gap", help="Relative MIP gap.")] = 1e-3,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Unit commitment and dispatch over a horizon, with storage and renewables (MILP).

    Exit code 0 when optimal (within the MIP gap) with every load served; 1 when
    load is shed (``ok`` false, ``shed_mwh``), when the time limit stopped the
    search (``time_limit``: the best plan found is printed), the problem is
    infeasible or the solver failed; 2 on bad input.
    """
    from aiguilleur.grid.commitment import (
        CommitmentOptions,
        commit,
        read_profile,
        read_storage,
        read_units,
        synthetic_profile,
    )

    if not 0 < step_minutes <= 24 * 60:
        raise _fail(f"--step-minutes: expected minutes in (0, 1440], got {step_minutes:g}")
    net = _load(case)
    step_h = step_minutes / 60.0
    if profile == "synthetic":
        prof = synthetic_profile(net, hours=max(24, round((horizon or 24) * step_h)), step_h=step_h)
    else:
        prof = read_profile(_data_file(profile), net, step_h=step_h)
    if horizon is not None:
        prof = prof.head(horizon)
    sto = read_storage(_data_file(storage), net) if storage is not None else None
    unit_data = read_units(units, net) if units is not None else None
    opts = CommitmentOptions(
        network=network, mip_gap=mip_gap, time_limit_s=time_limit, units=unit_data
    )
    res = commit(net, prof, sto, opts)
    out = {
        "case": net.name,
        "status": res.status,
        "objective": res.objective,
        "mip_gap": res.mip_gap,
        "bound": res.bound,
        "time_s": res.time_s,
        "periods": res.periods,
        "step_h": res.step_h,
        "generation_cost": res.generation_cost,
        "startup_cost": res.startup_cost,
        "ok": res.ok,
        "shed_mwh": res.shed_mwh,
        "curtailed_mwh": res.curtailed_mwh,
        "startups": int(res.startups.sum()),
        "committed_units": res.committed.sum(axis=1),
        "price": res.price,
        "variables": res.variables,
        "binaries": res.binaries,
    }
    if as_json:
        _print_json(out)
    else:
        con = _stdout()
        con.rule(f"[bold]{net.name}: unit commitment over {res.periods} steps of {step_h:g} h")
        con.print(
            f"status {res.status} ({res.message}), cost {_fmt(res.objective, 0)}, MIP gap "
            f"{_fmt(100 * res.mip_gap, 3, ' %')}, {res.binaries:,} binaries, {res.time_s:.2f} s"
        )
        if res.status in ("optimal", "time_limit"):
            df = res.to_frame("system")
            t = Table(title="per step (MW; price per MWh)", title_justify="left")
            for col in ("step", "load", "thermal", "renew.", "curtail", "charge", "disch.", "shed",
                        "units", "price"):  # fmt: skip
                t.add_column(col, justify="right")
            for row in df.itertuples(index=False):
                t.add_row(*(f"{v:,.1f}" if isinstance(v, float) else str(v) for v in row))
            con.print(t)
    if not res.ok:
        if res.status == "optimal" and not as_json:
            _stdout().print(f"[bold red]load shed[/]: {res.shed_mwh:,.1f} MWh not served")
        raise typer.Exit(EXIT_NOT_OPTIMAL)
