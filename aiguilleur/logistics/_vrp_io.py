"""Reading routing instances and plans: CVRPLIB, Solomon, aiguilleur JSON/CSV (private).

aiguilleur's JSON order format (times in seconds, distances in metres, money
in one currency; every key but ``depots``, ``vehicle_types`` and ``orders``
is optional)::

    {
      "name": "fuel-run",
      "matrices": {"duration_s": [[...]], "distance_m": [[...]]},
      "locations": [{"id": "hq", "lat": 43.73, "lon": 7.42}, ...],
      "travel": {"speed_kmh": 30, "detour": 1.3},
      "depots": [{"id": "hq", "location": 0, "open_s": 0, "close_s": 86400}],
      "vehicle_types": [{"id": "tanker", "count": 3, "capacity": 12000,
                         "start_depot": "hq", "end_depot": "hq",
                         "shift_start_s": 21600, "shift_end_s": 72000, "max_shift_s": 36000,
                         "fixed_cost": 50, "cost_per_km": 1.2, "cost_per_hour": 35}],
      "orders": [{"id": "h1", "location": 3, "demand": 2000, "service_s": 900,
                  "window_s": [28800, 43200], "priority": 2, "penalty": null}]
    }

A depot or order gives either ``location`` (a row of ``matrices`` or of
``locations``) or ``lat``/``lon`` (a location is added for it). Without
``matrices``, travel times come from the streets when ``"travel": {"roads":
"bundled"}`` (or a road file beside the JSON: every location is snapped to the
road graph of :mod:`aiguilleur.logistics.roads`, and a location outside the
extract is an error naming its record), else from great-circle distances
times ``detour`` at ``speed_kmh`` (an estimate). ``penalty`` absent or
``null`` makes an order required; a number
makes it optional at that cost when dropped. ``priority`` (0 normal, higher
first) orders the repair of a re-plan. ``orders`` may also be the name of a
CSV file beside the JSON with columns ``id, location`` (or ``lat, lon``),
``demand, service_s, tw_early_s, tw_late_s, priority, penalty``.

Internally money is counted in micro-units (``cost_unit = 1e-6``).

A plan (``PLAN.json``, written by ``aiguilleur routes solve --write-plan``)::

    {"instance": "orders.json",             # relative to the plan file
     "routes": [{"vehicle": "tanker#0", "vehicle_type": "tanker", "start_s": 27000,
                 "orders": ["h1", "h4"]}],
     "dropped": {"h9": "not worth its penalty"}}

An event (``EVENT.json``) is one object or ``{"events": [...]}``; see
:func:`aiguilleur.logistics.routing.read_event`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur._files import atomic_write_bytes
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.logistics._vrp_problem import (
    UNBOUNDED,
    PlannedRoute,
    RoutingProblem,
    RoutingSolution,
)

__all__ = [
    "MONEY_UNIT",
    "plan_to_json",
    "read_instance",
    "read_plan",
    "read_problem_json",
    "read_vrplib",
    "write_plan",
]

IntArray = npt.NDArray[np.int64]
MONEY_UNIT = 1e-6  # one internal cost unit of the JSON format, in currency

# Stated maxima of the readers: far above any real fleet, far below int64 overflow
# when PyVRP adds times, loads and costs along routes (UNBOUNDED is 1.15e18).
MAX_LOCATIONS = 10_001  #: a travel matrix of 10,001 rows already takes 800 MB
MAX_TIME_S = 10**12  #: times, windows, shift lengths (in the instance's time unit)
MAX_QUANTITY = 10**12  #: demands and capacities
MAX_VEHICLES = 100_000  #: vehicles of one type
MAX_PRIORITY = 100
MAX_MONEY = 10**9  #: fixed costs and penalties, in currency
MAX_RATE = 10**5  #: cost per km or per hour, in currency


# -- VRPLIB (CVRPLIB and Solomon) ------------------------------------------------------------


def _section_line(text: str, section: str, row: int | None = None) -> int | None:
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        if ln.strip().upper().startswith(section):
            return i + 1 + (row + 1 if row is not None else 0)
    return None


def _is_solomon(text: str) -> bool:
    head = [ln.strip().upper() for ln in text.splitlines()[:6]]
    return "VEHICLE" in head and not any(":" in h for h in head[:2])


def read_vrplib(path: str | Path) -> RoutingProblem:
    """Read a CVRPLIB ``.vrp`` (TSPLIB/VRPLIB format) or a Solomon ``.txt`` instance.

    CVRPLIB: Euclidean distances rounded to the nearest integer (TSPLIB
    ``nint``), as the best-known values use; the fleet is unlimited unless the
    file says ``VEHICLES``. Solomon: the "trunc1" convention of the
    exact-methods literature, every edge length (= travel time) truncated to
    one decimal and then scaled by 10 to an integer (``floor(10 d)``), time
    windows and service times scaled by 10; costs are reported divided by 10
    (``cost_unit = 0.1``).

    Raises
    ------
    CaseFormatError
        On a missing section, an unreadable file or a demand above the
        vehicle capacity, naming the file and line.
    """
    from aiguilleur._files import read_input_text

    path = _as_path(path)
    text = read_input_text(path)
    solomon = _is_solomon(text)
    inst = _parse_vrplib(text, solomon, str(path))
    need = ["capacity", "demand", "node_coord"] if solomon else ["dimension", "capacity", "demand"]
    if solomon:
        need += ["time_window", "service_time"]
    names = {
        "capacity": "CAPACITY",
        "demand": "DEMAND_SECTION",
        "node_coord": "NODE_COORD_SECTION",
        "dimension": "DIMENSION",
        "time_window": "time windows (CUSTOMER section)",
        "service_time": "service times (CUSTOMER section)",
    }
    for key in need:
        if key not in inst:
            raise CaseFormatError(f"missing {names[key]}", str(path))
    if "edge_weight" not in inst:
        raise CaseFormatError("missing NODE_COORD_SECTION or EDGE_WEIGHT_SECTION", str(path))
    where = str(path)
    try:
        w = np.asarray(inst["edge_weight"], dtype=np.float64)
    except (TypeError, ValueError):
        raise CaseFormatError("edge weights: expected numbers", where) from None
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise CaseFormatError(f"edge weights: expected a square matrix, got {w.shape}", where)
    bad_w = ~(np.isfinite(w) & (w >= 0) & (w <= MAX_TIME_S))
    if bad_w.any():
        r, c = (int(x) for x in np.argwhere(bad_w)[0])
        raise CaseFormatError(
            f"edge weight from node {r + 1} to {c + 1} is {w[r, c]!r}: "
            f"expected a number in 0..{MAX_TIME_S:,}",
            where,
        )
    n_loc = w.shape[0]
    demand = np.asarray(inst["demand"], dtype=np.float64).reshape(-1)
    if demand.shape[0] != n_loc:
        raise CaseFormatError(
            f"DEMAND_SECTION has {demand.shape[0]} rows, expected {n_loc}",
            str(path),
            _section_line(text, "DEMAND_SECTION"),
        )
    bad_q = ~((demand >= 0) & (demand <= MAX_QUANTITY) & (demand == np.round(demand)))
    if bad_q.any():
        i = int(np.flatnonzero(bad_q)[0])
        raise CaseFormatError(
            f"node {i + (0 if solomon else 1)}: demand {demand[i]:g} is not a whole number "
            f"in 0..{MAX_QUANTITY:,}",
            where,
            _section_line(text, "DEMAND_SECTION", i) if not solomon else _solomon_line(text, i),
        )
    if "depot" not in inst and not solomon:
        raise CaseFormatError("missing DEPOT_SECTION", str(path))
    try:
        dep_f = np.asarray(inst.get("depot", np.array([0])), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        dep_f = np.array([-1.0])
    ok_dep = np.isfinite(dep_f) & (dep_f == np.round(dep_f)) & (dep_f >= 0) & (dep_f < n_loc)
    depots = np.where(ok_dep, dep_f, 0).astype(np.int64)
    if len(depots) == 0 or not ok_dep.all():
        raise CaseFormatError(
            f"DEPOT_SECTION: depots must be nodes 1..{n_loc}",
            where,
            _section_line(text, "DEPOT_SECTION"),
        )
    orders = np.setdiff1d(np.arange(n_loc), depots)

    def whole(key: str, label: str, hi: int) -> int:
        v = inst[key]
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise CaseFormatError(f"{label} must be a number, got {v!r}", where)
        if not (float(v).is_integer() and 0 <= v <= hi):
            raise CaseFormatError(f"{label} must be a whole number in 0..{hi:,}, got {v!r}", where)
        return int(v)

    cap = whole("capacity", "CAPACITY", MAX_QUANTITY)
    too_big = orders[demand[orders] > cap]
    if len(too_big):
        i = int(too_big[0])
        raise CaseFormatError(
            f"node {i + 1}: demand {int(demand[i])} exceeds the vehicle capacity {cap}",
            str(path),
            _section_line(text, "DEMAND_SECTION", i) if not solomon else _solomon_line(text, i),
        )
    kw: dict[str, Any] = {}
    if solomon:
        mat = np.floor(10.0 * w + 1e-9).astype(np.int64)
        twf = np.asarray(inst["time_window"], dtype=np.float64)
        svf = np.asarray(inst["service_time"], dtype=np.float64).reshape(-1)
        if twf.shape != (n_loc, 2) or svf.shape != (n_loc,):
            raise CaseFormatError("CUSTOMER section: every row needs 7 numbers", where)
        for label, arr in (("time window", twf), ("service time", svf)):
            bad_t = ~((arr >= 0) & (arr <= MAX_TIME_S // 10) & (arr == np.round(arr)))
            if bad_t.ndim > 1:
                bad_t = bad_t.any(axis=1)
            if bad_t.any():
                i = int(np.flatnonzero(bad_t)[0])
                raise CaseFormatError(
                    f"customer {i}: {label} must be whole numbers in 0..{MAX_TIME_S // 10:,}",
                    where,
                    _solomon_line(text, i),
                )
        tw = twf.astype(np.int64) * 10
        bad = orders[tw[orders, 1] < tw[orders, 0]]
        if len(bad):
            i = int(bad[0])
            raise CaseFormatError(
                f"customer {i}: time window closes before it opens",
                str(path),
                _solomon_line(text, i),
            )
        svc = svf.astype(np.int64) * 10
        kw = dict(
            depot_tw_early_s=tw[depots, 0],
            depot_tw_late_s=tw[depots, 1],
            order_service_s=svc[orders],
            order_tw_early_s=tw[orders, 0],
            order_tw_late_s=tw[orders, 1],
            cost_unit=0.1,
        )
    else:
        mat = np.floor(w + 0.5).astype(np.int64)
    n_veh = whole("vehicles", "VEHICLES", MAX_VEHICLES) if "vehicles" in inst else len(orders)
    coords = inst.get("node_coord")
    return RoutingProblem(
        name=str(inst.get("name", path.stem)),
        duration_s=mat,
        distance_m=mat,
        depot_location=depots,
        order_location=orders,
        order_demand=demand[orders].astype(np.int64),
        vehicle_count=np.array([n_veh]),
        vehicle_capacity=np.array([cap]),
        order_id=tuple(str(int(i) + (0 if solomon else 1)) for i in orders),
        depot_id=tuple(str(int(i) + (0 if solomon else 1)) for i in depots),
        location_lonlat=None if coords is None else np.asarray(coords, dtype=np.float64),
        source=str(path),
        meta={"format": "solomon" if solomon else "vrplib"},
        **kw,
    )


def _parse_vrplib(text: str, solomon: bool, where: str) -> dict[str, Any]:
    """Parse with the ``vrplib`` package, checking sizes before any matrix is computed.

    The package's own errors (a ``ValueError`` from a row that does not parse, an
    ``IndexError`` from a short section) become one line naming the file.
    """
    import warnings

    from vrplib.parse import parse_solomon, parse_vrplib

    kind = "Solomon" if solomon else "VRPLIB"
    parse = parse_solomon if solomon else parse_vrplib

    def run(compute: bool) -> dict[str, Any]:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out: dict[str, Any] = parse(text, compute_edge_weights=compute)
        except Exception as e:  # the package raises many kinds on malformed text
            msg = " ".join(str(e).split())[:120] or type(e).__name__
            raise CaseFormatError(f"not a readable {kind} file ({msg})", where) from None
        return out

    if solomon:
        _check_solomon_rows(text, where)
    raw = run(False)
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for key in ("node_coord", "demand", "time_window", "service_time", "edge_weight"):
        if key in raw:
            try:
                a = np.asarray(raw[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise CaseFormatError(
                    f"{key}: expected numbers, in rows of the same length", where
                ) from None
            if a.ndim == 0:
                a = a.reshape(1)
            if not np.isfinite(a).all():
                raise CaseFormatError(f"{key}: every value must be a finite number", where)
            arrays[key] = a
    sizes = {k: int(a.shape[0]) for k, a in arrays.items() if k != "edge_weight"}
    n = max(sizes.values(), default=0)
    if "edge_weight" in arrays:
        n = max(n, int(arrays["edge_weight"].shape[0]))
    if n > MAX_LOCATIONS:
        raise CaseFormatError(f"{n:,} nodes: at most {MAX_LOCATIONS:,} allowed", where)
    if n == 0:
        raise CaseFormatError(f"not a {kind} instance: no nodes found", where)
    if not solomon and "dimension" in raw:
        dim = raw["dimension"]
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
            raise CaseFormatError(f"DIMENSION must be a whole number, got {dim!r}", where)
        if "edge_weight" in arrays:
            sizes["edge_weight"] = int(arrays["edge_weight"].shape[0])
        for k, m in sizes.items():
            if m != int(dim):
                sec = {
                    "node_coord": "NODE_COORD_SECTION",
                    "demand": "DEMAND_SECTION",
                    "edge_weight": "EDGE_WEIGHT_SECTION",
                }.get(k, k)
                raise CaseFormatError(
                    f"DIMENSION is {int(dim)} but {sec} has {m} rows",
                    where,
                    _section_line(text, sec),
                )
    for key in ("capacity", "vehicles"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise CaseFormatError(f"{key.upper()} must be a number, got {str(v)[:40]!r}", where)
            if not math.isfinite(float(v)):
                raise CaseFormatError(f"{key.upper()} must be a finite number", where)
    if (
        solomon
        and "node_coord" in raw
        and sizes.get("node_coord") != len(np.asarray(raw.get("demand", [])))
    ):
        raise CaseFormatError("CUSTOMER rows do not all have 7 columns", where)
    return run(True)


def _check_solomon_rows(text: str, where: str) -> None:
    """Every row of the CUSTOMER table is 7 numbers (``vrplib`` reads ``xx`` as -1)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().upper().startswith("CUST")), None)
    if start is None:
        raise CaseFormatError("missing the CUSTOMER table", where)
    in_table = False
    for i in range(start + 1, len(lines)):
        parts = lines[i].split()
        if not parts:
            continue
        if not in_table:  # the column header ("CUST NO. XCOORD. ...") before the rows
            try:
                float(parts[0])
            except ValueError:
                continue
            in_table = True
        if len(parts) != 7:
            raise CaseFormatError(
                f"a CUSTOMER row needs 7 numbers, got {len(parts)} fields", where, i + 1
            )
        for tok in parts:
            try:
                ok = math.isfinite(float(tok))
            except ValueError:
                ok = False
            if not ok:
                raise CaseFormatError(f"expected a number, got {tok[:40]!r}", where, i + 1)


