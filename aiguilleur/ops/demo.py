"""The demo: N-1 security assessment of a real transmission grid, end to end.

On the bundled French transmission grid (PGLib-OPF ``pglib_opf_case1888_rte``):
load the case, balance the stored generator set-points against the load,
solve the AC power flow, screen every single-branch and single-generator
outage (DC screening, AC verification), take the worst credible outage, apply
it to the grid, solve the post-outage AC power flow and report what breaks;
then plan the corrective redispatch (checked in AC before acting) and the
prices before and after. The logistics half (:mod:`aiguilleur.ops.fleet`)
routes fuel tankers and repair crews on the bundled road extract and re-plans
them when a road floods. The figures come back as a :class:`DemoResult`; the
same story is written as a self-contained HTML report with maps, and the
routes as GeoJSON.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from aiguilleur._files import atomic_write_bytes
from aiguilleur.data import bundled_case_path
from aiguilleur.errors import AiguilleurError
from aiguilleur.grid import (
    ContingencyOptions,
    ContingencyResult,
    DCOPFOptions,
    IslandReport,
    Network,
    PowerFlowOptions,
    PowerFlowResult,
    ac_power_flow,
    apply_outage,
    dc_opf,
    read_matpower,
    scaled_dispatch,
    screen_n1,
)
from aiguilleur.grid.redispatch import Outage as EventOutage
from aiguilleur.grid.redispatch import Redispatcher, RedispatchOptions, RedispatchResult
from aiguilleur.ops._layout import grid_layout
from aiguilleur.ops.fleet import FleetDemoResult, run_fleet_demo
from aiguilleur.ops.report import Bar, Figure, Table, svg_network_map, write_html_report

__all__ = ["BranchLoading", "DemoProgress", "DemoResult", "Outage", "run_demo"]

FloatArray = npt.NDArray[np.float64]
Rating = Literal["a", "b", "c"]

DemoProgress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while the demo runs."""

DEMO_CASE = "pglib_opf_case1888_rte"
OPERATING_POINT = "stored set-points scaled to the load"
PGLIB_RELEASE = "PGLib-OPF v23.07"
TOP_CONTINGENCIES = 20
TOP_BARS = 15
VOLL_EUR_PER_MWH = 10_000.0
AC_ROUNDS = 4


@dataclass(frozen=True)
class Outage:
    """One contingency of the screen.

    ``row`` is the 0-based row of the outaged element in the network's table
    (the case file's row minus one); ``label`` names it as the file does
    (1-based row, bus ids).
    """

    kind: str
    row: int
    label: str
    status: str
    max_loading_pct: float | None
    worst_branch: str | None
    n_overloaded: int
    lost_load_mw: float
    lost_generation_mw: float
    cut_buses: int


@dataclass(frozen=True)
class BranchLoading:
    """A branch's loading after the outage, with its base-case loading for comparison."""

    row: int
    from_bus_id: int
    to_bus_id: int
    loading_pct: float
    base_loading_pct: float
    flow_mva: float
    rating_mva: float

    @property
    def label(self) -> str:
        return f"branch {self.row + 1} ({self.from_bus_id}-{self.to_bus_id})"

    @property
    def new(self) -> bool:
        """True when the branch was within its rating before the outage."""
        return not self.base_loading_pct > 100.0


