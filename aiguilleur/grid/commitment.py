"""Multi-period dispatch and unit commitment with storage and renewables (MILP in HiGHS).

Over a horizon of ``T`` steps (24-48 hourly or 96 quarter-hourly), decide
which units run and at what output, how storage charges and discharges, how
much renewable output to take, and (as a last resort, at the value of lost
load) how much load to shed. Per unit ``g`` and step ``t``::

    u[g,t] in {0,1}  committed;  v, w in [0,1]  start-up / shut-down
    v[g,t] - w[g,t] = u[g,t] - u[g,t-1]
    sum(v[g, t-UT+1..t]) <= u[g,t]          minimum up time
    sum(w[g, t-DT+1..t]) <= 1 - u[g,t]      minimum down time
    p[g,t] = Pmin u[g,t] + sum_k s[g,t,k],  0 <= s_k <= width_k,  sum_k s_k <= (Pmax - Pmin) u
    p[g,t] - p[g,t-1] <= RU u[g,t-1] + SU v[g,t]       (ramp up; SU = max(RU, Pmin))
    p[g,t-1] - p[g,t] <= RD u[g,t] + SD w[g,t]         (ramp down)
    e[s,t] = e[s,t-1] + eta_c dt ch[s,t] - dt / eta_d dis[s,t],  e[s,T-1] >= e[s,-1]
    balance per step (one system row, or one row per bus with DC flows and limits)

The generation cost is the case's cost curve, piecewise-linearised over
``segments`` equal slices of ``[Pmin, Pmax]`` (exact for the linear cost
rows that most PGLib generators have); start-ups cost ``startup_cost`` per
start. After the MILP, the commitment is fixed and the LP re-solved to give
the prices (system marginal price per step, or LMPs per bus and step with
the network).

Unit data that MATPOWER files do not carry (minimum up/down times, start-up
costs when the file has none, ramp rates) come from :class:`UnitDefaults`,
by unit size, or from a per-unit CSV (:func:`read_units`).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from aiguilleur._files import read_input_text
from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network, check_options
from aiguilleur.grid._compile import incidence, island_references
from aiguilleur.grid.dispatch import _costs, _number, _quiet_highs, _readonly
from aiguilleur.grid.network import BUS_ISOLATED, Network

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CommitmentOptions",
    "CommitmentResult",
    "Profile",
    "StorageUnits",
    "UnitDefaults",
    "UnitParameters",
    "commit",
    "read_profile",
    "read_storage",
    "read_units",
    "synthetic_profile",
    "unit_parameters",
    "write_profile",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CommitStatus = Literal["optimal", "time_limit", "infeasible", "error"]


# -- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Load and renewable availability per bus over the horizon.

    ``load_mw`` and ``renewable_mw`` are ``(T, n_bus)`` arrays in the
    network's bus order; ``step_h`` is the length of a step in hours.
    """

    load_mw: FloatArray
    renewable_mw: FloatArray
    step_h: float = 1.0

    @property
    def periods(self) -> int:
        return int(self.load_mw.shape[0])

    def head(self, periods: int) -> Profile:
        """The first ``periods`` steps."""
        if periods < 1 or periods > self.periods:
            raise ValidationError(
                f"horizon: expected 1 to {self.periods} steps (the profile's length), got {periods}"
            )
        return Profile(self.load_mw[:periods], self.renewable_mw[:periods], self.step_h)