def _solomon_line(text: str, node: int) -> int | None:
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        parts = ln.split()
        if parts and parts[0] == str(node) and len(parts) >= 7 and "CUST" not in ln.upper():
            return i + 1
    return None


# -- aiguilleur JSON / CSV -----------------------------------------------------------------


def _num(rec: dict[str, Any], key: str, where: str, path: str, default: Any = None) -> Any:
    v = rec.get(key, default)
    if v is None:
        if default is None and key in rec:
            return None
        if default is None:
            raise CaseFormatError(f"{where}: missing field {key!r}", path)
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise CaseFormatError(f"{where}: field {key!r} must be a number, got {v!r}", path)
    return v


def _int(
    rec: dict[str, Any],
    key: str,
    where: str,
    path: str,
    default: int | None = None,
    hi: int = MAX_QUANTITY,
    lo: int = 0,
) -> int:
    """A whole number field in ``lo..hi`` (``2.0`` is accepted, ``2.5`` is not)."""
    v = _num(rec, key, where, path, default)
    if v is None:
        raise CaseFormatError(f"{where}: field {key!r} must be a number, got null", path)
    if isinstance(v, float) and not v.is_integer():
        raise CaseFormatError(f"{where}: field {key!r} must be a whole number, got {v!r}", path)
    if v == default:
        return int(v)
    if not lo <= v <= hi:
        raise CaseFormatError(f"{where}: field {key!r} = {v!r} outside {lo}..{hi:,}", path)
    return int(v)


