"""Road networks from OpenStreetMap: a routable graph, travel matrices and disruptions.

A :class:`RoadGraph` is a read-only directed graph in compressed sparse row
(CSR) form: one row of edges per node, each edge with its length, free-flow
speed, travel time, OSM road class and way id, and its shape (the points of
the street between its two nodes) for maps. It comes from a raw OSM PBF file
(:func:`load_osm_pbf`), an OSMnx GraphML file (:func:`load_graphml`) or the
extract shipped with aiguilleur (:func:`bundled_road_graph`: Monaco and the
French communes around it, (c) OpenStreetMap contributors, ODbL 1.0).

Only drivable road classes are kept (see :data:`DEFAULT_SPEED_KMH` for the
classes and the speeds assumed when ``maxspeed`` is missing), one-way streets
are respected (``oneway=yes/true/1/-1``, roundabouts and motorways imply it),
and only the largest strongly connected component is kept, so that every
node can reach every other; what was dropped is in ``RoadGraph.load_report``.

Locations given as latitude/longitude are snapped to their nearest node
(:func:`snap`); :func:`travel_matrices` gives the travel-time and distance
matrices among them, one vectorised many-source Dijkstra
(:func:`scipy.sparse.csgraph.dijkstra`) rather than one search per pair.

Disruptions are values: :class:`RoadClosure` (a set of edges, or every edge
within a polygon or a radius of a point), :class:`Slowdown` (travel times of
an area multiplied by a factor) and :class:`DepotOutage` (a depot out of
service: no change to the roads). :func:`apply_disruption` gives the
disrupted graph; :func:`update_matrices` gives the disrupted matrices,
searching again only the (stop, node) labels whose fastest path used an edge
that the disruption made slower or closed (a road disruption only ever makes
edges slower, so every other label keeps its value): the shortest-path
trees of the stops are kept with the matrices and repaired below the
changed edges.

:func:`route_geometry` and :func:`routes_geojson` draw routes along the
streets, as GeoJSON ready for a map.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse import csgraph

from aiguilleur._files import atomic_write_bytes
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.logistics._osm import (
    DEFAULT_SPEED_KMH,
    ROAD_CLASSES,
    RawRoads,
    points_in_polygon,
    read_graphml,
    read_pbf,
    read_poly,
)
from aiguilleur.logistics._paths import (
    Compiled,
    Trees,
    compile_graph,
    grow,
    repair,
    tree_use,
    use_matrix,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_SPEED_KMH",
    "ROAD_CLASSES",
    "DepotOutage",
    "Disruption",
    "RoadClosure",
    "RoadGraph",
    "Slowdown",
    "TravelMatrices",
    "affected_edges",
    "apply_disruption",
    "bundled_road_graph",
    "load_graphml",
    "load_osm_pbf",
    "load_road_graph",
    "route_geometry",
    "routes_geojson",
    "save_road_graph",
    "snap",
    "travel_matrices",
    "update_matrices",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_EARTH_RADIUS_M = 6_371_008.8
_DEG = 1e-7  # coordinates are stored in the bundled file as integers of 1e-7 degree, as OSM does
_BUNDLED = "monaco.npz"
ATTRIBUTION = "(c) OpenStreetMap contributors, ODbL 1.0"


def _frozen(a: npt.ArrayLike, dtype: Any) -> Any:
    arr: npt.NDArray[Any] = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


# -- the graph ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RoadGraph:
    """A directed road graph in CSR form (read-only).

    Nodes are numbered ``0 .. n_nodes - 1``; the edges leaving node ``u`` are
    ``indptr[u]:indptr[u + 1]``, so edge arrays are in CSR order.

    Attributes
    ----------
    node_id
        OSM node id of each node.
    lat, lon
        Node coordinates in degrees (WGS 84).
    indptr
        CSR row pointer, ``n_nodes + 1`` entries.
    tail, head
        Start and end node of each edge.
    length_m
        Length of each edge along the street.
    speed_kmh
        Speed on each edge (``maxspeed``, or the class default; divided by the
        factor of a :class:`Slowdown` over it).
    travel_time_s
        ``length_m / speed``.
    road_class
        Index into :data:`ROAD_CLASSES` of each edge's OSM ``highway`` class.
    way_id
        OSM way id of each edge (-1 when unknown).
    closed
        Whether each edge is closed (by a :class:`RoadClosure`).
    geom_indptr, geom_lon, geom_lat
        Shape points of each edge strictly between its two nodes:
        ``geom_lon[geom_indptr[e]:geom_indptr[e + 1]]``.
    source
        Where the graph came from.
    load_report
        What the loader dropped and why (counts), including the nodes and
        edges outside the largest strongly connected component.
    """

    node_id: IntArray
    lat: FloatArray
    lon: FloatArray
    indptr: IntArray
    tail: IntArray
    head: IntArray
    length_m: FloatArray
    speed_kmh: FloatArray
    travel_time_s: FloatArray
    road_class: npt.NDArray[np.int8]
    way_id: IntArray
    closed: BoolArray
    geom_indptr: IntArray
    geom_lon: FloatArray
    geom_lat: FloatArray
    source: str = ""
    load_report: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = self.node_id.shape[0], self.head.shape[0]
        if self.indptr.shape != (n + 1,) or int(self.indptr[-1]) != m:
            raise ValidationError("RoadGraph: indptr does not match the nodes and edges")
        for name in ("lat", "lon"):
            if getattr(self, name).shape != (n,):
                raise ValidationError(f"RoadGraph: {name} must have one entry per node")
        for name in (
            "tail",
            "length_m",
            "speed_kmh",
            "travel_time_s",
            "road_class",
            "way_id",
            "closed",
        ):
            if getattr(self, name).shape != (m,):
                raise ValidationError(f"RoadGraph: {name} must have one entry per edge")
        if self.geom_indptr.shape != (m + 1,):
            raise ValidationError("RoadGraph: geom_indptr must have n_edges + 1 entries")

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_id.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges (closed ones included)."""
        return int(self.head.shape[0])

    def summary(self) -> dict[str, Any]:
        """Counts and totals, JSON-ready.

        Returns
        -------
        dict
            ``source``, ``nodes``, ``edges``, ``closed_edges``, ``length_km``
            (sum over directed edges), ``edges_by_class``, ``bbox``
            (west, south, east, north) and ``dropped`` (the load report).
        """
        counts = np.bincount(self.road_class, minlength=len(ROAD_CLASSES))
        return {
            "source": self.source,
            "nodes": self.n_nodes,
            "edges": self.n_edges,
            "closed_edges": int(self.closed.sum()),
            "length_km": round(float(self.length_m.sum()) / 1000.0, 3),
            "edges_by_class": {c: int(k) for c, k in zip(ROAD_CLASSES, counts, strict=True) if k},
            "bbox": [
                float(self.lon.min()),
                float(self.lat.min()),
                float(self.lon.max()),
                float(self.lat.max()),
            ],
            "dropped": dict(self.load_report),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per directed edge: ends, OSM ids, class, length, speed, time, closed."""
        import pandas as pd

        return pd.DataFrame(
            {
                "tail": self.tail,
                "head": self.head,
                "tail_osm_id": self.node_id[self.tail],
                "head_osm_id": self.node_id[self.head],
                "way_id": self.way_id,
                "road_class": [ROAD_CLASSES[c] for c in self.road_class],
                "length_m": self.length_m,
                "speed_kmh": self.speed_kmh,
                "travel_time_s": self.travel_time_s,
                "closed": self.closed,
            }
        )


def _assemble(raw: RawRoads, source: str) -> RoadGraph:
    """Index the raw edges, keep the largest strongly connected component, sort as CSR."""
    if not raw.tail:
        raise ValidationError(f"{source}: no drivable road")
    osm_tail = np.asarray(raw.tail, dtype=np.int64)
    osm_head = np.asarray(raw.head, dtype=np.int64)
    report: Counter[str] = Counter(raw.dropped)
    loops = osm_tail == osm_head
    if loops.any():
        report["edges from a node to itself"] += int(loops.sum())
    ids = np.unique(np.concatenate([osm_tail, osm_head]))
    tail = np.searchsorted(ids, osm_tail)
    head = np.searchsorted(ids, osm_head)
    n = ids.shape[0]
    adj = sp.csr_array((np.ones(int((~loops).sum())), (tail[~loops], head[~loops])), shape=(n, n))
    _, labels = csgraph.connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(labels)
    keep_node = labels == int(np.argmax(sizes))
    keep_edge = keep_node[tail] & keep_node[head] & ~loops
    if (~keep_node).any():
        report["nodes outside the largest strongly connected component"] = int((~keep_node).sum())
        report["edges outside the largest strongly connected component"] = int(
            (~keep_edge & ~loops).sum()
        )
        report["strongly connected components dropped"] = int(sizes.shape[0] - 1)

    new_index = np.cumsum(keep_node) - 1
    sel = np.flatnonzero(keep_edge)
    t, h = new_index[tail[sel]], new_index[head[sel]]
    order = np.lexsort((h, t))  # CSR order, stable for reproducible edge numbers
    sel, t, h = sel[order], t[order], h[order]
    kept_ids = ids[keep_node]
    nn = kept_ids.shape[0]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(t, minlength=nn))])
    length = np.asarray(raw.length_m, dtype=np.float64)[sel]
    speed = np.asarray(raw.speed_kmh, dtype=np.float64)[sel]
    # Interior shape points only: the ends are the nodes themselves.
    interiors = [raw.geometry[int(k)][1:-1] for k in sel]
    counts = np.array([g.shape[0] for g in interiors], dtype=np.int64)
    pts = np.concatenate(interiors) if counts.sum() else np.zeros((0, 2))
    return RoadGraph(
        node_id=_frozen(kept_ids, np.int64),
        lat=_frozen([raw.node_lat[int(i)] for i in kept_ids], np.float64),
        lon=_frozen([raw.node_lon[int(i)] for i in kept_ids], np.float64),
        indptr=_frozen(indptr, np.int64),
        tail=_frozen(t, np.int64),
        head=_frozen(h, np.int64),
        length_m=_frozen(length, np.float64),
        speed_kmh=_frozen(speed, np.float64),
        travel_time_s=_frozen(length / (speed / 3.6), np.float64),
        road_class=_frozen(np.asarray(raw.road_class)[sel], np.int8),
        way_id=_frozen(np.asarray(raw.way_id)[sel], np.int64),
        closed=_frozen(np.zeros(sel.shape[0], dtype=bool), np.bool_),
        geom_indptr=_frozen(np.concatenate([[0], np.cumsum(counts)]), np.int64),
        geom_lon=_frozen(pts[:, 0], np.float64),
        geom_lat=_frozen(pts[:, 1], np.float64),
        source=source,
        load_report=dict(report),
    )


def load_osm_pbf(
    path: str | Path,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    polygon: Sequence[tuple[float, float]] | str | Path | None = None,
) -> RoadGraph:
    """Read the drivable road graph of an OpenStreetMap PBF file.

    Parameters
    ----------
    path
        An ``.osm.pbf`` (or ``.osm``) file.
    bbox
        Keep only the roads inside (west, south, east, north), in degrees.
    polygon
        Keep only the roads inside a polygon: (lon, lat) pairs, or the path of
        an Osmosis ``.poly`` file.

    Returns
    -------
    RoadGraph
        Ways split at their junctions into edges; the largest strongly
        connected component.

    Raises
    ------
    CaseFormatError
        The file is missing or unreadable.
    ValidationError
        No drivable road is left (inside the area).
    """
    if bbox is not None:
        w, s, e, n = (float(v) for v in bbox)
        if not (w < e and s < n):
            raise ValidationError(f"bbox: expected (west, south, east, north), got {bbox!r}")
    ring = read_poly(Path(polygon)) if isinstance(polygon, (str, Path)) else polygon
    raw = read_pbf(Path(path), bbox=bbox, polygon=ring)
    return _assemble(raw, Path(path).name)


def load_graphml(path: str | Path) -> RoadGraph:
    """Read the drivable road graph of an OSMnx GraphML file.

    Footways, paths, tracks, steps, cycleways and other non-drivable edges of
    OSMnx's ``"all"`` network type are dropped, as are edges whose ``access``
    is ``no`` or ``private``.

    Raises
    ------
    CaseFormatError
        The file is missing, is not XML, or a node or edge is malformed (named).
    """
    raw = read_graphml(Path(path))
    return _assemble(raw, Path(path).name)


def save_road_graph(graph: RoadGraph, path: str | Path) -> None:
    """Write a road graph as a compressed ``.npz`` file (atomically).

    Coordinates are stored as integers of 1e-7 degree (OSM's own precision, so
    nothing is lost for OSM data), lengths and speeds as float64;
    closures and slowdowns are not stored: the file holds the graph as loaded.
    """
    import io

    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        node_id=graph.node_id,
        lat_e7=np.round(graph.lat / _DEG).astype(np.int32),
        lon_e7=np.round(graph.lon / _DEG).astype(np.int32),
        tail=graph.tail.astype(np.int32),
        head=graph.head.astype(np.int32),
        length_m=graph.length_m,
        speed_kmh=graph.speed_kmh,
        road_class=graph.road_class,
        way_id=graph.way_id,
        geom_count=np.diff(graph.geom_indptr).astype(np.int32),
        geom_lat_e7=np.round(graph.geom_lat / _DEG).astype(np.int32),
        geom_lon_e7=np.round(graph.geom_lon / _DEG).astype(np.int32),
        road_classes=np.array(ROAD_CLASSES),
        meta=np.array([graph.source, repr(sorted(graph.load_report.items()))]),
    )
    atomic_write_bytes(Path(path), buf.getvalue())


def load_road_graph(path: str | Path) -> RoadGraph:
    """Read a road graph written by :func:`save_road_graph`.

    Raises
    ------
    CaseFormatError
        The file is missing or is not such a graph (the missing array is named).
    """
    from aiguilleur._files import read_input_bytes

    p = Path(path)
    data = read_input_bytes(p)
    return _read_npz(data, str(p))


#: Most bytes the arrays of a saved road graph may take once decompressed (a
#: compressed .npz can expand far beyond its file size).
MAX_GRAPH_BYTES = 4 * 1024**3


def _read_npz(data: bytes, name: str) -> RoadGraph:
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            expanded = sum(i.file_size for i in zf.infolist())
        if expanded > MAX_GRAPH_BYTES:
            raise CaseFormatError(
                f"not a road graph: its arrays would take {expanded:,} bytes "
                f"(at most {MAX_GRAPH_BYTES:,})",
                name,
            )
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except CaseFormatError:
        raise
    except Exception as e:  # zipfile, zlib and numpy raise many kinds on a corrupt file
        msg = " ".join(str(e).split())[:120] or type(e).__name__
        raise CaseFormatError(f"not a road graph (.npz): {msg}", name) from None
    try:
        return _graph_from_arrays(d, name)
    except (ValueError, TypeError, IndexError, KeyError, SyntaxError, OverflowError):
        raise CaseFormatError("not a road graph: malformed arrays", name) from None


def _graph_from_arrays(d: dict[str, Any], name: str) -> RoadGraph:
    import ast

    need = ("node_id", "lat_e7", "lon_e7", "tail", "head", "length_m", "speed_kmh", "meta")
    for key in (*need, "road_class", "way_id", "geom_count", "geom_lat_e7", "geom_lon_e7"):
        if key not in d:
            raise CaseFormatError(f"not a road graph: array {key!r} is missing", name)
    if tuple(str(c) for c in d.get("road_classes", ())) != ROAD_CLASSES:
        raise CaseFormatError("road classes differ from this version's", name)
    tail = d["tail"].astype(np.int64)
    head = d["head"].astype(np.int64)
    n = d["node_id"].shape[0]
    if tail.size and (np.any(np.diff(tail) < 0) or max(tail.max(), head.max()) >= n):
        raise CaseFormatError("edges are not in CSR order or name unknown nodes", name)
    length = d["length_m"].astype(np.float64)
    speed = d["speed_kmh"].astype(np.float64)
    source, report = str(d["meta"][0]), dict(ast.literal_eval(str(d["meta"][1])))
    return RoadGraph(
        node_id=_frozen(d["node_id"], np.int64),
        lat=_frozen(d["lat_e7"] * _DEG, np.float64),
        lon=_frozen(d["lon_e7"] * _DEG, np.float64),
        indptr=_frozen(np.concatenate([[0], np.cumsum(np.bincount(tail, minlength=n))]), np.int64),
        tail=_frozen(tail, np.int64),
        head=_frozen(head, np.int64),
        length_m=_frozen(length, np.float64),
        speed_kmh=_frozen(speed, np.float64),
        travel_time_s=_frozen(length / (speed / 3.6), np.float64),
        road_class=_frozen(d["road_class"], np.int8),
        way_id=_frozen(d["way_id"], np.int64),
        closed=_frozen(np.zeros(tail.shape[0], dtype=bool), np.bool_),
        geom_indptr=_frozen(np.concatenate([[0], np.cumsum(d["geom_count"])]), np.int64),
        geom_lon=_frozen(d["geom_lon_e7"] * _DEG, np.float64),
        geom_lat=_frozen(d["geom_lat_e7"] * _DEG, np.float64),
        source=source,
        load_report=report,
    )


_bundled_cache: list[RoadGraph] = []


def bundled_road_graph() -> RoadGraph:
    """The road extract shipped with aiguilleur: Monaco and the communes around it.

    Drivable roads of OpenStreetMap (data of 2016-03-05) over lon 7.349-7.491,
    lat 43.710-43.770; (c) OpenStreetMap contributors, ODbL 1.0 (see
    ``aiguilleur/data/roads/README.md``). Read once per process.
    """
    if not _bundled_cache:
        data = files("aiguilleur.data").joinpath("roads", _BUNDLED).read_bytes()
        _bundled_cache.append(_read_npz(data, f"aiguilleur/data/roads/{_BUNDLED}"))
    return _bundled_cache[0]


# -- snapping -----------------------------------------------------------------------


def _local_xy(graph: RoadGraph, lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Equirectangular metres around the graph's mean latitude (fine over a city)."""
    lat0 = math.radians(float(graph.lat.mean()))
    x = np.radians(lon) * math.cos(lat0) * _EARTH_RADIUS_M
    y = np.radians(lat) * _EARTH_RADIUS_M
    return np.column_stack([x, y])


def snap(
    graph: RoadGraph,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    *,
    max_distance_m: float = 500.0,
) -> IntArray:
    """The nearest node of each point.

    Parameters
    ----------
    graph
        The road graph.
    lat, lon
        Coordinates in degrees (scalars or arrays of the same length).
    max_distance_m
        A point farther than this from every node is outside the extract.

    Returns
    -------
    numpy.ndarray
        Node index of each point (int64).

    Raises
    ------
    ValidationError
        A coordinate is not finite, or a point is outside the extract; the
        message names the first such point (index and coordinates) and the
        distance to the nearest node.
    """
    from scipy.spatial import cKDTree

    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    if la.shape != lo.shape or la.ndim != 1:
        raise ValidationError(
            f"snap: lat and lon must have the same length, got {la.shape} and {lo.shape}"
        )
    bad = ~(np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90) & (np.abs(lo) <= 180))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            f"point {i}: ({la[i]!r}, {lo[i]!r}) is not a latitude/longitude in degrees",
            "point",
            i,
        )
    tree = cKDTree(_local_xy(graph, graph.lat, graph.lon))
    dist, idx = tree.query(_local_xy(graph, la, lo))
    dist = np.asarray(dist, dtype=np.float64)
    far = np.asarray(dist > max_distance_m)
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise ValidationError(
            f"point {i} at lat {la[i]:.6f}, lon {lo[i]:.6f} is outside the road extract "
            f"{graph.source!r}: the nearest road node is {dist[i]:.0f} m away "
            f"(at most {max_distance_m:g} m allowed)",
            "point",
            i,
        )
    out: IntArray = np.asarray(idx, dtype=np.int64)
    return out


