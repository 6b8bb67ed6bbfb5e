"""Scenarios: a YAML timeline of events, replayed against a fresh store.

A scenario names its world (the grid case and its operating point, the
fleets), a start time, an approval policy and a timeline::

    name: crisis
    start: 2026-01-15T05:00:00+01:00
    world:
      grid: {case: case1888, margin_pct: 5, assets: {GT-1: gen:114}}
      fleet: {seed: 1}
    policy:
      auto_apply: [grid_corrective, fleet_replan]   # never load shedding
      operator_delay: 2m        # the scripted operator approves what is left pending
      fleet_deadline_s: 1       # wall time of each fleet re-plan (default: the responder's)
    timeline:
      - at: 30m
        type: load_scale
        factor: 1.02
      - at: 2h
        type: branch_trip
        branch: branch:291

Each timeline entry is one event of :mod:`aiguilleur.ops.events` (its ``id``,
``occurred_at`` and ``source`` are filled in: ``at`` is the offset from
``start``, as ``90s``, ``30m``, ``2h15m`` or ``HH:MM:SS``), or a generator:

* ``health_stream`` replays one unit of a C-MAPSS file as ``health_reading``
  events of an asset (``file`` bundled or a path, ``unit``, ``every``,
  ``cycles``: the last N cycles of the unit);
* ``operator: approve_pending`` approves every pending proposal at that time
  (an operator in the loop; shedding included).

:func:`replay` runs it in simulated time (as fast as the analyses allow) or
at ``speed`` times wall-clock time, and returns a :class:`ReplayResult`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.errors import AiguilleurError, CaseFormatError, ValidationError
from aiguilleur.ops import events as ev

__all__ = [
    "MAX_SCENARIO_BYTES",
    "MAX_SCENARIO_NODES",
    "ReplayResult",
    "Scenario",
    "bundled_scenarios",
    "load_scenario",
    "parse_offset",
    "replay",
]

MAX_SCENARIO_BYTES = 5 * 1024 * 1024
MAX_TIMELINE = 100_000
MAX_CMAPSS_BYTES = 256 * 1024 * 1024  # the largest C-MAPSS file (train_FD004) is 15 MB
#: Replay speeds allowed (times wall-clock time): a thousandth of real time to a million times.
SPEED_RANGE = (1e-3, 1e6)
_OFFSET = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
_CLOCK = re.compile(r"^(\d+):([0-5]\d)(?::([0-5]\d(?:\.\d+)?))?$")

Progress = Callable[[str, int, int], None]


def parse_offset(text: Any, where: str = "at") -> float:
    """Seconds of an offset: ``90``, ``90s``, ``30m``, ``2h15m``, ``1d``, ``HH:MM[:SS]``."""
    if isinstance(text, bool):
        raise ValidationError(f"{where}: expected an offset like 30m or 01:30:00, got {text!r}")
    if isinstance(text, int | float):
        v = float(text)
    else:
        t = str(text).strip().lower().replace(" ", "")
        m = _CLOCK.match(t)
        if re.fullmatch(r"\d+(?:\.\d+)?", t):
            t = t + "s"
        if m:
            v = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3) or 0)
        else:
            m = _OFFSET.match(t)
            if not t or m is None:
                raise ValidationError(
                    f"{where}: expected an offset like 30m or 01:30:00, got {text!r}"
                )
            d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
            v = d * 86400 + h * 3600 + mi * 60 + s
    if not (math.isfinite(v) and 0 <= v <= 366 * 86400):
        raise ValidationError(f"{where}: expected an offset between 0 and 366 days, got {text!r}")
    return v


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: world, start, policy and the expanded timeline."""

    name: str
    description: str
    start: datetime
    world: dict[str, Any]
    auto_apply: tuple[str, ...]
    operator_delay_s: float | None
    horizon_h: float
    health_cycle_h: float
    timeline: tuple[tuple[float, dict[str, Any]], ...]  # (offset s, event document or directive)
    source: str
    #: wall time of each fleet re-plan (None: the responder's default)
    fleet_deadline_s: float | None = None

    @property
    def duration_s(self) -> float:
        return max((t for t, _ in self.timeline), default=0.0)


