"""Corrective redispatch: against an independent LP on PYPOWER's post-event PTDF, and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from aiguilleur.data import bundled_case_path
from aiguilleur.errors import ValidationError
from aiguilleur.grid import DCOPFOptions, dc_opf, read_matpower
from aiguilleur.grid.redispatch import (
    Outage,
    Redispatcher,
    RedispatchOptions,
    parse_outage,
    redispatch,
)
from tests.grid._pypower_ref import ptdf_lodf

pytest.importorskip("pypower")

OPTS = RedispatchOptions(model="matpower")


@pytest.fixture(scope="module")
def case118():  # type: ignore[no-untyped-def]
    net = read_matpower(bundled_case_path("case118"))
    pg = dc_opf(net, DCOPFOptions(model="matpower")).pg_mw
    return net, pg, Redispatcher(net, pg, OPTS)


def _reference(net, pg0, outages, opts):  # type: ignore[no-untyped-def]
    """The same plan as an LP over generation and shedding, flows from PYPOWER's PTDF."""
    on = net.branch.in_service == 1
    gen_on = net.gen.in_service == 1
    for o in outages:
        if o.kind == "branch":
            on[o.row] = False
        else:
            gen_on[o.row] = False
    h, _ = ptdf_lodf(net, on)
    base = net.base_mva
    gens = np.flatnonzero(net.gen.in_service == 1)
    lost = ~gen_on[gens]
    g = gens.size
    pmin, pmax = net.gen.pmin_mw[gens], net.gen.pmax_mw[gens]
    p0 = pg0[gens]
    ramp = opts.default_ramp_pct_per_min / 100 * np.abs(pmax) * opts.minutes
    up_max = np.where(lost, 0, np.clip(np.minimum(pmax - p0, ramp), 0, None))
    dn_max = np.where(lost, 0, np.clip(np.minimum(p0 - pmin, ramp), 0, None))
    tr_max = np.where(lost, 0, np.clip(p0 - dn_max, 0, None))
    gc = net.gencost
    mc = gc.params[gens, gc.ncost[gens] - 2] + 2 * gc.params[gens, gc.ncost[gens] - 3] * p0
    load = net.bus.pd_mw + net.bus.gs_mw
    lb = np.flatnonzero(load > 0)
    nb = net.n_bus
    cg = np.zeros((nb, g))
    cg[net.gen_bus[gens], np.arange(g)] = 1
    cs = np.zeros((nb, lb.size))
    cs[lb, np.arange(lb.size)] = 1
    p_fixed = cg @ np.where(lost, 0.0, p0) - load  # MW injection before moves
    # x = [up, dn, trip, shed]
    a_inj = np.hstack([cg, -cg, -cg, cs])
    rate = net.branch.rate_a_mva
    mon = np.flatnonzero(on & (rate > 0))
    a_flow = h[mon] @ a_inj / base
    f0 = h[mon] @ p_fixed / base
    cost = np.concatenate(
        [mc + opts.up_premium_eur_per_mwh, opts.down_premium_eur_per_mwh - mc,
         np.full(g, opts.voll_eur_per_mwh), np.full(lb.size, opts.voll_eur_per_mwh)]
    )  # fmt: skip
    res = linprog(
        cost,
        A_ub=np.vstack([a_flow, -a_flow]) * base,
        b_ub=np.concatenate([rate[mon] - f0 * base, rate[mon] + f0 * base]),
        A_eq=np.ones((1, nb)) @ a_inj,
        b_eq=[-p_fixed.sum()],
        bounds=list(
            zip(
                np.zeros(3 * g + lb.size),
                np.concatenate([up_max, dn_max, tr_max, load[lb]]),
                strict=True,
            )
        ),
        method="highs",
    )
    return res


@pytest.mark.parametrize(
    "outages",
    [
        [Outage("branch", 7)],
        [Outage("branch", 7), Outage("gen", 2)],
        [Outage("gen", 10)],
        [Outage("branch", 20), Outage("branch", 21)],
        [],
    ],
    ids=["branch", "branch+gen", "gen", "two-branches", "none"],
)
def test_plan_costs_what_an_independent_lp_says(case118, outages) -> None:  # type: ignore[no-untyped-def]
    net, pg0, rd = case118
    res = rd.solve(outages)
    ref = _reference(net, pg0, outages, OPTS)
    assert ref.status == 0
    assert res.status == "optimal"
    assert not res.remaining_overloads.size
    ours = res.redispatch_cost + res.shed_cost
    assert ours == pytest.approx(ref.fun, rel=1e-6, abs=1e-3)


