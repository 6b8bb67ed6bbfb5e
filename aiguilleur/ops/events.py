"""One event vocabulary for the operations centre.

Everything that changes the state arrives as an event: a line trips, a unit is
derated, demand moves, a road floods, an order becomes urgent, an operator
approves a plan. Events are pydantic models with a ``type`` discriminator, so
that one JSON object is validated in one call (:func:`parse_event`) and the
whole vocabulary has one JSON Schema (:func:`event_json_schema`).

Every event carries

* ``id``: globally unique, chosen by the sender (a repeated id is
  acknowledged again and stored once);
* ``occurred_at``: when it happened, with a time zone;
* ``source``: who sent it (a SCADA gateway, a dispatcher, ``policy:auto``...).

Elements are named as in the case file: ``bus:<id>`` (the bus number),
``branch:<n>`` and ``gen:<n>`` (the n-th row of the case file, from 1). Road
edges are edge indices of the road graph, vehicles and orders their ids.
Field names carry their unit (``p_mw``, ``rate_a_mva``, ``radius_m``); a
field with another unit, or an unknown field, is refused with the field named.

Element names are checked against the world in :func:`check_event` (the
schema alone cannot know whether ``branch:9999`` exists); the operations
centre does both before an event reaches the log.

The leaves' own event types map to and from this vocabulary here: grid
:class:`~aiguilleur.grid.redispatch.Outage` (:func:`grid_outages`,
:func:`outage_event`), roads ``RoadClosure`` / ``Slowdown`` (:func:`road_disruption`,
:func:`disruption_event`). The routing leaf's re-planning events (new matrices,
depots down, breakdowns, urgent orders) are differences between two fleet states,
not single events: :func:`aiguilleur.ops.fleet.replan_fleet` derives them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from aiguilleur.errors import ValidationError

if TYPE_CHECKING:
    from aiguilleur.grid import Network
    from aiguilleur.grid.redispatch import Outage

__all__ = [
    "ACTION_KINDS",
    "EVENT_TYPES",
    "GRID_EVENT_TYPES",
    "LOGISTICS_EVENT_TYPES",
    "OPERATOR_EVENT_TYPES",
    "WORLD_EVENT_TYPES",
    "Action",
    "AdoptRoutes",
    "AlarmAcknowledged",
    "AssetRegistered",
    "BranchRestore",
    "BranchTrip",
    "DepotOutage",
    "DepotRestored",
    "ElementIndex",
    "Event",
    "FleetInitialised",
    "ForecastIssued",
    "GenDerate",
    "GenRestore",
    "GenTrip",
    "GridInitialised",
    "HealthReading",
    "LoadChange",
    "LoadScale",
    "OrderCancelled",
    "OrderCreated",
    "OrderUrgent",
    "ProposalAmended",
    "ProposalApproved",
    "ProposalRejected",
    "RatingChange",
    "Reading",
    "RenewableUpdate",
    "RoadClosure",
    "RoadReopening",
    "RoadSlowdown",
    "SetDispatch",
    "SetReactive",
    "SetVoltage",
    "ShedLoad",
    "Telemetry",
    "TripGen",
    "VehicleBreakdown",
    "VehiclePosition",
    "check_event",
    "disruption_event",
    "element_index",
    "element_row",
    "event_dict",
    "event_json_schema",
    "event_to_json",
    "grid_outages",
    "outage_event",
    "outage_ref",
    "parse_event",
    "parse_event_json",
    "road_disruption",
    "same_event",
]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+#-]{0,127}$")
_ELEMENT = re.compile(r"^(bus|branch|gen):([1-9][0-9]{0,9})$")
MAX_READINGS = 100_000
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64

# -- building blocks ---------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True, str_max_length=100_000, allow_inf_nan=False)


BusRef = Annotated[
    str,
    Field(
        pattern=r"^bus:[1-9][0-9]{0,9}$",
        description="a bus as the case file numbers it: bus:<id>",
        examples=["bus:1"],
    ),
]
BranchRef = Annotated[
    str,
    Field(
        pattern=r"^branch:[1-9][0-9]{0,9}$",
        description="the n-th branch row of the case file, from 1: branch:<n>",
        examples=["branch:1"],
    ),
]
GenRef = Annotated[
    str,
    Field(
        pattern=r"^gen:[1-9][0-9]{0,9}$",
        description="the n-th generator row of the case file, from 1: gen:<n>",
        examples=["gen:1"],
    ),
]
AnyRef = Annotated[
    str,
    Field(
        pattern=r"^(bus|branch|gen):[1-9][0-9]{0,9}$",
        description="bus:<id>, branch:<n> or gen:<n>",
    ),
]
Id = Annotated[
    str,
    Field(
        pattern=_ID.pattern,
        description="letters, digits and ._:@/+#- (at most 128 characters, starting with a "
        "letter or digit)",
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]


class _Base(BaseModel):
    model_config = _STRICT

    id: Id
    occurred_at: AwareDatetime
    source: Name

    @field_validator("occurred_at")
    @classmethod
    def _utc_year(cls, v: datetime) -> datetime:
        if not 1970 <= v.year <= 9998:
            raise ValueError("expected a date between 1970 and 9998")
        return v


# -- grid ----------------------------------------------------------------------------------


class BranchTrip(_Base):
    """A branch opens (protection trip, forced outage)."""

    type: Literal["branch_trip"] = "branch_trip"
    branch: BranchRef


class BranchRestore(_Base):
    """A branch is back in service."""

    type: Literal["branch_restore"] = "branch_restore"
    branch: BranchRef


class GenTrip(_Base):
    """A generating unit trips; the others pick up its output (AGC participation)."""

    type: Literal["gen_trip"] = "gen_trip"
    gen: GenRef


class GenRestore(_Base):
    """A unit is back in service at its minimum output."""

    type: Literal["gen_restore"] = "gen_restore"
    gen: GenRef


class GenDerate(_Base):
    """A unit's available maximum changes (``pmax_mw``: the new maximum, MW)."""

    type: Literal["gen_derate"] = "gen_derate"
    gen: GenRef
    pmax_mw: NonNeg


