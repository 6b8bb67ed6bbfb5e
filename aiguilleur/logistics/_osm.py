"""Reading OpenStreetMap road data into raw directed edges (private).

Two readers share one output, :class:`RawRoads`: :func:`read_pbf` (raw OSM PBF
through pyosmium) and :func:`read_graphml` (OSMnx GraphML through the standard
library's XML parser). Both keep only the drivable road classes of
:data:`DEFAULT_SPEED_KMH`, respect one-way streets and compute a speed per edge
from ``maxspeed`` or the class default. :mod:`aiguilleur.logistics.roads`
turns the result into a :class:`~aiguilleur.logistics.roads.RoadGraph`.
"""

from __future__ import annotations

import ast
import itertools
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import CaseFormatError, ValidationError

__all__ = [
    "DEFAULT_SPEED_KMH",
    "ROAD_CLASSES",
    "RawRoads",
    "parse_maxspeed",
    "read_graphml",
    "read_pbf",
    "read_poly",
]

FloatArray = npt.NDArray[np.float64]

# Default free-flow speeds (km/h) of the drivable OSM ``highway`` classes, used
# when an edge has no usable ``maxspeed``. French urban values: 50 km/h is the
# urban limit, residential streets and unclassified roads are taken at 30,
# service roads (yards, car parks, driveways) at 15, living streets at walking
# pace plus a little (20 is the legal limit of a "zone de rencontre", 10 a
# realistic average). Motorways at 110 (130 is the rural limit, but the only
# motorway here is the A8 above Monaco with its bends).
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 110.0,
    "motorway_link": 60.0,
    "trunk": 90.0,
    "trunk_link": 50.0,
    "primary": 50.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 30.0,
    "unclassified": 30.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 30.0,
}
ROAD_CLASSES: tuple[str, ...] = tuple(DEFAULT_SPEED_KMH)
_CLASS_CODE = {c: i for i, c in enumerate(ROAD_CLASSES)}

# Country and zone codes of ``maxspeed`` (km/h). "FR:rural" is 80 since 2018.
_ZONE_SPEED_KMH = {
    "urban": 50.0,
    "rural": 80.0,
    "motorway": 130.0,
    "trunk": 110.0,
    "zone30": 30.0,
    "zone20": 20.0,
    "living_street": 20.0,
    "walk": 6.0,
}
_MPH = 1.609344
_KNOT = 1.852
_NUMBER = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(mph|km/h|kmh|kph|knots)?\s*$", re.IGNORECASE)
_EARTH_RADIUS_M = 6_371_008.8

_TRUE = {"yes", "true", "1"}
_REVERSE = {"-1", "reverse"}
_NO_ACCESS = {"no", "private"}


@dataclass
class RawRoads:
    """Directed road edges before indexing (a mutable builder, not a public value).

    ``geometry[k]`` holds the (lon, lat) points of edge ``k`` from its tail to
    its head, both ends included.
    """

    node_lat: dict[int, float] = field(default_factory=dict)
    node_lon: dict[int, float] = field(default_factory=dict)
    tail: list[int] = field(default_factory=list)
    head: list[int] = field(default_factory=list)
    length_m: list[float] = field(default_factory=list)
    speed_kmh: list[float] = field(default_factory=list)
    road_class: list[int] = field(default_factory=list)
    way_id: list[int] = field(default_factory=list)
    geometry: list[FloatArray] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        tail: int,
        head: int,
        length_m: float,
        speed_kmh: float,
        road_class: int,
        way_id: int,
        geometry: FloatArray,
    ) -> None:
        self.tail.append(tail)
        self.head.append(head)
        self.length_m.append(length_m)
        self.speed_kmh.append(speed_kmh)
        self.road_class.append(road_class)
        self.way_id.append(way_id)
        self.geometry.append(geometry)


# -- tags ---------------------------------------------------------------------------


