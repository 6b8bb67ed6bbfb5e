"""JSON-safe views of the operations centre for consoles: the grid drawn and loaded, the
contingency ranking, forecasts, the fleets on the roads, the state with its alarm counts.

Every function takes the centre (or a frozen state) and returns plain JSON
values; the API serves them as they are and the CLI can print them. Each view
says what it was computed from: ``seq`` (the log position of the state),
``as_of`` (the state's clock, event time) and ``computed_at`` (wall time, UTC).

The grid views are split so that a console fetches the drawing once and
recolours it: :func:`grid_geometry` (bus positions and branch end points, per
case) and :func:`grid_loading` (per branch: base-case AC loading against rate
A and the worst post-contingency loading against the emergency rating, per
grid version; both cached).

The worst post-contingency loading of each branch is the DC estimate used by
N-1 screens (line outage distribution factors applied to the base-case AC
active flows): ``max_k |P_l + LODF[l, k] P_k| / rate_C`` over every
in-service branch ``k`` whose outage does not split the grid, with the
outage that causes it. The responder's N-1 analysis (AC-verified) is what the
ranking in :func:`contingencies` reports; this view colours every branch.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aiguilleur.errors import AiguilleurError
from aiguilleur.ops.centre import OpsCentre
from aiguilleur.ops.state import State

__all__ = [
    "contingencies",
    "forecasts",
    "grid_geometry",
    "grid_loading",
    "roads",
    "routes",
    "state_summary",
]

_lock = threading.Lock()
_geometry: OrderedDict[str, dict[str, Any]] = OrderedDict()
_loading: OrderedDict[tuple[str, int, str], dict[str, Any]] = OrderedDict()
_roads: dict[str, dict[str, Any]] = {}
_lines: OrderedDict[str, dict[str, Any]] = OrderedDict()
_CACHE = 8


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _stamp(state: State) -> dict[str, Any]:
    return {"seq": state.last_seq, "as_of": state.clock, "computed_at": _now()}


def _cached(cache: OrderedDict[Any, dict[str, Any]], key: Any) -> dict[str, Any] | None:
    with _lock:
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
        return hit


def _keep(cache: OrderedDict[Any, dict[str, Any]], key: Any, value: dict[str, Any]) -> None:
    with _lock:
        cache[key] = value
        while len(cache) > _CACHE:
            cache.popitem(last=False)


def _round(a: Any, nd: int) -> list[float | None]:
    x = np.round(np.asarray(a, dtype=np.float64), nd)
    return [None if not np.isfinite(v) else float(v) for v in x.tolist()]


# -- the grid ---------------------------------------------------------------------------------


def grid_geometry(state: State) -> dict[str, Any] | None:
    """Bus positions and branch end points of the grid (None before a grid exists).

    The bundled cases carry no coordinates, so positions come from
    :func:`aiguilleur.ops._layout.grid_layout` (the layout of the replay
    report), scaled to the unit square: ``x``, ``y`` in ``[0, 1]``.
    """
    g = state.grid
    if g is None:
        return None
    hit = _cached(_geometry, g.case_sha256)
    if hit is None:
        from aiguilleur.ops._layout import grid_layout

        net = g.net
        xy = grid_layout(net)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        xy = (xy - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
        hit = {
            "case": g.case,
            "case_sha256": g.case_sha256,
            "geographic": False,
            "layout": "spectral embedding of the branch graph (the case has no coordinates)",
            "bus": [f"bus:{int(b)}" for b in net.bus.bus_id.tolist()],
            "x": _round(xy[:, 0], 4),
            "y": _round(xy[:, 1], 4),
            "branch_from": [int(i) for i in net.branch_from.tolist()],
            "branch_to": [int(i) for i in net.branch_to.tolist()],
            "n_bus": int(net.n_bus),
            "n_branch": int(net.n_branch),
        }
        _keep(_geometry, g.case_sha256, hit)
    return {**hit, **_stamp(state)}


def _worst_n1_dc(net: Any, p_mw: Any) -> tuple[Any, Any]:
    """Per branch: worst post-outage DC loading (%, emergency rating) and the outage row."""
    from aiguilleur.grid import DCModel
    from aiguilleur.ops.world import emergency_network

    enet = emergency_network(net)
    rate = np.asarray(enet.branch.rate_c_mva, dtype=np.float64)
    on = np.asarray(net.branch.in_service) == 1
    p = np.where(on, np.nan_to_num(np.asarray(p_mw, dtype=np.float64)), 0.0)
    nb = net.n_branch
    worst = np.zeros(nb)
    which = np.full(nb, -1, dtype=np.int64)
    model = DCModel.build(net)
    outages = np.flatnonzero(on & ~np.asarray(model.bridge, dtype=bool))
    rows = np.arange(nb)
    for block in model.blocks(outages):
        lodf, _ = model.lodf_columns(block)
        post = np.abs(p[:, None] + lodf * p[block][None, :])
        post[np.isnan(post)] = 0.0
        post[block, np.arange(block.size)] = 0.0  # the outaged branch carries nothing
        post[~on, :] = 0.0
        k = np.argmax(post, axis=1)
        best = post[rows, k]
        better = best > worst
        worst = np.where(better, best, worst)
        which = np.where(better, block[k], which)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(rate > 0, 100.0 * worst / np.where(rate > 0, rate, 1.0), 0.0)
    return pct, np.where(worst > 0, which, -1)


def _grid_digest(net: Any) -> str:
    """What the loadings depend on (two logs may reach the same grid version differently)."""
    import hashlib

    h = hashlib.sha256()
    for a in (
        net.branch.in_service,
        net.branch.rate_a_mva,
        net.branch.rate_c_mva,
        net.gen.in_service,
        net.gen.pg_mw,
        net.gen.vg_pu,
        net.gen.qg_mvar,
        net.bus.pd_mw,
        net.bus.qd_mvar,
    ):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def grid_loading(state: State) -> dict[str, Any] | None:
    """Per-branch loadings of the grid as it stands (see the module docstring); None without a grid.

    Fields: ``base_loading_pct`` (AC power flow, against rate A),
    ``n1_worst_loading_pct`` and ``n1_worst_outage`` (DC estimate, against the
    emergency rating), ``out_of_service`` (branch rows), ``overloaded`` (rows
    above 100 % of rate A), ``vm_pu`` per bus, ``converged``.
    """
    g = state.grid
    if g is None:
        return None
    key = (g.case_sha256, g.version, _grid_digest(g.net))
    hit = _cached(_loading, key)
    if hit is None:
        from aiguilleur.grid.corrective import ac_check

        t0 = time.perf_counter()
        net = g.net
        out: dict[str, Any] = {
            "case": g.case,
            "grid_version": g.version,
            "out_of_service": [int(k) for k in np.flatnonzero(net.branch.in_service == 0)],
            "gens_out": [int(k) for k in np.flatnonzero(net.gen.in_service == 0)],
            "shed_mw": g.total_shed_mw,
        }
        try:
            chk = ac_check(net, "a")
        except AiguilleurError as e:
            out.update(converged=False, error=str(e)[:300])
            chk = None
        if chk is not None and chk.pf is not None and chk.converged:
            base = np.asarray(chk.loading_pct, dtype=np.float64)
            worst, which = _worst_n1_dc(net, chk.pf.p_from_mw)
            out.update(
                converged=True,
                base_loading_pct=_round(base, 1),
                n1_worst_loading_pct=_round(worst, 1),
                n1_worst_outage=[int(k) for k in which.tolist()],
                overloaded=[int(k) for k, _ in chk.overloads],
                max_loading_pct=float(np.nanmax(base)) if base.size else 0.0,
                n1_max_loading_pct=float(np.nanmax(worst)) if worst.size else 0.0,
                vm_pu=_round(np.where(chk.pf.vm_pu > 0, chk.pf.vm_pu, np.nan), 4),
                ok=chk.ok,
            )
        elif chk is not None:
            out.update(converged=False, error="the AC power flow does not converge")
        out["compute_s"] = time.perf_counter() - t0
        hit = out
        _keep(_loading, key, hit)
    return {**hit, **_stamp(state)}


def contingencies(centre: OpsCentre, *, recent: int = 200) -> dict[str, Any]:
    """The latest risk ranking (probability x impact) and N-1 screen from the responder.

    ``risk`` is the ranking of :func:`aiguilleur.ops.assets.risk_ranking`
    (highest risk first), ``n1`` the latest screen's counts and its ranked
    insecure outages; each with the sequence number it answers.
    """
    st = centre.state()
    risk: dict[str, Any] | None = None
    n1: dict[str, Any] | None = None
    for a in reversed(centre.store.records("analyses", limit=recent)):
        if risk is None and a.get("kind") == "risk" and a.get("status") != "error":
            risk = a
        if n1 is None and a.get("kind") == "n1" and a.get("status") != "error":
            n1 = a
        if risk is not None and n1 is not None:
            break

    def meta(a: dict[str, Any]) -> dict[str, Any]:
        return {k: a.get(k) for k in ("id", "seq", "solver", "status", "time_s", "grid_version")}

    return {
        "ranking": [] if risk is None else list(risk["body"].get("ranking", [])),
        "risk": None
        if risk is None
        else {**meta(risk), "horizon_h": risk["body"].get("horizon_h")},
        "n1": None if n1 is None else {**meta(n1), **{k: v for k, v in n1["body"].items()}},
        **_stamp(st),
    }


def forecasts(state: State) -> dict[str, Any]:
    """The latest forecast of each quantity, as fan-chart series (P10, P50, P90 per step)."""
    from datetime import timedelta

    out: dict[str, Any] = {}
    for q, f in sorted(state.forecasts.items()):
        start = datetime.fromisoformat(f["start"])
        step = timedelta(minutes=int(f["step_minutes"]))
        n = len(f["p50_mw"])
        out[q] = {
            "quantity": q,
            "model": f.get("model"),
            "issued_at": f.get("occurred_at"),
            "seq": f.get("seq"),
            "start": f["start"],
            "step_minutes": int(f["step_minutes"]),
            "time": [(start + k * step).isoformat() for k in range(n)],
            "p10_mw": list(f["p10_mw"]),
            "p50_mw": list(f["p50_mw"]),
            "p90_mw": list(f["p90_mw"]),
        }
    g = state.grid
    return {
        "forecasts": out,
        "demand_now_mw": None if g is None else float(np.sum(g.demand_p_mw)),
        **_stamp(state),
    }


# -- the fleets -------------------------------------------------------------------------------


def _edge_lines(graph: Any, edges: Any) -> list[list[list[float]]]:
    lines = []
    for e in np.asarray(edges, dtype=np.int64).tolist():
        a, b = int(graph.tail[e]), int(graph.head[e])
        s, t = int(graph.geom_indptr[e]), int(graph.geom_indptr[e + 1])
        pts = [[float(graph.lon[a]), float(graph.lat[a])]]
        pts += [
            [float(x), float(y)]
            for x, y in zip(graph.geom_lon[s:t], graph.geom_lat[s:t], strict=True)
        ]
        pts.append([float(graph.lon[b]), float(graph.lat[b])])
        lines.append([[round(x, 6), round(y, 6)] for x, y in pts])
    return lines


def roads(state: State) -> dict[str, Any] | None:
    """The road network of the fleets as polylines (one per street segment, either direction)."""
    fs = state.fleet
    if fs is None:
        return None
    hit = _roads.get(fs.roads_sha256)
    if hit is None:
        from aiguilleur.logistics.roads import ATTRIBUTION
        from aiguilleur.ops.fleet import FleetModel

        g = FleetModel.load(fs.roads, fs.roads_sha256).graph
        a, b = np.asarray(g.tail), np.asarray(g.head)
        key = np.minimum(a, b) * (g.n_nodes + 1) + np.maximum(a, b)
        _, first = np.unique(key, return_index=True)
        hit = {
            "roads": fs.roads,
            "lines": _edge_lines(g, np.sort(first)),
            "bounds": [
                float(np.min(g.lon)),
                float(np.min(g.lat)),
                float(np.max(g.lon)),
                float(np.max(g.lat)),
            ],
            "attribution": ATTRIBUTION,
        }
        with _lock:
            _roads[fs.roads_sha256] = hit
    return {**hit, **_stamp(state)}


def _route_lines(
    model: Any, g: Any, closures: Any, seqs: list[list[int]], props: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Routes drawn along the streets, cached by what they depend on (a GPS ping changes none)."""
    import hashlib
    import json

    from aiguilleur.logistics.roads import routes_geojson

    key = hashlib.sha256(
        json.dumps([model.closure_key(closures), seqs, props], sort_keys=True).encode()
    ).hexdigest()
    hit = _cached(_lines, key)
    if hit is None:
        try:
            fc = routes_geojson(g, seqs, properties=props, with_stops=False)
        except AiguilleurError:  # a route the closures cut: drawn on the open graph
            fc = routes_geojson(model.graph, seqs, properties=props, with_stops=False)
        hit = {"features": fc["features"]}
        _keep(_lines, key, hit)
    return list(hit["features"])


