"""Road graphs: OSM readers, snapping, travel matrices, disruptions and GeoJSON.

References are independent of the code under test: hand-made OSM files whose
graph is known, networkx's Dijkstra on the same edges, brute-force geometry,
and a full recomputation for every matrix update.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.logistics._osm import parse_maxspeed
from aiguilleur.logistics.roads import (
    ROAD_CLASSES,
    DepotOutage,
    RoadClosure,
    RoadGraph,
    Slowdown,
    affected_edges,
    apply_disruption,
    bundled_road_graph,
    load_graphml,
    load_osm_pbf,
    load_road_graph,
    route_geometry,
    routes_geojson,
    save_road_graph,
    snap,
    travel_matrices,
    update_matrices,
)
from tests.conftest import REPO_ROOT

ROADS = REPO_ROOT.parent / "shared" / "data" / "roads"
ROADS_REASON = "the shared OSM extracts are not available: expected ../shared/data/roads"
requires_roads = pytest.mark.skipif(not (ROADS / "monaco.osm.pbf").is_file(), reason=ROADS_REASON)

R_EARTH = 6_371_008.8


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_EARTH * math.asin(math.sqrt(a))


# -- a hand-made OSM file ----------------------------------------------------------

NODES = {
    1: (43.7300, 7.4200),
    2: (43.7300, 7.4210),
    3: (43.7300, 7.4220),
    4: (43.7310, 7.4220),
    5: (43.7310, 7.4210),
    6: (43.7290, 7.4225),
    7: (43.7400, 7.4300),
    8: (43.7400, 7.4310),
    9: (43.7290, 7.4215),
    10: (43.7290, 7.4205),
    11: (43.7280, 7.4205),
    12: (43.7310, 7.4195),
}
WAYS = [
    (101, [1, 2, 3], {"highway": "residential"}),
    (102, [3, 4], {"highway": "primary", "oneway": "yes", "maxspeed": "50"}),
    (103, [1, 4], {"highway": "secondary", "oneway": "-1"}),  # traffic runs 4 -> 1
    (104, [2, 5], {"highway": "footway"}),
    (105, [3, 6], {"highway": "residential", "access": "private"}),
    (106, [7, 8], {"highway": "residential"}),  # an island: dropped
    (107, [2, 9, 10, 2], {"highway": "tertiary", "junction": "roundabout", "maxspeed": "30 mph"}),
    (108, [10, 11], {"highway": "service", "maxspeed": "FR:urban"}),
    (109, [1, 12], {"highway": "tertiary", "oneway": "reversible"}),
]


def write_osm(path: Path) -> Path:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for nid, (lat, lon) in NODES.items():
        lines.append(f'<node id="{nid}" version="1" lat="{lat}" lon="{lon}"/>')
    for wid, refs, tags in WAYS:
        lines.append(f'<way id="{wid}" version="1">')
        lines += [f'<nd ref="{r}"/>' for r in refs]
        lines += [f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("</way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> RoadGraph:
    return load_osm_pbf(write_osm(tmp_path / "tiny.osm"))


def edge_set(g: RoadGraph) -> set[tuple[int, int, int]]:
    return {
        (int(g.node_id[t]), int(g.node_id[h]), int(w))
        for t, h, w in zip(g.tail, g.head, g.way_id, strict=True)
    }


def test_osm_reader_keeps_drivable_directed_edges(tiny: RoadGraph) -> None:
    assert edge_set(tiny) == {
        (1, 2, 101),
        (2, 1, 101),
        (2, 3, 101),
        (3, 2, 101),
        (3, 4, 102),
        (4, 1, 103),  # oneway=-1
        (2, 10, 107),  # the roundabout, one way, split where the service road joins
        (10, 2, 107),
        (10, 11, 108),
        (11, 10, 108),
    }
    assert sorted(tiny.node_id.tolist()) == [1, 2, 3, 4, 10, 11]
    report = tiny.load_report
    assert report["ways not drivable (highway class)"] == 1
    assert report["ways closed to motor vehicles (access)"] == 1
    assert report["ways with reversible one-way (oneway=reversible)"] == 1
    assert report["nodes outside the largest strongly connected component"] == 2
    assert report["edges outside the largest strongly connected component"] == 2
    assert tiny.summary()["dropped"] == dict(report)


def test_osm_reader_lengths_speeds_and_shapes(tiny: RoadGraph) -> None:
    ids = tiny.node_id
    for e in range(tiny.n_edges):
        t, h = int(ids[tiny.tail[e]]), int(ids[tiny.head[e]])
        way = int(tiny.way_id[e])
        shape = [(float(a), float(b)) for a, b in zip(*_shape(tiny, e), strict=True)]
        if (t, h) == (2, 10):  # node 9 is a shape point of the roundabout, not a graph node
            assert shape == [(NODES[9][1], NODES[9][0])]
        else:
            assert shape == []
        pts = [NODES[t], *[(la, lo) for lo, la in shape], NODES[h]]
        expected = sum(haversine(*a, *b) for a, b in itertools.pairwise(pts))
        assert tiny.length_m[e] == pytest.approx(expected, rel=1e-9)
        speed = {101: 30.0, 102: 50.0, 103: 50.0, 107: 30 * 1.609344, 108: 50.0}[way]
        assert tiny.speed_kmh[e] == pytest.approx(speed)
        assert tiny.travel_time_s[e] == pytest.approx(tiny.length_m[e] / (speed / 3.6))
        cls = {101: "residential", 102: "primary", 103: "secondary", 107: "tertiary"}
        assert ROAD_CLASSES[tiny.road_class[e]] == cls.get(way, "service")


def _shape(g: RoadGraph, e: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = g.geom_indptr[e], g.geom_indptr[e + 1]
    return g.geom_lon[a:b], g.geom_lat[a:b]


def test_osm_reader_cuts_by_bbox_and_polygon(tmp_path: Path) -> None:
    path = write_osm(tmp_path / "tiny.osm")
    # Only nodes 1, 2, 3, 4 and 12 lie north of 43.7295: the roundabout is cut
    # away, so node 2 is no junction any more, only a shape point of 1-2-3.
    g = load_osm_pbf(path, bbox=(7.41, 43.7295, 7.43, 43.735))
    assert sorted(g.node_id.tolist()) == [1, 3, 4]
    assert g.geom_lon.size == 2  # node 2, once in each direction
    ring = [(7.41, 43.7295), (7.43, 43.7295), (7.43, 43.735), (7.41, 43.735)]
    assert sorted(load_osm_pbf(path, polygon=ring).node_id.tolist()) == [1, 3, 4]
    poly = tmp_path / "area.poly"
    poly.write_text("area\n1\n" + "".join(f"  {x} {y}\n" for x, y in ring) + "END\nEND\n")
    assert sorted(load_osm_pbf(path, polygon=poly).node_id.tolist()) == [1, 3, 4]
    with pytest.raises(ValidationError, match="no drivable road inside"):
        load_osm_pbf(path, bbox=(0.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValidationError, match="bbox"):
        load_osm_pbf(path, bbox=(7.43, 43.7295, 7.41, 43.735))


def test_osm_reader_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match=r"nope\.osm\.pbf: no such file"):
        load_osm_pbf(tmp_path / "nope.osm.pbf")
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"this is not a pbf")
    with pytest.raises(CaseFormatError, match=r"bad\.osm\.pbf"):
        load_osm_pbf(bad)


@pytest.mark.parametrize(
    ("text", "kmh"),
    [
        ("50", 50.0),
        ("30 mph", 30 * 1.609344),
        ("FR:urban", 50.0),
        ("FR:rural", 80.0),
        ("FR:zone30", 30.0),
        ("walk", 6.0),
        ("50;30", 40.0),
        ("['50', '30']", 40.0),
        ("['walk', '30']", 18.0),
        ("none", None),
        ("signals", None),
        ("", None),
        (None, None),
        ("fast", None),
    ],
)
def test_parse_maxspeed(text: str | None, kmh: float | None) -> None:
    got = parse_maxspeed(text)
    assert got == (pytest.approx(kmh) if kmh is not None else None)


# -- GraphML ------------------------------------------------------------------------

GRAPHML_HEAD = """<?xml version='1.0' encoding='utf-8'?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
<key id="d4" for="node" attr.name="y" attr.type="string"/>
<key id="d5" for="node" attr.name="x" attr.type="string"/>
<key id="d8" for="edge" attr.name="osmid" attr.type="string"/>
<key id="d9" for="edge" attr.name="highway" attr.type="string"/>
<key id="d13" for="edge" attr.name="length" attr.type="string"/>
<key id="d16" for="edge" attr.name="maxspeed" attr.type="string"/>
<key id="d14" for="edge" attr.name="geometry" attr.type="string"/>
<graph edgedefault="directed">
<node id="1"><data key="d4">48.94</data><data key="d5">2.15</data></node>
<node id="2"><data key="d4">48.94</data><data key="d5">2.151</data></node>
<node id="3"><data key="d4">48.941</data><data key="d5">2.151</data></node>
"""


def _edge(s: int, t: int, hw: str, length: str, extra: str = "") -> str:
    return (
        f'<edge source="{s}" target="{t}" id="0"><data key="d8">7</data>'
        f'<data key="d9">{hw}</data><data key="d13">{length}</data>{extra}</edge>\n'
    )


def test_graphml_reader_drops_footpaths(tmp_path: Path) -> None:
    body = (
        _edge(1, 2, "residential", "80.0", "<data key=\"d16\">['50', '30']</data>")
        + _edge(2, 1, "residential", "80.0")
        + _edge(2, 3, "['residential', 'unclassified']", "120.0")
        + _edge(3, 2, "residential", "120.0")
        + _edge(1, 3, "footway", "100.0")
        + _edge(3, 1, "['footway', 'residential']", "100.0")
    )
    path = tmp_path / "g.graphml"
    path.write_text(GRAPHML_HEAD + body + "</graph></graphml>")
    g = load_graphml(path)
    assert g.n_nodes == 3
    assert g.n_edges == 4
    assert g.load_report["edges not drivable (highway class)"] == 2
    first = int(np.flatnonzero((g.node_id[g.tail] == 1) & (g.node_id[g.head] == 2))[0])
    assert g.speed_kmh[first] == pytest.approx(40.0)
    assert g.length_m[first] == 80.0


def test_graphml_errors_name_the_record(tmp_path: Path) -> None:
    path = tmp_path / "g.graphml"
    path.write_text(GRAPHML_HEAD + _edge(1, 2, "residential", "eighty") + "</graph></graphml>")
    with pytest.raises(CaseFormatError, match=r"g.graphml: edge 1->2: length 'eighty'"):
        load_graphml(path)
    path.write_text(GRAPHML_HEAD + _edge(1, 9, "residential", "8") + "</graph></graphml>")
    with pytest.raises(CaseFormatError, match=r"edge 1->9: unknown node"):
        load_graphml(path)
    path.write_text("<graphml><graph>")
    with pytest.raises(CaseFormatError, match=r"g.graphml:1: not valid XML"):
        load_graphml(path)


def _listed(value: str) -> list[str]:
    return [str(v) for v in ast.literal_eval(value)] if value.startswith("[") else [value]


@requires_roads
@pytest.mark.parametrize("name", ["paris-trocadero", "maisons-laffitte", "saint-germain-en-laye"])
def test_shared_graphml_matches_networkx(name: str) -> None:
    """Largest SCC of the drivable edges, as networkx finds it on its own reading."""
    import networkx as nx

    g = load_graphml(ROADS / f"{name}.graphml")
    ref = nx.read_graphml(ROADS / f"{name}.graphml", force_multigraph=True)
    kept = []
    for u, v, d in ref.edges(data=True):
        access = _listed(d["access"]) if "access" in d else []
        if (
            u != v
            and all(c in ROAD_CLASSES for c in _listed(d.get("highway", "")))
            and not (access and all(a in ("no", "private") for a in access))
        ):
            kept.append((int(u), int(v)))
    drivable = nx.DiGraph(kept)
    scc = max(nx.strongly_connected_components(drivable), key=len)
    assert set(g.node_id.tolist()) == scc
    assert g.n_edges == sum(1 for u, v in kept if u in scc and v in scc)
    assert "footway" not in set(g.to_frame()["road_class"])


@requires_roads
def test_bundled_extract_is_the_monaco_pbf() -> None:
    g = load_osm_pbf(ROADS / "monaco.osm.pbf")
    b = bundled_road_graph()
    assert b.n_nodes == g.n_nodes and b.n_edges == g.n_edges
    np.testing.assert_array_equal(b.node_id, g.node_id)
    np.testing.assert_array_equal(b.head, g.head)
    np.testing.assert_allclose(b.lat, g.lat, atol=1e-9)
    np.testing.assert_array_equal(b.length_m, g.length_m)
    np.testing.assert_array_equal(b.way_id, g.way_id)
    # Cut by the Monaco polygon: fewer nodes, all inside it (plus a little rounding).
    m = load_osm_pbf(ROADS / "monaco.osm.pbf", polygon=ROADS / "monaco.poly")
    assert 100 < m.n_nodes < g.n_nodes


def test_bundled_extract_round_trips(tmp_path: Path) -> None:
    g = bundled_road_graph()
    assert g.n_nodes > 1500
    assert g.summary()["dropped"]["nodes outside the largest strongly connected component"] > 0
    save_road_graph(g, tmp_path / "g.npz")
    h = load_road_graph(tmp_path / "g.npz")
    for name in ("node_id", "lat", "lon", "indptr", "head", "length_m", "travel_time_s"):
        np.testing.assert_array_equal(getattr(h, name), getattr(g, name))
    np.testing.assert_array_equal(h.geom_lon, g.geom_lon)
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(CaseFormatError, match=r"bad\.npz"):
        load_road_graph(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(CaseFormatError, match="'node_id' is missing"):
        load_road_graph(tmp_path / "other.npz")


# -- snapping -----------------------------------------------------------------------


def test_snap_finds_nearest_node_and_names_points_outside() -> None:
    g = bundled_road_graph()
    rng = np.random.default_rng(3)
    pick = rng.choice(g.n_nodes, 50, replace=False)
    np.testing.assert_array_equal(snap(g, g.lat[pick], g.lon[pick]), pick)
    # Brute force over every node, by great-circle distance.
    lat, lon = 43.7375, 7.4210
    ref = min(range(g.n_nodes), key=lambda i: haversine(lat, lon, g.lat[i], g.lon[i]))
    assert int(snap(g, lat, lon)[0]) == ref
    with pytest.raises(
        ValidationError, match=r"point 1 at lat 48\.856600, lon 2\.352200 is outside"
    ):
        snap(g, [43.7375, 48.8566], [7.4210, 2.3522])
    with pytest.raises(ValidationError, match="point 0"):
        snap(g, [float("nan")], [7.42])


# -- matrices -----------------------------------------------------------------------


def _nx_graph(g: RoadGraph) -> object:
    import networkx as nx

    d = nx.DiGraph()
    for e in np.argsort(-g.travel_time_s, kind="stable"):  # the fastest parallel edge wins
        if not g.closed[e]:
            d.add_edge(
                int(g.tail[e]), int(g.head[e]), t=float(g.travel_time_s[e]), m=float(g.length_m[e])
            )
    return d


def test_matrices_match_networkx_dijkstra() -> None:
    import networkx as nx

    g = bundled_road_graph()
    rng = np.random.default_rng(7)
    nodes = rng.choice(g.n_nodes, 12, replace=False)
    nodes = np.concatenate([nodes, nodes[:2]])  # repeats are allowed
    mats = travel_matrices(g, nodes)
    assert mats.duration_s.shape == (14, 14)
    ref = _nx_graph(g)
    for i, s in enumerate(nodes):
        times, paths = nx.single_source_dijkstra(ref, int(s), weight="t")
        for j, t in enumerate(nodes):
            assert mats.duration_s[i, j] == pytest.approx(times[int(t)], rel=1e-9, abs=1e-9)
            path = paths[int(t)]
            metres = sum(ref[a][b]["m"] for a, b in itertools.pairwise(path))
            assert mats.distance_m[i, j] == pytest.approx(metres, rel=1e-9, abs=1e-9)
    assert np.all(np.diag(mats.duration_s) == 0)
    frame = mats.to_frame()
    assert len(frame) == 14 * 14
    with pytest.raises(ValidationError, match=r"nodes\[1\] = -1"):
        travel_matrices(g, [0, -1])


# -- disruptions --------------------------------------------------------------------


def _densified_distance(g: RoadGraph, lat: float, lon: float) -> np.ndarray:
    """Distance from a point to each edge, on polylines densified to ~1 m."""
    out = np.empty(g.n_edges)
    for e in range(g.n_edges):
        lo, la = _shape(g, e)
        xs = [g.lon[g.tail[e]], *lo, g.lon[g.head[e]]]
        ys = [g.lat[g.tail[e]], *la, g.lat[g.head[e]]]
        best = math.inf
        for k in range(len(xs) - 1):
            seg = haversine(ys[k], xs[k], ys[k + 1], xs[k + 1])
            steps = max(2, int(seg) + 2)
            for s in np.linspace(0.0, 1.0, steps):
                py = ys[k] + s * (ys[k + 1] - ys[k])
                px = xs[k] + s * (xs[k + 1] - xs[k])
                best = min(best, haversine(lat, lon, py, px))
        out[e] = best
    return out


def test_radius_closure_selects_edges_by_geometry() -> None:
    g = bundled_road_graph()
    lat, lon, radius = 43.7366, 7.4222, 120.0
    got = set(affected_edges(g, RoadClosure.around(lat, lon, radius)).tolist())
    dist = _densified_distance(g, lat, lon)
    assert got
    assert {e for e in range(g.n_edges) if dist[e] <= radius - 1.0} <= got
    assert got <= {e for e in range(g.n_edges) if dist[e] <= radius + 1.0}


def test_polygon_closure_catches_edges_crossing_it(tiny: RoadGraph) -> None:
    # A small square on the street between nodes 1 and 2, with no node or shape point inside.
    sq = ((7.4204, 43.7299), (7.4206, 43.7299), (7.4206, 43.7301), (7.4204, 43.7301))
    got = affected_edges(tiny, RoadClosure(polygon_lonlat=sq))
    pairs = {(int(tiny.node_id[tiny.tail[e]]), int(tiny.node_id[tiny.head[e]])) for e in got}
    assert pairs == {(1, 2), (2, 1)}


def test_closure_values_are_validated() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        RoadClosure()
    with pytest.raises(ValidationError, match="exactly one"):
        RoadClosure(edges=(1,), center_latlon=(43.7, 7.4), radius_m=5.0)
    with pytest.raises(ValidationError, match="radius_m"):
        RoadClosure(center_latlon=(43.7, 7.4), radius_m=-1.0)
    with pytest.raises(ValidationError, match="at least 3"):
        RoadClosure(polygon_lonlat=((7.4, 43.7), (7.5, 43.7)))
    with pytest.raises(ValidationError, match="factor"):
        Slowdown(factor=0.5, edges=(1,))
    with pytest.raises(ValidationError, match="edge 99999"):
        affected_edges(bundled_road_graph(), RoadClosure(edges=(99999,)))


def test_closure_keeps_indices_and_routes_around(tiny: RoadGraph) -> None:
    ids = {int(v): i for i, v in enumerate(tiny.node_id)}
    e23 = int(np.flatnonzero((tiny.tail == ids[2]) & (tiny.head == ids[3]))[0])
    closed = apply_disruption(tiny, RoadClosure(edges=(e23,), reason="flooding"))
    assert closed.n_edges == tiny.n_edges and closed.closed.sum() == 1
    before = travel_matrices(tiny, [ids[1], ids[3], ids[4]])
    after = update_matrices(tiny, before, RoadClosure(edges=(e23,)))
    assert after.duration_s[0, 1] == math.inf  # 3 is now a dead end for traffic from 1
    np.testing.assert_array_equal(after.duration_s, travel_matrices(closed, after.nodes).duration_s)
    assert update_matrices(tiny, before, DepotOutage("north")).duration_s is before.duration_s
    assert apply_disruption(tiny, DepotOutage("north")) is tiny


def test_slowdown_scales_travel_times(tiny: RoadGraph) -> None:
    slow = apply_disruption(tiny, Slowdown(factor=3.0, edges=(0, 1)))
    np.testing.assert_allclose(slow.travel_time_s[:2], 3.0 * tiny.travel_time_s[:2])
    np.testing.assert_allclose(slow.speed_kmh[:2], tiny.speed_kmh[:2] / 3.0)
    np.testing.assert_array_equal(slow.travel_time_s[2:], tiny.travel_time_s[2:])


_G = bundled_road_graph()
_RNG_NODES = np.random.default_rng(11).choice(_G.n_nodes, 24, replace=False)


@st.composite
def disruptions(draw: st.DrawFn) -> RoadClosure | Slowdown:
    kind = draw(st.sampled_from(["edges", "radius", "polygon", "slow"]))
    if kind == "edges":
        es = draw(st.lists(st.integers(0, _G.n_edges - 1), min_size=1, max_size=25))
        return RoadClosure(edges=tuple(es))
    v = draw(st.integers(0, _G.n_nodes - 1))
    lat, lon = float(_G.lat[v]), float(_G.lon[v])
    size = draw(st.floats(20.0, 500.0))
    if kind == "radius":
        return RoadClosure.around(lat, lon, size)
    if kind == "polygon":
        d = size / 111_000.0
        sq = ((lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d))
        return RoadClosure(polygon_lonlat=sq)
    return Slowdown(factor=draw(st.floats(1.0, 6.0)), center_latlon=(lat, lon), radius_m=size)


def _check_chain(chain: list[RoadClosure | Slowdown]) -> None:
    graph = _G
    mats = travel_matrices(graph, _RNG_NODES)
    for d in chain:
        mats = update_matrices(graph, mats, d)
        graph = apply_disruption(graph, d)
        full = travel_matrices(graph, _RNG_NODES)
        assert mats.recomputed[1] <= full.recomputed[1]
        np.testing.assert_allclose(mats.duration_s, full.duration_s, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(mats.distance_m, full.distance_m, rtol=1e-9, atol=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chain=st.lists(disruptions(), min_size=1, max_size=3))
def test_update_equals_full_recomputation(chain: list[RoadClosure | Slowdown]) -> None:
    """Tree repair: only the labels below a changed tree edge are searched again."""
    _check_chain(chain)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chain=st.lists(disruptions(), min_size=1, max_size=3))
def test_update_without_kept_trees_equals_full_recomputation(
    chain: list[RoadClosure | Slowdown],
) -> None:
    """The large-input path: whole rows whose recorded paths touch a changed edge."""
    from aiguilleur.logistics import roads

    saved = roads._TREE_LIMIT
    roads._TREE_LIMIT = 0
    try:
        _check_chain(chain)
    finally:
        roads._TREE_LIMIT = saved


def test_update_searches_only_what_can_change() -> None:
    g = _G
    mats = travel_matrices(g, _RNG_NODES)
    assert mats._trees is not None
    used = np.zeros(g.n_edges, dtype=bool)
    used[mats._trees.pe[mats._trees.pe >= 0]] = True
    # An edge that no shortest-path tree uses: nothing to search.
    quiet = update_matrices(g, mats, RoadClosure(edges=(int(np.flatnonzero(~used)[0]),)))
    assert quiet.recomputed == (0, 0)
    np.testing.assert_array_equal(quiet.duration_s, mats.duration_s)
    # A busy main road: some labels only, and the matrices change.
    counts = np.bincount(mats._trees.pe[mats._trees.pe >= 0], minlength=g.n_edges)
    busy = int(np.argmax(counts))
    upd = update_matrices(g, mats, RoadClosure(edges=(busy,)))
    assert 0 < upd.recomputed[1] < mats.recomputed[1]
    assert not np.array_equal(upd.duration_s, mats.duration_s)


# -- geometry -----------------------------------------------------------------------


def test_route_geometry_follows_the_streets() -> None:
    g = _G
    seq = [int(v) for v in _RNG_NODES[:4]]
    pts = route_geometry(g, seq)
    assert pts[0] == (g.lon[seq[0]], g.lat[seq[0]])
    assert pts[-1] == (g.lon[seq[-1]], g.lat[seq[-1]])
    along = sum(haversine(a[1], a[0], b[1], b[0]) for a, b in itertools.pairwise(pts))
    mats = travel_matrices(g, seq)
    legs = sum(mats.distance_m[k, k + 1] for k in range(3))
    assert along == pytest.approx(legs, rel=1e-9)
    straight = sum(
        haversine(g.lat[a], g.lon[a], g.lat[b], g.lon[b]) for a, b in itertools.pairwise(seq)
    )
    assert along > straight


def test_routes_geojson_is_a_feature_collection() -> None:
    g = _G
    routes = [[int(v) for v in _RNG_NODES[:3]], [int(v) for v in _RNG_NODES[3:7]]]
    doc = routes_geojson(g, routes, properties=[{"vehicle": "tanker-1"}, {"vehicle": "crew-1"}])
    json.dumps(doc)
    assert doc["type"] == "FeatureCollection"
    lines = [f for f in doc["features"] if f["geometry"]["type"] == "LineString"]
    points = [f for f in doc["features"] if f["geometry"]["type"] == "Point"]
    assert len(lines) == 2 and len(points) == 7
    assert lines[1]["properties"]["vehicle"] == "crew-1"
    assert lines[0]["properties"]["length_m"] == pytest.approx(
        travel_matrices(g, routes[0]).distance_m[[0, 1], [1, 2]].sum(), abs=0.1
    )
    assert "OpenStreetMap" in doc["attribution"]
    closure = RoadClosure.around(float(g.lat[routes[0][1]]), float(g.lon[routes[0][1]]), 30.0)
    with pytest.raises(ValidationError, match="no open road"):
        routes_geojson(apply_disruption(g, closure), routes)


def test_logistics_is_a_leaf() -> None:
    import subprocess
    import sys

    code = (
        "import sys, aiguilleur.logistics, aiguilleur.logistics.scenario\n"
        "bad = [m for m in ('aiguilleur.grid', 'aiguilleur.forecast', 'aiguilleur.health',"
        " 'aiguilleur.cli', 'aiguilleur.ops') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