def _real(
    rec: dict[str, Any], key: str, where: str, path: str, default: float, lo: float, hi: float
) -> float:
    """A finite number field in ``[lo, hi]``."""
    v = _num(rec, key, where, path, default)
    if v is None:
        v = default
    if not lo <= v <= hi:
        raise CaseFormatError(f"{where}: field {key!r} = {v!r} outside {lo:g}..{hi:g}", path)
    return float(v)


def _lonlat(rec: dict[str, Any], where: str, path: str) -> tuple[float, float]:
    lat = float(_num(rec, "lat", where, path))
    lon = float(_num(rec, "lon", where, path))
    if not -90.0 <= lat <= 90.0:
        raise CaseFormatError(f"{where}: latitude {lat!r} outside -90..90", path)
    if not -180.0 <= lon <= 180.0:
        raise CaseFormatError(f"{where}: longitude {lon!r} outside -180..180", path)
    return lon, lat


def _id_of(v: Any, where: str, path: str) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int) or str(v) == "":
        raise CaseFormatError(f"{where}: 'id' must be a non-empty string or a number", path)
    return str(v)


def _load_json(path: Path) -> Any:
    """Parse a JSON file read with a bound; every failure is one line naming the file."""
    from aiguilleur._files import read_input_text

    text = read_input_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CaseFormatError(f"not valid JSON: {e.msg}", str(path), e.lineno) from None
    except RecursionError:
        raise CaseFormatError("JSON nested too deeply", str(path)) from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise CaseFormatError(f"not valid JSON: {msg}", str(path)) from None


