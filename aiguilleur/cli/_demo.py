"""``aiguilleur demo``: the main job on bundled data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from aiguilleur.cli._common import _fmt, _guard, _stderr, _stdout

if TYPE_CHECKING:
    from aiguilleur.ops import DemoResult

__all__ = ["demo"]

# -- demo ---------------------------------------------------------------------------------


@_guard
def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for the report [default: ./aiguilleur-report].",
            file_okay=False,
            dir_okay=True,
        ),
    ] = None,
) -> None:
    """The main job: a crisis on the French grid (1,888 buses) and on a road network.

    Power flow, N-1 screening of every branch and generator outage, the worst
    credible outage applied, its corrective redispatch (checked in AC) and the
    prices before and after; then fuel tankers and repair crews routed on the
    bundled OpenStreetMap extract and re-planned when a road floods. Reported
    here and in an HTML report with maps.
    """
    from aiguilleur.ops import run_demo

    err = _stderr()
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # no bar residue in a log or a pipe
    )
    task = bar.add_task("starting", total=None)

    def progress(stage: str, done: int, total: int) -> None:
        bar.update(task, description=stage, completed=done, total=total)

    with bar:
        result = run_demo(out, progress=progress)
    _print_demo(result)


def _print_demo(r: DemoResult) -> None:
    import numpy as np

    con = _stdout()
    con.rule(f"[bold]N-1 security assessment: {r.case}")
    con.print(
        f"{r.buses:,} buses, {r.branches:,} branches, {r.generators:,} generators in service, "
        f"{r.load_mw:,.0f} MW of load"
    )
    con.print(f"operating point: {r.operating_point}")
    con.print(
        f"base case: AC power flow {'converged' if r.base_converged else '[bold red]FAILED[/]'}, "
        f"losses {r.base_losses_mw:,.1f} MW, {len(r.base_overloads)} branches already above "
        f"rating {r.rating.upper()} (highest {_fmt(r.base_max_loading_pct, unit=' %')})"
    )
    con.print(
        f"N-1: {r.contingencies:,} contingencies ({r.branch_contingencies:,} branches, "
        f"{r.generator_contingencies:,} generators) in {r.screen_time_s:.1f} s: "
        f"[green]{r.secure:,} secure[/], [red]{r.overload:,} overload[/], "
        f"[yellow]{r.islanding:,} islanding[/], {r.diverged:,} diverged "
        f"({r.ac_verified:,} verified by AC power flow)"
    )
    w = r.worst
    if w is None:
        con.print("No credible (non-islanding) contingency to apply.")
    else:
        con.print()
        con.print(
            f"[bold]Worst credible outage:[/] {w.label}: highest post-outage loading "
            f"[bold red]{_fmt(w.max_loading_pct, unit=' %')}[/] on {w.worst_branch or '-'}"
        )
        con.print(
            f"after it: AC power flow {'converged' if r.post_converged else '[bold red]FAILED[/]'}"
            f" in {r.post_iterations} iterations; {len(r.post_overloads)} branches overloaded "
            f"({r.new_overloads} new); voltages {r.post_vm_min_pu:.3f} pu (bus "
            f"{r.post_vm_min_bus_id}) to {r.post_vm_max_pu:.3f} pu (bus {r.post_vm_max_bus_id}); "
            f"losses {r.post_losses_mw:,.1f} MW ({r.post_losses_mw - r.base_losses_mw:+,.1f}); "
            f"{len(r.post_islands)} island(s), {r.post_deenergised_buses} buses de-energised"
        )
        t = Table(title="Overloaded branches after the outage", title_justify="left")
        for col in ("branch", "from bus", "to bus", "after %", "before %", "MVA", "rating MVA"):
            t.add_column(col, justify="left" if col == "branch" else "right")
        t.add_column("")
        shown = r.post_overloads[:10]
        for b in shown:
            t.add_row(
                str(b.row + 1),
                str(b.from_bus_id),
                str(b.to_bus_id),
                _fmt(b.loading_pct),
                _fmt(b.base_loading_pct),
                _fmt(b.flow_mva, 0),
                _fmt(b.rating_mva, 0),
                "[red]new[/]" if b.new else "",
            )
        if shown:
            con.print(t)
        if len(r.post_overloads) > len(shown):
            con.print(f"... and {len(r.post_overloads) - len(shown)} more (see the report)")
    rd = r.redispatch
    if rd is not None:
        con.print()
        con.print(
            f"[bold]Corrective redispatch[/] ({rd.time_s * 1e3:,.0f} ms, DC): {rd.status}; "
            f"{len(rd.overloads_before)} overloads in the DC model after the outage, "
            f"{len(rd.remaining_overloads)} after the plan; {len(rd.actions)} units moved, "
            f"cost {_fmt(rd.redispatch_cost, 0)} /h, load shed {rd.total_shed_mw:,.1f} MW"
        )
        if rd.reason:
            con.print(f"  {rd.reason}")
        for a in rd.actions[:5]:
            con.print(f"  {a.explanation}")
        if r.plan_ac_converged is not None:
            con.print(
                f"  AC check of the plan: {'converged' if r.plan_ac_converged else 'FAILED'}, "
                f"{r.plan_ac_overloads} branches above rating (highest "
                f"{_fmt(r.plan_ac_max_loading_pct, unit=' %')})"
            )
        if r.lmp_before is not None and r.lmp_after is not None:
            con.print(
                f"  prices (DC-OPF): {np.nanmin(r.lmp_before):,.2f} to "
                f"{np.nanmax(r.lmp_before):,.2f} before, {np.nanmin(r.lmp_after):,.2f} to "
                f"{np.nanmax(r.lmp_after):,.2f} after the outage (maps in the report)"
            )
    if r.worst_islanding is not None:
        wi = r.worst_islanding
        con.print(
            f"[bold]Worst islanding outage:[/] {wi.label} cuts off {wi.cut_buses:,} buses, "
            f"{wi.lost_load_mw:,.1f} MW of load, {wi.lost_generation_mw:,.1f} MW of generation"
        )
    f = r.fleet
    if f is not None:
        con.print()
        con.rule("[bold]Fuel and repair fleets on the road extract (OpenStreetMap)")
        con.print(
            f"{len(f.scenario.points)} points; fuel {f.fuel_supply_l:,.0f} L for "
            f"{f.fuel_need_l:,.0f} L asked (allocated by priority); a road floods at "
            f"{f.closure_at_s / 3600:.1f} h: {f.closed_edges} edges closed, matrices updated in "
            f"{f.matrix_update_s * 1e3:,.0f} ms"
        )
        for p in f.fleets:
            con.print(
                f"  {p.fleet}: {p.orders} orders, {p.vehicles_used} vehicles, "
                f"{p.cost_before / 1000:,.1f} km planned; re-planned in {p.replan_s:.1f} s: "
                f"{p.changed_vehicles} routes changed, {p.cost_after / 1000:,.1f} km left "
                f"(patched plan {p.repair_cost_after / 1000:,.1f} km), largest delay "
                f"{p.max_delay_s / 60:,.0f} min, "
                + ("feasible" if p.feasible_after else "NOT feasible")
            )
    con.print()
    con.print(f"report: [bold]{r.report_path}[/]  (contingency table: {r.csv_path})")
    if r.geojson_path is not None:
        con.print(f"routes as GeoJSON: {r.geojson_path}")
    con.print(f"done in {r.time_s:.1f} s. {r.attribution}")
