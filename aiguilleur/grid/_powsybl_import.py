"""Reading a pypowsybl network element by element (private to :mod:`powsybl_io`).

The element readers fill :class:`Rows`, chunks of the future tables; the
modelling rules are stated in the docstring of :mod:`aiguilleur.grid.powsybl_io`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ComplexArray = npt.NDArray[np.complex128]

# pypowsybl's stand-in for "no limit" is Double.MAX_VALUE; anything this large is unlimited.
HUGE = 1e300
# A branch with no impedance at all gets this reactance (per unit), and is reported.
MIN_X_PU = 1e-5
_VL_NAME = re.compile(r"^VL(\d+)$")


@dataclass(frozen=True)
class Omission:
    """One element that was not represented, or represented in a simpler form."""

    element_type: str
    element_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.element_type} {self.element_id}: {self.reason}"


# -- import: accumulation of rows ----------------------------------------------------------


class Rows:
    """Tables being filled: chunks of arrays, joined at the end."""

    def __init__(self, base_mva: float) -> None:
        self.base = base_mva
        self.bus: dict[str, list[Any]] = {k: [] for k in ("name", "kv", "vm", "va", "vmax", "vmin")}
        self.n_bus = 0
        self.inj: list[tuple[IntArray, FloatArray, FloatArray]] = []  # demand MW, MVAr
        self.shunt: list[tuple[IntArray, ComplexArray]] = []  # per-unit admittance
        self.br: dict[str, list[Any]] = {
            k: [] for k in ("f", "t", "r", "x", "b", "rate", "tap", "shift", "id", "on")
        }
        self.gen: dict[str, list[Any]] = {
            k: [] for k in ("bus", "pg", "qg", "qmax", "qmin", "vg", "mbase", "pmax", "pmin")
        }
        self.gen_on: list[BoolArray] = []
        self.gen_reg: list[BoolArray] = []
        self.gen_id: list[Sequence[str]] = []
        self.gen_size: list[FloatArray] = []  # max_p, for the choice of the reference bus
        self.missing: list[Omission] = []
        self.simple: list[Omission] = []

    def add_buses(
        self,
        names: Sequence[str],
        kv: FloatArray,
        vm: FloatArray,
        va: FloatArray,
        vmax: FloatArray,
        vmin: FloatArray,
    ) -> IntArray:
        n = len(names)
        for k, v in (
            ("name", list(names)),
            ("kv", kv),
            ("vm", vm),
            ("va", va),
            ("vmax", vmax),
            ("vmin", vmin),
        ):
            self.bus[k].append(np.asarray(v) if k != "name" else v)
        out = np.arange(self.n_bus, self.n_bus + n, dtype=np.int64)
        self.n_bus += n
        return out

    def add_demand(self, bus: IntArray, p_mw: Any, q_mvar: Any) -> None:
        p = np.asarray(p_mw, dtype=np.float64)
        q = np.asarray(q_mvar, dtype=np.float64)
        self.inj.append((bus, np.nan_to_num(p), np.nan_to_num(q)))

    def add_shunt(self, bus: IntArray, y_pu: Any) -> None:
        self.shunt.append((bus, np.asarray(y_pu, dtype=np.complex128)))

    def add_units(
        self,
        ids: Sequence[str],
        bus: IntArray,
        pg: Any,
        qg: Any,
        qmin: Any,
        qmax: Any,
        vg: Any,
        regulating: Any,
        pmin: Any,
        pmax: Any,
        mbase: Any,
        in_service: Any = True,
    ) -> None:
        n = len(ids)

        def arr(v: Any) -> FloatArray:
            return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()

        qmin_a, qmax_a = arr(qmin), arr(qmax)
        qmin_a = np.where(np.isnan(qmin_a) | (qmin_a <= -HUGE), -np.inf, qmin_a)
        qmax_a = np.where(np.isnan(qmax_a) | (qmax_a >= HUGE), np.inf, qmax_a)
        pmin_a, pmax_a = arr(pmin), arr(pmax)
        pmin_a = np.where(np.isnan(pmin_a) | (pmin_a <= -HUGE), -np.inf, pmin_a)
        pmax_a = np.where(np.isnan(pmax_a) | (pmax_a >= HUGE), np.inf, pmax_a)
        mb = arr(mbase)
        self.gen["bus"].append(bus)
        self.gen["pg"].append(np.nan_to_num(arr(pg)))
        self.gen["qg"].append(np.nan_to_num(arr(qg)))
        self.gen["qmin"].append(qmin_a)
        self.gen["qmax"].append(qmax_a)
        self.gen["vg"].append(np.where(np.isfinite(arr(vg)) & (arr(vg) > 0), arr(vg), 1.0))
        self.gen["pmin"].append(pmin_a)
        self.gen["pmax"].append(pmax_a)
        self.gen["mbase"].append(np.where(np.isfinite(mb) & (mb > 0), mb, self.base))
        self.gen_reg.append(np.broadcast_to(np.asarray(regulating, dtype=bool), (n,)).copy())
        self.gen_on.append(np.broadcast_to(np.asarray(in_service, dtype=bool), (n,)).copy())
        self.gen_id.append(list(ids))
        self.gen_size.append(np.nan_to_num(pmax_a, posinf=1e9, neginf=0.0))

    def add_pi(
        self,
        kind: str,
        ids: Sequence[str],
        bus1: IntArray,
        bus2: IntArray,
        vn1: FloatArray,
        vn2: FloatArray,
        r_ohm: Any,
        x_ohm: Any,
        y1_s: Any,
        y2_s: Any,
        rho: Any,
        alpha_deg: Any,
        transformer: bool,
        rate_mva: Any,
        cbus1: IntArray | None = None,
        cbus2: IntArray | None = None,
    ) -> None:
        """Branches in IIDM's model (see the module docstring); ``bus = -1`` is an open side.

        ``cbus1, cbus2``: the buses a branch open at both sides could connect to
        (``-1`` unknown); such a branch is kept out of service.
        """
        n = len(ids)
        if n == 0:
            return
        ids = list(ids)
        zb2 = np.asarray(vn2, dtype=np.float64) ** 2 / self.base
        r = np.asarray(r_ohm, dtype=np.float64) / zb2
        x = np.asarray(x_ohm, dtype=np.float64) / zb2
        zero = (r == 0.0) & (x == 0.0)
        for i in np.flatnonzero(zero):
            self.simple.append(
                Omission(kind, ids[i], f"zero impedance given a reactance of {MIN_X_PU:g} pu")
            )
        x = np.where(zero, MIN_X_PU, x)
        y1 = np.broadcast_to(np.asarray(y1_s, dtype=np.complex128) * zb2, (n,))
        y2 = np.broadcast_to(np.asarray(y2_s, dtype=np.complex128) * zb2, (n,))
        k = np.broadcast_to(np.asarray(rho, dtype=np.float64), (n,)) * vn1 / vn2
        alpha = np.broadcast_to(np.asarray(alpha_deg, dtype=np.float64), (n,))
        kc = k * np.exp(1j * np.deg2rad(alpha))
        ys = 1.0 / (r + 1j * x)
        c1, c2 = bus1 >= 0, bus2 >= 0
        both = c1 & c2
        # an open end: the branch is the shunt admittance it presents at the connected side
        y11 = np.abs(kc) ** 2 * (ys + y1)
        y12 = -np.conj(kc) * ys
        y21 = -kc * ys
        y22 = ys + y2
        one1 = c1 & ~c2
        one2 = c2 & ~c1
        if np.any(one1):
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y22 != 0, y11 - y12 * y21 / y22, y11)
            self.add_shunt(bus1[one1], y[one1])
        if np.any(one2):
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y11 != 0, y22 - y21 * y12 / y11, y22)
            self.add_shunt(bus2[one2], y[one2])
        for i in np.flatnonzero(one1 | one2):
            side = 1 if one1[i] else 2
            self.simple.append(
                Omission(
                    kind,
                    ids[i],
                    f"connected at side {side} only: kept as the shunt admittance it "
                    "presents there",
                )
            )
        cb1 = np.full(n, -1, dtype=np.int64) if cbus1 is None else cbus1
        cb2 = np.full(n, -1, dtype=np.int64) if cbus2 is None else cbus2
        off = ~c1 & ~c2 & (cb1 >= 0) & (cb2 >= 0)
        for i in np.flatnonzero(~c1 & ~c2 & ~off):
            self.missing.append(Omission(kind, ids[i], "disconnected at both sides"))
        bus1 = np.where(off, cb1, bus1)
        bus2 = np.where(off, cb2, bus2)
        both = both | off
        sel = np.flatnonzero(both)
        if not sel.size:
            return
        if transformer:
            b_br = np.zeros(sel.size)
            tap = 1.0 / k[sel]
        else:
            b_br = y1[sel].imag + y2[sel].imag
            ratio_one = np.abs(k[sel] - 1.0) <= 1e-12
            tap = np.where(ratio_one & (alpha[sel] == 0.0), 0.0, 1.0 / k[sel])
        sh1 = np.abs(k[sel]) ** 2 * (y1[sel] - 0.5j * b_br)
        sh2 = y2[sel] - 0.5j * b_br
        self.add_shunt(bus1[sel], sh1)
        self.add_shunt(bus2[sel], sh2)
        rate = np.broadcast_to(np.asarray(rate_mva, dtype=np.float64), (n,))[sel]
        self.br["f"].append(bus1[sel])
        self.br["t"].append(bus2[sel])
        self.br["r"].append(r[sel])
        self.br["x"].append(x[sel])
        self.br["b"].append(b_br)
        self.br["rate"].append(rate)
        self.br["tap"].append(tap)
        self.br["shift"].append(-alpha[sel])
        self.br["id"].append([ids[i] for i in sel])
        self.br["on"].append(~off[sel])


def cat(chunks: list[Any], dtype: Any = np.float64) -> Any:
    return np.concatenate(chunks).astype(dtype) if chunks else np.zeros(0, dtype=dtype)


def fcol(df: Any, col: str, default: float = np.nan) -> FloatArray:
    """A float column of a pypowsybl dataframe (``default`` where it is absent)."""
    if col in df.columns:
        return np.asarray(df[col].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return np.full(len(df), default)


def scol(df: Any, col: str) -> list[str]:
    if col not in df.columns:
        return [""] * len(df)
    return [
        "" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in df[col]
    ]


class Buses:
    """Lookup from pypowsybl bus-view ids to rows."""

    def __init__(
        self, ids: Sequence[str], kv: FloatArray, of_configured: Mapping[str, str]
    ) -> None:
        self.row = {b: i for i, b in enumerate(ids)}
        self.kv = kv
        self.of_configured = of_configured

    def rows(self, ids: Sequence[str]) -> IntArray:
        return np.array([self.row.get(b, -1) if b else -1 for b in ids], dtype=np.int64)

    def connectable(self, df: Any, suffix: str = "") -> IntArray:
        """Rows of the buses that elements could connect to (their bus-breaker bus), or -1."""
        cfg = scol(df, f"bus_breaker_bus{suffix}_id")
        return self.rows([self.of_configured.get(c, "") for c in cfg])


# -- import: element by element ------------------------------------------------------------


def read_ratings(net: Any, vn_of_vl: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Permanent limit in MVA per element and side (``ONE``/``TWO``/``THREE``/``NONE``)."""
    getter = getattr(net, "get_loading_limits", None) or net.get_operational_limits
    lim = getter(all_attributes=True).reset_index()
    if lim.empty:
        return {}
    lim = lim[lim["acceptable_duration"] == -1]
    if "selected" in lim.columns:
        lim = lim[lim["selected"].astype(bool)]
    lim = lim[lim["type"].isin(["CURRENT", "APPARENT_POWER"])]
    if lim.empty:
        return {}
    term = net.get_terminals().reset_index()
    side_key = term["element_side"].replace("", "NONE")
    vl_of = dict(
        zip(
            zip(term["element_id"], side_key, strict=True),
            term["voltage_level_id"],
            strict=True,
        )
    )
    out: dict[str, dict[str, tuple[int, float]]] = {}
    for eid, side, typ, val in zip(
        lim["element_id"], lim["side"].astype(str), lim["type"], lim["value"], strict=True
    ):
        v = float(val)
        if v >= HUGE or not math.isfinite(v):
            continue
        if typ == "CURRENT":
            vn = vn_of_vl.get(vl_of.get((eid, side), ""), np.nan)
            if not math.isfinite(vn):
                continue
            mva, prio = math.sqrt(3.0) * vn * v / 1000.0, 1
        else:
            mva, prio = v, 0
        cur = out.setdefault(str(eid), {}).get(side)
        if cur is None or prio < cur[0]:
            out[str(eid)][side] = (prio, mva)
    return {e: {s: v[1] for s, v in d.items()} for e, d in out.items()}


