"""Corrective plans that hold in AC: redispatch, then the AC-OPF, checked by an AC power flow.

After an event the operator needs a plan that removes every overload and
voltage violation *in AC*, within what units can do in the next minutes.
:func:`corrective_plan` builds it in stages, cheapest first, and never
reports a plan that fails its own check:

1. **AC check of the grid as it is** (:func:`ac_check`): a Newton-Raphson
   power flow with reactive limits; branches above their rating (MVA, both
   ends), voltages outside ``[Vmin, Vmax]``, load in de-energised islands.
   Nothing violated: no plan is needed.
2. **DC redispatch with AC correction rounds**: the corrective redispatch of
   :class:`~aiguilleur.grid.redispatch.Redispatcher` (ramp limits over
   ``minutes``, premiums, shedding at the value of lost load), then an AC
   power flow of the plan; where a branch is still above its rating, its
   active-power limit in the DC model becomes what the rating leaves beside
   the reactive flow and losses the AC check saw, and the plan is made again
   (at most ``ac_rounds`` times). The first plan is made whatever the
   violations (a DC plan cannot see voltages, but its power flow is the
   AC-OPF's start); the corrected rounds come after the AC-OPF, as its fallback.
3. **AC-OPF** when the first DC plan does not hold in AC (voltages, reactive
   flows): the AC-OPF of :mod:`aiguilleur.grid.acopf` with each unit's active
   power boxed to what it can ramp to in ``minutes``, started from the AC
   power flow of the DC plan (or of the grid as it is), with a shedding unit at every
   load bus priced at the value of lost load. Its objective is the cost of
   moving: the units' marginal cost of each MW moved plus a quadratic
   deviation term (``up_premium / ramp`` per MW squared), so that units move as
   little as possible and the economic order still decides who moves.
   Voltage set-points come from its solution.

Every candidate plan is applied to the network exactly as an approval would
apply it (new set-points, shedding with the bus's power factor kept) and
checked by an independent AC power flow (step 1 again). The result is the
first plan that passes; when none does, the best one (fewest, smallest
violations) with ``ok`` false and ``remaining`` naming each branch and bus
still out of limits and why (e.g. load in an island no plan can reach).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import AiguilleurError, ValidationError
from aiguilleur.grid.network import GenCostTable, Network
from aiguilleur.grid.powerflow import PowerFlowOptions, PowerFlowResult, ac_power_flow

__all__ = [
    "ACCheck",
    "CorrectiveOptions",
    "CorrectivePlan",
    "PlanAction",
    "ac_check",
    "apply_plan",
    "corrective_plan",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_MOVE_TOL_MW = 0.05
#: IPOPT iterations a warm start from an earlier plan gets before the primal start takes over
WARM_MAX_ITER = 40
_VOLT_TOL = 1e-4


@dataclass(frozen=True)
class CorrectiveOptions:
    """Settings of :func:`corrective_plan`.

    Parameters
    ----------
    rating
        Branch rating the plan must respect (``a`` long-term by default).
    minutes
        Time the units have to move (ramp limits over this many minutes).
    voll_eur_per_mwh
        Value of lost load: the price of each MW shed.
    allow_shedding
        Whether the plan may shed load at all (last resort).
    loading_tolerance_pct
        A branch counts as overloaded above ``100 + tolerance`` percent.
    voltage_tolerance_pu
        A voltage counts as out of limits beyond its limit by more than this.
    ac_rounds
        DC plans tried with AC corrections before the AC-OPF.
    use_ac_opf
        Try the AC-OPF when the DC plans do not hold in AC.
    time_limit_s
        Wall time for the whole plan (``None``: none); the AC-OPF gets what is left.
    up_premium_eur_per_mwh, down_premium_eur_per_mwh
        Price of moving a unit up or down, beside its marginal cost.
    shed_hops
        The AC-OPF may shed load only within this many branches of a violated
        element (-1: anywhere).
    """

    rating: Literal["a", "b", "c"] = "a"
    minutes: float = 15.0
    voll_eur_per_mwh: float = 10_000.0
    allow_shedding: bool = True
    loading_tolerance_pct: float = 0.5
    voltage_tolerance_pu: float = 1e-3
    ac_rounds: int = 3
    use_ac_opf: bool = True
    time_limit_s: float | None = None
    up_premium_eur_per_mwh: float = 5.0
    down_premium_eur_per_mwh: float = 5.0
    shed_hops: int = 4

    def __post_init__(self) -> None:
        if self.rating not in ("a", "b", "c"):
            raise ValidationError(f"rating: expected 'a', 'b' or 'c', got {self.rating!r}")
        for name, lo, hi in (
            ("minutes", 0.0, 24 * 60.0),
            ("voll_eur_per_mwh", 0.0, 1e9),
            ("loading_tolerance_pct", 0.0, 50.0),
            ("voltage_tolerance_pu", 0.0, 0.5),
            ("up_premium_eur_per_mwh", 0.0, 1e6),
            ("down_premium_eur_per_mwh", 0.0, 1e6),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise ValidationError(f"{name}: expected a number in [{lo:g}, {hi:g}], got {v!r}")
        for name in ("allow_shedding", "use_ac_opf"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name}: expected True or False")
        r = self.ac_rounds
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 20:
            raise ValidationError(f"ac_rounds: expected an integer in 1..20, got {r!r}")
        h = self.shed_hops
        if isinstance(h, bool) or not isinstance(h, int) or not -1 <= h <= 1000:
            raise ValidationError(f"shed_hops: expected an integer >= -1, got {h!r}")
        t = self.time_limit_s
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < math.inf
        ):
            raise ValidationError(f"time_limit_s: expected a positive finite number, got {t!r}")


@dataclass(frozen=True, eq=False)
class ACCheck:
    """An AC power flow of a network held against its limits.

    ``overloads`` are ``(branch row, loading %)`` above ``100 + tolerance``,
    worst first; ``low_voltage``/``high_voltage`` are ``(bus row, vm, limit)``;
    ``unserved_mw`` is load in de-energised islands. ``ok`` when the power
    flow converged and nothing is violated or unserved.
    """

    converged: bool
    max_loading_pct: float
    overloads: tuple[tuple[int, float], ...]
    low_voltage: tuple[tuple[int, float, float], ...]
    high_voltage: tuple[tuple[int, float, float], ...]
    unserved_mw: float
    vm_min_pu: float
    vm_max_pu: float
    losses_mw: float
    loading_pct: FloatArray = field(repr=False)
    pf: PowerFlowResult | None = field(repr=False, default=None)

    @property
    def ok(self) -> bool:
        return (
            self.converged
            and not self.overloads
            and not self.low_voltage
            and not self.high_voltage
            and self.unserved_mw <= 1e-6
        )

    @property
    def violations(self) -> int:
        return len(self.overloads) + len(self.low_voltage) + len(self.high_voltage)

    def badness(self) -> tuple[int, float, float]:
        """Ordering key: not converged last, then count and size of the violations."""
        excess = sum(p - 100.0 for _, p in self.overloads)
        volt = sum(abs(v - lim) for _, v, lim in (*self.low_voltage, *self.high_voltage))
        return (0 if self.converged else 1, self.violations, excess + 100.0 * volt)

    def describe(self, net: Network) -> list[str]:
        """One line per violation, naming the element as the case file does."""
        if not self.converged:
            return ["the AC power flow does not converge"]
        out = []
        b = net.branch
        for k, pct in self.overloads:
            out.append(
                f"branch:{k + 1} ({int(b.from_bus_id[k])}-{int(b.to_bus_id[k])}) at {pct:.1f} % "
                "of its rating"
            )
        for i, vm, lim in self.low_voltage:
            out.append(f"bus:{int(net.bus.bus_id[i])} at {vm:.3f} pu, below its minimum {lim:.3f}")
        for i, vm, lim in self.high_voltage:
            out.append(f"bus:{int(net.bus.bus_id[i])} at {vm:.3f} pu, above its maximum {lim:.3f}")
        if self.unserved_mw > 1e-6:
            out.append(f"{self.unserved_mw:.1f} MW of load in islands with no generation")
        return out

    def to_dict(self, net: Network | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "ok": self.ok,
            "converged": self.converged,
            "max_loading_pct": _finite(self.max_loading_pct),
            "overloads": [
                {"branch": f"branch:{k + 1}", "loading_pct": p} for k, p in self.overloads
            ],
            "voltage_violations": len(self.low_voltage) + len(self.high_voltage),
            "unserved_mw": self.unserved_mw,
            "vm_min_pu": _finite(self.vm_min_pu),
            "vm_max_pu": _finite(self.vm_max_pu),
            "losses_mw": _finite(self.losses_mw),
        }
        if net is not None:
            d["violations"] = self.describe(net)
        return d


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def ac_check(
    net: Network,
    rating: Literal["a", "b", "c"] = "a",
    *,
    loading_tolerance_pct: float = 0.5,
    voltage_tolerance_pu: float = 1e-3,
    v0: Any = None,
) -> ACCheck:
    """Solve the AC power flow of ``net`` (reactive limits enforced) and hold it against limits."""
    if not isinstance(net, Network):
        raise ValidationError(f"net: expected a Network, got {type(net).__name__}")
    try:
        pf = ac_power_flow(net, PowerFlowOptions(enforce_q_limits=True), v0=v0)
    except AiguilleurError:
        raise
    rate = net.branch.rating_mva(rating)
    s = np.maximum(pf.s_from_mva, pf.s_to_mva)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(rate > 0, 100.0 * s / np.where(rate > 0, rate, 1.0), 0.0)
    pct = np.where(net.branch.in_service == 1, pct, 0.0)
    unserved = float(sum(i.load_mw for i in pf.islands if not i.energised))
    if not pf.converged:
        return ACCheck(False, math.nan, (), (), (), unserved, math.nan, math.nan, math.nan, pct, pf)
    over = np.flatnonzero(pct > 100.0 + loading_tolerance_pct)
    over = over[np.argsort(-pct[over], kind="stable")]
    live = pf.vm_pu > 0
    vmin, vmax = net.bus.vmin_pu, net.bus.vmax_pu
    low = np.flatnonzero(live & (pf.vm_pu < vmin - voltage_tolerance_pu))
    high = np.flatnonzero(live & (pf.vm_pu > vmax + voltage_tolerance_pu))
    vm_live = pf.vm_pu[live]
    return ACCheck(
        converged=True,
        max_loading_pct=float(pct.max()) if pct.size else 0.0,
        overloads=tuple((int(k), float(pct[k])) for k in over),
        low_voltage=tuple((int(i), float(pf.vm_pu[i]), float(vmin[i])) for i in low),
        high_voltage=tuple((int(i), float(pf.vm_pu[i]), float(vmax[i])) for i in high),
        unserved_mw=unserved,
        vm_min_pu=float(vm_live.min()) if vm_live.size else math.nan,
        vm_max_pu=float(vm_live.max()) if vm_live.size else math.nan,
        losses_mw=float(pf.losses_mw),
        loading_pct=pct,
        pf=pf,
    )


@dataclass(frozen=True)
class PlanAction:
    """One action of a plan: ``set_dispatch``, ``set_voltage``, ``set_reactive`` or ``shed_load``.

    ``element`` is ``gen:<n>`` (case-file row from 1) or ``bus:<id>``;
    ``value`` the new set-point (MW, pu, Mvar) or the MW shed; ``before`` the
    value it replaces. ``set_reactive`` concerns units at buses that do not
    regulate voltage (their reactive output is a set-point there).
    """

    kind: Literal["set_dispatch", "set_voltage", "set_reactive", "shed_load"]
    element: str
    value: float
    before: float
    cost: float
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class CorrectivePlan:
    """A corrective plan and its AC check (see :func:`corrective_plan`).

    ``status`` follows :mod:`aiguilleur.status`: ``optimal`` (nothing to do, or a
    plan that holds in AC), ``partial`` (the best plan found still leaves what
    ``remaining`` names), ``time_limit`` or ``error``. ``ok`` is true only when
    the plan holds in the independent AC check.
    """

    status: str
    method: str
    pg_mw: FloatArray
    vg_pu: FloatArray
    qg_mvar: FloatArray
    shed_mw: FloatArray
    actions: tuple[PlanAction, ...]
    cost_eur_per_h: float
    before: ACCheck
    after: ACCheck
    remaining: tuple[str, ...]
    stages: tuple[dict[str, Any], ...]
    time_s: float
    message: str = ""
    opf: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "optimal" and self.after.ok

    @property
    def shed_total_mw(self) -> float:
        return float(np.sum(self.shed_mw))

    @property
    def needed(self) -> bool:
        """False when the grid already met its limits (no action)."""
        return not self.before.ok

    def to_dict(self, net: Network | None = None) -> dict[str, Any]:
        return {
            "status": self.status,
            "ok": self.ok,
            "method": self.method,
            "needed": self.needed,
            "cost_eur_per_h": self.cost_eur_per_h,
            "shed_mw": self.shed_total_mw,
            "actions": [a.to_dict() for a in self.actions],
            "before": self.before.to_dict(net),
            "after": self.after.to_dict(net),
            "remaining": list(self.remaining),
            "stages": [dict(s) for s in self.stages],
            "time_s": self.time_s,
            "message": self.message,
        }


def apply_plan(
    net: Network, pg_mw: FloatArray, vg_pu: FloatArray, qg_mvar: FloatArray, shed_mw: FloatArray
) -> Network:
    """``net`` with the plan applied as an approval applies it.

    New set-points on the units in service (active power, voltage, and the
    reactive output that matters where a unit's bus does not regulate
    voltage); at each bus ``shed_mw`` less load, its reactive load reduced in
    proportion (the power factor is kept).
    """
    on = net.gen.in_service == 1
    pg = np.where(on, pg_mw, net.gen.pg_mw)
    vg = np.where(on, vg_pu, net.gen.vg_pu)
    qg = np.where(on, qg_mvar, net.gen.qg_mvar)
    pd = np.asarray(net.bus.pd_mw)
    shed = np.clip(np.asarray(shed_mw, dtype=np.float64), 0.0, np.maximum(pd, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(pd > 0, (pd - shed) / np.where(pd > 0, pd, 1.0), 1.0)
    bus = dataclasses.replace(net.bus, pd_mw=pd - shed, qd_mvar=np.asarray(net.bus.qd_mvar) * keep)
    gen = dataclasses.replace(net.gen, pg_mw=pg, vg_pu=vg, qg_mvar=qg)
    return net.replace(bus=bus, gen=gen)


# -- stages --------------------------------------------------------------------------------


@dataclass
class _Candidate:
    method: str
    pg: FloatArray
    vg: FloatArray
    qg: FloatArray
    shed: FloatArray
    cost: float
    check: ACCheck
    note: str = ""
    opf: Any = None


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.perf_counter()


def _dc_rounds(
    net: Network,
    opts: CorrectiveOptions,
    deadline: float | None,
    stages: list[dict[str, Any]],
    rounds: range,
    limit: FloatArray | None = None,
) -> tuple[list[_Candidate], FloatArray | None]:
    from aiguilleur.grid.redispatch import Redispatcher, RedispatchOptions

    out: list[_Candidate] = []
    rdo = RedispatchOptions(
        minutes=opts.minutes,
        rating=opts.rating,
        credit_savings=False,
        # without shedding: a penalty far above any redispatch cost (the largest the
        # redispatch accepts), and whatever it still sheds is not applied below
        voll_eur_per_mwh=opts.voll_eur_per_mwh if opts.allow_shedding else 9.99e6,
        overload_penalty_eur_per_mwh=1e6 if opts.allow_shedding else 1e8,
        up_premium_eur_per_mwh=opts.up_premium_eur_per_mwh,
        down_premium_eur_per_mwh=opts.down_premium_eur_per_mwh,
    )
    rate = net.branch.rating_mva(opts.rating)
    for r in rounds:
        left = _left(deadline)
        if left is not None and left <= 0:
            break
        t = time.perf_counter()
        rd = Redispatcher(net, net.gen.pg_mw, rdo, limit_mw=limit).solve([])
        if rd.status not in ("optimal", "overloads_remain"):
            stages.append(
                {
                    "stage": f"dc_redispatch_{r + 1}",
                    "status": rd.status,
                    "time_s": time.perf_counter() - t,
                }
            )
            break
        pg = np.asarray(rd.pg_mw, dtype=np.float64)
        shed = (
            np.asarray(rd.shed_mw, dtype=np.float64) if opts.allow_shedding else np.zeros(net.n_bus)
        )
        chk = ac_check(
            apply_plan(net, pg, net.gen.vg_pu, net.gen.qg_mvar, shed),
            opts.rating,
            loading_tolerance_pct=opts.loading_tolerance_pct,
            voltage_tolerance_pu=opts.voltage_tolerance_pu,
        )
        cost = float(rd.redispatch_cost + rd.shed_cost)
        out.append(
            _Candidate(
                f"dc_redispatch+ac_check({r + 1})",
                pg,
                np.array(net.gen.vg_pu),
                np.array(net.gen.qg_mvar),
                shed,
                cost,
                chk,
            )
        )
        stages.append(
            {
                "stage": f"dc_redispatch_{r + 1}",
                "status": rd.status,
                "ac_ok": chk.ok,
                "ac_violations": chk.violations,
                "time_s": time.perf_counter() - t,
            }
        )
        if chk.ok or not chk.converged:
            limit = None
            break
        pf = chk.pf
        assert pf is not None
        q = np.maximum(np.abs(pf.q_from_mvar), np.abs(pf.q_to_mvar))
        p_ac = np.maximum(np.abs(pf.p_from_mw), np.abs(pf.p_to_mw))
        room = np.sqrt(np.clip(rate**2 - q**2, (0.1 * rate) ** 2, None))
        lim = room - np.clip(p_ac - np.abs(rd.flow_mw), 0.0, None)
        lim = np.clip(lim, 0.1 * rate, None)
        prev = np.where(rate > 0, rate, np.inf) if limit is None else limit
        limit = np.where(rate > 0, np.minimum(prev, lim), np.inf)
    return out, limit


def _ac_opf_stage(
    net: Network,
    opts: CorrectiveOptions,
    base: ACCheck,
    deadline: float | None,
    stages: list[dict[str, Any]],
    warm: Any = None,
    guide: _Candidate | None = None,
) -> _Candidate | None:
    from aiguilleur.grid.acopf import ACOPFOptions, ACOPFStart, ac_opf
    from aiguilleur.grid.redispatch import RedispatchOptions, _marginal_costs, _ramp_mw

    left = _left(deadline)
    if left is not None and left < 0.2:
        stages.append({"stage": "ac_opf", "status": "time_limit", "time_s": 0.0})
        return None
    t = time.perf_counter()
    g = net.gen
    n_g = net.n_gen
    on = g.in_service == 1
    rows = np.arange(n_g)
    ramp = _ramp_mw(net, rows, RedispatchOptions(minutes=opts.minutes))
    pg0 = np.asarray(g.pg_mw, dtype=np.float64)
    lo = np.where(on, np.maximum(g.pmin_mw, pg0 - ramp), g.pmin_mw)
    hi = np.where(on, np.minimum(g.pmax_mw, pg0 + ramp), g.pmax_mw)
    lo = np.minimum(lo, hi)
    mc = np.zeros(n_g)
    if net.gencost is not None:
        try:
            up, _down = _marginal_costs(net, rows, pg0)
            mc = np.where(np.isfinite(up), up, 0.0)
        except AiguilleurError:
            mc = np.zeros(n_g)
    w = opts.up_premium_eur_per_mwh / np.maximum(ramp, 1.0)
    # cost of moving: mc (p - pg0) + w (p - pg0)^2, written as a polynomial in p
    c2 = w
    c1 = mc - 2.0 * w * pg0
    c0 = w * pg0**2 - mc * pg0
    pd = np.asarray(net.bus.pd_mw)
    load_bus = _shedding_buses(net, base, opts) if opts.allow_shedding else np.zeros(0, np.int64)
    n_s = load_bus.size
    bus_ids = net.bus.bus_id[load_bus]

    def cat(a: Any, b: Any) -> Any:
        return np.concatenate([np.asarray(a), np.asarray(b)])

    gen = dataclasses.replace(
        g,
        bus_id=cat(g.bus_id, bus_ids),
        pg_mw=cat(pg0, np.zeros(n_s)),
        qg_mvar=cat(g.qg_mvar, np.zeros(n_s)),
        qmax_mvar=cat(g.qmax_mvar, np.zeros(n_s)),
        qmin_mvar=cat(g.qmin_mvar, np.zeros(n_s)),
        vg_pu=cat(g.vg_pu, np.ones(n_s)),
        mbase_mva=cat(g.mbase_mva, np.full(n_s, net.base_mva)),
        in_service=cat(g.in_service, np.ones(n_s, np.int64)),
        pmax_mw=cat(hi, pd[load_bus]),
        pmin_mw=cat(lo, np.zeros(n_s)),
        extra=np.zeros((n_g + n_s, 0)),
    )
    params = np.zeros((n_g + n_s, 3))
    params[:n_g] = np.column_stack([c2, c1, c0])
    params[n_g:, 1] = opts.voll_eur_per_mwh
    cost = GenCostTable(
        model=np.full(n_g + n_s, 2),
        startup=np.zeros(n_g + n_s),
        shutdown=np.zeros(n_g + n_s),
        ncost=np.full(n_g + n_s, 3),
        params=params,
    )
    opf_net = net.replace(gen=gen, gencost=cost)
    start: Any = "flat"
    # the primal start: the AC power flow of the DC plan when there is one (it already
    # removed most of the overload), else the grid as it is
    pf, pg_start, shed_start = base.pf, pg0, np.zeros(net.n_bus)
    if guide is not None and guide.check.pf is not None and guide.check.pf.converged:
        pf, pg_start, shed_start = guide.check.pf, guide.pg, guide.shed
    if pf is not None and pf.converged:
        start = ACOPFStart(
            vm_pu=np.where(pf.vm_pu > 0, pf.vm_pu, 1.0),
            va_deg=pf.va_deg,
            pg_mw=cat(np.clip(pg_start, lo, hi), shed_start[load_bus]),
            qg_mvar=cat(pf.qg_mvar, np.zeros(n_s)),
        )
    # Shedding at a bus lowers its reactive load in proportion, which the AC-OPF's
    # shedding units (active power only) do not see: after a plan that sheds, the
    # shed is applied to the loads and the AC-OPF solved again (warm), so that the
    # plan it returns is the one the AC check will see.
    shed = np.zeros(net.n_bus)
    res: Any = None
    chk: ACCheck | None = None
    iters = 0
    attempts = [start, "flat"] if not isinstance(start, str) else [start]
    if warm is not None and len(warm.pg_mw) == n_g + n_s and len(warm.vm_pu) == net.n_bus:
        attempts.insert(0, warm)
    for round_ in range(3):
        left = _left(deadline)
        if left is not None and left < 0.2:
            break
        aco = ACOPFOptions(
            rating=opts.rating, time_limit_s=None if left is None else max(left, 0.2)
        )
        cur = opf_net
        if shed.any():
            pd_now = pd - shed
            with np.errstate(divide="ignore", invalid="ignore"):
                keep = np.where(pd > 0, pd_now / np.where(pd > 0, pd, 1.0), 1.0)
            bus = dataclasses.replace(
                net.bus, pd_mw=pd_now, qd_mvar=np.asarray(net.bus.qd_mvar) * keep
            )
            pmax_s = np.concatenate([hi, pd_now[load_bus]])
            cur = opf_net.replace(bus=bus, gen=dataclasses.replace(opf_net.gen, pmax_mw=pmax_s))
        new_res = None
        if round_ == 0:
            tries: list[Any] = attempts
        else:
            # the next round starts from the last optimum with its shedding applied to the
            # loads: a primal start, the shedding units back at zero (left at their optimum
            # they would shed the same MW twice). A primal-dual warm start from it fell into
            # IPOPT's restoration phase at once: 77 to 91 iterations on the crisis's
            # shedding plans, against 44 to 49 from the primal point.
            tries = [_unshed(res, n_g)]
        for st in tries:
            # A primal-dual warm start from another event's optimum helps when the grid
            # moved a little (demand steps: half the iterations) and hurts when its
            # active set changed (a trip: 4 to 5 times more): it gets a short leash,
            # then the primal start from the present power flow takes over.
            short = round_ == 0 and st is warm and warm is not None
            run = dataclasses.replace(aco, max_iter=WARM_MAX_ITER) if short else aco
            try:
                new_res = ac_opf(cur, run, start=st)
            except AiguilleurError as e:
                stages.append(
                    {
                        "stage": "ac_opf",
                        "status": "error",
                        "message": str(e)[:200],
                        "time_s": time.perf_counter() - t,
                    }
                )
                return None
            iters += int(new_res.iterations)
            if new_res.status in ("optimal", "feasible"):
                break
        if new_res is None or new_res.status not in ("optimal", "feasible"):
            if res is None:
                stages.append(
                    {
                        "stage": "ac_opf",
                        "status": "infeasible" if new_res is None else str(new_res.status),
                        "iterations": iters,
                        "time_s": time.perf_counter() - t,
                    }
                )
                return None
            break
        res = new_res
        extra_shed = np.zeros(net.n_bus)
        extra_shed[load_bus] = np.maximum(res.pg_mw[n_g:], 0.0)
        extra_shed[extra_shed < 1e-3] = 0.0
        shed = np.minimum(shed + extra_shed, np.maximum(pd, 0.0))
        pg = np.where(on, res.pg_mw[:n_g], pg0)
        vg = np.where(on, res.vm_pu[net.gen_bus], g.vg_pu)
        qg = np.where(on, res.qg_mvar[:n_g], g.qg_mvar)
        chk = ac_check(
            apply_plan(net, pg, vg, qg, shed),
            opts.rating,
            loading_tolerance_pct=opts.loading_tolerance_pct,
            voltage_tolerance_pu=opts.voltage_tolerance_pu,
        )
        if chk.ok or not extra_shed.any():
            break
    if res is None or chk is None:
        stages.append(
            {"stage": "ac_opf", "status": "time_limit", "time_s": time.perf_counter() - t}
        )
        return None
    move = float(np.sum(mc * (pg - pg0) + w * (pg - pg0) ** 2))
    total = move + float(shed.sum()) * opts.voll_eur_per_mwh
    stages.append(
        {
            "stage": "ac_opf",
            "status": str(res.status),
            "iterations": iters,
            "ac_ok": chk.ok,
            "ac_violations": chk.violations,
            "time_s": time.perf_counter() - t,
        }
    )
    return _Candidate("ac_opf", pg, vg, qg, shed, total, chk, opf=res)


def _unshed(res: Any, n_g: int) -> Any:
    """The primal point of ``res`` (an AC-OPF result), its shedding units (rows from ``n_g``)
    at zero output: the start of the round that has their shedding applied to the loads."""
    from aiguilleur.grid.acopf import ACOPFStart

    pg = np.array(res.pg_mw, dtype=np.float64)
    pg[n_g:] = 0.0
    return ACOPFStart(vm_pu=res.vm_pu, va_deg=res.va_deg, pg_mw=pg, qg_mvar=res.qg_mvar)


def _shedding_buses(net: Network, base: ACCheck, opts: CorrectiveOptions) -> IntArray:
    """Load buses where the AC-OPF may shed: within ``shed_hops`` of a violation.

    Shedding far from every violated element relieves nothing; leaving those
    buses out keeps the AC-OPF small (case1888_rte has over a thousand load
    buses). Where the power flow does not converge, every load bus is a candidate.
    """
    pd = np.asarray(net.bus.pd_mw)
    loads = pd > 0
    if not base.converged or opts.shed_hops < 0:
        return np.flatnonzero(loads).astype(np.int64)
    seed = np.zeros(net.n_bus, dtype=bool)
    rows = np.array([k for k, _ in base.overloads], dtype=np.int64)
    seed[net.branch_from[rows]] = True
    seed[net.branch_to[rows]] = True
    for i, _, _ in (*base.low_voltage, *base.high_voltage):
        seed[i] = True
    on = net.branch.in_service == 1
    f, t = net.branch_from[on], net.branch_to[on]
    near = seed.copy()
    for _ in range(opts.shed_hops):
        grow = near.copy()
        grow[t[near[f]]] = True
        grow[f[near[t]]] = True
        if (grow == near).all():
            break
        near = grow
    return np.flatnonzero(near & loads).astype(np.int64)


def _actions(net: Network, c: _Candidate, opts: CorrectiveOptions) -> tuple[PlanAction, ...]:
    g = net.gen
    out: list[PlanAction] = []
    delta = c.pg - g.pg_mw
    order = np.argsort(-np.abs(delta), kind="stable")
    for k in order.tolist():
        d = float(delta[k])
        if abs(d) < _MOVE_TOL_MW or g.in_service[k] != 1:
            continue
        word = "up" if d > 0 else "down"
        out.append(
            PlanAction(
                "set_dispatch",
                f"gen:{k + 1}",
                float(c.pg[k]),
                float(g.pg_mw[k]),
                math.nan,
                f"gen:{k + 1} at bus {int(g.bus_id[k])} {word} {abs(d):,.1f} MW "
                f"({float(g.pg_mw[k]):,.1f} -> {float(c.pg[k]):,.1f} MW)",
            )
        )
    dv = c.vg - g.vg_pu
    for k in np.flatnonzero((np.abs(dv) > _VOLT_TOL) & (g.in_service == 1)).tolist():
        out.append(
            PlanAction(
                "set_voltage",
                f"gen:{k + 1}",
                float(c.vg[k]),
                float(g.vg_pu[k]),
                0.0,
                f"gen:{k + 1} voltage set-point {float(g.vg_pu[k]):.4f} -> {float(c.vg[k]):.4f} pu",
            )
        )
    # a unit's reactive output is a set-point only where its bus does not regulate voltage
    pq_bus = net.bus.bus_type[net.gen_bus] == 1
    dq = c.qg - g.qg_mvar
    for k in np.flatnonzero(pq_bus & (np.abs(dq) > 0.01) & (g.in_service == 1)).tolist():
        out.append(
            PlanAction(
                "set_reactive",
                f"gen:{k + 1}",
                float(c.qg[k]),
                float(g.qg_mvar[k]),
                0.0,
                f"gen:{k + 1} reactive output {float(g.qg_mvar[k]):,.1f} -> "
                f"{float(c.qg[k]):,.1f} Mvar (its bus does not regulate voltage)",
            )
        )
    for i in np.flatnonzero(c.shed > 1e-3).tolist():
        out.append(
            PlanAction(
                "shed_load",
                f"bus:{int(net.bus.bus_id[i])}",
                float(c.shed[i]),
                0.0,
                float(c.shed[i]) * opts.voll_eur_per_mwh,
                f"shed {float(c.shed[i]):,.1f} MW at bus {int(net.bus.bus_id[i])} "
                f"(of {float(net.bus.pd_mw[i]):,.1f} MW) at {opts.voll_eur_per_mwh:,.0f} EUR/MWh",
            )
        )
    return tuple(out)


def corrective_plan(
    net: Network,
    options: CorrectiveOptions | None = None,
    *,
    warm: Any = None,
    before: ACCheck | None = None,
) -> CorrectivePlan:
    """The cheapest plan found that holds in AC (see the module docstring).

    Parameters
    ----------
    net
        The grid as it stands after the event (outages applied, current dispatch).
    options
        :class:`CorrectiveOptions`.
    warm
        The ``opf`` of an earlier plan on the same grid (same buses, units and
        loads): its primal and dual solution start the AC-OPF (IPOPT warm start).
    before
        The :func:`ac_check` of ``net`` as it stands, held against the options'
        rating and tolerances, when the caller already has it (the responder
        opens every grid analysis with it): the plan then starts from it
        instead of solving the same power flow again.

    Returns
    -------
    CorrectivePlan
        Never raises for an operating point that cannot be fixed: the best plan
        comes back with ``ok`` false and what remains named.
    """
    if not isinstance(net, Network):
        raise ValidationError(f"net: expected a Network, got {type(net).__name__}")
    opts = CorrectiveOptions() if options is None else options
    if not isinstance(opts, CorrectiveOptions):
        raise ValidationError(f"options: expected CorrectiveOptions, got {type(opts).__name__}")
    t0 = time.perf_counter()
    deadline = None if opts.time_limit_s is None else t0 + opts.time_limit_s
    stages: list[dict[str, Any]] = []
    if before is not None:
        if not isinstance(before, ACCheck) or np.shape(before.loading_pct) != (net.n_branch,):
            raise ValidationError("before: expected the ACCheck of this network")
        base = before
    else:
        base = ac_check(
            net,
            opts.rating,
            loading_tolerance_pct=opts.loading_tolerance_pct,
            voltage_tolerance_pu=opts.voltage_tolerance_pu,
        )
    stages.append(
        {
            "stage": "ac_check",
            "ok": base.ok,
            "time_s": time.perf_counter() - t0,
            "reused": before is not None,
        }
    )
    g = net.gen
    none = _Candidate(
        "none",
        np.array(g.pg_mw),
        np.array(g.vg_pu),
        np.array(g.qg_mvar),
        np.zeros(net.n_bus),
        0.0,
        base,
    )
    if base.ok:
        return _finish(net, none, none, opts, stages, t0, "optimal", "no violation: nothing to do")
    cands: list[_Candidate] = [none]
    # One DC plan first (a redispatch and an AC check, a tenth of a second on
    # case1888). It cannot see voltages, but even where it does not hold in AC its
    # power flow is the AC-OPF's primal start: balanced, within the ramp limits,
    # most of the overload removed. From it the crisis's AC-OPFs took 42 to 44
    # iterations where the grid as it stood took 50 to 112. Then the AC-OPF, then
    # the DC plans with AC-corrected limits as the fallback.
    got, limit = _dc_rounds(net, opts, deadline, stages, range(1))
    cands += got
    if not any(c.check.ok for c in cands[1:]) and opts.use_ac_opf:
        dc = [c for c in cands[1:] if c.check.converged]
        c = _ac_opf_stage(net, opts, base, deadline, stages, warm, dc[-1] if dc else None)
        if c is not None:
            cands.append(c)
    if not any(c.check.ok for c in cands[1:]) and limit is not None:
        got, limit = _dc_rounds(net, opts, deadline, stages, range(1, opts.ac_rounds), limit)
        cands += got
    good = [c for c in cands[1:] if c.check.ok]
    if good:
        best = min(good, key=lambda c: c.cost)
        return _finish(net, none, best, opts, stages, t0, "optimal", "")
    best = min(cands, key=lambda c: (c.check.badness(), c.cost))
    late = deadline is not None and time.perf_counter() > deadline
    status = "time_limit" if late else "partial"
    return _finish(net, none, best, opts, stages, t0, status, "no plan found holds in AC")


def _finish(
    net: Network,
    none: _Candidate,
    c: _Candidate,
    opts: CorrectiveOptions,
    stages: list[dict[str, Any]],
    t0: float,
    status: str,
    message: str,
) -> CorrectivePlan:
    remaining = tuple(c.check.describe(net)) if not c.check.ok else ()
    if remaining and c.check.unserved_mw > 1e-6:
        message = (message + "; " if message else "") + (
            "load in islands without generation cannot be served by any redispatch"
        )
    return CorrectivePlan(
        status=status,
        method=c.method,
        pg_mw=_ro(c.pg),
        vg_pu=_ro(c.vg),
        qg_mvar=_ro(c.qg),
        shed_mw=_ro(c.shed),
        actions=_actions(net, c, opts) if c is not none else (),
        cost_eur_per_h=float(c.cost),
        before=none.check,
        after=c.check,
        remaining=remaining,
        stages=tuple(stages),
        time_s=time.perf_counter() - t0,
        message=message,
        opf=c.opf,
    )


def _ro(a: npt.ArrayLike) -> FloatArray:
    arr: FloatArray = np.array(a, dtype=np.float64, copy=True)
    arr.setflags(write=False)
    return arr