def _csv_rows(
    path: Path, required: tuple[str, ...]
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    text = read_input_text(path, encoding="utf-8-sig")
    lines = text.splitlines()
    try:
        rows = [
            (i + 1, r) for i, r in enumerate(csv.reader(lines)) if r and any(c.strip() for c in r)
        ]
    except csv.Error as e:
        raise ValidationError(f"{path}: not a readable CSV file ({e})") from None
    if not rows:
        raise ValidationError(f"{path}: empty file, expected a header line")
    header = [c.strip().lower() for c in rows[0][1]]
    for name in required:
        if name not in header:
            raise ValidationError(
                f"{path}, line {rows[0][0]}: missing column {name!r} (header: "
                f"{_token(', '.join(header), 80)[1:-1]})"
            )
    for line, r in rows[1:]:
        if len(r) != len(header):
            raise ValidationError(
                f"{path}, line {line}: {len(r)} fields, expected {len(header)} as in the header"
            )
    return header, rows[1:]


def _token(text: str, limit: int = 40) -> str:
    """The offending field as it will appear in an error (never a whole line or file)."""
    t = text.strip()
    return repr(t if len(t) <= limit else t[:limit] + "...")


def _field(path: Path, line: int, name: str, text: str, *, integer: bool = False) -> float:
    try:
        v = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ValidationError(
            f"{path}, line {line}, field {name}: {_token(text)} is not {kind}"
        ) from None
    if not math.isfinite(v):
        raise ValidationError(f"{path}, line {line}, field {name}: {_token(text)} is not finite")
    if integer and abs(v) > 2**53:
        raise ValidationError(f"{path}, line {line}, field {name}: {_token(text)} is out of range")
    return float(v)


def read_profile(path: str | Path, net: Network, *, step_h: float = 1.0) -> Profile:
    """Read a profile CSV: ``period,bus_id,load_mw[,renewable_mw]``, one row per bus and step.

    Periods are numbered ``0..T-1`` (every one present); buses not listed in
    a period have no load in it. Errors name the file, line and field: a
    missing period, a negative load, an unknown bus, a duplicated row.
    """
    p = Path(path)
    header, rows = _csv_rows(p, ("period", "bus_id", "load_mw"))
    ip, ib, il = header.index("period"), header.index("bus_id"), header.index("load_mw")
    ir = header.index("renewable_mw") if "renewable_mw" in header else -1
    if not rows:
        raise ValidationError(f"{p}: no data rows")
    n = len(rows)
    per = np.empty(n, dtype=np.int64)
    bus = np.empty(n, dtype=np.int64)
    load = np.empty(n)
    ren = np.zeros(n)
    lines = np.empty(n, dtype=np.int64)
    for k, (line, r) in enumerate(rows):
        lines[k] = line
        per[k] = int(_field(p, line, "period", r[ip], integer=True))
        bus[k] = int(_field(p, line, "bus_id", r[ib], integer=True))
        load[k] = _field(p, line, "load_mw", r[il])
        if ir >= 0 and r[ir].strip():
            ren[k] = _field(p, line, "renewable_mw", r[ir])
    bad = np.flatnonzero(per < 0)
    if bad.size:
        raise ValidationError(f"{p}, line {lines[bad[0]]}, field period: must be >= 0")
    bad = np.flatnonzero(load < 0)
    if bad.size:
        raise ValidationError(
            f"{p}, line {lines[bad[0]]}, field load_mw: negative load {load[bad[0]]:g}"
        )
    bad = np.flatnonzero(ren < 0)
    if bad.size:
        raise ValidationError(
            f"{p}, line {lines[bad[0]]}, field renewable_mw: negative availability {ren[bad[0]]:g}"
        )
    bad = np.flatnonzero(~np.isin(bus, net.bus.bus_id))
    if bad.size:
        raise ValidationError(
            f"{p}, line {lines[bad[0]]}, field bus_id: no bus {bus[bad[0]]} in the case"
        )
    pos = net.bus_index(bus)
    t_count = int(per.max()) + 1
    if t_count > n:  # more periods than rows: some are missing (and no huge table is made)
        seen = np.unique(per)
        gaps = np.flatnonzero(seen != np.arange(seen.size))
        miss = int(gaps[0]) if gaps.size else int(seen.size)
        raise ValidationError(
            f"{p}: period {miss} is missing (periods must run 0..{t_count - 1} without gaps)"
        )
    present = np.zeros(t_count, dtype=bool)
    present[per] = True
    if not present.all():
        miss = int(np.flatnonzero(~present)[0])
        raise ValidationError(
            f"{p}: period {miss} is missing (periods must run 0..{t_count - 1} without gaps)"
        )
    key = per * net.n_bus + pos
    uniq, counts = np.unique(key, return_counts=True)
    if np.any(counts > 1):
        k = int(uniq[np.flatnonzero(counts > 1)[0]])
        dup = np.flatnonzero(key == k)
        raise ValidationError(
            f"{p}, line {lines[dup[1]]}: period {per[dup[1]]}, bus {bus[dup[1]]} repeats line "
            f"{lines[dup[0]]}"
        )
    lm = np.zeros((t_count, net.n_bus))
    rm = np.zeros((t_count, net.n_bus))
    lm[per, pos] = load
    rm[per, pos] = ren
    step = _number("step_h", step_h, 0.0, 24.0)
    return Profile(_readonly(lm), _readonly(rm), step)


def write_profile(path: str | Path, net: Network, profile: Profile) -> None:
    """Write ``profile`` in :func:`read_profile`'s format (atomically)."""
    from aiguilleur._files import atomic_write_bytes

    t_idx, b_idx = np.nonzero((profile.load_mw != 0) | (profile.renewable_mw != 0))
    lines = ["period,bus_id,load_mw,renewable_mw"]
    ids = net.bus.bus_id
    for t, b in zip(t_idx.tolist(), b_idx.tolist(), strict=True):
        lines.append(
            f"{t},{int(ids[b])},{profile.load_mw[t, b]:.3f},{profile.renewable_mw[t, b]:.3f}"
        )
    atomic_write_bytes(Path(path), ("\n".join(lines) + "\n").encode())


# A winter working day on a European transmission grid, per unit of the daily peak
# (shape of hourly national load: night trough near 0.7, morning ramp, evening peak).
_DAILY_SHAPE = np.array(
    [0.74, 0.70, 0.68, 0.67, 0.68, 0.72, 0.81, 0.90, 0.95, 0.96, 0.96, 0.95,
     0.93, 0.91, 0.89, 0.88, 0.90, 0.96, 1.00, 0.99, 0.95, 0.89, 0.83, 0.78]
)  # fmt: skip


def synthetic_profile(
    net: Network,
    *,
    hours: int = 24,
    step_h: float = 1.0,
    renewable_share: float = 0.25,
    renewable_buses: int = 6,
    seed: int = 1,
) -> Profile:
    """A reproducible profile derived from the case's own loads.

    Each bus's load follows a winter working-day shape whose peak is the
    case's load; wind farms at the ``renewable_buses`` buses with the largest
    generation capacity get an availability (a smooth random walk) whose mean
    is ``renewable_share`` of the mean load.
    """
    if hours < 1:
        raise ValidationError(f"hours: expected at least 1, got {hours}")
    step_h = _number("step_h", step_h, 0.0, 24.0)
    steps = round(hours / step_h)
    rng = np.random.default_rng(seed)
    tt = np.arange(steps) * step_h
    shape = np.interp(tt % 24, np.arange(25), np.append(_DAILY_SHAPE, _DAILY_SHAPE[0]))
    pd_bus = np.clip(net.bus.pd_mw, 0.0, None)
    load = shape[:, None] * pd_bus[None, :]
    cap = np.zeros(net.n_bus)
    np.add.at(cap, net.gen_bus, np.clip(net.gen.pmax_mw, 0, None) * (net.gen.in_service == 1))
    sites = np.argsort(-cap, kind="stable")[:renewable_buses]
    walk = np.cumsum(rng.normal(0.0, 0.15, size=(steps, sites.size)), axis=0)
    smooth = 0.5 + 0.35 * np.tanh(walk + rng.normal(0.0, 0.5, size=sites.size))
    avail = np.zeros_like(load)
    total = renewable_share * float(np.mean(load.sum(axis=1)))
    avail[:, sites] = smooth / max(float(smooth.mean()), 1e-9) * total / max(sites.size, 1)
    return Profile(_readonly(load), _readonly(avail), float(step_h))


@dataclass(frozen=True)
class StorageUnits:
    """Storage units (batteries, pumped hydro), one row each.

    ``eta_charge`` and ``eta_discharge`` are one-way efficiencies in (0, 1];
    state of charge in MWh; the state at the end of the horizon must be at
    least ``soc_init_mwh`` (terminal condition).
    """

    bus: IntArray
    power_mw: FloatArray
    energy_mwh: FloatArray
    eta_charge: FloatArray
    eta_discharge: FloatArray
    soc_init_mwh: FloatArray
    soc_min_mwh: FloatArray
    names: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return int(self.bus.size)

    @classmethod
    def empty(cls) -> StorageUnits:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), z, z, z, z, z, z, ())


