"""The state of the operations centre: a deterministic fold over the event log.

:class:`State` is an immutable value: the grid as it stands (topology,
dispatch, demand, shedding, ratings), the latest field readings, the assets'
condition histories, the latest forecasts, the road closures and the fleets
(orders, vehicles, depots, adopted plans), and the operators' decisions.
:func:`fold` applies one event and returns a new state; no solver ever runs
while folding (an approval carries the actions it applies). Replaying the
same log gives the same state, byte for byte: :meth:`State.to_bytes` is the
canonical encoding (also the snapshot format) and :attr:`State.state_hash`
its SHA-256.

Folding is total: an event that names something the state does not hold
(a closure already lifted, a cancelled order) changes nothing but the
counters. Element names are checked before an event reaches the log
(:func:`aiguilleur.ops.events.check_event`); a fold never raises for a
validated event.

**How the grid follows an injection change.** A trip, a derate, a demand
change or a renewable update changes the balance of generation and load; the
units that are in service and not must-take renewables absorb the difference
in proportion to their headroom (up: ``Pmax - Pg``, down: ``Pg - Pmin``),
as automatic generation control would. Losses stay on the AC slack. An
approved plan's dispatch is applied as it is (the plan balances itself).

For speed the fold works on a private mutable accumulator (:class:`Folder`):
the operations centre keeps one and applies events in place, and freezes it
into a :class:`State` only when an analysis or a caller asks for the state.
:func:`fold` is the pure form (thaw, apply, freeze).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError
from aiguilleur.ops import _canon
from aiguilleur.ops import events as ev

__all__ = [
    "FleetState",
    "Folder",
    "GridState",
    "State",
    "TelemetryState",
    "case_network",
    "fold",
    "fold_all",
    "state_from_bytes",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# telemetry slots: one per (quantity, element)
BUS_QUANTITIES = ("vm", "p_inj", "q_inj")
BRANCH_QUANTITIES = ("p_from", "q_from", "p_to", "q_to")
_STATE_VERSION = 1
_EPS = 1e-9


def _ro(a: npt.ArrayLike, dtype: Any = np.float64) -> Any:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


# -- cases and networks -----------------------------------------------------------------------

_case_lock = threading.Lock()
_case_cache: dict[str, Any] = {}


def case_network(case: str, sha256: str, text: str | None = None) -> Any:
    """The network of a bundled case (or of ``text``), checked against its SHA-256.

    Cached per process by hash. Raises :class:`ValidationError` when the case
    is unknown or its content differs from the hash the log recorded.
    """
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower_string

    with _case_lock:
        hit = _case_cache.get(sha256)
    if hit is not None:
        return hit
    if text is None:
        path = bundled_case_path(case)
        raw = path.read_bytes()
        src = str(path.name)
    else:
        raw = text.encode("utf-8")
        src = f"{case} (carried in the log)"
    got = hashlib.sha256(raw).hexdigest()
    if got != sha256:
        raise ValidationError(
            f"case {case}: content hash {got[:12]}... differs from the log's {sha256[:12]}... "
            "(the case file changed since the log was written)"
        )
    net = read_matpower_string(raw.decode("utf-8"), source=src, default_name=case)
    with _case_lock:
        _case_cache[sha256] = net
    return net


# -- the frozen state ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GridState:
    """The grid now: the network with current statuses, dispatch, demand net of shedding, ratings.

    ``demand_p_mw``/``demand_q_mvar`` are what consumers ask at each bus;
    ``shed_mw`` what an approved plan sheds there; the network's loads are the
    difference. ``must_take`` marks renewable units that produce what is
    available. ``version`` counts the changes of the grid (a network version
    for caches and provenance).
    """

    case: str
    case_sha256: str
    case_text: str | None
    net: Any  # grid.Network
    demand_p_mw: FloatArray
    demand_q_mvar: FloatArray
    shed_mw: FloatArray
    must_take: BoolArray
    version: int
    operating_point: Mapping[str, Any]
    assets: Mapping[str, str]

    @property
    def total_shed_mw(self) -> float:
        return float(np.sum(self.shed_mw))

    def summary(self) -> dict[str, Any]:
        n = self.net
        return {
            "case": self.case,
            "version": self.version,
            "buses": n.n_bus,
            "branches_out": [
                f"branch:{k + 1}" for k in np.flatnonzero(n.branch.in_service == 0).tolist()
            ],
            "gens_out": [f"gen:{k + 1}" for k in np.flatnonzero(n.gen.in_service == 0).tolist()],
            "demand_mw": float(np.sum(self.demand_p_mw)),
            "generation_mw": float(np.sum(n.gen.pg_mw[n.gen.in_service == 1])),
            "shed_mw": self.total_shed_mw,
            "assets": dict(self.assets),
        }


@dataclass(frozen=True, eq=False)
class TelemetryState:
    """The latest reading of every measured quantity (NaN where none has come yet).

    Slots: ``vm``, ``p_inj``, ``q_inj`` per bus (network order), then
    ``p_from``, ``q_from``, ``p_to``, ``q_to`` per branch row. ``seq`` is the
    log position of each slot's latest reading (0: never read), ``time_s``
    when it was taken (the event's ``occurred_at``, s since the Unix epoch;
    NaN: never read) and ``meter`` the meter that took it, by slot (slots
    whose latest reading named no meter are absent).

    The latest reading is the one taken last: a reading that arrives after a
    newer one of the same slot (a message redelivered late by a broker) does
    not replace it; readings taken at the same time follow the log's order.
    """

    n_bus: int
    n_branch: int
    value: FloatArray
    sigma: FloatArray
    seq: IntArray
    readings: int
    time_s: FloatArray
    meter: Mapping[int, str]

    def slot(self, quantity: str, row: int) -> int:
        if quantity in BUS_QUANTITIES:
            return BUS_QUANTITIES.index(quantity) * self.n_bus + row
        k = BRANCH_QUANTITIES.index(quantity)
        return 3 * self.n_bus + k * self.n_branch + row

    @property
    def measured(self) -> int:
        return int(np.sum(self.seq > 0))


@dataclass(frozen=True, eq=False)
class FleetState:
    """The fleets: sites, orders, vehicles, depots, closures and the plans in force.

    Times are seconds from ``shift_start``. Every mapping holds plain JSON-safe
    records (see :class:`Folder` for their fields).
    """

    roads: str
    roads_sha256: str
    shift_start: str
    shift_s: int
    sites: Mapping[str, Mapping[str, Any]]
    fleets: Mapping[str, Mapping[str, Any]]
    orders: Mapping[str, Mapping[str, Any]]
    vehicles: Mapping[str, Mapping[str, Any]]
    depots_down: tuple[str, ...]
    closures: Mapping[str, Mapping[str, Any]]
    plans: Mapping[str, Mapping[str, Any]]
    supply: Mapping[str, float]

    def at_s(self, when: datetime) -> int:
        """Seconds from the shift start to ``when`` (never negative)."""
        start = datetime.fromisoformat(self.shift_start)
        return max(0, int((when - start).total_seconds()))

    def summary(self) -> dict[str, Any]:
        open_orders = [o for o in self.orders.values() if o["status"] == "open"]
        dropped = sorted({d for p in self.plans.values() for d in p.get("dropped", {})})
        return {
            "fleets": {
                name: {
                    "vehicles": f["vehicles"],
                    "routes": sum(
                        1 for r in self.plans.get(name, {}).get("routes", []) if r["orders"]
                    ),
                    "orders": sum(1 for o in open_orders if o["fleet"] == name),
                }
                for name, f in sorted(self.fleets.items())
            },
            "closures": sorted(self.closures),
            "depots_down": list(self.depots_down),
            "broken_vehicles": sorted(v for v, r in self.vehicles.items() if r.get("broken")),
            "undelivered_orders": dropped,
        }


@dataclass(frozen=True, eq=False)
class State:
    """The whole state after the event at ``last_seq`` (see the module docstring)."""

    last_seq: int
    events: int
    clock: str | None
    grid: GridState | None
    telemetry: TelemetryState | None
    health: Mapping[str, tuple[tuple[int, tuple[float, ...], tuple[tuple[str, float], ...]], ...]]
    forecasts: Mapping[str, Mapping[str, Any]]
    fleet: FleetState | None
    decisions: Mapping[str, Mapping[str, Any]]
    acks: Mapping[str, Mapping[str, Any]]
    ignored: int = 0

    @cached_property
    def _bytes(self) -> bytes:
        return _canon.dumps(_to_plain(self))

    def to_bytes(self) -> bytes:
        """The canonical encoding (the snapshot format)."""
        return self._bytes

    @cached_property
    def state_hash(self) -> str:
        """SHA-256 of :meth:`to_bytes`."""
        return _canon.digest(self._bytes)

    @property
    def clock_dt(self) -> datetime | None:
        return None if self.clock is None else datetime.fromisoformat(self.clock)

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary (``aiguilleur ops state --json``)."""
        pending = [p for p, d in self.decisions.items() if d["status"] == "pending"]
        return {
            "last_seq": self.last_seq,
            "events": self.events,
            "clock": self.clock,
            "state_hash": self.state_hash,
            "grid": None if self.grid is None else self.grid.summary(),
            "telemetry": None
            if self.telemetry is None
            else {"measured": self.telemetry.measured, "readings": self.telemetry.readings},
            "assets": {a: len(h) for a, h in sorted(self.health.items())},
            "forecasts": sorted(self.forecasts),
            "fleets": None if self.fleet is None else self.fleet.summary(),
            "decisions": len(self.decisions),
            "pending": pending,
            "acknowledged_alarms": len(self.acks),
            "ignored_events": self.ignored,
        }


