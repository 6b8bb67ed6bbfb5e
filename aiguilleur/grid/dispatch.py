"""DC optimal power flow (economic dispatch with a network) and locational prices.

One snapshot, B-theta formulation, assembled directly as sparse matrices and
solved with HiGHS through ``highspy``.

Variables (per unit of the system base for power, radians for angles)::

    theta  bus voltage angles (one reference bus per island fixed at 0)
    pg     output of each generator in service, Pmin <= pg <= Pmax
    shed   load shed at each bus with demand (only with a value of lost load)
    t      cost epigraphs of the piecewise-linear and the quadratic cost terms

Rows::

    balance   sum(pg at i) - (B theta)_i + shed_i = Pd_i + Gs_i   (dual: LMP)
    flow      -rate <= b_k (theta_f - theta_t) <= rate            (rated branches)
    angle     angmin <= theta_f - theta_t <= angmax                (where not implied)
    epigraph  t_g >= c_j + s_j pg_g  (segments, or tangents of a_g pg_g^2)

Two DC models are offered. ``"pglib"`` (the default) is PowerModels' DC model,
the one behind PGLib-OPF's DC reference values: series susceptance
``x / (r^2 + x^2)`` (``-imag(1 / (r + jx))``, resistance kept), tap ratios and
phase shifts ignored, and PowerModels' data correction of angle-difference
limits (a limit at or beyond +-90 degrees, or both limits at 0, becomes +-60
degrees). ``"matpower"`` is MATPOWER's ``rundcopf``: susceptance
``1 / (x * tap)``, phase shifters as fixed injections, angle limits where they
are non-zero and tighter than +-360 degrees. Both count bus shunt conductance
``Gs`` as load at 1 pu voltage.

Quadratic costs. Most PGLib cost rows have ``c2 = 0``; when every quadratic
term is zero the problem is a plain LP (dual simplex). For true quadratics,
HiGHS's active-set QP solver (the only QP solver of HiGHS 1.16) is not
robust on this problem, in MW or in per unit: with the free angle columns and
the nodal equality rows it stops "optimal" with balance rows violated by up to
0.2 pu on case73_ieee_rts, case793_goc and case2742_goc (model status "Solve
error"), and cycles for more than 100,000 iterations on case3022_goc once the
angles are bounded loosely. Scaling, dropping zero Hessian entries (HiGHS pads
the diagonal with zeros itself) and bounding the angles by what the branch
limits imply help some cases and not others. So by default quadratic terms go
through an exact outer approximation: tangents of ``a pg^2`` are added at each
LP's outputs (and at the output the local price calls for) until every output
lies on a tangent, each re-solve a warm-started dual simplex; objective and
prices are then those of the QP to 1e-6 pu of output. HiGHS's QP solver stays
available as ``DCOPFOptions(quadratic="highs_qp")``. Costs are per unit
(scaled by the base and its square, as PowerModels does).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from aiguilleur.errors import SolverError, ValidationError
from aiguilleur.grid._checks import check_network, check_options
from aiguilleur.grid._compile import dc_susceptance, incidence, island_references
from aiguilleur.grid.network import BUS_ISOLATED, Network

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DCOPFOptions", "DCOPFResult", "dc_opf"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Status = Literal["optimal", "infeasible", "unbounded", "error"]
_INF = math.inf
# PowerModels' replacement for angle-difference limits outside (-90, 90) degrees.
_PM_ANGLE_PAD_RAD = 1.0472


def _number(name: str, value: object, lo: float, hi: float, *, closed: bool = False) -> float:
    """``value`` as a float in ``(lo, hi)`` (``[lo, hi)`` when ``closed``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not ((lo <= v if closed else lo < v) and v < hi):
        span = f"{'[' if closed else '('}{lo:g}, {hi:g})"
        raise ValidationError(f"{name}: expected a number in {span}, got {value!r}")
    return v


@dataclass(frozen=True)
class DCOPFOptions:
    """Settings of a DC optimal power flow.

    Parameters
    ----------
    model
        ``"pglib"`` (default): PowerModels' DC model as PGLib-OPF's reference
        values use it (susceptance ``x / (r^2 + x^2)``, taps and phase shifts
        ignored, angle limits corrected as PowerModels does).
        ``"matpower"``: MATPOWER's DC model (susceptance ``1 / (x * tap)``,
        phase-shift injections).
    rating
        Branch rating used as the flow limit: ``"a"`` (long term), ``"b"`` or
        ``"c"`` (emergency). A rating of 0 means unlimited.
    enforce_angle_limits
        Add the branches' angle-difference limits as rows.
    voll_eur_per_mwh
        Value of lost load, in the cost currency of the case per MWh. When
        set, load may be shed at that price, so that the problem always has a
        solution; infeasibility then shows as ``shed_mw``. ``None`` (default):
        no shedding, an infeasible problem is reported as ``"infeasible"``.
    primal_feasibility_tolerance, dual_feasibility_tolerance
        HiGHS tolerances, per unit of the system base.
    time_limit_s
        Wall-clock limit of the solver, all LP solves together; ``None`` for
        none. When it runs out the status is ``"error"``.
    solver
        HiGHS's ``solver`` option for linear programmes (``"choose"``,
        ``"simplex"`` or ``"ipm"``).
    quadratic
        How quadratic costs are handled. ``"tangent_cuts"`` (default): an
        outer approximation refined until every output lies on a tangent
        (warm-started dual simplex; exact to 1e-6 pu of output, the QP's
        objective and prices). ``"highs_qp"``: HiGHS's active-set QP solver,
        with the free angle columns bounded by the limits they already imply;
        faster where it works, but it ends in ``"error"`` on some PGLib cases
        (case200_activ, case793_goc, case2742_goc).
    """

    model: Literal["pglib", "matpower"] = "pglib"
    rating: Literal["a", "b", "c"] = "a"
    enforce_angle_limits: bool = True
    voll_eur_per_mwh: float | None = None
    primal_feasibility_tolerance: float = 1e-7
    dual_feasibility_tolerance: float = 1e-7
    time_limit_s: float | None = None
    solver: Literal["choose", "simplex", "ipm"] = "choose"
    quadratic: Literal["tangent_cuts", "highs_qp"] = "tangent_cuts"

    def __post_init__(self) -> None:
        if self.model not in ("pglib", "matpower"):
            raise ValidationError(f"model: expected 'pglib' or 'matpower', got {self.model!r}")
        if self.rating not in ("a", "b", "c"):
            raise ValidationError(f"rating: expected 'a', 'b' or 'c', got {self.rating!r}")
        if not isinstance(self.enforce_angle_limits, bool):
            raise ValidationError(
                f"enforce_angle_limits: expected True or False, got {self.enforce_angle_limits!r}"
            )
        if self.voll_eur_per_mwh is not None:
            v = _number("voll_eur_per_mwh", self.voll_eur_per_mwh, 0.0, _INF)
            object.__setattr__(self, "voll_eur_per_mwh", v)
        for name in ("primal_feasibility_tolerance", "dual_feasibility_tolerance"):
            tol = _number(name, getattr(self, name), 1e-10, 1e-2, closed=True)
            object.__setattr__(self, name, tol)
        if self.time_limit_s is not None:
            t = _number("time_limit_s", self.time_limit_s, 0.0, _INF)
            object.__setattr__(self, "time_limit_s", t)
        if self.solver not in ("choose", "simplex", "ipm"):
            raise ValidationError(
                f"solver: expected 'choose', 'simplex' or 'ipm', got {self.solver!r}"
            )
        if self.quadratic not in ("tangent_cuts", "highs_qp"):
            raise ValidationError(
                f"quadratic: expected 'tangent_cuts' or 'highs_qp', got {self.quadratic!r}"
            )


def _readonly(a: npt.ArrayLike, dtype: type[np.generic] = np.float64) -> Any:
    arr: npt.NDArray[Any] = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class DCOPFResult:
    """The solution of a DC optimal power flow, in the network's row order.

    Values are NaN when ``status`` is not ``"optimal"``. Prices are in the
    cost currency of the case (``$`` for PGLib) per MWh.

    Attributes
    ----------
    status
        ``"optimal"``, ``"infeasible"``, ``"unbounded"`` or ``"error"``.
    objective
        Total cost in $/h: generation (constant cost terms of the generators
        in service included) plus shed load at the value of lost load.
    pg_mw
        Output of each generator (0 for generators out of service).
    va_deg
        Bus voltage angles; the reference bus of each island is at 0 (NaN at
        isolated buses).
    flow_mw
        Active power flow of each branch at its from end (0 when out of
        service).
    lmp
        Locational marginal price of each bus: the cost of serving one more
        MW of load there (NaN at isolated buses).
    lmp_energy, lmp_congestion
        ``lmp_energy`` is the price at the reference bus of the bus's island;
        ``lmp_congestion = lmp - lmp_energy``. A DC model has no loss
        component.
    shed_mw
        Load shed at each bus (non-zero only with a value of lost load).
    injection_mw
        Net injection of each bus: generation plus shed load minus demand
        (``Pd + Gs``); equal to the flows leaving the bus (plus, for the
        MATPOWER model, the phase-shifter injections).
    flow_dual
        Shadow price of each branch's flow limit in $/MWh: the change in
        cost if the flow from -> to were held 1 MW higher. Negative on a
        branch at its upper limit, positive at its lower limit, 0 where the
        limit is slack or absent.
    angle_dual
        Shadow price of each branch's angle-difference limit, in $/h per
        degree of ``va_from - va_to``, signed like ``flow_dual``.
    binding_branches
        Rows of the branches whose flow limit binds (non-zero shadow price).
    rating_mw
        Flow limit used for each branch (``inf`` where unlimited).
    bus_id, gen_bus_id, from_bus_id, to_bus_id
        The ids that label the rows (copied from the network for the frames).
    time_s
        Build plus solve time; ``solver_time_s`` is HiGHS's share.
    message
        HiGHS's model status, and what went wrong when not optimal.
    model
        The DC model solved (``"pglib"`` or ``"matpower"``).
    quadratic
        Whether some cost had a non-zero quadratic term.
    iterations, lp_solves
        Solver iterations (simplex, IPM or QP) and number of solves (more than
        one with tangent cuts).
    """

    status: Status
    objective: float
    pg_mw: FloatArray
    va_deg: FloatArray
    flow_mw: FloatArray
    lmp: FloatArray
    lmp_energy: FloatArray
    lmp_congestion: FloatArray
    shed_mw: FloatArray
    injection_mw: FloatArray
    flow_dual: FloatArray
    angle_dual: FloatArray
    binding_branches: IntArray
    rating_mw: FloatArray
    bus_id: IntArray
    gen_bus_id: IntArray
    from_bus_id: IntArray
    to_bus_id: IntArray
    time_s: float
    solver_time_s: float
    message: str
    model: str
    quadratic: bool
    iterations: int
    lp_solves: int

    @property
    def ok(self) -> bool:
        """True when solved to optimality with every load served.

        Load shed at the value of lost load is part of an optimal answer, but not
        what was asked: ``ok`` is then False and ``shed_mw`` says where.
        """
        return self.status == "optimal" and self.total_shed_mw <= 1e-6

    @property
    def total_shed_mw(self) -> float:
        """Total load shed in MW."""
        return float(np.nansum(self.shed_mw))

    @property
    def congestion_rent(self) -> float:
        """Merchandising surplus in $/h: what loads pay minus what generators earn.

        In a lossless DC model this equals the sum over limited branches of
        ``-flow_mw * flow_dual`` (plus the angle-limit terms).
        """
        return float(-np.nansum(self.lmp * self.injection_mw))

    def to_frame(self, component: str = "bus") -> pd.DataFrame:
        """A pandas view of the ``bus``, ``gen`` or ``branch`` results."""
        import pandas as pd

        if component == "bus":
            return pd.DataFrame(
                {
                    "bus_id": np.array(self.bus_id),
                    "va_deg": np.array(self.va_deg),
                    "lmp": np.array(self.lmp),
                    "lmp_energy": np.array(self.lmp_energy),
                    "lmp_congestion": np.array(self.lmp_congestion),
                    "shed_mw": np.array(self.shed_mw),
                    "injection_mw": np.array(self.injection_mw),
                }
            )
        if component == "gen":
            return pd.DataFrame(
                {"bus_id": np.array(self.gen_bus_id), "pg_mw": np.array(self.pg_mw)}
            )
        if component == "branch":
            binding = np.zeros(self.flow_mw.shape[0], dtype=bool)
            binding[self.binding_branches] = True
            with np.errstate(divide="ignore", invalid="ignore"):
                loading = np.where(
                    np.isfinite(self.rating_mw),
                    100.0 * np.abs(self.flow_mw) / self.rating_mw,
                    np.nan,
                )
            return pd.DataFrame(
                {
                    "from_bus_id": np.array(self.from_bus_id),
                    "to_bus_id": np.array(self.to_bus_id),
                    "flow_mw": np.array(self.flow_mw),
                    "rating_mw": np.array(self.rating_mw),
                    "loading_pct": loading,
                    "flow_dual": np.array(self.flow_dual),
                    "angle_dual": np.array(self.angle_dual),
                    "binding": binding,
                }
            )
        raise ValidationError(f"unknown component {component!r}: expected bus, gen or branch")


# -- costs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Costs:
    """Generator costs of the generators in service, in MW and $/h."""

    c2: FloatArray  # $/MW^2h
    c1: FloatArray  # $/MWh
    c0: FloatArray  # $/h
    pwl: IntArray  # positions (among the generators in service) with piecewise costs
    seg_gen: IntArray  # for each segment, its position in ``pwl``
    seg_slope: FloatArray  # $/MWh
    seg_icpt: FloatArray  # $/h at 0 MW


def _costs(net: Network, gens: IntArray) -> _Costs:
    gc = net.gencost
    if gc is None:
        raise ValidationError("gencost: the network has no generator costs")
    model = gc.model[gens]
    k = gc.ncost[gens]
    params = gc.params[gens]
    rows = np.arange(gens.size)
    width = params.shape[1]

    poly = model == 2
    coef = np.zeros((gens.size, 3))  # c2, c1, c0
    for d in range(3):
        col = k - 1 - d
        ok = poly & (col >= 0)
        coef[ok, 2 - d] = params[rows[ok], col[ok]]
    high = poly & (k > 3)
    if np.any(high):
        # orders above 2 are accepted only when their coefficients are zero
        lead = np.arange(width)[None, :] < (k - 3)[:, None]
        bad = high & np.any(lead & (params != 0.0), axis=1)
        if np.any(bad):
            i = int(gens[np.flatnonzero(bad)[0]])
            raise ValidationError(
                f"gencost row {i + 1}: polynomial of order {int(gc.ncost[i]) - 1} > 2 "
                "is not supported by the DC OPF",
                "gencost",
                i,
            )
    if np.any(coef[:, 0] < 0):
        i = int(gens[np.flatnonzero(coef[:, 0] < 0)[0]])
        raise ValidationError(
            f"gencost row {i + 1}: negative quadratic cost makes the problem non-convex",
            "gencost",
            i,
        )

    pw = np.flatnonzero(model == 1)
    if pw.size:
        kp = k[pw]
        if np.any(kp < 2):
            i = int(gens[pw[np.flatnonzero(kp < 2)[0]]])
            raise ValidationError(
                f"gencost row {i + 1}: a piecewise-linear cost needs at least 2 points",
                "gencost",
                i,
            )
        npts = int(kp.max())
        x = params[pw][:, 0 : 2 * npts : 2]
        y = params[pw][:, 1 : 2 * npts : 2]
        valid = np.arange(npts - 1)[None, :] < (kp - 1)[:, None]
        dx = np.diff(x, axis=1)
        dy = np.diff(y, axis=1)
        if np.any(valid & (dx <= 0)):
            r = int(np.flatnonzero(np.any(valid & (dx <= 0), axis=1))[0])
            i = int(gens[pw[r]])
            raise ValidationError(
                f"gencost row {i + 1}: piecewise-linear points must have increasing MW values",
                "gencost",
                i,
            )
        slope = np.where(valid, dy / np.where(valid, dx, 1.0), 0.0)
        # a non-convex curve would be silently convexified by the epigraph rows
        ds = np.diff(slope, axis=1)
        both = valid[:, 1:] & valid[:, :-1]
        tol = 1e-9 * np.maximum(1.0, np.abs(slope[:, 1:]))
        if np.any(both & (ds < -tol)):
            r = int(np.flatnonzero(np.any(both & (ds < -tol), axis=1))[0])
            i = int(gens[pw[r]])
            raise ValidationError(
                f"gencost row {i + 1}: piecewise-linear cost is not convex", "gencost", i
            )
        rr, jj = np.nonzero(valid)
        seg_slope = slope[rr, jj]
        seg_icpt = y[rr, jj] - seg_slope * x[rr, jj]
        seg_gen = rr.astype(np.int64)
    else:
        seg_slope = np.zeros(0)
        seg_icpt = np.zeros(0)
        seg_gen = np.zeros(0, dtype=np.int64)
    return _Costs(
        c2=coef[:, 0],
        c1=coef[:, 1],
        c0=coef[:, 2],
        pwl=pw.astype(np.int64),
        seg_gen=seg_gen,
        seg_slope=seg_slope,
        seg_icpt=seg_icpt,
    )


def _cost_of(costs: _Costs, pg_mw: FloatArray) -> float:
    """Total cost in $/h of the outputs of the generators in service."""
    poly = costs.c2 * pg_mw**2 + costs.c1 * pg_mw + costs.c0
    total = float(np.sum(np.delete(poly, costs.pwl)))
    if costs.pwl.size:
        seg_val = costs.seg_icpt + costs.seg_slope * pg_mw[costs.pwl][costs.seg_gen]
        best = np.full(costs.pwl.size, -np.inf)
        np.maximum.at(best, costs.seg_gen, seg_val)
        total += float(np.sum(best))
    return total


# -- the problem ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    """The LP (or QP) in HiGHS's column-wise form, and what is needed to read the answer.

    Columns: ``theta (n_bus) | pg (gens) | shed (shed_bus) | t_pwl | t_quad``;
    rows: ``balance (n_bus) | flow (flow_br) | angle (ang_br) | pwl | quadratic cuts``.
    """

    n_col: int
    n_row: int
    col_cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    a_start: npt.NDArray[np.int32]
    a_index: npt.NDArray[np.int32]
    a_value: FloatArray
    q_start: npt.NDArray[np.int32]
    q_index: npt.NDArray[np.int32]
    q_value: FloatArray
    offset: float
    n_bus: int
    gens: IntArray  # generator rows in service
    shed_bus: IntArray  # buses with a shedding column
    flow_br: IntArray  # branches with a flow-limit row
    ang_br: IntArray  # branches with an angle-difference row
    quad: IntArray  # positions among ``gens`` of the generators with a quadratic term
    quad_a: FloatArray  # their quadratic coefficient, $/h per pu^2
    quad_b: FloatArray  # their linear coefficient, $/h per pu
    quad_t0: int  # first column of the quadratic epigraphs (cut method)
    gen_bus_q: IntArray  # bus of each generator with a quadratic term
    cut_points: FloatArray  # (len(quad), k) tangent points of the initial cuts, pu
    on_br: IntArray
    b_pu: FloatArray
    pfinj_pu: FloatArray
    demand_pu: FloatArray
    bus_on: BoolArray
    ref_of_bus: IntArray  # reference bus of each bus's island (-1 when isolated)
    rating_mw: FloatArray
    costs: _Costs


def _angle_limits(net: Network, options: DCOPFOptions) -> tuple[FloatArray, FloatArray]:
    """Angle-difference bounds in radians (``-inf``/``inf`` where absent)."""
    amin_d, amax_d = net.branch.angmin_deg, net.branch.angmax_deg
    amin, amax = np.deg2rad(amin_d), np.deg2rad(amax_d)
    if options.model == "pglib":
        both0 = (amin == 0.0) & (amax == 0.0)
        lo = np.where((amin <= -np.pi / 2) | both0, -_PM_ANGLE_PAD_RAD, amin)
        hi = np.where((amax >= np.pi / 2) | both0, _PM_ANGLE_PAD_RAD, amax)
        return lo, hi
    # MATPOWER: 0 means no limit on that side; a row only where a side is tighter than 360
    active = ((amin_d != 0) & (amin_d > -360)) | ((amax_d != 0) & (amax_d < 360))
    lo = np.where(active & (amin_d != 0), amin, -np.inf)
    hi = np.where(active & (amax_d != 0), amax, np.inf)
    return lo, hi


def _angle_bounds(
    n_bus: int,
    f: IntArray,
    t: IntArray,
    cap: FloatArray,
    refs: IntArray,
) -> FloatArray:
    """Implied bound on |theta_i|: the shortest path from the reference over per-branch caps.

    Every feasible point satisfies it, so it changes nothing but the free
    columns that HiGHS's active-set QP solver mishandles.
    """
    from scipy.sparse.csgraph import dijkstra

    finite = np.isfinite(cap)
    # parallel branches add up into one weight: a looser bound, still implied
    g = sp.csr_matrix(
        (np.maximum(cap[finite], 1e-12), (f[finite], t[finite])), shape=(n_bus, n_bus)
    )
    if refs.size == 0:
        return np.full(n_bus, np.inf)
    dist = dijkstra(g, directed=False, indices=refs, min_only=True)
    return np.asarray(dist, dtype=np.float64)


def _build(net: Network, options: DCOPFOptions) -> _Problem:
    base = net.base_mva
    nb, nl = net.n_bus, net.n_branch
    br = net.branch
    f, t = net.branch_from, net.branch_to

    bus_on = net.bus.bus_type != BUS_ISOLATED
    br_on = (br.in_service == 1) & bus_on[f] & bus_on[t]
    gen_on = (net.gen.in_service == 1) & bus_on[net.gen_bus]
    gens = np.flatnonzero(gen_on).astype(np.int64)
    costs = _costs(net, gens)
    ng = gens.size
    island_ref, ref_of_bus = island_references(net, br_on, gen_on)

    # branch susceptances (per unit) and fixed phase-shift injections
    if options.model == "pglib":
        r, x = br.r_pu, br.x_pu
        b = np.where(br_on, x / (r * r + x * x), 0.0)
        pfinj = np.zeros(nl)
    else:
        b = dc_susceptance(net, br_on)
        pfinj = -b * np.deg2rad(br.shift_deg)
    on_br = np.flatnonzero(br_on).astype(np.int64)

    inc = incidence(net)
    a_on = inc[on_br]
    k_on = sp.diags(b[on_br]) @ a_on
    bbus = (a_on.T @ k_on).tocsc()

    demand = np.where(bus_on, (net.bus.pd_mw + net.bus.gs_mw) / base, 0.0)
    rhs = demand + np.where(bus_on, inc.T @ pfinj, 0.0)

    # generators with a quadratic term: a Hessian (HiGHS QP) or tangent-cut epigraphs
    a_all = costs.c2 * base * base
    a_all[costs.pwl] = 0.0
    quad = np.flatnonzero(a_all != 0.0).astype(np.int64)  # zero terms never reach HiGHS
    quad_a = a_all[quad]
    b_lin = costs.c1 * base
    b_lin[costs.pwl] = 0.0
    cuts = options.quadratic == "tangent_cuts"
    nqt = quad.size if cuts else 0

    # columns: theta | pg | shed | t_pwl | t_quad
    voll = options.voll_eur_per_mwh
    shed_bus = (
        np.flatnonzero(bus_on & (demand > 0)).astype(np.int64)
        if voll is not None
        else np.zeros(0, dtype=np.int64)
    )
    ns = shed_bus.size
    npw = costs.pwl.size
    t0_pwl = nb + ng + ns
    t0_quad = t0_pwl + npw
    n_col = t0_quad + nqt
    pmin = net.gen.pmin_mw[gens] / base
    pmax = net.gen.pmax_mw[gens] / base

    col_lower = np.concatenate(
        [np.full(nb, -np.inf), pmin, np.zeros(ns), np.full(npw, -np.inf), np.zeros(nqt)]
    )
    col_upper = np.concatenate(
        [np.full(nb, np.inf), pmax, demand[shed_bus], np.full(npw + nqt, np.inf)]
    )
    col_cost = np.concatenate(
        [np.zeros(nb), b_lin, np.full(ns, (voll or 0.0) * base), np.ones(npw + nqt)]
    )
    offset = float(np.sum(np.delete(costs.c0, costs.pwl)))

    # rows: balance | flow | angle | pwl | quadratic cuts
    cg = sp.csr_matrix((np.ones(ng), (net.gen_bus[gens], np.arange(ng))), shape=(nb, ng))
    cs = sp.csr_matrix((np.ones(ns), (shed_bus, np.arange(ns))), shape=(nb, ns))
    balance = sp.hstack([-bbus, cg, cs, sp.csr_matrix((nb, npw + nqt))])

    rate = br.rating_mva(options.rating)
    rating_mw = np.where(rate > 0, rate, np.inf)
    limited = br_on & (rate > 0) & (b != 0.0)
    flow_br = np.flatnonzero(limited).astype(np.int64)
    flow_rows = sp.hstack(
        [k_on[np.searchsorted(on_br, flow_br)], sp.csr_matrix((flow_br.size, n_col - nb))]
    )
    flow_lo = -rate[flow_br] / base - pfinj[flow_br]
    flow_hi = rate[flow_br] / base - pfinj[flow_br]

    with np.errstate(divide="ignore"):
        reach = np.where(limited, (rate / base + np.abs(pfinj)) / np.abs(b), np.inf)
    if options.enforce_angle_limits:
        lo, hi = _angle_limits(net, options)
        need = br_on & (np.isfinite(lo) | np.isfinite(hi))
        # an angle limit implied by the flow limit adds nothing
        implied = limited & (lo <= -reach) & (hi >= reach)
        ang_br = np.flatnonzero(need & ~implied).astype(np.int64)
        ang_lo, ang_hi = lo[ang_br], hi[ang_br]
        cap = np.minimum(np.maximum(np.abs(lo), np.abs(hi)), reach)
    else:
        ang_br = np.zeros(0, dtype=np.int64)
        ang_lo = ang_hi = np.zeros(0)
        cap = reach
    ang_rows = sp.hstack([inc[ang_br], sp.csr_matrix((ang_br.size, n_col - nb))])

    nseg = costs.seg_gen.size
    seg = np.arange(nseg)
    pwl_rows = sp.csr_matrix(
        (
            np.concatenate([-costs.seg_slope * base, np.ones(nseg)]),
            (
                np.concatenate([seg, seg]),
                np.concatenate([nb + costs.pwl[costs.seg_gen], t0_pwl + costs.seg_gen]),
            ),
        ),
        shape=(nseg, n_col),
    )

    # initial tangents of a*pg^2 at evenly spaced points of [Pmin, Pmax]
    if nqt:
        lo_q = np.where(np.isfinite(pmin[quad]), pmin[quad], -10.0)
        hi_q = np.where(np.isfinite(pmax[quad]), pmax[quad], np.maximum(lo_q, 0.0) + 10.0)
        points = lo_q[:, None] + (hi_q - lo_q)[:, None] * np.linspace(0.0, 1.0, _INITIAL_CUTS)
        cut_rows, cut_lo = _tangent_rows(
            np.repeat(np.arange(nqt), _INITIAL_CUTS),
            points.ravel(),
            pg_cols=nb + quad,
            t_col0=t0_quad,
            quad_a=quad_a,
            n_col=n_col,
        )
    else:
        points = np.zeros((0, _INITIAL_CUTS))
        cut_rows, cut_lo = sp.csr_matrix((0, n_col)), np.zeros(0)

    a = sp.vstack([balance, flow_rows, ang_rows, pwl_rows, cut_rows], format="csc")
    a.eliminate_zeros()
    a.sort_indices()
    row_lower = np.concatenate([rhs, flow_lo, ang_lo, costs.seg_icpt, cut_lo])
    row_upper = np.concatenate([rhs, flow_hi, ang_hi, np.full(nseg + cut_lo.size, np.inf)])

    if cuts or quad.size == 0:
        q_start = np.zeros(0, dtype=np.int32)
        q_index = np.zeros(0, dtype=np.int32)
        q_value = np.zeros(0)
    else:
        # HiGHS minimises 1/2 x'Qx + c'x; only the non-zero diagonal terms are passed
        qcols = nb + quad
        q_start = np.searchsorted(qcols, np.arange(n_col + 1)).astype(np.int32)
        q_index = qcols.astype(np.int32)
        q_value = 2.0 * quad_a
        # free angle columns make the active-set QP solver stall or end infeasible:
        # bound them by what the branch limits already imply
        bound = _angle_bounds(nb, f[on_br], t[on_br], cap[on_br], island_ref)
        bound = np.maximum(bound, 1e-6)
        free = ~np.isfinite(col_lower[:nb]) | ~np.isfinite(col_upper[:nb])
        col_lower[:nb] = np.where(free, -bound, col_lower[:nb])
        col_upper[:nb] = np.where(free, bound, col_upper[:nb])

    fixed = np.concatenate([island_ref, np.flatnonzero(~bus_on)])
    col_lower[fixed] = 0.0
    col_upper[fixed] = 0.0

    return _Problem(
        n_col=n_col,
        n_row=a.shape[0],
        col_cost=col_cost,
        col_lower=col_lower,
        col_upper=col_upper,
        row_lower=row_lower,
        row_upper=row_upper,
        a_start=a.indptr.astype(np.int32),
        a_index=a.indices.astype(np.int32),
        a_value=a.data.astype(np.float64),
        q_start=q_start,
        q_index=q_index,
        q_value=q_value,
        offset=offset,
        n_bus=nb,
        gens=gens,
        shed_bus=shed_bus,
        flow_br=flow_br,
        ang_br=ang_br,
        quad=quad,
        quad_a=quad_a,
        quad_b=b_lin[quad],
        quad_t0=t0_quad,
        gen_bus_q=net.gen_bus[gens[quad]].astype(np.int64),
        cut_points=points,
        on_br=on_br,
        b_pu=b,
        pfinj_pu=pfinj,
        demand_pu=demand,
        bus_on=bus_on,
        ref_of_bus=ref_of_bus,
        rating_mw=rating_mw,
        costs=costs,
    )


_INITIAL_CUTS = 5
_MAX_CUT_ROUNDS = 60
_BRACKET = 2.0


def _tangent_rows(
    which: IntArray,
    points: FloatArray,
    *,
    pg_cols: IntArray,
    t_col0: int,
    quad_a: FloatArray,
    n_col: int,
) -> tuple[sp.csr_matrix, FloatArray]:
    """Rows ``t_j - 2 a_j x_k pg_j >= -a_j x_k^2``: tangents of ``a_j pg_j^2`` at ``x_k``.

    ``which`` picks the quadratic generator ``j`` of each row, ``pg_cols`` are
    the columns of their outputs and ``t_col0 + j`` that of their epigraph.
    """
    n = which.size
    r = np.arange(n)
    a = quad_a[which]
    rows = sp.csr_matrix(
        (
            np.concatenate([-2.0 * a * points, np.ones(n)]),
            (np.concatenate([r, r]), np.concatenate([pg_cols[which], t_col0 + which])),
        ),
        shape=(n, n_col),
    )
    return rows, -a * points * points


# -- solving -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    status: Status
    message: str
    x: FloatArray
    row_dual: FloatArray
    solver_time_s: float
    iterations: int
    lp_solves: int


# HiGHS could not even take or hold the model: an exception. A solver that ran
# and failed (kSolveError and the like) is reported as status "error".
_FATAL = frozenset({"kModelError", "kLoadError", "kMemoryLimit", "kNotset"})

# Distance (per unit) from a generator's output to its nearest tangent point
# below which the cut model is exact enough: the marginal cost it implies is
# then within 2 * a * tol of the true one (about 1e-5 $/MWh for PGLib costs).
_CUT_TOL_PU = 1e-6


def _quiet_highs() -> Any:
    """A HiGHS instance that prints nothing."""
    # The core object, not highspy.Highs: the wrapper's callback set-up prints
    # HiGHS's banner on stdout, which would corrupt machine-readable output.
    try:
        from highspy._core import _Highs
    except ImportError:  # a highspy without that layout: the public class
        from highspy import Highs as _Highs

    h = _Highs()
    h.setOptionValue("output_flag", False)
    return h


def _highs(options: DCOPFOptions, presolve: bool = True) -> Any:
    h = _quiet_highs()
    h.setOptionValue("primal_feasibility_tolerance", options.primal_feasibility_tolerance)
    h.setOptionValue("dual_feasibility_tolerance", options.dual_feasibility_tolerance)
    if options.time_limit_s is not None:
        h.setOptionValue("time_limit", options.time_limit_s)
    if not presolve:
        h.setOptionValue("presolve", "off")
    return h


def _pass_model(h: Any, prob: _Problem, options: DCOPFOptions) -> None:
    import highspy

    colwise = int(highspy.MatrixFormat.kColwise)
    minimize = int(highspy.ObjSense.kMinimize)
    nnz = int(prob.a_value.size)
    continuous = np.zeros(prob.n_col, dtype=np.int32)
    if prob.q_value.size:
        st = h.passModel(
            prob.n_col,
            prob.n_row,
            nnz,
            int(prob.q_value.size),
            colwise,
            int(highspy.HessianFormat.kTriangular),
            minimize,
            prob.offset,
            prob.col_cost,
            prob.col_lower,
            prob.col_upper,
            prob.row_lower,
            prob.row_upper,
            prob.a_start,
            prob.a_index,
            prob.a_value,
            prob.q_start,
            prob.q_index,
            prob.q_value,
            continuous,
        )
    else:
        h.setOptionValue("solver", options.solver)
        st = h.passModel(
            prob.n_col,
            prob.n_row,
            nnz,
            colwise,
            minimize,
            prob.offset,
            prob.col_cost,
            prob.col_lower,
            prob.col_upper,
            prob.row_lower,
            prob.row_upper,
            prob.a_start,
            prob.a_index,
            prob.a_value,
            continuous,
        )
    if st == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the DC OPF model (passModel returned an error)")


def _status_of(h: Any) -> tuple[Status | None, str]:
    """Our status for HiGHS's model status (None: ambiguous, solve again without presolve)."""
    import highspy

    ms = h.getModelStatus()
    text = str(h.modelStatusToString(ms))
    if ms == highspy.HighsModelStatus.kOptimal:
        return "optimal", text
    if ms == highspy.HighsModelStatus.kInfeasible:
        return "infeasible", text
    if ms == highspy.HighsModelStatus.kUnbounded:
        return "unbounded", text
    if ms == highspy.HighsModelStatus.kUnboundedOrInfeasible:
        return None, text
    if ms.name in _FATAL:
        raise SolverError(f"HiGHS failed on the DC OPF: {text}")
    return "error", text


def _iterations(h: Any) -> int:
    info = h.getInfo()
    n = 0
    for key in ("simplex_iteration_count", "ipm_iteration_count", "qp_iteration_count"):
        n += max(int(getattr(info, key)), 0)
    return n


def _run(h: Any) -> float:
    t0 = time.perf_counter()
    h.run()
    return time.perf_counter() - t0


def _solve(prob: _Problem, options: DCOPFOptions) -> _Raw:
    h = _highs(options)
    _pass_model(h, prob, options)
    solver_time = _run(h)
    iters = _iterations(h)
    status, text = _status_of(h)
    empty = np.zeros(0)
    if status is None:
        # presolve cannot tell infeasible from unbounded; the solver without it can
        h = _highs(options, presolve=False)
        _pass_model(h, prob, options)
        solver_time += _run(h)
        iters += _iterations(h)
        status, text = _status_of(h)
        status = "infeasible" if status is None else status
    if status != "optimal":
        return _Raw(status, text, empty, empty, solver_time, iters, 1)
    solves = 1
    if prob.quad.size and options.quadratic == "tangent_cuts":
        status, text, t_cuts, it_cuts, solves = _refine_cuts(h, prob, options, solver_time)
        solver_time += t_cuts
        iters += it_cuts
        if status != "optimal":
            return _Raw(status, text, empty, empty, solver_time, iters, solves)
        text = f"{text} ({solves} LP solve{'s' if solves > 1 else ''} with tangent cuts)"
    sol = h.getSolution()
    return _Raw(
        "optimal",
        text,
        np.asarray(sol.col_value, dtype=np.float64),
        np.asarray(sol.row_dual, dtype=np.float64),
        solver_time,
        iters,
        solves,
    )


def _refine_cuts(
    h: Any, prob: _Problem, options: DCOPFOptions, spent_s: float
) -> tuple[Status, str, float, int, int]:
    """Add tangents of the quadratic costs until each output sits on one.

    Outer approximation of the separable quadratic terms: after each LP, a
    tangent is added at every output that is not (within ``_CUT_TOL_PU``) a
    tangent point already, and at the output the generator's price calls for,
    ``(lmp - b) / 2a``, which is where it would sit if that price held (a
    Newton step). Each re-solve is a warm-started dual simplex. At the end
    every output lies on a tangent, so the linear model's cost and marginal
    cost equal the quadratic's there: objective and prices are those of the
    QP, to the tolerance.
    """
    nb = prob.n_bus
    q = prob.quad
    a, b = prob.quad_a, prob.quad_b
    cols = nb + q  # pg columns of the quadratic generators
    lo = prob.col_lower[cols]
    hi = prob.col_upper[cols]
    bus = prob.gen_bus_q
    points = [prob.cut_points[:, k] for k in range(prob.cut_points.shape[1])]
    solves = 1
    t_total = 0.0
    it_total = 0
    text = ""
    # Re-solves after adding a few rows take tens of iterations; HiGHS's default
    # dual steepest-edge pricing would first recompute every edge weight (an
    # order of magnitude more work than the iterations themselves), Devex does not.
    h.setOptionValue("simplex_dual_edge_weight_strategy", 1)
    for _ in range(_MAX_CUT_ROUNDS):
        sol = h.getSolution()
        x = np.asarray(sol.col_value, dtype=np.float64)[cols]
        lam = np.asarray(sol.row_dual, dtype=np.float64)[bus]
        target = np.clip((lam - b) / (2.0 * a), lo, hi)
        known = np.vstack(points)
        d_cur = np.nanmin(np.abs(known - x[None, :]), axis=0)
        d_tar = np.nanmin(np.abs(known - target[None, :]), axis=0)
        add_cur = d_cur > _CUT_TOL_PU
        add_tar = (d_tar > _CUT_TOL_PU) & (np.abs(target - x) > _CUT_TOL_PU)
        if not np.any(add_cur):
            return "optimal", text or "Optimal", t_total, it_total, solves
        # bracket the output too: the next kinks are then BRACKET times closer
        delta = d_cur / _BRACKET
        left = np.maximum(x - delta, lo)
        right = np.minimum(x + delta, hi)
        add_l = add_cur & (x - left > _CUT_TOL_PU)
        add_r = add_cur & (right - x > _CUT_TOL_PU)
        which = np.concatenate([np.flatnonzero(m) for m in (add_cur, add_tar, add_l, add_r)])
        at = np.concatenate([x[add_cur], target[add_tar], left[add_l], right[add_r]])
        rows, lower = _tangent_rows(
            which,
            at,
            pg_cols=cols,
            t_col0=prob.quad_t0,
            quad_a=a,
            n_col=prob.n_col,
        )
        points.append(np.where(add_cur, x, np.nan))
        points.append(np.where(add_tar, target, np.nan))
        points.append(np.where(add_l, left, np.nan))
        points.append(np.where(add_r, right, np.nan))
        if options.time_limit_s is not None:
            left_s = options.time_limit_s - spent_s - t_total
            if left_s <= 0:
                return "error", "Time limit reached", t_total, it_total, solves
            h.setOptionValue("time_limit", left_s)
        h.addRows(
            rows.shape[0],
            lower,
            np.full(rows.shape[0], np.inf),
            int(rows.nnz),
            rows.indptr[:-1].astype(np.int32),
            rows.indices.astype(np.int32),
            rows.data.astype(np.float64),
        )
        t_total += _run(h)
        it_total += _iterations(h)
        solves += 1
        st, text = _status_of(h)
        if st != "optimal":
            return st or "error", text, t_total, it_total, solves
    return (
        "error",
        f"tangent cuts did not settle in {_MAX_CUT_ROUNDS} rounds",
        t_total,
        it_total,
        solves,
    )


def dc_opf(net: Network, options: DCOPFOptions | None = None) -> DCOPFResult:
    """Solve the DC optimal power flow of one snapshot.

    Parameters
    ----------
    net
        The network, with generator costs (polynomials up to order 2, or
        convex piecewise-linear curves).
    options
        Model, rating and solver settings; :class:`DCOPFOptions` defaults.

    Returns
    -------
    DCOPFResult
        Dispatch, angles, flows and prices. An infeasible or unbounded
        problem is reported through ``status``, not raised.

    Raises
    ------
    ValidationError
        The network has no costs, or costs the DC OPF cannot take
        (polynomials above order 2, negative quadratic terms, non-convex
        piecewise-linear curves).
    SolverError
        HiGHS itself failed and left no usable answer.
    """
    check_network(net, "dc_opf", solve=True)
    check_options(options, DCOPFOptions, "dc_opf")
    opts = DCOPFOptions() if options is None else options
    if not isinstance(opts, DCOPFOptions):
        raise ValidationError(f"options: expected DCOPFOptions, got {type(opts).__name__}")
    t0 = time.perf_counter()
    prob = _build(net, opts)
    raw = _solve(prob, opts)
    return _result(net, opts, prob, raw, t0)


def _result(net: Network, opts: DCOPFOptions, prob: _Problem, raw: _Raw, t0: float) -> DCOPFResult:
    base = net.base_mva
    nb, nl, ng_all = net.n_bus, net.n_branch, net.n_gen
    common: dict[str, Any] = {
        "rating_mw": _readonly(prob.rating_mw),
        "bus_id": _readonly(net.bus.bus_id, np.int64),
        "gen_bus_id": _readonly(net.gen.bus_id, np.int64),
        "from_bus_id": _readonly(net.branch.from_bus_id, np.int64),
        "to_bus_id": _readonly(net.branch.to_bus_id, np.int64),
        "solver_time_s": raw.solver_time_s,
        "message": raw.message,
        "model": opts.model,
        "quadratic": bool(prob.quad.size),
        "iterations": raw.iterations,
        "lp_solves": raw.lp_solves,
    }
    if raw.status != "optimal":
        nan_b, nan_l = np.full(nb, np.nan), np.full(nl, np.nan)
        return DCOPFResult(
            status=raw.status,
            objective=math.nan,
            pg_mw=_readonly(np.full(ng_all, np.nan)),
            va_deg=_readonly(nan_b),
            flow_mw=_readonly(nan_l),
            lmp=_readonly(nan_b),
            lmp_energy=_readonly(nan_b),
            lmp_congestion=_readonly(nan_b),
            shed_mw=_readonly(nan_b),
            injection_mw=_readonly(nan_b),
            flow_dual=_readonly(nan_l),
            angle_dual=_readonly(nan_l),
            binding_branches=_readonly(np.zeros(0), np.int64),
            time_s=time.perf_counter() - t0,
            **common,
        )
    ng = prob.gens.size
    ns = prob.shed_bus.size
    x, y = raw.x, raw.row_dual
    theta = x[:nb]
    pg_on = x[nb : nb + ng] * base
    shed_on = x[nb + ng : nb + ng + ns] * base

    pg = np.zeros(ng_all)
    pg[prob.gens] = pg_on
    shed = np.zeros(nb)
    shed[prob.shed_bus] = shed_on

    f, t = net.branch_from, net.branch_to
    on = prob.on_br
    flow = np.zeros(nl)
    flow[on] = (prob.b_pu[on] * (theta[f[on]] - theta[t[on]]) + prob.pfinj_pu[on]) * base

    # HiGHS's row duals are d(objective)/d(row bound): for a balance row, the
    # cost of one more pu of demand
    lmp = np.where(prob.bus_on, y[:nb] / base, np.nan)
    energy = np.where(prob.ref_of_bus >= 0, lmp[np.maximum(prob.ref_of_bus, 0)], np.nan)
    nf, na = prob.flow_br.size, prob.ang_br.size
    flow_dual = np.zeros(nl)
    flow_dual[prob.flow_br] = y[nb : nb + nf] / base + 0.0  # no -0.0
    angle_dual = np.zeros(nl)
    angle_dual[prob.ang_br] = y[nb + nf : nb + nf + na] * (np.pi / 180.0) + 0.0

    inj = np.zeros(nb)
    np.add.at(inj, net.gen_bus[prob.gens], pg_on)
    inj = np.where(prob.bus_on, inj + shed - prob.demand_pu * base, np.nan)

    # a shadow price within the dual tolerance is solver noise, not congestion
    tiny = 10.0 * opts.dual_feasibility_tolerance
    binding = prob.flow_br[np.abs(y[nb : nb + nf]) > tiny]
    voll = opts.voll_eur_per_mwh or 0.0
    objective = _cost_of(prob.costs, pg_on) + voll * float(np.sum(shed_on))
    return DCOPFResult(
        status="optimal",
        objective=objective,
        pg_mw=_readonly(pg),
        va_deg=_readonly(np.where(prob.bus_on, np.rad2deg(theta), np.nan)),
        flow_mw=_readonly(flow),
        lmp=_readonly(lmp),
        lmp_energy=_readonly(energy),
        lmp_congestion=_readonly(lmp - energy),
        shed_mw=_readonly(shed),
        injection_mw=_readonly(inj),
        flow_dual=_readonly(flow_dual),
        angle_dual=_readonly(angle_dual),
        binding_branches=_readonly(np.sort(binding), np.int64),
        time_s=time.perf_counter() - t0,
        **common,
    )