def test_plan_removes_every_overload_by_pypower_flows(case118) -> None:  # type: ignore[no-untyped-def]
    net, _, rd = case118
    outs = [Outage("branch", 7), Outage("gen", 2)]
    res = rd.solve(outs)
    assert res.overloads_before.size > 0
    on = net.branch.in_service == 1
    on[7] = False
    h, _ = ptdf_lodf(net, on)
    inj = np.zeros(net.n_bus)
    np.add.at(inj, net.gen_bus, res.pg_mw)
    inj += res.shed_mw - net.bus.pd_mw - net.bus.gs_mw
    assert abs(inj.sum()) < 1e-4  # balanced: no slack needed
    flow = h @ inj
    rate = net.branch.rate_a_mva
    assert np.all(np.abs(flow[on & (rate > 0)]) <= rate[on & (rate > 0)] + 1e-3)
    assert res.pg_mw[2] == 0.0
    for a in res.actions:
        assert a.explanation.startswith(("raise", "lower"))
        assert abs(a.pg_after_mw - a.pg_before_mw - a.delta_mw) < 1e-6
        assert (
            abs(a.delta_mw) <= 0.02 * net.gen.pmax_mw[a.gen] * 15 + 1e-6 or "tripped" in res.reason
        )


def test_events_do_not_leak_into_each_other(case118) -> None:  # type: ignore[no-untyped-def]
    _, _, rd = case118
    a = rd.solve([Outage("branch", 7)])
    rd.solve([Outage("gen", 5), Outage("branch", 30)])
    b = rd.solve([Outage("branch", 7)])
    np.testing.assert_allclose(a.pg_mw, b.pg_mw, atol=1e-7)
    assert a.redispatch_cost == pytest.approx(b.redispatch_cost, abs=1e-6)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_event_gets_a_balanced_plan(case118, data) -> None:  # type: ignore[no-untyped-def]
    net, _, rd = case118
    brs = data.draw(st.lists(st.integers(0, net.n_branch - 1), max_size=3, unique=True))
    gens = data.draw(st.lists(st.integers(0, net.n_gen - 1), max_size=2, unique=True))
    outs = [Outage("branch", k) for k in brs] + [Outage("gen", j) for j in gens]
    res = rd.solve(outs)
    assert res.status in ("optimal", "overloads_remain")
    load = float(np.sum(net.bus.pd_mw + net.bus.gs_mw))
    assert float(np.sum(res.pg_mw)) + res.total_shed_mw == pytest.approx(load, abs=1e-3)
    assert np.all(res.shed_mw >= 0)
    over = np.abs(res.flow_mw) > res.limit_mw + 1e-3
    assert set(np.flatnonzero(over).tolist()) <= set(res.remaining_overloads.tolist())
    for j in gens:
        assert res.pg_mw[j] == 0.0


def test_islanding_with_surplus_trips_generation_instead_of_failing() -> None:
    net = read_matpower(bundled_case_path("case1888"))
    pg = dc_opf(net).pg_mw
    res = redispatch(net, [Outage("branch", 2313)], pg)
    assert res.status == "optimal"
    assert "tripped" in res.reason or res.total_shed_mw > 0 or not res.overloads_before.size


def test_outage_parsing_and_errors() -> None:
    assert parse_outage("branch:3") == Outage("branch", 2)
    assert parse_outage(" gen:1 ") == Outage("gen", 0)
    for bad in ("line:3", "branch", "branch:x", "branch:0", "gen:-2"):
        with pytest.raises(ValidationError):
            parse_outage(bad)
    net = read_matpower(bundled_case_path("case14"))
    with pytest.raises(ValidationError, match="the case has 20 branches"):
        redispatch(net, [Outage("branch", 20)])
    with pytest.raises(ValidationError, match="pg_mw"):
        Redispatcher(net, [1.0, 2.0])
    with pytest.raises(ValidationError, match="overload_penalty"):
        RedispatchOptions(overload_penalty_eur_per_mwh=10.0)
    with pytest.raises(ValidationError, match="minutes"):
        RedispatchOptions(minutes=0)


def test_frames() -> None:
    net = read_matpower(bundled_case_path("case118"))
    res = redispatch(net, [Outage("branch", 7)], dc_opf(net).pg_mw)
    assert len(res.to_frame("action")) == len(res.actions)
    assert len(res.to_frame("bus")) == net.n_bus
    assert len(res.to_frame("branch")) == net.n_branch
    d = res.to_dict()
    assert {"status", "redispatch_cost", "shed_mw", "actions", "remaining_overloads"} <= set(d)
