"""A reproducible crisis on a road extract: depots, demand points and a flooded road.

:func:`crisis_scenario` places, on a :class:`~aiguilleur.logistics.roads.RoadGraph`
(by default meant for the bundled Monaco extract), a fuel depot and a
repair-crew depot, 30 to 60 demand points (hospitals, electrical substations
and shops, with priorities, fuel needs, service times and time windows), a
fuel stock short of the total need, and a road closure: a disc of flooding
around a point of a main road that the fastest depot-to-point paths use, so
that it forces re-routing. Everything is drawn from ``seed``; the result is a
plain value (no routing is done here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.sparse import csgraph

from aiguilleur.errors import ValidationError
from aiguilleur.logistics.allocation import (
    Allocation,
    AllocationOptions,
    DeliveryOrder,
    allocate,
    delivery_orders,
)
from aiguilleur.logistics.roads import (
    ROAD_CLASSES,
    RoadClosure,
    RoadGraph,
    affected_edges,
    apply_disruption,
    travel_matrices,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CrisisScenario", "Site", "crisis_scenario", "fuel_orders"]

IntArray = npt.NDArray[np.int64]

# Where the depots go on the bundled extract (lat, lon): the fuel depot in the
# Fontvieille industrial quarter, the repair crews near the Moneghetti
# substation. On another graph they are drawn from its main roads instead.
_FUEL_DEPOT = ("Fontvieille fuel depot", 43.7290, 7.4170)
_CREW_DEPOT = ("Moneghetti repair base", 43.7390, 7.4170)
_ANCHOR_SNAP_M = 150.0

_MAIN = {ROAD_CLASSES.index(c) for c in ("primary", "secondary", "trunk")}
_LOCAL = {
    ROAD_CLASSES.index(c)
    for c in ("residential", "tertiary", "unclassified", "secondary", "primary", "service")
}

# Per kind: priority (1 = most urgent), fuel need (litres, low-high), unloading
# time (s), latest delivery (s after the start), and whether a crew must come.
_KINDS: dict[str, tuple[int, tuple[float, float], float, float, bool]] = {
    "hospital": (1, (800.0, 1500.0), 900.0, 2 * 3600.0, False),
    "substation": (2, (300.0, 600.0), 1800.0, 4 * 3600.0, True),
    "shop": (3, (100.0, 300.0), 300.0, 8 * 3600.0, False),
}
_SPACING_M = 120.0


@dataclass(frozen=True)
class Site:
    """A depot or a demand point of the scenario.

    Attributes
    ----------
    site_id
        Stable id (``"fuel-depot"``, ``"hospital-01"``, ...).
    kind
        ``"fuel_depot"``, ``"crew_depot"``, ``"hospital"``, ``"substation"`` or ``"shop"``.
    name
        For maps and reports.
    lat, lon
        Position (that of its road node).
    node
        Node index in the graph.
    priority
        1 = most urgent (hospitals), 2 (substations), 3 (shops); 0 for depots.
    fuel_l
        Fuel asked (points), or held (the fuel depot).
    service_s
        Time on site (unloading, or repair for a crew).
    window_s
        (earliest, latest) start of service, seconds from the plan's start.
    needs_crew
        Whether a repair crew must visit (substations).
    """

    site_id: str
    kind: str
    name: str
    lat: float
    lon: float
    node: int
    priority: int
    fuel_l: float
    service_s: float
    window_s: tuple[float, float]
    needs_crew: bool


@dataclass(frozen=True)
class CrisisScenario:
    """Depots, demand points and the flooding closure of one crisis.

    Attributes
    ----------
    seed
        What it was drawn from.
    fuel_depot, crew_depot
        The two depots.
    points
        Demand points, hospitals first, then substations, then shops.
    fuel_supply_l
        Fuel in stock at the depot: short of the total need, so allocation
        matters.
    closure
        The flooded road (a :class:`~aiguilleur.logistics.roads.RoadClosure`
        around a point of a main road).
    closure_at_s
        When the road floods, in seconds after the plan's start.
    """

    seed: int
    fuel_depot: Site
    crew_depot: Site
    points: tuple[Site, ...]
    fuel_supply_l: float
    closure: RoadClosure
    closure_at_s: float

    @property
    def sites(self) -> tuple[Site, ...]:
        """The depots (fuel, crew) and then the points."""
        return (self.fuel_depot, self.crew_depot, *self.points)

    @property
    def nodes(self) -> IntArray:
        """Graph node of each site, in :attr:`sites` order."""
        return np.array([s.node for s in self.sites], dtype=np.int64)

    def to_frame(self) -> pd.DataFrame:
        """One row per site."""
        import pandas as pd

        return pd.DataFrame(
            {
                "site_id": [s.site_id for s in self.sites],
                "kind": [s.kind for s in self.sites],
                "name": [s.name for s in self.sites],
                "lat": [s.lat for s in self.sites],
                "lon": [s.lon for s in self.sites],
                "node": [s.node for s in self.sites],
                "priority": [s.priority for s in self.sites],
                "fuel_l": [s.fuel_l for s in self.sites],
                "service_s": [s.service_s for s in self.sites],
                "window_open_s": [s.window_s[0] for s in self.sites],
                "window_close_s": [s.window_s[1] for s in self.sites],
                "needs_crew": [s.needs_crew for s in self.sites],
            }
        )


def _xy(graph: RoadGraph) -> npt.NDArray[np.float64]:
    lat0 = math.radians(float(graph.lat.mean()))
    r = 6_371_008.8
    return np.column_stack([np.radians(graph.lon) * math.cos(lat0) * r, np.radians(graph.lat) * r])


def _depot(
    graph: RoadGraph,
    xy: npt.NDArray[np.float64],
    anchor: tuple[str, float, float],
    rng: np.random.Generator,
    main_nodes: IntArray,
) -> tuple[str, int]:
    name, lat, lon = anchor
    lat0 = math.radians(float(graph.lat.mean()))
    p = np.array([math.radians(lon) * math.cos(lat0), math.radians(lat)]) * 6_371_008.8
    d = np.hypot(*(xy - p).T)
    k = int(np.argmin(d))
    if d[k] <= _ANCHOR_SNAP_M:
        return name, k
    fallback = "Fuel depot" if "fuel" in name else "Repair base"
    return fallback, int(rng.choice(main_nodes))


def crisis_scenario(
    graph: RoadGraph, *, seed: int = 0, n_points: int | None = None
) -> CrisisScenario:
    """Draw a crisis on a road graph: two depots, demand points, a flooded main road.

    Parameters
    ----------
    graph
        The road graph (the bundled extract places the depots at Fontvieille
        and Moneghetti; on another graph they are drawn on main roads).
    seed
        The same seed gives the same scenario.
    n_points
        Number of demand points; by default drawn between 30 and 60.

    Returns
    -------
    CrisisScenario
        Points at least 120 m apart and outside the flooded area, all
        reachable from both depots and back after the closure; the closure
        cuts at least one fastest depot-to-point path.

    Raises
    ------
    ValidationError
        The graph is too small for the requested number of points.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 61)) if n_points is None else int(n_points)
    if n < 3:
        raise ValidationError(f"n_points: expected at least 3, got {n}")
    xy = _xy(graph)
    main_edges = np.flatnonzero(np.isin(graph.road_class, list(_MAIN)))
    if main_edges.size == 0:
        raise ValidationError("the road graph has no primary, secondary or trunk road")
    main_nodes = np.unique(np.concatenate([graph.tail[main_edges], graph.head[main_edges]]))
    fuel_name, fuel_node = _depot(graph, xy, _FUEL_DEPOT, rng, main_nodes)
    crew_name, crew_node = _depot(graph, xy, _CREW_DEPOT, rng, main_nodes)

    # Candidate nodes for points: on local or main roads, away from the depots.
    local_edges = np.flatnonzero(np.isin(graph.road_class, list(_LOCAL)))
    cand = np.unique(graph.tail[local_edges])
    rng.shuffle(cand)
    chosen: list[int] = []
    taken = np.array([xy[fuel_node], xy[crew_node]])
    for v in cand:
        if np.min(np.hypot(*(taken - xy[v]).T)) >= _SPACING_M:
            chosen.append(int(v))
            taken = np.vstack([taken, xy[v]])
            if len(chosen) == n + 20:  # spares: the flooded area may take some
                break
    if len(chosen) < n:
        raise ValidationError(
            f"the road graph has room for only {len(chosen)} points {_SPACING_M:g} m apart; "
            f"{n} asked"
        )

    closure, dry = _flooding(graph, xy, rng, fuel_node, crew_node, np.array(chosen), main_nodes)
    kept = [v for v in chosen if dry[v]][:n]
    if len(kept) < n:
        raise ValidationError(f"only {len(kept)} points remain outside the flooded area; {n} asked")

    n_h = max(1, round(0.08 * n))
    n_s = max(1, round(0.25 * n))
    kinds = ["hospital"] * n_h + ["substation"] * n_s + ["shop"] * (n - n_h - n_s)
    points: list[Site] = []
    count: dict[str, int] = {}
    for kind, v in zip(kinds, kept, strict=True):
        prio, (lo, hi), service, late, crew = _KINDS[kind]
        count[kind] = count.get(kind, 0) + 1
        points.append(
            Site(
                site_id=f"{kind}-{count[kind]:02d}",
                kind=kind,
                name=f"{kind.capitalize()} {count[kind]}",
                lat=float(graph.lat[v]),
                lon=float(graph.lon[v]),
                node=v,
                priority=prio,
                fuel_l=float(10 * round(rng.uniform(lo, hi) / 10)),
                service_s=service,
                window_s=(0.0, late),
                needs_crew=crew,
            )
        )
    total = sum(p.fuel_l for p in points)
    supply = float(100 * math.floor(0.7 * total / 100))

    def depot(site_id: str, kind: str, name: str, v: int, fuel: float) -> Site:
        return Site(
            site_id=site_id,
            kind=kind,
            name=name,
            lat=float(graph.lat[v]),
            lon=float(graph.lon[v]),
            node=v,
            priority=0,
            fuel_l=fuel,
            service_s=0.0,
            window_s=(0.0, 12 * 3600.0),
            needs_crew=False,
        )

    return CrisisScenario(
        seed=seed,
        fuel_depot=depot("fuel-depot", "fuel_depot", fuel_name, fuel_node, supply),
        crew_depot=depot("crew-depot", "crew_depot", crew_name, crew_node, 0.0),
        points=tuple(points),
        fuel_supply_l=supply,
        closure=closure,
        closure_at_s=float(60 * rng.integers(20, 61)),
    )