def bundled_scenarios() -> tuple[str, ...]:
    """Names of the scenarios shipped with aiguilleur."""
    d = files("aiguilleur.data").joinpath("scenarios")
    return tuple(sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".yaml")))


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Read a scenario file (or a bundled scenario by name, e.g. ``crisis``)."""
    import yaml

    p = Path(path_or_name)
    name = str(path_or_name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        from aiguilleur._files import read_input_bytes

        # regular files only (a folder, /dev/zero, a pipe are refused), bounded
        raw = read_input_bytes(p, max_bytes=MAX_SCENARIO_BYTES)
        src = str(p)
    else:
        if name not in bundled_scenarios():
            raise ValidationError(
                f"{name!r} is neither a scenario file nor a bundled scenario "
                f"(bundled: {', '.join(bundled_scenarios())})"
            )
        ref = files("aiguilleur.data").joinpath("scenarios", f"{name}.yaml")
        raw = ref.read_bytes()
        src = f"aiguilleur/data/scenarios/{name}.yaml"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CaseFormatError(
            f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            "is this a binary file?",
            src,
            raw[: e.start].count(b"\n") + 1,
        ) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(e, "problem", None) or "not valid YAML"
        raise CaseFormatError(f"not valid YAML: {reason}", src, line) from None
    except RecursionError:
        raise CaseFormatError("YAML nested too deeply", src) from None
    why = _yaml_too_big(doc)
    if why is not None:
        raise CaseFormatError(why, src)
    return _scenario(doc, src, text)


#: Most values a scenario may expand to once its YAML aliases are resolved (the bundled
#: crisis has a few hundred); a "billion laughs" document is refused before it is used.
MAX_SCENARIO_NODES = 1_000_000


def _yaml_too_big(doc: Any) -> str | None:
    """Why ``doc`` cannot be used (aliases that expand too far or refer to themselves)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(x: Any, depth: int) -> int:
        if not isinstance(x, dict | list):
            return 1
        k = id(x)
        if k in sizes:
            return sizes[k]
        if k in active:
            raise ValueError("a YAML alias refers to a value that contains it")
        if depth > 200:
            raise ValueError("YAML nested too deeply")
        active.add(k)
        kids = list(x.items()) if isinstance(x, dict) else x
        n = 1
        for kid in kids:
            n += size(kid[1], depth + 1) + 1 if isinstance(x, dict) else size(kid, depth + 1)
            if n > MAX_SCENARIO_NODES:
                raise ValueError(
                    f"YAML expands to more than {MAX_SCENARIO_NODES:,} values "
                    "(aliases repeating aliases)"
                )
        active.discard(k)
        sizes[k] = n
        return n

    try:
        size(doc, 0)
    except ValueError as e:
        return str(e)
    return None


def _line_of(text: str, k: int) -> int | None:
    """Line of the k-th timeline entry (best effort, for messages)."""
    count = -1
    in_tl = False
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(r"^timeline\s*:", line):
            in_tl = True
            continue
        if in_tl and re.match(r"^\s*-\s", line):
            count += 1
            if count == k:
                return n
        elif in_tl and re.match(r"^\S", line):
            break
    return None