# -- shortest paths -----------------------------------------------------------------

# Above this many (tree, node) labels the trees are not kept with the matrices
# (16 bytes each plus 16 for the lengths): updates then recompute whole rows,
# those whose recorded paths touch a changed edge.
_TREE_LIMIT = 20_000_000


def _compile(graph: RoadGraph) -> Compiled:
    return compile_graph(graph.n_nodes, graph.tail, graph.head, graph.travel_time_s, graph.closed)


@dataclass(frozen=True, eq=False)
class TravelMatrices:
    """Travel times and distances among a set of nodes (read-only).

    Entry ``[i, j]`` is the trip from ``nodes[i]`` to ``nodes[j]`` on the
    fastest path; ``inf`` where ``nodes[j]`` cannot be reached (only after a
    closure: a :class:`RoadGraph` as loaded is strongly connected).

    Attributes
    ----------
    nodes
        Graph node index of each row and column.
    duration_s
        Shortest travel time, ``(n, n)``.
    distance_m
        Length of that fastest path, ``(n, n)``.
    recomputed
        What the computation that made these matrices searched: the number
        of rows that were recomputed or repaired, and the number of
        (row source, graph node) labels searched. :func:`travel_matrices`
        searches every node from every distinct stop; :func:`update_matrices`
        only the nodes whose fastest path used a changed edge (``(0, 0)``
        when nothing could change).
    """

    nodes: IntArray
    duration_s: FloatArray
    distance_m: FloatArray
    recomputed: tuple[int, int] = (0, 0)
    # The shortest-path tree of each distinct stop (the row ``i`` uses tree
    # ``_tree_of[i]``), or, on very large inputs, only the edges that each
    # tree's paths to the stops use: what update_matrices needs.
    _tree_of: IntArray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    _trees: Trees | None = field(default=None, repr=False)
    _use: sp.csr_array | None = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per ordered pair: ``from``, ``to`` (positions), nodes, duration, distance."""
        import pandas as pd

        n = self.nodes.shape[0]
        i, j = np.divmod(np.arange(n * n), n)
        return pd.DataFrame(
            {
                "from": i,
                "to": j,
                "from_node": self.nodes[i],
                "to_node": self.nodes[j],
                "duration_s": self.duration_s.ravel(),
                "distance_m": self.distance_m.ravel(),
            }
        )


def _read_rows(trees: Trees, which: IntArray, nodes: IntArray) -> tuple[FloatArray, FloatArray]:
    """Durations and distances to ``nodes`` along trees ``which``."""
    duration = trees.dist[which][:, nodes]
    distance = trees.length[which][:, nodes]
    distance[~np.isfinite(duration)] = np.inf
    return duration, distance


def _check_nodes(graph: RoadGraph, nodes: npt.ArrayLike) -> IntArray:
    arr = np.asarray(nodes)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValidationError("nodes: expected a non-empty 1-D array of node indices")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(f"nodes: expected integer node indices, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= graph.n_nodes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            f"nodes[{i}] = {int(arr[i])} is not a node of the graph (0..{graph.n_nodes - 1})",
            "nodes",
            i,
        )
    out: IntArray = arr.astype(np.int64)
    return out


def travel_matrices(graph: RoadGraph, nodes: npt.ArrayLike) -> TravelMatrices:
    """Travel-time and distance matrices among ``nodes``.

    One Dijkstra per distinct node, all in one call of
    :func:`scipy.sparse.csgraph.dijkstra`; distances are the lengths of the
    fastest paths, read from the shortest-path trees for all pairs at once.

    Parameters
    ----------
    graph
        The road graph (closed edges are not used).
    nodes
        Node indices (from :func:`snap`); repeats are allowed.

    Returns
    -------
    TravelMatrices
    """
    idx = _check_nodes(graph, nodes)
    comp = _compile(graph)
    roots, tree_of = np.unique(idx, return_inverse=True)
    trees = grow(comp, roots, graph.length_m)
    duration, distance = _read_rows(trees, tree_of, idx)
    keep = roots.shape[0] * graph.n_nodes <= _TREE_LIMIT
    use = None
    if not keep:
        t, e = tree_use(trees.pred, trees.pe, roots)
        use = use_matrix(t, e, roots.shape[0], graph.n_edges)
    return TravelMatrices(
        nodes=_frozen(idx, np.int64),
        duration_s=_frozen(duration, np.float64),
        distance_m=_frozen(distance, np.float64),
        recomputed=(idx.shape[0], roots.shape[0] * graph.n_nodes),
        _tree_of=_frozen(tree_of, np.int64),
        _trees=trees if keep else None,
        _use=use,
    )


# -- disruptions --------------------------------------------------------------------


def _area_fields(
    name: str,
    edges: tuple[int, ...],
    polygon_lonlat: tuple[tuple[float, float], ...],
    center_latlon: tuple[float, float] | None,
    radius_m: float,
) -> None:
    given = sum([bool(edges), bool(polygon_lonlat), center_latlon is not None])
    if given != 1:
        raise ValidationError(
            f"{name}: give exactly one of edges, polygon_lonlat or center_latlon (+ radius_m)"
        )
    if any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < 0 for e in edges):
        raise ValidationError(f"{name}: edges must be non-negative edge indices, got {edges!r}")
    if polygon_lonlat:
        if len(polygon_lonlat) < 3:
            raise ValidationError(f"{name}: a polygon needs at least 3 (lon, lat) points")
        for k, p in enumerate(polygon_lonlat):
            if len(p) != 2 or not all(math.isfinite(float(c)) for c in p):
                raise ValidationError(f"{name}: polygon point {k} is not a (lon, lat) pair: {p!r}")
    if center_latlon is not None:
        if len(center_latlon) != 2 or not all(math.isfinite(float(c)) for c in center_latlon):
            raise ValidationError(
                f"{name}: center_latlon must be (lat, lon), got {center_latlon!r}"
            )
        if not (math.isfinite(radius_m) and radius_m > 0):
            raise ValidationError(f"{name}: radius_m must be a positive number, got {radius_m!r}")


@dataclass(frozen=True)
class RoadClosure:
    """Roads closed to traffic: given edges, or every edge within an area.

    An edge is within the area when any part of its street geometry is: a
    point of it inside the polygon or a segment crossing its boundary; a
    segment passing closer than ``radius_m`` to the centre.

    Parameters
    ----------
    edges
        Edge indices of the graph the closure is applied to.
    polygon_lonlat
        A polygon as (lon, lat) pairs (GeoJSON order).
    center_latlon, radius_m
        A disc: centre as (lat, lon) and radius in metres.
    reason
        Free text for reports (``"flooding"``).
    """

    edges: tuple[int, ...] = ()
    polygon_lonlat: tuple[tuple[float, float], ...] = ()
    center_latlon: tuple[float, float] | None = None
    radius_m: float = 0.0
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(int(e) for e in self.edges))
        _area_fields(
            "RoadClosure", self.edges, self.polygon_lonlat, self.center_latlon, self.radius_m
        )

    @classmethod
    def around(cls, lat: float, lon: float, radius_m: float, reason: str = "") -> RoadClosure:
        """Every edge passing within ``radius_m`` of a point."""
        return cls(center_latlon=(float(lat), float(lon)), radius_m=float(radius_m), reason=reason)


@dataclass(frozen=True)
class Slowdown:
    """Travel times multiplied by ``factor`` (>= 1) on given edges or within an area.

    The area is given as for :class:`RoadClosure`.
    """

    factor: float
    edges: tuple[int, ...] = ()
    polygon_lonlat: tuple[tuple[float, float], ...] = ()
    center_latlon: tuple[float, float] | None = None
    radius_m: float = 0.0
    reason: str = ""

    def __post_init__(self) -> None:
        f = self.factor
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not (1.0 <= f < math.inf):
            raise ValidationError(f"Slowdown: factor must be a number >= 1, got {f!r}")
        object.__setattr__(self, "factor", float(f))
        object.__setattr__(self, "edges", tuple(int(e) for e in self.edges))
        _area_fields("Slowdown", self.edges, self.polygon_lonlat, self.center_latlon, self.radius_m)


@dataclass(frozen=True)
class DepotOutage:
    """A depot out of service (the roads are unchanged).

    Parameters
    ----------
    depot
        The depot's id or index, as the routing problem names it.
    reason
        Free text for reports.
    """

    depot: int | str
    reason: str = ""


Disruption: TypeAlias = RoadClosure | Slowdown | DepotOutage


def _polylines(graph: RoadGraph) -> tuple[IntArray, FloatArray, FloatArray]:
    """Every edge's full polyline (tail, shape points, head): (indptr, lon, lat)."""
    m = graph.n_edges
    inner = np.diff(graph.geom_indptr)
    indptr = np.concatenate([[0], np.cumsum(inner + 2)])
    total = int(indptr[-1])
    lon = np.empty(total)
    lat = np.empty(total)
    lon[indptr[:-1]], lat[indptr[:-1]] = graph.lon[graph.tail], graph.lat[graph.tail]
    lon[indptr[1:] - 1], lat[indptr[1:] - 1] = graph.lon[graph.head], graph.lat[graph.head]
    owner = np.repeat(np.arange(m), inner)
    offset = np.arange(owner.shape[0]) - graph.geom_indptr[owner]
    pos = indptr[owner] + 1 + offset
    lon[pos], lat[pos] = graph.geom_lon, graph.geom_lat
    return indptr, lon, lat