@dataclass(frozen=True)
class DemoResult:
    """What the demo found, and where it wrote the report.

    Loadings are in % of the rating named by ``rating`` (``a``: long-term).
    ``worst`` is the most severe contingency that keeps the grid in one piece
    (highest post-outage loading); ``worst_islanding`` the outage that cuts off
    the most load. ``post_*`` fields describe the AC power flow of the grid
    with ``worst`` applied.
    """

    case: str
    attribution: str
    operating_point: str
    rating: str
    buses: int
    branches: int
    generators: int
    load_mw: float
    generation_mw: float
    base_converged: bool
    base_losses_mw: float
    base_max_loading_pct: float
    base_overloads: tuple[BranchLoading, ...]
    contingencies: int
    branch_contingencies: int
    generator_contingencies: int
    secure: int
    overload: int
    islanding: int
    diverged: int
    ac_verified: int
    screen_time_s: float
    top: tuple[Outage, ...]
    worst: Outage | None
    worst_islanding: Outage | None
    post_converged: bool
    post_iterations: int
    post_max_loading_pct: float
    post_overloads: tuple[BranchLoading, ...]
    post_islands: tuple[IslandReport, ...]
    post_deenergised_buses: int
    post_deenergised_load_mw: float
    post_vm_min_pu: float
    post_vm_min_bus_id: int
    post_vm_max_pu: float
    post_vm_max_bus_id: int
    post_losses_mw: float
    out_dir: Path
    report_path: Path
    csv_path: Path
    time_s: float
    timings_s: dict[str, float] = field(default_factory=dict)
    redispatch: RedispatchResult | None = None
    plan_ac_converged: bool | None = None
    plan_ac_overloads: int = 0
    plan_ac_max_loading_pct: float = 0.0
    lmp_before: FloatArray | None = None
    lmp_after: FloatArray | None = None
    lmp_after_shed_mw: float = 0.0
    plan_ac_rounds: int = 0
    fleet: FleetDemoResult | None = None
    geojson_path: Path | None = None

    @property
    def new_overloads(self) -> int:
        """Branches overloaded after the outage that were within their rating before."""
        return sum(1 for b in self.post_overloads if b.new)


# -- labels -------------------------------------------------------------------------------


def _branch_label(net: Network, k: int) -> str:
    b = net.branch
    return f"branch {k + 1} ({int(b.from_bus_id[k])}-{int(b.to_bus_id[k])})"


def _element_label(net: Network, kind: str, k: int) -> str:
    if kind == "branch":
        return _branch_label(net, k)
    return f"generator {k + 1} (bus {int(net.gen.bus_id[k])}, {net.gen.pg_mw[k]:,.0f} MW)"


def _outage(net: Network, res: ContingencyResult, p: int) -> Outage:
    kind = str(res.kind[p])
    k = int(res.element[p])
    m = float(res.max_loading_pct[p])
    w = int(res.worst_branch[p])
    return Outage(
        kind=kind,
        row=k,
        label=_element_label(net, kind, k),
        status=str(res.status[p]),
        max_loading_pct=m if np.isfinite(m) else None,
        worst_branch=_branch_label(net, w) if w >= 0 else None,
        n_overloaded=len(res.overloaded[p]),
        lost_load_mw=float(res.lost_load_mw[p]),
        lost_generation_mw=float(res.lost_generation_mw[p]),
        cut_buses=int(res.cut_buses[p]),
    )


# -- the outage ---------------------------------------------------------------------------


def _loadings(
    net: Network, pf: PowerFlowResult, base_pct: FloatArray, rating: str, rows: npt.ArrayLike
) -> tuple[BranchLoading, ...]:
    s = np.maximum(pf.s_from_mva, pf.s_to_mva)
    rate = net.branch.rating_mva(rating)
    pct = _pct(pf, rate)
    return tuple(
        BranchLoading(
            row=int(j),
            from_bus_id=int(net.branch.from_bus_id[j]),
            to_bus_id=int(net.branch.to_bus_id[j]),
            loading_pct=float(pct[j]),
            base_loading_pct=float(base_pct[j]),
            flow_mva=float(s[j]),
            rating_mva=float(rate[j]),
        )
        for j in np.asarray(rows, dtype=np.int64)
    )


def _pct(pf: PowerFlowResult, rate: FloatArray) -> FloatArray:
    s = np.maximum(pf.s_from_mva, pf.s_to_mva)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(rate > 0, 100.0 * s / rate, np.nan)
    return out


def _over(pct: FloatArray) -> npt.NDArray[np.int64]:
    v = np.where(np.isfinite(pct), pct, -np.inf)
    rows = np.flatnonzero(v > 100.0)
    out: npt.NDArray[np.int64] = rows[np.argsort(-v[rows], kind="stable")].astype(np.int64)
    return out


# -- outputs ------------------------------------------------------------------------------