def _scenario(doc: Any, src: str, text: str) -> Scenario:
    if not isinstance(doc, dict):
        raise CaseFormatError("expected a mapping with name, start, world and timeline", src)
    unknown = set(doc) - {"name", "description", "start", "world", "policy", "timeline"}
    if unknown:
        raise CaseFormatError(f"unknown key {sorted(unknown)[0]!r}", src)
    name = str(doc.get("name", Path(src).stem))[:128]
    start_raw = doc.get("start")
    try:
        start = (
            start_raw if isinstance(start_raw, datetime) else datetime.fromisoformat(str(start_raw))
        )
    except ValueError:
        raise CaseFormatError(
            f"start: expected an ISO date and time, got {start_raw!r}", src
        ) from None
    if start.tzinfo is None:
        raise CaseFormatError("start: needs a time zone (e.g. +01:00 or Z)", src)
    world = doc.get("world") or {}
    if not isinstance(world, dict) or not set(world) <= {"grid", "fleet"} or not world:
        raise CaseFormatError("world: expected grid and/or fleet", src)
    for key in world:
        if not isinstance(world[key], dict):
            raise CaseFormatError(f"world.{key}: expected a mapping", src)
    pol = doc.get("policy") or {}
    if not isinstance(pol, dict) or not set(pol) <= {
        "auto_apply",
        "operator_delay",
        "horizon_h",
        "health_cycle_h",
        "fleet_deadline_s",
    }:
        raise CaseFormatError(
            "policy: expected auto_apply, operator_delay, horizon_h, health_cycle_h, "
            "fleet_deadline_s",
            src,
        )
    horizon = pol.get("horizon_h", 24.0)
    cycle_h = pol.get("health_cycle_h", 1.0)
    fleet_s = pol.get("fleet_deadline_s")
    checked = [("horizon_h", horizon), ("health_cycle_h", cycle_h)]
    if fleet_s is not None:
        checked.append(("fleet_deadline_s", fleet_s))
    for key, v in checked:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1e4:
            raise CaseFormatError(f"policy.{key}: expected a positive number, got {v!r}", src)
    auto = tuple(str(x) for x in (pol.get("auto_apply") or ()))
    bad = [a for a in auto if a not in ("grid_corrective", "fleet_replan")]
    if bad:
        raise CaseFormatError(
            f"policy.auto_apply: unknown kind {bad[0]!r} (grid_corrective, fleet_replan)", src
        )
    delay = pol.get("operator_delay")
    op_delay = None if delay is None else parse_offset(delay, "policy.operator_delay")
    tl = doc.get("timeline")
    if not isinstance(tl, list) or not tl:
        raise CaseFormatError("timeline: expected a list of events", src)
    if len(tl) > MAX_TIMELINE:
        raise CaseFormatError(f"timeline: more than {MAX_TIMELINE} entries", src)
    items: list[tuple[float, dict[str, Any]]] = []
    seen: dict[str, tuple[int, dict[str, Any]]] = {}  # event id -> (entry, document)
    for k, entry in enumerate(tl):
        line = _line_of(text, k)
        if not isinstance(entry, dict) or "at" not in entry:
            raise CaseFormatError(f"timeline[{k}]: expected a mapping with 'at'", src, line)
        try:
            at = parse_offset(entry["at"], f"timeline[{k}].at")
            rest = {kk: v for kk, v in entry.items() if kk != "at"}
            for off, d in _expand(rest, k, name):
                eid = d.get("id")
                if isinstance(eid, str):
                    # one id, one event: a second body under the same id would be
                    # refused by the store in the middle of the replay
                    first = seen.setdefault(eid, (k, d))
                    if first[1] is not d:
                        raise ValidationError(
                            f"timeline[{k}].id: {eid[:128]!r} is already the id of "
                            f"timeline[{first[0]}]; give each event its own id"
                        )
                items.append((at + off, d))
        except AiguilleurError as e:
            raise CaseFormatError(str(e), src, line) from None
    items.sort(key=lambda x: x[0])
    # every event of the timeline must validate on its own (the world is checked at replay)
    for off, d in items:
        if "operator" in d and "type" not in d:
            continue
        doc1 = {**d, "occurred_at": (start + timedelta(seconds=off)).isoformat()}
        try:
            ev.parse_event(doc1)
        except ValidationError as e:
            raise CaseFormatError(f"timeline event {d.get('id')}: {e}", src) from None
    return Scenario(
        name=name,
        description=str(doc.get("description", ""))[:2000],
        start=start,
        world=world,
        auto_apply=auto,
        operator_delay_s=op_delay,
        horizon_h=float(horizon),
        health_cycle_h=float(cycle_h),
        fleet_deadline_s=None if fleet_s is None else float(fleet_s),
        timeline=tuple(items),
        source=src,
    )


