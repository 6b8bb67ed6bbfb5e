"""Security-constrained DC optimal power flow (preventive N-1) by constraint generation.

Every single-branch outage that does not split the grid must leave every
post-outage flow within its emergency limit. Writing all outage x branch
constraints would be ``m^2`` rows (6.4 million on the French grid); instead:

1. solve the DC-OPF (:func:`aiguilleur.grid.dc_opf`'s problem, same model and costs);
2. compute every post-outage flow at once with line outage distribution
   factors, ``f_l^(k) = f_l + LODF[l, k] f_k``, from one factorisation of the
   reduced susceptance matrix of the same DC model;
3. add a row only for each violated (outage, branch) pair, written on the
   angle variables (four non-zeros), and re-solve from the previous basis;
4. repeat until no pair is violated.

Each added row carries an elastic slack priced far above any generation cost
or value of lost load: when some outage cannot be secured at all, the result
is not a bare "infeasible" but the pairs that cannot be met and the smallest
relaxation (MW above the limit, minimised with that price) that would; with a
value of lost load in the DC-OPF options, load is shed first where shedding
can secure them.

The post-outage limit: the emergency rating (``rate_c``) where the case gives
a separate one; many cases do not (``rate_a = rate_b = rate_c`` on every
branch of case118 and case1888_rte), and the default limit is then
:data:`DEFAULT_EMERGENCY_FACTOR` times ``rate_a``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network, check_options
from aiguilleur.grid._compile import bridge_tree, incidence
from aiguilleur.grid.dispatch import (
    DCOPFOptions,
    DCOPFResult,
    _build,
    _highs,
    _iterations,
    _number,
    _pass_model,
    _Raw,
    _refine_cuts,
    _result,
    _status_of,
)
from aiguilleur.grid.network import Network

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_EMERGENCY_FACTOR",
    "ContingencyConstraint",
    "SCEDOptions",
    "SCEDResult",
    "sced",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Post-outage limit as a multiple of rate_a when a case gives no separate emergency rating.
DEFAULT_EMERGENCY_FACTOR = 1.2

SCEDStatus = Literal["optimal", "insecure", "infeasible", "unbounded", "error"]


@dataclass(frozen=True)
class SCEDOptions:
    """Settings of the preventive security-constrained DC-OPF.

    Parameters
    ----------
    dcopf
        The DC-OPF settings (model, base-case rating, value of lost load,
        solver tolerances); see :class:`aiguilleur.grid.DCOPFOptions`.
    emergency_rating
        Rating that limits post-outage flows (``"c"`` by default).
    emergency_factor
        Factor on that rating. ``None`` (default): 1 where the case gives a
        separate emergency rating, else the limit is
        ``DEFAULT_EMERGENCY_FACTOR * rate_a``.
    max_rounds
        Constraint-generation rounds before giving up (status ``"error"``).
    max_cuts_per_round
        Most violated pairs added per round (the worst first).
    tolerance_mw
        A post-outage flow this far above its limit counts as a violation.
    insecurity_penalty_eur_per_mwh
        Price of each MW of post-outage overload left in place (the elastic
        slack): far above any generation cost and value of lost load.
    """

    dcopf: DCOPFOptions = field(default_factory=DCOPFOptions)
    emergency_rating: Literal["a", "b", "c"] = "c"
    emergency_factor: float | None = None
    max_rounds: int = 50
    max_cuts_per_round: int = 5000
    tolerance_mw: float = 1e-3
    insecurity_penalty_eur_per_mwh: float = 1e7

    def __post_init__(self) -> None:
        if not isinstance(self.dcopf, DCOPFOptions):
            raise ValidationError(f"dcopf: expected DCOPFOptions, got {type(self.dcopf).__name__}")
        if self.emergency_rating not in ("a", "b", "c"):
            raise ValidationError(
                f"emergency_rating: expected 'a', 'b' or 'c', got {self.emergency_rating!r}"
            )
        if self.emergency_factor is not None:
            v = _number("emergency_factor", self.emergency_factor, 0.0, 100.0)
            object.__setattr__(self, "emergency_factor", v)
        for name in ("max_rounds", "max_cuts_per_round"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValidationError(f"{name}: expected a positive integer, got {v!r}")
        tol = _number("tolerance_mw", self.tolerance_mw, 0.0, 1e3)
        object.__setattr__(self, "tolerance_mw", tol)
        pen = _number(
            "insecurity_penalty_eur_per_mwh", self.insecurity_penalty_eur_per_mwh, 0.0, 1e15
        )
        voll = self.dcopf.voll_eur_per_mwh
        if voll is not None and pen <= voll:
            raise ValidationError(
                f"insecurity_penalty_eur_per_mwh: must exceed the value of lost load ({voll:g})"
            )
        object.__setattr__(self, "insecurity_penalty_eur_per_mwh", pen)


@dataclass(frozen=True)
class ContingencyConstraint:
    """A post-outage flow limit: branch ``monitored`` after the outage of branch ``outage``.

    Rows are 0-based. ``dual`` is the shadow price in $/MWh (the cost of
    allowing 1 MW more on that post-outage flow); ``relaxation_mw`` is how far
    above its limit the flow had to stay (0 when the pair is secured).
    """

    outage: int
    monitored: int
    post_flow_mw: float
    limit_mw: float
    dual: float
    relaxation_mw: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "outage_branch": self.outage + 1,
            "monitored_branch": self.monitored + 1,
            "post_flow_mw": self.post_flow_mw,
            "limit_mw": self.limit_mw,
            "dual": self.dual,
            "relaxation_mw": self.relaxation_mw,
        }


@dataclass(frozen=True)
class SCEDResult:
    """A security-constrained dispatch.

    Attributes
    ----------
    status
        ``"optimal"``: every non-islanding single-branch outage leaves every
        flow within its limit. ``"insecure"``: some pairs cannot be secured
        (``unsecured`` lists them with the relaxation that would). Otherwise
        the base DC-OPF's own status (``"infeasible"``...), or ``"error"``.
    dispatch
        The dispatch, flows and prices (a :class:`DCOPFResult`; its LMPs
        include the post-outage congestion).
    dcopf_objective
        The cost without security constraints.
    security_cost
        ``dispatch.objective - dcopf_objective``.
    binding
        Post-outage constraints with a non-zero shadow price, largest first.
    unsecured
        Pairs left above their limit, with ``relaxation_mw``.
    rounds, constraints_added
        Constraint-generation rounds and rows added in all.
    screened_outages, islanding_outages
        Outages checked, and the in-service branches skipped because their
        outage splits the grid.
    limit_rule
        How the post-outage limit was set.
    """

    status: SCEDStatus
    message: str
    dispatch: DCOPFResult
    dcopf_objective: float
    security_cost: float
    binding: tuple[ContingencyConstraint, ...]
    unsecured: tuple[ContingencyConstraint, ...]
    rounds: int
    constraints_added: int
    screened_outages: int
    islanding_outages: IntArray
    limit_rule: str
    emergency_limit_mw: FloatArray
    time_s: float
    sensitivity_time_s: float
    solver_time_s: float

    @property
    def objective(self) -> float:
        return self.dispatch.objective

    @property
    def binding_contingencies(self) -> list[int]:
        """The outaged branches (0-based rows) of the binding constraints, without repeats."""
        return sorted({c.outage for c in self.binding})

    def to_frame(self, component: str = "binding") -> pd.DataFrame:
        """``binding`` or ``unsecured`` constraints as a table (1-based rows)."""
        import pandas as pd

        if component not in ("binding", "unsecured"):
            raise ValidationError(f"unknown component {component!r}: expected binding or unsecured")
        rows = self.binding if component == "binding" else self.unsecured
        cols = [
            "outage_branch",
            "monitored_branch",
            "post_flow_mw",
            "limit_mw",
            "dual",
            "relaxation_mw",
        ]
        return pd.DataFrame([c.to_dict() for c in rows], columns=cols)


def _emergency_limit(net: Network, opts: SCEDOptions) -> tuple[FloatArray, str]:
    br = net.branch
    rate_a = br.rate_a_mva
    em = br.rating_mva(opts.emergency_rating)
    if opts.emergency_factor is not None:
        lim = opts.emergency_factor * em
        rule = f"{opts.emergency_factor:g} x rate_{opts.emergency_rating}"
    elif opts.emergency_rating != "a" and np.any((em != rate_a) & (rate_a > 0)):
        lim = em.astype(np.float64)
        rule = f"rate_{opts.emergency_rating} (the case's emergency rating)"
    else:
        lim = DEFAULT_EMERGENCY_FACTOR * rate_a
        rule = (
            f"{DEFAULT_EMERGENCY_FACTOR:g} x rate_a (the case gives no separate emergency rating)"
            if opts.emergency_rating != "a"
            else f"{DEFAULT_EMERGENCY_FACTOR:g} x rate_a"
        )
    return np.where(lim > 0, lim, np.inf), rule


def sced(net: Network, options: SCEDOptions | None = None) -> SCEDResult:
    """Preventive N-1 security-constrained DC-OPF, by constraint generation with LODFs.

    Parameters
    ----------
    net
        The network with generator costs.
    options
        :class:`SCEDOptions`.

    Returns
    -------
    SCEDResult
        Never raises for a grid that cannot be secured: ``status`` is
        ``"insecure"`` and ``unsecured`` names the pairs and the relaxation.
    """
    check_network(net, "sced", solve=True)
    check_options(options, SCEDOptions, "sced")
    opts = SCEDOptions() if options is None else options
    if not isinstance(opts, SCEDOptions):
        raise ValidationError(f"options: expected SCEDOptions, got {type(opts).__name__}")
    t0 = time.perf_counter()
    dopts = opts.dcopf
    prob = _build(net, dopts)
    base = net.base_mva
    nb = prob.n_bus
    lim_mw, rule = _emergency_limit(net, opts)

    h = _highs(dopts)
    _pass_model(h, prob, dopts)
    h.setOptionValue("simplex_dual_edge_weight_strategy", 1)
    t_solve = time.perf_counter()
    h.run()
    solver_time = time.perf_counter() - t_solve
    iters = _iterations(h)
    status, text = _status_of(h)
    quad_cuts = bool(prob.quad.size) and dopts.quadratic == "tangent_cuts"
    if status == "optimal" and quad_cuts:
        status, text, dt, di, _ = _refine_cuts(h, prob, dopts, solver_time)
        solver_time += dt
        iters += di

    def raw_now(st: Any, txt: str) -> _Raw:
        if st != "optimal":
            e = np.zeros(0)
            return _Raw(st or "error", txt, e, e, solver_time, iters, 1)
        sol = h.getSolution()
        return _Raw(
            "optimal",
            txt,
            np.asarray(sol.col_value, dtype=np.float64),
            np.asarray(sol.row_dual, dtype=np.float64),
            solver_time,
            iters,
            1,
        )

    if status != "optimal":
        res = _result(net, dopts, prob, raw_now(status, text), t0)
        return _failed(res, status or "infeasible", f"the base DC-OPF: {text}", rule, lim_mw, t0)
    first = _result(net, dopts, prob, raw_now(status, text), t0)
    dcopf_objective = first.objective

    # -- sensitivities of the same DC model -----------------------------------------
    t_sens = time.perf_counter()
    br_on = np.zeros(net.n_branch, dtype=bool)
    br_on[prob.on_br] = True
    b = prob.b_pu
    f, t = net.branch_from, net.branch_to
    refs = np.unique(prob.ref_of_bus[prob.ref_of_bus >= 0])
    bridge = bridge_tree(net, refs, br_on).bridge & br_on
    cand = np.flatnonzero(br_on & ~bridge & (b != 0.0)).astype(np.int64)
    islanding = np.flatnonzero(bridge).astype(np.int64)
    mon = np.flatnonzero(br_on & np.isfinite(lim_mw) & (b != 0.0)).astype(np.int64)
    inc = incidence(net)
    bbus = (inc.T @ sp.diags(np.where(br_on, b, 0.0)) @ inc).tocsc()
    free = np.setdiff1d(np.flatnonzero(prob.ref_of_bus >= 0), refs)
    lu = spla.splu(bbus[free][:, free].tocsc(), permc_spec="COLAMD")
    pos = np.full(nb, -1, dtype=np.int64)
    pos[free] = np.arange(free.size)
    rhs = np.zeros((free.size, cand.size))
    cols = np.arange(cand.size)
    fk, tk = pos[f[cand]], pos[t[cand]]
    rhs[fk[fk >= 0], cols[fk >= 0]] = 1.0
    rhs[tk[tk >= 0], cols[tk >= 0]] -= 1.0
    dth = np.zeros((nb + 1, cand.size))  # last row: zeros for reference buses
    if cand.size:
        dth[free] = lu.solve(rhs)
    # H[l, k]: flow on monitored l per pu of transfer f_k -> t_k
    h_mon = b[mon][:, None] * (dth[f[mon]] - dth[t[mon]])
    h_self = b[cand] * (dth[f[cand], cols] - dth[t[cand], cols])
    lodf = h_mon / (1.0 - h_self)[None, :]
    same = mon[:, None] == cand[None, :]
    lodf[same] = -1.0  # the outaged branch itself carries nothing
    sens_time = time.perf_counter() - t_sens

    lim_pu = lim_mw[mon] / base
    pf = prob.pfinj_pu
    tol_pu = opts.tolerance_mw / base
    pen = opts.insecurity_penalty_eur_per_mwh * base
    # (monitored, outage, side) pairs already written; side 0: upper limit, 1: lower
    added = np.zeros((mon.size, cand.size, 2), dtype=bool)
    # per added row: HiGHS row, slack column, monitored and outage positions, sign, bounds
    meta: dict[str, list[Any]] = {k: [] for k in ("row", "col", "i", "j", "s", "lo", "hi")}
    rounds = 0
    n_added = 0
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    while True:
        theta = x[:nb]
        flow = np.where(br_on, b * (theta[f] - theta[t]) + pf, 0.0)
        post = flow[mon][:, None] + lodf * flow[cand][None, :]
        post[same] = 0.0
        over = post - lim_pu[:, None]
        under = -lim_pu[:, None] - post
        vi, vj = np.nonzero(over > tol_pu)
        ui, uj = np.nonzero(under > tol_pu)
        ii = np.concatenate([vi, ui])
        jj = np.concatenate([vj, uj])
        ss = np.concatenate([np.ones(vi.size, np.int64), -np.ones(ui.size, np.int64)])
        amount = np.concatenate([over[vi, vj], under[ui, uj]])
        keep = ~added[ii, jj, (ss < 0).astype(np.int64)]
        ii, jj, ss, amount = ii[keep], jj[keep], ss[keep], amount[keep]
        if ii.size == 0:
            break
        if rounds >= opts.max_rounds:
            res = _result(net, dopts, prob, raw_now("optimal", text), t0)
            return _failed(
                res,
                "error",
                f"constraint generation did not settle in {opts.max_rounds} rounds "
                f"({ii.size} pairs still violated)",
                rule,
                lim_mw,
                t0,
            )
        order = np.argsort(-amount, kind="stable")[: opts.max_cuts_per_round]
        ii, jj, ss = ii[order], jj[order], ss[order]
        n = ii.size
        # slack columns, then rows  b_l A_l theta + LODF b_k A_k theta  -/+ s  <=/>= limit
        n_col0 = int(h.getNumCol())
        n_row0 = int(h.getNumRow())
        h.addCols(
            n,
            np.full(n, pen),
            np.zeros(n),
            np.full(n, np.inf),
            0,
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.int32),
            np.zeros(0),
        )
        lm, kc = mon[ii], cand[jj]
        coef = lodf[ii, jj]
        r = np.arange(n)
        data = np.concatenate([b[lm], -b[lm], coef * b[kc], -coef * b[kc], -ss.astype(np.float64)])
        rr = np.concatenate([r, r, r, r, r])
        cc = np.concatenate([f[lm], t[lm], f[kc], t[kc], n_col0 + r])
        m = sp.csr_matrix((data, (rr, cc)), shape=(n, n_col0 + n))
        m.sum_duplicates()
        shift = pf[lm] + coef * pf[kc]
        lo = np.where(ss > 0, -np.inf, -lim_pu[ii] - shift)
        hi = np.where(ss > 0, lim_pu[ii] - shift, np.inf)
        h.addRows(
            n,
            lo,
            hi,
            int(m.nnz),
            m.indptr[:-1].astype(np.int32),
            m.indices.astype(np.int32),
            m.data.astype(np.float64),
        )
        added[ii, jj, (ss < 0).astype(np.int64)] = True
        for key, val in (("row", n_row0 + r), ("col", n_col0 + r), ("i", ii), ("j", jj),
                         ("s", ss), ("lo", lo), ("hi", hi)):  # fmt: skip
            meta[key].append(val)
        n_added += n
        rounds += 1
        t1 = time.perf_counter()
        h.run()
        solver_time += time.perf_counter() - t1
        iters += _iterations(h)
        st, text = _status_of(h)
        if st == "optimal" and quad_cuts:
            st, text, dt, di, _ = _refine_cuts(h, prob, dopts, solver_time)
            solver_time += dt
            iters += di
        if st != "optimal":
            res = _result(net, dopts, prob, raw_now(st, text), t0)
            return _failed(res, st or "error", f"round {rounds}: {text}", rule, lim_mw, t0)
        x = np.asarray(h.getSolution().col_value, dtype=np.float64)

    cat = {
        k: np.concatenate(v)
        if v
        else np.zeros(0, dtype=np.float64 if k in ("lo", "hi") else np.int64)
        for k, v in meta.items()
    }
    slack_cols = cat["col"].astype(np.int64)
    relax = x[slack_cols] if slack_cols.size else np.zeros(0)
    if np.any(relax * base > opts.tolerance_mw):
        # Prices of the smallest relaxation: the unsecured limits widened by what they
        # needed, the slacks removed, solved again (otherwise the slack penalty sets them).
        for k in range(slack_cols.size):
            h.changeColBounds(int(slack_cols[k]), 0.0, 0.0)
            if relax[k] * base > opts.tolerance_mw:
                row, lo_k, hi_k = int(cat["row"][k]), float(cat["lo"][k]), float(cat["hi"][k])
                if cat["s"][k] > 0:
                    h.changeRowBounds(row, lo_k, hi_k + relax[k] + tol_pu)
                else:
                    h.changeRowBounds(row, lo_k - relax[k] - tol_pu, hi_k)
        t1 = time.perf_counter()
        h.run()
        solver_time += time.perf_counter() - t1
        st, text = _status_of(h)
        if st == "optimal" and quad_cuts:
            st, text, dt, di, _ = _refine_cuts(h, prob, dopts, solver_time)
            solver_time += dt
        if st != "optimal":
            res = _result(net, dopts, prob, raw_now(st, text), t0)
            return _failed(res, st or "error", f"relaxed re-solve: {text}", rule, lim_mw, t0)
        x = np.asarray(h.getSolution().col_value, dtype=np.float64)
        x[slack_cols] = relax
    raw = raw_now("optimal", text)
    res = _result(net, dopts, prob, raw, t0)
    y = raw.row_dual
    theta = x[:nb]
    flow = np.where(br_on, b * (theta[f] - theta[t]) + pf, 0.0)
    binding: list[ContingencyConstraint] = []
    unsecured: list[ContingencyConstraint] = []
    tiny = 10.0 * dopts.dual_feasibility_tolerance
    ints = [cat[k].astype(np.int64).tolist() for k in ("row", "col", "i", "j")]
    for row, col, i, j in zip(*ints, strict=True):
        lm, kc = int(mon[i]), int(cand[j])
        pflow = (flow[lm] + lodf[i, j] * flow[kc]) * base
        slack = float(x[col]) * base
        dual = float(y[row]) / base + 0.0
        c = ContingencyConstraint(
            outage=kc,
            monitored=lm,
            post_flow_mw=float(pflow),
            limit_mw=float(lim_mw[lm]),
            dual=dual,
            relaxation_mw=slack if slack > opts.tolerance_mw else 0.0,
        )
        if slack > opts.tolerance_mw:
            unsecured.append(c)
        elif abs(float(y[row])) > tiny:
            binding.append(c)
    binding.sort(key=lambda c: -abs(c.dual))
    unsecured.sort(key=lambda c: -c.relaxation_mw)
    if unsecured:
        worst = unsecured[0]
        status_out: SCEDStatus = "insecure"
        msg = (
            f"{len({c.outage for c in unsecured})} outage(s) cannot be secured: e.g. branch "
            f"{worst.outage + 1} out leaves branch {worst.monitored + 1} at "
            f"{worst.post_flow_mw:,.1f} MW against {worst.limit_mw:,.1f} MW; the smallest "
            f"relaxation that would secure them is {sum(c.relaxation_mw for c in unsecured):,.1f} "
            "MW of post-outage limits in all"
        )
        if dopts.voll_eur_per_mwh is None:
            msg += " (set a value of lost load to let load shedding secure them where it can)"
    else:
        status_out = "optimal"
        msg = f"secure against {cand.size} outages after {rounds} round(s)"
    # the objective without the slack penalty (generation and shed load only)
    return SCEDResult(
        status=status_out,
        message=msg,
        dispatch=res,
        dcopf_objective=dcopf_objective,
        security_cost=res.objective - dcopf_objective,
        binding=tuple(binding),
        unsecured=tuple(unsecured),
        rounds=rounds,
        constraints_added=n_added,
        screened_outages=int(cand.size),
        islanding_outages=islanding,
        limit_rule=rule,
        emergency_limit_mw=lim_mw,
        time_s=time.perf_counter() - t0,
        sensitivity_time_s=sens_time,
        solver_time_s=solver_time,
    )


def _failed(
    res: DCOPFResult, status: str, message: str, rule: str, lim: FloatArray, t0: float
) -> SCEDResult:
    st: SCEDStatus = status if status in ("infeasible", "unbounded") else "error"  # type: ignore[assignment]
    return SCEDResult(
        status=st,
        message=message,
        dispatch=res,
        dcopf_objective=math.nan,
        security_cost=math.nan,
        binding=(),
        unsecured=(),
        rounds=0,
        constraints_added=0,
        screened_outages=0,
        islanding_outages=np.zeros(0, dtype=np.int64),
        limit_rule=rule,
        emergency_limit_mw=lim,
        time_s=time.perf_counter() - t0,
        sensitivity_time_s=0.0,
        solver_time_s=res.solver_time_s,
    )