def empty_state() -> State:
    return State(0, 0, None, None, None, {}, {}, None, {}, {})


# -- plain encoding -----------------------------------------------------------------------------

_GEN_COLS = ("pg_mw", "qg_mvar", "vg_pu", "in_service", "pmax_mw", "pmin_mw")
_BRANCH_COLS = ("in_service", "rate_a_mva", "rate_b_mva", "rate_c_mva")


def _to_plain(s: State) -> dict[str, Any]:
    g = s.grid
    grid = None
    if g is not None:
        grid = {
            "case": g.case,
            "case_sha256": g.case_sha256,
            "case_text": g.case_text,
            "gen": {c: np.asarray(getattr(g.net.gen, c)) for c in _GEN_COLS},
            "branch": {c: np.asarray(getattr(g.net.branch, c)) for c in _BRANCH_COLS},
            "demand_p_mw": g.demand_p_mw,
            "demand_q_mvar": g.demand_q_mvar,
            "shed_mw": g.shed_mw,
            "must_take": g.must_take,
            "version": g.version,
            "operating_point": dict(g.operating_point),
            "assets": dict(g.assets),
        }
    t = s.telemetry
    tel = None
    if t is not None:
        tel = {
            "n_bus": t.n_bus,
            "n_branch": t.n_branch,
            "value": t.value,
            "sigma": t.sigma,
            "seq": t.seq,
            "readings": t.readings,
            "time_s": t.time_s,
            "meter": {str(k): v for k, v in sorted(t.meter.items())},
        }
    f = s.fleet
    # the fleet's mappings are detached plain data already (see Folder.freeze): no deep copy
    fleet = None if f is None else {x.name: getattr(f, x.name) for x in dataclasses.fields(f)}
    return {
        "format": _STATE_VERSION,
        "last_seq": s.last_seq,
        "events": s.events,
        "clock": s.clock,
        "ignored": s.ignored,
        "grid": grid,
        "telemetry": tel,
        "health": {
            a: [[c, list(st), [[k, v] for k, v in se]] for c, st, se in h]
            for a, h in s.health.items()
        },
        "forecasts": {k: dict(v) for k, v in s.forecasts.items()},
        "fleet": fleet,
        "decisions": {k: dict(v) for k, v in s.decisions.items()},
        "acks": {k: dict(v) for k, v in s.acks.items()},
    }