def _flooding(
    graph: RoadGraph,
    xy: npt.NDArray[np.float64],
    rng: np.random.Generator,
    fuel: int,
    crew: int,
    cand: IntArray,
    main_nodes: IntArray,
) -> tuple[RoadClosure, npt.NDArray[np.bool_]]:
    """A flooded disc on a main road that fastest depot-to-point paths cross.

    Main-road nodes are ranked by how many depot-to-candidate fastest paths
    pass through them; the centre is drawn among the busiest, with a radius
    of 100-200 m, and kept only if no depot is inside and, after closing, the
    depots and the points outside still reach one another.
    """
    from aiguilleur.logistics.roads import _compile

    comp = _compile(graph)
    _, pred = csgraph.dijkstra(
        comp.matrix, directed=True, indices=[fuel, crew], return_predecessors=True
    )
    through = np.zeros(graph.n_nodes, dtype=np.int64)
    for row in pred.astype(np.int64):
        cur = cand.copy()
        while cur.size:  # walk every path back to its depot at once
            cur = row[cur]
            cur = cur[cur >= 0]
            np.add.at(through, cur, 1)
    through[[fuel, crew]] = 0
    ranked = main_nodes[np.argsort(-through[main_nodes], kind="stable")]
    ranked = ranked[through[ranked] > 0]
    if ranked.size == 0:
        raise ValidationError("no main road lies on a path between the depots and the points")
    top = ranked[: min(12, ranked.size)]
    for centre in rng.permutation(top):
        radius = float(10 * rng.integers(10, 21))
        dist = np.hypot(*(xy - xy[centre]).T)
        if min(dist[fuel], dist[crew]) <= radius + 100.0:
            continue
        closure = RoadClosure.around(
            float(graph.lat[centre]), float(graph.lon[centre]), radius, reason="flooding"
        )
        if affected_edges(graph, closure).size == 0:
            continue
        dry = dist > radius + 50.0
        keep = cand[dry[cand]]
        after = travel_matrices(
            apply_disruption(graph, closure), np.concatenate([[fuel, crew], keep])
        )
        reach = np.isfinite(after.duration_s)
        ok = np.asarray(reach[:2].all(axis=0) & reach[:, :2].all(axis=1), dtype=bool)
        if ok.sum() - 2 >= 3:
            dry_mask = np.zeros(graph.n_nodes, dtype=bool)
            dry_mask[keep[ok[2:]]] = True
            return closure, dry_mask
    raise ValidationError("no flooding site found that leaves the depots connected")


