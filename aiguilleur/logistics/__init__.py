"""Transport itineraries: road networks, fleet routing and re-planning, allocation of supplies.

A leaf package: it imports neither :mod:`aiguilleur.grid` nor the forecasting
and health packages.
"""

from __future__ import annotations

from aiguilleur.logistics.allocation import (
    Allocation,
    AllocationOptions,
    DeliveryOrder,
    allocate,
    delivery_orders,
)
from aiguilleur.logistics.roads import (
    DepotOutage,
    RoadClosure,
    RoadGraph,
    Slowdown,
    TravelMatrices,
    apply_disruption,
    bundled_road_graph,
    load_graphml,
    load_osm_pbf,
    route_geometry,
    routes_geojson,
    snap,
    travel_matrices,
    update_matrices,
)
from aiguilleur.logistics.routing import (
    DepotDown,
    MatrixChange,
    PlannedRoute,
    ReplanResult,
    RoutingProblem,
    RoutingSolution,
    SolveSettings,
    UrgentOrders,
    VehicleBreakdown,
    check_plan,
    read_instance,
    replan,
    solve,
)

__all__: list[str] = [
    "Allocation",
    "AllocationOptions",
    "DeliveryOrder",
    "DepotDown",
    "DepotOutage",
    "MatrixChange",
    "PlannedRoute",
    "ReplanResult",
    "RoadClosure",
    "RoadGraph",
    "RoutingProblem",
    "RoutingSolution",
    "Slowdown",
    "SolveSettings",
    "TravelMatrices",
    "UrgentOrders",
    "VehicleBreakdown",
    "allocate",
    "apply_disruption",
    "bundled_road_graph",
    "check_plan",
    "delivery_orders",
    "load_graphml",
    "load_osm_pbf",
    "read_instance",
    "replan",
    "route_geometry",
    "routes_geojson",
    "snap",
    "solve",
    "travel_matrices",
    "update_matrices",
]