def _as_path(path: Any, what: str = "path") -> Path:
    """``path`` as a :class:`Path`, or a :class:`ValidationError` naming what was given."""
    if isinstance(path, bool) or not isinstance(path, str | os.PathLike) or str(path) == "":
        raise ValidationError(f"{what}: expected a file path, got {type(path).__name__}")
    return Path(path)


def _haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    r = 6_371_000.0
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _orders_from_csv(csv_path: Path, path: str) -> list[dict[str, Any]]:
    import io

    from aiguilleur._files import read_input_text

    text = read_input_text(csv_path)
    out: list[dict[str, Any]] = []
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            rows = list(reader)
        except csv.Error as e:
            raise CaseFormatError(
                f"not a CSV table ({e})", str(csv_path), reader.line_num
            ) from None
        if reader.fieldnames is None or "id" not in [f.strip() for f in reader.fieldnames]:
            raise CaseFormatError("orders CSV needs a header with an 'id' column", str(csv_path), 1)
        for n, row in enumerate(rows):
            line = n + 2
            rec: dict[str, Any] = {"_line": f"{csv_path.name} line {line}"}
            for k, v in row.items():
                if k is None or v is None:
                    raise CaseFormatError(
                        "a row has a different number of fields than the header",
                        str(csv_path),
                        line,
                    )
                k = k.strip()
                v = v.strip()
                if k == "id":
                    rec["id"] = v
                elif v == "":
                    continue
                else:
                    try:
                        x = float(v)
                    except ValueError:
                        raise CaseFormatError(
                            f"field {k!r} must be a number, got {v[:40]!r}", str(csv_path), line
                        ) from None
                    if not math.isfinite(x):
                        raise CaseFormatError(
                            f"field {k!r} must be a finite number, got {v[:40]!r}",
                            str(csv_path),
                            line,
                        )
                    # whole-number fields are checked by the JSON rules (2.5 vehicles: refused)
                    rec[k] = int(x) if x.is_integer() and k not in ("lat", "lon") else x
            if "tw_early_s" in rec or "tw_late_s" in rec:
                rec["window_s"] = [rec.pop("tw_early_s", 0), rec.pop("tw_late_s", None)]
            out.append(rec)
    return out


