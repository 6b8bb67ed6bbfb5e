"""The operations centre: validation, durability of the fold, the responder's plans in AC."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from aiguilleur.ops import CentreOptions, MemoryStore, OpsCentre, ResponderOptions
from aiguilleur.ops.store import open_store
from tests.ops.conftest import T0, at, case14_genesis


def ev(i: int | str, t: str, minute: float, **kw: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "type": t, "occurred_at": at(minute), "source": "test", **kw}


@pytest.fixture(scope="module")
def world118() -> list[Any]:
    """case118 at its AC-OPF operating point (N-1 screened) and the fleets: computed once."""
    from aiguilleur.ops.fleet import fleet_world
    from aiguilleur.ops.world import grid_world

    return [
        grid_world("case118", at=T0, assets={"GT-1": "gen:5"}),
        fleet_world(seed=1, shift_start=T0, time_limit_s=0.5),
    ]


def test_ingest_refuses_what_the_world_does_not_hold() -> None:
    c = OpsCentre(MemoryStore())
    r = c.ingest([ev(1, "branch_trip", 1, branch="branch:3")])
    assert r[0].error is not None and "no grid is initialised" in r[0].error
    r = c.ingest(
        [
            case14_genesis(),
            ev(2, "branch_trip", 1, branch="branch:21"),
            ev(3, "branch_trip", 1, branch="branch:3"),
        ]
    )
    assert [x.seq for x in r] == [1, None, 2]
    assert "20 branch rows" in (r[1].error or "")
    r = c.ingest(
        [ev(4, "order_created", 2, order="o", fleet="tankers", lat=43.7, lon=7.4, quantity=5)]
    )
    assert "no fleet is initialised" in (r[0].error or "")
    r = c.ingest(['{"id": "x", "type": "branch_trip"', "not json", b"\xff"])
    assert all(x.error for x in r)
    # a repeated id is acknowledged again, stored once
    r = c.ingest([ev(3, "branch_trip", 1, branch="branch:3")])
    assert r[0].duplicate and r[0].seq == 2
    assert c.store.last_seq() == 2


def test_restart_loads_snapshot_and_tail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    c = OpsCentre(open_store(url), CentreOptions(snapshot_every=3))
    c.ingest([case14_genesis()])
    for k in range(10):
        c.ingest([ev(k, "load_scale", k, factor=1.01)])
    h, seq = c.state().state_hash, c.last_seq
    c.flush()
    snap = c.store.latest_snapshot()
    assert snap is not None and 0 < snap[0] <= seq
    c.close()
    again = OpsCentre(open_store(url))
    assert again.last_seq == seq and again.state().state_hash == h
    # the log alone (no snapshot) folds to the same state
    fresh = OpsCentre(MemoryStore())
    res = fresh.ingest([body for _, body in again.events()])
    assert all(r.ok for r in res)
    assert fresh.state().state_hash == h
    again.close()


def test_two_writers_share_one_log(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    a = OpsCentre(open_store(url))
    b = OpsCentre(open_store(url))
    a.ingest([case14_genesis()])
    b.ingest([ev(1, "branch_trip", 1, branch="branch:2")])  # b catches up first
    a.ingest([ev(2, "branch_trip", 2, branch="branch:5")])
    assert a.state().state_hash == OpsCentre(open_store(url)).state().state_hash
    assert b.last_seq == 2 and a.last_seq == 3


def _pandapower_check(net: Any) -> dict[str, Any]:
    """An independent AC power flow (pandapower, reactive limits enforced) held against limits."""
    pp = pytest.importorskip("pandapower")
    from aiguilleur.grid.pandapower_io import to_pandapower

    p = to_pandapower(net)
    pp.runpp(
        p,
        calculate_voltage_angles=True,
        enforce_q_lims=True,
        init="dc",
        numba=False,
        tolerance_mva=1e-8,
    )
    rate = np.asarray(net.branch.rate_a_mva)
    s = np.zeros(net.n_branch)
    ln = p.res_line
    s[ln.index] = np.maximum(
        np.hypot(ln.p_from_mw, ln.q_from_mvar), np.hypot(ln.p_to_mw, ln.q_to_mvar)
    )
    tr = p.res_trafo
    s[tr.index] = np.maximum(np.hypot(tr.p_hv_mw, tr.q_hv_mvar), np.hypot(tr.p_lv_mw, tr.q_lv_mvar))
    on = net.branch.in_service == 1
    pct = np.where(on & (rate > 0), 100 * s / np.where(rate > 0, rate, 1), 0)
    vm = p.res_bus.vm_pu.to_numpy()
    live = np.isfinite(vm) & (vm > 0)
    return {
        "max_loading_pct": float(pct.max()),
        "low": int(np.sum(live & (vm < net.bus.vmin_pu - 1e-3))),
        "high": int(np.sum(live & (vm > net.bus.vmax_pu + 1e-3))),
        "vm": vm,
    }


@pytest.mark.slow
def test_plans_that_claim_to_hold_do_so_in_pandapower(world118: list[Any]) -> None:
    """Every grid proposal that claims to hold in AC is checked by pandapower's power flow."""
    c = OpsCentre(MemoryStore(), CentreOptions(responder=ResponderOptions(n1=False)))
    assert all(r.ok for r in c.ingest(world118[:1]))
    c.respond()
    checked = 0
    for k, (t, kw) in enumerate(
        [
            ("branch_trip", {"branch": "branch:104"}),
            ("branch_trip", {"branch": "branch:32"}),
            ("gen_trip", {"gen": "gen:5"}),
            ("load_scale", {"factor": 1.04}),
        ]
    ):
        assert c.ingest([ev(k, t, 10 * (k + 1), **kw)])[0].ok
        c.respond()
        props = c.proposals("pending")
        for p in props:
            if p["kind"] != "grid_corrective":
                continue
            if p["ok"]:
                c.approve(p["id"], "tester")
                st = c.state()
                assert st.grid is not None
                chk = _pandapower_check(st.grid.net)
                assert chk["max_loading_pct"] <= 100.0 + 0.5, (p["id"], chk["max_loading_pct"])
                assert chk["low"] == 0 and chk["high"] == 0, p["id"]
                checked += 1
            else:
                assert p["summary"]["remaining"], "a plan that fails says what remains"
                c.reject(p["id"], "tester", "does not hold")
            c.respond()
    assert checked >= 2


