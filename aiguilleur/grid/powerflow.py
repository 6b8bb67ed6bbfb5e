"""AC and DC power flow.

AC power flow is Newton-Raphson in polar form on sparse matrices, with
optional generator reactive-limit enforcement (PV to PQ switching) and a
single or distributed slack. Islands are found first; each island with a
generator in service is solved with its own reference bus, islands without
one are reported de-energised. DC power flow is MATPOWER's B-theta model.

Results never write into the network: they are separate frozen values with
``to_frame()`` views, in the network's row order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network, check_options
from aiguilleur.grid._compile import (
    Islands,
    branch_admittance,
    dc_susceptance,
    find_islands,
    incidence,
    make_ybus,
)
from aiguilleur.grid._newton import newton
from aiguilleur.grid.network import BUS_PV, BUS_REF, Network
from aiguilleur.status import Status

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DCPowerFlowResult",
    "IslandReport",
    "PowerFlowOptions",
    "PowerFlowResult",
    "ac_power_flow",
    "dc_power_flow",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ComplexArray = npt.NDArray[np.complex128]

Participation = Literal["pmax", "pg", "headroom"]


@dataclass(frozen=True)
class PowerFlowOptions:
    """Settings of a power flow.

    Parameters
    ----------
    tolerance_pu
        Largest acceptable active or reactive power mismatch at any bus, per
        unit of the system base (1e-8 pu is 1e-6 MW at 100 MVA).
    max_iter
        Newton iterations before giving up.
    enforce_q_limits
        Switch generator buses whose reactive output leaves its limits from
        PV to PQ, with the output fixed at the limit, and solve again.
    distributed_slack
        Share each island's active-power imbalance among its generators in
        proportion to ``participation`` instead of loading it all on the
        reference bus.
    participation
        ``pmax`` (installed capacity), ``pg`` (current output) or
        ``headroom`` (Pmax - Pg).
    init
        ``flat`` (1 pu, 0 rad), ``case`` (the voltages stored in the case) or
        ``dc`` (angles from a DC power flow, magnitudes flat).
    """

    tolerance_pu: float = 1e-8
    max_iter: int = 30
    enforce_q_limits: bool = False
    distributed_slack: bool = False
    participation: Participation = "pmax"
    init: Literal["flat", "case", "dc"] = "dc"

    def __post_init__(self) -> None:
        tol = self.tolerance_pu
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
            raise ValidationError(f"tolerance_pu: expected a number in (0, 1), got {tol!r}")
        it = self.max_iter
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise ValidationError(f"max_iter: expected an integer >= 1, got {it!r}")
        if self.participation not in ("pmax", "pg", "headroom"):
            raise ValidationError(
                f"participation: expected pmax, pg or headroom, got {self.participation!r}"
            )
        if self.init not in ("flat", "case", "dc"):
            raise ValidationError(f"init: expected flat, case or dc, got {self.init!r}")


@dataclass(frozen=True)
class IslandReport:
    """One island of the solved network.

    ``other_ref_bus_ids`` lists the buses of type 3 in the island other than
    ``ref_bus_id``: an island has one angle reference, the first reference bus
    (in file order) with a generator in service; the others are solved as
    generator (PV) buses, their active output held at its set-point.
    """

    island: int
    buses: int
    ref_bus_id: int | None
    ref_chosen: bool
    energised: bool
    converged: bool
    load_mw: float
    generation_mw: float
    other_ref_bus_ids: tuple[int, ...] = ()


def _pf_status(converged: bool, islands: tuple[IslandReport, ...], unserved_mw: float) -> Status:
    """The status of a power flow: the numerical outcome and the load left unserved."""
    if not any(i.energised for i in islands):
        return "infeasible"
    if not converged:
        return "not_converged"
    if unserved_mw > 1e-9:
        return "partial"
    return "feasible"


def _pf_message(status: str, islands: tuple[IslandReport, ...], unserved_mw: float) -> str:
    """One line naming what the power flow left undone ('' when nothing)."""
    dead = [i for i in islands if not i.energised]
    if status == "infeasible":
        return "no island has a generator in service: nothing is energised" + (
            f", {unserved_mw:,.1f} MW of load unserved" if unserved_mw > 0 else ""
        )
    if status == "not_converged":
        return "the power flow did not converge: the figures are not a solution"
    if status == "partial":
        nb = sum(i.buses for i in dead)
        return (
            f"{unserved_mw:,.1f} MW of load unserved: {len(dead)} island(s) of {nb} bus(es) "
            "without a generator in service are de-energised"
        )
    return ""


class _ServedLoad:
    """``status``, ``ok`` and ``message`` of a power flow result (AC or DC), from its
    convergence, its islands and the load it left unserved."""

    converged: bool
    islands: tuple[IslandReport, ...]
    unserved_mw: float

    @property
    def status(self) -> Status:
        """``feasible``; ``partial`` when some load is unserved (de-energised islands or
        isolated buses); ``infeasible`` when nothing is energised; ``not_converged``."""
        return _pf_status(self.converged, self.islands, self.unserved_mw)

    @property
    def ok(self) -> bool:
        """True when the power flow converged and every load is served."""
        return self.status == "feasible"

    @property
    def message(self) -> str:
        """What the power flow left undone, in one line ('' when ``ok``)."""
        return _pf_message(self.status, self.islands, self.unserved_mw)


@dataclass(frozen=True)
class PowerFlowResult(_ServedLoad):
    """The solution of an AC power flow, in the network's row order.

    De-energised buses have ``vm_pu = 0`` and the branches touching them carry
    nothing. ``loading_pct`` is the larger of the two end flows in MVA over
    ``rate_a`` (NaN where the rating is 0, i.e. unlimited).
    """

    converged: bool
    iterations: int
    max_mismatch_pu: float
    time_s: float
    bus_id: IntArray
    vm_pu: FloatArray
    va_deg: FloatArray
    pg_mw: FloatArray
    qg_mvar: FloatArray
    p_from_mw: FloatArray
    q_from_mvar: FloatArray
    p_to_mw: FloatArray
    q_to_mvar: FloatArray
    loading_pct: FloatArray
    islands: tuple[IslandReport, ...] = ()
    q_limited_gens: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unserved_mw: float = 0.0

    @property
    def losses_mw(self) -> float:
        """Active losses in the branches."""
        return float(np.sum(self.p_from_mw + self.p_to_mw))

    @property
    def s_from_mva(self) -> FloatArray:
        out: FloatArray = np.hypot(self.p_from_mw, self.q_from_mvar)
        return out

    @property
    def s_to_mva(self) -> FloatArray:
        out: FloatArray = np.hypot(self.p_to_mw, self.q_to_mvar)
        return out

    def to_frame(self, component: str = "bus") -> pd.DataFrame:
        """``bus``, ``gen``, ``branch`` or ``island`` results as a DataFrame."""
        import pandas as pd

        if component == "bus":
            return pd.DataFrame({"bus_id": self.bus_id, "vm_pu": self.vm_pu, "va_deg": self.va_deg})
        if component == "gen":
            return pd.DataFrame({"pg_mw": self.pg_mw, "qg_mvar": self.qg_mvar})
        if component == "branch":
            return pd.DataFrame(
                {
                    "p_from_mw": self.p_from_mw,
                    "q_from_mvar": self.q_from_mvar,
                    "p_to_mw": self.p_to_mw,
                    "q_to_mvar": self.q_to_mvar,
                    "loading_pct": self.loading_pct,
                }
            )
        if component == "island":
            return pd.DataFrame([vars(i) for i in self.islands])
        raise ValidationError(
            f"unknown component {component!r}: expected bus, gen, branch or island"
        )


@dataclass(frozen=True)
class DCPowerFlowResult(_ServedLoad):
    """The solution of a DC power flow (angles and active flows only)."""

    converged: bool
    time_s: float
    bus_id: IntArray
    va_deg: FloatArray
    pg_mw: FloatArray
    p_mw: FloatArray
    loading_pct: FloatArray
    islands: tuple[IslandReport, ...] = ()
    unserved_mw: float = 0.0

    @property
    def iterations(self) -> int:
        return 1 if self.converged else 0

    @property
    def max_mismatch_pu(self) -> float:
        return 0.0

    def to_frame(self, component: str = "bus") -> pd.DataFrame:
        """``bus``, ``gen`` or ``branch`` results as a DataFrame."""
        import pandas as pd

        if component == "bus":
            return pd.DataFrame({"bus_id": self.bus_id, "va_deg": self.va_deg})
        if component == "gen":
            return pd.DataFrame({"pg_mw": self.pg_mw})
        if component == "branch":
            return pd.DataFrame({"p_mw": self.p_mw, "loading_pct": self.loading_pct})
        raise ValidationError(f"unknown component {component!r}: expected bus, gen or branch")


# -- shared set-up ------------------------------------------------------------------


@dataclass
class _Setup:
    islands: Islands
    energised: BoolArray  # per bus
    branch_on: BoolArray  # per branch, in service with both ends energised
    gen_on: BoolArray  # per generator, in service and energised
    ref: IntArray
    pv: IntArray
    pq: IntArray
    alpha_gen: FloatArray  # participation per generator (sums to 1 per island)


def _participation_weights(net: Network, kind: Participation, gen_on: BoolArray) -> FloatArray:
    """Non-negative weight of each unit in service (0 elsewhere) in sharing an imbalance."""
    g = net.gen
    w = {"pmax": g.pmax_mw, "pg": g.pg_mw, "headroom": g.pmax_mw - g.pg_mw}[kind]
    out: FloatArray = np.where(gen_on, np.maximum(w, 0.0), 0.0)
    return out


def _setup(net: Network, opts: PowerFlowOptions, gen_on: BoolArray | None = None) -> _Setup:
    gon = (net.gen.in_service == 1) if gen_on is None else gen_on
    isl = find_islands(net, gen_on=gon)
    energised = isl.label >= 0
    energised[energised] = isl.ref[isl.label[energised]] >= 0
    gon = gon & energised[net.gen_bus]
    has_gen = np.zeros(net.n_bus, dtype=bool)
    has_gen[net.gen_bus[gon]] = True
    ref = isl.ref[isl.ref >= 0]
    is_ref = np.zeros(net.n_bus, dtype=bool)
    is_ref[ref] = True
    btype = net.bus.bus_type
    pv_mask = energised & has_gen & ~is_ref & ((btype == BUS_PV) | (btype == BUS_REF))
    pq_mask = energised & ~is_ref & ~pv_mask
    alpha = np.zeros(net.n_gen)
    if opts.distributed_slack:
        w = _participation_weights(net, opts.participation, gon)
        gl = isl.label[net.gen_bus]
        tot = np.bincount(np.maximum(gl, 0), weights=w, minlength=isl.ref.size + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = np.where(gon & (tot[np.maximum(gl, 0)] > 0), w / tot[np.maximum(gl, 0)], 0.0)
        # islands where no unit can participate fall back to their reference bus
        no_part = np.flatnonzero(tot[: isl.ref.size] <= 0)
        for k in no_part:
            r = isl.ref[k]
            if r >= 0:
                first = np.flatnonzero(gon & (net.gen_bus == r))
                if first.size:
                    alpha[first[0]] = 1.0
    # a branch to an isolated (type 4) or de-energised bus is out of the calculation:
    # kept in, it would tie an energised bus to a zero voltage (a short circuit)
    branch_on = (net.branch.in_service == 1) & energised[net.branch_from] & energised[net.branch_to]
    return _Setup(
        isl,
        energised,
        branch_on,
        gon,
        ref.astype(np.int64),
        np.flatnonzero(pv_mask).astype(np.int64),
        np.flatnonzero(pq_mask).astype(np.int64),
        alpha,
    )


def _gen_bus_matrix(net: Network, gen_on: BoolArray) -> sp.csr_matrix:
    idx = np.flatnonzero(gen_on)
    return sp.csr_matrix((np.ones(idx.size), (net.gen_bus[idx], idx)), shape=(net.n_bus, net.n_gen))


def _island_reports(
    net: Network, st: _Setup, pg_mw: FloatArray, converged: bool
) -> tuple[IslandReport, ...]:
    isl = st.islands
    lab = isl.label
    k = isl.ref.size
    nb = np.bincount(lab[lab >= 0], minlength=k)
    load = np.bincount(lab[lab >= 0], weights=net.bus.pd_mw[lab >= 0], minlength=k)
    gl = lab[net.gen_bus]
    gsel = st.gen_on & (gl >= 0)
    gen = np.bincount(gl[gsel], weights=pg_mw[gsel], minlength=k)
    is_ref = (net.bus.bus_type == BUS_REF) & (lab >= 0)
    is_ref[isl.ref[isl.ref >= 0]] = False
    extra: list[list[int]] = [[] for _ in range(k)]
    for j in np.flatnonzero(is_ref):
        extra[int(lab[j])].append(int(net.bus.bus_id[j]))
    out = []
    for i in range(k):
        r = int(isl.ref[i])
        out.append(
            IslandReport(
                island=i,
                buses=int(nb[i]),
                ref_bus_id=int(net.bus.bus_id[r]) if r >= 0 else None,
                ref_chosen=bool(isl.ref_chosen[i]),
                energised=r >= 0,
                converged=bool(converged) if r >= 0 else False,
                load_mw=float(load[i]),
                generation_mw=float(gen[i]),
                other_ref_bus_ids=tuple(extra[i]),
            )
        )
    return tuple(out)


def _unserved_mw(net: Network, st: _Setup) -> float:
    """Load at buses left without supply (de-energised islands, isolated buses)."""
    return float(np.sum(np.maximum(net.bus.pd_mw[~st.energised], 0.0)))


def _loading(net: Network, s_mva: FloatArray) -> FloatArray:
    rate = net.branch.rate_a_mva
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(rate > 0, 100.0 * s_mva / rate, np.nan)
    return out


# -- AC -----------------------------------------------------------------------------


def _initial_voltage(net: Network, st: _Setup, opts: PowerFlowOptions) -> ComplexArray:
    n = net.n_bus
    if opts.init == "case":
        vm = np.array(net.bus.vm_pu, dtype=np.float64)
        va = np.deg2rad(net.bus.va_deg)
    elif opts.init == "dc":
        dc = dc_power_flow(net, PowerFlowOptions(distributed_slack=opts.distributed_slack))
        vm = np.ones(n)
        va = np.deg2rad(dc.va_deg)
    else:
        vm = np.ones(n)
        va = np.zeros(n)
    # voltage set-points of the first generator in service at each bus
    gidx = np.flatnonzero(st.gen_on)[::-1]
    vm[net.gen_bus[gidx]] = net.gen.vg_pu[gidx]
    v = (vm * np.exp(1j * va)).astype(np.complex128)
    v[~st.energised] = 0.0
    return v


def ac_power_flow(
    net: Network,
    options: PowerFlowOptions | None = None,
    *,
    v0: ComplexArray | None = None,
) -> PowerFlowResult:
    """Solve the AC power flow of ``net`` by Newton-Raphson.

    Parameters
    ----------
    net
        The network; its generator set-points (``pg_mw``, ``vg_pu``) and loads
        define the operating point.
    options
        Solver settings; defaults to :class:`PowerFlowOptions` ().
    v0
        Complex bus voltages to start from (a warm start), overriding
        ``options.init``.

    Returns
    -------
    PowerFlowResult
        Convergence status, iterations, largest mismatch and the solution.
        A power flow that does not converge is reported, not raised.
    """
    check_network(net, "ac_power_flow", solve=True)
    check_options(options, PowerFlowOptions, "ac_power_flow")
    # overflow in a diverging iteration is reported through the status, not as warnings
    with np.errstate(all="ignore"):
        return _ac_power_flow(net, options, v0=v0)


def _ac_power_flow(
    net: Network,
    options: PowerFlowOptions | None = None,
    *,
    v0: ComplexArray | None = None,
) -> PowerFlowResult:
    opts = options or PowerFlowOptions()
    t0 = time.perf_counter()
    st = _setup(net, opts)
    ybus, yf, yt = make_ybus(net, branch_admittance(net, st.branch_on))
    base = net.base_mva
    n = net.n_bus
    g = net.gen
    pg = np.where(st.gen_on, g.pg_mw, 0.0)
    qg_fixed = np.zeros(net.n_gen)
    fixed_q = np.zeros(net.n_gen, dtype=bool)
    cg = _gen_bus_matrix(net, st.gen_on)
    if v0 is None:
        v = _initial_voltage(net, st, opts)
    else:
        v = np.array(v0, dtype=np.complex128)
        if v.shape != (n,):
            raise ValidationError(f"v0: expected {n} complex voltages, got shape {v.shape}")
        v[~st.energised] = 0.0
    pv, pq = st.pv, st.pq
    total_it = 0
    group = st.islands.label.copy()
    alpha_bus = np.asarray(cg @ st.alpha_gen) if opts.distributed_slack else None
    q_limited: list[int] = []
    while True:
        sload = (net.bus.pd_mw + 1j * net.bus.qd_mvar) / base
        # every unit injects its stored Q (it only matters where the bus does not regulate
        # voltage); units held at a reactive limit inject that limit
        qg_in = np.where(fixed_q, qg_fixed, np.where(st.gen_on, g.qg_mvar, 0.0))
        sgen = np.asarray(cg @ (pg + 1j * qg_in)) / base
        sbus = np.where(st.energised, sgen - sload, 0.0)
        res = newton(
            ybus,
            sbus,
            v,
            st.ref,
            pv,
            pq,
            tol=opts.tolerance_pu,
            max_iter=opts.max_iter,
            alpha=alpha_bus,
            group=np.maximum(group, 0) if alpha_bus is not None else None,
        )
        total_it += res.iterations
        v = res.v
        pg_out, qg_out = _gen_outputs(net, st, cg, ybus, v, pg, fixed_q, qg_fixed, res.slack)
        if not (opts.enforce_q_limits and res.converged):
            break
        pvb = np.zeros(n, dtype=bool)
        pvb[pv] = True
        tol_q = 1e-6
        over = st.gen_on & ~fixed_q & pvb[net.gen_bus] & (qg_out > g.qmax_mvar + tol_q)
        under = st.gen_on & ~fixed_q & pvb[net.gen_bus] & (qg_out < g.qmin_mvar - tol_q)
        viol = over | under
        if not np.any(viol):
            break
        qg_fixed = np.where(over, g.qmax_mvar, np.where(under, g.qmin_mvar, qg_fixed))
        buses = np.unique(net.gen_bus[viol])
        # every unit at a switched bus now has a fixed output
        at_bus = st.gen_on & np.isin(net.gen_bus, buses) & ~viol & ~fixed_q
        qg_fixed = np.where(at_bus, qg_out, qg_fixed)
        fixed_q = fixed_q | viol | at_bus
        q_limited.extend(np.flatnonzero(viol).tolist())
        pv = pv[~np.isin(pv, buses)]
        pq = np.sort(np.concatenate([pq, buses]))
        if total_it > 10 * opts.max_iter:
            break
    sf = v[net.branch_from] * np.conj(yf @ v) * base
    stt = v[net.branch_to] * np.conj(yt @ v) * base
    s_max = np.maximum(np.abs(sf), np.abs(stt))
    reports = _island_reports(net, st, pg_out, res.converged)
    return PowerFlowResult(
        # nothing energised: nothing was solved
        converged=bool(res.converged) and bool(st.ref.size),
        iterations=total_it,
        max_mismatch_pu=float(res.max_mismatch),
        time_s=time.perf_counter() - t0,
        bus_id=np.array(net.bus.bus_id),
        vm_pu=np.abs(v),
        va_deg=np.where(st.energised, np.rad2deg(np.angle(v)), 0.0),
        pg_mw=pg_out,
        qg_mvar=qg_out,
        p_from_mw=sf.real.copy(),
        q_from_mvar=sf.imag.copy(),
        p_to_mw=stt.real.copy(),
        q_to_mvar=stt.imag.copy(),
        loading_pct=_loading(net, s_max),
        islands=reports,
        q_limited_gens=np.array(sorted(set(q_limited)), dtype=np.int64),
        unserved_mw=_unserved_mw(net, st),
    )


def _gen_outputs(
    net: Network,
    st: _Setup,
    cg: sp.csr_matrix,
    ybus: sp.csr_matrix,
    v: ComplexArray,
    pg: FloatArray,
    fixed_q: BoolArray,
    qg_fixed: FloatArray,
    slack: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Generator P and Q at the solution (MATPOWER's pfsoln rules)."""
    base = net.base_mva
    g = net.gen
    on = st.gen_on
    s_calc = v * np.conj(ybus @ v) * base
    s_need = s_calc + (net.bus.pd_mw + 1j * net.bus.qd_mvar)
    pg_out = np.where(on, pg, 0.0).astype(np.float64)
    if slack.size and st.alpha_gen.any():
        gl = st.islands.label[net.gen_bus]
        pg_out = pg_out + st.alpha_gen * slack[np.maximum(gl, 0)] * base
    else:
        # the first unit in service at each reference bus takes the imbalance
        for r in st.ref:
            units = np.flatnonzero(on & (net.gen_bus == r))
            if units.size:
                others = float(np.sum(pg_out[units[1:]]))
                pg_out[units[0]] = s_need[r].real - others
    # reactive output at buses that regulate voltage, shared in proportion to ranges
    qbus_tot = s_need.imag
    free = on & ~fixed_q
    cg_free = sp.csr_matrix(
        (np.ones(int(free.sum())), (net.gen_bus[free], np.flatnonzero(free))),
        shape=(net.n_bus, net.n_gen),
    )
    q_fixed_bus = np.asarray(cg @ np.where(fixed_q & on, qg_fixed, 0.0))
    q_rem = qbus_tot - q_fixed_bus
    qmin_b = np.asarray(cg_free @ g.qmin_mvar)
    qmax_b = np.asarray(cg_free @ g.qmax_mvar)
    nb_free = np.asarray(cg_free @ np.ones(net.n_gen))
    gb = net.gen_bus
    rng_b = qmax_b - qmin_b
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(
            np.abs(rng_b[gb]) > 1e-9,
            g.qmin_mvar + (q_rem[gb] - qmin_b[gb]) / rng_b[gb] * (g.qmax_mvar - g.qmin_mvar),
            q_rem[gb] / np.maximum(nb_free[gb], 1),
        )
    qg_out = np.where(free, share, np.where(fixed_q & on, qg_fixed, 0.0))
    # generators at PQ buses that do not regulate keep their stored output
    regulating = np.zeros(net.n_bus, dtype=bool)
    regulating[st.ref] = True
    regulating[st.pv] = True
    passive = on & ~fixed_q & ~regulating[gb]
    qg_out = np.where(passive, g.qg_mvar, qg_out)
    return pg_out, qg_out