def _contingency_csv(net: Network, res: ContingencyResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "rank",
            "kind",
            "row",
            "contingency",
            "status",
            "max_loading_pct",
            "worst_branch_row",
            "overloaded_branch_rows",
            "lost_load_mw",
            "lost_generation_mw",
            "cut_buses",
        ]
    )
    for rank, p in enumerate(res.ranked(), start=1):
        kind, k = str(res.kind[p]), int(res.element[p])
        m = float(res.max_loading_pct[p])
        wb = int(res.worst_branch[p])
        w.writerow(
            [
                rank,
                kind,
                k + 1,
                _element_label(net, kind, k),
                str(res.status[p]),
                f"{m:.3f}" if np.isfinite(m) else "",
                wb + 1 if wb >= 0 else "",
                " ".join(str(int(j) + 1) for j in res.overloaded[p]),
                f"{res.lost_load_mw[p]:.3f}",
                f"{res.lost_generation_mw[p]:.3f}",
                int(res.cut_buses[p]),
            ]
        )
    return buf.getvalue()


def _f(x: float | None, unit: str = "", digits: int = 1) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def _with_shed(net: Network, shed_mw: FloatArray) -> Network:
    """``net`` with each bus's load reduced by ``shed_mw`` (reactive load in proportion)."""
    pd = np.asarray(net.bus.pd_mw)
    keep = np.where(pd > 0, np.clip(1.0 - shed_mw / np.where(pd > 0, pd, 1.0), 0.0, 1.0), 1.0)
    bus = dataclasses.replace(net.bus, pd_mw=pd * keep, qd_mvar=np.asarray(net.bus.qd_mvar) * keep)
    return net.replace(bus=bus)


def _redispatch_section(r: DemoResult) -> tuple[list[str], list[Table]]:
    rd = r.redispatch
    if rd is None:
        return [], []
    lines = [
        f"Corrective redispatch in {rd.time_s * 1e3:,.0f} ms (DC model, ramp limits over 15 "
        f"minutes): status {rd.status}; {len(rd.overloads_before)} branches above rating after "
        f"the outage in the DC model, {len(rd.remaining_overloads)} after the plan.",
        f"{len(rd.actions)} units moved ({rd.moved_mw:,.0f} MW up), cost "
        f"{rd.redispatch_cost:,.0f} /h; load shed {rd.total_shed_mw:,.1f} MW"
        + (f" ({rd.reason})" if rd.reason else "")
        + ".",
    ]
    if r.plan_ac_converged is not None:
        lines.append(
            "AC check of the plan before acting: power flow "
            + ("converged" if r.plan_ac_converged else "did NOT converge")
            + (
                f" after {r.plan_ac_rounds} round(s), {r.plan_ac_overloads} branches above "
                f"rating (highest {_f(r.plan_ac_max_loading_pct, ' %')}). Each round tightens "
                "the DC active-power limit of the branches the AC check finds overloaded by "
                "their reactive flow and losses, and plans again."
                if r.plan_ac_converged
                else "."
            )
        )
    rows = tuple(
        (
            a.gen + 1,
            a.bus_id,
            a.delta_mw,
            a.pg_before_mw,
            a.pg_after_mw,
            a.cost,
            a.relieves_branch + 1 if a.relieves_branch >= 0 else None,
            a.relief_mw if a.relieves_branch >= 0 else None,
        )
        for a in rd.actions[:25]
    )
    table = Table(
        "Corrective redispatch: units moved",
        (
            "gen row",
            "bus",
            "change MW",
            "before MW",
            "after MW",
            "cost /h",
            "relieves branch",
            "relief MW",
        ),
        rows,
        note="Largest moves first; each move's relief is its DC sensitivity on the overloaded "
        "branch it helps most (balanced at the reference bus).",
    )
    return lines, [table]


def _hm(seconds: float) -> str:
    m = round(seconds / 60)
    return f"{m // 60}:{m % 60:02d}"