def state_from_bytes(data: bytes) -> State:
    """A state from its canonical encoding (a snapshot)."""
    return _folder_from_bytes(data).freeze()


# -- the fold -----------------------------------------------------------------------------------


class Folder:
    """The mutable accumulator of the fold (private to the operations centre and :func:`fold`).

    Not thread-safe: one thread applies events; :meth:`freeze` returns an
    immutable :class:`State` (cached until the next event).
    """

    def __init__(self) -> None:
        self.last_seq = 0
        self.events = 0
        self.clock: str | None = None
        self.ignored = 0
        self.base: Any = None
        self.case = ""
        self.case_sha = ""
        self.case_text: str | None = None
        self.op: dict[str, Any] = {}
        self.gen: dict[str, Any] = {}
        self.branch: dict[str, Any] = {}
        self.demand_p = np.zeros(0)
        self.demand_q = np.zeros(0)
        self.shed = np.zeros(0)
        self.must_take = np.zeros(0, dtype=bool)
        self.grid_version = 0
        self.assets: dict[str, str] = {}
        self.tel_value = np.zeros(0)
        self.tel_sigma = np.zeros(0)
        self.tel_seq = np.zeros(0, dtype=np.int64)
        self.tel_time = np.zeros(0)
        self.tel_meter: dict[int, str] = {}
        self.tel_readings = 0
        self.health: dict[
            str, list[tuple[int, tuple[float, ...], tuple[tuple[str, float], ...]]]
        ] = {}
        self.forecasts: dict[str, dict[str, Any]] = {}
        self.fleet: dict[str, Any] | None = None
        self.decisions: dict[str, dict[str, Any]] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        self._clock_dt: datetime | None = None
        self._frozen: State | None = None
        self._frozen_grid: GridState | None = None
        self._grid_dirty = True
        self._dirty = True

    # -- thaw / freeze -------------------------------------------------------------
    @classmethod
    def from_state(cls, s: State) -> Folder:
        """A writable accumulator holding ``s`` (detached from it)."""
        return _folder_from_bytes(s.to_bytes())

    @property
    def network(self) -> Any:
        """The current network (built on demand; ``None`` before a grid is initialised)."""
        g = self._grid()
        return None if g is None else g.net

    def _grid(self) -> GridState | None:
        if self.base is None:
            return None
        if self._frozen_grid is not None and not self._grid_dirty:
            return self._frozen_grid
        base = self.base
        pd = self.demand_p - self.shed
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.where(
                self.demand_p > 0, pd / np.where(self.demand_p > 0, self.demand_p, 1.0), 1.0
            )
        qd = self.demand_q * keep
        net = base.replace(
            bus=dataclasses.replace(base.bus, pd_mw=pd, qd_mvar=qd),
            gen=dataclasses.replace(base.gen, **{c: self.gen[c] for c in _GEN_COLS}),
            branch=dataclasses.replace(base.branch, **{c: self.branch[c] for c in _BRANCH_COLS}),
        )
        self._frozen_grid = GridState(
            case=self.case,
            case_sha256=self.case_sha,
            case_text=self.case_text,
            net=net,
            demand_p_mw=_ro(self.demand_p),
            demand_q_mvar=_ro(self.demand_q),
            shed_mw=_ro(self.shed),
            must_take=_ro(self.must_take, bool),
            version=self.grid_version,
            operating_point=dict(self.op),
            assets=dict(sorted(self.assets.items())),
        )
        self._grid_dirty = False
        return self._frozen_grid

    def freeze(self) -> State:
        if self._frozen is not None and not self._dirty:
            return self._frozen
        tel = None
        if self.base is not None and self.tel_value.size:
            tel = TelemetryState(
                self.base.n_bus,
                self.base.n_branch,
                _ro(self.tel_value),
                _ro(self.tel_sigma),
                _ro(self.tel_seq, np.int64),
                self.tel_readings,
                _ro(self.tel_time),
                dict(self.tel_meter),
            )
        fl = None
        if self.fleet is not None:
            x = self.fleet
            fl = FleetState(
                roads=x["roads"],
                roads_sha256=x["roads_sha256"],
                shift_start=x["shift_start"],
                shift_s=int(x["shift_s"]),
                sites=_deep(x["sites"]),
                fleets=_deep(x["fleets"]),
                orders=_deep(x["orders"]),
                vehicles=_deep(x["vehicles"]),
                depots_down=tuple(sorted(x["depots_down"])),
                closures=_deep(x["closures"]),
                plans=_deep(x["plans"]),
                supply=dict(sorted(x["supply"].items())),
            )
        self._frozen = State(
            last_seq=self.last_seq,
            events=self.events,
            clock=self.clock,
            grid=self._grid(),
            telemetry=tel,
            health={a: tuple(h) for a, h in sorted(self.health.items())},
            forecasts=_deep(self.forecasts),
            fleet=fl,
            decisions=_deep(self.decisions),
            acks=_deep(self.acks),
            ignored=self.ignored,
        )
        self._dirty = False
        return self._frozen

    # -- applying events -------------------------------------------------------------
    def apply(self, event: Any, seq: int) -> None:
        """Fold one validated event stored at ``seq``."""
        self._dirty = True
        self.last_seq = seq
        self.events += 1
        when = event.occurred_at
        if self._clock_dt is None or when > self._clock_dt:
            self._clock_dt = when
            self.clock = when.isoformat()
        handler = getattr(self, "_on_" + event.type, None)
        if handler is None:  # pragma: no cover - every type has a handler (tested)
            self.ignored += 1
            return
        if handler(event, seq) is False:
            self.ignored += 1

    # grid ------------------------------------------------------------------------
    def _init_grid(
        self, base: Any, case: str, sha: str, text: str | None, op: Mapping[str, Any]
    ) -> None:
        self.base = base
        self.case, self.case_sha, self.case_text = case, sha, text
        self.op = dict(op)
        self.gen = {c: np.array(getattr(base.gen, c)) for c in _GEN_COLS}
        self.branch = {c: np.array(getattr(base.branch, c)) for c in _BRANCH_COLS}
        self.demand_p = np.array(base.bus.pd_mw, dtype=np.float64)
        self.demand_q = np.array(base.bus.qd_mvar, dtype=np.float64)
        self.shed = np.zeros(base.n_bus)
        self.must_take = np.zeros(base.n_gen, dtype=bool)
        n_slots = 3 * base.n_bus + 4 * base.n_branch
        self.tel_value = np.full(n_slots, np.nan)
        self.tel_sigma = np.full(n_slots, np.nan)
        self.tel_seq = np.zeros(n_slots, dtype=np.int64)
        self.tel_time = np.full(n_slots, np.nan)
        self.tel_meter = {}
        self.tel_readings = 0
        self.grid_version += 1
        self._grid_dirty = True

    def _changed(self) -> None:
        self.grid_version += 1
        self._grid_dirty = True

    def _row(self, ref: str) -> int | None:
        if self.base is None:
            return None
        try:
            return ev.element_index(self.base).row(ref)[1]
        except ValidationError:
            return None

    def _rebalance(self, delta_mw: float, exclude: int = -1) -> None:
        """Units in service (not must-take) absorb ``delta_mw`` by headroom (AGC)."""
        if abs(delta_mw) < _EPS:
            return
        g = self.gen
        on = (g["in_service"] == 1) & ~self.must_take
        if 0 <= exclude < on.size:
            on[exclude] = False
        room = (g["pmax_mw"] - g["pg_mw"]) if delta_mw > 0 else (g["pg_mw"] - g["pmin_mw"])
        room = np.where(on, np.maximum(room, 0.0), 0.0)
        total = float(room.sum())
        if total <= 0:
            return
        share = min(1.0, abs(delta_mw) / total)
        g["pg_mw"] = g["pg_mw"] + np.sign(delta_mw) * room * share

    def _net_p(self) -> float:
        return float(np.sum(self.demand_p - self.shed))

    def _on_grid_initialised(self, e: ev.GridInitialised, seq: int) -> bool:
        base = case_network(e.case, e.case_sha256, e.case_text)
        n = base.n_gen
        if len(e.pg_mw) != n or len(e.vg_pu) != n or len(e.qg_mvar or [0.0] * n) != n:
            return False  # refused before the log by OpsCentre.check (kept total here)
        self._init_grid(base, e.case, e.case_sha256, e.case_text, e.operating_point)
        self.gen["pg_mw"] = np.array(e.pg_mw, dtype=np.float64)
        self.gen["vg_pu"] = np.array(e.vg_pu, dtype=np.float64)
        if e.qg_mvar is not None:
            self.gen["qg_mvar"] = np.array(e.qg_mvar, dtype=np.float64)
        self.assets = dict(e.assets)
        return True

    def _on_branch_trip(self, e: ev.BranchTrip, seq: int) -> bool:
        return self._branch_status(e.branch, 0)

    def _on_branch_restore(self, e: ev.BranchRestore, seq: int) -> bool:
        return self._branch_status(e.branch, 1)

    def _branch_status(self, ref: str, st: int) -> bool:
        k = self._row(ref)
        if k is None or self.branch["in_service"][k] == st:
            return False
        self.branch["in_service"][k] = st
        self._changed()
        return True

    def _on_gen_trip(self, e: ev.GenTrip, seq: int) -> bool:
        k = self._row(e.gen)
        if k is None or self.gen["in_service"][k] == 0:
            return False
        lost = float(self.gen["pg_mw"][k])
        self.gen["in_service"][k] = 0
        self.gen["pg_mw"][k] = 0.0
        self._rebalance(lost, exclude=k)
        self._changed()
        return True

    def _on_gen_restore(self, e: ev.GenRestore, seq: int) -> bool:
        k = self._row(e.gen)
        if k is None or self.gen["in_service"][k] == 1:
            return False
        self.gen["in_service"][k] = 1
        p = max(float(self.gen["pmin_mw"][k]), 0.0)
        self.gen["pg_mw"][k] = p
        self._rebalance(-p, exclude=k)
        self._changed()
        return True

    def _on_gen_derate(self, e: ev.GenDerate, seq: int) -> bool:
        k = self._row(e.gen)
        if k is None:
            return False
        self.gen["pmax_mw"][k] = e.pmax_mw
        if self.gen["pmin_mw"][k] > e.pmax_mw:
            self.gen["pmin_mw"][k] = e.pmax_mw
        excess = float(self.gen["pg_mw"][k]) - e.pmax_mw
        if excess > 0 and self.gen["in_service"][k] == 1:
            self.gen["pg_mw"][k] = e.pmax_mw
            self._rebalance(excess, exclude=k)
        self._changed()
        return True

    def _set_demand(self, rows: IntArray, p: FloatArray, q: FloatArray) -> None:
        before = self._net_p()
        self.demand_p[rows] = p
        self.demand_q[rows] = q
        self.shed[rows] = np.clip(self.shed[rows], 0.0, np.maximum(p, 0.0))
        self._rebalance(self._net_p() - before)
        self._changed()

    def _on_load_change(self, e: ev.LoadChange, seq: int) -> bool:
        k = self._row(e.bus)
        if k is None:
            return False
        p0, q0 = float(self.demand_p[k]), float(self.demand_q[k])
        q = e.q_mvar if e.q_mvar is not None else (q0 * e.p_mw / p0 if p0 != 0 else q0)
        self._set_demand(np.array([k]), np.array([e.p_mw]), np.array([q]))
        return True

    def _on_load_scale(self, e: ev.LoadScale, seq: int) -> bool:
        if self.base is None:
            return False
        if e.buses is not None:
            found = {self._row(b) for b in e.buses}
            rows = np.array(sorted(r for r in found if r is not None), dtype=np.int64)
        elif e.area is not None:
            rows = np.flatnonzero(self.base.bus.area == e.area)
        else:
            rows = np.arange(self.base.n_bus)
        if rows.size == 0:
            return False
        self._set_demand(rows, self.demand_p[rows] * e.factor, self.demand_q[rows] * e.factor)
        return True

    def _on_renewable_update(self, e: ev.RenewableUpdate, seq: int) -> bool:
        k = self._row(e.gen)
        if k is None:
            return False
        self.must_take[k] = True
        self.gen["pmax_mw"][k] = e.available_mw
        self.gen["pmin_mw"][k] = min(float(self.gen["pmin_mw"][k]), e.available_mw)
        if self.gen["in_service"][k] == 1:
            old = float(self.gen["pg_mw"][k])
            self.gen["pg_mw"][k] = e.available_mw
            self._rebalance(old - e.available_mw, exclude=k)
        self._changed()
        return True

    def _on_rating_change(self, e: ev.RatingChange, seq: int) -> bool:
        k = self._row(e.branch)
        if k is None:
            return False
        self.branch["rate_a_mva"][k] = e.rate_a_mva
        if e.rate_b_mva is not None:
            self.branch["rate_b_mva"][k] = e.rate_b_mva
        if e.rate_c_mva is not None:
            self.branch["rate_c_mva"][k] = e.rate_c_mva
        self._changed()
        return True

    # telemetry, forecasts, health ---------------------------------------------------
    def _on_telemetry(self, e: ev.Telemetry, seq: int) -> bool:
        if self.base is None:
            return False
        nb, nl = self.base.n_bus, self.base.n_branch
        slots, vals, sig, meters = [], [], [], []
        for r in e.readings:
            row = self._row(r.element)
            if row is None:
                continue
            if r.quantity in BUS_QUANTITIES:
                s = BUS_QUANTITIES.index(r.quantity) * nb + row
            else:
                s = 3 * nb + BRANCH_QUANTITIES.index(r.quantity) * nl + row
            slots.append(s)
            vals.append(r.value)
            sig.append(np.nan if r.sigma is None else r.sigma)
            meters.append(r.meter)
        if not slots:
            return False
        self.tel_readings += len(slots)
        taken = e.occurred_at.timestamp()
        idx = np.array(slots, dtype=np.int64)
        # a reading taken before the slot's latest one (a late redelivery) does not replace it
        newer = ~(self.tel_time[idx] > taken)
        if not np.any(newer):
            return True
        if not np.all(newer):
            idx = idx[newer]
            vals = [v for v, k in zip(vals, newer.tolist(), strict=True) if k]
            sig = [v for v, k in zip(sig, newer.tolist(), strict=True) if k]
            meters = [v for v, k in zip(meters, newer.tolist(), strict=True) if k]
        self.tel_value[idx] = vals  # the last reading of a slot in the batch wins
        self.tel_sigma[idx] = sig
        self.tel_seq[idx] = seq
        self.tel_time[idx] = taken
        for s, m in zip(idx.tolist(), meters, strict=True):
            if m is None:
                self.tel_meter.pop(s, None)
            else:
                self.tel_meter[s] = m
        return True

    def _on_forecast_issued(self, e: ev.ForecastIssued, seq: int) -> bool:
        doc = e.model_dump(mode="json", exclude={"id", "source", "type"})
        doc["seq"] = seq
        self.forecasts[e.quantity] = doc
        return True

    def _on_health_reading(self, e: ev.HealthReading, seq: int) -> bool:
        h = self.health.setdefault(e.asset, [])
        if h and e.cycle <= h[-1][0]:
            return False  # a repeated or late cycle: the history keeps its order
        h.append(
            (
                e.cycle,
                tuple(float(x) for x in e.settings),
                tuple(sorted((str(k), float(v)) for k, v in e.sensors.items())),
            )
        )
        return True

    def _on_asset_registered(self, e: ev.AssetRegistered, seq: int) -> bool:
        if self._row(e.element) is None:
            return False
        self.assets[e.asset] = e.element
        self._grid_dirty = True
        return True

    # logistics -----------------------------------------------------------------------
    def _on_fleet_initialised(self, e: ev.FleetInitialised, seq: int) -> bool:
        orders: dict[str, dict[str, Any]] = {}
        fleets: dict[str, dict[str, Any]] = {}
        plans: dict[str, dict[str, Any]] = {}
        vehicles: dict[str, dict[str, Any]] = {}
        for f in e.fleets:
            fleets[f.fleet] = {
                "depot": f.depot,
                "vehicle_type": f.vehicle_type,
                "vehicles": f.vehicles,
                "capacity": f.capacity,
                "unit": f.unit,
            }
            for o in f.orders:
                orders[o.order] = {**o.model_dump(mode="json"), "fleet": f.fleet, "status": "open"}
            for k in range(f.vehicles):
                vehicles[f"{f.vehicle_type}#{k}"] = {"fleet": f.fleet, "broken": False}
            plans[f.fleet] = {
                "at_s": 0,
                "routes": [r.model_dump(mode="json") for r in f.routes],
                "dropped": dict(f.dropped),
                "proposal": None,
                "seq": seq,
                "basis": None,
            }
        self.fleet = {
            "roads": e.roads,
            "roads_sha256": e.roads_sha256,
            "shift_start": e.shift_start.isoformat(),
            "shift_s": e.shift_s,
            "sites": {s.site: s.model_dump(mode="json") for s in e.sites},
            "fleets": fleets,
            "orders": orders,
            "vehicles": vehicles,
            "depots_down": [],
            "closures": {},
            "plans": plans,
            "supply": dict(e.supply),
        }
        for p in plans.values():
            p["basis"] = self._basis()
        return True

    def _basis(self) -> dict[str, Any]:
        """What a plan was made for: closures, depots, vehicles and orders at adoption."""
        f = self.fleet
        assert f is not None
        return {
            "closures": {k: dict(v) for k, v in f["closures"].items()},
            "depots_down": sorted(f["depots_down"]),
            "broken": sorted(v for v, r in f["vehicles"].items() if r.get("broken")),
            "orders": {k: dict(v) for k, v in f["orders"].items() if v["status"] == "open"},
            "supply": dict(f["supply"]),
        }

    def _area_event(self, e: Any, kind: str, factor: float) -> bool:
        if self.fleet is None:
            return False
        self.fleet["closures"][e.closure] = {
            "kind": kind,
            "area": e.area.model_dump(mode="json"),
            "factor": factor,
            "reason": e.reason,
            "since": e.occurred_at.isoformat(),
        }
        return True

    def _on_road_closure(self, e: ev.RoadClosure, seq: int) -> bool:
        return self._area_event(e, "closure", 0.0)

    def _on_road_slowdown(self, e: ev.RoadSlowdown, seq: int) -> bool:
        return self._area_event(e, "slowdown", e.factor)

    def _on_road_reopening(self, e: ev.RoadReopening, seq: int) -> bool:
        if self.fleet is None or e.closure not in self.fleet["closures"]:
            return False
        del self.fleet["closures"][e.closure]
        return True

    def _on_depot_outage(self, e: ev.DepotOutage, seq: int) -> bool:
        f = self.fleet
        if f is None or e.depot not in f["sites"]:
            return False
        if e.depot not in f["depots_down"]:
            f["depots_down"].append(e.depot)
            f["depots_down"].sort()
        if e.depot in f["supply"]:
            f["supply"][e.depot] = max(0.0, float(f["supply"][e.depot]) - e.stock_lost)
        return True

    def _on_depot_restored(self, e: ev.DepotRestored, seq: int) -> bool:
        f = self.fleet
        if f is None or e.depot not in f["depots_down"]:
            return False
        f["depots_down"].remove(e.depot)
        return True

    def _on_vehicle_position(self, e: ev.VehiclePosition, seq: int) -> bool:
        f = self.fleet
        if f is None or e.vehicle not in f["vehicles"]:
            return False
        f["vehicles"][e.vehicle] = {
            **f["vehicles"][e.vehicle],
            "lat": e.lat,
            "lon": e.lon,
            "at": e.occurred_at.isoformat(),
        }
        return True

    def _on_vehicle_breakdown(self, e: ev.VehicleBreakdown, seq: int) -> bool:
        f = self.fleet
        if f is None or e.vehicle not in f["vehicles"] or f["vehicles"][e.vehicle]["broken"]:
            return False
        f["vehicles"][e.vehicle] = {
            **f["vehicles"][e.vehicle],
            "broken": True,
            "broken_at": e.occurred_at.isoformat(),
        }
        return True

    def _on_order_created(self, e: ev.OrderCreated, seq: int) -> bool:
        f = self.fleet
        if f is None or e.fleet not in f["fleets"] or e.order in f["orders"]:
            return False
        start = datetime.fromisoformat(f["shift_start"])
        shift_end = int(f["shift_s"])

        def secs(t: datetime | None, default: int) -> int:
            return (
                default if t is None else min(shift_end, max(0, int((t - start).total_seconds())))
            )

        now = secs(e.occurred_at, 0)
        site = f"site:{e.order}"
        f["sites"][site] = {
            "site": site,
            "kind": "order",
            "name": e.name,
            "lat": e.lat,
            "lon": e.lon,
            "node": -1,  # snapped by the responder on the road graph
        }
        f["orders"][e.order] = {
            "order": e.order,
            "site": site,
            "quantity": e.quantity,
            "priority": e.priority,
            "window_open_s": secs(e.window_open, now),
            "window_close_s": max(secs(e.window_close, shift_end), secs(e.window_open, now)),
            "service_s": e.service_s,
            "required": e.required,
            "penalty": 0 if e.required else 10_000 * (10 - e.priority),
            "fleet": e.fleet,
            "status": "open",
            "created_s": now,
        }
        return True

    def _on_order_cancelled(self, e: ev.OrderCancelled, seq: int) -> bool:
        f = self.fleet
        if f is None or e.order not in f["orders"] or f["orders"][e.order]["status"] != "open":
            return False
        f["orders"][e.order] = {**f["orders"][e.order], "status": "cancelled"}
        return True

    def _on_order_urgent(self, e: ev.OrderUrgent, seq: int) -> bool:
        f = self.fleet
        if f is None or e.order not in f["orders"] or f["orders"][e.order]["status"] != "open":
            return False
        o = dict(f["orders"][e.order])
        o["priority"] = min(int(o["priority"]), e.priority)
        o["required"] = True
        o["penalty"] = 0
        o["urgent_s"] = f and max(
            0, int((e.occurred_at - datetime.fromisoformat(f["shift_start"])).total_seconds())
        )
        if e.window_close is not None:
            close = int((e.window_close - datetime.fromisoformat(f["shift_start"])).total_seconds())
            o["window_close_s"] = max(int(o["window_open_s"]), min(int(f["shift_s"]), close))
        f["orders"][e.order] = o
        return True

    # operator --------------------------------------------------------------------------
    def _apply_actions(self, actions: list[Any], proposal: str, seq: int) -> None:
        grid_changed = False
        for a in actions:
            if isinstance(a, ev.SetDispatch):
                k = self._row(a.gen)
                if k is not None:
                    self.gen["pg_mw"][k] = a.pg_mw
                    grid_changed = True
            elif isinstance(a, ev.SetVoltage):
                k = self._row(a.gen)
                if k is not None:
                    self.gen["vg_pu"][k] = a.vg_pu
                    grid_changed = True
            elif isinstance(a, ev.SetReactive):
                k = self._row(a.gen)
                if k is not None:
                    self.gen["qg_mvar"][k] = a.qg_mvar
                    grid_changed = True
            elif isinstance(a, ev.ShedLoad):
                k = self._row(a.bus)
                if k is not None:
                    self.shed[k] = min(a.shed_mw, max(float(self.demand_p[k]), 0.0))
                    grid_changed = True
            elif isinstance(a, ev.TripGen):
                k = self._row(a.gen)
                if k is not None:
                    self.gen["in_service"][k] = 0
                    self.gen["pg_mw"][k] = 0.0
                    grid_changed = True
            elif isinstance(a, ev.AdoptRoutes) and self.fleet is not None:
                f = self.fleet
                if a.fleet not in f["fleets"]:
                    continue
                for o, q in a.quantities.items():
                    if o in f["orders"]:
                        f["orders"][o] = {**f["orders"][o], "quantity": q}
                f["plans"][a.fleet] = {
                    "at_s": a.at_s,
                    "routes": [r.model_dump(mode="json") for r in a.routes],
                    "dropped": dict(a.dropped),
                    "proposal": proposal,
                    "seq": seq,
                    "basis": self._basis(),
                }
        if grid_changed:
            self._changed()

    def _decide(self, proposal: str, status: str, e: Any, seq: int) -> bool:
        prev = self.decisions.get(proposal)
        if prev is not None and prev["status"] != "pending":
            return False  # decided once: a second decision changes nothing
        self.decisions[proposal] = {"status": status, "seq": seq, "operator": e.operator}
        return True

    def _on_proposal_approved(self, e: ev.ProposalApproved, seq: int) -> bool:
        if not self._decide(e.proposal, "approved", e, seq):
            return False
        self._apply_actions(list(e.actions), e.proposal, seq)
        return True

    def _on_proposal_amended(self, e: ev.ProposalAmended, seq: int) -> bool:
        if not self._decide(e.proposal, "amended", e, seq):
            return False
        self._apply_actions(list(e.actions), e.proposal, seq)
        return True

    def _on_proposal_rejected(self, e: ev.ProposalRejected, seq: int) -> bool:
        return self._decide(e.proposal, "rejected", e, seq)

    def _on_alarm_acknowledged(self, e: ev.AlarmAcknowledged, seq: int) -> bool:
        if e.alarm in self.acks:
            return False
        self.acks[e.alarm] = {"seq": seq, "operator": e.operator}
        return True