class LoadChange(_Base):
    """The demand at one bus becomes ``p_mw`` (and ``q_mvar``; else at the same power factor)."""

    type: Literal["load_change"] = "load_change"
    bus: BusRef
    p_mw: Finite
    q_mvar: Finite | None = None


class LoadScale(_Base):
    """Demand scaled by ``factor`` over an area (``area``), some buses, or the whole grid."""

    type: Literal["load_scale"] = "load_scale"
    factor: Annotated[float, Field(gt=0.0, le=5.0, allow_inf_nan=False)]
    area: Annotated[int, Field(ge=0)] | None = None
    buses: Annotated[list[BusRef], Field(max_length=100_000)] | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> LoadScale:
        if self.area is not None and self.buses is not None:
            raise ValueError("give either area or buses, not both")
        return self


class RenewableUpdate(_Base):
    """A renewable unit's available output (must-take: it produces ``available_mw``)."""

    type: Literal["renewable_update"] = "renewable_update"
    gen: GenRef
    available_mw: NonNeg


class RatingChange(_Base):
    """A branch's ratings change (dynamic line rating, temporary limit), MVA."""

    type: Literal["rating_change"] = "rating_change"
    branch: BranchRef
    rate_a_mva: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    rate_b_mva: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    rate_c_mva: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None


# -- telemetry, forecasts, health -------------------------------------------------------------

_QUANTITY_UNIT = {
    "vm": "pu",
    "p_inj": "MW",
    "q_inj": "Mvar",
    "p_from": "MW",
    "q_from": "Mvar",
    "p_to": "MW",
    "q_to": "Mvar",
}


class Reading(BaseModel):
    """One measured value: ``quantity`` at ``element``, in ``unit`` (checked for the quantity)."""

    model_config = _STRICT

    element: AnyRef
    quantity: Literal["vm", "p_inj", "q_inj", "p_from", "q_from", "p_to", "q_to"]
    value: Finite
    unit: str
    sigma: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    meter: Id | None = None

    @model_validator(mode="after")
    def _unit_and_element(self) -> Reading:
        want = _QUANTITY_UNIT[self.quantity]
        if self.unit.strip().lower() != want.lower():
            raise ValueError(f"{self.quantity} is measured in {want}, got unit {self.unit!r}")
        kind = self.element.partition(":")[0]
        need = "bus" if self.quantity in ("vm", "p_inj", "q_inj") else "branch"
        if kind != need:
            raise ValueError(f"{self.quantity} is measured at a {need}, got {self.element!r}")
        return self