def parse_maxspeed(value: str | None) -> float | None:
    """A ``maxspeed`` tag in km/h, or ``None`` when it gives no usable number.

    Understands plain numbers (km/h), ``"30 mph"``, ``"10 knots"``, zone codes
    (``"FR:urban"``, ``"FR:rural"``, ``"FR:motorway"``, ``"FR:zone30"``,
    ``"walk"``) and lists (``"50;30"``, or OSMnx's ``"['50', '30']"`` of a
    simplified edge made of several ways), of which the mean is taken, as
    OSMnx does when it imputes speeds. ``"none"`` and ``"signals"`` give ``None``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    items: list[str]
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
        items = [str(p) for p in parsed] if isinstance(parsed, list) else [str(parsed)]
    else:
        items = re.split(r"[;|]", text)
    speeds = [s for s in (_one_speed(i) for i in items) if s is not None]
    if not speeds:
        return None
    return float(sum(speeds) / len(speeds))


def _one_speed(item: str) -> float | None:
    text = item.strip()
    m = _NUMBER.match(text)
    if m:
        v = float(m.group(1).replace(",", "."))
        unit = (m.group(2) or "").lower()
        if unit == "mph":
            v *= _MPH
        elif unit == "knots":
            v *= _KNOT
        return v if v > 0 else None
    zone = text.split(":", 1)[-1].lower()
    return _ZONE_SPEED_KMH.get(zone)


def _directions(tags: dict[str, str], road: str) -> tuple[bool, bool] | None:
    """(forward, backward) travel allowed along the way, or ``None`` to drop it."""
    oneway = tags.get("oneway", "").strip().lower()
    if oneway in _TRUE:
        return True, False
    if oneway in _REVERSE:
        return False, True
    if oneway in {"reversible", "alternating"}:
        return None  # direction changes by time of day: not usable by a static router
    if oneway in {"no", "false", "0"}:
        return True, True
    implied = tags.get("junction", "") in {"roundabout", "circular"} or road == "motorway"
    return (True, False) if implied else (True, True)


def _blocked(tags: dict[str, str]) -> bool:
    """Whether motor vehicles are kept off the way by its access tags."""
    for key in ("motor_vehicle", "motorcar"):
        v = tags.get(key)
        if v is not None:
            return v in _NO_ACCESS
    return tags.get("access", "") in _NO_ACCESS or tags.get("area", "") == "yes"


def _haversine_m(lon: FloatArray, lat: FloatArray) -> FloatArray:
    """Length of each segment of a polyline, in metres."""
    la, lo = np.radians(lat), np.radians(lon)
    dla, dlo = np.diff(la), np.diff(lo)
    a = np.sin(dla / 2) ** 2 + np.cos(la[:-1]) * np.cos(la[1:]) * np.sin(dlo / 2) ** 2
    out: FloatArray = 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


# -- bounded input -------------------------------------------------------------------

#: Largest OSM PBF read (streamed by osmium, never held whole): a country-sized extract.
MAX_PBF_BYTES = 8 * 1024**3


def _check_input_file(path: Path, max_bytes: int) -> None:
    """A regular file of at most ``max_bytes``, or a one-line :class:`CaseFormatError`."""
    from aiguilleur._files import check_input_file

    check_input_file(path, max_bytes=max_bytes)


# -- areas --------------------------------------------------------------------------


def read_poly(path: Path) -> list[tuple[float, float]]:
    """The first ring of an Osmosis ``.poly`` file, as (lon, lat) pairs."""
    from aiguilleur._files import read_input_text

    lines = read_input_text(path, max_bytes=64 * 1024**2).splitlines()
    ring: list[tuple[float, float]] = []
    started = False
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        parts = line.split()
        if len(parts) == 2 and lineno > 1:
            try:
                ring.append((float(parts[0]), float(parts[1])))
            except ValueError:
                raise CaseFormatError(
                    f"expected 'lon lat', got {line!r}", str(path), lineno
                ) from None
            started = True
        elif line == "END" and started:
            break
    if len(ring) < 3:
        raise CaseFormatError("a polygon needs at least 3 points", str(path))
    return ring


def points_in_polygon(
    lon: FloatArray, lat: FloatArray, polygon: Sequence[tuple[float, float]]
) -> npt.NDArray[np.bool_]:
    """Even-odd rule, vectorised over the points (one pass per polygon side)."""
    ring = np.asarray(polygon, dtype=np.float64)
    inside = np.zeros(lon.shape, dtype=bool)
    x0, y0 = ring[-1]
    for x1, y1 in ring:
        crosses = (y1 > lat) != (y0 > lat)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (lat - y1) * (x0 - x1) / (y0 - y1)
        inside ^= crosses & (lon < x_at)
        x0, y0 = x1, y1
    return inside


# -- PBF ----------------------------------------------------------------------------


def read_pbf(
    path: Path,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    polygon: Sequence[tuple[float, float]] | None = None,
) -> RawRoads:
    """Drivable directed edges of an OSM PBF (or .osm/.osc) file.

    Ways are split at every node shared with another drivable way (and at
    their ends); each piece becomes one edge per allowed direction. With
    ``bbox`` (west, south, east, north) or ``polygon`` ((lon, lat) pairs), way
    nodes outside are dropped and the ways cut there.
    """
    import osmium

    path = Path(path)
    _check_input_file(path, MAX_PBF_BYTES)
    ways: list[tuple[int, dict[str, str], list[int], FloatArray, FloatArray]] = []
    dropped: Counter[str] = Counter()
    try:
        fp = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        fp = fp.with_locations().with_filter(osmium.filter.KeyFilter("highway"))
        for obj in fp:
            if not isinstance(obj, osmium.osm.Way):
                continue
            tags = {t.k: t.v for t in obj.tags}
            road = tags.get("highway", "")
            if road not in _CLASS_CODE:
                dropped["ways not drivable (highway class)"] += 1
                continue
            if _blocked(tags):
                dropped["ways closed to motor vehicles (access)"] += 1
                continue
            refs: list[int] = []
            wlon: list[float] = []
            wlat: list[float] = []
            for nd in obj.nodes:
                if not nd.location.valid():
                    continue
                refs.append(nd.ref)
                wlon.append(nd.location.lon)
                wlat.append(nd.location.lat)
            ways.append((obj.id, tags, refs, np.array(wlon), np.array(wlat)))
    except (RuntimeError, ValueError, OSError) as e:
        msg = " ".join(str(e).split())[:160]
        raise CaseFormatError(f"cannot read OSM data: {msg}", str(path)) from None
    if not ways:
        raise CaseFormatError("no drivable road in the file", str(path))

    pieces: list[tuple[int, dict[str, str], list[int], FloatArray, FloatArray]] = []
    for way_id, tags, refs, lons, lats in ways:
        keep = np.ones(len(refs), dtype=bool)
        if bbox is not None:
            west, south, east, north = bbox
            keep &= (lons >= west) & (lons <= east) & (lats >= south) & (lats <= north)
        if polygon is not None and len(refs):
            keep &= points_in_polygon(lons, lats, polygon)
        # Maximal runs of kept nodes; a run of one node is no road.
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(idx) > 1) + 1
        for run in np.split(idx, breaks):
            if run.size >= 2:
                lo, hi = int(run[0]), int(run[-1]) + 1
                pieces.append((way_id, tags, refs[lo:hi], lons[lo:hi], lats[lo:hi]))
    if not pieces:
        raise ValidationError(f"{path}: no drivable road inside the requested area")

    uses: Counter[int] = Counter()
    for _, _, refs, _, _ in pieces:
        uses.update(refs)
        uses[refs[0]] += 1  # way ends are graph nodes
        uses[refs[-1]] += 1

    raw = RawRoads(dropped=dropped)
    for way_id, tags, refs, lons, lats in pieces:
        road = tags["highway"]
        directions = _directions(tags, road)
        if directions is None:
            raw.dropped["ways with reversible one-way (oneway=reversible)"] += 1
            continue
        given = parse_maxspeed(tags.get("maxspeed"))
        speed = given if given is not None else DEFAULT_SPEED_KMH[road]
        seg = _haversine_m(lons, lats)
        cut = [i for i, r in enumerate(refs) if uses[r] >= 2]
        for a, b in itertools.pairwise(cut):
            length = float(seg[a:b].sum())
            geom = np.column_stack([lons[a : b + 1], lats[a : b + 1]])
            for k in (a, b):
                raw.node_lon[refs[k]] = float(lons[k])
                raw.node_lat[refs[k]] = float(lats[k])
            if directions[0]:
                raw.add(refs[a], refs[b], length, speed, _CLASS_CODE[road], way_id, geom)
            if directions[1]:
                raw.add(refs[b], refs[a], length, speed, _CLASS_CODE[road], way_id, geom[::-1])
    return raw


# -- GraphML (OSMnx) ----------------------------------------------------------------

_G = "{http://graphml.graphdrawing.org/xmlns}"
_LINESTRING = re.compile(r"^\s*LINESTRING\s*\((.*)\)\s*$", re.IGNORECASE)


def _listed(value: str) -> list[str]:
    """OSMnx writes the attributes merged by simplification as a Python list."""
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [text]
        if isinstance(parsed, list):
            return [str(p) for p in parsed]
    return [text]


def read_graphml(path: Path) -> RawRoads:
    """Drivable directed edges of an OSMnx GraphML file.

    OSMnx graphs are already directed (a two-way street is two edges), so each
    GraphML edge is kept as it is when every one of its ``highway`` values is
    drivable and its ``access`` is not only ``no``/``private``: footways,
    paths, tracks, steps, cycleways and pedestrian streets are dropped. The
    ``length`` attribute (metres) is used; a missing one is computed from the
    geometry.
    """
    from aiguilleur._files import read_input_bytes

    path = Path(path)
    data = read_input_bytes(path)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        line = e.position[0] if e.position else None
        raise CaseFormatError(f"not valid XML: {e.msg}", str(path), line) from None
    keys = {
        (k.get("for"), k.get("attr.name")): k.get("id")
        for k in root.iter(f"{_G}key")
        if k.get("for") in ("node", "edge")
    }
    graph = root.find(f"{_G}graph")
    if graph is None:
        raise CaseFormatError("no <graph> element", str(path))

    def attrs(el: ET.Element) -> dict[str, str]:
        return {d.get("key", ""): d.text or "" for d in el.findall(f"{_G}data")}

    kx, ky = keys.get(("node", "x")), keys.get(("node", "y"))
    if kx is None or ky is None:
        raise CaseFormatError("nodes have no 'x'/'y' attributes (not an OSMnx graph)", str(path))
    raw = RawRoads()
    for el in graph.iter(f"{_G}node"):
        a = attrs(el)
        node = el.get("id", "")
        try:
            nid = int(node)
            raw.node_lon[nid] = float(a[kx])
            raw.node_lat[nid] = float(a[ky])
        except (KeyError, ValueError):
            raise CaseFormatError(
                f"node {node!r}: expected an integer id and numeric x/y", str(path)
            ) from None

    ek = {name: keys.get(("edge", name)) for name in ("highway", "length", "maxspeed", "osmid")}
    ek.update(access=keys.get(("edge", "access")), geometry=keys.get(("edge", "geometry")))
    for el in graph.iter(f"{_G}edge"):
        a = attrs(el)
        src, dst = el.get("source", ""), el.get("target", "")
        where = f"edge {src}->{dst}"
        classes = _listed(a.get(ek["highway"] or "", ""))
        if not all(c in _CLASS_CODE for c in classes):
            raw.dropped["edges not drivable (highway class)"] += 1
            continue
        access = _listed(a.get(ek["access"] or "", "")) if ek["access"] in a else []
        if access and all(x in _NO_ACCESS for x in access):
            raw.dropped["edges closed to motor vehicles (access)"] += 1
            continue
        try:
            tail, head = int(src), int(dst)
            geom = _edge_geometry(a.get(ek["geometry"] or ""), raw, tail, head)
        except (KeyError, ValueError):
            raise CaseFormatError(f"{where}: unknown node or bad geometry", str(path)) from None
        length_text = a.get(ek["length"] or "")
        try:
            length = float(length_text) if length_text else float(_haversine_m(*geom.T).sum())
        except ValueError:
            raise CaseFormatError(
                f"{where}: length {length_text!r} is not a number", str(path)
            ) from None
        speeds = [DEFAULT_SPEED_KMH[c] for c in classes]
        given = parse_maxspeed(a.get(ek["maxspeed"] or ""))
        speed = given if given is not None else sum(speeds) / len(speeds)
        way = _listed(a.get(ek["osmid"] or "", "-1"))[0]
        try:
            way_id = int(way)
        except ValueError:
            way_id = -1
        raw.add(tail, head, length, speed, _CLASS_CODE[classes[0]], way_id, geom)
    return raw


def _edge_geometry(wkt: str | None, raw: RawRoads, tail: int, head: int) -> FloatArray:
    ends = [(raw.node_lon[tail], raw.node_lat[tail]), (raw.node_lon[head], raw.node_lat[head])]
    if not wkt:
        return np.array(ends, dtype=np.float64)
    m = _LINESTRING.match(wkt)
    if m is None:
        raise ValueError(wkt)
    pts = [tuple(float(v) for v in p.split()) for p in m.group(1).split(",")]
    return np.array(pts, dtype=np.float64)[:, :2]