def affected_edges(graph: RoadGraph, disruption: Disruption) -> IntArray:
    """The edges a closure or slowdown applies to (none for a depot outage).

    Raises
    ------
    ValidationError
        An edge index is outside the graph.
    """
    if isinstance(disruption, DepotOutage):
        return np.zeros(0, dtype=np.int64)
    if disruption.edges:
        e = np.unique(np.asarray(disruption.edges, dtype=np.int64))
        if e[-1] >= graph.n_edges:
            raise ValidationError(
                f"{type(disruption).__name__}: edge {int(e[-1])} is not an edge of the graph "
                f"(0..{graph.n_edges - 1})"
            )
        return e
    indptr, lon, lat = _polylines(graph)
    seg_owner = np.repeat(np.arange(graph.n_edges), np.diff(indptr) - 1)
    first = np.ones(lon.shape[0], dtype=bool)
    first[indptr[1:] - 1] = False  # segment k runs from point k to k + 1 within an edge
    a = np.flatnonzero(first)
    xy = _local_xy(graph, lat, lon)
    p0, p1 = xy[a], xy[a + 1]
    if disruption.center_latlon is not None:
        c = _local_xy(
            graph, np.array([disruption.center_latlon[0]]), np.array([disruption.center_latlon[1]])
        )[0]
        d = p1 - p0
        dd = np.einsum("ij,ij->i", d, d)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.clip(np.einsum("ij,ij->i", c - p0, d) / dd, 0.0, 1.0)
        s = np.where(dd > 0, s, 0.0)
        near = np.hypot(*(p0 + s[:, None] * d - c).T) <= disruption.radius_m
        return np.unique(seg_owner[near])
    ring = disruption.polygon_lonlat
    inside_pt = points_in_polygon(lon, lat, ring)
    hit = inside_pt[a] | inside_pt[a + 1]
    poly = _local_xy(graph, np.array([p[1] for p in ring]), np.array([p[0] for p in ring]))
    q0 = poly
    q1 = np.roll(poly, -1, axis=0)
    for k in range(q0.shape[0]):  # one pass per polygon side, vectorised over segments
        hit |= _segments_cross(p0, p1, q0[k], q1[k])
    return np.unique(seg_owner[hit])


