"""Road graphs: loading, travel matrices and closure updates, against networkx.

For each stop count: ``travel_matrices`` (one vectorised many-source Dijkstra
in scipy plus the fastest-path lengths and path bookkeeping) against
networkx's Dijkstra on the same directed graph, run the way OSMnx users do it:
one ``single_source_dijkstra`` per stop (the fair anchor) and, for the
smaller counts, one ``shortest_path_length`` per pair (what the shared data's
README timed). The matrices are checked equal.

Then closures on a plan of ``--update-stops`` stops: ``update_matrices``
(searching again only the (stop, node) labels below a closed edge of the
stops' shortest-path trees) against ``travel_matrices`` on the closed graph,
checked equal; the closures are flooding discs of 100-250 m around busy
main-road nodes (the kind the crisis scenario draws) and around random nodes.
"rows" counts the matrix rows that changed trees, "labels %" the share of
(stop, node) labels searched again.

Run from the repository root::

    .venv/bin/python benchmarks/bench_roads.py
    .venv/bin/python benchmarks/bench_roads.py --stops 50 200 500 --repeat 3
    .venv/bin/python benchmarks/bench_roads.py \
        --graph ../shared/data/roads/saint-germain-en-laye.graphml
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.logistics.roads import (
    ROAD_CLASSES,
    RoadClosure,
    RoadGraph,
    apply_disruption,
    bundled_road_graph,
    load_graphml,
    load_osm_pbf,
    travel_matrices,
    update_matrices,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data" / "roads"


def best_of(fn: Any, repeat: int) -> tuple[float, Any]:
    out = fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def nx_graph(g: RoadGraph) -> Any:
    import networkx as nx

    d = nx.DiGraph()
    for e in np.argsort(-g.travel_time_s, kind="stable"):  # the fastest parallel edge wins
        if not g.closed[e]:
            d.add_edge(int(g.tail[e]), int(g.head[e]), weight=float(g.travel_time_s[e]))
    return d


def nx_per_source(d: Any, nodes: np.ndarray) -> np.ndarray:
    import networkx as nx

    out = np.full((nodes.size, nodes.size), np.inf)
    for i, s in enumerate(nodes):
        dist = nx.single_source_dijkstra_path_length(d, int(s), weight="weight")
        out[i] = [dist.get(int(t), np.inf) for t in nodes]
    return out


def nx_per_pair(d: Any, nodes: np.ndarray) -> np.ndarray:
    import networkx as nx

    out = np.full((nodes.size, nodes.size), np.inf)
    for i, s in enumerate(nodes):
        for j, t in enumerate(nodes):
            out[i, j] = nx.shortest_path_length(d, int(s), int(t), weight="weight")
    return out


def load(path: str | None) -> RoadGraph:
    if path is None:
        return bundled_road_graph()
    p = Path(path)
    return load_graphml(p) if p.suffix == ".graphml" else load_osm_pbf(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", help="a .osm.pbf or .graphml file (default: the bundled extract)")
    ap.add_argument("--roads-dir", type=Path, default=SHARED, help="shared OSM extracts")
    ap.add_argument("--stops", type=int, nargs="+", default=[50, 100, 200, 500])
    ap.add_argument("--per-pair-max", type=int, default=100, help="largest count for per-pair nx")
    ap.add_argument("--update-stops", type=int, default=200)
    ap.add_argument("--closures", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}")
    if args.roads_dir.is_dir():
        print("\n## loading (best of", args.repeat, ")")
        for f in ("monaco.osm.pbf", "paris-trocadero.graphml", "saint-germain-en-laye.graphml"):
            p = args.roads_dir / f
            if p.is_file():
                reader = load_osm_pbf if f.endswith(".pbf") else load_graphml
                t, g = best_of(lambda p=p, r=reader: r(p), args.repeat)
                print(f"{f:32s} {t:7.3f} s  {g.n_nodes:6d} nodes {g.n_edges:6d} edges")

    g = load(args.graph)
    rng = np.random.default_rng(args.seed)
    print(f"\n## travel matrices on {g.source}: {g.n_nodes} nodes, {g.n_edges} edges")
    print(
        f"{'stops':>6} {'aiguilleur s':>13} {'nx/source s':>12} {'ratio':>7} "
        f"{'nx/pair s':>10} {'ratio':>8} {'max |diff| s':>13}"
    )
    d = nx_graph(g)
    for n in args.stops:
        nodes = rng.choice(g.n_nodes, min(n, g.n_nodes), replace=False)
        t_us, mats = best_of(lambda nodes=nodes: travel_matrices(g, nodes), args.repeat)
        t0 = time.perf_counter()
        ref = nx_per_source(d, nodes)
        t_src = time.perf_counter() - t0
        diff = float(np.max(np.abs(ref - mats.duration_s)))
        if n <= args.per_pair_max:
            t0 = time.perf_counter()
            nx_per_pair(d, nodes)
            t_pair = time.perf_counter() - t0
            pair = f"{t_pair:10.3f} {t_pair / t_us:7.0f}x"
        else:
            pair = f"{'-':>10} {'-':>8}"
        print(f"{n:6d} {t_us:13.4f} {t_src:12.3f} {t_src / t_us:6.1f}x {pair} {diff:13.2e}")

    n = args.update_stops
    nodes = rng.choice(g.n_nodes, min(n, g.n_nodes), replace=False)
    mats = travel_matrices(g, nodes)
    main_cls = [ROAD_CLASSES.index(c) for c in ("primary", "secondary", "trunk")]
    trees = mats._trees  # how many shortest-path trees use each edge
    pe = trees.pe[trees.pe >= 0] if trees is not None else np.zeros(0, np.int64)
    use = np.bincount(pe, minlength=g.n_edges)
    busy = np.argsort(-use * np.isin(g.road_class, main_cls))[:50]
    print(
        f"\n## closure updates, {n} stops (best of {args.repeat}; full = travel_matrices on the "
        "closed graph)"
    )
    print(
        f"{'closure':>28} {'edges':>6} {'rows':>5} {'labels %':>9} {'update s':>9} "
        f"{'full s':>8} {'speed-up':>9} {'equal':>6}"
    )
    ratios = []
    for k in range(args.closures):
        if k % 2 == 0:
            e = int(busy[rng.integers(busy.size)])
            v = int(g.tail[e])
            where = "busy main road"
        else:
            v = int(rng.integers(g.n_nodes))
            where = "random node"
        radius = float(rng.uniform(100.0, 250.0))
        c = RoadClosure.around(float(g.lat[v]), float(g.lon[v]), radius, reason="flooding")
        closed = apply_disruption(g, c)
        t_up, upd = best_of(lambda c=c: update_matrices(g, mats, c), args.repeat)
        t_full, full = best_of(lambda closed=closed: travel_matrices(closed, nodes), args.repeat)
        same = np.allclose(upd.duration_s, full.duration_s, rtol=1e-9) and np.allclose(
            upd.distance_m, full.distance_m, rtol=1e-9
        )
        ratios.append(t_full / t_up)
        label = f"{where} r={radius:.0f} m"
        share = 100.0 * upd.recomputed[1] / full.recomputed[1]
        print(
            f"{label:>28} {int(closed.closed.sum()):6d} {upd.recomputed[0]:5d} "
            f"{share:9.1f} {t_up:9.4f} {t_full:8.4f} {t_full / t_up:8.1f}x "
            f"{'yes' if same else 'NO':>6}"
        )
    print(f"geometric mean speed-up: {float(np.exp(np.mean(np.log(ratios)))):.1f}x")


if __name__ == "__main__":
    main()