def fuel_orders(
    scenario: CrisisScenario,
    *,
    cost: npt.ArrayLike | None = None,
    tanker_l: float = 4000.0,
    shop_penalty: float | None = None,
) -> tuple[Allocation, list[DeliveryOrder]]:
    """Share the scenario's scarce fuel among its points, and the tanker orders for it.

    Parameters
    ----------
    scenario
        From :func:`crisis_scenario`.
    cost
        Cost per litre from the depot to each point (e.g. the depot's row of
        the travel-time matrix); by default all equal, so only priorities
        and fair shares decide.
    tanker_l
        Capacity of a tanker: larger deliveries are split.
    shop_penalty
        Penalty for dropping a shop's order (``None``: shops are required
        like the others).

    Returns
    -------
    (Allocation, list of DeliveryOrder)
        Whole litres, hospitals first (priority 1), then substations, then
        shops; each order with the point's time window and unloading time,
        ``location`` its point's site id.
    """
    pts = scenario.points
    c = (
        np.ones((1, len(pts)))
        if cost is None
        else np.asarray(cost, dtype=np.float64).reshape(1, -1)
    )
    alloc = allocate(
        [scenario.fuel_supply_l],
        [p.fuel_l for p in pts],
        c,
        priority=np.array([p.priority for p in pts], dtype=np.int64),
        depot_ids=[scenario.fuel_depot.site_id],
        point_ids=[p.site_id for p in pts],
        options=AllocationOptions(),
    )
    orders = delivery_orders(
        alloc,
        window_s=[p.window_s for p in pts],
        service_s=[p.service_s for p in pts],
        max_quantity=tanker_l,
        penalty_by_priority=None if shop_penalty is None else {3: shop_penalty},
    )
    return alloc, orders
