"""The routing problem and plan values (private; exported by :mod:`aiguilleur.logistics.routing`).

A :class:`RoutingProblem` holds integer travel matrices among locations, the
depots, the orders and the vehicle types, as numpy arrays. Everything is an
integer because PyVRP, the search engine behind :func:`solve`, works on
integers: times are in the instance's time unit (seconds for aiguilleur's own
JSON format), distances in its distance unit (metres for the JSON format) and
costs in integer cost units whose value in reported units is ``cost_unit``
(``1e-6`` currency for the JSON format, ``0.1`` for Solomon instances scaled
by 10, ``1`` for CVRPLIB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd
    import pyvrp

__all__ = ["UNBOUNDED", "PlannedRoute", "RoutingProblem", "RoutingSolution"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

# "No limit" for times and durations: far from int64 overflow when times are added.
UNBOUNDED = int(np.iinfo(np.int64).max // 8)


def _ints(name: str, values: Any, n: int | None = None) -> IntArray:
    a = np.asarray(values)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        if (
            np.issubdtype(a.dtype, np.floating)
            and np.all(np.isfinite(a))
            and np.all(a == np.round(a))
        ):
            a = a.astype(np.int64)
        else:
            raise ValidationError(f"{name}: expected integers, got dtype {a.dtype}", name)
    a = a.astype(np.int64, copy=True)
    if n is not None and a.shape != (n,):
        raise ValidationError(f"{name}: expected {n} values, got shape {a.shape}", name)
    a.setflags(write=False)
    return a


def _first_bad(name: str, bad: BoolArray, ids: Sequence[str], what: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"{name} {ids[i]!r} (row {i}): {what}", name, i)


@dataclass(frozen=True, eq=False)
class RoutingProblem:
    """A vehicle routing problem: matrices, depots, orders and a heterogeneous fleet.

    Locations are rows of the matrices; depots and orders refer to them by
    index, so several may share a location. Every order has one demand (one
    load dimension, delivered from the depot), a service time and a time
    window for the start of service. Optional orders (``order_required``
    false) may be dropped at the cost ``order_penalty`` (prize-collecting).
    Vehicle types have a count, a capacity, start and end depots, a shift
    window ``[tw_early, tw_late]`` (start no earlier, back no later), a
    maximum route duration, a fixed cost and costs per unit of distance and
    of time. Integer units, see the module docstring.

    Raises
    ------
    ValidationError
        On shapes that do not match, negative values, indices out of range or
        a window that closes before it opens, naming the record.
    """

    name: str
    duration_s: IntArray
    distance_m: IntArray
    depot_location: IntArray
    order_location: IntArray
    order_demand: IntArray
    vehicle_count: IntArray
    vehicle_capacity: IntArray
    depot_tw_early_s: IntArray | None = None
    depot_tw_late_s: IntArray | None = None
    order_service_s: IntArray | None = None
    order_tw_early_s: IntArray | None = None
    order_tw_late_s: IntArray | None = None
    order_required: BoolArray | None = None
    order_penalty: IntArray | None = None
    order_priority: IntArray | None = None
    vehicle_start_depot: IntArray | None = None
    vehicle_end_depot: IntArray | None = None
    vehicle_tw_early_s: IntArray | None = None
    vehicle_tw_late_s: IntArray | None = None
    vehicle_max_duration_s: IntArray | None = None
    vehicle_fixed_cost: IntArray | None = None
    vehicle_unit_distance_cost: IntArray | None = None
    vehicle_unit_duration_cost: IntArray | None = None
    order_id: tuple[str, ...] = ()
    depot_id: tuple[str, ...] = ()
    vehicle_type_id: tuple[str, ...] = ()
    location_lonlat: FloatArray | None = None
    cost_unit: float = 1.0
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        dur = np.asarray(self.duration_s)
        dist = np.asarray(self.distance_m)
        if dur.ndim != 2 or dur.shape[0] != dur.shape[1]:
            raise ValidationError(
                f"duration_s: expected a square matrix, got {dur.shape}", "matrix"
            )
        n_loc = dur.shape[0]
        if dist.shape != dur.shape:
            raise ValidationError(
                f"distance_m: shape {dist.shape} differs from duration_s {dur.shape}", "matrix"
            )
        for nm, m in (("duration_s", dur), ("distance_m", dist)):
            mi = _ints(nm, m.ravel()).reshape(m.shape)
            if (mi < 0).any():
                r, c = np.argwhere(mi < 0)[0]
                raise ValidationError(f"{nm}[{r}, {c}] is negative", "matrix", int(r))
            mi.setflags(write=False)
            set_(self, nm, mi)
        nd = len(np.asarray(self.depot_location))
        no = len(np.asarray(self.order_location))
        nv = len(np.asarray(self.vehicle_count))
        if nd == 0:
            raise ValidationError("a routing problem needs at least one depot", "depot")
        if nv == 0:
            raise ValidationError("a routing problem needs at least one vehicle type", "vehicle")
        ids = {
            "order_id": (self.order_id, no, "o"),
            "depot_id": (self.depot_id, nd, "d"),
            "vehicle_type_id": (self.vehicle_type_id, nv, "v"),
        }
        for nm, (given, n, prefix) in ids.items():
            t = tuple(str(x) for x in given) if given else tuple(f"{prefix}{i}" for i in range(n))
            if len(t) != n:
                raise ValidationError(f"{nm}: expected {n} ids, got {len(t)}", nm)
            if len(set(t)) != n:
                dup = next(x for x in t if t.count(x) > 1)
                raise ValidationError(f"{nm}: duplicate id {dup!r}", nm)
            set_(self, nm, t)

        def fill(nm: str, n: int, default: int) -> None:
            v = getattr(self, nm)
            set_(self, nm, _ints(nm, np.full(n, default) if v is None else v, n))

        set_(self, "depot_location", _ints("depot_location", self.depot_location, nd))
        fill("depot_tw_early_s", nd, 0)
        fill("depot_tw_late_s", nd, UNBOUNDED)
        set_(self, "order_location", _ints("order_location", self.order_location, no))
        set_(self, "order_demand", _ints("order_demand", self.order_demand, no))
        fill("order_service_s", no, 0)
        fill("order_tw_early_s", no, 0)
        fill("order_tw_late_s", no, UNBOUNDED)
        fill("order_penalty", no, 0)
        fill("order_priority", no, 0)
        req = np.ones(no, bool) if self.order_required is None else np.asarray(self.order_required)
        if req.shape != (no,) or req.dtype != np.bool_:
            raise ValidationError("order_required: expected one bool per order", "order")
        req = req.copy()
        req.setflags(write=False)
        set_(self, "order_required", req)
        set_(self, "vehicle_count", _ints("vehicle_count", self.vehicle_count, nv))
        set_(self, "vehicle_capacity", _ints("vehicle_capacity", self.vehicle_capacity, nv))
        fill("vehicle_start_depot", nv, 0)
        fill("vehicle_end_depot", nv, 0)
        fill("vehicle_tw_early_s", nv, 0)
        fill("vehicle_tw_late_s", nv, UNBOUNDED)
        fill("vehicle_max_duration_s", nv, UNBOUNDED)
        fill("vehicle_fixed_cost", nv, 0)
        fill("vehicle_unit_distance_cost", nv, 1)
        fill("vehicle_unit_duration_cost", nv, 0)

        oid, did, vid = self.order_id, self.depot_id, self.vehicle_type_id
        for nm, arr, idv in (
            ("depot", self.depot_location, did),
            ("order", self.order_location, oid),
        ):
            _first_bad(nm, (arr < 0) | (arr >= n_loc), idv, f"location outside 0..{n_loc - 1}")
        _first_bad("order", self.order_demand < 0, oid, "negative demand")
        _first_bad("order", self.a("order_service_s") < 0, oid, "negative service time")
        _first_bad(
            "order",
            self.a("order_tw_late_s") < self.a("order_tw_early_s"),
            oid,
            "time window closes before it opens",
        )
        _first_bad("order", self.a("order_penalty") < 0, oid, "negative penalty")
        _first_bad(
            "depot",
            self.a("depot_tw_late_s") < self.a("depot_tw_early_s"),
            did,
            "opening hours end before they start",
        )
        _first_bad("vehicle type", self.vehicle_count < 0, vid, "negative count")
        _first_bad("vehicle type", self.vehicle_capacity < 0, vid, "negative capacity")
        for nm in ("vehicle_start_depot", "vehicle_end_depot"):
            a = self.a(nm)
            _first_bad("vehicle type", (a < 0) | (a >= nd), vid, f"{nm[8:]} outside 0..{nd - 1}")
        _first_bad(
            "vehicle type",
            self.a("vehicle_tw_late_s") < self.a("vehicle_tw_early_s"),
            vid,
            "shift ends before it starts",
        )
        _first_bad(
            "vehicle type", self.a("vehicle_max_duration_s") < 0, vid, "negative shift length"
        )
        for nm in (
            "vehicle_fixed_cost",
            "vehicle_unit_distance_cost",
            "vehicle_unit_duration_cost",
        ):
            _first_bad("vehicle type", self.a(nm) < 0, vid, f"negative {nm[8:]}")
        if self.location_lonlat is not None:
            ll = np.asarray(self.location_lonlat, dtype=np.float64)
            if ll.shape != (n_loc, 2):
                raise ValidationError(f"location_lonlat: expected ({n_loc}, 2), got {ll.shape}")
            set_(self, "location_lonlat", ll)
        if not (self.cost_unit > 0 and np.isfinite(self.cost_unit)):
            raise ValidationError(f"cost_unit must be positive, got {self.cost_unit}")

    # -- sizes ------------------------------------------------------------------------

    @property
    def n_orders(self) -> int:
        """Number of orders."""
        return len(self.order_location)

    @property
    def n_depots(self) -> int:
        """Number of depots."""
        return len(self.depot_location)

    @property
    def n_locations(self) -> int:
        """Number of locations (rows of the matrices)."""
        return int(self.duration_s.shape[0])

    @property
    def n_vehicles(self) -> int:
        """Total number of vehicles over all types."""
        return int(self.vehicle_count.sum())

    def a(self, name: str) -> IntArray:
        """A filled array field (never ``None`` after validation); for typed access."""
        v = getattr(self, name)
        assert v is not None
        return v  # type: ignore[no-any-return]

    def replace(self, **changes: Any) -> RoutingProblem:
        """A copy with ``changes`` applied (validated again)."""
        from dataclasses import replace

        return replace(self, **changes)

    def to_frame(self) -> pd.DataFrame:
        """The orders as a table (one row per order)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "order": self.order_id,
                "location": self.order_location,
                "demand": self.order_demand,
                "service_s": self.a("order_service_s"),
                "tw_early_s": self.a("order_tw_early_s"),
                "tw_late_s": self.a("order_tw_late_s"),
                "required": self.a("order_required"),
                "penalty": self.a("order_penalty"),
                "priority": self.a("order_priority"),
            }
        ).set_index("order")

    def to_pyvrp(self) -> pyvrp.ProblemData:
        """The same problem as PyVRP's :class:`pyvrp.ProblemData` (same indices)."""
        import pyvrp

        big = int(np.iinfo(np.int64).max)

        def lim(x: Any) -> int:  # our "no limit" is PyVRP's default, so it sees none
            return big if int(x) >= UNBOUNDED else int(x)

        locs = [pyvrp.Location(0.0, 0.0) for _ in range(self.n_locations)]
        if self.location_lonlat is not None:
            locs = [pyvrp.Location(float(x), float(y)) for x, y in self.location_lonlat]
        depots = [
            pyvrp.Depot(int(loc), tw_early=int(e), tw_late=lim(lt), name=nm)
            for loc, e, lt, nm in zip(
                self.depot_location,
                self.a("depot_tw_early_s"),
                self.a("depot_tw_late_s"),
                self.depot_id,
                strict=True,
            )
        ]
        clients = [
            pyvrp.Client(
                int(loc),
                delivery=[int(q)],
                service_duration=int(s),
                tw_early=int(e),
                tw_late=lim(lt),
                prize=int(p),
                required=bool(r),
                name=nm,
            )
            for loc, q, s, e, lt, p, r, nm in zip(
                self.order_location,
                self.order_demand,
                self.a("order_service_s"),
                self.a("order_tw_early_s"),
                self.a("order_tw_late_s"),
                self.a("order_penalty"),
                self.a("order_required"),
                self.order_id,
                strict=True,
            )
        ]
        vts = []
        for k in range(len(self.vehicle_count)):
            if self.vehicle_count[k] == 0:
                continue  # PyVRP needs num_available >= 1; the index map below skips it
            vts.append(
                pyvrp.VehicleType(
                    num_available=int(self.vehicle_count[k]),
                    capacity=[int(self.vehicle_capacity[k])],
                    start_depot=int(self.a("vehicle_start_depot")[k]),
                    end_depot=int(self.a("vehicle_end_depot")[k]),
                    fixed_cost=int(self.a("vehicle_fixed_cost")[k]),
                    tw_early=int(self.a("vehicle_tw_early_s")[k]),
                    tw_late=lim(self.a("vehicle_tw_late_s")[k]),
                    shift_duration=lim(self.a("vehicle_max_duration_s")[k]),
                    unit_distance_cost=int(self.a("vehicle_unit_distance_cost")[k]),
                    unit_duration_cost=int(self.a("vehicle_unit_duration_cost")[k]),
                    name=str(k),
                )
            )
        return pyvrp.ProblemData(
            locs,
            clients,
            depots,
            vts,
            [self.distance_m],  # type: ignore[list-item]
            [self.duration_s],  # type: ignore[list-item]
        )

    def pyvrp_type_index(self) -> IntArray:
        """Our vehicle-type index for each of PyVRP's (types with count 0 are skipped)."""
        return np.flatnonzero(self.vehicle_count > 0).astype(np.int64)