# -- DC -----------------------------------------------------------------------------


def dc_power_flow(net: Network, options: PowerFlowOptions | None = None) -> DCPowerFlowResult:
    """Solve MATPOWER's DC power flow (B-theta model with taps and phase shifts).

    Branch susceptance is ``1 / (x * tap)``, resistance and charging are
    ignored, shunt conductance is counted as load. The reference bus of each
    island (or every participating unit, with a distributed slack) takes up
    the island's imbalance.
    """
    check_network(net, "dc_power_flow", solve=True)
    check_options(options, PowerFlowOptions, "dc_power_flow")
    # overflow in a diverging iteration is reported through the status, not as warnings
    with np.errstate(all="ignore"):
        return _dc_power_flow(net, options)


def _dc_power_flow(net: Network, options: PowerFlowOptions | None = None) -> DCPowerFlowResult:
    opts = options or PowerFlowOptions()
    t0 = time.perf_counter()
    st = _setup(net, opts)
    base = net.base_mva
    n = net.n_bus
    b = dc_susceptance(net, st.branch_on)
    a = incidence(net)
    shift = np.where(st.branch_on, np.deg2rad(net.branch.shift_deg), 0.0)
    pf_inj = -b * shift
    bbus = (a.T @ sp.diags(b) @ a).tocsc()
    pbus_inj = a.T @ pf_inj
    cg = _gen_bus_matrix(net, st.gen_on)
    pg = np.where(st.gen_on, net.gen.pg_mw, 0.0)
    p = (np.asarray(cg @ pg) - net.bus.pd_mw - net.bus.gs_mw) / base - pbus_inj
    p = np.where(st.energised, p, 0.0)
    lab = st.islands.label
    k = st.islands.ref.size
    imbalance = np.bincount(lab[st.energised], weights=p[st.energised], minlength=k)
    pg_out = pg.copy()
    if opts.distributed_slack and st.alpha_gen.any():
        gl = np.maximum(lab[net.gen_bus], 0)
        share = -st.alpha_gen * imbalance[gl]
        p = p + np.asarray(cg @ share)
        pg_out = pg_out + share * base
    else:
        for r in st.ref:
            p[r] -= imbalance[lab[r]]
            units = np.flatnonzero(st.gen_on & (net.gen_bus == r))
            if units.size:
                pg_out[units[0]] -= imbalance[lab[r]] * base
    va = np.zeros(n)
    va_ref = np.deg2rad(net.bus.va_deg) if opts.init == "case" else np.zeros(n)
    va[st.ref] = va_ref[st.ref]
    free = np.concatenate([st.pv, st.pq])
    free.sort()
    converged = True
    if free.size:
        rhs = p[free] - bbus[free][:, st.ref] @ va[st.ref]
        try:
            red = bbus[free][:, free].tocsc()
            # symmetric; negative reactances (series capacitors) rule out a pivot-free LDL
            va[free] = splu(
                red,
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.1,
                options={"SymmetricMode": True},
            ).solve(rhs)
        except RuntimeError:
            converged = False
    pf = (b * (va[net.branch_from] - va[net.branch_to]) + pf_inj) * base
    pf = np.where(st.branch_on, pf, 0.0)
    return DCPowerFlowResult(
        converged=converged and bool(st.ref.size),
        time_s=time.perf_counter() - t0,
        bus_id=np.array(net.bus.bus_id),
        va_deg=np.rad2deg(va),
        pg_mw=pg_out,
        p_mw=pf,
        loading_pct=_loading(net, np.abs(pf)),
        islands=_island_reports(net, st, pg_out, converged),
        unserved_mw=_unserved_mw(net, st),
    )