class Telemetry(_Base):
    """A batch of readings from the field (SCADA), each at one element."""

    type: Literal["telemetry"] = "telemetry"
    readings: Annotated[list[Reading], Field(min_length=1, max_length=MAX_READINGS)]


class ForecastIssued(_Base):
    """A probabilistic forecast of system load (or wind, solar), one value per step, MW."""

    type: Literal["forecast_issued"] = "forecast_issued"
    quantity: Literal["load", "wind", "solar"] = "load"
    start: AwareDatetime
    step_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    p10_mw: Annotated[list[NonNeg], Field(min_length=1, max_length=744)]
    p50_mw: Annotated[list[NonNeg], Field(min_length=1, max_length=744)]
    p90_mw: Annotated[list[NonNeg], Field(min_length=1, max_length=744)]
    model: Name = "unspecified"

    @model_validator(mode="after")
    def _quantiles(self) -> ForecastIssued:
        n = len(self.p50_mw)
        if len(self.p10_mw) != n or len(self.p90_mw) != n:
            raise ValueError("p10_mw, p50_mw and p90_mw need the same number of values")
        for k, (a, b, c) in enumerate(zip(self.p10_mw, self.p50_mw, self.p90_mw, strict=True)):
            if not a <= b <= c:
                raise ValueError(f"step {k}: expected p10 <= p50 <= p90, got {a}, {b}, {c}")
        return self


class HealthReading(_Base):
    """One cycle of an asset's condition monitoring (C-MAPSS-like: settings and sensors)."""

    type: Literal["health_reading"] = "health_reading"
    asset: Id
    cycle: Annotated[int, Field(ge=1, le=10_000_000)]
    settings: Annotated[list[Finite], Field(max_length=16)] = []
    sensors: Annotated[dict[Annotated[str, Field(max_length=32)], Finite], Field(max_length=64)]


class AssetRegistered(_Base):
    """An asset id names a grid element (its health becomes that element's outage risk)."""

    type: Literal["asset_registered"] = "asset_registered"
    asset: Id
    element: AnyRef


# -- logistics -------------------------------------------------------------------------------


class _Area(BaseModel):
    model_config = _STRICT

    edges: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=100_000)] = []
    center_lat: Lat | None = None
    center_lon: Lon | None = None
    radius_m: Annotated[float, Field(ge=0.0, le=100_000.0, allow_inf_nan=False)] = 0.0
    polygon_lonlat: Annotated[list[tuple[Lon, Lat]], Field(max_length=10_000)] = []

    @model_validator(mode="after")
    def _some_area(self) -> _Area:
        has_c = self.center_lat is not None or self.center_lon is not None
        if has_c and (self.center_lat is None or self.center_lon is None):
            raise ValueError("center_lat and center_lon go together")
        if has_c and not self.radius_m > 0:
            raise ValueError("a centre needs a radius_m above 0")
        if not (self.edges or has_c or self.polygon_lonlat):
            raise ValueError("name the roads: edges, a centre and radius_m, or polygon_lonlat")
        if self.polygon_lonlat and len(self.polygon_lonlat) < 3:
            raise ValueError("polygon_lonlat needs at least 3 points")
        return self


class RoadClosure(_Base):
    """Roads closed (flood, accident) over edges, a disc or a polygon; ``closure`` names it."""

    type: Literal["road_closure"] = "road_closure"
    closure: Id
    area: _Area
    reason: Text = ""


class RoadSlowdown(_Base):
    """Travel times multiplied by ``factor`` (>= 1) over an area; ``closure`` names it."""

    type: Literal["road_slowdown"] = "road_slowdown"
    closure: Id
    area: _Area
    factor: Annotated[float, Field(ge=1.0, le=100.0, allow_inf_nan=False)]
    reason: Text = ""


