"""The report of a scenario replay: one HTML page, the event log, the routes and a summary.

:func:`write_replay_report` writes, into a folder checked before any work
(:func:`check_report_dir`: never silently replaced), ``index.html`` (the
timeline with each event's reaction time, the proposals with their cost,
MW shed and AC check, the alarms, the risk ranking, a map of the grid and
the fleets' routes at the end), ``events.jsonl`` (the log, in the format
``aiguilleur ops ingest`` reads), ``routes.geojson`` and ``summary.json``.
Every file is written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur._files import atomic_write_bytes
from aiguilleur.errors import AiguilleurError, ValidationError
from aiguilleur.ops.report import Bar, Figure, Table, svg_network_map, write_html_report

__all__ = ["REPORT_FILES", "check_report_dir", "write_replay_report"]

REPORT_FILES = ("index.html", "events.jsonl", "routes.geojson", "summary.json")


def check_report_dir(out: str | Path, *, force: bool = False) -> Path:
    """Check a report folder before the work that fills it (the rules of
    :func:`aiguilleur._files.check_output_dir`, applied to the report's own files).

    The folder may exist (other files in it are left alone) or be new in an existing
    folder; a report already there is replaced only with ``force``. Raises
    :class:`~aiguilleur.errors.ValidationError` in one line saying what to do.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValidationError(f"{out}: is a file, not a folder; give another --out folder")
    parent = out.parent if str(out.parent) else Path(".")
    if not out.exists() and not parent.is_dir():
        raise ValidationError(f"{out}: the folder {parent} does not exist")
    there = [f for f in REPORT_FILES if (out / f).exists() or (out / f).is_symlink()]
    if there and not force:
        raise ValidationError(
            f"{out}: already holds a report ({there[0]}); pass --force to replace it, "
            "or give another --out folder"
        )
    for f in REPORT_FILES:
        if (out / f).exists() and not (out / f).is_file():
            raise ValidationError(f"{out / f}: is not a regular file; cannot write the report")
    if not os.access(out if out.exists() else parent, os.W_OK):
        raise ValidationError(f"{out}: the folder is not writable")
    return out


def _hm(s: float) -> str:
    m = round(s / 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def _loading(net: Any) -> np.ndarray:
    from aiguilleur.grid.corrective import ac_check

    chk = ac_check(net, "a")
    return np.asarray(chk.loading_pct, dtype=np.float64)


def _fleet_geojson(state: Any) -> dict[str, Any]:
    from aiguilleur.logistics.roads import ATTRIBUTION, routes_geojson
    from aiguilleur.ops.fleet import FleetModel

    fs = state.fleet
    feats: list[dict[str, Any]] = []
    if fs is None:
        return {"type": "FeatureCollection", "features": feats}
    model = FleetModel.load(fs.roads, fs.roads_sha256)
    g = model.disrupted(fs.closures)
    for name, plan in sorted(fs.plans.items()):
        depot = fs.sites[fs.fleets[name]["depot"]]
        d_node = model.node_of(depot)
        seqs, props = [], []
        for r in plan["routes"]:
            nodes = [d_node]
            for o in r["orders"]:
                rec = fs.orders.get(o)
                if rec is None:
                    continue
                nodes.append(model.node_of(fs.sites[rec["site"]]))
            nodes.append(d_node)
            if len(nodes) > 2:
                seqs.append(nodes)
                props.append({"fleet": name, "vehicle": r["vehicle"], "orders": len(nodes) - 2})
        if seqs:
            try:
                fc = routes_geojson(g, seqs, properties=props, with_stops=False)
            except AiguilleurError:
                fc = routes_geojson(model.graph, seqs, properties=props, with_stops=False)
            feats.extend(fc["features"])
    return {"type": "FeatureCollection", "features": feats, "attribution": ATTRIBUTION}


def write_replay_report(result: Any, out: Path) -> Path:
    """Write the replay's report into ``out`` (checked by :func:`check_report_dir`)."""
    from aiguilleur.ops._layout import grid_layout

    out = Path(out)
    d = result.to_dict()
    last = result.last_state
    first = result.first_state
    figures: list[Figure] = []
    loading: dict[str, Any] | None = None
    bars: list[Bar] = []
    if last is not None and last.grid is not None and first is not None and first.grid is not None:
        net = last.grid.net
        l0, l1 = _loading(first.grid.net), _loading(net)
        loading = {"start": l0, "end": l1}
        top = np.argsort(-np.nan_to_num(l1, nan=0.0))[:12]
        bars = [
            Bar(
                f"branch:{int(k) + 1} "
                f"({int(net.branch.from_bus_id[k])}-{int(net.branch.to_bus_id[k])})",
                float(l1[k]),
                float(l0[k]),
            )
            for k in top
        ]
        from aiguilleur.grid.corrective import ac_check

        chk = ac_check(net, "a")
        vm = np.where(chk.pf.vm_pu > 0, chk.pf.vm_pu, np.nan) if chk.pf is not None else None
        if vm is not None:
            out_br = np.flatnonzero(net.branch.in_service == 0).tolist()
            xy = grid_layout(first.grid.net)
            figures.append(
                Figure(
                    "The grid at the end: voltages",
                    svg_network_map(
                        xy,
                        net.branch_from,
                        net.branch_to,
                        vm,
                        title="voltage at the end",
                        unit="pu",
                        vmin=0.9,
                        vmax=1.1,
                        highlight=out_br,
                        width=900,
                        height=620,
                    ),
                    "Buses placed by a spectral layout of the grid (the case has no coordinates); "
                    "branches out of service at the end in red.",
                )
            )
    geo = (
        _fleet_geojson(last) if last is not None else {"type": "FeatureCollection", "features": []}
    )
    timeline_rows = tuple(
        (
            _hm(row["at_s"]),
            row["type"],
            row["what"],
            row["seq"],
            None if row["reaction_s"] is None else round(row["reaction_s"], 3),
            ", ".join(row["analyses"]),
            ", ".join(row["proposals"]),
            row["alarms"],
        )
        for row in result.timeline
        if row["type"] != "health_reading" or row["proposals"] or row["alarms"]
    )
    prop_rows = tuple(
        (
            p["id"],
            p["created_at"][11:16],
            p["kind"],
            p["status"],
            "yes" if p["ok"] else "NO",
            p["summary"].get("cost_eur_per_h"),
            p["summary"].get("shed_mw"),
            p["summary"].get("overloads_before"),
            p["summary"].get("overloads_after"),
            p["summary"].get("method") or ", ".join(p["summary"].get("reasons", [])),
            round(float(p.get("reaction_s") or 0.0), 3),
        )
        for p in result.proposals
    )
    alarm_rows = tuple(
        (
            a["id"],
            a["raised_at"][11:16],
            a["severity"],
            f"{a['time_to_act_s'] / 60:,.0f} min",
            "yes" if a["acknowledged"] else "",
            a["text"][:160],
        )
        for a in result.alarms
    )
    risk_rows = tuple(
        (
            r["rank"],
            r["contingency"],
            r["status"],
            r["probability"],
            r["probability_source"],
            r["impact_mw"],
            r["expected_impact_mw"],
        )
        for r in result.risk[:15]
    )
    rs = d["reaction_s"]
    v = d["ac_violations_after"]
    op = result.operating_point
    base = op.get("base_case", {})
    n1 = op.get("n1", {})
    grid_facts: list[str] = []
    if first is not None and first.grid is not None:
        g = first.grid.net
        grid_facts.append(
            f"{g.name}: {g.n_bus:,} buses, {g.n_branch:,} branches, {g.n_gen:,} generators."
        )
    facts = [
        ("Scenario", [result.description or result.scenario]),
        *([("Grid", grid_facts)] if grid_facts else []),
        (
            "Operating point at the start",
            [
                f"{op.get('method', 'n/a')}.",
                f"Base case in AC: {'within' if base.get('ok') else 'NOT within'} rate A and "
                f"voltage limits (highest loading {base.get('max_loading_pct', 0):.1f} %).",
                f"N-1 against emergency ratings ({n1.get('rating', '')}): {n1.get('secure', 0):,} "
                f"secure, {n1.get('overload', 0):,} overloaded, {n1.get('islanding', 0):,} "
                f"islanding (radial branches), {n1.get('diverged', 0):,} diverged."
                if n1
                else "N-1 not screened.",
            ],
        ),
        (
            "At the end",
            [
                f"AC power flow {'converged' if v.get('converged') else 'did NOT converge'}: "
                f"{len(v.get('branches', []))} branches above rate A, {len(v.get('buses', []))} "
                f"buses outside their voltage limits.",
                f"Load shed: {d['shed_mw']:,.1f} MW. Undelivered orders: "
                f"{', '.join(d['undelivered_orders']) or 'none'}.",
                f"State hash {d['state_hash']} (folding the log in events.jsonl gives it again).",
            ],
        ),
    ]
    tables = [
        Table(
            "Timeline",
            ("time", "event", "what", "seq", "reaction s", "analyses", "proposals", "alarms"),
            timeline_rows,
            note="Reaction: from the event's commit to the end of its analyses (proposals and "
            "alarms stored). Health readings without alarms are not listed.",
        ),
        Table(
            "Proposals",
            (
                "id",
                "at",
                "kind",
                "status",
                "holds",
                "cost EUR/h",
                "shed MW",
                "overloads before",
                "after",
                "method / reasons",
                "reaction s",
            ),
            prop_rows,
            note="Holds: the plan passes an independent AC power flow (grid) or serves every "
            "required order (fleets). Plans that hold and shed nothing are applied by policy; "
            "the scripted operator approves the others.",
        ),
        Table("Alarms", ("id", "at", "severity", "act within", "ack", "text"), alarm_rows),
        Table(
            "Contingencies ranked by risk (at the end)",
            ("rank", "contingency", "status", "probability", "source", "impact MW", "expected MW"),
            risk_rows,
            note="Probability of the outage within the horizon (asset health where monitored, "
            "else a stated background rate) x impact after the best DC corrective plan.",
        ),
    ]
    headline = [
        ("events", f"{d['events']:,}"),
        ("proposals applied", f"{d['approved']} of {d['proposals']}"),
        ("reaction p50 / p95", f"{rs['p50']:.2f} / {rs['p95']:.2f} s"),
        ("load shed at the end", f"{d['shed_mw']:,.1f} MW"),
        ("overloads at the end", f"{len(v.get('branches', []))}"),
        ("undelivered orders", f"{len(d['undelivered_orders'])}"),
        ("speed", f"{result.speedup:,.0f}x real time"),
    ]
    try:
        out.mkdir(exist_ok=True)  # its parent was checked before the work
        atomic_write_bytes(out / "events.jsonl", ("\n".join(result.log) + "\n").encode("utf-8"))
        atomic_write_bytes(out / "routes.geojson", json.dumps(geo, separators=(",", ":")).encode())
        atomic_write_bytes(out / "summary.json", json.dumps(d, indent=1).encode())
        path = write_html_report(
            out / "index.html",
            title=f"Operations centre replay: {result.scenario}",
            subtitle=f"{d['events']:,} events over {result.simulated_s / 3600:.1f} h, replayed in "
            f"{result.wall_s:.1f} s",
            headline=headline,
            facts=facts,
            loading=loading,
            overloads=bars,
            overloads_title="Most loaded branches at the end (start for comparison)",
            tables=tables,
            notes=(
                "Every event is stored in the log before it is acknowledged; the state is a "
                "fold of the log; every proposal records the state hash it was made on.",
            ),
            attribution="Grid: PGLib-OPF v23.07, CC BY 4.0. Roads: (c) OpenStreetMap "
            "contributors, ODbL 1.0. Asset telemetry: NASA C-MAPSS (public domain).",
            figures=figures,
        )
    except OSError as e:
        raise AiguilleurError(
            f"{e.filename or out}: cannot write the report ({e.strerror or e})"
        ) from None
    return Path(path)
