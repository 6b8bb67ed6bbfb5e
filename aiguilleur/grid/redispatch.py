"""Corrective redispatch after an event: the cheapest change of generation that removes overloads.

The operator's question in the minutes after a branch trips or a unit fails:
which generators should move, and by how much, so that no branch stays above
its rating? When no redispatch can do it (ramp limits, no generation on the
right side of the constraint), load is shed at a stated value of lost load.
An operating point is never "infeasible" here: the answer is always a plan,
with the shed load and the overloads that remain if even shedding cannot
remove them, and the reason.

The model is the DC model of :mod:`aiguilleur.grid.dispatch` (B-theta rows,
``"pglib"`` or ``"matpower"`` susceptances), around the current dispatch
``pg0``::

    pg = pg0 + up - down,   0 <= up <= min(Pmax - pg0, ramp),  0 <= down <= min(pg0 - Pmin, ramp)
    balance   Cg (up - down) - B theta + shed = Pd - Cg pg0
    flow      -rate <= b_k (theta_f - theta_t) - s+_k + s-_k <= rate
    cost      sum (mc + up_premium) up + (down_premium - mc) down + VOLL shed + penalty (s+ + s-)

``mc`` is each unit's marginal cost at ``pg0`` (its offer): raising a unit
costs its marginal cost plus the up premium, lowering one saves its marginal
cost minus the down premium. ``ramp`` is what the unit can move in the stated
number of minutes: MATPOWER's ``RAMP_AGC`` (MW/min), ``RAMP_10`` or ``RAMP_30``
columns where the case has them, else a stated share of Pmax per minute.
The overload slacks ``s`` are priced far above the value of lost load, so they
are used only where even shedding cannot help; they are what remains
overloaded.

:class:`Redispatcher` compiles the problem once for a network and a dispatch
and keeps HiGHS's model and the optimal basis of the pre-event state: an event
changes a few coefficients and bounds, is solved warm from that basis, and is
undone, so thousands of events can be evaluated in a row (and the object stays
a pure function of its inputs from the caller's side).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network
from aiguilleur.grid._compile import dc_susceptance, incidence, island_references
from aiguilleur.grid.dispatch import (
    _costs,
    _highs,
    _iterations,
    _number,
    _readonly,
    _status_of,
)
from aiguilleur.grid.network import BUS_ISOLATED, Network

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Outage",
    "RedispatchAction",
    "RedispatchOptions",
    "RedispatchResult",
    "Redispatcher",
    "parse_outage",
    "redispatch",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

RedispatchStatus = Literal["optimal", "overloads_remain", "infeasible", "error"]

# MATPOWER gen columns past the tenth start at PC1 (column 11); RAMP_AGC is column 17.
_RAMP_AGC, _RAMP_10, _RAMP_30 = 6, 7, 8
# an action or a slack below this (MW) is solver noise
_TOL_MW = 1e-4


@dataclass(frozen=True)
class Outage:
    """One element lost in an event: ``kind`` is ``"branch"`` or ``"gen"``, ``row`` 0-based."""

    kind: Literal["branch", "gen"]
    row: int

    def __post_init__(self) -> None:
        if self.kind not in ("branch", "gen"):
            raise ValidationError(f"outage kind: expected 'branch' or 'gen', got {self.kind!r}")
        if isinstance(self.row, bool) or not isinstance(self.row, (int, np.integer)):
            raise ValidationError(f"outage row: expected an integer, got {self.row!r}")
        if self.row < 0:
            raise ValidationError(f"outage row: expected a row index >= 0, got {self.row}")
        object.__setattr__(self, "row", int(self.row))

    @property
    def label(self) -> str:
        """``branch:K`` / ``gen:J`` with the 1-based row of the case file."""
        return f"{self.kind}:{self.row + 1}"


def parse_outage(text: str) -> Outage:
    """Parse ``branch:K`` or ``gen:J`` (1-based rows, in the case file's order)."""
    kind, sep, num = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "generator":
        kind = "gen"
    if not sep or kind not in ("branch", "gen"):
        raise ValidationError(f"outage {text!r}: expected branch:K or gen:J (1-based row numbers)")
    try:
        k = int(num)
    except ValueError:
        raise ValidationError(
            f"outage {text!r}: {num.strip()!r} is not a row number (expected branch:K or gen:J)"
        ) from None
    if k < 1:
        raise ValidationError(f"outage {text!r}: row numbers start at 1")
    return Outage("branch" if kind == "branch" else "gen", k - 1)


@dataclass(frozen=True)
class RedispatchOptions:
    """Settings of a corrective redispatch.

    Parameters
    ----------
    minutes
        Time allowed for the redispatch; each unit moves at most its ramp rate
        times this.
    default_ramp_pct_per_min
        Ramp rate, in % of Pmax per minute, of units whose case gives none
        (PGLib cases give none). 2 %/min is typical of thermal units.
    rating, rating_factor
        Branch rating (``"a"``, ``"b"``, ``"c"``) and a factor on it: the flow
        limit after the event.
    up_premium_eur_per_mwh, down_premium_eur_per_mwh
        Paid on top of the marginal cost for each MW raised, and kept from the
        saving for each MW lowered: they keep units from moving for nothing.
    voll_eur_per_mwh
        Value of lost load: the price of shedding one MWh.
    overload_penalty_eur_per_mwh
        Price of a MW of overload left in place (only used when even shedding
        cannot remove it); far above the value of lost load.
    model
        DC model: ``"pglib"`` (as :func:`aiguilleur.grid.dc_opf`'s default) or ``"matpower"``.
    credit_savings
        True (default, cost-based redispatch): a lowered unit's saved marginal
        cost is credited, so the cost is the true change of generation cost
        plus premiums. From a dispatch that is not economic this also moves
        units for profit, not only for security; with False only the raised
        units (marginal cost plus premium) and the lowered units' premium are
        paid, and units move only to remove overloads.
    time_limit_s
        Solver time limit per event.
    """

    minutes: float = 15.0
    default_ramp_pct_per_min: float = 2.0
    rating: Literal["a", "b", "c"] = "a"
    rating_factor: float = 1.0
    up_premium_eur_per_mwh: float = 5.0
    down_premium_eur_per_mwh: float = 5.0
    voll_eur_per_mwh: float = 10_000.0
    overload_penalty_eur_per_mwh: float = 1_000_000.0
    model: Literal["pglib", "matpower"] = "pglib"
    credit_savings: bool = True
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.credit_savings, bool):
            raise ValidationError(
                f"credit_savings: expected True or False, got {self.credit_savings!r}"
            )
        for name, lo, hi, closed in (
            ("minutes", 0.0, 24 * 60.0, False),
            ("default_ramp_pct_per_min", 0.0, 100.0, True),
            ("rating_factor", 0.0, 10.0, False),
            ("up_premium_eur_per_mwh", 0.0, 1e6, True),
            ("down_premium_eur_per_mwh", 0.0, 1e6, True),
            ("voll_eur_per_mwh", 0.0, 1e7, False),
        ):
            object.__setattr__(
                self, name, _number(name, getattr(self, name), lo, hi, closed=closed)
            )
        pen = _number("overload_penalty_eur_per_mwh", self.overload_penalty_eur_per_mwh, 0, 1e12)
        if pen <= self.voll_eur_per_mwh:
            raise ValidationError(
                "overload_penalty_eur_per_mwh: must exceed voll_eur_per_mwh "
                f"({pen:g} <= {self.voll_eur_per_mwh:g}), or overloads would be kept "
                "rather than load shed"
            )
        object.__setattr__(self, "overload_penalty_eur_per_mwh", pen)
        if self.rating not in ("a", "b", "c"):
            raise ValidationError(f"rating: expected 'a', 'b' or 'c', got {self.rating!r}")
        if self.model not in ("pglib", "matpower"):
            raise ValidationError(f"model: expected 'pglib' or 'matpower', got {self.model!r}")
        if self.time_limit_s is not None:
            t = _number("time_limit_s", self.time_limit_s, 0.0, math.inf)
            object.__setattr__(self, "time_limit_s", t)