def _fleet_section(r: DemoResult) -> tuple[list[str], list[Table], list[Figure]]:
    f = r.fleet
    if f is None:
        return [], [], []
    sc = f.scenario
    kinds = {
        k: sum(1 for p in sc.points if p.kind == k) for k in ("hospital", "substation", "shop")
    }
    short = ", ".join(
        f"priority {k}: {v:,.0f} L" for k, v in sorted(f.fuel_shortfall_by_priority.items())
    )
    lines = [
        f"Road extract: {f.graph_nodes:,} nodes, {f.graph_edges:,} one-way edges (OpenStreetMap). "
        f"{kinds['hospital']} hospitals, {kinds['substation']} substations and {kinds['shop']} "
        "shops need fuel; substations also need a repair crew.",
        f"Fuel in stock {f.fuel_supply_l:,.0f} L for {f.fuel_need_l:,.0f} L asked: allocated by "
        f"priority (hospitals first), shortfall {short or 'none'}.",
        f"At {_hm(f.closure_at_s)} into the shift a road floods ({f.closure_reason}): "
        f"{f.closed_edges} edges closed; travel matrices updated in "
        f"{f.matrix_update_s * 1e3:,.0f} ms.",
    ]
    rows = []
    for p in f.fleets:
        lines.append(
            f"{p.fleet.capitalize()}: {p.orders} orders on {p.vehicles_used} vehicles "
            f"({'feasible' if p.feasible_before else 'NOT feasible'}); re-planned in "
            f"{p.replan_s:.1f} s from where each vehicle is: {p.changed_vehicles} routes changed, "
            f"largest delay {p.max_delay_s / 60:,.0f} min, "
            f"{'feasible' if p.feasible_after else 'NOT feasible'}"
            + (f", dropped: {', '.join(p.dropped_after)}" if p.dropped_after else "")
            + "."
        )
        rows.append(
            (
                p.fleet,
                p.orders,
                p.vehicles_used,
                p.cost_before / 1000,
                p.cost_after / 1000,
                p.repair_cost_after / 1000,
                p.changed_vehicles,
                p.max_delay_s / 60,
                p.replan_s,
            )
        )
    table = Table(
        "Fleets before and after the flood",
        (
            "fleet",
            "orders",
            "vehicles",
            "plan km",
            "km left after re-plan",
            "km left, patched plan",
            "routes changed",
            "max delay min",
            "re-plan s",
        ),
        tuple(rows),
        note="Km left: what remains to drive from the flood on; the patched plan is the old "
        "plan repaired (cheapest reinsertion), the baseline the re-plan must beat.",
    )
    fig = Figure(
        "Fleets on the road extract: before and after the flood",
        f.map_svg,
        "Dashed pale lines: the first plan; strong lines: the plan after the flood (red), "
        f"from the vehicles' positions at {_hm(f.closure_at_s)}. {f.attribution}.",
    )
    return lines, [table], [fig]


def _price_maps(r: DemoResult, net: Network) -> list[Figure]:
    if r.lmp_before is None or r.lmp_after is None or r.worst is None:
        return []
    xy = grid_layout(net)
    both = np.concatenate([r.lmp_before, r.lmp_after])
    both = both[np.isfinite(both)]
    if both.size == 0:
        return []
    # a colour scale at least 10 EUR/MWh wide: prices that barely differ look alike
    lo, hi = (float(v) for v in np.percentile(both, [1, 99]))
    mid = 0.5 * (lo + hi)
    vmin, vmax = min(lo, mid - 5.0), max(hi, mid + 5.0)
    change = r.lmp_after - r.lmp_before
    fin = change[np.isfinite(change)]
    span = max(float(np.percentile(np.abs(fin), 99)) if fin.size else 0.0, 1.0)
    hl = [r.worst.row] if r.worst.kind == "branch" else []
    cap = (
        "Buses placed by a spectral layout of the grid (the case has no coordinates); "
        "colours clipped to the 1st-99th percentiles."
    )
    return [
        Figure(
            "Locational marginal prices: before the outage",
            svg_network_map(
                xy,
                net.branch_from,
                net.branch_to,
                r.lmp_before,
                title="LMP before",
                unit="EUR/MWh",
                vmin=vmin,
                vmax=vmax,
            ),
            f"DC-OPF prices, {np.nanmin(r.lmp_before):,.2f} to {np.nanmax(r.lmp_before):,.2f}. "
            + cap,
        ),
        Figure(
            f"Locational marginal prices: after {r.worst.label}",
            svg_network_map(
                xy,
                net.branch_from,
                net.branch_to,
                r.lmp_after,
                title="LMP after",
                unit="EUR/MWh",
                vmin=vmin,
                vmax=vmax,
                highlight=hl,
            ),
            f"DC-OPF prices after the outage (red line), {np.nanmin(r.lmp_after):,.2f} to "
            f"{np.nanmax(r.lmp_after):,.2f}; {r.lmp_after_shed_mw:,.1f} MW shed at "
            f"{VOLL_EUR_PER_MWH:,.0f} EUR/MWh.",
        ),
        Figure(
            "Locational marginal prices: change",
            svg_network_map(
                xy,
                net.branch_from,
                net.branch_to,
                change,
                title="LMP change",
                unit="EUR/MWh",
                vmin=-span,
                vmax=span,
                highlight=hl,
            ),
            f"After minus before: {np.nanmin(change):+,.2f} to {np.nanmax(change):+,.2f} "
            "EUR/MWh (blue: cheaper, red: dearer).",
        ),
    ]