def read_storage(path: str | Path, net: Network) -> StorageUnits:
    """Read storage units from CSV.

    Columns ``name,bus_id,power_mw,energy_mwh,eta_charge,eta_discharge`` and
    optionally ``soc_init_mwh`` (default half full) and ``soc_min_mwh`` (0).
    """
    p = Path(path)
    req = ("name", "bus_id", "power_mw", "energy_mwh", "eta_charge", "eta_discharge")
    header, rows = _csv_rows(p, req)
    out: dict[str, list[float]] = {k: [] for k in (*req[1:], "soc_init_mwh", "soc_min_mwh")}
    names: list[str] = []
    for line, r in rows:
        rec = dict(zip(header, r, strict=True))
        names.append(rec["name"].strip())
        vals = {k: _field(p, line, k, rec[k], integer=k == "bus_id") for k in req[1:]}
        for k in ("power_mw", "energy_mwh"):
            if vals[k] <= 0:
                raise ValidationError(f"{p}, line {line}, field {k}: must be > 0, got {vals[k]:g}")
        for k in ("eta_charge", "eta_discharge"):
            if not 0 < vals[k] <= 1:
                raise ValidationError(
                    f"{p}, line {line}, field {k}: efficiency must be in (0, 1], got {vals[k]:g}"
                )
        init = (
            _field(p, line, "soc_init_mwh", rec["soc_init_mwh"])
            if rec.get("soc_init_mwh", "").strip()
            else 0.5 * vals["energy_mwh"]
        )
        smin = (
            _field(p, line, "soc_min_mwh", rec["soc_min_mwh"])
            if rec.get("soc_min_mwh", "").strip()
            else 0.0
        )
        if not 0 <= smin <= init <= vals["energy_mwh"]:
            raise ValidationError(
                f"{p}, line {line}: expected 0 <= soc_min_mwh ({smin:g}) <= soc_init_mwh "
                f"({init:g}) <= energy_mwh ({vals['energy_mwh']:g})"
            )
        if not np.isin(int(vals["bus_id"]), net.bus.bus_id):
            raise ValidationError(
                f"{p}, line {line}, field bus_id: no bus {int(vals['bus_id'])} in the case"
            )
        vals["bus_id"] = float(net.bus_index([int(vals["bus_id"])])[0])
        vals["soc_init_mwh"], vals["soc_min_mwh"] = init, smin
        for k, v in vals.items():
            out[k].append(v)
    return StorageUnits(
        bus=_readonly(out["bus_id"], np.int64),
        power_mw=_readonly(out["power_mw"]),
        energy_mwh=_readonly(out["energy_mwh"]),
        eta_charge=_readonly(out["eta_charge"]),
        eta_discharge=_readonly(out["eta_discharge"]),
        soc_init_mwh=_readonly(out["soc_init_mwh"]),
        soc_min_mwh=_readonly(out["soc_min_mwh"]),
        names=tuple(names),
    )


@dataclass(frozen=True)
class UnitDefaults:
    """Unit data by size class for what MATPOWER files do not carry.

    Units of at least ``large_mw`` (Pmax) are "large" (steam and nuclear
    units), at least ``medium_mw`` "medium" (combined cycle), the rest
    "small" (gas turbines, engines): minimum up/down times in hours and
    start-up costs per MW of Pmax per class; ramp rate in % of Pmax per
    minute for all. A start-up cost given in the file's gencost wins.
    """

    large_mw: float = 400.0
    medium_mw: float = 100.0
    min_up_h: tuple[float, float, float] = (8.0, 4.0, 1.0)
    min_down_h: tuple[float, float, float] = (8.0, 4.0, 1.0)
    startup_eur_per_mw: tuple[float, float, float] = (100.0, 60.0, 20.0)
    ramp_pct_per_min: float = 1.0


@dataclass(frozen=True)
class UnitParameters:
    """Per generator row: minimum up/down times (steps), start-up cost, hourly ramp (MW/h)."""

    min_up_h: FloatArray
    min_down_h: FloatArray
    startup_cost: FloatArray
    ramp_mw_per_h: FloatArray


