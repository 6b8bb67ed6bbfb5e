"""Fleet routing with time windows and re-planning mid-execution, on PyVRP.

* :class:`RoutingProblem`: integer travel matrices, depots, orders (demand,
  service time, time window, required or optional at a penalty, priority) and
  a heterogeneous fleet (count, capacity, depots, shift window and length,
  fixed cost, cost per distance and per time). Read from CVRPLIB ``.vrp``,
  Solomon ``.txt`` (:func:`read_vrplib`) or aiguilleur's JSON/CSV order format
  (:func:`read_problem_json`; :func:`read_instance` picks by file).
* :func:`solve`: PyVRP's iterated local search on every core (diversified
  parallel searches with an exchange of the best solution), within a wall
  time; the answer is re-checked by :func:`check_plan`, an independent
  checker that recomputes loads, schedules, shifts, coverage and cost.
* :func:`replan`: re-planning in the middle of execution after road
  closures or slowdowns (:class:`MatrixChange`), a depot outage
  (:class:`DepotDown`), a breakdown (:class:`VehicleBreakdown`) or urgent
  orders (:class:`UrgentOrders`), within a deadline, never worse than
  repairing the current plan; reports the change per vehicle and the delay
  per order. :func:`read_plan`, :func:`write_plan` and :func:`read_event` are
  the ``PLAN.json`` / ``EVENT.json`` formats of ``aiguilleur routes replan``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.logistics._replan import (
    DepotDown,
    Event,
    MatrixChange,
    ReplanResult,
    UrgentOrders,
    VehicleBreakdown,
    VehicleChange,
    replan,
    replan_limits,
)
from aiguilleur.logistics._vrp_check import CheckReport, RouteSchedule, check_plan, route_schedule
from aiguilleur.logistics._vrp_io import (
    MAX_LOCATIONS,
    MAX_MONEY,
    MAX_PRIORITY,
    MAX_QUANTITY,
    MAX_TIME_S,
    _as_path,
    _id_of,
    _int,
    _load_json,
    _real,
    read_instance,
    read_plan,
    read_problem_json,
    read_vrplib,
    write_plan,
)
from aiguilleur.logistics._vrp_problem import (
    UNBOUNDED,
    PlannedRoute,
    RoutingProblem,
    RoutingSolution,
)
from aiguilleur.logistics._vrp_solve import SolveSettings, solve, unservable_orders

__all__ = [
    "CheckReport",
    "DepotDown",
    "Event",
    "MatrixChange",
    "PlannedRoute",
    "ReplanResult",
    "RouteSchedule",
    "RoutingProblem",
    "RoutingSolution",
    "SolveSettings",
    "UrgentOrders",
    "VehicleBreakdown",
    "VehicleChange",
    "check_plan",
    "read_event",
    "read_instance",
    "read_plan",
    "read_problem_json",
    "read_vrplib",
    "replan",
    "replan_limits",
    "route_schedule",
    "slow_arcs",
    "solve",
    "unservable_orders",
    "write_plan",
]


def slow_arcs(
    problem: RoutingProblem,
    arcs: np.ndarray[Any, Any],
    factor: float,
    *,
    closed: bool = False,
    reason: str = "",
) -> MatrixChange:
    """Travel matrices with the given location-to-location arcs slowed or closed.

    ``arcs`` is an ``(m, 2)`` array of (from, to) location indices. A slowed arc
    takes ``factor`` times longer (distance unchanged). A closed arc is
    replaced by the best one-stop detour through another location (the
    matrices hold shortest paths already; for street-level closures use the
    roads module's ``update_matrices``).
    """
    a = np.asarray(arcs, dtype=np.int64).reshape(-1, 2)
    n = problem.n_locations
    if len(a) and (a.min() < 0 or a.max() >= n):
        raise ValidationError(f"arcs: location outside 0..{n - 1}", "event")
    if not factor >= 1:
        raise ValidationError(f"factor must be at least 1, got {factor}", "event")
    dur = problem.duration_s.copy()
    dist = problem.distance_m.copy()
    i, j = a[:, 0], a[:, 1]
    if closed:
        via = dur[i, :] + dur[:, j].T  # (m, n): i -> k -> j
        via[np.arange(len(a)), i] = np.iinfo(np.int64).max // 4
        via[np.arange(len(a)), j] = np.iinfo(np.int64).max // 4
        k = via.argmin(axis=1)
        dur[i, j] = np.maximum(dur[i, j], via[np.arange(len(a)), k])
        dist[i, j] = np.maximum(dist[i, j], dist[i, k] + dist[k, j])
    else:
        dur[i, j] = np.rint(dur[i, j] * factor).astype(np.int64)
    return MatrixChange(
        dur, dist, reason or ("road closure" if closed else f"slowdown x{factor:g}")
    )


def read_event(path: str | Path, problem: RoutingProblem) -> list[Event]:
    """Read ``EVENT.json``: one event object or ``{"events": [...]}``.

    Event objects (``type`` first)::

        {"type": "slowdown", "factor": 3, "arcs": [[4, 7], [7, 4]]}
        {"type": "slowdown", "factor": 3, "locations": [4, 7]}   # every arc touching them
        {"type": "closure", "arcs": [[4, 7]]}
        {"type": "matrices", "duration_s": [[...]], "distance_m": [[...]]}
        {"type": "depot_outage", "depot": "hq"}
        {"type": "breakdown", "vehicle": "tanker#1"}
        {"type": "urgent_orders", "orders": [{"id": "u1", "location": 9, "demand": 300,
                                              "service_s": 600, "window_s": [36000, 39600],
                                              "priority": 3, "penalty": null}]}

    Penalties of urgent orders are in the problem's reported cost unit.
    """
    path = _as_path(path)
    if not isinstance(problem, RoutingProblem):
        raise ValidationError(f"problem: expected a RoutingProblem, got {type(problem).__name__}")
    where = str(path)
    doc = _load_json(path)
    items = doc.get("events", [doc]) if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not items:
        raise CaseFormatError("expected an event object or {'events': [...]}", where)
    out: list[Event] = []
    for j, ev in enumerate(items):
        w = f"events[{j}]"
        try:
            out.append(_event(ev, problem, w))
        except CaseFormatError as e:
            raise CaseFormatError(f"{w}: {e.reason}", where) from None
        except (ValidationError, KeyError, TypeError, ValueError, OverflowError) as e:
            msg = str(e) if isinstance(e, ValidationError) else f"bad or missing field ({e})"
            raise CaseFormatError(f"{w}: {msg[:160]}", where) from None
    return out


def _indices(v: Any, field: str, n: int, width: int | None = None) -> np.ndarray[Any, Any]:
    """Whole location indices in ``0..n-1`` (``[[4, 7]]`` arcs with ``width=2``)."""
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{field!r} must hold location indices") from None
    if width is not None and (a.ndim != 2 or a.shape[1] != width):
        raise ValidationError(f"{field!r} must be a list of [from, to] pairs")
    if width is None and a.ndim != 1:
        raise ValidationError(f"{field!r} must be a list of location indices")
    bad = ~(np.isfinite(a) & (a == np.round(a)) & (a >= 0) & (a < n))
    if bad.any():
        x = float(a[np.nonzero(bad)][0])
        raise ValidationError(f"{field!r}: {x:g} is not a location index in 0..{n - 1}")
    return a.astype(np.int64)


def _matrix(v: Any, field: str, n: int) -> np.ndarray[Any, Any]:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{field!r} must be a square matrix of numbers") from None
    if a.shape != (n, n):
        raise ValidationError(f"{field!r} must be {n} x {n}, got shape {a.shape}")
    if not (np.isfinite(a) & (a >= 0) & (a <= MAX_TIME_S)).all():
        raise ValidationError(f"{field!r}: every value must be a number in 0..{MAX_TIME_S:,}")
    return np.rint(a).astype(np.int64)


def _event(ev: Any, p: RoutingProblem, w: str) -> Event:
    if not isinstance(ev, dict) or "type" not in ev:
        raise ValidationError("needs a 'type'")
    kind = ev["type"]
    reason = ev.get("reason", "")
    if not isinstance(reason, str):
        raise ValidationError("'reason' must be text")
    reason = reason[:200]
    if kind in ("slowdown", "closure"):
        if "arcs" in ev:
            arcs = _indices(ev["arcs"], "arcs", p.n_locations, 2)
        elif "locations" in ev:
            locs = _indices(ev["locations"], "locations", p.n_locations)
            others = np.arange(p.n_locations)
            arcs = np.concatenate(
                [
                    np.stack([np.repeat(locs, p.n_locations), np.tile(others, len(locs))], 1),
                    np.stack([np.tile(others, len(locs)), np.repeat(locs, p.n_locations)], 1),
                ]
            )
            arcs = arcs[arcs[:, 0] != arcs[:, 1]]
        else:
            raise ValidationError("needs 'arcs' or 'locations'")
        factor = _real(ev, "factor", str(kind), "", 1.0 if kind == "closure" else 2.0, 1.0, 1000.0)
        return slow_arcs(p, arcs, factor, closed=kind == "closure", reason=reason)
    if kind == "matrices":
        return MatrixChange(
            _matrix(ev["duration_s"], "duration_s", p.n_locations),
            _matrix(ev["distance_m"], "distance_m", p.n_locations),
            reason or "new travel matrices",
        )
    if kind == "depot_outage":
        d = ev["depot"]
        if isinstance(d, str | int) and not isinstance(d, bool) and str(d) in p.depot_id:
            return DepotDown(p.depot_id.index(str(d)), reason or "depot outage")
        raise ValidationError(f"unknown depot {d!r}")
    if kind == "breakdown":
        v = ev["vehicle"]
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise ValidationError("'vehicle' must be a vehicle name")
        return VehicleBreakdown(str(v), reason or "vehicle broke down")
    if kind == "urgent_orders":
        recs = ev["orders"]
        if not isinstance(recs, list) or not recs:
            raise ValidationError("'orders' must be a non-empty list")
        ids, loc, q, s, e, lt, prio, pen = [], [], [], [], [], [], [], []
        if len(recs) > MAX_LOCATIONS:
            raise ValidationError(f"at most {MAX_LOCATIONS:,} urgent orders")
        for i, r in enumerate(recs):
            if not isinstance(r, dict):
                raise ValidationError(f"orders[{i}]: expected an object")
            oid = _id_of(r.get("id"), f"orders[{i}]", "")
            wo = f"orders[{i}] {oid!r}"
            if oid in p.order_id or oid in ids:
                raise ValidationError(f"orders[{i}]: order id {oid!r} already exists")
            location = _int(r, "location", wo, "", None, p.n_locations - 1)
            win = r.get("window_s", [0, None])
            if not isinstance(win, list) or len(win) != 2:
                raise ValidationError(f"{wo}: window_s must be [open, close]")
            ids.append(oid)
            loc.append(location)
            q.append(_int(r, "demand", wo, "", 0, MAX_QUANTITY))
            s.append(_int(r, "service_s", wo, "", 0, MAX_TIME_S))
            e.append(_int({"window_s[0]": win[0]}, "window_s[0]", wo, "", 0, MAX_TIME_S))
            lt.append(_int({"window_s[1]": win[1]}, "window_s[1]", wo, "", UNBOUNDED, MAX_TIME_S))
            prio.append(_int(r, "priority", wo, "", 0, MAX_PRIORITY))
            pv = r.get("penalty")
            if pv is not None:
                pv = _real(r, "penalty", wo, "", 0.0, 0.0, MAX_MONEY)
            pen.append(None if pv is None else round(pv / p.cost_unit))
            if lt[-1] < e[-1]:
                raise ValidationError(f"{wo}: time window closes before it opens")
        return UrgentOrders(
            tuple(ids),
            np.array(loc),
            np.array(q),
            np.array(e),
            np.array(lt),
            np.array(s),
            np.array(prio),
            tuple(pen),
        )
    raise ValidationError(
        f"unknown type {kind!r} "
        "(slowdown, closure, matrices, depot_outage, breakdown, urgent_orders)"
    )