def test_auto_apply_never_sheds_and_decisions_are_events(world118: list[Any]) -> None:
    c = OpsCentre(
        MemoryStore(),
        CentreOptions(responder=ResponderOptions(n1=False, auto_apply=("grid_corrective",))),
    )
    c.ingest(world118[:1])
    c.respond()
    c.ingest([ev(1, "gen_trip", 5, gen="gen:5"), ev(2, "load_scale", 6, factor=1.08)])
    c.respond()
    for p in c.proposals():
        if p["sheds_load"] or not p["ok"]:
            assert p["status"] == "pending" or p["status"] == "superseded"
        elif p["status"] == "approved":
            assert p["decision"]["operator"] == "policy:auto"
    log = [json.loads(b) for _, b in c.events()]
    auto = [e for e in log if e["type"] == "proposal_approved"]
    assert all(e["source"] == "policy:auto" for e in auto)
    assert all(a["kind"] != "shed_load" for e in auto for a in e["actions"])
    # an alarm is acknowledged once, by an event
    alarms = c.alarms()
    assert alarms
    c.acknowledge(alarms[0]["id"], "alice")
    with pytest.raises(Exception, match="already acknowledged"):
        c.acknowledge(alarms[0]["id"], "alice")
    assert c.alarms(unacknowledged=True) == [a for a in c.alarms() if not a["acknowledged"]]


@pytest.mark.slow
def test_fleet_events_give_replans_that_keep_required_orders(world118: list[Any]) -> None:
    c = OpsCentre(MemoryStore(), CentreOptions(responder=ResponderOptions(fleet_deadline_s=1.0)))
    assert all(r.ok for r in c.ingest(world118[1:]))
    c.respond()
    bad = c.ingest([ev("v", "vehicle_breakdown", 30, vehicle="tanker#9")])
    assert "unknown vehicle" in (bad[0].error or "")
    bad = c.ingest(
        [
            ev(
                "o",
                "order_created",
                30,
                order="far",
                fleet="tankers",
                lat=48.85,
                lon=2.35,
                quantity=100,
            )
        ]
    )
    assert "lat/lon" in (bad[0].error or "")
    r = c.ingest(
        [
            ev(
                "c",
                "road_closure",
                60,
                closure="flood",
                area={"center_lat": 43.7416601, "center_lon": 7.4268942, "radius_m": 190},
            ),
            ev(
                "u",
                "order_created",
                61,
                order="urgent-1",
                fleet="tankers",
                lat=43.7281586,
                lon=7.3696669,
                quantity=300,
                priority=1,
            ),
        ]
    )
    assert all(x.ok for x in r)
    c.respond()
    props = [p for p in c.proposals("pending") if p["kind"] == "fleet_replan"]
    assert {p["scope"] for p in props} >= {"tankers"}
    tank = next(p for p in props if p["scope"] == "tankers")
    act = tank["actions"][0]
    served = {o for r_ in act["routes"] for o in r_["orders"]}
    assert "urgent-1" in served or "urgent-1" in act["dropped"]
    # the re-plan is never worse than repairing the plan in force
    s = tank["summary"]
    assert s["km_left_after"] <= s["km_left_repair"] + 1e-6
    c.approve(tank["id"], "dispatcher")
    st = c.state()
    assert st.fleet is not None and st.fleet.plans["tankers"]["proposal"] == tank["id"]