def unit_parameters(net: Network, defaults: UnitDefaults | None = None) -> UnitParameters:
    """Unit data from the file where it has them, else from ``defaults`` by size."""
    d = UnitDefaults() if defaults is None else defaults
    pmax = np.clip(net.gen.pmax_mw, 0.0, None)
    cls = np.where(pmax >= d.large_mw, 0, np.where(pmax >= d.medium_mw, 1, 2))
    up = np.asarray(d.min_up_h)[cls]
    down = np.asarray(d.min_down_h)[cls]
    start = np.asarray(d.startup_eur_per_mw)[cls] * pmax
    gc = net.gencost
    if gc is not None:
        start = np.where(gc.startup[: net.n_gen] > 0, gc.startup[: net.n_gen], start)
    ramp = d.ramp_pct_per_min / 100.0 * pmax * 60.0
    return UnitParameters(_readonly(up), _readonly(down), _readonly(start), _readonly(ramp))


def read_units(path: str | Path, net: Network) -> UnitParameters:
    """Per-unit data from CSV: ``gen,min_up_h,min_down_h,startup_cost,ramp_mw_per_h``.

    ``gen`` is the 1-based generator row; units not listed keep the defaults.
    """
    p = Path(path)
    req = ("gen", "min_up_h", "min_down_h", "startup_cost", "ramp_mw_per_h")
    header, rows = _csv_rows(p, req)
    base = unit_parameters(net)
    arrs = [np.array(base.min_up_h), np.array(base.min_down_h)]
    arrs += [np.array(base.startup_cost), np.array(base.ramp_mw_per_h)]
    for line, r in rows:
        rec = dict(zip(header, r, strict=True))
        g = int(_field(p, line, "gen", rec["gen"], integer=True))
        if not 1 <= g <= net.n_gen:
            raise ValidationError(
                f"{p}, line {line}, field gen: no generator {g} (the case has {net.n_gen})"
            )
        for k, a in zip(req[1:], arrs, strict=True):
            v = _field(p, line, k, rec[k])
            if v < 0:
                raise ValidationError(f"{p}, line {line}, field {k}: must be >= 0, got {v:g}")
            a[g - 1] = v
    return UnitParameters(*(_readonly(a) for a in arrs))


@dataclass(frozen=True)
class CommitmentOptions:
    """Settings of the unit commitment.

    Parameters
    ----------
    network
        Add DC power flow rows and branch limits (rating ``rating``) per step;
        otherwise one system balance per step (copper plate).
    mip_gap
        Relative MIP gap at which HiGHS stops.
    time_limit_s
        Wall-clock limit; the best plan found is returned with the gap reached.
    segments
        Linear pieces of each quadratic cost curve.
    voll_eur_per_mwh
        Value of lost load (shed load is always allowed at this price).
    curtailment_cost_eur_per_mwh
        Cost of each MWh of renewable output not taken.
    reserve_fraction
        Spinning reserve held each step, as a share of the load.
    units
        Per-unit data (:func:`unit_parameters` from :class:`UnitDefaults` if None).
    """

    network: bool = False
    rating: Literal["a", "b", "c"] = "a"
    mip_gap: float = 1e-3
    time_limit_s: float = 60.0
    segments: int = 4
    voll_eur_per_mwh: float = 10_000.0
    curtailment_cost_eur_per_mwh: float = 0.0
    reserve_fraction: float = 0.0
    units: UnitParameters | None = None
    log: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _number("mip_gap", self.mip_gap, 0.0, 1.0, closed=True)
        _number("time_limit_s", self.time_limit_s, 0.0, math.inf)
        if isinstance(self.segments, bool) or not isinstance(self.segments, int):
            raise ValidationError(f"segments: expected an integer, got {self.segments!r}")
        if not 1 <= self.segments <= 20:
            raise ValidationError(f"segments: expected 1 to 20, got {self.segments}")
        _number("voll_eur_per_mwh", self.voll_eur_per_mwh, 0.0, 1e7)
        _number(
            "curtailment_cost_eur_per_mwh", self.curtailment_cost_eur_per_mwh, 0, 1e6, closed=True
        )
        _number("reserve_fraction", self.reserve_fraction, 0.0, 1.0, closed=True)
        if self.rating not in ("a", "b", "c"):
            raise ValidationError(f"rating: expected 'a', 'b' or 'c', got {self.rating!r}")


@dataclass(frozen=True)
class CommitmentResult:
    """A multi-period plan. Arrays are ``(T, n)``: steps by generator / storage / bus."""

    status: CommitStatus
    message: str
    objective: float
    bound: float
    mip_gap: float
    committed: BoolArray
    pg_mw: FloatArray
    startups: IntArray
    charge_mw: FloatArray
    discharge_mw: FloatArray
    soc_mwh: FloatArray
    renewable_mw: FloatArray
    curtailed_mw: FloatArray
    shed_mw: FloatArray
    price: FloatArray
    load_mw: FloatArray
    step_h: float
    generation_cost: float
    startup_cost: float
    time_s: float
    variables: int
    binaries: int
    rows: int

    @property
    def periods(self) -> int:
        return int(self.pg_mw.shape[0])

    @property
    def ok(self) -> bool:
        """True when optimal with every load served (no shedding at the value of lost load)."""
        return self.status == "optimal" and self.shed_mwh <= 1e-6

    @property
    def shed_mwh(self) -> float:
        return float(np.sum(self.shed_mw) * self.step_h)

    @property
    def curtailed_mwh(self) -> float:
        return float(np.sum(self.curtailed_mw) * self.step_h)

    def to_frame(self, component: str = "system") -> pd.DataFrame:
        """``system`` (one row per step), ``gen`` or ``storage`` (long: step x unit)."""
        import pandas as pd

        t = np.arange(self.periods)
        if component == "system":
            return pd.DataFrame(
                {
                    "period": t,
                    "load_mw": self.load_mw.sum(axis=1),
                    "generation_mw": self.pg_mw.sum(axis=1),
                    "renewable_mw": self.renewable_mw.sum(axis=1),
                    "curtailed_mw": self.curtailed_mw.sum(axis=1),
                    "charge_mw": self.charge_mw.sum(axis=1),
                    "discharge_mw": self.discharge_mw.sum(axis=1),
                    "shed_mw": self.shed_mw.sum(axis=1),
                    "committed_units": self.committed.sum(axis=1),
                    "price": self.price if self.price.ndim == 1 else np.nanmean(self.price, axis=1),
                }
            )
        if component == "gen":
            ng = self.pg_mw.shape[1]
            return pd.DataFrame(
                {
                    "period": np.repeat(t, ng),
                    "gen": np.tile(np.arange(1, ng + 1), t.size),
                    "committed": self.committed.ravel(),
                    "pg_mw": self.pg_mw.ravel(),
                    "startup": self.startups.ravel(),
                }
            )
        if component == "storage":
            ns = self.soc_mwh.shape[1]
            return pd.DataFrame(
                {
                    "period": np.repeat(t, ns),
                    "storage": np.tile(np.arange(1, ns + 1), t.size),
                    "charge_mw": self.charge_mw.ravel(),
                    "discharge_mw": self.discharge_mw.ravel(),
                    "soc_mwh": self.soc_mwh.ravel(),
                }
            )
        raise ValidationError(f"unknown component {component!r}: expected system, gen or storage")