def _road_matrices(
    travel: dict[str, Any], ll: Any, names: list[str], path: str, base: Path | None
) -> tuple[IntArray, IntArray, IntArray]:
    """Snap every location to a road graph and compute travel matrices on it.

    ``travel["roads"]`` is ``"bundled"`` (the extract shipped with aiguilleur)
    or a road file beside the JSON (``.osm.pbf``, ``.graphml``, or a graph saved
    by ``roads.save_road_graph``). A location farther than
    ``travel["max_snap_m"]`` (default 500 m) from every road node is outside
    the extract: an error naming the record.
    """
    from aiguilleur.logistics import roads

    src = travel["roads"]
    if not isinstance(src, str):
        raise CaseFormatError("travel.roads: expected 'bundled' or a file name", path)
    if src == "bundled":
        graph = roads.bundled_road_graph()
    else:
        f = (base or Path(".")) / src
        name = f.name.lower()
        if name.endswith((".pbf", ".osm")):
            graph = roads.load_osm_pbf(f)
        elif name.endswith(".graphml"):
            graph = roads.load_graphml(f)
        else:
            graph = roads.load_road_graph(f)
    max_m = _real(travel, "max_snap_m", "travel", path, 500.0, 1.0, 100_000.0)
    try:
        nodes = roads.snap(graph, ll[:, 1], ll[:, 0], max_distance_m=max_m)
    except ValidationError as e:
        who = names[e.row] if e.row is not None and e.row < len(names) else "a location"
        raise CaseFormatError(f"{who}: {e}", path) from None
    tm = roads.travel_matrices(graph, nodes)
    if not (np.isfinite(tm.duration_s).all() and np.isfinite(tm.distance_m).all()):
        raise CaseFormatError("some locations cannot reach each other on the road graph", path)
    return (
        np.rint(tm.duration_s).astype(np.int64),
        np.rint(tm.distance_m).astype(np.int64),
        np.asarray(nodes, np.int64),
    )


def read_problem_json(path: str | Path) -> RoutingProblem:
    """Read aiguilleur's JSON order format (see the module docstring).

    Raises
    ------
    CaseFormatError
        Naming the file and the record (``orders[3] 'h4': ...``).
    """
    path = _as_path(path)
    doc = _load_json(path)
    return problem_from_dict(doc, str(path), base=path.parent)