def _number(
    d: dict[str, Any],
    key: str,
    default: float,
    where: str,
    lo: float,
    hi: float,
    *,
    integer: bool = False,
) -> float:
    """``d[key]`` as a finite number in ``[lo, hi]`` (an integer when asked), or one line."""
    v = d.get(key, default)
    kind = "an integer" if integer else "a number"
    if (
        isinstance(v, bool)
        or not isinstance(v, int | float)
        or (integer and not isinstance(v, int))
        or not (math.isfinite(v) and lo <= v <= hi)
    ):
        span = f"{int(lo)} to {int(hi)}" if integer else f"{lo:g} to {hi:g}"
        raise ValidationError(f"{where}.{key}: expected {kind} from {span}, got {v!r}"[:300])
    return float(v)


def _world_events(scenario: Scenario, step: Callable[[str, int, int], None]) -> list[Any]:
    """The world events of ``scenario`` (grid operating point, fleets and first plans)."""
    from aiguilleur.ops.fleet import fleet_world
    from aiguilleur.ops.world import grid_world

    world: list[Any] = []
    w = scenario.world
    if "grid" in w:
        step("grid operating point (AC-OPF, N-1)", 0, 1)
        gw = dict(w["grid"])
        unknown = set(gw) - {"case", "margin_pct", "assets"}
        if unknown:
            raise ValidationError(f"world.grid: unknown key {sorted(unknown)[0]!r}")
        assets = gw.get("assets") or {}
        if not isinstance(assets, dict):
            raise ValidationError("world.grid.assets: expected a mapping ASSET: gen:J")
        world.append(
            grid_world(
                str(gw.get("case", "case1888")),
                at=scenario.start,
                event_id=f"{scenario.name}:world:grid",
                margin_pct=_number(gw, "margin_pct", 5.0, "world.grid", 0.0, 100.0),
                assets={str(k): str(v) for k, v in assets.items()},
            )
        )
    if "fleet" in w:
        step("fleets and their first plans", 0, 1)
        fw = dict(w["fleet"])
        unknown = set(fw) - {"seed", "time_limit_s", "tankers", "crews"}
        if unknown:
            raise ValidationError(f"world.fleet: unknown key {sorted(unknown)[0]!r}")
        world.append(
            fleet_world(
                seed=int(_number(fw, "seed", 1, "world.fleet", 0, 2**32 - 1, integer=True)),
                shift_start=scenario.start,
                event_id=f"{scenario.name}:world:fleet",
                time_limit_s=_number(fw, "time_limit_s", 2.0, "world.fleet", 0.01, 3600.0),
                tankers=int(_number(fw, "tankers", 4, "world.fleet", 0, 1000, integer=True)),
                crews=int(_number(fw, "crews", 2, "world.fleet", 0, 1000, integer=True)),
            )
        )
    return world


def _check_timeline(scenario: Scenario, centre: Any) -> None:
    """Check every timeline event's grid elements against the world, before the replay."""
    st = centre.state()
    net = st.grid.net if st.grid is not None else None
    for off, d in scenario.timeline:
        if "type" not in d:
            continue
        doc = {**d, "occurred_at": (scenario.start + timedelta(seconds=off)).isoformat()}
        try:
            ev.check_event(ev.parse_event(doc), net)
        except ValidationError as e:
            raise CaseFormatError(f"timeline event {d.get('id')}: {e}", scenario.source) from None


def _expand(entry: dict[str, Any], k: int, name: str) -> list[tuple[float, dict[str, Any]]]:
    if "operator" in entry:
        if entry["operator"] != "approve_pending" or len(entry) != 1:
            raise ValidationError(f"timeline[{k}]: the only operator directive is approve_pending")
        return [(0.0, {"operator": "approve_pending"})]
    if entry.get("type") == "health_stream":
        return _health_stream(entry, k, name)
    d = dict(entry)
    d.setdefault("id", f"{name}:{k}")
    d.setdefault("source", f"scenario:{name}")
    return [(0.0, d)]