# -- the model ---------------------------------------------------------------------------


class _Cols:
    """Column blocks: ``add(name, shape, lo, hi, cost)`` returns the index array."""

    def __init__(self) -> None:
        self.n = 0
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []
        self.cost: list[FloatArray] = []
        self.integer: list[npt.NDArray[np.int32]] = []

    def add(
        self, shape: tuple[int, ...], lo: Any, hi: Any, cost: Any, integer: bool = False
    ) -> IntArray:
        size = int(np.prod(shape))
        idx = (self.n + np.arange(size)).reshape(shape)
        self.n += size
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), shape).ravel())
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), shape).ravel())
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), shape).ravel())
        self.integer.append(np.full(size, 1 if integer else 0, dtype=np.int32))
        return idx.astype(np.int64)


class _Rows:
    """Row blocks gathered as COO triplets."""

    def __init__(self) -> None:
        self.n = 0
        self.r: list[IntArray] = []
        self.c: list[IntArray] = []
        self.v: list[FloatArray] = []
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []

    def add(self, terms: list[tuple[Any, Any, Any]], lo: Any, hi: Any, count: int) -> IntArray:
        """``terms``: (row offsets 0..count-1, columns, values), broadcast together."""
        for rr, cc, vv in terms:
            rr_, cc_, vv_ = np.broadcast_arrays(np.asarray(rr), np.asarray(cc), np.asarray(vv))
            self.r.append(self.n + rr_.ravel().astype(np.int64))
            self.c.append(cc_.ravel().astype(np.int64))
            self.v.append(vv_.ravel().astype(np.float64))
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (count,)).ravel())
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (count,)).ravel())
        idx = self.n + np.arange(count)
        self.n += count
        return idx.astype(np.int64)


def _gen_cost_at(net: Network, gens: IntArray, x: FloatArray) -> FloatArray:
    """Cost in $/h of each unit in ``gens`` at outputs ``x`` (shape (len(gens), k))."""
    c = _costs(net, gens)
    out = c.c2[:, None] * x**2 + c.c1[:, None] * x + c.c0[:, None]
    if c.pwl.size:
        xs = x[c.pwl]  # (npwl, k)
        vals = c.seg_icpt[:, None] + c.seg_slope[:, None] * xs[c.seg_gen]
        best = np.full(xs.shape, -np.inf)
        np.maximum.at(best, c.seg_gen, vals)
        out[c.pwl] = best
    return np.asarray(out, dtype=np.float64)