def _deep(x: Any) -> Any:
    """A detached copy of nested plain dicts and lists (a frozen state never aliases the fold)."""
    if isinstance(x, dict):
        return {k: _deep(v) for k, v in sorted(x.items())}
    if isinstance(x, list):
        return [_deep(v) for v in x]
    return x


def _folder_from_bytes(raw: bytes) -> Folder:
    """A fold accumulator from canonical bytes: one code path for snapshots and thawing."""
    data = _canon.loads(raw)
    if not isinstance(data, dict) or data.get("format") != _STATE_VERSION:
        raise ValidationError("snapshot: unknown state format")
    f = Folder()
    f.last_seq, f.events, f.clock, f.ignored = (
        int(data["last_seq"]),
        int(data["events"]),
        data["clock"],
        int(data["ignored"]),
    )
    f._clock_dt = None if f.clock is None else datetime.fromisoformat(f.clock)
    g = data["grid"]
    if g is not None:
        base = case_network(g["case"], g["case_sha256"], g["case_text"])
        f._init_grid(base, g["case"], g["case_sha256"], g["case_text"], g["operating_point"])
        for c in _GEN_COLS:
            f.gen[c] = np.array(g["gen"][c], dtype=f.gen[c].dtype)
        for c in _BRANCH_COLS:
            f.branch[c] = np.array(g["branch"][c], dtype=f.branch[c].dtype)
        f.demand_p = np.array(g["demand_p_mw"], dtype=np.float64)
        f.demand_q = np.array(g["demand_q_mvar"], dtype=np.float64)
        f.shed = np.array(g["shed_mw"], dtype=np.float64)
        f.must_take = np.array(g["must_take"], dtype=bool)
        f.grid_version = int(g["version"])
        f.assets = dict(g["assets"])
    t = data["telemetry"]
    if t is not None:
        f.tel_value = np.array(t["value"], dtype=np.float64)
        f.tel_sigma = np.array(t["sigma"], dtype=np.float64)
        f.tel_seq = np.array(t["seq"], dtype=np.int64)
        f.tel_readings = int(t["readings"])
        # snapshots written before readings carried their time and meter: unknown (NaN, none)
        tt = t.get("time_s")
        f.tel_time = (
            np.full(f.tel_value.size, np.nan) if tt is None else np.array(tt, dtype=np.float64)
        )
        f.tel_meter = {int(k): str(v) for k, v in dict(t.get("meter") or {}).items()}
    f.health = {
        a: [
            (int(c), tuple(float(x) for x in st), tuple((str(k), float(v)) for k, v in se))
            for c, st, se in h
        ]
        for a, h in data["health"].items()
    }
    f.forecasts = {k: dict(v) for k, v in data["forecasts"].items()}
    if data["fleet"] is not None:
        fl = dict(data["fleet"])
        fl["depots_down"] = list(fl["depots_down"])
        fl["supply"] = {k: float(v) for k, v in fl["supply"].items()}
        f.fleet = fl
    f.decisions = {k: dict(v) for k, v in data["decisions"].items()}
    f.acks = {k: dict(v) for k, v in data["acks"].items()}
    f._dirty = True
    f._grid_dirty = True
    return f


def fold(state: State, event: Any, seq: int) -> State:
    """The state after ``event`` (stored at ``seq``): a pure function of its inputs."""
    f = Folder.from_state(state)
    f.apply(event, seq)
    return f.freeze()


def fold_all(events: Any, state: State | None = None) -> State:
    """Fold ``(seq, event)`` pairs in order, from ``state`` (default: the empty state)."""
    f = Folder() if state is None else Folder.from_state(state)
    for seq, e in events:
        f.apply(e, seq)
    return f.freeze()