class RoadReopening(_Base):
    """A closure or slowdown named earlier is lifted."""

    type: Literal["road_reopening"] = "road_reopening"
    closure: Id


class DepotOutage(_Base):
    """A depot is out of service (flooded, no power); ``stock_lost`` units of its stock are lost."""

    type: Literal["depot_outage"] = "depot_outage"
    depot: Id
    stock_lost: NonNeg = 0.0
    reason: Text = ""


class DepotRestored(_Base):
    """A depot is back in service."""

    type: Literal["depot_restored"] = "depot_restored"
    depot: Id


class VehiclePosition(_Base):
    """Where a vehicle is (GPS)."""

    type: Literal["vehicle_position"] = "vehicle_position"
    vehicle: Id
    lat: Lat
    lon: Lon


class VehicleBreakdown(_Base):
    """A vehicle stops where it is and serves nothing more."""

    type: Literal["vehicle_breakdown"] = "vehicle_breakdown"
    vehicle: Id
    reason: Text = ""


class OrderCreated(_Base):
    """A new order: ``quantity`` units (litres of fuel, or 1 crew visit) for a place by a time."""

    type: Literal["order_created"] = "order_created"
    order: Id
    fleet: Id
    lat: Lat
    lon: Lon
    name: Text = ""
    quantity: Annotated[float, Field(gt=0.0, le=1e9, allow_inf_nan=False)]
    priority: Annotated[int, Field(ge=1, le=9)] = 3
    window_open: AwareDatetime | None = None
    window_close: AwareDatetime | None = None
    service_s: Annotated[int, Field(ge=0, le=86_400)] = 900
    required: bool = True

    @model_validator(mode="after")
    def _window(self) -> OrderCreated:
        if (
            self.window_open is not None
            and self.window_close is not None
            and self.window_close < self.window_open
        ):
            raise ValueError("window_close is before window_open")
        return self


class OrderCancelled(_Base):
    """An order is withdrawn."""

    type: Literal["order_cancelled"] = "order_cancelled"
    order: Id


class OrderUrgent(_Base):
    """An order becomes urgent: required, a higher priority, and optionally an earlier deadline."""

    type: Literal["order_urgent"] = "order_urgent"
    order: Id
    priority: Annotated[int, Field(ge=1, le=9)] = 1
    window_close: AwareDatetime | None = None


# -- actions an approval applies ----------------------------------------------------------------


class _Action(BaseModel):
    model_config = _STRICT


class SetDispatch(_Action):
    """A unit's active-power set-point, MW."""

    kind: Literal["set_dispatch"] = "set_dispatch"
    gen: GenRef
    pg_mw: Finite


class SetVoltage(_Action):
    """A unit's voltage set-point, pu."""

    kind: Literal["set_voltage"] = "set_voltage"
    gen: GenRef
    vg_pu: Annotated[float, Field(gt=0.5, lt=1.5, allow_inf_nan=False)]


class SetReactive(_Action):
    """A unit's reactive output, Mvar (a set-point where its bus does not regulate voltage)."""

    kind: Literal["set_reactive"] = "set_reactive"
    gen: GenRef
    qg_mvar: Finite


class ShedLoad(_Action):
    """Load shed at a bus, MW (the total shed there from now on; 0 restores it)."""

    kind: Literal["shed_load"] = "shed_load"
    bus: BusRef
    shed_mw: NonNeg


class TripGen(_Action):
    """A unit is tripped on purpose (emergency generation tripping)."""

    kind: Literal["trip_gen"] = "trip_gen"
    gen: GenRef


class RoutePlan(BaseModel):
    """One vehicle's route: its order ids in sequence and when it leaves (s from shift start)."""

    model_config = _STRICT

    vehicle: Id
    vehicle_type: Id
    orders: Annotated[list[Id], Field(max_length=10_000)]
    start_s: Annotated[int, Field(ge=0)] | None = None


class AdoptRoutes(_Action):
    """A fleet's new plan: routes, what it leaves undelivered and why, and the allocation."""

    kind: Literal["adopt_routes"] = "adopt_routes"
    fleet: Id
    at_s: Annotated[int, Field(ge=0)]
    routes: Annotated[list[RoutePlan], Field(max_length=10_000)]
    dropped: dict[Id, Text] = {}
    quantities: dict[Id, NonNeg] = {}