def _segments_cross(p0: FloatArray, p1: FloatArray, q0: FloatArray, q1: FloatArray) -> BoolArray:
    def orient(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
        out: FloatArray = np.sign(
            (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
            - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
        )
        return out

    o1, o2 = orient(p0, p1, q0), orient(p0, p1, q1)
    o3 = orient(np.broadcast_to(q0, p0.shape), np.broadcast_to(q1, p0.shape), p0)
    o4 = orient(np.broadcast_to(q0, p0.shape), np.broadcast_to(q1, p0.shape), p1)
    out: BoolArray = (o1 * o2 < 0) & (o3 * o4 < 0)
    return out


def apply_disruption(graph: RoadGraph, disruption: Disruption) -> RoadGraph:
    """The graph with a closure or slowdown applied (unchanged for a depot outage).

    Closed edges stay in the graph with ``closed`` set, so node and edge
    indices keep their meaning; a slowdown divides the speed and multiplies
    the travel time of its edges by its factor.
    """
    if isinstance(disruption, DepotOutage):
        return graph
    if not isinstance(disruption, (RoadClosure, Slowdown)):
        raise ValidationError(f"not a disruption: {disruption!r}")
    edges = affected_edges(graph, disruption)
    if isinstance(disruption, RoadClosure):
        closed = graph.closed.copy()
        closed[edges] = True
        return replace(graph, closed=_frozen(closed, np.bool_))
    tt = graph.travel_time_s.copy()
    speed = graph.speed_kmh.copy()
    tt[edges] *= disruption.factor
    speed[edges] /= disruption.factor
    return replace(
        graph, travel_time_s=_frozen(tt, np.float64), speed_kmh=_frozen(speed, np.float64)
    )


def update_matrices(
    graph_before: RoadGraph, matrices: TravelMatrices, disruption: Disruption
) -> TravelMatrices:
    """The matrices after a disruption, searching again only what can change.

    A closure or slowdown only makes edges slower, so a node keeps its
    distance from a stop unless the stop's fastest path to it used one of
    those edges. The shortest-path trees of the stops are kept with the
    matrices: the nodes below a changed tree edge are searched again (all
    trees together, in one Dijkstra call seeded with the exact distances of
    the unaffected nodes around them) and every other label is kept. The
    result equals :func:`travel_matrices` on the disrupted graph (the test
    suite checks it on random closures and slowdowns, chained). On very
    large inputs, where the trees are not kept, the rows whose paths touch a
    changed edge are recomputed whole.

    Parameters
    ----------
    graph_before
        The graph ``matrices`` were computed on.
    matrices
        From :func:`travel_matrices` or a previous update on ``graph_before``.
    disruption
        The new disruption.

    Returns
    -------
    TravelMatrices
        With ``recomputed`` telling how much was searched again.
    """
    if isinstance(disruption, DepotOutage):
        return replace(matrices, recomputed=(0, 0))
    trees, use = matrices._trees, matrices._use
    n_nodes = trees.dist.shape[1] if trees is not None else None
    if (n_nodes is not None and n_nodes != graph_before.n_nodes) or (
        use is not None and use.shape[1] != graph_before.n_edges
    ):
        raise ValidationError("update_matrices: the matrices were computed on another graph")
    after = apply_disruption(graph_before, disruption)
    changed = (after.closed & ~graph_before.closed) | (
        after.travel_time_s > graph_before.travel_time_s
    )
    if not changed.any():
        return replace(matrices, recomputed=(0, 0))
    comp = _compile(after)
    nodes, tree_of = matrices.nodes, matrices._tree_of
    duration = matrices.duration_s.copy()
    distance = matrices.distance_m.copy()
    if trees is not None:
        trees, hit, searched = repair(trees, comp, changed, after.head, after.length_m)
        rows = np.flatnonzero(np.isin(tree_of, hit))
        duration[rows], distance[rows] = _read_rows(trees, tree_of[rows], nodes)
    elif use is not None:
        hit = np.flatnonzero(np.asarray(use[:, np.flatnonzero(changed)].sum(axis=1)).ravel() > 0)
        if hit.size == 0:
            return replace(matrices, recomputed=(0, 0))
        roots = np.unique(nodes)
        fresh = grow(comp, roots[hit], after.length_m)
        where = np.full(roots.shape[0], -1, dtype=np.int64)
        where[hit] = np.arange(hit.size)
        rows = np.flatnonzero(where[tree_of] >= 0)
        duration[rows], distance[rows] = _read_rows(fresh, where[tree_of[rows]], nodes)
        t, e = tree_use(fresh.pred, fresh.pe, roots)
        use = _replace_rows(use, hit, use_matrix(t, e, hit.size, after.n_edges))
        searched = hit.size * after.n_nodes
    else:
        raise ValidationError("update_matrices: these matrices carry no path information")
    return TravelMatrices(
        nodes=matrices.nodes,
        duration_s=_frozen(duration, np.float64),
        distance_m=_frozen(distance, np.float64),
        recomputed=(int(rows.size), int(searched)),
        _tree_of=tree_of,
        _trees=trees,
        _use=use,
    )


def _replace_rows(use: sp.csr_array, which: IntArray, fresh: sp.csr_array) -> sp.csr_array:
    """``use`` with rows ``which`` replaced by the rows of ``fresh``."""
    n = use.shape[0]
    keep = np.ones(n, dtype=np.float32)
    keep[which] = 0.0
    place = sp.csr_array(
        (np.ones(which.shape[0], dtype=np.float32), (which, np.arange(which.shape[0]))),
        shape=(n, which.shape[0]),
    )
    out = sp.csr_array(sp.diags_array(keep) @ use + place @ fresh)
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out


# -- geometry -----------------------------------------------------------------------


def _path_edges(
    graph: RoadGraph, comp: Compiled, pred: npt.NDArray[np.int32], src: int, dst: int
) -> list[int]:
    n = graph.n_nodes
    out: list[int] = []
    v = dst
    while v != src:
        u = int(pred[v])
        if u < 0:
            raise ValidationError(
                f"no open road from node {src} to node {dst} (closed roads cut it off)"
            )
        out.append(int(comp.edge[np.searchsorted(comp.keys, u * n + v)]))
        v = u
    out.reverse()
    return out


def _legs(graph: RoadGraph, node_sequence: Sequence[int]) -> list[list[int]]:
    """The edges of the fastest path of each consecutive pair of the sequence."""
    seq = _check_nodes(graph, list(node_sequence)) if len(node_sequence) else np.zeros(0, np.int64)
    if seq.shape[0] < 2:
        return []
    comp = _compile(graph)
    src = np.unique(seq[:-1])
    _, pred = csgraph.dijkstra(comp.matrix, directed=True, indices=src, return_predecessors=True)
    row = {int(s): k for k, s in enumerate(src)}
    return [
        _path_edges(graph, comp, pred[row[int(a)]], int(a), int(b))
        for a, b in itertools.pairwise(seq)
    ]


def _edge_points(graph: RoadGraph, e: int) -> list[tuple[float, float]]:
    g0, g1 = int(graph.geom_indptr[e]), int(graph.geom_indptr[e + 1])
    inner = list(zip(graph.geom_lon[g0:g1].tolist(), graph.geom_lat[g0:g1].tolist(), strict=True))
    return [*inner, (float(graph.lon[graph.head[e]]), float(graph.lat[graph.head[e]]))]


def route_geometry(graph: RoadGraph, node_sequence: Sequence[int]) -> list[tuple[float, float]]:
    """The street geometry of a route visiting ``node_sequence`` in order.

    Each leg follows the fastest open path; the points are (lon, lat), GeoJSON
    order, from the first node to the last.

    Raises
    ------
    ValidationError
        A node is not in the graph, or closures cut a leg off (named).
    """
    if len(node_sequence) == 0:
        return []
    first = int(_check_nodes(graph, [node_sequence[0]])[0])
    pts = [(float(graph.lon[first]), float(graph.lat[first]))]
    for leg in _legs(graph, node_sequence):
        for e in leg:
            pts.extend(_edge_points(graph, e))
    return pts


def routes_geojson(
    graph: RoadGraph,
    routes: Sequence[Sequence[int]],
    *,
    properties: Sequence[Mapping[str, Any]] | None = None,
    with_stops: bool = True,
) -> dict[str, Any]:
    """Routes as a GeoJSON FeatureCollection, drawn along the streets.

    Parameters
    ----------
    graph
        The road graph the routes run on.
    routes
        One node sequence per route (depot first and last if the route
        returns).
    properties
        Optional extra properties per route (vehicle name, colour, ...).
    with_stops
        Add one Point feature per stop (properties ``route``, ``stop``, ``node``).

    Returns
    -------
    dict
        A FeatureCollection: one LineString per route with properties
        ``route``, ``stops``, ``length_m``, ``duration_s`` and the extra ones,
        and an ``attribution`` member naming OpenStreetMap's licence.
    """
    if properties is not None and len(properties) != len(routes):
        raise ValidationError(
            f"properties: expected one mapping per route ({len(routes)}), got {len(properties)}"
        )
    features: list[dict[str, Any]] = []
    for k, seq in enumerate(routes):
        seq = [int(v) for v in seq]
        legs = _legs(graph, seq)
        edges = [e for leg in legs for e in leg]
        coords = route_geometry(graph, seq)
        props: dict[str, Any] = {
            "route": k,
            "stops": len(seq),
            "length_m": round(float(graph.length_m[edges].sum()), 1) if edges else 0.0,
            "duration_s": round(float(graph.travel_time_s[edges].sum()), 1) if edges else 0.0,
        }
        if properties is not None:
            props.update(properties[k])
        if len(coords) >= 2:
            geometry: dict[str, Any] = {
                "type": "LineString",
                "coordinates": [list(p) for p in coords],
            }
        else:
            geometry = {"type": "Point", "coordinates": list(coords[0]) if coords else []}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
        if with_stops:
            for s, v in enumerate(seq):
                features.append(
                    {
                        "type": "Feature",
                        "geometry": {
                            "type": "Point",
                            "coordinates": [float(graph.lon[v]), float(graph.lat[v])],
                        },
                        "properties": {"route": k, "stop": s, "node": v},
                    }
                )
    return {"type": "FeatureCollection", "features": features, "attribution": ATTRIBUTION}