def _write_report(
    path: Path,
    r: DemoResult,
    base_pct: FloatArray,
    post_pct: FloatArray,
    net: Network,
) -> None:
    w = r.worst
    headline = [
        ("buses", f"{r.buses:,}"),
        ("branches", f"{r.branches:,}"),
        ("generators in service", f"{r.generators:,}"),
        ("load", f"{r.load_mw:,.0f} MW"),
        ("contingencies screened", f"{r.contingencies:,}"),
        ("with overloads", f"{r.overload:,}"),
        ("islanding", f"{r.islanding:,}"),
        ("diverged", f"{r.diverged:,}"),
        ("worst credible outage", _f(w.max_loading_pct if w else None, " %")),
        ("overloaded after it", f"{len(r.post_overloads)} ({r.new_overloads} new)"),
        ("N-1 screen time", f"{r.screen_time_s:.1f} s"),
    ]
    op = [
        f"Operating point: {r.operating_point} ({r.generation_mw:,.0f} MW of generation "
        f"for {r.load_mw:,.0f} MW of load).",
        f"Base-case AC power flow: {'converged' if r.base_converged else 'did NOT converge'}, "
        f"losses {r.base_losses_mw:,.1f} MW, highest branch loading "
        f"{_f(r.base_max_loading_pct, ' %')}.",
        f"{len(r.base_overloads)} branches are already above rating {r.rating.upper()} in the "
        "base case, before any outage: every contingency inherits these overloads.",
        f"Screen: {r.branch_contingencies:,} branch and {r.generator_contingencies:,} "
        f"generator outages; {r.secure:,} secure, {r.overload:,} with overloads, "
        f"{r.islanding:,} islanding, {r.diverged:,} diverged; {r.ac_verified:,} verified "
        "by AC power flow.",
    ]
    facts: list[tuple[str, list[str]]] = [("Operating point and screen", op)]
    if w is not None:
        cons = [
            f"Outage: {w.label}; post-outage highest loading {_f(w.max_loading_pct, ' %')} "
            f"on {w.worst_branch or 'n/a'}.",
            f"Post-outage AC power flow: "
            f"{'converged' if r.post_converged else 'did NOT converge'} "
            f"in {r.post_iterations} iterations; {len(r.post_overloads)} branches overloaded "
            f"({r.new_overloads} of them within rating before the outage).",
            f"Voltages from {r.post_vm_min_pu:.3f} pu (bus {r.post_vm_min_bus_id}) to "
            f"{r.post_vm_max_pu:.3f} pu (bus {r.post_vm_max_bus_id}).",
            f"Losses {r.post_losses_mw:,.1f} MW ({r.post_losses_mw - r.base_losses_mw:+,.1f} MW "
            "against the base case).",
            f"Islands: {len(r.post_islands)}; de-energised buses: {r.post_deenergised_buses} "
            f"({r.post_deenergised_load_mw:,.1f} MW of load).",
        ]
        facts.append(("Worst credible outage and its consequences", cons))
    if r.worst_islanding is not None:
        wi = r.worst_islanding
        facts.append(
            (
                "Worst islanding outage",
                [
                    f"{wi.label} cuts off {wi.cut_buses} buses carrying "
                    f"{wi.lost_load_mw:,.1f} MW of load and {wi.lost_generation_mw:,.1f} MW "
                    "of generation."
                ],
            )
        )
    top_rows = tuple(
        (
            i + 1,
            o.label,
            o.status,
            o.max_loading_pct,
            o.worst_branch,
            o.n_overloaded,
        )
        for i, o in enumerate(r.top)
    )
    over_rows = tuple(
        (
            b.row + 1,
            b.from_bus_id,
            b.to_bus_id,
            b.loading_pct,
            b.base_loading_pct,
            b.flow_mva,
            b.rating_mva,
            "new" if b.new else "",
        )
        for b in r.post_overloads
    )
    tables = [
        Table(
            f"Top {len(r.top)} contingencies",
            ("#", "contingency", "status", "max loading %", "most loaded branch", "overloaded"),
            top_rows,
            note="Ranked by the highest post-outage branch loading (AC-verified).",
        ),
        Table(
            "Overloaded branches after the worst credible outage",
            (
                "branch row",
                "from bus",
                "to bus",
                "after %",
                "before %",
                "flow MVA",
                f"rating {r.rating.upper()} MVA",
                "",
            ),
            over_rows,
            note="Branch rows are 1-based, as in the case file; loadings use the larger of the "
            "two end flows.",
        ),
    ]
    fl_lines, fl_tables, fl_figs = _fleet_section(r)
    if fl_lines:
        facts.append(("Fuel and repair fleets after the flood", fl_lines))
    tables.extend(fl_tables)
    rd_lines, rd_tables = _redispatch_section(r)
    if rd_lines:
        facts.append(("Corrective redispatch after the worst outage", rd_lines))
    tables.extend(rd_tables)
    bars = [
        Bar(f"{b.label}", b.loading_pct, b.base_loading_pct) for b in r.post_overloads[:TOP_BARS]
    ]
    outage = w.label if w else "no outage"
    write_html_report(
        path,
        title=f"N-1 security assessment: {r.case}",
        subtitle=(
            f"{r.buses:,}-bus transmission grid; operating point: {r.operating_point}; "
            f"ratings: {r.rating.upper()}; worst credible outage: {outage}."
        ),
        headline=headline,
        facts=facts,
        loading={"base case": base_pct, f"after {outage}": post_pct},
        overloads=bars,
        overloads_title=f"Top {len(bars)} overloaded branches after {outage}",
        tables=tables,
        notes=(
            "Every single-branch and single-generator outage is screened with DC "
            "sensitivities (LODF/PTDF) from the AC base case; every outage the screen flags "
            "or finds near its limit is verified by an AC power flow. A lost generator's "
            "output is taken up by the remaining units in proportion to their Pmax. "
            "Outages that split the grid are listed as islanding.",
            "The worst credible outage is the non-islanding contingency with the highest "
            "post-outage branch loading; it is then applied to the grid and solved again "
            "with a full Newton-Raphson AC power flow.",
            f"The PGLib-OPF stored generator set-points do not balance the load; the "
            f"operating point here is the {r.operating_point}, not an optimal dispatch, "
            "which is why some branches are loaded above their rating before any outage.",
        ),
        attribution=r.attribution,
        figures=[*_price_maps(r, net), *fl_figs],
    )