def problem_from_dict(doc: Any, path: str = "<json>", base: Path | None = None) -> RoutingProblem:
    """Build a :class:`RoutingProblem` from a parsed JSON document."""
    if not isinstance(doc, dict):
        raise CaseFormatError("expected a JSON object", path)
    for key in ("depots", "vehicle_types", "orders"):
        if key not in doc:
            raise CaseFormatError(f"missing {key!r}", path)
    orders_doc = doc["orders"]
    if isinstance(orders_doc, str):
        orders_doc = _orders_from_csv((base or Path(".")) / orders_doc, path)
    locs = doc.get("locations", [])
    if not isinstance(locs, list):
        raise CaseFormatError("'locations' must be a list of objects", path)
    name = doc.get("name", Path(path).stem)
    if not isinstance(name, str):
        raise CaseFormatError("'name' must be a string", path)
    n_records = len(locs) + sum(
        len(doc[k]) for k in ("depots", "orders") if isinstance(doc[k], list)
    )
    if isinstance(orders_doc, list):
        n_records += len(orders_doc) - (
            len(doc["orders"]) if isinstance(doc["orders"], list) else 0
        )
    if n_records > MAX_LOCATIONS:
        raise CaseFormatError(
            f"{n_records:,} locations, depots and orders: at most {MAX_LOCATIONS:,} allowed", path
        )
    lonlat: list[tuple[float, float] | None] = []
    loc_names: list[str] = []  # the record that brought each location, for error messages
    loc_index: dict[str, int] = {}
    for i, rec in enumerate(locs):
        if not isinstance(rec, dict):
            raise CaseFormatError(f"locations[{i}]: expected an object", path)
        lid = _id_of(rec["id"], f"locations[{i}]", path) if "id" in rec else None
        loc_names.append(f"locations[{i}]" + (f" {lid!r}" if lid is not None else ""))
        if "lat" in rec or "lon" in rec:
            lonlat.append(_lonlat(rec, loc_names[-1], path))
        else:
            lonlat.append(None)
        if lid is not None:
            if lid in loc_index:
                raise CaseFormatError(f"locations[{i}]: duplicate id {lid!r}", path)
            loc_index[lid] = i
    mats = doc.get("matrices")
    n_mat = None
    if mats is not None:
        try:
            dur = np.asarray(mats["duration_s"], dtype=np.float64)
            dist = np.asarray(mats["distance_m"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise CaseFormatError(
                "matrices: need 'duration_s' and 'distance_m', square tables of numbers", path
            ) from None
        if dur.ndim != 2 or dur.shape[0] != dur.shape[1] or dist.shape != dur.shape:
            raise CaseFormatError(
                "matrices: need two square matrices of the same size, "
                f"got {dur.shape} and {dist.shape}",
                path,
            )
        for nm, m in (("duration_s", dur), ("distance_m", dist)):
            bad = ~(np.isfinite(m) & (m >= 0) & (m <= MAX_TIME_S))
            if bad.any():
                r, c = (int(x) for x in np.argwhere(bad)[0])
                raise CaseFormatError(
                    f"matrices.{nm}[{r}][{c}] = {float(m[r, c])!r}: "
                    f"expected a number in 0..{MAX_TIME_S:,}",
                    path,
                )
        n_mat = dur.shape[0]
        if n_mat > MAX_LOCATIONS:
            raise CaseFormatError(f"matrices: {n_mat:,} rows, at most {MAX_LOCATIONS:,}", path)
        while len(lonlat) < n_mat:
            lonlat.append(None)

    def location_of(rec: dict[str, Any], where: str) -> int:
        if "location" in rec:
            v = rec["location"]
            if isinstance(v, str):
                if v not in loc_index:
                    raise CaseFormatError(f"{where}: unknown location {v!r}", path)
                return loc_index[v]
            if isinstance(v, bool) or not isinstance(v, int):
                raise CaseFormatError(f"{where}: location must be an index or a location id", path)
            top = n_mat if n_mat is not None else len(lonlat)
            if not 0 <= v < top:
                raise CaseFormatError(f"{where}: location {v} outside 0..{top - 1}", path)
            return v
        if "lat" in rec and "lon" in rec:
            if n_mat is not None:
                raise CaseFormatError(
                    f"{where}: lat/lon given but the travel matrices are fixed; "
                    "give a location index",
                    path,
                )
            lonlat.append(_lonlat(rec, where, path))
            loc_names.append(where)
            return len(lonlat) - 1
        raise CaseFormatError(f"{where}: needs 'location' or 'lat' and 'lon'", path)

    def rid(rec: dict[str, Any], where: str) -> str:
        if "id" not in rec:
            raise CaseFormatError(f"{where}: missing field 'id'", path)
        return _id_of(rec["id"], where, path)

    def records(key: str, seq: Any) -> list[dict[str, Any]]:
        if not isinstance(seq, list) or not all(isinstance(r, dict) for r in seq):
            raise CaseFormatError(f"{key!r} must be a list of objects", path)
        return seq

    depots = records("depots", doc["depots"])
    d_loc, d_open, d_close, d_id = [], [], [], []
    for i, rec in enumerate(depots):
        w = f"depots[{i}]"
        d_id.append(rid(rec, w))
        w = f"{w} {d_id[-1]!r}"
        d_loc.append(location_of(rec, w))
        d_open.append(_int(rec, "open_s", w, path, 0, MAX_TIME_S))
        d_close.append(_int(rec, "close_s", w, path, UNBOUNDED, MAX_TIME_S))
        if d_close[-1] < d_open[-1]:
            raise CaseFormatError(f"{w}: closes before it opens", path)
    depot_index = {d: i for i, d in enumerate(d_id)}

    def depot_ref(rec: dict[str, Any], key: str, where: str) -> int:
        v = rec.get(key, d_id[0] if d_id else None)
        if isinstance(v, bool) or not isinstance(v, str | int) or str(v) not in depot_index:
            raise CaseFormatError(f"{where}: unknown depot {v!r} in {key!r}", path)
        return depot_index[str(v)]

    vts = records("vehicle_types", doc["vehicle_types"])
    vd: dict[str, list[int]] = {
        k: [] for k in ("count", "cap", "sd", "ed", "e", "l", "md", "fc", "ud", "ut")
    }
    v_id = []
    for i, rec in enumerate(vts):
        w = f"vehicle_types[{i}]"
        v_id.append(rid(rec, w))
        w = f"{w} {v_id[-1]!r}"
        vd["count"].append(_int(rec, "count", w, path, 1, MAX_VEHICLES))
        vd["cap"].append(_int(rec, "capacity", w, path, None, MAX_QUANTITY))
        vd["sd"].append(depot_ref(rec, "start_depot", w))
        vd["ed"].append(depot_ref(rec, "end_depot", w))
        vd["e"].append(_int(rec, "shift_start_s", w, path, 0, MAX_TIME_S))
        vd["l"].append(_int(rec, "shift_end_s", w, path, UNBOUNDED, MAX_TIME_S))
        if vd["l"][-1] < vd["e"][-1]:
            raise CaseFormatError(f"{w}: shift ends before it starts", path)
        vd["md"].append(_int(rec, "max_shift_s", w, path, UNBOUNDED, MAX_TIME_S))
        vd["fc"].append(round(_real(rec, "fixed_cost", w, path, 0, 0, MAX_MONEY) / MONEY_UNIT))
        vd["ud"].append(
            round(_real(rec, "cost_per_km", w, path, 1.0, 0, MAX_RATE) / 1000 / MONEY_UNIT)
        )
        vd["ut"].append(
            round(_real(rec, "cost_per_hour", w, path, 0.0, 0, MAX_RATE) / 3600 / MONEY_UNIT)
        )
        for key in ("count", "cap", "md", "fc", "ud", "ut"):
            if vd[key][-1] < 0:
                raise CaseFormatError(f"{w}: negative value in {key}", path)

    orders = records("orders", orders_doc)
    od: dict[str, list[Any]] = {k: [] for k in ("loc", "q", "s", "e", "l", "req", "pen", "prio")}
    o_id = []
    for i, rec in enumerate(orders):
        w = f"orders[{i}]"
        if "_line" in rec:
            w = f"orders {rec['_line']}"
        o_id.append(rid(rec, w))
        w = f"{w} {o_id[-1]!r}"
        od["loc"].append(location_of(rec, w))
        od["q"].append(_int(rec, "demand", w, path, 0, MAX_QUANTITY))
        od["s"].append(_int(rec, "service_s", w, path, 0, MAX_TIME_S))
        win = rec.get("window_s", [0, None])
        if not isinstance(win, list | tuple) or len(win) != 2:
            raise CaseFormatError(f"{w}: window_s must be [open, close]", path)
        opens = _int({"window_s[0]": win[0]}, "window_s[0]", w, path, 0, MAX_TIME_S)
        lt = _int({"window_s[1]": win[1]}, "window_s[1]", w, path, UNBOUNDED, MAX_TIME_S)
        if lt < opens:
            raise CaseFormatError(f"{w}: time window closes ({lt}) before it opens ({opens})", path)
        od["e"].append(int(opens))
        od["l"].append(int(lt))
        pen = rec.get("penalty")
        if pen is not None and (
            isinstance(pen, bool) or not isinstance(pen, int | float) or not 0 <= pen <= MAX_MONEY
        ):
            raise CaseFormatError(
                f"{w}: penalty must be null (required) or a number in 0..{MAX_MONEY:,}", path
            )
        od["req"].append(pen is None)
        od["pen"].append(0 if pen is None else round(pen / MONEY_UNIT))
        od["prio"].append(_int(rec, "priority", w, path, 0, MAX_PRIORITY))
    n_loc = len(lonlat)
    meta_extra: dict[str, Any] = {}
    if mats is not None:
        dur_i, dist_i = np.rint(dur).astype(np.int64), np.rint(dist).astype(np.int64)
        if (dur_i < 0).any() or (dist_i < 0).any():
            raise CaseFormatError("matrices: negative travel time or distance", path)
    else:
        if any(ll is None for ll in lonlat) or n_loc == 0:
            raise CaseFormatError("no 'matrices' and not every location has lat/lon", path)
        travel = doc.get("travel", {})
        if not isinstance(travel, dict):
            raise CaseFormatError("travel: expected an object", path)
        ll = np.array(lonlat, dtype=np.float64)
        if "roads" in travel:
            dur_i, dist_i, nodes = _road_matrices(travel, ll, loc_names, path, base)
            meta_extra["road_nodes"] = nodes
        else:
            speed = _real(travel, "speed_kmh", "travel", path, 30.0, 0.1, 1000.0)
            detour = _real(travel, "detour", "travel", path, 1.3, 1.0, 10.0)
            d = _haversine_m(ll[:, None, 1], ll[:, None, 0], ll[None, :, 1], ll[None, :, 0])
            d = d * detour
            dist_i = np.rint(d).astype(np.int64)
            dur_i = np.rint(d / (speed / 3.6)).astype(np.int64)
    have_ll = all(x is not None for x in lonlat) and len(lonlat) == dur_i.shape[0]
    try:
        return RoutingProblem(
            name=name,
            duration_s=dur_i,
            distance_m=dist_i,
            depot_location=np.array(d_loc, np.int64),
            depot_tw_early_s=np.array(d_open, np.int64),
            depot_tw_late_s=np.array(d_close, np.int64),
            order_location=np.array(od["loc"], np.int64),
            order_demand=np.array(od["q"], np.int64),
            order_service_s=np.array(od["s"], np.int64),
            order_tw_early_s=np.array(od["e"], np.int64),
            order_tw_late_s=np.array(od["l"], np.int64),
            order_required=np.array(od["req"], bool),
            order_penalty=np.array(od["pen"], np.int64),
            order_priority=np.array(od["prio"], np.int64),
            vehicle_count=np.array(vd["count"], np.int64),
            vehicle_capacity=np.array(vd["cap"], np.int64),
            vehicle_start_depot=np.array(vd["sd"], np.int64),
            vehicle_end_depot=np.array(vd["ed"], np.int64),
            vehicle_tw_early_s=np.array(vd["e"], np.int64),
            vehicle_tw_late_s=np.array(vd["l"], np.int64),
            vehicle_max_duration_s=np.array(vd["md"], np.int64),
            vehicle_fixed_cost=np.array(vd["fc"], np.int64),
            vehicle_unit_distance_cost=np.array(vd["ud"], np.int64),
            vehicle_unit_duration_cost=np.array(vd["ut"], np.int64),
            order_id=tuple(o_id),
            depot_id=tuple(d_id),
            vehicle_type_id=tuple(v_id),
            location_lonlat=np.array(lonlat, np.float64) if have_ll else None,
            cost_unit=MONEY_UNIT,
            source=path,
            meta={"format": "json", **meta_extra},
        )
    except ValidationError as e:
        raise CaseFormatError(str(e), path) from None


def read_instance(path: str | Path) -> RoutingProblem:
    """Read any supported instance: ``.json`` (aiguilleur), else CVRPLIB/Solomon by content."""
    path = _as_path(path)
    if not path.exists():
        raise CaseFormatError("no such file", str(path))
    if path.suffix.lower() == ".json":
        return read_problem_json(path)
    return read_vrplib(path)


# -- plans -------------------------------------------------------------------------------


def plan_to_json(
    problem: RoutingProblem, solution: RoutingSolution, instance: str
) -> dict[str, Any]:
    """A plan as a JSON document (order and vehicle ids, departure times)."""
    from aiguilleur.logistics._vrp_check import route_schedule

    routes = []
    for r in solution.routes:
        s = route_schedule(problem, r)
        routes.append(
            {
                "vehicle": r.vehicle,
                "vehicle_type": problem.vehicle_type_id[r.vehicle_type],
                "start_s": s.start_s if r.start_s is None else r.start_s,
                "orders": [problem.order_id[i] for i in r.orders],
            }
        )
    return {
        "instance": instance,
        "cost": solution.cost,
        "routes": routes,
        "dropped": {problem.order_id[i]: why for i, why in solution.dropped.items()},
    }


def write_plan(
    path: str | Path, problem: RoutingProblem, solution: RoutingSolution, instance: str | Path
) -> None:
    """Write ``PLAN.json`` atomically; the instance path is stored relative to the plan."""
    path = Path(path)
    rel = os.path.relpath(Path(instance).resolve(), path.resolve().parent)
    doc = plan_to_json(problem, solution, rel)
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())


def read_plan(path: str | Path) -> tuple[RoutingProblem, list[PlannedRoute], dict[int, str]]:
    """Read ``PLAN.json``: the problem it refers to, its routes and dropped orders."""
    path = _as_path(path)
    doc = _load_json(path)
    if not isinstance(doc, dict) or "instance" not in doc or "routes" not in doc:
        raise CaseFormatError("a plan needs 'instance' and 'routes'", str(path))
    inst = doc["instance"]
    if not isinstance(inst, str) or not inst:
        raise CaseFormatError("'instance' must be a file name", str(path))
    target = path.parent / inst
    if target.resolve() == path.resolve():
        raise CaseFormatError("'instance' names the plan itself", str(path))
    try:
        problem = read_instance(target)
    except CaseFormatError as e:
        raise CaseFormatError(f"its instance {inst!r}: {e}", str(path)) from None
    return (problem, *plan_from_dict(problem, doc, str(path)))


def plan_from_dict(
    problem: RoutingProblem, doc: dict[str, Any], path: str = "<plan>"
) -> tuple[list[PlannedRoute], dict[int, str]]:
    """Routes and dropped orders of a parsed plan document, checked against ``problem``."""
    if not isinstance(doc, dict):
        raise CaseFormatError("a plan must be a JSON object", path)
    oidx = {o: i for i, o in enumerate(problem.order_id)}
    vidx = {v: i for i, v in enumerate(problem.vehicle_type_id)}
    routes = []
    seen: set[str] = set()
    where_served: dict[str, str] = {}
    used: dict[int, int] = {}
    if not isinstance(doc.get("routes"), list):
        raise CaseFormatError("'routes' must be a list", path)
    for j, rec in enumerate(doc["routes"]):
        w = f"routes[{j}]"
        if not isinstance(rec, dict):
            raise CaseFormatError(f"{w}: expected an object", path)
        name_v = rec.get("vehicle")
        if name_v is not None and (isinstance(name_v, bool) or not isinstance(name_v, str | int)):
            raise CaseFormatError(f"{w}: 'vehicle' must be a name", path)
        vt_v = rec.get("vehicle_type")
        if vt_v is None and isinstance(name_v, str) and "#" in name_v:
            vt_v = name_v.rsplit("#", 1)[0]  # "tanker#1" names its type
        if vt_v is None:
            vt_v = problem.vehicle_type_id[0]
        vt = str(vt_v)
        if vt not in vidx:
            raise CaseFormatError(f"{w}: unknown vehicle type {vt!r}", path)
        k_type = vidx[vt]
        name = str(name_v) if name_v is not None else f"{vt}#{j}"
        head, _, num = name.rpartition("#")
        count = int(problem.vehicle_count[k_type])
        used[k_type] = used.get(k_type, 0) + 1
        # Names "<type>#<k>" (as solve writes them) must be one of the fleet's vehicles;
        # other names are a vehicle of the type, counted against its fleet.
        numbered = head in vidx and num.isdigit()
        if (numbered and (head != vt or int(num) >= count)) or used[k_type] > count:
            raise CaseFormatError(
                f"{w}: no vehicle {name!r} in the fleet (type {vt!r} has "
                + (f"{vt}#0..{vt}#{count - 1})" if count else "no vehicle)"),
                path,
            )
        if name in seen:
            raise CaseFormatError(f"{w}: vehicle {name!r} appears twice", path)
        seen.add(name)
        ids = rec.get("orders", [])
        if not isinstance(ids, list) or not all(
            isinstance(o, str | int) and not isinstance(o, bool) for o in ids
        ):
            raise CaseFormatError(f"{w} {name!r}: 'orders' must be a list of order ids", path)
        bad = [o for o in ids if str(o) not in oidx]
        if bad:
            raise CaseFormatError(f"{w} {name!r}: unknown order {str(bad[0])[:60]!r}", path)
        for o in ids:
            if str(o) in where_served:
                raise CaseFormatError(
                    f"{w} {name!r}: order {str(o)!r} is also served by {where_served[str(o)]!r}",
                    path,
                )
            where_served[str(o)] = name
        start = rec.get("start_s")
        if start is not None and (
            isinstance(start, bool)
            or not isinstance(start, int | float)
            or not 0 <= start <= MAX_TIME_S
        ):
            raise CaseFormatError(f"{w}: start_s must be a number in 0..{MAX_TIME_S:,}", path)
        routes.append(
            PlannedRoute(
                vehicle_type=k_type,
                orders=np.array([oidx[str(o)] for o in ids], np.int64),
                vehicle=name,
                start_s=None if start is None else int(start),
            )
        )
    dropped_doc = doc.get("dropped", {})
    if isinstance(dropped_doc, list):
        dropped_doc = {str(o): "dropped" for o in dropped_doc}
    if not isinstance(dropped_doc, dict):
        raise CaseFormatError("'dropped' must map order ids to reasons", path)
    dropped = {}
    for o, why in dropped_doc.items():
        if str(o) not in oidx:
            raise CaseFormatError(f"dropped: unknown order {str(o)[:60]!r}", path)
        if str(o) in where_served:
            raise CaseFormatError(
                f"dropped: order {str(o)!r} is also served by {where_served[str(o)]!r}", path
            )
        dropped[oidx[str(o)]] = str(why)
    return routes, dropped
