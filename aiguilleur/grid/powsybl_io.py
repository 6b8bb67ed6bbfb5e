"""Exchange grids with PowSyBl: CGMES, UCTE-DEF and IIDM through pypowsybl.

pypowsybl (RTE's open-source grid library, with OpenLoadFlow inside) is an
optional dependency, the ``powsybl`` extra: it is imported inside the
functions only, and a missing install is one clear :class:`AiguilleurError`.

:func:`from_pypowsybl` turns a pypowsybl network into a :class:`Network` and
an :class:`ImportReport` that lists, element by element, whatever was not
represented or was simplified; :func:`to_pypowsybl` goes the other way;
:func:`read_grid` and :func:`write_grid` go through pypowsybl's importers and
exporters (CGMES zip or folder, UCTE-DEF ``.uct``, IIDM ``.xiidm``/``.iidm``).
:func:`openloadflow_parameters` states the OpenLoadFlow settings under which
OpenLoadFlow and :func:`aiguilleur.grid.ac_power_flow` solve the same model.

Topology
--------
The *bus view* of pypowsybl (the electrical buses its topology processor
computes from switch states, the buses a load flow solves) becomes our bus
table; switches are not represented (they are what defines those buses).
Bus ``k`` of the view gets id ``k + 1``; when every voltage level is named
``VL<n>`` with a single bus (pypowsybl's IEEE cases, and the networks that
:func:`to_pypowsybl` writes) the bus gets id ``n`` instead. Fictitious buses
are appended: one star bus per three-winding transformer, one boundary bus per
dangling line (shared by the two halves of a tie line). The
:class:`ImportReport` keeps the pypowsybl id of every bus, branch and unit.
``base_kv`` is the nominal voltage of the bus's voltage level (the star bus:
the transformer's ``rated_u0``); every per-unit value is on that base and the
``base_mva`` of :class:`ImportOptions`.

Branch model
------------
IIDM describes every branch as an ideal transformer at side 1 with complex
ratio ``rho * exp(j alpha)`` (``V0 = rho e^{j alpha} V1``, ``rho`` in kV per
kV), a series impedance ``r + j x`` (ohms, side-2 voltage) from that inner node
to side 2, a shunt ``y1`` (siemens) at the inner node and ``y2`` at side 2.
A line has ``rho = 1``, ``alpha = 0`` and ``y1 = g1 + j b1``, ``y2 = g2 + j b2``;
a two-winding transformer has ``rho``, ``alpha``, ``r``, ``x``, ``g``, ``b`` at its
current taps and ``y2 = 0``. In per unit the inner ratio is
``k = rho * Vn1 / Vn2``, and a MATPOWER branch from side 1 to side 2 with
``tap_ratio = 1 / k`` and ``shift_deg = -alpha`` has exactly the same series
admittance terms. MATPOWER branches carry a symmetric charging ``b`` only, so:

* lines: ``b_pu`` is the total ``b1 + b2`` in per unit; any asymmetry
  ``(b1 - b2) / 2`` and the conductances ``g1, g2`` go into the bus shunts;
  a line between two different nominal voltages keeps the ratio ``Vn1 / Vn2``
  that the physical conductor implies (OpenLoadFlow's default
  ``linePerUnitMode = IMPEDANCE``), so it becomes a branch with a tap;
* transformers: the magnetising admittance ``g + j b`` sits at the inner
  node, which MATPOWER cannot express: it becomes the bus shunt
  ``|k|^2 (g + j b)`` at side 1, which is the same admittance seen from there.
  The branch keeps ``b_pu = 0``, and a transformer whose ratio is exactly 1
  keeps ``tap_ratio = 1`` (so that it stays a transformer);
* three-winding transformers become three two-winding branches, each from the
  leg's bus (side 1) to a fictitious star bus at ``rated_u0`` (side 2), exactly
  IIDM's leg model;
* a branch connected at one side only becomes the shunt admittance it presents
  at that side (its open end floating), which is exact;
* voltage regulation by tap changers and phase-shifter control are fixed at the
  current tap (OpenLoadFlow's defaults do the same) and reported.

Branch ratings: ``rate_a_mva`` is the smaller permanent limit of the two sides,
apparent-power limits where the branch has them, else current limits at the
side's nominal voltage (``sqrt(3) V I``); no limit gives 0 (unlimited).

Injections
----------
* Loads (``p0, q0``), fictitious bus injections and LCC converter stations add
  to the bus demand ``pd_mw, qd_mvar``; shunt compensators (linear and
  non-linear, at their current section count) to ``gs_mw, bs_mvar``.
* Generators become units with ``pg_mw = target_p``, reactive limits at their
  target P (a capability curve is read at that point), ``vg_pu`` = target
  voltage over the nominal voltage of the regulated bus; a unit that does not
  regulate voltage injects ``target_q``: at a bus where no unit regulates it is
  a fixed injection (PQ bus); where another unit regulates, its limits are set
  to ``target_q`` so that it keeps that output. Remote voltage control is made
  local with the same per-unit target, and reported.
* Batteries become units with fixed ``target_p, target_q``.
* Static var compensators regulating voltage become units with ``P = 0``,
  reactive limits ``B * Vn^2`` at nominal voltage and the per-unit target;
  in reactive-power mode, a fixed reactive injection; off, nothing.
* HVDC lines (LCC and VSC) become fixed injections at their two AC ends,
  OpenLoadFlow's model without AC emulation: the rectifier absorbs the set-point
  ``P``, the inverter injects ``(P (1 - l1) - R (P (1 - l1) / Vdc)^2)(1 - l2)``;
  a VSC station is a unit regulating voltage (or injecting ``target_q``), an LCC
  station a load with ``Q = |P| tan(acos(power factor))``. Reported.
* Dangling lines become a branch (its shunt ``g + j b`` at the network side) to
  a fictitious boundary bus that carries the line's ``p0, q0`` (and its
  generation part, as a unit); a tie line's two halves share the boundary bus.

Not represented, and listed in :attr:`ImportReport.not_represented`: elements
disconnected at every side (a branch or unit whose bus-breaker bus is known is
kept out of service instead), the detailed DC model (DC nodes, lines and
converters), and anything of a kind this importer does not know.

The reference bus is a bus of the ``slackTerminal`` extension when the network
has one, else the bus of the largest voltage-regulating unit (by ``max_p``)
of each synchronous component; :attr:`ImportReport.slack_bus_ids` names them,
for :func:`openloadflow_parameters`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import AiguilleurError, CaseFormatError, ValidationError
from aiguilleur.grid.network import (
    BUS_PQ,
    BUS_PV,
    BUS_REF,
    BranchTable,
    BusTable,
    GenTable,
    Network,
)

__all__ = [
    "ImportOptions",
    "ImportReport",
    "Omission",
    "from_pypowsybl",
    "openloadflow_parameters",
    "read_grid",
    "to_pypowsybl",
    "write_grid",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ComplexArray = npt.NDArray[np.complex128]

GridFormat = Literal["CGMES", "UCTE", "XIIDM"]
_FORMATS: dict[str, GridFormat] = {
    "cgmes": "CGMES",
    "ucte": "UCTE",
    "uct": "UCTE",
    "xiidm": "XIIDM",
    "iidm": "XIIDM",
}
# pypowsybl's stand-in for "no limit" is Double.MAX_VALUE; anything this large is unlimited.
_HUGE = 1e300
# A branch with no impedance at all gets this reactance (per unit), and is reported.
_MIN_X_PU = 1e-5
_VL_NAME = re.compile(r"^VL(\d+)$")


def _pypowsybl() -> Any:
    try:
        import pypowsybl
    except ImportError:
        raise AiguilleurError(
            "pypowsybl is not installed: pip install 'aiguilleur[powsybl]'"
        ) from None
    return pypowsybl


# -- options and report ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    """Settings of :func:`from_pypowsybl`.

    Parameters
    ----------
    base_mva
        System MVA base of the per-unit values.
    slack_bus_ids
        pypowsybl bus-view ids to make reference buses (one per synchronous
        component at most); ``()`` chooses them as the module docstring says.
    three_winding
        ``star``: three branches and a fictitious star bus; ``reject``: raise.
    hvdc
        ``injections``: fixed injections at the converter stations; ``reject``:
        raise.
    strict
        Raise :class:`ValidationError` when anything is not represented,
        instead of returning it in the report.
    """

    base_mva: float = 100.0
    slack_bus_ids: tuple[str, ...] = ()
    three_winding: Literal["star", "reject"] = "star"
    hvdc: Literal["injections", "reject"] = "injections"
    strict: bool = False

    def __post_init__(self) -> None:
        b = self.base_mva
        if (
            isinstance(b, bool)
            or not isinstance(b, (int, float))
            or not (b > 0 and math.isfinite(b))
        ):
            raise ValidationError(f"base_mva: expected a positive number, got {b!r}")
        if isinstance(self.slack_bus_ids, str) or not all(
            isinstance(s, str) for s in self.slack_bus_ids
        ):
            raise ValidationError(
                f"slack_bus_ids: expected a tuple of bus ids, got {self.slack_bus_ids!r}"
            )
        object.__setattr__(self, "slack_bus_ids", tuple(self.slack_bus_ids))
        if self.three_winding not in ("star", "reject"):
            raise ValidationError(
                f"three_winding: expected star or reject, got {self.three_winding!r}"
            )
        if self.hvdc not in ("injections", "reject"):
            raise ValidationError(f"hvdc: expected injections or reject, got {self.hvdc!r}")


@dataclass(frozen=True)
class Omission:
    """One element that was not represented, or represented in a simpler form."""

    element_type: str
    element_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.element_type} {self.element_id}: {self.reason}"


@dataclass(frozen=True)
class ImportReport:
    """What :func:`from_pypowsybl` made of each element.

    ``bus_ids[k]`` is the pypowsybl id of bus row ``k`` (a fictitious bus is
    named ``<element id>#star`` or ``<element id>#boundary``); ``branch_ids``
    and ``gen_ids`` likewise per row (a three-winding leg is ``<id>#leg<n>``,
    a dangling line ``<id>``; units made for HVDC stations, SVCs, batteries and
    dangling-line generation keep their element's id). ``counts`` gives the
    number of elements of each pypowsybl type that were read.
    """

    source_format: str
    network_id: str
    bus_ids: tuple[str, ...]
    branch_ids: tuple[str, ...]
    gen_ids: tuple[str, ...]
    slack_bus_ids: tuple[str, ...]
    counts: Mapping[str, int]
    not_represented: tuple[Omission, ...] = ()
    simplified: tuple[Omission, ...] = ()
    _bus_row: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when every element of the source is represented."""
        return not self.not_represented

    def bus_row(self, bus_id: str) -> int:
        """Row (0-based) of the bus with this pypowsybl id."""
        lookup = self._bus_row or {b: i for i, b in enumerate(self.bus_ids)}
        try:
            return lookup[bus_id]
        except KeyError:
            raise ValidationError(f"unknown pypowsybl bus id {bus_id!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (ids of buses, branches and units left out)."""
        return {
            "source_format": self.source_format,
            "network_id": self.network_id,
            "ok": self.ok,
            "buses": len(self.bus_ids),
            "branches": len(self.branch_ids),
            "units": len(self.gen_ids),
            "slack_bus_ids": list(self.slack_bus_ids),
            "counts": dict(self.counts),
            "not_represented": [vars(o) for o in self.not_represented],
            "simplified": [vars(o) for o in self.simplified],
        }

    def summary(self) -> str:
        """Several lines for people: counts, then every omission and simplification."""
        lines = [
            f"{self.network_id} ({self.source_format}): {len(self.bus_ids)} buses, "
            f"{len(self.branch_ids)} branches, {len(self.gen_ids)} units",
            "read: " + ", ".join(f"{v} {k}" for k, v in self.counts.items() if v),
        ]
        lines += [f"NOT REPRESENTED {o}" for o in self.not_represented]
        lines += [f"simplified {o}" for o in self.simplified]
        return "\n".join(lines)


# -- import: accumulation of rows ----------------------------------------------------------


class _Rows:
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
        qmin_a = np.where(np.isnan(qmin_a) | (qmin_a <= -_HUGE), -np.inf, qmin_a)
        qmax_a = np.where(np.isnan(qmax_a) | (qmax_a >= _HUGE), np.inf, qmax_a)
        pmin_a, pmax_a = arr(pmin), arr(pmax)
        pmin_a = np.where(np.isnan(pmin_a) | (pmin_a <= -_HUGE), -np.inf, pmin_a)
        pmax_a = np.where(np.isnan(pmax_a) | (pmax_a >= _HUGE), np.inf, pmax_a)
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
                Omission(kind, ids[i], f"zero impedance given a reactance of {_MIN_X_PU:g} pu")
            )
        x = np.where(zero, _MIN_X_PU, x)
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


def _cat(chunks: list[Any], dtype: Any = np.float64) -> Any:
    return np.concatenate(chunks).astype(dtype) if chunks else np.zeros(0, dtype=dtype)


def _f(df: Any, col: str, default: float = np.nan) -> FloatArray:
    """A float column of a pypowsybl dataframe (``default`` where it is absent)."""
    if col in df.columns:
        return np.asarray(df[col].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return np.full(len(df), default)


def _s(df: Any, col: str) -> list[str]:
    if col not in df.columns:
        return [""] * len(df)
    return [
        "" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in df[col]
    ]


class _Buses:
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
        cfg = _s(df, f"bus_breaker_bus{suffix}_id")
        return self.rows([self.of_configured.get(c, "") for c in cfg])


# -- import: element by element ------------------------------------------------------------


def _ratings(net: Any, vn_of_vl: Mapping[str, float]) -> dict[str, dict[str, float]]:
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
        if v >= _HUGE or not math.isfinite(v):
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


def _lines(net: Any, rows: _Rows, buses: _Buses, vn: Mapping[str, float], ratings: Any) -> int:
    df = net.get_lines(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    vn1 = np.array([vn[v] for v in df["voltage_level1_id"]])
    vn2 = np.array([vn[v] for v in df["voltage_level2_id"]])
    rows.add_pi(
        "line",
        ids,
        buses.rows(_s(df, "bus1_id")),
        buses.rows(_s(df, "bus2_id")),
        vn1,
        vn2,
        _f(df, "r"),
        _f(df, "x"),
        _f(df, "g1", 0.0) + 1j * _f(df, "b1", 0.0),
        _f(df, "g2", 0.0) + 1j * _f(df, "b2", 0.0),
        1.0,
        0.0,
        False,
        _rate(ratings, ids, ("ONE", "TWO")),
        buses.connectable(df, "1"),
        buses.connectable(df, "2"),
    )
    return len(df)


def _tap_control_notes(net: Any, rows: _Rows) -> None:
    for getter, kind, what in (
        ("get_ratio_tap_changers", "ratio_tap_changer", "voltage regulation"),
        ("get_phase_tap_changers", "phase_tap_changer", "phase-shifter control"),
    ):
        df = getattr(net, getter)()
        if df.empty or "regulating" not in df.columns:
            continue
        for eid in df.index[df["regulating"].astype(bool)]:
            rows.simple.append(Omission(kind, str(eid), f"{what} fixed at the current tap"))


def _transformers(
    net: Any, rows: _Rows, buses: _Buses, vn: Mapping[str, float], ratings: Any
) -> int:
    df = net.get_2_windings_transformers(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    vn1 = np.array([vn[v] for v in df["voltage_level1_id"]])
    vn2 = np.array([vn[v] for v in df["voltage_level2_id"]])
    rows.add_pi(
        "two_windings_transformer",
        ids,
        buses.rows(_s(df, "bus1_id")),
        buses.rows(_s(df, "bus2_id")),
        vn1,
        vn2,
        _f(df, "r_at_current_tap"),
        _f(df, "x_at_current_tap"),
        _f(df, "g_at_current_tap", 0.0) + 1j * _f(df, "b_at_current_tap", 0.0),
        0.0,
        _f(df, "rho"),
        _f(df, "alpha", 0.0),
        True,
        _rate(ratings, ids, ("ONE", "TWO")),
        buses.connectable(df, "1"),
        buses.connectable(df, "2"),
    )
    return len(df)


def _three_winding(
    net: Any,
    rows: _Rows,
    buses: _Buses,
    vn: Mapping[str, float],
    ratings: Any,
    options: ImportOptions,
) -> int:
    df = net.get_3_windings_transformers(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    if options.three_winding == "reject":
        raise ValidationError(
            f"three_windings_transformer {ids[0]}: three-winding transformers are rejected "
            "(ImportOptions.three_winding = 'reject'); 'star' models them"
        )
    u0 = _f(df, "rated_u0")
    vm = _f(df, "v") / u0
    va = _f(df, "angle")
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
            buses.rows(_s(df, f"bus{leg}_id")),
            star,
            np.array(vl),
            u0,
            _f(df, f"r{leg}_at_current_tap"),
            _f(df, f"x{leg}_at_current_tap"),
            _f(df, f"g{leg}_at_current_tap", 0.0) + 1j * _f(df, f"b{leg}_at_current_tap", 0.0),
            0.0,
            _f(df, f"rho{leg}"),
            _f(df, f"alpha{leg}", 0.0),
            True,
            _rate(ratings, ids, (side,)),
        )
    for i in ids:
        rows.simple.append(
            Omission("three_windings_transformer", i, "modelled as a star of three branches")
        )
    return len(df)


def _dangling(net: Any, rows: _Rows, buses: _Buses, vn: Mapping[str, float], ratings: Any) -> int:
    # pypowsybl 1.15 renamed dangling lines boundary lines
    df = (getattr(net, "get_boundary_lines", None) or net.get_dangling_lines)(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    tie = _s(df, "tie_line_id")
    kv = np.array([vn[v] for v in df["voltage_level_id"]])
    # one boundary bus per unpaired line, one per tie line
    key = [t if t else i for i, t in zip(ids, tie, strict=True)]
    uniq = list(dict.fromkeys(key))
    first = {k: key.index(k) for k in uniq}
    vm_b = _f(df, "boundary_v_mag") / kv
    va_b = _f(df, "boundary_v_angle")
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
    net_bus = buses.rows(_s(df, "bus_id"))
    g, b = _f(df, "g", 0.0), _f(df, "b", 0.0)
    # IIDM's dangling line: the shunt g + jb at the network side, then r + jx to the boundary
    rows.add_pi(
        "dangling_line",
        ids,
        net_bus,
        bound,
        kv,
        kv,
        _f(df, "r"),
        _f(df, "x"),
        g + 1j * b,
        0.0,
        1.0,
        0.0,
        False,
        _rate(ratings, ids, ("NONE", "ONE")),
    )
    paired = np.array([bool(t) for t in tie])
    free = np.flatnonzero(~paired & (net_bus >= 0))
    rows.add_demand(bound[free], _f(df, "p0")[free], _f(df, "q0")[free])
    gen_getter = getattr(net, "get_boundary_lines_generation", None) or getattr(
        net, "get_dangling_lines_generation", None
    )
    gen = gen_getter() if gen_getter is not None else None
    if gen is not None and not gen.empty:
        # UCTE X-nodes come with an empty generation part: only a real one becomes a unit
        real = (
            gen["voltage_regulator_on"].astype(bool).to_numpy()
            | (np.nan_to_num(_f(gen, "target_p")) != 0)
            | (np.nan_to_num(_f(gen, "target_q")) != 0)
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
            _f(gen, "target_p"),
            _f(gen, "target_q"),
            np.where(reg, -np.inf, _f(gen, "target_q")),
            np.where(reg, np.inf, _f(gen, "target_q")),
            _f(gen, "target_v") / kv[[pos[e] for e in gid]],
            reg,
            _f(gen, "min_p"),
            _f(gen, "max_p"),
            np.nan,
        )
    return len(df)


def _generators(
    net: Any, rows: _Rows, buses: _Buses, vn_bus: Mapping[str, float]
) -> tuple[int, int]:
    df = net.get_generators(all_attributes=True)
    n_gen = len(df)
    if n_gen:
        _units(rows, buses, vn_bus, df, "generator", _f(df, "target_p"), _f(df, "rated_s"))
    bat = net.get_batteries(all_attributes=True)
    if len(bat):
        ids = [str(i) for i in bat.index]
        bus = buses.rows(_s(bat, "bus_id"))
        on = bus >= 0
        _note_disconnected(rows, "battery", ids, on)
        sel = np.flatnonzero(on)
        tq = _f(bat, "target_q")[sel]
        rows.add_units(
            [ids[i] for i in sel],
            bus[sel],
            _f(bat, "target_p")[sel],
            tq,
            tq,
            tq,
            1.0,
            False,
            _f(bat, "min_p")[sel],
            _f(bat, "max_p")[sel],
            np.nan,
        )
    return n_gen, len(bat)


def _units(
    rows: _Rows,
    buses: _Buses,
    vn_bus: Mapping[str, float],
    df: Any,
    kind: str,
    p_mw: FloatArray,
    mbase: FloatArray,
) -> None:
    """Generators or VSC stations: regulating voltage or injecting ``target_q``."""
    ids = [str(i) for i in df.index]
    bus_ids = _s(df, "bus_id")
    bus = buses.rows(bus_ids)
    on = bus >= 0
    spare = ~on & (buses.connectable(df) >= 0)
    bus = np.where(spare, buses.connectable(df), bus)
    _note_disconnected(rows, kind, ids, on | spare)
    reg = df["voltage_regulator_on"].astype(bool).to_numpy() & on
    reg_bus = _s(df, "regulated_bus_id")
    target_v = _f(df, "target_v")
    vn_reg = np.array(
        [vn_bus.get(rb or b, vn_bus.get(b, np.nan)) for rb, b in zip(reg_bus, bus_ids, strict=True)]
    )
    vg = target_v / vn_reg
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
    qmin = _f(df, "min_q_at_target_p")
    qmax = _f(df, "max_q_at_target_p")
    qmin = np.where(np.isnan(qmin), _f(df, "min_q"), qmin)
    qmax = np.where(np.isnan(qmax), _f(df, "max_q"), qmax)
    tq = _f(df, "target_q")
    # a unit that injects target_q where another unit regulates keeps that output
    reg_at = np.zeros(buses_count(buses) + 1, dtype=bool)
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
        _f(df, "min_p", -np.inf)[sel],
        _f(df, "max_p", np.inf)[sel],
        mbase[sel],
        on[sel],
    )


def buses_count(buses: _Buses) -> int:
    return len(buses.row)


def _note_disconnected(rows: _Rows, kind: str, ids: Sequence[str], on: BoolArray) -> None:
    for i in np.flatnonzero(~on):
        rows.missing.append(Omission(kind, ids[int(i)], "disconnected"))


def _loads(net: Any, rows: _Rows, buses: _Buses) -> int:
    df = net.get_loads(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    bus = buses.rows(_s(df, "bus_id"))
    on = bus >= 0
    _note_disconnected(rows, "load", ids, on)
    rows.add_demand(bus[on], _f(df, "p0")[on], _f(df, "q0")[on])
    return len(df)


def _shunts(net: Any, rows: _Rows, buses: _Buses) -> int:
    df = net.get_shunt_compensators(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    bus = buses.rows(_s(df, "bus_id"))
    on = bus >= 0
    _note_disconnected(rows, "shunt_compensator", ids, on)
    kv = buses.kv[np.maximum(bus, 0)]
    y = (_f(df, "g", 0.0) + 1j * _f(df, "b", 0.0)) * kv**2 / rows.base
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


def _svcs(net: Any, rows: _Rows, buses: _Buses, vn_bus: Mapping[str, float]) -> int:
    df = net.get_static_var_compensators(all_attributes=True)
    if df.empty:
        return 0
    ids = [str(i) for i in df.index]
    bus_ids = _s(df, "bus_id")
    bus = buses.rows(bus_ids)
    on = bus >= 0
    _note_disconnected(rows, "static_var_compensator", ids, on)
    mode = _s(df, "regulation_mode")
    regulating = (
        df["regulating"].astype(bool).to_numpy()
        if "regulating" in df.columns
        else np.array([m != "OFF" for m in mode])
    )
    volt = on & regulating & np.array([m == "VOLTAGE" for m in mode])
    react = on & regulating & np.array([m == "REACTIVE_POWER" for m in mode])
    kv = buses.kv[np.maximum(bus, 0)]
    reg_bus = _s(df, "regulated_bus_id")
    vn_reg = np.array(
        [vn_bus.get(rb or b, vn_bus.get(b, np.nan)) for rb, b in zip(reg_bus, bus_ids, strict=True)]
    )
    qa, qb = _f(df, "b_min") * kv**2, _f(df, "b_max") * kv**2
    sel = np.flatnonzero(volt | react)
    tq = np.nan_to_num(_f(df, "target_q"))
    rows.add_units(
        [ids[i] for i in sel],
        bus[sel],
        0.0,
        np.where(volt[sel], 0.0, tq[sel]),
        np.where(volt[sel], np.minimum(qa, qb)[sel], tq[sel]),
        np.where(volt[sel], np.maximum(qa, qb)[sel], tq[sel]),
        (_f(df, "target_v") / vn_reg)[sel],
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


def _hvdc(
    net: Any, rows: _Rows, buses: _Buses, vn_bus: Mapping[str, float], options: ImportOptions
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
    if options.hvdc == "reject":
        raise ValidationError(
            f"hvdc_line {lines.index[0]}: HVDC lines are rejected (ImportOptions.hvdc = 'reject'); "
            "'injections' models them as fixed injections"
        )
    # P at each station, load sign (positive = consumed), OpenLoadFlow's formula
    p_station: dict[str, float] = {}
    loss = {str(i): float(v) for i, v in zip(vsc.index, _f(vsc, "loss_factor"), strict=True)}
    loss |= {str(i): float(v) for i, v in zip(lcc.index, _f(lcc, "loss_factor"), strict=True)}
    for hid, mode, p, vdc, r, s1, s2 in zip(
        lines.index,
        lines["converters_mode"],
        _f(lines, "target_p"),
        _f(lines, "nominal_v"),
        _f(lines, "r"),
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
        bus = buses.rows(_s(lcc, "bus_id"))
        on = bus >= 0
        _note_disconnected(rows, "lcc_converter_station", ids, on)
        p = np.array([p_station.get(i, 0.0) for i in ids])
        pf = _f(lcc, "power_factor")
        q = np.abs(p) * np.tan(np.arccos(np.clip(pf, -1.0, 1.0)))
        rows.add_demand(bus[on], p[on], q[on])
    return len(lines), len(vsc), len(lcc)


_KNOWN_EMPTY = (
    ("get_dc_buses", "dc_bus"),
    ("get_dc_nodes", "dc_node"),
    ("get_dc_lines", "dc_line"),
    ("get_voltage_source_converters", "voltage_source_converter"),
)


def _unsupported(net: Any, rows: _Rows) -> None:
    for getter, kind in _KNOWN_EMPTY:
        fn = getattr(net, getter, None)
        if fn is None:
            continue
        df = fn()
        for i in df.index:
            rows.missing.append(Omission(kind, str(i), "the detailed DC model is not represented"))


def _numeric_bus_ids(buses: Any) -> IntArray | None:
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


def _choose_slack(
    net: Any,
    rows: _Rows,
    bus_table: Any,
    options: ImportOptions,
    gen_bus: IntArray,
    gen_reg: BoolArray,
    gen_size: FloatArray,
    bus_names: list[str],
) -> list[int]:
    """Reference bus rows: given, from slackTerminal, else the largest regulating unit's."""
    row_of = {b: i for i, b in enumerate(bus_names)}
    n_real = len(bus_table)
    comp = np.full(len(bus_names), -1, dtype=np.int64)
    comp[:n_real] = np.nan_to_num(_f(bus_table, "synchronous_component", -1), nan=-1).astype(
        np.int64
    )
    chosen: list[int] = []
    for b in options.slack_bus_ids:
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


def from_pypowsybl(
    network: Any, options: ImportOptions | None = None
) -> tuple[Network, ImportReport]:
    """A :class:`Network` of a pypowsybl network, and the report of what was made of it.

    Parameters
    ----------
    network
        A ``pypowsybl.network.Network`` (read from a file, built or bundled).
    options
        Import settings; defaults to :class:`ImportOptions` ().

    Returns
    -------
    (Network, ImportReport)
        The grid at the network's current operating point (targets, taps,
        sections, switch states) and the report: pypowsybl ids of every bus,
        branch and unit, the reference buses, what was simplified and what was
        not represented (see the module docstring).

    Raises
    ------
    ValidationError
        When the network has no bus, or something is rejected by ``options``.
    """
    opts = options or ImportOptions()
    if getattr(network, "per_unit", False):
        raise ValidationError("the pypowsybl network is in per-unit mode: set per_unit = False")
    rows = _Rows(opts.base_mva)
    vls = network.get_voltage_levels(all_attributes=True)
    vn = {str(i): float(v) for i, v in zip(vls.index, _f(vls, "nominal_v"), strict=True)}
    bt = network.get_buses(all_attributes=True)
    if bt.empty:
        raise ValidationError(f"network {network.id}: the bus view has no bus")
    bnames = [str(i) for i in bt.index]
    kv = np.array([vn[v] for v in bt["voltage_level_id"]])
    hi = np.array([float(vls.at[v, "high_voltage_limit"]) for v in bt["voltage_level_id"]]) / kv
    lo = np.array([float(vls.at[v, "low_voltage_limit"]) for v in bt["voltage_level_id"]]) / kv
    vm = _f(bt, "v_mag") / kv
    rows.add_buses(
        bnames,
        kv,
        np.where(np.isfinite(vm), vm, 1.0),
        np.nan_to_num(_f(bt, "v_angle")),
        np.where(np.isfinite(hi), hi, 1.1),
        np.where(np.isfinite(lo), lo, 0.9),
    )
    bbv = network.get_bus_breaker_view_buses()
    of_cfg = {str(i): str(b) for i, b in zip(bbv.index, _s(bbv, "bus_id"), strict=True) if b}
    buses = _Buses(bnames, kv, of_cfg)
    vn_bus = dict(zip(bnames, kv.tolist(), strict=True))
    fp, fq = _f(bt, "fictitious_p0", 0.0), _f(bt, "fictitious_q0", 0.0)
    if np.any(fp != 0) or np.any(fq != 0):
        rows.add_demand(np.arange(len(bnames), dtype=np.int64), fp, fq)
    ratings = _ratings(network, vn)
    counts: dict[str, int] = {"bus": len(bt)}
    counts["line"] = _lines(network, rows, buses, vn, ratings)
    counts["two_windings_transformer"] = _transformers(network, rows, buses, vn, ratings)
    counts["three_windings_transformer"] = _three_winding(network, rows, buses, vn, ratings, opts)
    counts["dangling_line"] = _dangling(network, rows, buses, vn, ratings)
    counts["tie_line"] = len(network.get_tie_lines())
    _tap_control_notes(network, rows)
    counts["generator"], counts["battery"] = _generators(network, rows, buses, vn_bus)
    counts["load"] = _loads(network, rows, buses)
    counts["shunt_compensator"] = _shunts(network, rows, buses)
    counts["static_var_compensator"] = _svcs(network, rows, buses, vn_bus)
    counts["hvdc_line"], counts["vsc_converter_station"], counts["lcc_converter_station"] = _hvdc(
        network, rows, buses, vn_bus, opts
    )
    _unsupported(network, rows)
    net, report = _assemble(network, rows, bt, opts, counts)
    if opts.strict and report.not_represented:
        first = report.not_represented[0]
        raise ValidationError(
            f"network {report.network_id}: {len(report.not_represented)} element(s) not "
            f"represented, first {first}"
        )
    return net, report


def _assemble(
    network: Any, rows: _Rows, bt: Any, opts: ImportOptions, counts: dict[str, int]
) -> tuple[Network, ImportReport]:
    base = opts.base_mva
    names: list[str] = [n for chunk in rows.bus["name"] for n in chunk]
    nb = len(names)
    kv = _cat(rows.bus["kv"])
    pd = np.zeros(nb)
    qd = np.zeros(nb)
    for at, p, q in rows.inj:
        np.add.at(pd, at, p)
        np.add.at(qd, at, q)
    ysh = np.zeros(nb, dtype=np.complex128)
    for at, y in rows.shunt:
        np.add.at(ysh, at, y)
    gbus = _cat(rows.gen["bus"], np.int64)
    greg = _cat(rows.gen_reg, bool)
    gon = _cat(rows.gen_on, bool)
    gsize = _cat(rows.gen_size)
    gids = [g for chunk in rows.gen_id for g in chunk]
    btype = np.full(nb, BUS_PQ, dtype=np.int64)
    btype[gbus[greg & gon]] = BUS_PV
    slack = _choose_slack(network, rows, bt, opts, gbus, greg & gon, gsize, names)
    btype[slack] = BUS_REF
    nums = _numeric_bus_ids(bt)
    if nums is not None:
        extra = np.arange(1, nb - len(bt) + 1, dtype=np.int64) + int(nums.max())
        bus_id = np.concatenate([nums, extra])
    else:
        bus_id = np.arange(1, nb + 1, dtype=np.int64)
    bus = BusTable(
        bus_id=bus_id,
        bus_type=btype,
        pd_mw=pd,
        qd_mvar=qd,
        gs_mw=ysh.real * base,
        bs_mvar=ysh.imag * base,
        area=np.ones(nb, dtype=np.int64),
        vm_pu=_cat(rows.bus["vm"]),
        va_deg=_cat(rows.bus["va"]),
        base_kv=kv,
        zone=np.ones(nb, dtype=np.int64),
        vmax_pu=_cat(rows.bus["vmax"]),
        vmin_pu=_cat(rows.bus["vmin"]),
    )
    gen = GenTable(
        bus_id=bus_id[gbus],
        pg_mw=_cat(rows.gen["pg"]),
        qg_mvar=_cat(rows.gen["qg"]),
        qmax_mvar=_cat(rows.gen["qmax"]),
        qmin_mvar=_cat(rows.gen["qmin"]),
        vg_pu=_cat(rows.gen["vg"]),
        mbase_mva=_cat(rows.gen["mbase"]),
        in_service=gon.astype(np.int64),
        pmax_mw=_cat(rows.gen["pmax"]),
        pmin_mw=_cat(rows.gen["pmin"]),
    )
    f = _cat(rows.br["f"], np.int64)
    nl = f.size
    branch = BranchTable(
        from_bus_id=bus_id[f],
        to_bus_id=bus_id[_cat(rows.br["t"], np.int64)],
        r_pu=_cat(rows.br["r"]),
        x_pu=_cat(rows.br["x"]),
        b_pu=_cat(rows.br["b"]),
        rate_a_mva=_cat(rows.br["rate"]),
        rate_b_mva=np.zeros(nl),
        rate_c_mva=np.zeros(nl),
        tap_ratio=_cat(rows.br["tap"]),
        shift_deg=_cat(rows.br["shift"]),
        in_service=_cat(rows.br["on"], bool).astype(np.int64),
        angmin_deg=np.full(nl, -360.0),
        angmax_deg=np.full(nl, 360.0),
    )
    fmt = str(getattr(network, "source_format", "") or "")
    net = Network(
        name=str(network.id),
        base_mva=base,
        bus=bus,
        gen=gen,
        branch=branch,
        header=f"imported through pypowsybl from {fmt or 'a pypowsybl network'}: {network.id}",
    )
    report = ImportReport(
        source_format=fmt,
        network_id=str(network.id),
        bus_ids=tuple(names),
        branch_ids=tuple(i for chunk in rows.br["id"] for i in chunk),
        gen_ids=tuple(gids),
        slack_bus_ids=tuple(names[s] for s in slack),
        counts=counts,
        not_represented=tuple(rows.missing),
        simplified=tuple(rows.simple),
        _bus_row={b: i for i, b in enumerate(names)},
    )
    return net, report


# -- export -------------------------------------------------------------------------------


def _regulation(net: Network) -> tuple[BoolArray, IntArray, FloatArray, BoolArray]:
    """What :func:`ac_power_flow` makes of the units: per unit in service, reference buses,
    the voltage target of each bus (its first unit in service), and which buses regulate.
    """
    from aiguilleur.grid._compile import find_islands

    on = net.gen.in_service == 1
    isl = find_islands(net, gen_on=on)
    energised = isl.label >= 0
    energised[energised] = isl.ref[isl.label[energised]] >= 0
    on = on & energised[net.gen_bus]
    has = np.zeros(net.n_bus, dtype=bool)
    has[net.gen_bus[on]] = True
    ref = isl.ref[isl.ref >= 0].astype(np.int64)
    bt = net.bus.bus_type
    reg_bus = energised & has & ((bt == BUS_PV) | (bt == BUS_REF))
    reg_bus[ref] = True
    vg_bus = np.ones(net.n_bus)
    first = np.flatnonzero(on)[::-1]
    vg_bus[net.gen_bus[first]] = net.gen.vg_pu[first]
    return on, ref, vg_bus, reg_bus


def _substations(net: Network, kv: FloatArray, is_tr: BoolArray) -> IntArray:
    """Substation of each bus: buses joined by transformers share one (IIDM requires it)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    f, t = net.branch_from[is_tr], net.branch_to[is_tr]
    g = sp.coo_matrix((np.ones(f.size), (f, t)), shape=(net.n_bus, net.n_bus))
    _, lab = connected_components(g, directed=False)
    return np.asarray(lab, dtype=np.int64)


def to_pypowsybl(net: Network) -> Any:
    """A pypowsybl network (bus-breaker topology) whose AC power flow is ``net``'s.

    Every bus becomes a voltage level ``VL<id>`` (nominal voltage ``base_kv``,
    1 kV where it is 0) with one bus ``B<id>``; buses joined by transformers
    share a substation ``S<n>``. Branch row ``k`` becomes line ``L<k+1>`` (same
    base voltage at both ends, no ratio, no shift: ohms and siemens on that base,
    charging split evenly) or two-winding transformer ``T<k+1>`` (rated voltages
    ``base_kv(from) * tap`` and ``base_kv(to)``, a one-step phase tap changer for
    a phase shift, half the charging ``b`` as magnetising susceptance at the
    inner node and the other half added to the to-bus shunt: exactly MATPOWER's
    admittances). Unit row ``k`` becomes generator ``G<k+1>``: units at buses
    that regulate voltage in :func:`ac_power_flow` (PV and reference buses with a
    unit in service) regulate to their bus's target (its first unit's
    ``vg_pu``); the others inject ``qg_mvar``. Reactive limits become min/max
    limits; ``rate_a_mva`` becomes a permanent apparent-power limit at both
    ends; loads ``LD<id>`` and linear shunts ``SH<id>`` carry the bus demand and
    shunt; the reference bus of each island gets a ``slackTerminal`` extension.
    Out-of-service branches and units are created disconnected. Costs, areas,
    zones, ratings B and C and angle limits have no place in IIDM here.
    """
    pp = _pypowsybl()
    import pandas as pd

    base = net.base_mva
    kv = np.where(net.bus.base_kv > 0, net.bus.base_kv, 1.0)
    ids = net.bus.bus_id
    vl = np.array([f"VL{i}" for i in ids])
    bn = np.array([f"B{i}" for i in ids])
    br = net.branch
    f, t = net.branch_from, net.branch_to
    tap = np.where(br.tap_ratio != 0.0, br.tap_ratio, 1.0)
    is_tr = (br.tap_ratio != 0.0) | (br.shift_deg != 0.0) | (kv[f] != kv[t])
    sub = _substations(net, kv, is_tr)
    n = pp.network.create_empty(network_id=net.name or "aiguilleur")
    n.create_substations(id=[f"S{s}" for s in np.unique(sub)])
    n.create_voltage_levels(
        id=vl,
        substation_id=[f"S{s}" for s in sub],
        topology_kind=["BUS_BREAKER"] * net.n_bus,
        nominal_v=kv,
        low_voltage_limit=net.bus.vmin_pu * kv,
        high_voltage_limit=net.bus.vmax_pu * kv,
    )
    n.create_buses(id=bn, voltage_level_id=vl)
    # lines
    li = np.flatnonzero(~is_tr)
    zb = kv**2 / base
    if li.size:
        n.create_lines(
            id=[f"L{k + 1}" for k in li],
            voltage_level1_id=vl[f[li]],
            bus1_id=bn[f[li]],
            voltage_level2_id=vl[t[li]],
            bus2_id=bn[t[li]],
            r=br.r_pu[li] * zb[f[li]],
            x=br.x_pu[li] * zb[f[li]],
            g1=np.zeros(li.size),
            b1=br.b_pu[li] / 2.0 / zb[f[li]],
            g2=np.zeros(li.size),
            b2=br.b_pu[li] / 2.0 / zb[f[li]],
        )
    ti = np.flatnonzero(is_tr)
    bs_extra = np.zeros(net.n_bus)
    if ti.size:
        zt = zb[t[ti]]
        n.create_2_windings_transformers(
            id=[f"T{k + 1}" for k in ti],
            voltage_level1_id=vl[f[ti]],
            bus1_id=bn[f[ti]],
            voltage_level2_id=vl[t[ti]],
            bus2_id=bn[t[ti]],
            rated_u1=kv[f[ti]] * tap[ti],
            rated_u2=kv[t[ti]],
            r=br.r_pu[ti] * zt,
            x=br.x_pu[ti] * zt,
            g=np.zeros(ti.size),
            b=br.b_pu[ti] / 2.0 / zt,
        )
        # the to-end half of the charging, in MVAr at 1 pu, joins the to-bus shunt
        on_tr = ti[br.in_service[ti] == 1]
        np.add.at(bs_extra, t[on_tr], br.b_pu[on_tr] / 2.0 * base)
        ps = ti[br.shift_deg[ti] != 0.0]
        if ps.size:
            tc = pd.DataFrame(
                {
                    "id": [f"T{k + 1}" for k in ps],
                    "target_deadband": 0.0,
                    "regulation_mode": "CURRENT_LIMITER",
                    "regulating": False,
                    "low_tap": 0,
                    "tap": 0,
                }
            ).set_index("id")
            steps = pd.DataFrame(
                {
                    "id": [f"T{k + 1}" for k in ps],
                    "b": 0.0,
                    "g": 0.0,
                    "r": 0.0,
                    "x": 0.0,
                    "rho": 1.0,
                    "alpha": -br.shift_deg[ps],
                }
            ).set_index("id")
            n.create_phase_tap_changers(tc, steps)
    _export_branch_limits(n, net, is_tr)
    off = np.flatnonzero(br.in_service != 1)
    if off.size:
        for sel, updater in (
            (off[~is_tr[off]], n.update_lines),
            (off[is_tr[off]], n.update_2_windings_transformers),
        ):
            if sel.size:
                prefix = "T" if updater is n.update_2_windings_transformers else "L"
                updater(
                    id=[f"{prefix}{k + 1}" for k in sel],
                    connected1=[False] * sel.size,
                    connected2=[False] * sel.size,
                )
    _export_injections(n, net, kv, vl, bn, bs_extra)
    return n


def _export_branch_limits(n: Any, net: Network, is_tr: BoolArray) -> None:
    rate = net.branch.rate_a_mva
    k = np.flatnonzero(rate > 0)
    if not k.size:
        return
    eid = [f"{'T' if is_tr[i] else 'L'}{i + 1}" for i in k]
    n.create_loading_limits(
        element_id=eid + eid,
        side=["ONE"] * k.size + ["TWO"] * k.size,
        name=["permanent"] * (2 * k.size),
        type=["APPARENT_POWER"] * (2 * k.size),
        value=np.concatenate([rate[k], rate[k]]),
        acceptable_duration=[-1] * (2 * k.size),
    )


def _export_injections(
    n: Any, net: Network, kv: FloatArray, vl: Any, bn: Any, bs_extra: FloatArray
) -> None:
    g = net.gen
    on, ref, vg_bus, reg_bus = _regulation(net)
    gb = net.gen_bus
    if net.n_gen:
        gid = [f"G{k + 1}" for k in range(net.n_gen)]
        reg = reg_bus[gb]
        pmin = np.clip(np.nan_to_num(g.pmin_mw, nan=0.0), -1e9, 1e9)
        pmax = np.clip(np.nan_to_num(g.pmax_mw, nan=0.0), -1e9, 1e9)
        n.create_generators(
            id=gid,
            voltage_level_id=vl[gb],
            bus_id=bn[gb],
            target_p=g.pg_mw,
            min_p=np.minimum(pmin, pmax),
            max_p=np.maximum(pmin, pmax),
            target_q=g.qg_mvar,
            target_v=vg_bus[gb] * kv[gb],
            voltage_regulator_on=reg,
            rated_s=g.mbase_mva,
        )
        finite = np.isfinite(g.qmin_mvar) & np.isfinite(g.qmax_mvar)
        lim = np.flatnonzero(finite)
        if lim.size:
            n.create_minmax_reactive_limits(
                id=[gid[k] for k in lim],
                min_q=np.minimum(g.qmin_mvar, g.qmax_mvar)[lim],
                max_q=np.maximum(g.qmin_mvar, g.qmax_mvar)[lim],
            )
        off = np.flatnonzero(g.in_service != 1)
        if off.size:
            n.update_generators(id=[gid[k] for k in off], connected=[False] * off.size)
        slack_units = [
            int(np.flatnonzero(on & (gb == r))[0]) for r in ref if np.any(on & (gb == r))
        ]
        if slack_units:
            n.create_extensions(
                "slackTerminal",
                voltage_level_id=[vl[gb[k]] for k in slack_units],
                element_id=[gid[k] for k in slack_units],
            )
    b = net.bus
    ld = np.flatnonzero((b.pd_mw != 0) | (b.qd_mvar != 0))
    if ld.size:
        n.create_loads(
            id=[f"LD{net.bus.bus_id[i]}" for i in ld],
            voltage_level_id=vl[ld],
            bus_id=bn[ld],
            p0=b.pd_mw[ld],
            q0=b.qd_mvar[ld],
        )
    bs = b.bs_mvar + bs_extra
    sh = np.flatnonzero((b.gs_mw != 0) | (bs != 0))
    if sh.size:
        import pandas as pd

        sid = [f"SH{net.bus.bus_id[i]}" for i in sh]
        shunts = pd.DataFrame(
            {
                "id": sid,
                "voltage_level_id": vl[sh],
                "bus_id": bn[sh],
                "model_type": "LINEAR",
                "section_count": 1,
            }
        ).set_index("id")
        model = pd.DataFrame(
            {
                "id": sid,
                "g_per_section": b.gs_mw[sh] / kv[sh] ** 2,
                "b_per_section": bs[sh] / kv[sh] ** 2,
                "max_section_count": 1,
            }
        ).set_index("id")
        n.create_shunt_compensators(shunts, model)


# -- OpenLoadFlow settings and files --------------------------------------------------------


def openloadflow_parameters(
    slack_bus_ids: Sequence[str] = (),
    *,
    tolerance_pu: float = 1e-10,
    max_iter: int = 30,
) -> Any:
    """pypowsybl load-flow parameters under which OpenLoadFlow solves our model.

    With these, OpenLoadFlow's AC power flow of a pypowsybl network and
    :func:`aiguilleur.grid.ac_power_flow` (defaults: one slack, no reactive
    limits) of its :func:`from_pypowsybl` import solve the same equations:

    * slack: the given buses (``slackBusSelectionMode = NAME``; pass
      :attr:`ImportReport.slack_bus_ids`), no distributed slack, every connected
      component (``component_mode = ALL_CONNECTED``);
    * reactive limits off (``use_reactive_limits = False``);
    * tap changers, phase shifters and shunts fixed at their current position,
      no HVDC AC emulation (our import fixes them the same way);
    * remote voltage control off (``voltageRemoteControl = false``): a unit holds
      its target at its own bus in per unit, as the import makes it;
    * no unit loses its voltage control to OpenLoadFlow's plausibility checks:
      units at zero MW still regulate, the reactive range is checked at target P
      only, and target voltages are plausible from 0 to 10 pu;
    * transformer magnetising admittance at the inner node of side 1, not split
      (``twt_split_shunt_admittance = False``), IIDM's model;
    * Newton-Raphson to ``tolerance_pu`` on every equation, DC-angle start.

    Measured with pypowsybl 1.16.1 (largest voltage gap against our solution
    when one setting goes back to OpenLoadFlow's default; 1e-13 with all of
    them): remote voltage control 5e-2 pu on the CGMES MicroGrid BE; split
    transformer shunt 1e-4 to 2e-3 pu; distributed slack or another slack bus
    up to 2e-2 pu; reactive limits on 0.13 pu on case1888_rte. The plausibility
    settings changed nothing on the grids tested; they are there so that no unit
    loses its voltage control. With reactive limits on both sides
    (``use_reactive_limits = True`` here, ``enforce_q_limits=True`` in
    :class:`PowerFlowOptions`) the IEEE 118 and 300 networks still agree to
    1e-13, but PGLib case118 and case1888_rte do not (the switched units differ,
    up to 5e-3 pu).
    """
    pp = _pypowsybl()
    tol = tolerance_pu
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ValidationError(f"tolerance_pu: expected a number in (0, 1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValidationError(f"max_iter: expected an integer >= 1, got {max_iter!r}")
    slack = list(slack_bus_ids)
    provider = {
        "slackBusSelectionMode": "NAME" if slack else "MOST_MESHED",
        "slackBusesIds": ",".join(slack),
        "newtonRaphsonConvEpsPerEq": repr(float(tol)),
        "newtonRaphsonStoppingCriteriaType": "UNIFORM_CRITERIA",
        "maxNewtonRaphsonIterations": str(max_iter),
        "voltageRemoteControl": "false",
        "generatorsWithZeroMwTargetAreNotStarted": "false",
        "reactiveRangeCheckMode": "TARGET_P",
        "minPlausibleTargetVoltage": "0.0",
        "maxPlausibleTargetVoltage": "10.0",
        "minRealisticVoltage": "0.0",
        "maxRealisticVoltage": "10.0",
        "svcVoltageMonitoring": "false",
    }
    lf = pp.loadflow
    return lf.Parameters(
        voltage_init_mode=lf.VoltageInitMode.DC_VALUES,
        transformer_voltage_control_on=False,
        use_reactive_limits=False,
        phase_shifter_regulation_on=False,
        twt_split_shunt_admittance=False,
        shunt_compensator_voltage_control_on=False,
        read_slack_bus=False,
        write_slack_bus=False,
        distributed_slack=False,
        hvdc_ac_emulation=False,
        component_mode=lf.ComponentMode.ALL_CONNECTED,
        provider_parameters=provider,
    )


def _format(fmt: str) -> GridFormat:
    out = _FORMATS.get(str(fmt).strip().lower())
    if out is None:
        raise ValidationError(f"format: expected CGMES, UCTE or XIIDM, got {fmt!r}")
    return out


def read_grid(
    path: str | Path, options: ImportOptions | None = None
) -> tuple[Network, ImportReport]:
    """Read a CGMES (zip or folder), UCTE-DEF (``.uct``) or IIDM (``.xiidm``) file.

    pypowsybl's importers recognise the format from the content; the network is
    then converted by :func:`from_pypowsybl`.

    Raises
    ------
    CaseFormatError
        When the file is missing or pypowsybl cannot read it (its message kept).
    """
    pp = _pypowsybl()
    p = Path(path)
    if not p.exists():
        raise CaseFormatError("no such file or folder", str(p))
    try:
        network = pp.network.load(str(p))
    except Exception as exc:  # pypowsybl raises its own PyPowsyblError, among others
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaseFormatError(f"pypowsybl cannot read it: {msg}", str(p)) from None
    return from_pypowsybl(network, options)


def write_grid(net: Network, path: str | Path, format: str = "XIIDM") -> Path:
    """Write ``net`` as CGMES, UCTE-DEF or XIIDM through :func:`to_pypowsybl`.

    ``path`` is the file to write without its extension for CGMES (pypowsybl
    writes one file per profile beside it) and with it otherwise. UCTE-DEF
    needs UCTE node names and voltage levels, which a MATPOWER case does not
    have: pypowsybl's exporter rejects such a network, and that is reported.

    Returns
    -------
    Path
        The file written (the folder for CGMES).

    Raises
    ------
    ValidationError
        For an unknown format, or when pypowsybl's exporter refuses the network.
    """
    fmt = _format(format)
    n = to_pypowsybl(net)
    p = Path(path)
    try:
        if fmt == "CGMES":
            p.mkdir(parents=True, exist_ok=True)
            n.save(str(p / (net.name or "network")), format="CGMES")
            return p
        n.save(str(p), format=fmt)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError(f"{p}: pypowsybl cannot write {fmt}: {msg}") from None
    return p