# -- the job ------------------------------------------------------------------------------


def run_demo(
    out_dir: Path | None = None,
    progress: DemoProgress | None = None,
    *,
    case: str = DEMO_CASE,
    rating: Rating = "a",
    with_fleet: bool = True,
) -> DemoResult:
    """Run the N-1 demo on the bundled French transmission grid and write its report.

    Parameters
    ----------
    out_dir
        Folder for ``index.html`` (the report) and ``contingencies.csv``;
        defaults to ``./aiguilleur-report`` in the current directory. Files are
        written atomically (temporary file, then rename).
    progress
        Called as ``progress(stage, done, total)``; ``stage`` is a short
        description of the current step.
    case
        The bundled case to study (the demo's grid by default).
    rating
        Branch rating the loadings are held against: ``a``, ``b`` or ``c``.
    with_fleet
        Also plan the fuel tankers and repair crews on the bundled road
        extract, flood a road and re-plan them (the logistics half).

    Returns
    -------
    DemoResult
        The figures of the run and the paths written.

    Raises
    ------
    AiguilleurError
        When the case cannot be read, its base case cannot be solved or the
        report cannot be written.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def step(stage: str, done: int = 0, total: int = 1) -> None:
        if progress is not None:
            progress(stage, done, total)

    out = Path(out_dir) if out_dir is not None else Path.cwd() / "aiguilleur-report"
    try:  # before the work, not after it: a folder that cannot be made fails at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AiguilleurError(
            f"{out}: cannot create the report folder ({e.strerror or e})"
        ) from None
    opts = ContingencyOptions(
        rating=rating,
        ac_verify=True,
        generators=True,
        participation="pmax",
    )

    step("loading the grid")
    t = time.perf_counter()
    path = bundled_case_path(case)
    raw = read_matpower(path)
    net = scaled_dispatch(raw)
    timings["load"] = time.perf_counter() - t

    step("base-case AC power flow")
    t = time.perf_counter()
    pf_opts = PowerFlowOptions()
    base = ac_power_flow(net, pf_opts)
    timings["base_power_flow"] = time.perf_counter() - t
    rate = net.branch.rating_mva(rating)
    base_pct = _pct(base, rate)

    t = time.perf_counter()
    res = screen_n1(net, opts, progress=lambda done, total: step("N-1 screening", done, total))
    timings["n1_screen"] = time.perf_counter() - t

    ranked = res.ranked()
    credible = [
        int(p)
        for p in ranked
        if res.status[p] != "islanding" and np.isfinite(res.max_loading_pct[p])
    ]
    worst = _outage(net, res, credible[0]) if credible else None
    isl = np.flatnonzero(res.status == "islanding")
    worst_isl = _outage(net, res, int(isl[np.argmax(res.lost_load_mw[isl])])) if isl.size else None

    step("post-outage AC power flow")
    t = time.perf_counter()
    post_net = apply_outage(net, worst.kind, worst.row) if worst is not None else net
    post = ac_power_flow(post_net, pf_opts)
    timings["post_power_flow"] = time.perf_counter() - t
    post_pct = _pct(post, rate)
    energised = post.vm_pu > 0
    vm = np.where(energised, post.vm_pu, np.nan)
    i_min, i_max = int(np.nanargmin(vm)), int(np.nanargmax(vm))
    dead = [i for i in post.islands if not i.energised]

    rd: RedispatchResult | None = None
    plan_rounds = 0
    plan_conv: bool | None = None
    plan_pct = np.zeros(0)
    lmp_before = lmp_after = None
    after_shed = 0.0
    if worst is not None:
        step("corrective redispatch")
        t = time.perf_counter()
        # The operating point is not an economic dispatch: pay for moves, do not credit
        # savings, so that units move to remove overloads and not to re-optimise.
        rdo = RedispatchOptions(
            rating=rating, credit_savings=False, voll_eur_per_mwh=VOLL_EUR_PER_MWH
        )
        event = (
            EventOutage("gen", worst.row)
            if worst.kind == "generator"
            else EventOutage("branch", worst.row)
        )
        # Simulate each plan in AC before acting on it. The DC plan cannot see reactive
        # flows and losses; where the AC check still finds an overload, the branch's
        # active-power limit becomes what its rating leaves beside them, and the plan is
        # made again (at most AC_ROUNDS times).
        limit: FloatArray | None = None
        for _ in range(AC_ROUNDS):
            rd = Redispatcher(net, net.gen.pg_mw, rdo, limit_mw=limit).solve([event])
            if rd.status not in ("optimal", "overloads_remain"):
                break
            pg_plan = np.where(post_net.gen.in_service == 1, rd.pg_mw, post_net.gen.pg_mw)
            plan = ac_power_flow(_with_shed(post_net.with_dispatch(pg_plan), rd.shed_mw), pf_opts)
            plan_conv = plan.converged
            plan_rounds += 1
            if not plan.converged:
                plan_pct = np.zeros(0)
                break
            plan_pct = _pct(plan, rate)
            if not np.any(plan_pct > 100.0 + 1e-6):
                break
            q = np.maximum(np.abs(plan.q_from_mvar), np.abs(plan.q_to_mvar))
            p_ac = np.maximum(np.abs(plan.p_from_mw), np.abs(plan.p_to_mw))
            room = np.sqrt(np.clip(rate**2 - q**2, (0.1 * rate) ** 2, None))
            lim = room - np.clip(p_ac - np.abs(rd.flow_mw), 0.0, None)
            lim = np.clip(lim, 0.1 * rate, None)
            prev = np.where(rate > 0, rate, np.inf) if limit is None else limit
            limit = np.where(rate > 0, np.minimum(prev, lim), np.inf)
        timings["redispatch_with_ac_checks"] = time.perf_counter() - t
        step("locational prices")
        t = time.perf_counter()
        popts = DCOPFOptions(rating=rating, voll_eur_per_mwh=VOLL_EUR_PER_MWH)
        before = dc_opf(net, popts)
        after = dc_opf(post_net, popts)
        if before.status == "optimal" and after.status == "optimal":
            lmp_before, lmp_after = before.lmp, after.lmp
            after_shed = after.total_shed_mw
        timings["prices"] = time.perf_counter() - t

    fleet: FleetDemoResult | None = None
    if with_fleet:
        step("fuel and repair fleets")
        t = time.perf_counter()
        fleet = run_fleet_demo(seed=1)
        timings["fleets"] = time.perf_counter() - t

    summary = raw.summary()
    result = DemoResult(
        case=net.name,
        attribution=f"Grid: {PGLIB_RELEASE} {path.stem}, CC BY 4.0",
        operating_point=OPERATING_POINT,
        rating=rating,
        buses=net.n_bus,
        branches=net.n_branch,
        generators=int(summary["generators_in_service"]),
        load_mw=float(summary["load_mw"]),
        generation_mw=float(np.sum(net.gen.pg_mw[net.gen.in_service == 1])),
        base_converged=base.converged,
        base_losses_mw=base.losses_mw,
        base_max_loading_pct=float(np.nanmax(base_pct)) if np.any(np.isfinite(base_pct)) else 0.0,
        base_overloads=_loadings(net, base, base_pct, rating, _over(base_pct)),
        contingencies=len(res),
        branch_contingencies=int(np.sum(res.kind == "branch")),
        generator_contingencies=int(np.sum(res.kind == "generator")),
        secure=res.count("secure"),
        overload=res.count("overload"),
        islanding=res.count("islanding"),
        diverged=res.count("diverged"),
        ac_verified=int(np.sum(res.verified)),
        screen_time_s=res.time_s,
        top=tuple(_outage(net, res, int(p)) for p in ranked[:TOP_CONTINGENCIES]),
        worst=worst,
        worst_islanding=worst_isl,
        post_converged=post.converged,
        post_iterations=post.iterations,
        post_max_loading_pct=float(np.nanmax(post_pct)) if np.any(np.isfinite(post_pct)) else 0.0,
        post_overloads=_loadings(post_net, post, base_pct, rating, _over(post_pct)),
        post_islands=post.islands,
        post_deenergised_buses=sum(i.buses for i in dead),
        post_deenergised_load_mw=float(sum(i.load_mw for i in dead)),
        post_vm_min_pu=float(post.vm_pu[i_min]),
        post_vm_min_bus_id=int(post.bus_id[i_min]),
        post_vm_max_pu=float(post.vm_pu[i_max]),
        post_vm_max_bus_id=int(post.bus_id[i_max]),
        post_losses_mw=post.losses_mw,
        out_dir=out,
        report_path=out / "index.html",
        csv_path=out / "contingencies.csv",
        time_s=0.0,
        timings_s=timings,
        redispatch=rd,
        plan_ac_converged=plan_conv,
        plan_ac_overloads=int(np.sum(plan_pct > 100.0 + 1e-9)) if plan_pct.size else 0,
        plan_ac_max_loading_pct=float(np.nanmax(plan_pct)) if plan_pct.size else 0.0,
        lmp_before=lmp_before,
        lmp_after=lmp_after,
        lmp_after_shed_mw=after_shed,
        plan_ac_rounds=plan_rounds,
        fleet=fleet,
        geojson_path=out / "routes.geojson" if fleet is not None else None,
    )

    step("writing the report")
    t = time.perf_counter()
    try:
        atomic_write_bytes(result.csv_path, _contingency_csv(net, res).encode("utf-8"))
        if fleet is not None and result.geojson_path is not None:
            geo = json.dumps(fleet.geojson, separators=(",", ":"))
            atomic_write_bytes(result.geojson_path, geo.encode("utf-8"))
        _write_report(result.report_path, result, base_pct, post_pct, net)
    except OSError as e:
        raise AiguilleurError(
            f"{e.filename or out}: cannot write the report ({e.strerror or e})"
        ) from None
    timings["report"] = time.perf_counter() - t
    step("done", 1, 1)
    # time_s covers the whole run, report included
    return dataclasses.replace(result, time_s=time.perf_counter() - t0)
