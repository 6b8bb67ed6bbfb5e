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

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import AiguilleurError, CaseFormatError, ValidationError
from aiguilleur.grid import _powsybl_import as _imp
from aiguilleur.grid._checks import check_network, check_path
from aiguilleur.grid._powsybl_import import Omission
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
    rows = _imp.Rows(opts.base_mva)
    vls = network.get_voltage_levels(all_attributes=True)
    vn = {str(i): float(v) for i, v in zip(vls.index, _imp.fcol(vls, "nominal_v"), strict=True)}
    bt = network.get_buses(all_attributes=True)
    if bt.empty:
        raise ValidationError(f"network {network.id}: the bus view has no bus")
    bnames = [str(i) for i in bt.index]
    kv = np.array([vn[v] for v in bt["voltage_level_id"]])
    hi = np.array([float(vls.at[v, "high_voltage_limit"]) for v in bt["voltage_level_id"]]) / kv
    lo = np.array([float(vls.at[v, "low_voltage_limit"]) for v in bt["voltage_level_id"]]) / kv
    vm = _imp.fcol(bt, "v_mag") / kv
    rows.add_buses(
        bnames,
        kv,
        np.where(np.isfinite(vm), vm, 1.0),
        np.nan_to_num(_imp.fcol(bt, "v_angle")),
        np.where(np.isfinite(hi), hi, 1.1),
        np.where(np.isfinite(lo), lo, 0.9),
    )
    bbv = network.get_bus_breaker_view_buses()
    of_cfg = {str(i): str(b) for i, b in zip(bbv.index, _imp.scol(bbv, "bus_id"), strict=True) if b}
    buses = _imp.Buses(bnames, kv, of_cfg)
    vn_bus = dict(zip(bnames, kv.tolist(), strict=True))
    fp, fq = _imp.fcol(bt, "fictitious_p0", 0.0), _imp.fcol(bt, "fictitious_q0", 0.0)
    if np.any(fp != 0) or np.any(fq != 0):
        rows.add_demand(np.arange(len(bnames), dtype=np.int64), fp, fq)
    ratings = _imp.read_ratings(network, vn)
    counts: dict[str, int] = {"bus": len(bt)}
    counts["line"] = _imp.lines(network, rows, buses, vn, ratings)
    counts["two_windings_transformer"] = _imp.transformers(network, rows, buses, vn, ratings)
    counts["three_windings_transformer"] = _imp.three_winding(
        network, rows, buses, vn, ratings, opts.three_winding
    )
    counts["dangling_line"] = _imp.dangling(network, rows, buses, vn, ratings)
    counts["tie_line"] = len(network.get_tie_lines())
    _imp.tap_control_notes(network, rows)
    counts["generator"], counts["battery"] = _imp.generators(network, rows, buses, vn_bus)
    counts["load"] = _imp.loads(network, rows, buses)
    counts["shunt_compensator"] = _imp.shunts(network, rows, buses)
    counts["static_var_compensator"] = _imp.svcs(network, rows, buses, vn_bus)
    counts["hvdc_line"], counts["vsc_converter_station"], counts["lcc_converter_station"] = (
        _imp.hvdc(network, rows, buses, vn_bus, opts.hvdc)
    )
    _imp.unsupported(network, rows)
    net, report = _assemble(network, rows, bt, opts, counts)
    if opts.strict and report.not_represented:
        first = report.not_represented[0]
        raise ValidationError(
            f"network {report.network_id}: {len(report.not_represented)} element(s) not "
            f"represented, first {first}"
        )
    return net, report