Action = Annotated[
    SetDispatch | SetVoltage | SetReactive | ShedLoad | TripGen | AdoptRoutes,
    Field(discriminator="kind"),
]
ACTION_KINDS = (
    "set_dispatch",
    "set_voltage",
    "set_reactive",
    "shed_load",
    "trip_gen",
    "adopt_routes",
)


# -- operator ---------------------------------------------------------------------------------


class ProposalApproved(_Base):
    """An operator (or the stated policy) approves a proposal; it carries the actions applied."""

    type: Literal["proposal_approved"] = "proposal_approved"
    proposal: Id
    operator: Name
    actions: Annotated[list[Action], Field(max_length=100_000)]


class ProposalRejected(_Base):
    """An operator rejects a proposal."""

    type: Literal["proposal_rejected"] = "proposal_rejected"
    proposal: Id
    operator: Name
    reason: Text = ""


class ProposalAmended(_Base):
    """An operator applies a proposal with changed actions (the actions applied are carried)."""

    type: Literal["proposal_amended"] = "proposal_amended"
    proposal: Id
    operator: Name
    actions: Annotated[list[Action], Field(max_length=100_000)]
    reason: Text = ""


class AlarmAcknowledged(_Base):
    """An operator acknowledges an alarm."""

    type: Literal["alarm_acknowledged"] = "alarm_acknowledged"
    alarm: Id
    operator: Name


# -- the world --------------------------------------------------------------------------------


class GridInitialised(_Base):
    """The grid the log starts from: a bundled case (checked by hash) and its operating point.

    The operating point (``pg_mw``, ``vg_pu`` and ``qg_mvar`` per generator row; the
    reactive output is a set-point where a unit's bus does not regulate voltage) is carried, not
    recomputed, so that folding the log never runs a solver. ``case_text`` carries a
    case that is not bundled (MATPOWER text).
    """

    type: Literal["grid_initialised"] = "grid_initialised"
    case: Name
    case_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    case_text: Annotated[str, Field(max_length=50_000_000)] | None = None
    pg_mw: Annotated[list[Finite], Field(max_length=100_000)]
    vg_pu: Annotated[list[Finite], Field(max_length=100_000)]
    qg_mvar: Annotated[list[Finite], Field(max_length=100_000)] | None = None
    operating_point: dict[str, Any] = {}
    assets: dict[Id, AnyRef] = {}


class SiteSpec(BaseModel):
    """A place of the fleet world: a depot or a demand point, snapped to a road node."""

    model_config = _STRICT

    site: Id
    kind: Name
    name: Text = ""
    lat: Lat
    lon: Lon
    node: Annotated[int, Field(ge=0)]


class OrderSpec(BaseModel):
    """An order of the fleet world at its start (times in s from the shift start)."""

    model_config = _STRICT

    order: Id
    site: Id
    quantity: NonNeg
    priority: Annotated[int, Field(ge=1, le=9)]
    window_open_s: Annotated[int, Field(ge=0)]
    window_close_s: Annotated[int, Field(ge=0)]
    service_s: Annotated[int, Field(ge=0)]
    required: bool
    penalty: Annotated[int, Field(ge=0)]


class FleetSpec(BaseModel):
    """One fleet: its depot, vehicles, capacity, orders and the plan it starts with."""

    model_config = _STRICT

    fleet: Id
    depot: Id
    vehicle_type: Id
    vehicles: Annotated[int, Field(ge=0, le=10_000)]
    capacity: Annotated[int, Field(ge=1)]
    unit: Name = "units"
    orders: list[OrderSpec]
    routes: list[RoutePlan]
    dropped: dict[Id, Text] = {}


class FleetInitialised(_Base):
    """The road extract (checked by hash), the sites, the fleets and their first plans."""

    type: Literal["fleet_initialised"] = "fleet_initialised"
    roads: Name
    roads_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    shift_start: AwareDatetime
    shift_s: Annotated[int, Field(ge=60, le=7 * 86_400)]
    sites: list[SiteSpec]
    fleets: list[FleetSpec]
    supply: dict[Id, NonNeg] = {}