@dataclass(frozen=True, eq=False)
class PlannedRoute:
    """One vehicle's route: its type, the orders it serves in order, and when it leaves.

    ``vehicle`` names the vehicle (``"<type id>#<k>"`` by default) so that a
    re-plan can follow it; ``start_s`` is the departure time from the start
    depot (``None``: as late as possible without delaying the route).
    """

    vehicle_type: int
    orders: IntArray
    vehicle: str = ""
    start_s: int | None = None

    def __post_init__(self) -> None:
        o = np.asarray(self.orders, dtype=np.int64).reshape(-1).copy()
        o.setflags(write=False)
        object.__setattr__(self, "orders", o)


@dataclass(frozen=True, eq=False)
class RoutingSolution:
    """A plan: routes, dropped orders with their reasons, and how it was checked.

    ``cost`` is in reported units (``objective * cost_unit``): routing cost plus
    penalties of dropped orders. ``feasible`` comes from the independent
    checker, not from the solver: the routes keep every constraint (a required
    order dropped because no vehicle could ever serve it does not make them
    infeasible). ``dropped_required`` lists the required orders that are not
    served (indices; reasons in ``dropped``); ``status`` and ``ok`` say whether
    the plan met what was asked.
    """

    routes: tuple[PlannedRoute, ...]
    dropped: dict[int, str]
    objective: int
    cost: float
    feasible: bool
    violations: tuple[str, ...]
    time_s: float
    solver: str = ""
    iterations: int = 0
    dropped_required: tuple[int, ...] = ()

    @property
    def status(self) -> str:
        """One word of :mod:`aiguilleur.status` for the plan.

        ``feasible`` when the routes keep every constraint and every required
        order is served; ``partial`` when the routes are valid but some
        required orders are dropped (``dropped_required``, with the reason in
        ``dropped``); ``infeasible`` when a route breaks a constraint, or when
        no required order at all could be served.
        """
        route_viol = [v for v in self.violations if not v.startswith("required order ")]
        if route_viol:
            return "infeasible"
        if self.dropped_required:
            served = sum(len(r.orders) for r in self.routes)
            return "partial" if served else "infeasible"
        return "feasible"

    @property
    def ok(self) -> bool:
        """True when the plan met what was asked (every required order served, validly)."""
        from aiguilleur.status import is_ok

        return is_ok(self.status)

    @property
    def n_vehicles(self) -> int:
        """Number of routes that serve at least one order."""
        return sum(1 for r in self.routes if len(r.orders) > 0)

    def route_lists(self) -> list[list[int]]:
        """Routes as lists of order numbers, 1-based as in CVRPLIB ``.sol`` files."""
        return [[int(i) + 1 for i in r.orders] for r in self.routes if len(r.orders) > 0]

    def to_frame(self) -> pd.DataFrame:
        """One row per visit: vehicle, position and order."""
        import pandas as pd

        rows = [
            (r.vehicle, r.vehicle_type, k, int(o))
            for r in self.routes
            for k, o in enumerate(r.orders)
        ]
        return pd.DataFrame(rows, columns=["vehicle", "vehicle_type", "position", "order"])