def routes(state: State) -> dict[str, Any]:
    """The fleets as one GeoJSON FeatureCollection.

    Features (``properties.feature``): ``route`` (LineString along the streets,
    per vehicle with orders), ``vehicle`` (Point: the last reported position,
    else the depot with ``reported`` false), ``depot`` and ``site`` (Points),
    ``closure`` (LineStrings of the closed street segments), ``dropped``
    (Point of each order the plan in force does not deliver, with the reason).
    """
    from aiguilleur.logistics.roads import ATTRIBUTION
    from aiguilleur.ops.fleet import FleetModel

    feats: list[dict[str, Any]] = []
    fs = state.fleet
    if fs is None:
        return {"type": "FeatureCollection", "features": feats, **_stamp(state)}
    model = FleetModel.load(fs.roads, fs.roads_sha256)
    g = model.disrupted(fs.closures)

    def point(lon: float, lat: float, props: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
            "properties": props,
        }

    for name, plan in sorted(fs.plans.items()):
        depot = fs.sites[fs.fleets[name]["depot"]]
        d_node = model.node_of(depot)
        seqs, props = [], []
        for r in plan["routes"]:
            nodes = [d_node]
            for o in r["orders"]:
                rec = fs.orders.get(o)
                if rec is not None and rec["site"] in fs.sites:
                    nodes.append(model.node_of(fs.sites[rec["site"]]))
            nodes.append(d_node)
            if len(nodes) > 2:
                seqs.append(nodes)
                props.append(
                    {
                        "feature": "route",
                        "fleet": name,
                        "vehicle": r["vehicle"],
                        "orders": list(r["orders"]),
                    }
                )
        if seqs:
            feats.extend(_route_lines(model, g, fs.closures, seqs, props))
        for o, why in sorted(plan.get("dropped", {}).items()):
            rec = fs.orders.get(o)
            site = fs.sites.get(rec["site"]) if rec is not None else None
            if site is not None:
                feats.append(
                    point(
                        site["lon"],
                        site["lat"],
                        {"feature": "dropped", "fleet": name, "order": o, "reason": str(why)},
                    )
                )
    depots = {f["depot"] for f in fs.fleets.values()}
    for sid, s in sorted(fs.sites.items()):
        kind = "depot" if sid in depots else "site"
        feats.append(
            point(
                s["lon"],
                s["lat"],
                {
                    "feature": kind,
                    "site": sid,
                    "kind": s.get("kind"),
                    "name": s.get("name"),
                    "down": sid in fs.depots_down,
                },
            )
        )
    for vid, v in sorted(fs.vehicles.items()):
        fleet = v["fleet"]
        depot = fs.sites[fs.fleets[fleet]["depot"]]
        reported = "lat" in v and "lon" in v
        feats.append(
            point(
                v["lon"] if reported else depot["lon"],
                v["lat"] if reported else depot["lat"],
                {
                    "feature": "vehicle",
                    "vehicle": vid,
                    "fleet": fleet,
                    "broken": bool(v.get("broken")),
                    "reported": reported,
                    "at": v.get("at"),
                },
            )
        )
    closed = model.closed_edges(fs.closures)
    if closed.size:
        a, b = g.tail[closed], g.head[closed]
        key = np.minimum(a, b) * (g.n_nodes + 1) + np.maximum(a, b)
        _, first = np.unique(key, return_index=True)
        feats.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "MultiLineString",
                    "coordinates": _edge_lines(g, closed[np.sort(first)]),
                },
                "properties": {"feature": "closure", "closures": sorted(fs.closures)},
            }
        )
    return {
        "type": "FeatureCollection",
        "features": feats,
        "attribution": ATTRIBUTION,
        **_stamp(state),
    }


# -- the state --------------------------------------------------------------------------------


def state_summary(centre: OpsCentre) -> dict[str, Any]:
    """The state's summary with alarm counts (what ``aiguilleur ops state --json`` prints)."""
    st = centre.state()
    s = st.summary()
    alarms = centre.alarms()
    s["alarms"] = {
        "total": len(alarms),
        "unacknowledged": sum(1 for a in alarms if not a["acknowledged"]),
        "by_severity": {
            k: sum(1 for a in alarms if a["severity"] == k)
            for k in ("alarm", "action", "compliant", "information")
        },
    }
    s["pending_responses"] = centre.pending()
    s["computed_at"] = _now()
    return s