def _rate(
    ratings: Mapping[str, Mapping[str, float]], ids: Sequence[str], sides: Sequence[str]
) -> FloatArray:
    """The smaller permanent MVA limit of the given sides, 0 (unlimited) where none."""
    out = np.zeros(len(ids))
    for i, e in enumerate(ids):
        d = ratings.get(e)
        if d:
            vals = [d[s] for s in sides if s in d]
            if vals:
                out[i] = min(vals)
    return out


def lines(net: Any, rows: Rows, buses: Buses, vn: Mapping[str, float], ratings: Any) -> int:
    df = net.get_lines(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    vn1 = np.array([vn[v] for v in df["voltage_level1_id"]])
    vn2 = np.array([vn[v] for v in df["voltage_level2_id"]])
    rows.add_pi(
        "line",
        ids,
        buses.rows(scol(df, "bus1_id")),
        buses.rows(scol(df, "bus2_id")),
        vn1,
        vn2,
        fcol(df, "r"),
        fcol(df, "x"),
        fcol(df, "g1", 0.0) + 1j * fcol(df, "b1", 0.0),
        fcol(df, "g2", 0.0) + 1j * fcol(df, "b2", 0.0),
        1.0,
        0.0,
        False,
        _rate(ratings, ids, ("ONE", "TWO")),
        buses.connectable(df, "1"),
        buses.connectable(df, "2"),
    )
    return len(df)


def tap_control_notes(net: Any, rows: Rows) -> None:
    for getter, kind, what in (
        ("get_ratio_tap_changers", "ratio_tap_changer", "voltage regulation"),
        ("get_phase_tap_changers", "phase_tap_changer", "phase-shifter control"),
    ):
        df = getattr(net, getter)()
        if df.empty or "regulating" not in df.columns:
            continue
        for eid in df.index[df["regulating"].astype(bool)]:
            rows.simple.append(Omission(kind, str(eid), f"{what} fixed at the current tap"))


def transformers(net: Any, rows: Rows, buses: Buses, vn: Mapping[str, float], ratings: Any) -> int:
    df = net.get_2_windings_transformers(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    vn1 = np.array([vn[v] for v in df["voltage_level1_id"]])
    vn2 = np.array([vn[v] for v in df["voltage_level2_id"]])
    rows.add_pi(
        "two_windings_transformer",
        ids,
        buses.rows(scol(df, "bus1_id")),
        buses.rows(scol(df, "bus2_id")),
        vn1,
        vn2,
        fcol(df, "r_at_current_tap"),
        fcol(df, "x_at_current_tap"),
        fcol(df, "g_at_current_tap", 0.0) + 1j * fcol(df, "b_at_current_tap", 0.0),
        0.0,
        fcol(df, "rho"),
        fcol(df, "alpha", 0.0),
        True,
        _rate(ratings, ids, ("ONE", "TWO")),
        buses.connectable(df, "1"),
        buses.connectable(df, "2"),
    )
    return len(df)


def three_winding(
    net: Any,
    rows: Rows,
    buses: Buses,
    vn: Mapping[str, float],
    ratings: Any,
    mode: str,
) -> int:
    df = net.get_3_windings_transformers(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    if mode == "reject":
        raise ValidationError(
            f"three_windings_transformer {ids[0]}: three-winding transformers are rejected "
            "(ImportOptions.three_winding = 'reject'); 'star' models them"
        )
    u0 = fcol(df, "rated_u0")
    vm = fcol(df, "v") / u0
    va = fcol(df, "angle")
    star = rows.add_buses(
        [f"{i}#star" for i in ids],
        u0,
        np.where(np.isfinite(vm), vm, 1.0),
        np.nan_to_num(va),
        np.full(len(ids), 1.1),
        np.full(len(ids), 0.9),
    )
    for leg in (1, 2, 3):
        vl = [vn[v] for v in df[f"voltage_level{leg}_id"]]
        side = ("ONE", "TWO", "THREE")[leg - 1]
        rows.add_pi(
            "three_windings_transformer",
            [f"{i}#leg{leg}" for i in ids],
            buses.rows(scol(df, f"bus{leg}_id")),
            star,
            np.array(vl),
            u0,
            fcol(df, f"r{leg}_at_current_tap"),
            fcol(df, f"x{leg}_at_current_tap"),
            fcol(df, f"g{leg}_at_current_tap", 0.0) + 1j * fcol(df, f"b{leg}_at_current_tap", 0.0),
            0.0,
            fcol(df, f"rho{leg}"),
            fcol(df, f"alpha{leg}", 0.0),
            True,
            _rate(ratings, ids, (side,)),
        )
    for i in ids:
        rows.simple.append(
            Omission("three_windings_transformer", i, "modelled as a star of three branches")
        )
    return len(df)


def dangling(net: Any, rows: Rows, buses: Buses, vn: Mapping[str, float], ratings: Any) -> int:
    # pypowsybl 1.15 renamed dangling lines boundary lines
    df = (getattr(net, "get_boundary_lines", None) or net.get_dangling_lines)(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    tie = scol(df, "tie_line_id")
    kv = np.array([vn[v] for v in df["voltage_level_id"]])
    # one boundary bus per unpaired line, one per tie line
    key = [t if t else i for i, t in zip(ids, tie, strict=True)]
    uniq = list(dict.fromkeys(key))
    first = {k: key.index(k) for k in uniq}
    vm_b = fcol(df, "boundary_v_mag") / kv
    va_b = fcol(df, "boundary_v_angle")
    sel = np.array([first[k] for k in uniq], dtype=np.int64)
    names = [f"{k}#boundary" for k in uniq]
    bb = rows.add_buses(
        names,
        kv[sel],
        np.where(np.isfinite(vm_b[sel]), vm_b[sel], 1.0),
        np.nan_to_num(va_b[sel]),
        np.full(sel.size, 1.1),
        np.full(sel.size, 0.9),
    )
    bmap = dict(zip(uniq, bb, strict=True))
    bound = np.array([bmap[k] for k in key], dtype=np.int64)
    net_bus = buses.rows(scol(df, "bus_id"))
    g, b = fcol(df, "g", 0.0), fcol(df, "b", 0.0)
    # IIDM's dangling line: the shunt g + jb at the network side, then r + jx to the boundary
    rows.add_pi(
        "dangling_line",
        ids,
        net_bus,
        bound,
        kv,
        kv,
        fcol(df, "r"),
        fcol(df, "x"),
        g + 1j * b,
        0.0,
        1.0,
        0.0,
        False,
        _rate(ratings, ids, ("NONE", "ONE")),
    )
    paired = np.array([bool(t) for t in tie])
    free = np.flatnonzero(~paired & (net_bus >= 0))
    rows.add_demand(bound[free], fcol(df, "p0")[free], fcol(df, "q0")[free])
    gen_getter = getattr(net, "get_boundary_lines_generation", None) or getattr(
        net, "get_dangling_lines_generation", None
    )
    gen = gen_getter() if gen_getter is not None else None
    if gen is not None and not gen.empty:
        # UCTE X-nodes come with an empty generation part: only a real one becomes a unit
        real = (
            gen["voltage_regulator_on"].astype(bool).to_numpy()
            | (np.nan_to_num(fcol(gen, "target_p")) != 0)
            | (np.nan_to_num(fcol(gen, "target_q")) != 0)
        )
        gen = gen[real]
    if gen is not None and not gen.empty:
        gid = [str(i) for i in gen.index]
        pos = {e: i for i, e in enumerate(ids)}
        gb = np.array([bound[pos[e]] for e in gid], dtype=np.int64)
        reg = gen["voltage_regulator_on"].astype(bool).to_numpy()
        rows.add_units(
            gid,
            gb,
            fcol(gen, "target_p"),
            fcol(gen, "target_q"),
            np.where(reg, -np.inf, fcol(gen, "target_q")),
            np.where(reg, np.inf, fcol(gen, "target_q")),
            fcol(gen, "target_v") / kv[[pos[e] for e in gid]],
            reg,
            fcol(gen, "min_p"),
            fcol(gen, "max_p"),
            np.nan,
        )
    return len(df)


def generators(net: Any, rows: Rows, buses: Buses, vn_bus: Mapping[str, float]) -> tuple[int, int]:
    df = net.get_generators(all_attributes=True)
    n_gen = len(df)
    if n_gen:
        _units(rows, buses, vn_bus, df, "generator", fcol(df, "target_p"), fcol(df, "rated_s"))
    bat = net.get_batteries(all_attributes=True)
    if len(bat):
        ids = [str(i) for i in bat.index]
        bus = buses.rows(scol(bat, "bus_id"))
        on = bus >= 0
        _note_disconnected(rows, "battery", ids, on)
        sel = np.flatnonzero(on)
        tq = fcol(bat, "target_q")[sel]
        rows.add_units(
            [ids[i] for i in sel],
            bus[sel],
            fcol(bat, "target_p")[sel],
            tq,
            tq,
            tq,
            1.0,
            False,
            fcol(bat, "min_p")[sel],
            fcol(bat, "max_p")[sel],
            np.nan,
        )
    return n_gen, len(bat)


def _units(
    rows: Rows,
    buses: Buses,
    vn_bus: Mapping[str, float],
    df: Any,
    kind: str,
    p_mw: FloatArray,
    mbase: FloatArray,
) -> None:
    """Generators or VSC stations: regulating voltage or injecting ``target_q``."""
    ids = [str(i) for i in df.index]
    bus_ids = scol(df, "bus_id")
    bus = buses.rows(bus_ids)
    on = bus >= 0
    spare = ~on & (buses.connectable(df) >= 0)
    bus = np.where(spare, buses.connectable(df), bus)
    _note_disconnected(rows, kind, ids, on | spare)
    reg = df["voltage_regulator_on"].astype(bool).to_numpy() & on
    reg_bus = scol(df, "regulated_bus_id")
    target_v = fcol(df, "target_v")
    vn_reg = np.array(
        [vn_bus.get(rb or b, vn_bus.get(b, np.nan)) for rb, b in zip(reg_bus, bus_ids, strict=True)]
    )
    vg = target_v / vn_reg
    for i in np.flatnonzero(reg & ~(np.isfinite(vg) & (vg > 0))):
        rows.simple.append(Omission(kind, ids[i], "regulates with no target voltage: 1.0 pu used"))
    for i in np.flatnonzero(reg):
        if reg_bus[i] and reg_bus[i] != bus_ids[i]:
            rows.simple.append(
                Omission(
                    kind,
                    ids[i],
                    f"remote voltage control of {reg_bus[i]} made local at {bus_ids[i]} "
                    f"with the same per-unit target {vg[i]:.6g}",
                )
            )
    qmin = fcol(df, "min_q_at_target_p")
    qmax = fcol(df, "max_q_at_target_p")
    qmin = np.where(np.isnan(qmin), fcol(df, "min_q"), qmin)
    qmax = np.where(np.isnan(qmax), fcol(df, "max_q"), qmax)
    tq = fcol(df, "target_q")
    # a unit that injects target_q where another unit regulates keeps that output
    reg_at = np.zeros(len(buses.row) + 1, dtype=bool)
    reg_at[bus[reg]] = True
    fixed = on & ~reg & reg_at[np.maximum(bus, 0)]
    qmin = np.where(fixed, tq, qmin)
    qmax = np.where(fixed, tq, qmax)
    for i in np.flatnonzero(fixed):
        rows.simple.append(
            Omission(
                kind,
                ids[i],
                f"does not regulate at a bus where another unit does: reactive limits set "
                f"to its target_q {tq[i]:.6g} MVAr",
            )
        )
    sel = np.flatnonzero(on | spare)
    rows.add_units(
        [ids[i] for i in sel],
        bus[sel],
        p_mw[sel],
        np.where(reg[sel], 0.0, tq[sel]),
        qmin[sel],
        qmax[sel],
        vg[sel],
        reg[sel],
        fcol(df, "min_p", -np.inf)[sel],
        fcol(df, "max_p", np.inf)[sel],
        mbase[sel],
        on[sel],
    )


def _note_disconnected(rows: Rows, kind: str, ids: Sequence[str], on: BoolArray) -> None:
    for i in np.flatnonzero(~on):
        rows.missing.append(Omission(kind, ids[int(i)], "disconnected"))


def loads(net: Any, rows: Rows, buses: Buses) -> int:
    df = net.get_loads(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    bus = buses.rows(scol(df, "bus_id"))
    on = bus >= 0
    _note_disconnected(rows, "load", ids, on)
    rows.add_demand(bus[on], fcol(df, "p0")[on], fcol(df, "q0")[on])
    return len(df)


def shunts(net: Any, rows: Rows, buses: Buses) -> int:
    df = net.get_shunt_compensators(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    bus = buses.rows(scol(df, "bus_id"))
    on = bus >= 0
    _note_disconnected(rows, "shunt_compensator", ids, on)
    kv = buses.kv[np.maximum(bus, 0)]
    y = (fcol(df, "g", 0.0) + 1j * fcol(df, "b", 0.0)) * kv**2 / rows.base
    rows.add_shunt(bus[on], y[on])
    if "voltage_regulation_on" in df.columns:
        for i in np.flatnonzero(df["voltage_regulation_on"].astype(bool).to_numpy() & on):
            rows.simple.append(
                Omission(
                    "shunt_compensator",
                    ids[i],
                    "voltage regulation fixed at the current section count",
                )
            )
    return len(df)


def svcs(net: Any, rows: Rows, buses: Buses, vn_bus: Mapping[str, float]) -> int:
    df = net.get_static_var_compensators(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    bus_ids = scol(df, "bus_id")
    bus = buses.rows(bus_ids)
    on = bus >= 0
    _note_disconnected(rows, "static_var_compensator", ids, on)
    mode = scol(df, "regulation_mode")
    regulating = (
        df["regulating"].astype(bool).to_numpy()
        if "regulating" in df.columns
        else np.array([m != "OFF" for m in mode])
    )
    volt = on & regulating & np.array([m == "VOLTAGE" for m in mode])
    react = on & regulating & np.array([m == "REACTIVE_POWER" for m in mode])
    kv = buses.kv[np.maximum(bus, 0)]
    reg_bus = scol(df, "regulated_bus_id")
    vn_reg = np.array(
        [vn_bus.get(rb or b, vn_bus.get(b, np.nan)) for rb, b in zip(reg_bus, bus_ids, strict=True)]
    )
    qa, qb = fcol(df, "b_min") * kv**2, fcol(df, "b_max") * kv**2
    sel = np.flatnonzero(volt | react)
    tq = np.nan_to_num(fcol(df, "target_q"))
    rows.add_units(
        [ids[i] for i in sel],
        bus[sel],
        0.0,
        np.where(volt[sel], 0.0, tq[sel]),
        np.where(volt[sel], np.minimum(qa, qb)[sel], tq[sel]),
        np.where(volt[sel], np.maximum(qa, qb)[sel], tq[sel]),
        (fcol(df, "target_v") / vn_reg)[sel],
        volt[sel],
        0.0,
        0.0,
        np.nan,
    )
    for i in sel:
        what = (
            "a unit regulating voltage with reactive limits B * Vn^2 at nominal voltage"
            if volt[i]
            else "a fixed reactive injection (reactive-power mode)"
        )
        if volt[i] and reg_bus[i] and reg_bus[i] != bus_ids[i]:
            what += f"; remote control of {reg_bus[i]} made local"
        rows.simple.append(Omission("static_var_compensator", ids[i], f"modelled as {what}"))
    return len(df)


def hvdc(
    net: Any, rows: Rows, buses: Buses, vn_bus: Mapping[str, float], mode: str
) -> tuple[int, int, int]:
    lines = net.get_hvdc_lines(all_attributes=True)
    vsc = net.get_vsc_converter_stations(all_attributes=True)
    lcc = net.get_lcc_converter_stations(all_attributes=True)
    if lines.empty:
        for df, kind in ((vsc, "vsc_converter_station"), (lcc, "lcc_converter_station")):
            for i in df.index:
                rows.missing.append(
                    Omission(kind, str(i), "converter station without an HVDC line")
                )
        return 0, len(vsc), len(lcc)
    if mode == "reject":
        raise ValidationError(
            f"hvdc_line {lines.index[0]}: HVDC lines are rejected (ImportOptions.hvdc = 'reject'); "
            "'injections' models them as fixed injections"
        )
    # P at each station, load sign (positive = consumed), OpenLoadFlow's formula
    p_station: dict[str, float] = {}
    loss = {str(i): float(v) for i, v in zip(vsc.index, fcol(vsc, "loss_factor"), strict=True)}
    loss |= {str(i): float(v) for i, v in zip(lcc.index, fcol(lcc, "loss_factor"), strict=True)}
    for hid, mode, p, vdc, r, s1, s2 in zip(
        lines.index,
        lines["converters_mode"],
        fcol(lines, "target_p"),
        fcol(lines, "nominal_v"),
        fcol(lines, "r"),
        lines["converter_station1_id"],
        lines["converter_station2_id"],
        strict=True,
    ):
        rect, inv = (s1, s2) if str(mode) == "SIDE_1_RECTIFIER_SIDE_2_INVERTER" else (s2, s1)
        p_dc = p * (1.0 - loss.get(rect, 0.0) / 100.0)
        p_dc -= r * (p_dc / vdc) ** 2
        p_station[str(rect)] = p
        p_station[str(inv)] = -p_dc * (1.0 - loss.get(inv, 0.0) / 100.0)
        rows.simple.append(
            Omission("hvdc_line", str(hid), "modelled as fixed injections at its two stations")
        )
    if len(vsc):
        p = np.array([-p_station.get(str(i), 0.0) for i in vsc.index])
        _units(rows, buses, vn_bus, vsc, "vsc_converter_station", p, np.full(len(vsc), np.nan))
    if len(lcc):
        ids = [str(i) for i in lcc.index]
        bus = buses.rows(scol(lcc, "bus_id"))
        on = bus >= 0
        _note_disconnected(rows, "lcc_converter_station", ids, on)
        p = np.array([p_station.get(i, 0.0) for i in ids])
        pf = fcol(lcc, "power_factor")
        q = np.abs(p) * np.tan(np.arccos(np.clip(pf, -1.0, 1.0)))
        rows.add_demand(bus[on], p[on], q[on])
    return len(lines), len(vsc), len(lcc)


_DETAILED_DC = (
    ("get_dc_buses", "dc_bus"),
    ("get_dc_nodes", "dc_node"),
    ("get_dc_lines", "dc_line"),
    ("get_voltage_source_converters", "voltage_source_converter"),
)


def unsupported(net: Any, rows: Rows) -> None:
    for getter, kind in _DETAILED_DC:
        fn = getattr(net, getter, None)
        if fn is None:
            continue
        df = fn()
        for i in df.index:
            rows.missing.append(Omission(kind, str(i), "the detailed DC model is not represented"))


def numeric_bus_ids(buses: Any) -> IntArray | None:
    """Bus ids ``n`` when every bus is alone in a voltage level named ``VL<n>``."""
    vls = [str(v) for v in buses["voltage_level_id"]]
    if len(set(vls)) != len(vls):
        return None
    nums = []
    for v in vls:
        m = _VL_NAME.match(v)
        if m is None:
            return None
        nums.append(int(m.group(1)))
    if len(set(nums)) != len(nums) or min(nums, default=1) <= 0:
        return None
    return np.array(nums, dtype=np.int64)


def choose_slack(
    net: Any,
    rows: Rows,
    bus_table: Any,
    given: Sequence[str],
    gen_bus: IntArray,
    gen_reg: BoolArray,
    gen_size: FloatArray,
    bus_names: list[str],
) -> list[int]:
    """Reference bus rows: given, from slackTerminal, else the largest regulating unit's."""
    row_of = {b: i for i, b in enumerate(bus_names)}
    n_real = len(bus_table)
    comp = np.full(len(bus_names), -1, dtype=np.int64)
    comp[:n_real] = np.nan_to_num(fcol(bus_table, "synchronous_component", -1), nan=-1).astype(
        np.int64
    )
    chosen: list[int] = []
    for b in given:
        if b not in row_of:
            raise ValidationError(f"slack_bus_ids: {b!r} is not a bus of the network's bus view")
        chosen.append(row_of[b])
    if not chosen:
        try:
            ext = net.get_extensions("slackTerminal")
        except Exception:  # an old pypowsybl without the extension: choose as below
            ext = None
        if ext is not None and not ext.empty and "bus_id" in ext.columns:
            for b in ext["bus_id"]:
                if str(b) in row_of:
                    chosen.append(row_of[str(b)])
    taken = {int(comp[c]) for c in chosen}
    # every synchronous component with a regulating unit gets one reference bus
    g_comp = np.where(gen_bus < n_real, comp[np.minimum(gen_bus, len(comp) - 1)], -1)
    order = np.lexsort((np.arange(gen_bus.size), -gen_size))
    for g in order:
        if not gen_reg[g]:
            continue
        c = int(g_comp[g])
        if c in taken:
            continue
        taken.add(c)
        chosen.append(int(gen_bus[g]))
    return chosen
