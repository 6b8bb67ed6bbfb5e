"""The crisis scenario: reproducible, realistic, and its flooding matters."""

from __future__ import annotations

import numpy as np
import pytest

from aiguilleur.errors import ValidationError
from aiguilleur.logistics.roads import (
    ROAD_CLASSES,
    affected_edges,
    apply_disruption,
    bundled_road_graph,
    load_graphml,
    travel_matrices,
)
from aiguilleur.logistics.scenario import crisis_scenario, fuel_orders
from tests.logistics.test_roads import ROADS, haversine, requires_roads


def test_same_seed_same_scenario() -> None:
    g = bundled_road_graph()
    a, b = crisis_scenario(g, seed=5), crisis_scenario(g, seed=5)
    assert a == b
    assert a.to_frame().equals(b.to_frame())
    assert crisis_scenario(g, seed=6) != a


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scenario_is_realistic(seed: int) -> None:
    g = bundled_road_graph()
    sc = crisis_scenario(g, seed=seed)
    assert 30 <= len(sc.points) <= 60
    assert sc.fuel_depot.name.startswith("Fontvieille")
    kinds = [p.kind for p in sc.points]
    assert kinds == sorted(kinds, key=["hospital", "substation", "shop"].index)
    assert {p.priority for p in sc.points} == {1, 2, 3}
    assert all(p.needs_crew == (p.kind == "substation") for p in sc.points)
    assert sc.fuel_supply_l < sum(p.fuel_l for p in sc.points)
    assert len({s.site_id for s in sc.sites}) == len(sc.sites)
    for s in sc.sites:
        assert (s.lat, s.lon) == (g.lat[s.node], g.lon[s.node])
    # Points are spread out and all outside the flooded disc.
    lat0, lon0 = sc.closure.center_latlon or (0.0, 0.0)
    for i, p in enumerate(sc.points):
        assert haversine(p.lat, p.lon, lat0, lon0) > sc.closure.radius_m
        for q in sc.points[i + 1 :]:
            assert haversine(p.lat, p.lon, q.lat, q.lon) >= 119.0
    # The flood is on a main road and cuts some fastest depot-to-point path ...
    closed = affected_edges(g, sc.closure)
    classes = {ROAD_CLASSES[c] for c in g.road_class[closed]}
    assert classes & {"primary", "secondary", "trunk"}
    before = travel_matrices(g, sc.nodes)
    after = travel_matrices(apply_disruption(g, sc.closure), sc.nodes)
    assert np.any(after.duration_s[:2] > before.duration_s[:2] + 1e-6)
    # ... but leaves every site reachable from both depots and back.
    assert np.isfinite(after.duration_s[:2]).all()
    assert np.isfinite(after.duration_s[:, :2]).all()
    assert 0 < sc.closure_at_s < 4 * 3600
    assert sc.closure.reason == "flooding"


def test_scenario_errors() -> None:
    g = bundled_road_graph()
    with pytest.raises(ValidationError, match="room for only"):
        crisis_scenario(g, seed=0, n_points=5000)
    with pytest.raises(ValidationError, match="at least 3"):
        crisis_scenario(g, seed=0, n_points=1)


@requires_roads
def test_scenario_on_another_extract() -> None:
    g = load_graphml(ROADS / "saint-germain-en-laye.graphml")
    sc = crisis_scenario(g, seed=3, n_points=30)
    assert len(sc.points) == 30
    assert sc.fuel_depot.name == "Fuel depot"
    after = travel_matrices(apply_disruption(g, sc.closure), sc.nodes)
    assert np.isfinite(after.duration_s[:2]).all()
    assert np.isfinite(after.duration_s[:, :2]).all()


def test_fuel_orders_serve_the_urgent_first_and_share_the_rest() -> None:
    g = bundled_road_graph()
    sc = crisis_scenario(g, seed=0)
    mats = travel_matrices(g, sc.nodes)
    alloc, orders = fuel_orders(sc, cost=mats.duration_s[0, 2:], tanker_l=1000.0)
    assert alloc.delivered.sum() == sc.fuel_supply_l  # every litre goes out
    prio = np.array([p.priority for p in sc.points])
    assert np.all(alloc.shortfall[prio < 3] == 0)  # hospitals and substations in full
    frac = alloc.shortfall_fraction[prio == 3]
    demand = alloc.demand[prio == 3]
    # Fair shares in whole litres: no shop is short by more than the shops' average
    # fraction plus a litre's worth (the continuous optimum is the average itself).
    average = alloc.shortfall[prio == 3].sum() / demand.sum()
    assert frac.max() <= average + 1.0 / demand.min() + 1e-9
    assert frac.max() < 1.0
    assert all(o.quantity <= 1000.0 for o in orders)
    assert sum(o.quantity for o in orders) == sc.fuel_supply_l
    by_id = {p.site_id: p for p in sc.points}
    for o in orders:
        assert (o.window_open_s, o.window_close_s) == by_id[o.point].window_s
        assert o.priority == by_id[o.point].priority