@dataclass(frozen=True)
class RedispatchAction:
    """One unit moved by the plan, and the overload it relieves most.

    ``relieves_branch`` is the row of the overloaded branch (after the event,
    before redispatch) whose flow this move reduces most, and
    ``relief_mw`` by how much (DC sensitivity of that flow to this move,
    balanced at the reference bus); -1 and 0 when the move relieves none
    (it balances the others).
    """

    gen: int
    bus_id: int
    delta_mw: float
    pg_before_mw: float
    pg_after_mw: float
    marginal_cost: float
    cost: float
    relieves_branch: int
    relief_mw: float
    tripped_mw: float = 0.0

    @property
    def explanation(self) -> str:
        verb = "raise" if self.delta_mw > 0 else "lower"
        trip = f", {self.tripped_mw:,.1f} MW of it by tripping" if self.tripped_mw > 0 else ""
        text = (
            f"{verb} generator {self.gen + 1} (bus {self.bus_id}) by {abs(self.delta_mw):,.1f} MW "
            f"({self.pg_before_mw:,.1f} -> {self.pg_after_mw:,.1f} MW{trip}, "
            f"{self.cost:+,.0f} /h)"
        )
        if self.relieves_branch >= 0:
            text += f": relieves branch {self.relieves_branch + 1} by {self.relief_mw:,.1f} MW"
        else:
            text += ": balances the other moves"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "gen": self.gen + 1,
            "bus_id": self.bus_id,
            "delta_mw": self.delta_mw,
            "pg_before_mw": self.pg_before_mw,
            "pg_after_mw": self.pg_after_mw,
            "marginal_cost": self.marginal_cost,
            "cost": self.cost,
            "relieves_branch": self.relieves_branch + 1 if self.relieves_branch >= 0 else None,
            "relief_mw": self.relief_mw,
            "tripped_mw": self.tripped_mw,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class RedispatchResult:
    """A corrective plan: new dispatch, shed load, flows and what remains.

    Attributes
    ----------
    status
        ``"optimal"`` (every overload removed, by redispatch and, where it
        could not, by shedding), ``"overloads_remain"`` (even shedding cannot
        remove them: ``remaining_overloads`` names them), ``"infeasible"``
        (the balance itself cannot be met, e.g. generation that cannot go
        down far enough in an island) or ``"error"``.
    reason
        One sentence on why load was shed or overloads remain ('' when
        neither).
    redispatch_cost
        Cost of the moves in $/h (or the case's currency): raised units at
        marginal cost plus premium, minus lowered units' savings net of
        premium (plus their premium only, with ``credit_savings=False``);
        excludes the shed load.
    shed_cost
        Shed load at the value of lost load, per hour.
    pg_mw
        Dispatch after the plan (0 for lost units).
    shed_mw
        Load shed per bus.
    flow_mw
        DC flows after the plan (0 for lost branches).
    flow_before_mw
        DC flows after the event, before the plan (the lost generation taken
        up by the reference bus of its island).
    overloads_before
        Branch rows above their limit after the event, before the plan.
    remaining_overloads
        Branch rows still above their limit after the plan.
    actions
        The units moved, largest move first, each with its explanation.
    lmp
        Prices after the event with the plan (dual of the balance rows).
    """

    status: RedispatchStatus
    reason: str
    outages: tuple[Outage, ...]
    redispatch_cost: float
    shed_cost: float
    pg_mw: FloatArray
    pg_before_mw: FloatArray
    shed_mw: FloatArray
    flow_mw: FloatArray
    flow_before_mw: FloatArray
    limit_mw: FloatArray
    overloads_before: IntArray
    remaining_overloads: IntArray
    actions: tuple[RedispatchAction, ...]
    lmp: FloatArray
    bus_id: IntArray
    time_s: float
    solver_time_s: float
    iterations: int
    message: str

    @property
    def ok(self) -> bool:
        """True when the plan removes every overload and serves every load (no shedding)."""
        return self.status == "optimal" and self.total_shed_mw <= _TOL_MW

    @property
    def total_shed_mw(self) -> float:
        return float(np.sum(self.shed_mw))

    @property
    def moved_mw(self) -> float:
        """Total MW moved up (equal to the MW moved down plus lost generation not shed)."""
        return float(sum(a.delta_mw for a in self.actions if a.delta_mw > 0))

    def to_frame(self, component: str = "action") -> pd.DataFrame:
        """``action`` (one row per move), ``bus`` (shed and prices) or ``branch`` views."""
        import pandas as pd

        if component == "action":
            cols = [
                "gen",
                "bus_id",
                "delta_mw",
                "pg_before_mw",
                "pg_after_mw",
                "marginal_cost",
                "cost",
                "relieves_branch",
                "relief_mw",
                "tripped_mw",
                "explanation",
            ]
            return pd.DataFrame([a.to_dict() for a in self.actions], columns=cols)
        if component == "bus":
            return pd.DataFrame(
                {
                    "bus_id": np.array(self.bus_id),
                    "shed_mw": np.array(self.shed_mw),
                    "lmp": np.array(self.lmp),
                }
            )
        if component == "branch":
            with np.errstate(divide="ignore", invalid="ignore"):
                before = 100 * np.abs(self.flow_before_mw) / self.limit_mw
                after = 100 * np.abs(self.flow_mw) / self.limit_mw
            return pd.DataFrame(
                {
                    "flow_before_mw": np.array(self.flow_before_mw),
                    "flow_mw": np.array(self.flow_mw),
                    "limit_mw": np.array(self.limit_mw),
                    "loading_before_pct": before,
                    "loading_pct": after,
                }
            )
        raise ValidationError(f"unknown component {component!r}: expected action, bus or branch")

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` contract (1-based rows)."""
        shed = np.flatnonzero(self.shed_mw > _TOL_MW)
        return {
            "status": self.status,
            "ok": self.ok,
            "reason": self.reason,
            "outages": [o.label for o in self.outages],
            "redispatch_cost": self.redispatch_cost,
            "shed_cost": self.shed_cost,
            "shed_mw": self.total_shed_mw,
            "shed_by_bus": [
                {"bus_id": int(self.bus_id[i]), "shed_mw": float(self.shed_mw[i])} for i in shed
            ],
            "actions": [a.to_dict() for a in self.actions],
            "overloads_before": [int(k) + 1 for k in self.overloads_before],
            "remaining_overloads": [int(k) + 1 for k in self.remaining_overloads],
            "time_s": self.time_s,
        }


def _ramp_mw(net: Network, gens: IntArray, opts: RedispatchOptions) -> FloatArray:
    """What each unit can move in ``opts.minutes``."""
    g = net.gen
    t = opts.minutes
    default = opts.default_ramp_pct_per_min / 100.0 * np.abs(g.pmax_mw[gens]) * t
    extra = g.extra
    if extra.ndim != 2 or extra.shape[1] <= _RAMP_AGC:
        return default
    ramp = default.copy()
    agc = extra[gens, _RAMP_AGC] if extra.shape[1] > _RAMP_AGC else np.zeros(gens.size)
    r10 = extra[gens, _RAMP_10] if extra.shape[1] > _RAMP_10 else np.zeros(gens.size)
    r30 = extra[gens, _RAMP_30] if extra.shape[1] > _RAMP_30 else np.zeros(gens.size)
    ramp = np.where(r30 > 0, r30 * t / 30.0, ramp)
    ramp = np.where(r10 > 0, r10 * t / 10.0, ramp)
    ramp = np.where(agc > 0, agc * t, ramp)
    return np.asarray(ramp, dtype=np.float64)


def _marginal_costs(net: Network, gens: IntArray, pg0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Marginal cost of each unit at ``pg0``, upwards and downwards ($/MWh)."""
    c = _costs(net, gens)
    up = 2.0 * c.c2 * pg0 + c.c1
    down = up.copy()
    if c.pwl.size:
        x = pg0[c.pwl][c.seg_gen]
        val = c.seg_icpt + c.seg_slope * x
        best = np.full(c.pwl.size, -np.inf)
        np.maximum.at(best, c.seg_gen, val)
        active = val >= best[c.seg_gen] - 1e-9 * np.maximum(1.0, np.abs(best[c.seg_gen]))
        hi = np.full(c.pwl.size, -np.inf)
        lo = np.full(c.pwl.size, np.inf)
        np.maximum.at(hi, c.seg_gen[active], c.seg_slope[active])
        np.minimum.at(lo, c.seg_gen[active], c.seg_slope[active])
        up[c.pwl] = hi
        down[c.pwl] = lo
    return up, down


class Redispatcher:
    """Corrective redispatch of one network around one dispatch, compiled once.

    Parameters
    ----------
    net
        The network before the event (its in-service flags define the
        pre-event topology).
    pg_mw
        The current dispatch, one value per generator row (ignored for units
        out of service); defaults to the case's ``pg_mw``.
    options
        :class:`RedispatchOptions`.
    limit_mw
        Active-power limit of each branch, replacing ``rating x rating_factor``
        (e.g. ``sqrt(S^2 - Q^2)`` from an AC check, so that the DC plan leaves
        room for the reactive flow); ``inf`` where unlimited.

    Notes
    -----
    Call :meth:`solve` with the outages of each event. Internally one HiGHS
    model is kept and modified for the event, then restored; the pre-event
    optimal basis is the warm start of every event. Not thread-safe: use one
    instance per thread or process.
    """

    def __init__(
        self,
        net: Network,
        pg_mw: npt.ArrayLike | None = None,
        options: RedispatchOptions | None = None,
        *,
        limit_mw: npt.ArrayLike | None = None,
    ) -> None:
        t0 = time.perf_counter()
        check_network(net, "Redispatcher", solve=True)
        opts = RedispatchOptions() if options is None else options
        if not isinstance(opts, RedispatchOptions):
            raise ValidationError(f"options: expected RedispatchOptions, got {type(opts).__name__}")
        self.net = net
        self.options = opts
        base = net.base_mva
        nb, nl = net.n_bus, net.n_branch
        br = net.branch
        f, t = net.branch_from, net.branch_to
        try:
            pg_all = np.array(net.gen.pg_mw if pg_mw is None else pg_mw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError(
                f"Redispatcher: pg_mw must be {net.n_gen} numbers (MW, one per generator row), "
                f"got {type(pg_mw).__name__}"
            ) from None
        if pg_all.shape != (net.n_gen,):
            raise ValidationError(
                f"pg_mw: expected {net.n_gen} values (one per generator row), got "
                f"{pg_all.shape[0] if pg_all.ndim == 1 else pg_all.shape}"
            )
        if not np.all(np.isfinite(pg_all)):
            i = int(np.flatnonzero(~np.isfinite(pg_all))[0])
            raise ValidationError(f"pg_mw: generator {i + 1} has no finite output", "gen", i)

        bus_on = net.bus.bus_type != BUS_ISOLATED
        br_on = (br.in_service == 1) & bus_on[f] & bus_on[t]
        gen_on = (net.gen.in_service == 1) & bus_on[net.gen_bus]
        gens = np.flatnonzero(gen_on).astype(np.int64)
        ng = gens.size
        pg0 = pg_all[gens]
        pmin, pmax = net.gen.pmin_mw[gens], net.gen.pmax_mw[gens]
        ramp = _ramp_mw(net, gens, opts)
        up_max = np.clip(np.minimum(pmax - pg0, ramp), 0.0, None)
        down_max = np.clip(np.minimum(pg0 - pmin, ramp), 0.0, None)
        mc_up, mc_down = _marginal_costs(net, gens, pg0)
        credit = mc_down if opts.credit_savings else np.zeros(ng)

        if opts.model == "pglib":
            b = np.where(br_on, br.x_pu / (br.r_pu**2 + br.x_pu**2), 0.0)
            pfinj = np.zeros(nl)
        else:
            b = dc_susceptance(net, br_on)
            pfinj = -b * np.deg2rad(br.shift_deg)
        inc = incidence(net)
        bbus = (inc.T @ sp.diags(b) @ inc).tocsc()
        bbus.sort_indices()

        demand = np.where(bus_on, (net.bus.pd_mw + net.bus.gs_mw) / base, 0.0)
        shed_bus = np.flatnonzero(bus_on & (demand > 0)).astype(np.int64)
        ns = shed_bus.size
        rate = br.rating_mva(opts.rating) * opts.rating_factor
        if limit_mw is not None:
            # active-power limits from the caller (e.g. the rating less an AC check's
            # reactive flow): inf or 0 where a branch is unlimited
            try:
                lim_in = np.asarray(limit_mw, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"limit_mw: expected {nl} non-negative values (one per branch row)"
                ) from None
            if lim_in.shape != (nl,) or np.any(np.isnan(lim_in)) or np.any(lim_in < 0):
                raise ValidationError(
                    f"limit_mw: expected {nl} non-negative values (one per branch row)"
                )
            rate = np.where(np.isfinite(lim_in), lim_in, 0.0)
        limit = np.where(rate > 0, rate, np.inf)
        flow_br = np.flatnonzero(br_on & (rate > 0) & (b != 0)).astype(np.int64)
        nf = flow_br.size

        # columns: theta | up | down | trip | shed | s+ | s-
        c_up, c_dn, c_tr = nb, nb + ng, nb + 2 * ng
        c_sh, c_sp = nb + 3 * ng, nb + 3 * ng + ns
        c_sm = c_sp + nf
        n_col = c_sm + nf
        cg = sp.csr_matrix((np.ones(ng), (net.gen_bus[gens], np.arange(ng))), shape=(nb, ng))
        cs = sp.csr_matrix((np.ones(ns), (shed_bus, np.arange(ns))), shape=(nb, ns))
        balance = sp.hstack([-bbus, cg, -cg, -cg, cs, sp.csr_matrix((nb, 2 * nf))])
        k_rows = (sp.diags(b[flow_br]) @ inc[flow_br]).tocsr()
        eye = sp.identity(nf, format="csr")
        flow_rows = sp.hstack([k_rows, sp.csr_matrix((nf, 3 * ng + ns)), -eye, eye])
        a = sp.vstack([balance, flow_rows], format="csc")
        a.sort_indices()
        rhs = demand + inc.T @ pfinj - cg @ (pg0 / base)
        rhs = np.where(bus_on, rhs, 0.0)
        row_lo = np.concatenate([rhs, -limit[flow_br] / base - pfinj[flow_br]])
        row_hi = np.concatenate([rhs, limit[flow_br] / base - pfinj[flow_br]])

        _, ref_of_bus = island_references(net, br_on, gen_on)
        col_lo = np.concatenate([np.full(nb, -np.inf), np.zeros(3 * ng + ns + 2 * nf)])
        col_hi = np.concatenate(
            [
                np.full(nb, np.inf),
                up_max / base,
                down_max / base,
                np.clip(pg0 - down_max, 0.0, None) / base,
                demand[shed_bus],
                np.full(2 * nf, np.inf),
            ]
        )
        refs = np.unique(ref_of_bus[ref_of_bus >= 0])
        col_lo[refs] = col_hi[refs] = 0.0
        iso = np.flatnonzero(~bus_on)
        col_lo[iso] = col_hi[iso] = 0.0
        cost = np.concatenate(
            [
                np.zeros(nb),
                (mc_up + opts.up_premium_eur_per_mwh) * base,
                (opts.down_premium_eur_per_mwh - credit) * base,
                np.full(ng, opts.voll_eur_per_mwh * base),
                np.full(ns, opts.voll_eur_per_mwh * base),
                np.full(2 * nf, opts.overload_penalty_eur_per_mwh * base),
            ]
        )
        self._base, self._nb, self._ng, self._ns, self._nf = base, nb, ng, ns, nf
        self._cols = (c_up, c_dn, c_tr, c_sh, c_sp, c_sm)
        self._gens, self._pg0, self._pg_all = gens, pg0, pg_all
        self._gen_pos = np.full(net.n_gen, -1, dtype=np.int64)
        self._gen_pos[gens] = np.arange(ng)
        self._mc_up, self._mc_down, self._credit = mc_up, mc_down, credit
        self._b, self._pfinj, self._inc, self._bbus = b, pfinj, inc, bbus
        self._demand, self._shed_bus = demand, shed_bus
        self._limit, self._flow_br = limit, flow_br
        self._flow_row = np.full(nl, -1, dtype=np.int64)
        self._flow_row[flow_br] = nb + np.arange(nf)
        self._br_on, self._gen_on, self._bus_on = br_on, gen_on, bus_on
        self._col_lo, self._col_hi, self._row_lo, self._row_hi = col_lo, col_hi, row_lo, row_hi

        import highspy

        h = _highs_for(opts)
        st = h.passModel(
            n_col,
            a.shape[0],
            int(a.nnz),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            cost,
            col_lo,
            col_hi,
            row_lo,
            row_hi,
            a.indptr.astype(np.int32),
            a.indices.astype(np.int32),
            a.data.astype(np.float64),
            np.zeros(n_col, dtype=np.int32),
        )
        if st == highspy.HighsStatus.kError:
            raise ValidationError("HiGHS rejected the redispatch model")
        h.run()
        status, _ = _status_of(h)
        self._h = h
        self._base_status = status
        self._base_basis = h.getBasis() if status == "optimal" else None
        self.compile_time_s = time.perf_counter() - t0

    # -- events ------------------------------------------------------------------------

    def solve(self, outages: Iterable[Outage] = ()) -> RedispatchResult:
        """The corrective plan after ``outages`` (none: relieve pre-event overloads)."""
        t0 = time.perf_counter()
        if isinstance(outages, Outage):
            outages = (outages,)
        elif isinstance(outages, (str, bytes)) or not isinstance(outages, Iterable):
            raise ValidationError("Redispatcher.solve: outages must be a list of Outage values")
        outs = tuple(outages)
        net = self.net
        for o in outs:
            if not isinstance(o, Outage):
                raise ValidationError(f"outages: expected Outage values, got {o!r}")
            n = net.n_branch if o.kind == "branch" else net.n_gen
            if o.row >= n:
                what = "branches" if o.kind == "branch" else "generators"
                raise ValidationError(f"outage {o.label}: the case has {n} {what}")
        br_out = np.unique([o.row for o in outs if o.kind == "branch"]).astype(np.int64)
        br_out = br_out[self._br_on[br_out]]
        gen_out = np.unique([o.row for o in outs if o.kind == "gen"]).astype(np.int64)
        gen_out = gen_out[self._gen_on[gen_out]]

        h = self._h
        undo = self._apply(br_out, gen_out)
        try:
            if self._base_basis is not None:
                h.setBasis(self._base_basis)
            t1 = time.perf_counter()
            h.run()
            solver_time = time.perf_counter() - t1
            status, text = _status_of(h)
            iters = _iterations(h)
            if status is None:
                status, text = "infeasible", text
            sol = h.getSolution() if status == "optimal" else None
            x = np.asarray(sol.col_value) if sol is not None else None
            y = np.asarray(sol.row_dual) if sol is not None else None
        finally:
            undo()
        return self._result(outs, br_out, gen_out, status, text, x, y, t0, solver_time, iters)

    def _apply(self, br_out: IntArray, gen_out: IntArray) -> Any:
        """Change the model for the event; returns the function that undoes it."""
        h = self._h
        net = self.net
        f, t = net.branch_from, net.branch_to
        changes: list[tuple[int, int, float]] = []  # (row, col, old value)
        bounds_rows: list[int] = []
        bounds_cols: list[int] = []
        # summed per matrix entry: parallel lost branches touch the same entries
        delta: dict[tuple[int, int], float] = {}
        for k in br_out:
            bk = float(self._b[k])
            i, j = int(f[k]), int(t[k])
            for key, d in (((i, i), bk), ((j, j), bk), ((i, j), -bk), ((j, i), -bk)):
                delta[key] = delta.get(key, 0.0) + d
        for (r, c), d in delta.items():
            old = -float(self._bbus[r, c])
            h.changeCoeff(r, c, old + d)
            changes.append((r, c, old))
        rhs_change = np.zeros(self._nb)
        for k in br_out:
            if self._pfinj[k] != 0.0:
                rhs_change[f[k]] -= self._pfinj[k]
                rhs_change[t[k]] += self._pfinj[k]
            row = int(self._flow_row[k])
            if row >= 0:
                h.changeRowBounds(row, -np.inf, np.inf)
                bounds_rows.append(row)
        for bus in np.flatnonzero(rhs_change).tolist():
            v = float(self._row_lo[bus] + rhs_change[bus])
            h.changeRowBounds(bus, v, v)
            bounds_rows.append(bus)
        c_up, c_dn, c_tr = self._cols[:3]
        for j in gen_out:
            p = int(self._gen_pos[j])
            lost = self._pg0[p] / self._base
            h.changeColBounds(c_up + p, 0.0, 0.0)
            h.changeColBounds(c_dn + p, lost, lost)
            h.changeColBounds(c_tr + p, 0.0, 0.0)
            bounds_cols.extend((c_up + p, c_dn + p, c_tr + p))

        def undo() -> None:
            for r, c, old in changes:
                h.changeCoeff(r, c, old)
            for r in bounds_rows:
                h.changeRowBounds(r, self._row_lo[r], self._row_hi[r])
            for c in bounds_cols:
                h.changeColBounds(c, self._col_lo[c], self._col_hi[c])

        return undo

    # -- the answer ------------------------------------------------------------------

    def _post_event(self, br_out: IntArray, gen_out: IntArray) -> tuple[Any, IntArray, BoolArray]:
        """Factorised reduced B of the post-event network, its free buses, branch mask."""
        net = self.net
        br_on = self._br_on.copy()
        br_on[br_out] = False
        gen_on = self._gen_on.copy()
        gen_on[gen_out] = False
        _, ref_of_bus = island_references(net, br_on, gen_on)
        b = np.where(br_on, self._b, 0.0)
        bbus = (self._inc.T @ sp.diags(b) @ self._inc).tocsc()
        free = np.flatnonzero(self._bus_on & (ref_of_bus >= 0))
        free = np.setdiff1d(free, np.unique(ref_of_bus[ref_of_bus >= 0]))
        lu = spla.splu(bbus[free][:, free].tocsc(), permc_spec="COLAMD") if free.size else None
        return lu, free, br_on

    def _result(
        self,
        outs: tuple[Outage, ...],
        br_out: IntArray,
        gen_out: IntArray,
        status: str,
        text: str,
        x: FloatArray | None,
        y: FloatArray | None,
        t0: float,
        solver_time: float,
        iters: int,
    ) -> RedispatchResult:
        net = self.net
        base, nb, ng = self._base, self._nb, self._ng
        c_up, c_dn, c_tr, c_sh, c_sp, c_sm = self._cols
        f, t = net.branch_from, net.branch_to
        nl = net.n_branch

        # flows after the event, before the plan: lost generation to the island's reference
        lu, free, br_on = self._post_event(br_out, gen_out)
        pg_before = self._pg_all * self._gen_on
        pg_before[gen_out] = 0.0
        inj = np.zeros(nb)
        np.add.at(inj, net.gen_bus, pg_before / base)
        inj -= self._demand
        inj += self._inc.T @ np.where(br_on, self._pfinj, 0.0)
        theta0 = np.zeros(nb)
        if lu is not None:
            theta0[free] = lu.solve(inj[free])
        b_on = np.where(br_on, self._b, 0.0)
        pf_on = np.where(br_on, self._pfinj, 0.0)
        flow_before = (b_on * (theta0[f] - theta0[t]) + pf_on) * base
        tol = 1e-6 * np.maximum(1.0, self._limit)
        over_before = np.flatnonzero(np.abs(flow_before) > self._limit + tol).astype(np.int64)

        empty_b = np.full(nb, np.nan)
        if status != "optimal" or x is None or y is None:
            reason = (
                "the power balance cannot be met even with every load shed: generation "
                "cannot come down far enough (minimum outputs, ramp limits)"
                if status == "infeasible"
                else f"the solver failed: {text}"
            )
            return RedispatchResult(
                status="infeasible" if status == "infeasible" else "error",
                reason=reason,
                outages=outs,
                redispatch_cost=math.nan,
                shed_cost=math.nan,
                pg_mw=_readonly(np.full(net.n_gen, np.nan)),
                pg_before_mw=_readonly(pg_before),
                shed_mw=_readonly(empty_b),
                flow_mw=_readonly(np.full(nl, np.nan)),
                flow_before_mw=_readonly(flow_before),
                limit_mw=_readonly(self._limit),
                overloads_before=_readonly(over_before, np.int64),
                remaining_overloads=_readonly(np.zeros(0), np.int64),
                actions=(),
                lmp=_readonly(empty_b),
                bus_id=_readonly(net.bus.bus_id, np.int64),
                time_s=time.perf_counter() - t0,
                solver_time_s=solver_time,
                iterations=iters,
                message=text,
            )

        theta = x[:nb]
        up = x[c_up : c_up + ng] * base
        dn = x[c_dn : c_dn + ng] * base
        trip = x[c_tr : c_tr + ng] * base
        trip[trip < _TOL_MW] = 0.0
        forced = np.zeros(ng, dtype=bool)
        forced[self._gen_pos[gen_out]] = True
        delta = np.where(forced, 0.0, up - dn - trip)
        delta[np.abs(delta) < _TOL_MW] = 0.0
        pg_after = np.zeros(net.n_gen)
        pg_after[self._gens] = np.where(forced, 0.0, self._pg0 + delta)
        shed = np.zeros(nb)
        shed[self._shed_bus] = x[c_sh : c_sh + self._ns] * base
        shed[shed < _TOL_MW] = 0.0
        slack = (x[c_sp : c_sp + self._nf] + x[c_sm : c_sm + self._nf]) * base
        remaining = self._flow_br[slack > 1e-3].astype(np.int64)
        flow = (b_on * (theta[f] - theta[t]) + pf_on) * base

        mc = np.where(delta > 0, self._mc_up, self._mc_down)
        prem = np.where(
            delta > 0, self.options.up_premium_eur_per_mwh, self.options.down_premium_eur_per_mwh
        )
        ramped = np.where(forced, 0.0, up - dn)
        credit = np.where(ramped > 0, mc, self._credit)
        move_cost = np.where(ramped > 0, ramped * (mc + prem), ramped * (credit - prem))
        redispatch_cost = float(np.sum(move_cost[~forced]))
        tripped = float(np.sum(trip[~forced]))
        shed_cost = (float(np.sum(shed)) + tripped) * self.options.voll_eur_per_mwh

        actions = self._explain(
            delta,
            mc,
            move_cost + trip * self.options.voll_eur_per_mwh,
            lu,
            free,
            flow_before,
            over_before,
            np.where(forced, 0.0, trip),
        )
        lmp = np.where(self._bus_on, y[:nb] / base, np.nan)
        total_shed = float(np.sum(shed))
        if remaining.size:
            st: RedispatchStatus = "overloads_remain"
            reason = (
                f"{remaining.size} branch(es) stay overloaded: no redispatch within "
                f"{self.options.minutes:g} min and no load shedding can relieve them"
            )
        else:
            st = "optimal"
            reasons = []
            if total_shed > _TOL_MW:
                reasons.append(
                    f"{total_shed:,.1f} MW shed: redispatch alone (ramp limits over "
                    f"{self.options.minutes:g} min, unit limits) cannot remove every overload "
                    "or serve every load"
                )
            if tripped > _TOL_MW:
                reasons.append(
                    f"{tripped:,.1f} MW of generation tripped: ramping down within "
                    f"{self.options.minutes:g} min is not enough (to relieve an overload, or to "
                    "balance what the event cut off)"
                )
            reason = "; ".join(reasons)
        return RedispatchResult(
            status=st,
            reason=reason,
            outages=outs,
            redispatch_cost=redispatch_cost,
            shed_cost=shed_cost,
            pg_mw=_readonly(pg_after),
            pg_before_mw=_readonly(pg_before),
            shed_mw=_readonly(shed),
            flow_mw=_readonly(flow),
            flow_before_mw=_readonly(flow_before),
            limit_mw=_readonly(self._limit),
            overloads_before=_readonly(over_before, np.int64),
            remaining_overloads=_readonly(remaining, np.int64),
            actions=actions,
            lmp=_readonly(lmp),
            bus_id=_readonly(net.bus.bus_id, np.int64),
            time_s=time.perf_counter() - t0,
            solver_time_s=solver_time,
            iterations=iters,
            message=text,
        )

    def _explain(
        self,
        delta: FloatArray,
        mc: FloatArray,
        move_cost: FloatArray,
        lu: Any,
        free: IntArray,
        flow_before: FloatArray,
        over: IntArray,
        trip: FloatArray,
    ) -> tuple[RedispatchAction, ...]:
        net = self.net
        moved = np.flatnonzero(delta != 0.0)
        if moved.size == 0:
            return ()
        moved = moved[np.argsort(-np.abs(delta[moved]), kind="stable")]
        rows = self._gens[moved]
        relieves = np.full(moved.size, -1, dtype=np.int64)
        relief = np.zeros(moved.size)
        if over.size and lu is not None:
            # flow change on each overloaded branch from each move, balanced at the reference
            e = np.zeros((self._nb, moved.size))
            e[net.gen_bus[rows], np.arange(moved.size)] = delta[moved] / self._base
            th = np.zeros_like(e)
            th[free] = lu.solve(np.ascontiguousarray(e[free]))
            f, t = net.branch_from[over], net.branch_to[over]
            dflow = self._b[over][:, None] * (th[f] - th[t]) * self._base  # (over, moved)
            # relief: reduction of |flow| on the overloaded branch
            gain = -np.sign(flow_before[over])[:, None] * dflow
            best = np.argmax(gain, axis=0)
            val = gain[best, np.arange(moved.size)]
            ok = val > 0.05  # MW: smaller reliefs are not worth naming
            relieves[ok] = over[best[ok]]
            relief[ok] = val[ok]
        out = []
        for k, (p, g) in enumerate(zip(moved, rows, strict=True)):
            out.append(
                RedispatchAction(
                    gen=int(g),
                    bus_id=int(net.gen.bus_id[g]),
                    delta_mw=float(delta[p]),
                    pg_before_mw=float(self._pg0[p]),
                    pg_after_mw=_clean_zero(float(self._pg0[p] + delta[p])),
                    marginal_cost=float(mc[p]),
                    cost=float(move_cost[p]),
                    relieves_branch=int(relieves[k]),
                    relief_mw=float(relief[k]),
                    tripped_mw=float(trip[p]),
                )
            )
        return tuple(out)


def _clean_zero(v: float) -> float:
    return 0.0 if abs(v) < 1e-6 else v


def _highs_for(opts: RedispatchOptions) -> Any:
    from aiguilleur.grid.dispatch import DCOPFOptions

    h = _highs(DCOPFOptions(time_limit_s=opts.time_limit_s))
    # events change a few coefficients: a warm dual simplex from the pre-event basis
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("simplex_strategy", 1)
    h.setOptionValue("presolve", "off")
    return h


def redispatch(
    net: Network,
    outages: Sequence[Outage] | Outage,
    pg_mw: npt.ArrayLike | None = None,
    options: RedispatchOptions | None = None,
) -> RedispatchResult:
    """The cheapest corrective plan after ``outages``, from the dispatch ``pg_mw``.

    A one-shot :class:`Redispatcher`; compile one yourself to evaluate many
    events on the same network and dispatch.

    Parameters
    ----------
    net
        The network before the event.
    outages
        The branches and generators lost (several at once allowed).
    pg_mw
        The current dispatch per generator row (default: the case's ``pg_mw``).
    options
        :class:`RedispatchOptions`.

    Returns
    -------
    RedispatchResult
        Never raises for an operating point that cannot be secured: the plan
        sheds load at the value of lost load, or lists the overloads that
        remain, and says why.
    """
    check_network(net, "redispatch", solve=True)
    if isinstance(outages, Outage):
        outs: tuple[Outage, ...] = (outages,)
    elif isinstance(outages, (str, bytes)) or not isinstance(outages, Iterable):
        raise ValidationError(
            f"redispatch: outages must be an Outage or a list of them (parse_outage('branch:3')), "
            f"got {outages!r}"[:200]
        )
    else:
        outs = tuple(outages)
    return Redispatcher(net, pg_mw, options).solve(outs)