def commit(
    net: Network,
    profile: Profile,
    storage: StorageUnits | None = None,
    options: CommitmentOptions | None = None,
) -> CommitmentResult:
    """Unit commitment and multi-period dispatch over the profile's horizon.

    Parameters
    ----------
    net
        The network with costs; units out of service or with ``Pmax <= 0``
        stay off. Units with ``pg_mw > 0`` in the file are on before the
        horizon (long enough to be free to stop), at that output.
    profile
        Load and renewable availability per bus and step.
    storage
        Storage units (none by default).
    options
        :class:`CommitmentOptions`.

    Returns
    -------
    CommitmentResult
        With ``mip_gap`` the relative gap reached; infeasibility of the
        supply shows as ``shed_mw`` at the value of lost load.
    """
    check_network(net, "commit", solve=True)
    if not isinstance(profile, Profile):
        raise ValidationError(f"commit: profile must be a Profile, got {type(profile).__name__}")
    if storage is not None and not isinstance(storage, StorageUnits):
        raise ValidationError(
            f"commit: storage must be StorageUnits or None, got {type(storage).__name__}"
        )
    check_options(options, CommitmentOptions, "commit")
    opts = CommitmentOptions() if options is None else options
    sto = StorageUnits.empty() if storage is None else storage
    t0 = time.perf_counter()
    if profile.load_mw.shape[1] != net.n_bus:
        raise ValidationError(
            f"profile: {profile.load_mw.shape[1]} buses, the network has {net.n_bus}"
        )
    base = net.base_mva
    nt, dt = profile.periods, profile.step_h
    bus_on = net.bus.bus_type != BUS_ISOLATED
    gen_ok = (net.gen.in_service == 1) & bus_on[net.gen_bus] & (net.gen.pmax_mw > 0)
    gens = np.flatnonzero(gen_ok).astype(np.int64)
    ng = gens.size
    up = opts.units if opts.units is not None else unit_parameters(net)
    pmin = np.clip(net.gen.pmin_mw[gens], 0.0, None)
    pmax = net.gen.pmax_mw[gens]
    pmin = np.minimum(pmin, pmax)
    ut = np.maximum(1, np.ceil(np.asarray(up.min_up_h)[gens] / dt - 1e-9)).astype(np.int64)
    dtn = np.maximum(1, np.ceil(np.asarray(up.min_down_h)[gens] / dt - 1e-9)).astype(np.int64)
    ramp = np.asarray(up.ramp_mw_per_h)[gens] * dt
    su = np.maximum(ramp, pmin)
    start_cost = np.asarray(up.startup_cost)[gens]
    pg_file = net.gen.pg_mw[gens]
    u_init = (pg_file > 0).astype(np.float64)
    p_init = np.where(u_init > 0, np.clip(pg_file, pmin, pmax), 0.0)

    # piecewise-linear costs over [Pmin, Pmax]
    k = opts.segments
    xs = pmin[:, None] + (pmax - pmin)[:, None] * np.linspace(0.0, 1.0, k + 1)[None, :]
    cx = _gen_cost_at(net, gens, xs)
    width = np.diff(xs, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(width > 0, np.diff(cx, axis=1) / np.where(width > 0, width, 1.0), 0.0)
    slope = np.maximum.accumulate(slope, axis=1)  # convex (quadratics already are)
    c_min = cx[:, 0]

    load = np.where(bus_on[None, :], profile.load_mw, 0.0)
    ren_bus = np.flatnonzero(np.any(profile.renewable_mw > 0, axis=0) & bus_on)
    load_bus = np.flatnonzero(np.any(load > 0, axis=0))
    avail = profile.renewable_mw[:, ren_bus]
    ns = sto.count

    cols = _Cols()
    u = cols.add((nt, ng), 0.0, 1.0, c_min[None, :] * dt, integer=True)
    v = cols.add((nt, ng), 0.0, 1.0, start_cost[None, :])
    w = cols.add((nt, ng), 0.0, 1.0, 0.0)
    s = cols.add((nt, ng, k), 0.0, width[None, :, :], slope[None, :, :] * dt)
    r = cols.add((nt, ren_bus.size), 0.0, avail, -opts.curtailment_cost_eur_per_mwh * dt)
    shed = cols.add((nt, load_bus.size), 0.0, load[:, load_bus], opts.voll_eur_per_mwh * dt)
    ch = cols.add((nt, ns), 0.0, sto.power_mw[None, :], 0.0)
    dis = cols.add((nt, ns), 0.0, sto.power_mw[None, :], 0.0)
    e_hi = np.broadcast_to(sto.energy_mwh[None, :], (nt, ns)).copy()
    e_lo = np.broadcast_to(sto.soc_min_mwh[None, :], (nt, ns)).copy()
    if nt:
        e_lo[-1] = np.maximum(e_lo[-1], sto.soc_init_mwh)  # terminal condition
    e = cols.add((nt, ns), e_lo, e_hi, 0.0)
    const = opts.curtailment_cost_eur_per_mwh * dt * float(avail.sum())

    rows = _Rows()
    terms: list[tuple[Any, Any, Any]]
    tt = np.arange(nt)
    gg = np.arange(ng)
    # transitions: v - w - u_t + u_{t-1} = 0  (u_{-1} = u_init)
    cnt = nt * ng
    ri = np.arange(cnt).reshape(nt, ng)
    terms = [(ri, v, 1.0), (ri, w, -1.0), (ri, u, -1.0)]
    if nt > 1:
        terms.append((ri[1:], u[:-1], 1.0))
    rhs = np.zeros((nt, ng))
    rhs[0] = -u_init
    rows.add(terms, rhs.ravel(), rhs.ravel(), cnt)
    # minimum up / down: window sums of starts (stops) within UT (DT) steps
    for lag_max, var, sign_u, hi_val in ((ut, v, -1.0, 0.0), (dtn, w, 1.0, 1.0)):
        need = gg[lag_max > 1]
        if need.size == 0:
            continue
        cnt = nt * need.size
        ri = np.arange(cnt).reshape(nt, need.size)
        terms = [(ri, u[:, need], sign_u)]
        for lag in range(int(lag_max[need].max())):
            ok = (lag < lag_max[need])[None, :] & (tt[:, None] - lag >= 0)
            tr, gr = np.nonzero(ok)
            terms.append((ri[tr, gr], var[tt[tr] - lag, need[gr]], 1.0))
        rows.add(terms, -np.inf, hi_val, cnt)
    # capacity: sum_k s - (Pmax - Pmin) u <= 0
    cnt = nt * ng
    ri = np.arange(cnt).reshape(nt, ng)
    rows.add([(ri[:, :, None], s, 1.0), (ri, u, -(pmax - pmin)[None, :])], -np.inf, 0.0, cnt)

    # output p = Pmin u + sum s, as (column, coefficient) pairs per (t, g)
    def p_terms(ri_: Any, sel_t: Any, coef: float) -> list[tuple[Any, Any, Any]]:
        return [
            (ri_, u[sel_t], coef * pmin[None, :]),
            (ri_[..., None], s[sel_t], coef),
        ]

    ramp_on = ramp < pmax - 1e-9
    if np.any(ramp_on):
        # ramp up: p_t - p_{t-1} - RU u_{t-1} - SU v_t <= 0 ; t = 0 from (p_init, u_init)
        ri = np.arange(nt * ng).reshape(nt, ng)
        terms = p_terms(ri, slice(None), 1.0)
        terms.append((ri, v, -su[None, :]))
        if nt > 1:
            terms += p_terms(ri[1:], slice(0, nt - 1), -1.0)
            terms.append((ri[1:], u[:-1], -ramp[None, :]))
        hi = np.zeros((nt, ng))
        hi[0] = p_init + ramp * u_init
        hi[:, ~ramp_on] = np.inf
        rows.add(terms, -np.inf, hi.ravel(), nt * ng)
        # ramp down: p_{t-1} - p_t - RD u_t - SD w_t <= 0
        ri = np.arange(nt * ng).reshape(nt, ng)
        terms = p_terms(ri, slice(None), -1.0)
        terms += [(ri, u, -ramp[None, :]), (ri, w, -su[None, :])]
        if nt > 1:
            terms += p_terms(ri[1:], slice(0, nt - 1), 1.0)
        hi = np.zeros((nt, ng))
        hi[0] = -p_init
        hi[:, ~ramp_on] = np.inf
        rows.add(terms, -np.inf, hi.ravel(), nt * ng)
    # storage: e_t - e_{t-1} - eta_c dt ch + dt / eta_d dis = 0 (e_{-1} = soc_init)
    if ns:
        cnt = nt * ns
        ri = np.arange(cnt).reshape(nt, ns)
        terms = [
            (ri, e, 1.0),
            (ri, ch, -sto.eta_charge[None, :] * dt),
            (ri, dis, dt / sto.eta_discharge[None, :]),
        ]
        if nt > 1:
            terms.append((ri[1:], e[:-1], -1.0))
        rhs = np.zeros((nt, ns))
        rhs[0] = sto.soc_init_mwh
        rows.add(terms, rhs.ravel(), rhs.ravel(), cnt)
    # spinning reserve: sum_g (Pmax - Pmin) u - sum s >= reserve
    if opts.reserve_fraction > 0:
        ri = np.broadcast_to(tt[:, None], (nt, ng))
        need = opts.reserve_fraction * load.sum(axis=1)
        rows.add(
            [(ri, u, (pmax - pmin)[None, :]), (ri[:, :, None], s, -1.0)],
            need,
            np.inf,
            nt,
        )

    # balance
    theta: IntArray | None = None
    if not opts.network:
        ri = np.broadcast_to(tt[:, None], (nt, ng))
        terms = p_terms(ri, slice(None), 1.0)
        terms += [
            (np.broadcast_to(tt[:, None], r.shape), r, 1.0),
            (np.broadcast_to(tt[:, None], shed.shape), shed, 1.0),
            (np.broadcast_to(tt[:, None], dis.shape), dis, 1.0),
            (np.broadcast_to(tt[:, None], ch.shape), ch, -1.0),
        ]
        total = load.sum(axis=1)
        bal = rows.add(terms, total, total, nt)
    else:
        nb = net.n_bus
        br = net.branch
        f, to = net.branch_from, net.branch_to
        br_on = (br.in_service == 1) & bus_on[f] & bus_on[to]
        b = np.where(br_on, br.x_pu / (br.r_pu**2 + br.x_pu**2), 0.0)
        inc = incidence(net)
        bbus = (inc.T @ sp.diags(b) @ inc).tocoo()
        island_ref, _ = island_references(
            net, br_on, (net.gen.in_service == 1) & bus_on[net.gen_bus]
        )
        th_lo = np.full((nt, nb), -np.inf)
        th_hi = np.full((nt, nb), np.inf)
        fixed = np.concatenate([island_ref[island_ref >= 0], np.flatnonzero(~bus_on)])
        th_lo[:, fixed] = 0.0
        th_hi[:, fixed] = 0.0
        theta = cols.add((nt, nb), th_lo, th_hi, 0.0)
        ri = np.arange(nt * nb).reshape(nt, nb)
        gb = net.gen_bus[gens]
        terms = [
            (ri[:, gb], u, pmin[None, :] * 1.0),
            (ri[:, gb][:, :, None], s, 1.0),
            (ri[:, ren_bus], r, 1.0),
            (ri[:, load_bus], shed, 1.0),
            (ri[:, sto.bus], dis, 1.0),
            (ri[:, sto.bus], ch, -1.0),
            (ri[:, bbus.row], theta[:, bbus.col], -bbus.data[None, :] * base),
        ]
        bal = rows.add(terms, load.ravel(), load.ravel(), nt * nb)
        rate = br.rating_mva(opts.rating)
        lim = np.flatnonzero(br_on & (rate > 0) & (b != 0))
        ri = np.arange(nt * lim.size).reshape(nt, lim.size)
        coef = (b[lim] * base)[None, :]
        rows.add(
            [(ri, theta[:, f[lim]], coef), (ri, theta[:, to[lim]], -coef)],
            -np.tile(rate[lim], nt),
            np.tile(rate[lim], nt),
            nt * lim.size,
        )

    a = sp.csc_matrix(
        (np.concatenate(rows.v), (np.concatenate(rows.r), np.concatenate(rows.c))),
        shape=(rows.n, cols.n),
    )
    a.sum_duplicates()
    a.sort_indices()
    col_lo = np.concatenate(cols.lo)
    col_hi = np.concatenate(cols.hi)
    cost = np.concatenate(cols.cost)
    integ = np.concatenate(cols.integer)
    row_lo = np.concatenate(rows.lo)
    row_hi = np.concatenate(rows.hi)

    h = _mip_highs(opts)
    _pass(h, a, cost, col_lo, col_hi, row_lo, row_hi, integ, const)
    h.run()
    import highspy

    ms = h.getModelStatus()
    text = str(h.modelStatusToString(ms))
    info = h.getInfo()
    has_sol = int(info.primal_solution_status) == 2
    if ms == highspy.HighsModelStatus.kOptimal:
        status: CommitStatus = "optimal"
    elif has_sol and ms in (
        highspy.HighsModelStatus.kTimeLimit,
        highspy.HighsModelStatus.kIterationLimit,
        highspy.HighsModelStatus.kSolutionLimit,
        highspy.HighsModelStatus.kInterrupt,
    ):
        status = "time_limit"
    elif ms == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    else:
        status = "error"
    n_bin = int(integ.sum())
    if status not in ("optimal", "time_limit"):
        return _empty(status, text, nt, ng, net, ns, load, dt, t0, cols.n, n_bin, rows.n)
    x = np.asarray(h.getSolution().col_value)
    objective = float(info.objective_function_value)
    bound = float(info.mip_dual_bound)
    gap = float(info.mip_gap)

    # prices: the LP with the commitment fixed
    uu = np.round(x[u]).astype(np.float64)
    lo2, hi2 = col_lo.copy(), col_hi.copy()
    lo2[u.ravel()] = hi2[u.ravel()] = uu.ravel()
    h2 = _mip_highs(opts)
    _pass(h2, a, cost, lo2, hi2, row_lo, row_hi, np.zeros_like(integ), const)
    h2.run()
    if str(h2.modelStatusToString(h2.getModelStatus())) == "Optimal":
        y = np.asarray(h2.getSolution().row_dual)
        price = y[bal].reshape(nt, -1) / dt
        if price.shape[1] == 1:
            price = price[:, 0]
    else:
        price = np.full(nt, np.nan)

    pg = np.zeros((nt, net.n_gen))
    pg[:, gens] = uu * pmin[None, :] + x[s].sum(axis=2)
    committed = np.zeros((nt, net.n_gen), dtype=bool)
    committed[:, gens] = uu > 0.5
    starts = np.zeros((nt, net.n_gen), dtype=np.int64)
    starts[:, gens] = (x[v] > 0.5).astype(np.int64)
    ren_used = np.zeros((nt, net.n_bus))
    ren_used[:, ren_bus] = x[r]
    curt = np.clip(profile.renewable_mw - ren_used, 0.0, None)
    sh = np.zeros((nt, net.n_bus))
    sh[:, load_bus] = x[shed]
    sh[sh < 1e-6] = 0.0
    gen_cost = float(np.sum(uu * c_min[None, :] * dt) + np.sum(x[s] * slope[None] * dt))
    st_cost = float(np.sum((x[v] > 0.5) * start_cost[None, :]))
    return CommitmentResult(
        status=status,
        message=text,
        objective=objective,
        bound=bound,
        mip_gap=gap,
        committed=_readonly(committed, np.bool_),
        pg_mw=_readonly(pg),
        startups=_readonly(starts, np.int64),
        charge_mw=_readonly(x[ch]),
        discharge_mw=_readonly(x[dis]),
        soc_mwh=_readonly(x[e]),
        renewable_mw=_readonly(ren_used),
        curtailed_mw=_readonly(curt),
        shed_mw=_readonly(sh),
        price=_readonly(price),
        load_mw=_readonly(load),
        step_h=dt,
        generation_cost=gen_cost,
        startup_cost=st_cost,
        time_s=time.perf_counter() - t0,
        variables=cols.n,
        binaries=n_bin,
        rows=rows.n,
    )


def _mip_highs(opts: CommitmentOptions) -> Any:
    h = _quiet_highs()
    if opts.log:
        h.setOptionValue("output_flag", True)
    h.setOptionValue("mip_rel_gap", float(opts.mip_gap))
    h.setOptionValue("time_limit", float(opts.time_limit_s))
    for key, val in opts.extra.items():
        h.setOptionValue(key, val)
    return h


def _pass(
    h: Any,
    a: sp.csc_matrix,
    cost: FloatArray,
    col_lo: FloatArray,
    col_hi: FloatArray,
    row_lo: FloatArray,
    row_hi: FloatArray,
    integ: npt.NDArray[np.int32],
    offset: float,
) -> None:
    import highspy

    st = h.passModel(
        int(a.shape[1]),
        int(a.shape[0]),
        int(a.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        offset,
        cost,
        col_lo,
        col_hi,
        row_lo,
        row_hi,
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
        integ,
    )
    if st == highspy.HighsStatus.kError:
        raise ValidationError("HiGHS rejected the unit-commitment model")


def _empty(
    status: CommitStatus,
    text: str,
    nt: int,
    ng: int,
    net: Network,
    ns: int,
    load: FloatArray,
    dt: float,
    t0: float,
    nvar: int,
    nbin: int,
    nrow: int,
) -> CommitmentResult:
    nan_g = np.full((nt, net.n_gen), np.nan)
    nan_s = np.full((nt, ns), np.nan)
    nan_b = np.full((nt, net.n_bus), np.nan)
    return CommitmentResult(
        status=status,
        message=text,
        objective=math.nan,
        bound=math.nan,
        mip_gap=math.nan,
        committed=_readonly(np.zeros((nt, net.n_gen), dtype=bool), np.bool_),
        pg_mw=_readonly(nan_g),
        startups=_readonly(np.zeros((nt, net.n_gen)), np.int64),
        charge_mw=_readonly(nan_s),
        discharge_mw=_readonly(nan_s),
        soc_mwh=_readonly(nan_s),
        renewable_mw=_readonly(nan_b),
        curtailed_mw=_readonly(nan_b),
        shed_mw=_readonly(nan_b),
        price=_readonly(np.full(nt, np.nan)),
        load_mw=_readonly(load),
        step_h=dt,
        generation_cost=math.nan,
        startup_cost=math.nan,
        time_s=time.perf_counter() - t0,
        variables=nvar,
        binaries=nbin,
        rows=nrow,
    )