def _assemble(
    network: Any, rows: _imp.Rows, bt: Any, opts: ImportOptions, counts: dict[str, int]
) -> tuple[Network, ImportReport]:
    base = opts.base_mva
    names: list[str] = [n for chunk in rows.bus["name"] for n in chunk]
    nb = len(names)
    kv = _imp.cat(rows.bus["kv"])
    pd = np.zeros(nb)
    qd = np.zeros(nb)
    for at, p, q in rows.inj:
        np.add.at(pd, at, p)
        np.add.at(qd, at, q)
    ysh = np.zeros(nb, dtype=np.complex128)
    for at, y in rows.shunt:
        np.add.at(ysh, at, y)
    gbus = _imp.cat(rows.gen["bus"], np.int64)
    greg = _imp.cat(rows.gen_reg, bool)
    gon = _imp.cat(rows.gen_on, bool)
    gsize = _imp.cat(rows.gen_size)
    gids = [g for chunk in rows.gen_id for g in chunk]
    btype = np.full(nb, BUS_PQ, dtype=np.int64)
    btype[gbus[greg & gon]] = BUS_PV
    slack = _imp.choose_slack(network, rows, bt, opts.slack_bus_ids, gbus, greg & gon, gsize, names)
    btype[slack] = BUS_REF
    # several units holding one bus to different targets: the power flow keeps the first's
    vg = _imp.cat(rows.gen["vg"])
    held = np.flatnonzero(greg & gon)
    if held.size:
        first = np.full(nb, np.nan)
        first[gbus[held[::-1]]] = vg[held[::-1]]
        for g in held[np.abs(vg[held] - first[gbus[held]]) > 1e-9]:
            rows.simple.append(
                Omission(
                    "generator",
                    gids[g],
                    f"target {vg[g]:.6g} pu differs from that of the first unit at "
                    f"{names[gbus[g]]} ({first[gbus[g]]:.6g} pu), which the power flow holds",
                )
            )
    nums = _imp.numeric_bus_ids(bt)
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
        vm_pu=_imp.cat(rows.bus["vm"]),
        va_deg=_imp.cat(rows.bus["va"]),
        base_kv=kv,
        zone=np.ones(nb, dtype=np.int64),
        vmax_pu=_imp.cat(rows.bus["vmax"]),
        vmin_pu=_imp.cat(rows.bus["vmin"]),
    )
    gen = GenTable(
        bus_id=bus_id[gbus],
        pg_mw=_imp.cat(rows.gen["pg"]),
        qg_mvar=_imp.cat(rows.gen["qg"]),
        qmax_mvar=_imp.cat(rows.gen["qmax"]),
        qmin_mvar=_imp.cat(rows.gen["qmin"]),
        vg_pu=_imp.cat(rows.gen["vg"]),
        mbase_mva=_imp.cat(rows.gen["mbase"]),
        in_service=gon.astype(np.int64),
        pmax_mw=_imp.cat(rows.gen["pmax"]),
        pmin_mw=_imp.cat(rows.gen["pmin"]),
    )
    f = _imp.cat(rows.br["f"], np.int64)
    nl = f.size
    branch = BranchTable(
        from_bus_id=bus_id[f],
        to_bus_id=bus_id[_imp.cat(rows.br["t"], np.int64)],
        r_pu=_imp.cat(rows.br["r"]),
        x_pu=_imp.cat(rows.br["x"]),
        b_pu=_imp.cat(rows.br["b"]),
        rate_a_mva=_imp.cat(rows.br["rate"]),
        rate_b_mva=np.zeros(nl),
        rate_c_mva=np.zeros(nl),
        tap_ratio=_imp.cat(rows.br["tap"]),
        shift_deg=_imp.cat(rows.br["shift"]),
        in_service=_imp.cat(rows.br["on"], bool).astype(np.int64),
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

    check_network(net, "to_pypowsybl")
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
    check_path(path, "read_grid")
    p = Path(path)
    _check_source(p)
    pp = _pypowsybl()
    try:
        network = pp.network.load(str(p))
    except Exception as exc:  # pypowsybl raises its own PyPowsyblError, among others
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaseFormatError(f"pypowsybl cannot read it: {msg}", str(p)) from None
    net, report = from_pypowsybl(network, options)
    if not report.source_format:
        fmt = "CGMES" if p.is_dir() or p.suffix.lower() == ".zip" else p.suffix.lstrip(".").upper()
        report = dataclasses.replace(report, source_format=fmt)
    return net, report


def _check_source(p: Path) -> None:
    """A folder (CGMES) or a regular file within the input bound; devices are refused."""
    from aiguilleur._files import check_input_file

    check_input_file(p, folder_ok=True)


_EXTENSION = {"XIIDM": ".xiidm", "UCTE": ".uct"}


def _export_path(path: str | Path, format: str) -> Path:
    """Where :func:`write_grid` writes: the folder for CGMES, else the file with its extension.

    pypowsybl adds the format's extension when the name has none; the path
    named to the user (and checked before the work) is that final one.
    """
    fmt = _format(format)
    p = Path(path)
    ext = _EXTENSION.get(fmt)
    if ext is not None and (not p.name or p.is_dir()):
        raise ValidationError(f"{p}: is a folder; give a file name for {fmt}")
    if ext is not None and not p.suffix:
        p = p.with_name(p.name + ext)
    return p


def write_grid(
    net: Network, path: str | Path, format: str = "XIIDM", *, force: bool = False
) -> Path:
    """Write ``net`` as CGMES, UCTE-DEF or XIIDM through :func:`to_pypowsybl`.

    ``path`` is the folder to write for CGMES (pypowsybl writes one file per
    profile in it) and the file otherwise (the format's extension is added
    when it has none). UCTE-DEF needs UCTE node names and voltage levels, which
    a MATPOWER case does not have: pypowsybl's exporter rejects such a network,
    and that is reported.

    The output is checked before the conversion starts: an existing file (or a
    non-empty CGMES folder) is replaced only with ``force``. Files are written
    in a temporary folder beside the target and moved into place, so a failure
    never leaves a half-written file.

    Returns
    -------
    Path
        The file written (the folder for CGMES).

    Raises
    ------
    ValidationError
        For an unknown format, an output that exists (without ``force``) or
        cannot be written, or when pypowsybl's exporter refuses the network.
    """
    import os
    import shutil
    import tempfile

    from aiguilleur._files import check_output_dir, check_output_file

    check_network(net, "write_grid")
    check_path(path, "write_grid")
    fmt = _format(format)
    p = _export_path(path, fmt)
    if fmt == "CGMES":
        check_output_dir(p, force=force)
    else:
        check_output_file(p, force=force)
    n = to_pypowsybl(net)
    parent = p.parent if str(p.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=parent))
    try:
        try:
            if fmt == "CGMES":
                n.save(str(tmp / (net.name or "network")), format="CGMES")
            else:
                n.save(str(tmp / p.name), format=fmt)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValidationError(f"{p}: pypowsybl cannot write {fmt}: {msg}") from None
        written = sorted(f for f in tmp.iterdir() if f.is_file())
        if fmt == "CGMES":
            p.mkdir(exist_ok=True)
            for f in written:
                os.replace(f, p / f.name)
        else:
            if len(written) != 1:
                raise ValidationError(f"{p}: pypowsybl wrote {len(written)} files, expected one")
            os.replace(written[0], p)
    except OSError as e:
        raise ValidationError(f"{p}: cannot write ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return p