def _health_stream(entry: dict[str, Any], k: int, name: str) -> list[tuple[float, dict[str, Any]]]:
    from aiguilleur.health.cmapss import read_cmapss

    allowed = {"type", "asset", "file", "unit", "every", "cycles"}
    extra = set(entry) - allowed
    if extra:
        raise ValidationError(f"timeline[{k}]: health_stream has no field {sorted(extra)[0]!r}")
    asset = str(entry.get("asset", ""))
    if not asset:
        raise ValidationError(f"timeline[{k}].asset: missing")
    fname = str(entry.get("file", "test_FD001_units1-10.txt"))
    unit = entry.get("unit", 1)
    if isinstance(unit, bool) or not isinstance(unit, int) or unit < 1:
        raise ValidationError(f"timeline[{k}].unit: expected a positive integer")
    every = parse_offset(entry.get("every", "5m"), f"timeline[{k}].every")
    if every <= 0:
        raise ValidationError(f"timeline[{k}].every: expected a positive offset")
    p = Path(fname)
    if p.exists():
        import stat

        st = p.stat()
        if not stat.S_ISREG(st.st_mode):  # a folder, or a device the reader would never finish
            raise ValidationError(f"timeline[{k}].file: {fname[:200]}: not a regular file")
        if st.st_size > MAX_CMAPSS_BYTES:
            raise ValidationError(
                f"timeline[{k}].file: {fname[:200]}: more than {MAX_CMAPSS_BYTES:,} bytes"
            )
        tel = read_cmapss(p)
    else:
        ref = files("aiguilleur.data").joinpath("cmapss", fname)
        if not ref.is_file():
            raise ValidationError(
                f"timeline[{k}].file: no such file or bundled C-MAPSS file {fname!r}"
            )
        with as_file(ref) as path:
            tel = read_cmapss(path)
    rows = np.flatnonzero(tel.unit == unit)
    if rows.size == 0:
        raise ValidationError(f"timeline[{k}].unit: no unit {unit} in {fname}")
    n = entry.get("cycles")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValidationError(f"timeline[{k}].cycles: expected a positive integer")
        rows = rows[-n:]
    out = []
    for j, r in enumerate(rows.tolist()):
        out.append(
            (
                j * every,
                {
                    "id": f"{name}:{k}:{int(tel.cycle[r])}",
                    "type": "health_reading",
                    "source": f"scenario:{name}",
                    "asset": asset,
                    "cycle": int(tel.cycle[r]),
                    "settings": [float(x) for x in tel.settings[r]],
                    "sensors": {
                        s: float(v) for s, v in zip(tel.sensor_names, tel.sensors[r], strict=True)
                    },
                },
            )
        )
    return out


# -- replay -----------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """What a replay did: the timeline with reaction times, proposals, alarms and the end state."""

    scenario: str
    store: str
    events: int
    proposals: list[dict[str, Any]]
    alarms: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    reaction_s: dict[str, float]
    ac_violations_after: dict[str, Any]
    shed_mw: float
    undelivered_orders: list[str]
    state_hash: str
    wall_s: float
    simulated_s: float
    world_s: float
    operating_point: dict[str, Any]
    risk: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    first_state: Any = field(default=None, repr=False)
    last_state: Any = field(default=None, repr=False)
    log: list[str] = field(default_factory=list, repr=False)
    description: str = ""

    @property
    def speedup(self) -> float:
        return self.simulated_s / self.wall_s if self.wall_s > 0 else math.inf

    @property
    def ok(self) -> bool:
        """True when the end state holds in AC and nothing required is undelivered."""
        v = self.ac_violations_after
        return (
            bool(v.get("converged", False))
            and not v.get("branches")
            and not v.get("buses")
            and not self.undelivered_orders
        )

    def to_dict(self) -> dict[str, Any]:
        from aiguilleur.ops._canon import json_safe

        out: dict[str, Any] = json_safe(
            {
                "scenario": self.scenario,
                "ok": self.ok,
                "events": self.events,
                "proposals": len(self.proposals),
                "approved": sum(
                    1 for p in self.proposals if p["status"] in ("approved", "amended")
                ),
                "alarms": len(self.alarms),
                "reaction_s": self.reaction_s,
                "ac_violations_after": self.ac_violations_after,
                "shed_mw": self.shed_mw,
                "undelivered_orders": self.undelivered_orders,
                "state_hash": self.state_hash,
                "wall_s": self.wall_s,
                "simulated_s": self.simulated_s,
                "speedup": self.speedup,
                "world_s": self.world_s,
                "store": self.store,
                "report": self.report_path,
            }
        )
        return out


