"""``aiguilleur routes ...``: fleet routing and re-planning mid-execution."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aiguilleur.cli._common import JsonOpt, _fmt, _guard, _print_json, _stdout

__all__ = ["routes_app"]

routes_app = typer.Typer(
    help="Fleet routing: plan routes with time windows, re-plan after a disruption.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

InstanceArg = Annotated[
    str,
    typer.Argument(
        metavar="INSTANCE",
        help="A CVRPLIB .vrp, a Solomon .txt or an aiguilleur JSON order file.",
        show_default=False,
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the search.")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="Parallel searches (0: one per core; at most 64).")
]
PlanOutOpt = Annotated[
    Path | None,
    typer.Option("--write-plan", help="Write the plan as PLAN.json (for `routes replan`)."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing --write-plan file.")]
#: How many required orders the text output names one by one (the JSON names all).
_SHOW_DROPPED = 20


def _print_dropped(dropped_required: dict[str, str]) -> None:
    items = list(dropped_required.items())
    for o, why in items[:_SHOW_DROPPED]:
        _stdout().print(f"  required order {o} not served: {why}")
    if len(items) > _SHOW_DROPPED:
        _stdout().print(f"  ... and {len(items) - _SHOW_DROPPED} more (see --json)")


@routes_app.command("solve")
@_guard
def routes_solve(
    instance: InstanceArg,
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Wall seconds for the search (at most 86400).")
    ] = 10.0,
    seed: SeedOpt = 1,
    workers: WorkersOpt = 0,
    write_plan_to: PlanOutOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Plan routes for an instance within a time limit (checked independently).

    Routes list the orders they visit in order, numbered as in CVRPLIB .sol
    files (1..n; the depot is not listed). Status ``feasible`` (exit 0): every
    required order is served and every route keeps its constraints;
    ``partial`` (exit 1): valid routes, but required orders are dropped (each
    named with the reason); ``infeasible`` (exit 1): a route breaks a
    constraint or no required order can be served; exit 2 on bad input.
    """
    from aiguilleur._files import check_output_file
    from aiguilleur.logistics.routing import SolveSettings, read_instance, solve, write_plan
    from aiguilleur.status import exit_code

    settings = SolveSettings(time_limit_s=time_limit, seed=seed, workers=workers)
    if write_plan_to is not None:
        check_output_file(write_plan_to, force=force)
    problem = read_instance(instance)
    sol = solve(problem, settings)
    if write_plan_to is not None:
        write_plan(write_plan_to, problem, sol, instance)
    dropped_required = {problem.order_id[i]: sol.dropped[i] for i in sol.dropped_required}
    out: dict[str, Any] = {
        "instance": problem.name,
        "status": sol.status,
        "ok": sol.ok,
        "dropped_required": dropped_required,
        "cost": sol.cost,
        "vehicles": sol.n_vehicles,
        # A plan of the problem asked is feasible only if it serves every required order;
        # ``routes_valid`` says whether the routes themselves keep every constraint.
        "feasible": sol.ok,
        "routes_valid": sol.feasible,
        "time_s": sol.time_s,
        "routes": sol.route_lists(),
        "route_vehicles": [r.vehicle for r in sol.routes if len(r.orders)],
        "dropped": {problem.order_id[i]: why for i, why in sol.dropped.items()},
        "violations": list(sol.violations),
        "solver": sol.solver,
    }
    if as_json:
        _print_json(out)
    else:
        table = Table(title=f"{problem.name}: {len(problem.order_id)} orders", title_justify="left")
        table.add_column("vehicle")
        table.add_column("stops", justify="right")
        table.add_column("orders")
        for r in sol.routes:
            if len(r.orders):
                ids = [problem.order_id[i] for i in r.orders]
                table.add_row(r.vehicle, str(len(ids)), " ".join(ids))
        _stdout().print(table)
        _stdout().print(
            f"status {sol.status}: cost {_fmt(sol.cost, 2)}, {sol.n_vehicles} vehicles, "
            f"{len(sol.dropped)} dropped ({len(dropped_required)} required), "
            f"{sol.time_s:.1f} s"
        )
        _print_dropped(dropped_required)
        for v in [v for v in sol.violations if not v.startswith("required order ")][:10]:
            _stdout().print(f"  violation: {v}")
    if not sol.ok:
        raise typer.Exit(exit_code(sol.ok))


@routes_app.command("replan")
@_guard
def routes_replan(
    plan: Annotated[
        Path,
        typer.Argument(metavar="PLAN.json", help="The plan being executed.", show_default=False),
    ],
    at: Annotated[
        int, typer.Option("--at", help="The time now, in the instance's time unit (seconds).")
    ],
    event: Annotated[
        Path, typer.Option("--event", help="EVENT.json: what happened (one event or a list).")
    ],
    deadline: Annotated[
        float, typer.Option("--deadline", help="Wall seconds for the re-plan (at most 86400).")
    ] = 10.0,
    seed: SeedOpt = 1,
    workers: WorkersOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Re-plan a fleet mid-execution after a closure, outage, breakdown or urgent orders.

    Status ``feasible`` (exit 0): the new plan keeps every constraint and
    serves every required order; ``partial`` (exit 1): required orders are
    dropped (each named with the reason); ``infeasible`` (exit 1): a route
    breaks a constraint; exit 2 on bad input.
    """
    from aiguilleur.logistics.routing import read_event, read_plan, replan, replan_limits
    from aiguilleur.status import exit_code

    replan_limits(at, deadline, seed, workers)
    problem, routes, _dropped = read_plan(plan)
    events = read_event(event, problem)
    res = replan(problem, routes, at, events, deadline_s=deadline, seed=seed, workers=workers)
    out = res.summary()
    if as_json:
        _print_json(out)
    else:
        table = Table(title=f"re-plan at {at}", title_justify="left")
        for col in ("vehicle", "status", "served", "added", "removed", "new route"):
            table.add_column(col)
        for c in res.changes:
            table.add_row(
                c.vehicle,
                c.status,
                str(len(c.served)),
                " ".join(c.added),
                " ".join(c.removed),
                " ".join(c.after[len(c.served) :]),
            )
        _stdout().print(table)
        delays = sorted(res.delay_s.items(), key=lambda kv: -kv[1])[:5]
        _stdout().print(
            f"status {res.status}: route cost {_fmt(out['cost'], 2)} "
            f"(repair {_fmt(out['repair_cost'], 2)}), "
            f"{len(res.dropped)} dropped ({len(res.dropped_required)} required), "
            f"{res.time_s:.1f} s"
        )
        if delays:
            _stdout().print("largest delays: " + ", ".join(f"{o} +{d}" for o, d in delays))
        _print_dropped(res.dropped_required)
        optional = [(o, w) for o, w in res.dropped.items() if o not in res.dropped_required]
        for o, why in optional[:_SHOW_DROPPED]:
            _stdout().print(f"  optional order {o} dropped: {why}")
    if not res.ok:
        raise typer.Exit(exit_code(res.ok))