Event = Annotated[
    BranchTrip
    | BranchRestore
    | GenTrip
    | GenRestore
    | GenDerate
    | LoadChange
    | LoadScale
    | RenewableUpdate
    | RatingChange
    | Telemetry
    | ForecastIssued
    | HealthReading
    | AssetRegistered
    | RoadClosure
    | RoadSlowdown
    | RoadReopening
    | DepotOutage
    | DepotRestored
    | VehiclePosition
    | VehicleBreakdown
    | OrderCreated
    | OrderCancelled
    | OrderUrgent
    | ProposalApproved
    | ProposalRejected
    | ProposalAmended
    | AlarmAcknowledged
    | GridInitialised
    | FleetInitialised,
    Field(discriminator="type"),
]

GRID_EVENT_TYPES = frozenset(
    {
        "branch_trip",
        "branch_restore",
        "gen_trip",
        "gen_restore",
        "gen_derate",
        "load_change",
        "load_scale",
        "renewable_update",
        "rating_change",
    }
)
LOGISTICS_EVENT_TYPES = frozenset(
    {
        "road_closure",
        "road_slowdown",
        "road_reopening",
        "depot_outage",
        "depot_restored",
        "vehicle_position",
        "vehicle_breakdown",
        "order_created",
        "order_cancelled",
        "order_urgent",
    }
)
OPERATOR_EVENT_TYPES = frozenset(
    {"proposal_approved", "proposal_rejected", "proposal_amended", "alarm_acknowledged"}
)
WORLD_EVENT_TYPES = frozenset({"grid_initialised", "fleet_initialised"})
EVENT_TYPES: tuple[str, ...] = tuple(
    sorted(
        GRID_EVENT_TYPES
        | LOGISTICS_EVENT_TYPES
        | OPERATOR_EVENT_TYPES
        | WORLD_EVENT_TYPES
        | {"telemetry", "forecast_issued", "health_reading", "asset_registered"}
    )
)

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


# -- parsing -------------------------------------------------------------------------------------


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "event"


def _first_error(e: PydanticValidationError, raw: Any) -> str:
    """One line for pydantic's first error: the field, what is wrong (never the whole input)."""
    errors = e.errors(include_url=False, include_input=False)
    # an unknown field explains the "missing" one beside it (a unit in the wrong name)
    err = next((x for x in errors if x.get("type") == "extra_forbidden"), errors[0])
    loc = tuple(err.get("loc", ()))
    # a discriminated union puts the tag in the location: drop it
    if loc and isinstance(raw, dict) and loc[0] == raw.get("type"):
        loc = loc[1:]
    if err.get("type") == "union_tag_invalid" or err.get("type") == "union_tag_not_found":
        if isinstance(raw, dict) and "type" in raw:
            t = str(raw.get("type"))[:40]
            return f"type: unknown event type {t!r} (expected one of {', '.join(EVENT_TYPES)})"
        return "type: missing (every event names its type)"
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        msg = "unknown field (check its name and unit)"
    elif err.get("type") == "missing":
        msg = "missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if len(msg) > 200:
        msg = msg[:200] + "..."
    return f"{_where(loc)}: {msg}"


def parse_event(obj: Any) -> Any:
    """Validate one event given as a parsed JSON object.

    Returns the event model; raises :class:`~aiguilleur.errors.ValidationError`
    naming the field and what was expected.
    """
    if not isinstance(obj, dict):
        raise ValidationError(f"event: expected a JSON object, got {type(obj).__name__}")
    try:
        return _ADAPTER.validate_python(obj)
    except PydanticValidationError as e:
        raise ValidationError(_first_error(e, obj)) from None


def _depth(text: str) -> int:
    depth = deepest = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number JSON allows")