def _quantiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0, "count": 0}
    a = np.asarray(xs)
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
        "count": len(xs),
    }


def replay(
    scenario: Scenario,
    *,
    store: str | None = None,
    speed: float | None = None,
    progress: Progress | None = None,
    grid_deadline_s: float | None = None,
) -> ReplayResult:
    """Replay ``scenario`` against a fresh store (``None``: in memory).

    ``speed`` ``None`` runs in simulated time (the next event comes as soon as
    the analyses of the last are done); ``speed=1`` at wall-clock time,
    ``speed=60`` a minute per second. A store that already holds events is
    refused (a replay starts from nothing).
    """
    from aiguilleur.ops.centre import CentreOptions, OpsCentre
    from aiguilleur.ops.responder import ResponderOptions
    from aiguilleur.ops.store import open_store

    lo, hi = SPEED_RANGE
    if speed is not None and not (
        isinstance(speed, int | float) and not isinstance(speed, bool) and lo <= speed <= hi
    ):
        raise ValidationError(
            f"speed: expected a number from {lo:g} to {hi:g} (times real time), got {speed!r}"
        )

    def step(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    st = open_store(store) if store is not None else open_store("memory://")
    if st.last_seq() != 0:
        st.close()
        raise ValidationError(
            f"{store}: the store already holds events; a replay needs a fresh store"
        )
    kw: dict[str, Any] = {
        "auto_apply": scenario.auto_apply,
        "horizon_h": scenario.horizon_h,
        "health_cycle_h": scenario.health_cycle_h,
    }
    if grid_deadline_s is not None:
        kw["grid_deadline_s"] = grid_deadline_s
    if scenario.fleet_deadline_s is not None:
        kw["fleet_deadline_s"] = scenario.fleet_deadline_s
    ropts = ResponderOptions(**kw)
    centre = OpsCentre(st, CentreOptions(responder=ropts))
    try:
        t_world = time.perf_counter()
        try:
            world = _world_events(scenario, step)
        except ValidationError as e:
            raise CaseFormatError(str(e), scenario.source) from None
        res = centre.ingest(world)
        bad = [r for r in res if not r.ok]
        if bad:
            raise CaseFormatError(f"world: {bad[0].error}", scenario.source)
        _check_timeline(scenario, centre)
        centre.respond()
        first_state = centre.state()
        world_s = time.perf_counter() - t_world
        t0 = time.perf_counter()
        timeline: list[dict[str, Any]] = []
        reactions: list[float] = []
        pending_ops: list[tuple[float, str]] = []  # (due offset, proposal id)
        n = len(scenario.timeline)
        items = list(scenario.timeline)
        k = 0
        while k < n or pending_ops:
            # the next thing to happen: a timeline entry or a scripted approval
            next_t = items[k][0] if k < n else math.inf
            due = min((d for d, _ in pending_ops), default=math.inf)
            if due < next_t:
                off = due
                pids = [p for d, p in pending_ops if d <= due]
                pending_ops = [(d, p) for d, p in pending_ops if d > due]
                _wait(speed, t0, off)
                for pid in pids:
                    _approve_if_pending(centre, pid, scenario.start + timedelta(seconds=off))
                centre.respond()
                continue
            off, d = items[k]
            k += 1
            step("replaying the timeline", k, n)
            _wait(speed, t0, off)
            when = scenario.start + timedelta(seconds=off)
            if "operator" in d and "type" not in d:
                for p in centre.proposals("pending"):
                    _approve_if_pending(centre, p["id"], when)
                centre.respond()
                continue
            doc = {**d, "occurred_at": when.isoformat()}
            t1 = time.perf_counter()
            r = centre.ingest([doc])[0]
            if not r.ok:
                raise CaseFormatError(f"timeline event {doc.get('id')}: {r.error}", scenario.source)
            reacts = centre.respond()
            dt = time.perf_counter() - t1
            props = [p for x in reacts for p in x.proposals]
            alarms = [a for x in reacts for a in x.alarms]
            if reacts:
                reactions.append(dt)
            timeline.append(
                {
                    "at_s": off,
                    "time": when.isoformat(),
                    "id": doc["id"],
                    "type": doc["type"],
                    "what": _what(doc),
                    "seq": r.seq,
                    "reaction_s": dt if reacts else None,
                    "analyses": [a["kind"] for x in reacts for a in x.analyses],
                    "proposals": [p["id"] for p in props],
                    "alarms": len(alarms),
                }
            )
            if scenario.operator_delay_s is not None:
                for p in props:
                    if p["kind"] not in scenario.auto_apply or not p["ok"] or p["sheds_load"]:
                        pending_ops.append((off + scenario.operator_delay_s, p["id"]))
        wall = time.perf_counter() - t0
        out = _result(centre, scenario, timeline, reactions, wall, world_s, store)
        out.first_state = first_state
        out.log = [body for _, body in centre.events()]
        return out
    finally:
        centre.close()


def _wait(speed: float | None, t0: float, off: float) -> None:
    if speed is None:
        return
    target = t0 + off / speed
    delay = target - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _approve_if_pending(centre: Any, pid: str, when: datetime) -> None:
    try:
        p = centre.proposal(pid)
    except ValidationError:
        return
    if p["status"] == "pending":
        centre.approve(pid, "scripted-operator", at=when)


def _what(doc: dict[str, Any]) -> str:
    t = doc["type"]
    for key in ("branch", "gen", "bus", "asset", "order", "vehicle", "depot", "closure"):
        if key in doc:
            extra = ""
            if t == "gen_derate":
                extra = f" to {doc['pmax_mw']:,.0f} MW"
            return f"{doc[key]}{extra}"
    if t == "load_scale":
        scope = f"area {doc['area']}" if doc.get("area") is not None else "all buses"
        return f"demand x {doc['factor']} ({scope})"
    if t == "forecast_issued":
        return f"{doc.get('quantity', 'load')} forecast, {len(doc['p50_mw'])} steps"
    return ""


def _result(
    centre: Any,
    scenario: Scenario,
    timeline: list[dict[str, Any]],
    reactions: list[float],
    wall: float,
    world_s: float,
    store: str | None,
) -> ReplayResult:
    from aiguilleur.grid.corrective import ac_check

    st = centre.state()
    viol: dict[str, Any] = {"converged": False, "branches": [], "buses": []}
    shed = 0.0
    if st.grid is not None:
        chk = ac_check(st.grid.net, "a")
        net = st.grid.net
        viol = {
            "converged": chk.converged,
            "branches": [{"branch": f"branch:{k + 1}", "loading_pct": p} for k, p in chk.overloads],
            "buses": [
                {"bus": f"bus:{int(net.bus.bus_id[i])}", "vm_pu": v, "limit_pu": lim}
                for i, v, lim in (*chk.low_voltage, *chk.high_voltage)
            ],
            "max_loading_pct": chk.max_loading_pct,
            "unserved_mw": chk.unserved_mw,
        }
        shed = st.grid.total_shed_mw
    undelivered: list[str] = []
    if st.fleet is not None:
        for plan in st.fleet.plans.values():
            undelivered.extend(plan.get("dropped", {}))
    proposals = centre.proposals()
    ops = st.grid.operating_point if st.grid is not None else {}
    return ReplayResult(
        scenario=scenario.name,
        store=store or "memory://",
        events=st.events,
        proposals=proposals,
        alarms=centre.alarms(),
        timeline=timeline,
        reaction_s=_quantiles(reactions),
        ac_violations_after=viol,
        shed_mw=shed,
        undelivered_orders=sorted(set(undelivered)),
        state_hash=st.state_hash,
        wall_s=wall,
        simulated_s=scenario.duration_s,
        world_s=world_s,
        operating_point=dict(ops),
        risk=list(centre.responder.last_risk),
        final=st.summary(),
        last_state=st,
        description=scenario.description,
    )
