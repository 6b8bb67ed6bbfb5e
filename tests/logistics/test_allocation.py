"""Allocation of scarce supplies: checked against networkx's min-cost flow.

The reference solves the same problem as one min-cost flow with exact integer
penalties per priority class, large enough to make the classes lexicographic
(networkx's network simplex works in Python integers, so nothing is rounded).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguilleur.errors import ValidationError
from aiguilleur.logistics.allocation import (
    Allocation,
    AllocationOptions,
    allocate,
    delivery_orders,
)


def test_hospital_before_shops() -> None:
    a = allocate(
        [10, 5],
        [6, 6, 6],
        [[1, 2, 3], [3, 2, 1]],
        priority=[1, 2, 2],
        depot_ids=["north", "south"],
        point_ids=["hospital", "shop-a", "shop-b"],
    )
    assert a.delivered[0] == 6  # the hospital gets all it asks for
    assert a.shortfall.sum() == 3  # 15 units for 18 asked
    assert dict(a.shortfall_by_class) == {1: 0.0, 2: 3.0}
    # Fair shares: the two shops are short by 2 and 1 (whole units), not 3 and 0.
    assert sorted(a.shortfall[1:].tolist()) == [1.0, 2.0]
    frame = a.to_frame()
    assert list(frame["point"]) == ["hospital", "shop-a", "shop-b"]
    assert frame.loc[0, "main_depot"] == "north"
    assert a.flows_frame()["units"].sum() == 15


def test_route_capacity_and_missing_routes() -> None:
    a = allocate(
        [100, 100],
        [30, 30],
        [[1, math.inf], [5, 5]],
        route_capacity=[[10, 0], [math.inf, 100]],
    )
    assert a.shipped[0, 0] == 10  # the cheap route is full
    assert a.shipped[0, 1] == 0  # no route
    assert a.shipped[1, 0] == 20 and a.shipped[1, 1] == 30
    assert a.transport_cost == 10 * 1 + 20 * 5 + 30 * 5


def _reference(
    supply: list[int],
    demand: list[int],
    cost: list[list[float]],
    cap: list[list[float]],
    prio: list[int],
) -> tuple[dict[int, int], int]:
    """Lexicographic optimum by one networkx min-cost flow: class shortfalls, transport cost."""
    import networkx as nx

    m, n = len(supply), len(demand)
    total = sum(demand)
    finite = [c for row in cost for c in row if math.isfinite(c)]
    base = int(max(finite, default=0)) * (total + 1) + 1
    classes = sorted(set(prio), reverse=True)  # least urgent first
    penalty: dict[int, int] = {}
    acc = 0
    for c in classes:
        acc = (total + 1) * acc + base  # one unit here outweighs everything below it
        penalty[c] = acc
    g = nx.DiGraph()
    g.add_node("src", demand=-total)
    g.add_node("sink", demand=total)
    for i in range(m):
        g.add_edge("src", ("d", i), capacity=supply[i], weight=0)
        for j in range(n):
            if math.isfinite(cost[i][j]) and cap[i][j] > 0:
                capacity = total if math.isinf(cap[i][j]) else int(cap[i][j])
                g.add_edge(("d", i), ("p", j), capacity=capacity, weight=int(cost[i][j]))
    for j in range(n):
        g.add_edge(("p", j), "sink", capacity=demand[j], weight=0)
        # Shortfall: straight from the source into the point, at the class's penalty.
        g.add_edge("src", ("p", j), capacity=demand[j], weight=penalty[prio[j]])
    flow = nx.min_cost_flow(g)
    short: dict[int, int] = {c: 0 for c in classes}
    for j in range(n):
        short[prio[j]] += flow["src"][("p", j)]
    transport = sum(
        flow[("d", i)][("p", j)] * int(cost[i][j])
        for i in range(m)
        for j in range(n)
        if ("p", j) in flow.get(("d", i), {})
    )
    return short, transport


@st.composite
def instances(
    draw: st.DrawFn,
) -> tuple[list[int], list[int], list[list[float]], list[list[float]], list[int]]:
    m = draw(st.integers(1, 4))
    n = draw(st.integers(1, 8))
    supply = draw(st.lists(st.integers(0, 25), min_size=m, max_size=m))
    demand = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    cost_el = st.one_of(st.integers(0, 30).map(float), st.just(math.inf))
    cap_el = st.one_of(st.just(math.inf), st.integers(0, 12).map(float))
    cost = [draw(st.lists(cost_el, min_size=n, max_size=n)) for _ in range(m)]
    cap = [draw(st.lists(cap_el, min_size=n, max_size=n)) for _ in range(m)]
    prio = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    return supply, demand, cost, cap, prio


def _conserves(a: Allocation, cost: np.ndarray, cap: np.ndarray) -> None:
    assert np.all(a.shipped >= 0)
    assert np.all(a.shipped.sum(axis=1) <= a.supply + 1e-9)
    np.testing.assert_allclose(a.delivered + a.shortfall, a.demand, atol=1e-9)
    assert np.all(a.shortfall >= -1e-9)
    assert np.all(a.shipped <= cap + 1e-9)
    assert np.all(a.shipped[~np.isfinite(cost)] == 0)


@settings(max_examples=40, deadline=None)
@given(inst=instances())
def test_matches_min_cost_flow(
    inst: tuple[list[int], list[int], list[list[float]], list[list[float]], list[int]],
) -> None:
    supply, demand, cost, cap, prio = inst
    c, k = np.array(cost), np.array(cap)
    plain = allocate(
        supply,
        demand,
        c,
        priority=prio,
        route_capacity=k,
        options=AllocationOptions(fair_shares=False),
    )
    short, transport = _reference(supply, demand, cost, cap, prio)
    _conserves(plain, c, k)
    assert dict(plain.shortfall_by_class) == pytest.approx(
        {c_: float(v) for c_, v in short.items()}
    )
    assert plain.transport_cost == pytest.approx(transport)
    assert np.all(plain.shipped == np.round(plain.shipped))  # whole units
    # Fair shares keep every class's total shortfall, and no class's worst
    # point is worse off than without them.
    fair = allocate(supply, demand, c, priority=prio, route_capacity=k)
    _conserves(fair, c, k)
    assert dict(fair.shortfall_by_class) == pytest.approx(dict(plain.shortfall_by_class))
    for cls in set(prio):
        sel = np.array(prio) == cls
        assert fair.shortfall_fraction[sel].max() <= plain.shortfall_fraction[sel].max() + 1e-9
    # The continuous LP reaches the same class totals and cost (integral vertices).
    lp = allocate(
        supply,
        demand,
        c,
        priority=prio,
        route_capacity=k,
        options=AllocationOptions(fair_shares=False, integral=False),
    )
    assert lp.transport_cost == pytest.approx(transport, rel=1e-6, abs=1e-6)


def test_fair_shares_split_evenly_when_units_are_divisible() -> None:
    lp = allocate(
        [12],
        [10, 10, 10, 10],
        [[1, 2, 3, 4]],
        priority=[1, 1, 1, 1],
        options=AllocationOptions(integral=False),
    )
    np.testing.assert_allclose(lp.shortfall, [7.0, 7.0, 7.0, 7.0], atol=1e-6)
    whole = allocate([12], [10, 10, 10, 10], [[1, 2, 3, 4]])
    np.testing.assert_allclose(whole.shortfall, [7.0, 7.0, 7.0, 7.0])


def test_bad_input_is_named() -> None:
    with pytest.raises(ValidationError, match=r"supply\[1\] = -3.0"):
        allocate([1, -3], [1], [[1], [1]])
    with pytest.raises(ValidationError, match=r"cost: expected shape \(1, 2\)"):
        allocate([1], [1, 2], [[1, 2, 3]])
    with pytest.raises(ValidationError, match=r"cost\[0, 1\]"):
        allocate([1], [1, 2], [[1, -2]])
    with pytest.raises(ValidationError, match="priority"):
        allocate([1], [1], [[1]], priority=[0])
    with pytest.raises(ValidationError, match="route_capacity"):
        allocate([1], [1], [[1]], route_capacity=[[-1]])
    with pytest.raises(ValidationError, match="unique"):
        allocate([1, 1], [1], [[1], [1]], depot_ids=["a", "a"])
    with pytest.raises(ValidationError, match="time_limit_s"):
        AllocationOptions(time_limit_s=0)


def test_delivery_orders_carry_out_the_allocation() -> None:
    a = allocate(
        [40, 10],
        [25, 12, 9],
        [[1, 2, 3], [3, 2, 1]],
        priority=[1, 2, 3],
        depot_ids=["fuel", "spare"],
        point_ids=["hospital", "substation", "shop"],
    )
    orders = delivery_orders(
        a,
        window_s=[(0, 3600), (0, 7200), (3600, math.inf)],
        service_s=[600, 300, 300],
        max_quantity=10,
        penalty_by_priority={3: 500.0},
    )
    assert all(o.quantity <= 10 for o in orders)
    assert all(o.quantity == int(o.quantity) for o in orders)
    total = {}
    for o in orders:
        total[(o.depot, o.point)] = total.get((o.depot, o.point), 0) + o.quantity
    for (d, p), q in total.items():
        assert a.shipped[a.depot_ids.index(d), a.point_ids.index(p)] == q
    assert sum(total.values()) == a.delivered.sum()
    assert [o.priority for o in orders] == sorted(o.priority for o in orders)
    recs = [o.to_record() for o in orders]
    json.dumps(recs, allow_nan=False)
    hosp = [r for r in recs if r["location"] == "hospital"]
    assert hosp[0]["window_s"] == [0.0, 3600.0] and hosp[0]["service_s"] == 600
    assert "penalty" not in hosp[0]
    shop = [r for r in recs if r["location"] == "shop"]
    assert all(r["penalty"] == 500.0 and r["window_s"][1] is None for r in shop)
    with pytest.raises(ValidationError, match="point 'substation': time window closes"):
        delivery_orders(a, window_s=[(0, 1), (50, 10), (0, 1)])