def parse_event_json(text: str | bytes) -> Any:
    """Validate one event given as JSON text (one line of a JSON-lines stream).

    The text is bounded (16 MiB, nesting depth 64) before it is parsed, so
    that no input can exhaust memory or the recursion limit.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_JSON_BYTES:
            raise ValidationError(f"event: larger than {MAX_JSON_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationError(f"event: not UTF-8 text (byte {e.start})") from None
    if len(text) > MAX_JSON_BYTES:
        raise ValidationError(f"event: larger than {MAX_JSON_BYTES} bytes")
    if ("[" * 65 in text or "{" * 65 in text or text.count("[") + text.count("{") > 64) and (
        _depth(text) > MAX_JSON_DEPTH
    ):
        raise ValidationError(f"event: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValidationError(f"event: not valid JSON ({e.msg} at column {e.colno})") from None
    except ValueError as e:
        raise ValidationError(f"event: {e}") from None
    except RecursionError:
        raise ValidationError(f"event: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    return parse_event(obj)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the whole vocabulary (one ``oneOf`` over the event types)."""
    schema: dict[str, Any] = _ADAPTER.json_schema()
    schema["title"] = "aiguilleur event"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# -- elements against the world ---------------------------------------------------------------


class ElementIndex:
    """Rows of a network's elements by stable name, with dictionary lookups (built once)."""

    def __init__(self, net: Network) -> None:
        self.name = net.name
        self.bus_row = {int(b): i for i, b in enumerate(net.bus.bus_id.tolist())}
        self.n_branch = net.n_branch
        self.n_gen = net.n_gen
        self._memo: dict[str, tuple[str, int]] = {}

    def row(self, ref: str) -> tuple[str, int]:
        """``(kind, 0-based row)``; :class:`ValidationError` naming the element when unknown."""
        hit = self._memo.get(ref)
        if hit is not None:
            return hit
        m = _ELEMENT.match(ref)
        if m is None:
            raise ValidationError(f"{ref!r}: expected bus:<id>, branch:<n> or gen:<n>")
        kind, num = m.group(1), int(m.group(2))
        if kind == "bus":
            r = self.bus_row.get(num)
            if r is None:
                raise ValidationError(f"{ref}: no bus {num} in {self.name}")
            out = ("bus", r)
        else:
            size = self.n_branch if kind == "branch" else self.n_gen
            if not 1 <= num <= size:
                raise ValidationError(f"{ref}: {self.name} has {size} {kind} rows (1..{size})")
            out = (kind, num - 1)
        if len(self._memo) < 1_000_000:
            self._memo[ref] = out
        return out


_INDEX: dict[int, tuple[Any, ElementIndex]] = {}


def element_index(net: Network) -> ElementIndex:
    """The (cached) :class:`ElementIndex` of ``net``."""
    hit = _INDEX.get(id(net))
    if hit is not None and hit[0] is net:
        return hit[1]
    idx = ElementIndex(net)
    if len(_INDEX) > 64:
        _INDEX.clear()
    _INDEX[id(net)] = (net, idx)
    return idx


def element_row(ref: str, net: Network) -> tuple[str, int]:
    """``(kind, 0-based row)`` of ``bus:<id>``, ``branch:<n>`` or ``gen:<n>`` in ``net``.

    Raises :class:`ValidationError` naming the element when the network has no
    such bus id or row.
    """
    return element_index(net).row(ref)


_REF_FIELDS: dict[type, tuple[str, ...]] = {}


def _refs(ev: Any) -> Iterable[tuple[str, str]]:
    """(field path, element name) of every grid element an event names."""
    t = type(ev)
    fields = _REF_FIELDS.get(t)
    if fields is None:
        fields = tuple(f for f in ("branch", "gen", "bus") if f in t.model_fields)
        _REF_FIELDS[t] = fields
    for f in fields:
        v = getattr(ev, f)
        if isinstance(v, str):
            yield f, v
    if isinstance(ev, LoadScale) and ev.buses:
        for k, b in enumerate(ev.buses):
            yield f"buses[{k}]", b
    if isinstance(ev, Telemetry):
        for k, r in enumerate(ev.readings):
            yield f"readings[{k}].element", r.element
    if isinstance(ev, AssetRegistered):
        yield "element", ev.element
    if isinstance(ev, GridInitialised):
        for a, el in ev.assets.items():
            yield f"assets.{a}", el
    if isinstance(ev, ProposalApproved | ProposalAmended):
        for j, act in enumerate(ev.actions):
            for f in ("gen", "bus"):
                v = getattr(act, f, None)
                if isinstance(v, str):
                    yield f"actions[{j}].{f}", v


def check_event(ev: Any, net: Network | None) -> None:
    """Check the grid elements an event names against ``net`` (the world's grid).

    Raises :class:`ValidationError` naming the field and the element. Events
    that name grid elements are refused while no grid is initialised.
    """
    refs = list(_refs(ev))
    if isinstance(ev, GridInitialised):
        return  # checked against its own case when folded (see ops.state)
    if not refs:
        return
    if net is None:
        raise ValidationError(f"{refs[0][0]}: no grid is initialised yet (no grid_initialised)")
    idx = element_index(net)
    for path, ref in refs:
        try:
            idx.row(ref)
        except ValidationError as e:
            raise ValidationError(f"{path}: {e}") from None


def grid_outages(ev: Any, net: Network) -> list[Outage]:
    """The grid leaf's outages of a trip event (``branch_trip``, ``gen_trip``), else ``[]``."""
    from aiguilleur.grid.redispatch import Outage

    if isinstance(ev, BranchTrip):
        return [Outage("branch", element_row(ev.branch, net)[1])]
    if isinstance(ev, GenTrip):
        return [Outage("gen", element_row(ev.gen, net)[1])]
    return []


def outage_event(outage: Outage, *, event_id: str, at: datetime, source: str) -> Any:
    """The ``branch_trip`` or ``gen_trip`` event of a grid leaf :class:`Outage`."""
    ref = outage_ref(outage.kind, outage.row)
    if outage.kind == "branch":
        return BranchTrip(id=event_id, occurred_at=at, source=source, branch=ref)
    return GenTrip(id=event_id, occurred_at=at, source=source, gen=ref)


def road_disruption(ev: Any) -> Any:
    """The roads leaf's ``RoadClosure`` / ``Slowdown`` of a ``road_closure`` / ``road_slowdown``."""
    from aiguilleur.logistics.roads import RoadClosure as LeafClosure
    from aiguilleur.logistics.roads import Slowdown as LeafSlowdown

    if not isinstance(ev, RoadClosure | RoadSlowdown):
        raise ValidationError(f"{getattr(ev, 'type', ev)!r}: not a road closure or slowdown")
    a = ev.area
    kw: dict[str, Any] = {
        "edges": tuple(a.edges),
        "polygon_lonlat": tuple(tuple(p) for p in a.polygon_lonlat),
        "center_latlon": (a.center_lat, a.center_lon) if a.center_lat is not None else None,
        "radius_m": float(a.radius_m),
        "reason": ev.reason,
    }
    if isinstance(ev, RoadSlowdown):
        return LeafSlowdown(factor=ev.factor, **kw)
    return LeafClosure(**kw)


def disruption_event(d: Any, *, closure: str, event_id: str, at: datetime, source: str) -> Any:
    """The ``road_closure`` / ``road_slowdown`` event of a roads leaf disruption."""
    area = {
        "edges": list(d.edges),
        "polygon_lonlat": [list(p) for p in d.polygon_lonlat],
        "radius_m": float(d.radius_m),
    }
    if d.center_latlon is not None:
        area["center_lat"], area["center_lon"] = d.center_latlon
    doc: dict[str, Any] = {
        "id": event_id,
        "occurred_at": at.isoformat(),
        "source": source,
        "closure": closure,
        "area": area,
        "reason": d.reason,
    }
    if hasattr(d, "factor"):
        return parse_event({**doc, "type": "road_slowdown", "factor": d.factor})
    return parse_event({**doc, "type": "road_closure"})


def outage_ref(kind: str, row: int) -> str:
    """The stable name of a 0-based outage row (leaf kinds ``branch``, ``gen``/``generator``)."""
    k = "gen" if kind in ("gen", "generator") else kind
    return f"{k}:{int(row) + 1}"


def event_to_json(ev: Any) -> str:
    """Canonical JSON of an event (fields in the model's order, no spaces): what the log stores."""
    out: str = ev.model_dump_json()
    return out


def event_dict(ev: Any) -> dict[str, Any]:
    """The event as a JSON-safe dict."""
    out: dict[str, Any] = ev.model_dump(mode="json")
    return out


def same_event(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two event documents are the same event (for idempotent re-sends)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
