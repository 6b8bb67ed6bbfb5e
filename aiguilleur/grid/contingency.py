"""N-1 security screening: every single-branch (and single-generator) outage.

The screen runs in two stages, as control-room contingency analysis does:

1. **DC screening by LODF/PTDF**, blockwise on one compiled DC model. With an
   AC base case, the post-outage MVA flow of each branch is estimated from
   its AC active flow shifted by the LODF and its base reactive flow.
2. **AC verification** of every outage whose estimate reaches
   ``100 - margin_pct`` % of a rating. Verified outages are solved together:
   a chord Newton iteration on the base-case Jacobian, factorised once, with
   the outaged branch's contribution removed by a rank-4 Woodbury update;
   mismatches are exact, so the solution is the AC power flow of the outage.
   An outage that this iteration does not settle falls back to a full
   Newton-Raphson warm-started from the base case.

Outages that split an island (bridges) are listed separately with the buses,
load and generation they cut off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import SolverError, ValidationError
from aiguilleur.grid._checks import check_network, check_options, check_row
from aiguilleur.grid._compile import branch_admittance, make_ybus
from aiguilleur.grid._newton import JacobianPattern, newton
from aiguilleur.grid._trisolve import LevelLU
from aiguilleur.grid.network import Network
from aiguilleur.grid.powerflow import (
    Participation,
    PowerFlowOptions,
    PowerFlowResult,
    _participation_weights,
    _setup,
    ac_power_flow,
    dc_power_flow,
)
from aiguilleur.grid.sensitivity import DCModel

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ContingencyOptions",
    "ContingencyResult",
    "apply_outage",
    "screen_n1",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ComplexArray = npt.NDArray[np.complex128]

Progress = Callable[[int, int], None]

SECURE, OVERLOAD, ISLANDING, DIVERGED = "secure", "overload", "islanding", "diverged"


@dataclass(frozen=True)
class ContingencyOptions:
    """Settings of an N-1 screen.

    Parameters
    ----------
    rating
        Branch rating the post-outage flows are held against: ``a``
        (long-term), ``b`` (short-term) or ``c`` (emergency).
    ac_verify
        Verify the DC screen with AC power flows (``False``: DC only).
    margin_pct
        Outages whose DC-estimated loading reaches ``100 - margin_pct`` % are
        verified in AC.
    method
        ``screened`` (DC screen, then AC on flagged outages) or ``full`` (an
        AC power flow of every outage: the reference, slower).
    branches, generators
        Which outage types to study.
    participation
        How the remaining units share a lost generator's output.
    distributed_slack
        Base case and outages solved with a distributed slack.
    tolerance_pu, max_iter
        Newton settings for every AC power flow.
    block_size
        Outages handled together in one block (memory vs. speed).
    """

    rating: Literal["a", "b", "c"] = "a"
    ac_verify: bool = True
    margin_pct: float = 10.0
    method: Literal["screened", "full"] = "screened"
    branches: bool = True
    generators: bool = False
    participation: Participation = "pmax"
    distributed_slack: bool = False
    tolerance_pu: float = 1e-8
    max_iter: int = 30
    block_size: int = 2048

    def __post_init__(self) -> None:
        if self.rating not in ("a", "b", "c"):
            raise ValidationError(f"rating: expected a, b or c, got {self.rating!r}")
        if not 0.0 <= self.margin_pct < 100.0:
            raise ValidationError(f"margin_pct: expected 0 <= margin < 100, got {self.margin_pct}")
        if self.method not in ("screened", "full"):
            raise ValidationError(f"method: expected screened or full, got {self.method!r}")
        if self.block_size < 1:
            raise ValidationError(f"block_size: expected >= 1, got {self.block_size}")
        PowerFlowOptions(
            tolerance_pu=self.tolerance_pu, max_iter=self.max_iter, participation=self.participation
        )


@dataclass(frozen=True)
class ContingencyResult:
    """Outcome of an N-1 screen, one row per contingency.

    ``element`` is the 0-based row of the outaged branch or generator in the
    network's tables; ``max_loading_pct`` is the highest post-outage loading
    of any branch against the chosen rating; ``overloaded`` holds, per
    contingency, the rows of the branches above 100 % (by descending
    loading); ``verified`` says whether the figures come from an AC power flow
    (True) or the DC estimate (False); ``overloaded_pct`` holds the loadings of
    the branches in ``overloaded``, in the same order (empty for results built
    without them).
    """

    kind: npt.NDArray[np.str_]
    element: IntArray
    status: npt.NDArray[np.str_]
    max_loading_pct: FloatArray
    worst_branch: IntArray
    overloaded: tuple[IntArray, ...]
    verified: BoolArray
    lost_load_mw: FloatArray
    lost_generation_mw: FloatArray
    cut_buses: IntArray
    base: PowerFlowResult | None
    base_overloaded: IntArray
    rating: str
    method: str
    time_s: float
    ac_solved: int = 0
    fallbacks: int = 0
    stages_s: dict[str, float] = field(default_factory=dict)
    overloaded_pct: tuple[FloatArray, ...] = ()

    def __len__(self) -> int:
        return int(self.element.size)

    def count(self, status: str) -> int:
        """How many contingencies have the given status."""
        return int(np.sum(self.status == status))

    def ranked(self) -> IntArray:
        """Contingency positions by severity: highest post-outage loading first."""
        key = np.where(np.isnan(self.max_loading_pct), -np.inf, self.max_loading_pct)
        out: IntArray = np.argsort(-key, kind="stable").astype(np.int64)
        return out

    def violations(self) -> set[tuple[str, int, int]]:
        """Every (kind, outaged element, overloaded branch) triple."""
        return {
            (str(self.kind[i]), int(self.element[i]), int(b))
            for i in range(len(self))
            for b in self.overloaded[i]
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per contingency, most severe first."""
        import pandas as pd

        order = self.ranked()
        return pd.DataFrame(
            {
                "kind": self.kind[order],
                "element": self.element[order],
                "status": self.status[order],
                "max_loading_pct": self.max_loading_pct[order],
                "worst_branch": self.worst_branch[order],
                "n_overloaded": [len(self.overloaded[i]) for i in order],
                "overloaded": [self.overloaded[i].tolist() for i in order],
                "verified_ac": self.verified[order],
                "cut_buses": self.cut_buses[order],
                "lost_load_mw": self.lost_load_mw[order],
                "lost_generation_mw": self.lost_generation_mw[order],
            }
        )


# -- helpers --------------------------------------------------------------------------


def _rate(net: Network, rating: str) -> FloatArray:
    r = net.branch.rating_mva(rating)
    out: FloatArray = np.where(r > 0, r, np.inf)
    return out


def _redispatch_after_gen_loss(
    net: Network, k: int, weights: FloatArray, label: IntArray
) -> FloatArray:
    """Set-points after unit ``k`` trips, its output shared by its island's other units."""
    pg = np.where(net.gen.in_service == 1, net.gen.pg_mw, 0.0).astype(np.float64)
    lost = pg[k]
    same = label[net.gen_bus] == label[net.gen_bus[k]]
    w = np.where(same, weights, 0.0)
    w[k] = 0.0
    pg[k] = 0.0
    if w.sum() > 0:
        pg = pg + lost * w / w.sum()
    return pg


def apply_outage(
    net: Network, kind: str, element: int, participation: Participation = "pmax"
) -> Network:
    """The network after one outage, exactly as :func:`screen_n1` models it.

    Parameters
    ----------
    net
        The pre-outage network.
    kind
        ``branch`` or ``generator`` (``gen`` is accepted, as in :class:`Outage`).
    element
        0-based row of the branch or generator.
    participation
        For a generator outage: how the units left in its island share its
        output (``pmax``, ``pg`` or ``headroom``).
    """
    check_network(net, "apply_outage")
    if kind == "branch":
        return net.with_branch_status(check_row(element, net.n_branch, "branch", "apply_outage"), 0)
    if kind not in ("generator", "gen"):
        raise ValidationError(f"outage kind: expected branch or generator, got {kind!r}")
    element = check_row(element, net.n_gen, "generator", "apply_outage")
    if participation not in ("pmax", "pg", "headroom"):
        raise ValidationError(
            f"apply_outage: participation must be pmax, pg or headroom, got {participation!r}"
        )
    on = net.gen.in_service == 1
    opts = PowerFlowOptions(participation=participation)
    st = _setup(net, opts)
    w = _participation_weights(net, participation, on)
    pg = _redispatch_after_gen_loss(net, element, w, st.islands.label)
    return net.with_dispatch(np.where(on, pg, net.gen.pg_mw)).with_gen_status(element, 0)


def _overloads(load_pct: FloatArray) -> tuple[float, int, IntArray]:
    finite = np.where(np.isfinite(load_pct), load_pct, -np.inf)
    j = int(np.argmax(finite)) if finite.size else -1
    worst = float(finite[j]) if j >= 0 and np.isfinite(finite[j]) else 0.0
    over = np.flatnonzero(finite > 100.0)
    over = over[np.argsort(-finite[over], kind="stable")]
    return worst, j, over.astype(np.int64)


class _ColumnScreen:
    """Post-outage loadings of many outages from their DC angle responses.

    For outage column ``j`` the post-outage flow on branch ``l``, as a fraction
    of its rating, is ``u_l + (b_l / rate_l) (theta_f - theta_t)_lj g_j``; with
    an AC base case the base reactive flow is added in quadrature. Work is done
    in sub-blocks of columns small enough to stay in cache.
    """

    def __init__(
        self,
        net: Network,
        model: DCModel,
        u: FloatArray,
        w2: FloatArray | None,
        inv_rate: FloatArray,
        threshold: float,
        keep_overloads: bool,
    ) -> None:
        self.f, self.t = model.bus_row[net.branch_from], model.bus_row[net.branch_to]
        self.u = u[:, None]
        self.w2 = None if w2 is None else w2[:, None]
        self.inv_rate = inv_rate
        self.threshold = threshold
        self.keep = keep_overloads
        self.pos: list[IntArray] = []
        self.mx: list[FloatArray] = []
        self.arg: list[IntArray] = []
        self.overloads: dict[int, IntArray] = {}
        self.overload_pct: dict[int, FloatArray] = {}
        self._const_cache: dict[
            tuple[int, ...], tuple[IntArray, int, float, IntArray, FloatArray]
        ] = {}

    def run(
        self,
        theta: FloatArray,
        b: FloatArray,
        g: FloatArray,
        outaged: IntArray | None,
        positions: IntArray,
        rows: IntArray | None = None,
        sub: int = 64,
    ) -> None:
        """Screen the columns of ``theta``.

        ``rows`` limits the dense work to the branches whose flow the outages
        can change (under an outage that keeps the grid whole, a bridge's flow
        stays at its base value); the other branches enter as constants.
        """
        n_l = self.f.size
        if rows is None:
            rows = np.arange(n_l)
        f, t = self.f[rows], self.t[rows]
        u = self.u[rows]
        w2 = None if self.w2 is None else self.w2[rows]
        scale = (b * self.inv_rate)[rows][:, None]
        local, c_arg, c_max, c_over, c_over_val = self._constants(rows)
        out_local = None if outaged is None else local[outaged]
        for s0 in range(0, g.size, sub):
            s1 = min(s0 + sub, g.size)
            # scale the (fewer) bus rows by the column factor before expanding to branches
            th = theta[:, s0:s1] * g[None, s0:s1]
            x = th[f]
            x -= th[t]
            x *= scale
            x += u
            cols = np.arange(s1 - s0)
            if out_local is not None:
                x[out_local[s0:s1], cols] = 0.0
            if w2 is None:
                np.abs(x, out=x)
            else:
                x *= x
                x += w2
                if out_local is not None:
                    x[out_local[s0:s1], cols] = 0.0
            # argmax along axis 0 is slow (strided); the two max reductions are not.
            # Only rows whose own maximum reaches the smallest column maximum can hold
            # a column's maximum, so the argmax runs on those rows alone.
            cmax = x.max(axis=0)
            rmax = x.max(axis=1)
            cand = np.flatnonzero(rmax >= cmax.min()) if cmax.size else np.zeros(0, np.int64)
            arg = cand[np.argmax(x[cand], axis=0)]
            mx = x[arg, cols]
            arg = rows[arg]
            use_c = c_max > mx
            mx = np.where(use_c, c_max, mx)
            arg = np.where(use_c, c_arg, arg)
            if w2 is not None:
                mx = np.sqrt(mx)
            bad = ~np.isfinite(g[s0:s1])
            mx = np.where(bad, np.nan, mx)
            self.pos.append(positions[s0:s1])
            self.mx.append(mx)
            self.arg.append(arg.astype(np.int64))
            if self.keep:
                # x is |flow| / rating, or its square with an AC base: 1 is the limit either way
                hot = np.flatnonzero(rmax > 1.0)
                r_loc, cc = np.nonzero(x[hot] > 1.0)
                r_idx = hot[r_loc]
                vals = x[r_idx, cc]
                r_idx = rows[r_idx]
                if c_over.size:
                    r_idx = np.concatenate([r_idx, np.tile(c_over, s1 - s0)])
                    cc = np.concatenate([cc, np.repeat(cols, c_over.size)])
                    vals = np.concatenate([vals, np.tile(c_over_val, s1 - s0)])
                if r_idx.size:
                    order = np.lexsort((-vals, cc))
                    r_idx, cc = r_idx[order], cc[order]
                    splits = np.searchsorted(cc, np.arange(s1 - s0 + 1))
                    vals = vals[order]
                    pct = 100.0 * (vals if w2 is None else np.sqrt(vals))
                    for j in np.flatnonzero(np.diff(splits)):
                        sl = slice(splits[j], splits[j + 1])
                        self.overloads[int(positions[s0 + j])] = r_idx[sl].astype(np.int64)
                        self.overload_pct[int(positions[s0 + j])] = pct[sl]

    def _constants(self, rows: IntArray) -> tuple[IntArray, int, float, IntArray, FloatArray]:
        """Row map and the fixed loadings of the branches left out of the dense work."""
        key = (rows.size, int(rows.sum()), int(rows[:1].sum()), int(rows[-1:].sum()))
        cached = self._const_cache.get(key)
        if cached is not None:
            return cached
        n_l = self.f.size
        local = np.full(n_l, -1, dtype=np.int64)
        local[rows] = np.arange(rows.size)
        rest = np.flatnonzero(local < 0)
        u = self.u[rest, 0]
        const = np.abs(u) if self.w2 is None else u**2 + self.w2[rest, 0]
        const = np.where(np.isfinite(const), const, 0.0)
        c_arg = int(rest[np.argmax(const)]) if rest.size else -1
        c_max = float(const.max()) if rest.size else -np.inf
        out = (local, c_arg, c_max, rest[const > 1.0], const[const > 1.0])
        self._const_cache[key] = out
        return out

    @property
    def positions(self) -> IntArray:
        return np.concatenate(self.pos) if self.pos else np.zeros(0, dtype=np.int64)

    @property
    def max_pct(self) -> FloatArray:
        out: FloatArray = 100.0 * np.concatenate(self.mx) if self.mx else np.zeros(0)
        return out

    @property
    def worst(self) -> IntArray:
        return np.concatenate(self.arg) if self.arg else np.zeros(0, dtype=np.int64)

    @property
    def flagged(self) -> BoolArray:
        out: BoolArray = self.max_pct >= 100.0 * self.threshold
        return out | np.isnan(self.max_pct)


def _gen_loss_shifts(
    net: Network, gens: IntArray, weights: FloatArray, label: IntArray, pg_cur: FloatArray
) -> FloatArray:
    """Set-point changes (n_gen x len(gens)) when each unit trips, by participation."""
    gl = label[net.gen_bus]
    same = gl[:, None] == gl[gens][None, :]
    w = np.where(same, weights[:, None], 0.0)
    w[gens, np.arange(gens.size)] = 0.0
    tot = w.sum(axis=0)
    share = np.divide(w, tot[None, :], out=np.zeros_like(w), where=tot[None, :] > 0)
    out: FloatArray = share * pg_cur[gens][None, :]
    out[gens, np.arange(gens.size)] = -pg_cur[gens]
    return out


# -- the screen -----------------------------------------------------------------------


def screen_n1(
    net: Network,
    options: ContingencyOptions | None = None,
    *,
    progress: Progress | None = None,
) -> ContingencyResult:
    """Screen every single-branch (and, if asked, single-generator) outage.

    Parameters
    ----------
    net
        The network at the operating point to study (its generator set-points
        should balance the load, see :func:`~aiguilleur.grid.scaled_dispatch`).
    options
        Screen settings.
    progress
        Called as ``progress(done, total)`` while outages are processed.

    Returns
    -------
    ContingencyResult
        One row per contingency with status ``secure``, ``overload``,
        ``islanding`` or ``diverged``.

    Raises
    ------
    SolverError
        When the base-case power flow does not converge (there is no
        operating point to screen).
    """
    check_network(net, "screen_n1", solve=True)
    check_options(options, ContingencyOptions, "screen_n1")
    opts = options or ContingencyOptions()
    # a decision, not a crash: with no bus but reference buses (a one-bus case, or only
    # isolated buses) there is no flow to screen and no outage can be studied
    st0 = _setup(net, PowerFlowOptions())
    if st0.pv.size + st0.pq.size == 0:
        raise ValidationError(
            f"{net.name}: N-1 screening needs at least two energised buses joined by a branch "
            f"in service (the case has {net.n_bus} bus(es), {int(st0.branch_on.sum())} such "
            "branch(es)); there is nothing to screen"
        )
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    pf_opts = PowerFlowOptions(
        tolerance_pu=opts.tolerance_pu,
        max_iter=opts.max_iter,
        distributed_slack=opts.distributed_slack,
        participation=opts.participation,
    )
    rate = _rate(net, opts.rating)
    base: PowerFlowResult | None = None
    if opts.ac_verify:
        base = ac_power_flow(net, pf_opts)
        if not base.converged:
            raise SolverError(
                f"{net.name}: the base-case AC power flow did not converge "
                f"(largest mismatch {base.max_mismatch_pu:.3g} pu after {base.iterations} "
                "iterations); balance the dispatch (scaled_dispatch) or screen with DC only"
            )
        p0 = base.p_from_mw
        q0 = np.maximum(np.abs(base.q_from_mvar), np.abs(base.q_to_mvar))
        base_load = np.maximum(base.s_from_mva, base.s_to_mva) / rate * 100.0
    else:
        dcb = dc_power_flow(net, pf_opts)
        p0 = dcb.p_mw
        q0 = np.zeros(net.n_branch)
        base_load = np.abs(p0) / rate * 100.0
    stages["base"] = time.perf_counter() - t0

    model = DCModel.build(net)
    st = _setup(net, pf_opts)
    label = st.islands.label
    br_on = net.branch.in_service == 1
    br_list = np.flatnonzero(br_on).astype(np.int64) if opts.branches else np.zeros(0, np.int64)
    gen_list = (
        np.flatnonzero(st.gen_on).astype(np.int64) if opts.generators else np.zeros(0, np.int64)
    )
    n_c = br_list.size + gen_list.size
    kind = np.array(["branch"] * br_list.size + ["generator"] * gen_list.size, dtype="<U9")
    element = np.concatenate([br_list, gen_list]).astype(np.int64)
    status = np.full(n_c, SECURE, dtype="<U9")
    max_load = np.zeros(n_c)
    worst = np.full(n_c, -1, dtype=np.int64)
    overl: list[IntArray] = [np.zeros(0, dtype=np.int64)] * n_c
    overl_pct: list[FloatArray] = [np.zeros(0)] * n_c
    verified = np.zeros(n_c, dtype=bool)
    lost_load = np.zeros(n_c)
    lost_gen = np.zeros(n_c)
    cut = np.zeros(n_c, dtype=np.int64)
    flagged = np.zeros(n_c, dtype=bool)
    done = 0
    threshold = 100.0 - opts.margin_pct if opts.ac_verify else 100.0

    # islanding outages: what each bridge cuts off, from one DFS (prefix sums by entry time)
    bt = model.tree  # the search that found the bridges, rooted at the same references
    pos = np.flatnonzero(model.bridge[br_list])
    if pos.size:
        order = bt.order
        rank = np.empty(net.n_bus, dtype=np.int64)
        rank[order] = np.arange(order.size)
        pd_sorted = np.concatenate([[0.0], np.cumsum(net.bus.pd_mw[order])])
        gen_bus_pg = np.bincount(
            net.gen_bus, weights=np.where(st.gen_on, net.gen.pg_mw, 0.0), minlength=net.n_bus
        )
        pg_sorted = np.concatenate([[0.0], np.cumsum(gen_bus_pg[order])])
        c = bt.child[br_list[pos]]
        # the DFS subtree of the far end: entry times tin[c] .. tout[c]
        lo, hi = rank[c], bt.tout[c] + 1
        sub_n = hi - lo
        sub_load = pd_sorted[hi] - pd_sorted[lo]
        sub_gen = pg_sorted[hi] - pg_sorted[lo]
        ok = label >= 0
        k_isl = int(label.max()) + 1
        isl_n = np.bincount(label[ok], minlength=k_isl)[label[c]]
        isl_load = np.bincount(label[ok], weights=net.bus.pd_mw[ok], minlength=k_isl)[label[c]]
        isl_gen = np.bincount(label[ok], weights=gen_bus_pg[ok], minlength=k_isl)[label[c]]
        # report the smaller side as the part cut off (the reference bus may sit on a spur)
        flip = 2 * sub_n > isl_n
        lost_load[pos] = np.where(flip, isl_load - sub_load, sub_load)
        lost_gen[pos] = np.where(flip, isl_gen - sub_gen, sub_gen)
        cut[pos] = np.where(flip, isl_n - sub_n, sub_n)
        status[pos] = ISLANDING
        max_load[pos] = np.nan
    done = int(pos.size)

    # stage 1: DC screening, blockwise. Flows are scaled by the rating up front so
    # that each block is a handful of in-place passes (loading as a fraction of the limit).
    t1 = time.perf_counter()
    inv_rate = np.where(np.isfinite(rate), 1.0 / rate, 0.0)
    u = p0 * inv_rate
    w2 = (q0 * inv_rate) ** 2 if opts.ac_verify else None
    scr = _ColumnScreen(net, model, u, w2, inv_rate, threshold / 100.0, not opts.ac_verify)
    non_bridge = np.flatnonzero(~model.bridge[br_list])
    bf, bt_ = net.branch_from, net.branch_to
    # branches whose DC flow an outage that keeps the grid whole can change
    moving = np.flatnonzero(~model.bridge & (model.b != 0))
    # 256 outages a block: the angle block (buses x 256) stays in cache for the passes
    for blk_pos in model.blocks(non_bridge, 256):
        ks = br_list[blk_pos]
        theta = model.transfer_angles(ks, reuse=True)
        cols = np.arange(ks.size)
        rf, rt = model.bus_row[bf[ks]], model.bus_row[bt_[ks]]
        hkk = model.b[ks] * (theta[rf, cols] - theta[rt, cols])
        denom = 1.0 - hkk
        denom = np.where(np.abs(denom) < 1e-12, np.nan, denom)
        scr.run(theta, model.b, p0[ks] / denom, ks, blk_pos, rows=moving)
        done += ks.size
        if progress:
            progress(done, n_c)
    # generator outages by PTDF: one batched solve for every unit
    if gen_list.size:
        weights = _participation_weights(net, opts.participation, st.gen_on)
        g_pos = br_list.size + np.arange(gen_list.size)
        pg_cur = np.where(st.gen_on, net.gen.pg_mw, 0.0)
        dpg = _gen_loss_shifts(net, gen_list, weights, label, pg_cur)
        inj = np.zeros((net.n_bus, gen_list.size))
        np.add.at(inj, net.gen_bus, dpg)
        theta = model.angles(inj / net.base_mva)
        scr.run(theta, model.b, np.full(gen_list.size, net.base_mva), None, g_pos)
        lost_gen[g_pos] = pg_cur[gen_list]
        done += gen_list.size
        if progress:
            progress(done, n_c)
    max_load[scr.positions] = scr.max_pct
    worst[scr.positions] = scr.worst
    flagged[scr.positions] = scr.flagged
    if not opts.ac_verify:
        for pidx, over in scr.overloads.items():
            overl[pidx] = over
            overl_pct[pidx] = scr.overload_pct[pidx]
        status[scr.positions] = np.where(scr.max_pct > 100.0, OVERLOAD, SECURE)
    if not opts.ac_verify:
        # islanding outages under DC: report what they cut off; flows not estimated
        stages["dc_screen"] = time.perf_counter() - t1
        return ContingencyResult(
            kind, element, status, max_load, worst, tuple(overl), verified, lost_load,
            lost_gen, cut, None, np.flatnonzero(base_load > 100.0).astype(np.int64),
            opts.rating, "dc", time.perf_counter() - t0, 0, 0, stages, tuple(overl_pct),
        )  # fmt: skip
    stages["dc_screen"] = time.perf_counter() - t1

    # stage 2: AC verification
    assert base is not None
    t2 = time.perf_counter()
    if opts.method == "full":
        flagged[:] = status != ISLANDING
    to_check = np.flatnonzero(flagged & (status != ISLANDING))
    total = n_c + int(to_check.size)
    v0 = (base.vm_pu * np.exp(1j * np.deg2rad(base.va_deg))).astype(np.complex128)
    ac = _ACVerifier(net, pf_opts, st, v0, rate, model, p0)
    fallbacks = 0
    br_check = to_check[kind[to_check] == "branch"]
    gen_check = to_check[kind[to_check] == "generator"]
    if opts.method == "full":
        for p in to_check:
            res = ac.full(kind[p], int(element[p]), label, opts)
            _record(int(p), res, status, max_load, worst, overl, overl_pct, verified)
            done += 1
            if progress:
                progress(done, total)
    else:
        # W holds 4 single-precision columns per outage: bound its memory (about 160 MB)
        blk_size = max(32, min(opts.block_size, int(4e7 // (4 * ac.pattern.size))))
        for blk in model.blocks(br_check, blk_size):
            outs = ac.branch_batch(element[blk])
            for p, res in zip(blk, outs, strict=True):
                if res is None:
                    fallbacks += 1
                    res = ac.full("branch", int(element[p]), label, opts)
                _record(int(p), res, status, max_load, worst, overl, overl_pct, verified)
            done += int(blk.size)
            if progress:
                progress(done, total)
        if gen_check.size:
            weights = _participation_weights(net, opts.participation, st.gen_on)
            for p in gen_check:
                res = ac.full("generator", int(element[p]), label, opts, weights)
                _record(int(p), res, status, max_load, worst, overl, overl_pct, verified)
                done += 1
                if progress:
                    progress(done, total)
    if progress:
        progress(total, total)
    stages["ac_verify"] = time.perf_counter() - t2
    return ContingencyResult(
        kind=kind,
        element=element,
        status=status,
        max_loading_pct=max_load,
        worst_branch=worst,
        overloaded=tuple(overl),
        verified=verified,
        lost_load_mw=lost_load,
        lost_generation_mw=lost_gen,
        cut_buses=cut,
        base=base,
        base_overloaded=np.flatnonzero(base_load > 100.0).astype(np.int64),
        rating=opts.rating,
        method=f"ac-{opts.method}",
        time_s=time.perf_counter() - t0,
        ac_solved=int(to_check.size),
        fallbacks=fallbacks,
        stages_s=stages,
        overloaded_pct=tuple(overl_pct),
    )


def _record(
    p: int,
    res: FloatArray | None,
    status: npt.NDArray[np.str_],
    max_load: FloatArray,
    worst: IntArray,
    overl: list[IntArray],
    overl_pct: list[FloatArray],
    verified: BoolArray,
) -> None:
    verified[p] = True
    if res is None:
        status[p] = DIVERGED
        max_load[p] = np.nan
        worst[p] = -1
        overl[p] = np.zeros(0, dtype=np.int64)
        overl_pct[p] = np.zeros(0)
        return
    m, j, over = _overloads(res)
    max_load[p] = m
    worst[p] = j
    overl[p] = over
    overl_pct[p] = res[over]
    status[p] = OVERLOAD if over.size else SECURE


class _ACVerifier:
    """AC power flows of outages around one converged base case."""

    def __init__(
        self,
        net: Network,
        pf_opts: PowerFlowOptions,
        st: object,
        v0: ComplexArray,
        rate: FloatArray,
        model: DCModel | None = None,
        p0: FloatArray | None = None,
    ) -> None:
        from aiguilleur.grid.powerflow import _gen_bus_matrix

        self.model = model
        self.p0 = p0
        self.net = net
        self.opts = pf_opts
        self.st = st
        self.v0 = v0
        self.rate = rate
        self.ybus, self.yf, self.yt = make_ybus(net)
        self.adm = branch_admittance(net)
        s = st  # _Setup
        self.ref, self.pv, self.pq = s.ref, s.pv, s.pq  # type: ignore[attr-defined]
        cg = _gen_bus_matrix(net, s.gen_on)  # type: ignore[attr-defined]
        self.alpha_bus = (
            np.asarray(cg @ s.alpha_gen) if pf_opts.distributed_slack else None  # type: ignore[attr-defined]
        )
        self.group = np.maximum(s.islands.label, 0) if pf_opts.distributed_slack else None  # type: ignore[attr-defined]
        self.pattern = JacobianPattern(
            self.ybus, self.ref, self.pv, self.pq, self.alpha_bus, self.group
        )
        coo = self.ybus.tocoo()
        self.ydata = coo.data.astype(np.complex128)
        energised = s.energised  # type: ignore[attr-defined]
        sload = (net.bus.pd_mw + 1j * net.bus.qd_mvar) / net.base_mva
        pg = np.where(s.gen_on, net.gen.pg_mw, 0.0)  # type: ignore[attr-defined]
        qg = np.where(s.gen_on, net.gen.qg_mvar, 0.0)  # type: ignore[attr-defined]
        sgen = np.asarray(cg @ (pg + 1j * qg)) / net.base_mva
        self.sbus = np.where(energised, sgen - sload, 0.0)
        self.jac0 = self.pattern.jacobian(self.ydata, v0)
        self.lu = LevelLU(self.jac0)
        self.k0 = np.zeros(self.pattern.n_groups)
        if pf_opts.distributed_slack:
            # the base slack variable, so that outages start from the base point
            res = newton(
                self.ybus, self.sbus, v0, self.ref, self.pv, self.pq,
                tol=pf_opts.tolerance_pu, max_iter=pf_opts.max_iter,
                alpha=self.alpha_bus, group=self.group, pattern=self.pattern,
            )  # fmt: skip
            self.k0 = res.slack

    def loading(self, v: ComplexArray, off: int | None = None) -> FloatArray:
        base = self.net.base_mva
        sf = v[self.net.branch_from] * np.conj(self.yf @ v) * base
        stt = v[self.net.branch_to] * np.conj(self.yt @ v) * base
        s = np.maximum(np.abs(sf), np.abs(stt))
        if off is not None:
            s[off] = 0.0
        out: FloatArray = s / self.rate * 100.0
        return out

    def branch_batch(self, ks: IntArray, max_chord: int = 40) -> list[FloatArray | None]:
        """Chord Newton for a batch of branch outages (None where it does not settle)."""
        net, pat = self.net, self.pattern
        kn = ks.size
        f, t = net.branch_from[ks], net.branch_to[ks]
        a = self.adm
        yff, yft, ytf, ytt = a.yff[ks], a.yft[ks], a.ytf[ks], a.ytt[ks]
        v0 = self.v0
        # derivative of the outaged branch's end injections at the base voltage
        vl = np.stack([v0[f], v0[t]], axis=1)  # (K, 2)
        yl = np.stack(
            [np.stack([yff, yft], axis=1), np.stack([ytf, ytt], axis=1)], axis=1
        )  # (K, 2, 2)
        il = np.einsum("kij,kj->ki", yl, vl)
        vnorm = vl / np.abs(vl)
        eye2 = np.eye(2)[None]
        dsm = (
            vl[:, :, None] * np.conj(yl * vnorm[:, None, :])
            + eye2 * (np.conj(il) * vnorm)[:, :, None]
        )
        dsa = 1j * vl[:, :, None] * np.conj(eye2 * il[:, :, None] - yl * vl[:, None, :])
        d = np.zeros((kn, 4, 4))
        d[:, 0:2, 0:2] = dsa.real
        d[:, 0:2, 2:4] = dsm.real
        d[:, 2:4, 0:2] = dsa.imag
        d[:, 2:4, 2:4] = dsm.imag
        rows = np.stack([pat.row_p[f], pat.row_p[t], pat.row_q[f], pat.row_q[t]], axis=1)
        cols = np.stack([pat.col_a[f], pat.col_a[t], pat.col_v[f], pat.col_v[t]], axis=1)
        d = d * (rows >= 0)[:, :, None] * (cols >= 0)[:, None, :]
        rows = np.maximum(rows, 0)
        cols = np.maximum(cols, 0)
        size = pat.size
        # J0^-1 e_r is shared by every outage that touches row r: solve each row once
        uniq, where = np.unique(rows.ravel(), return_inverse=True)
        # Single precision for the correction side (W and the chord steps): the
        # mismatch is evaluated in double precision at every step, so the fixed point,
        # and the 1e-8 pu tolerance, are those of the exact AC equations.
        e = np.zeros((size, uniq.size), dtype=np.float32)
        e[uniq, np.arange(uniq.size)] = 1.0
        w = self.lu.solve(e)[:, where].reshape(size, kn, 4)
        g = w[cols, np.arange(kn)[:, None], :]  # (K, 4, 4): rows of W at C
        mmat = np.eye(4)[None] - d @ g
        # state, kept compact: only the columns still iterating
        n_a, n_q = pat.pvpq.size, pat.pq.size
        n = net.n_bus
        cur = np.arange(kn)
        va = np.repeat(np.angle(v0)[:, None], kn, axis=1)
        if self.model is not None and self.p0 is not None and self.model.lu is not None:
            # start from the DC estimate of each outage's angle shift (LODF on the AC flow)
            m = self.model
            theta = m.transfer_angles(ks)
            rf, rt = m.bus_row[f], m.bus_row[t]
            ar = np.arange(kn)
            hkk = m.b[ks] * (theta[rf, ar] - theta[rt, ar])
            denom = np.where(np.abs(1.0 - hkk) > 1e-6, 1.0 - hkk, np.inf)
            shift = theta[m.bus_row] * (self.p0[ks] / net.base_mva / denom)[None, :]
            va += np.where(np.isfinite(shift), shift, 0.0)
        vm = np.repeat(np.abs(v0)[:, None], kn, axis=1)
        kvar = np.repeat(self.k0[:, None], kn, axis=1)
        done_v = np.zeros((n, kn), dtype=np.complex128)
        ok = np.zeros(kn, dtype=bool)
        tol = self.opts.tolerance_pu
        ybus = self.ybus
        sbus = self.sbus[:, None]
        for it in range(max_chord + 1):
            v = np.empty(va.shape, dtype=np.complex128)
            v.real = vm * np.cos(va)
            v.imag = vm * np.sin(va)
            s = v * np.conj(ybus @ v)
            ci = np.arange(cur.size)
            vf, vt = v[f, ci], v[t, ci]
            s[f, ci] -= vf * np.conj(yff * vf + yft * vt)
            s[t, ci] -= vt * np.conj(ytf * vf + ytt * vt)
            mis = s - sbus
            if self.alpha_bus is not None and self.group is not None:
                mis -= self.alpha_bus[:, None] * kvar[self.group]
            fvec = np.concatenate([mis.real[pat.prow], mis.imag[pat.pq]], axis=0)
            norm = np.max(np.abs(fvec), axis=0)
            conv = norm <= tol
            if conv.any():
                done_v[:, cur[conv]] = v[:, conv]
                ok[cur[conv]] = True
            keep = ~conv & np.isfinite(norm) & (norm < 1e3)
            if it == max_chord or not keep.any():
                break
            if keep.sum() < 0.75 * cur.size:
                # compacting copies W: only worth it once a quarter of the columns are done
                cur, fvec, va, vm, kvar = (
                    cur[keep],
                    fvec[:, keep],
                    va[:, keep],
                    vm[:, keep],
                    kvar[:, keep],
                )
                f, t, yff, yft, ytf, ytt = (
                    f[keep],
                    t[keep],
                    yff[keep],
                    yft[keep],
                    ytf[keep],
                    ytt[keep],
                )
                w, d, mmat, cols = w[:, keep, :], d[keep], mmat[keep], cols[keep]
            elif not keep.all():
                fvec[:, ~keep] = 0.0  # finished columns stay where they are
            z = self.lu.solve(fvec.astype(np.float32))
            y = z[cols, np.arange(cur.size)[:, None]]  # (k, 4)
            corr = np.linalg.solve(mmat, np.einsum("kij,kj->ki", d, y)[..., None])[..., 0]
            dx = z + np.einsum("nkj,kj->nk", w, corr.astype(np.float32))
            va[pat.pvpq] -= dx[:n_a]
            vm[pat.pq] -= dx[n_a : n_a + n_q]
            if pat.distributed:
                kvar -= dx[n_a + n_q :]
        out: list[FloatArray | None] = [None] * kn
        good = np.flatnonzero(ok)
        if good.size:
            vv = done_v[:, good]
            base = net.base_mva
            sf = np.abs(vv[net.branch_from] * np.conj(self.yf @ vv))
            st_ = np.abs(vv[net.branch_to] * np.conj(self.yt @ vv))
            smax = np.maximum(sf, st_) * base
            smax[ks[good], np.arange(good.size)] = 0.0
            load = smax / self.rate[:, None] * 100.0
            for j, gi in enumerate(good):
                out[int(gi)] = load[:, j]
        return out

    def full(
        self,
        kind: str,
        k: int,
        label: IntArray,
        opts: ContingencyOptions,
        weights: FloatArray | None = None,
    ) -> FloatArray | None:
        """A full Newton-Raphson of one outage, warm-started from the base case."""
        net = self.net
        if kind == "branch":
            out_net = net.with_branch_status(k, 0)
        else:
            w = (
                weights
                if weights is not None
                else _participation_weights(net, opts.participation, net.gen.in_service == 1)
            )
            pg = _redispatch_after_gen_loss(net, k, w, label)
            on = net.gen.in_service == 1
            out_net = net.with_dispatch(np.where(on, pg, net.gen.pg_mw)).with_gen_status(k, 0)
        res = ac_power_flow(out_net, self.opts, v0=self.v0)
        if not res.converged:
            # a warm start can fall into a bad basin; a DC-angle start is the other chance
            res = ac_power_flow(out_net, self.opts)
            if not res.converged:
                return None
        s = np.maximum(res.s_from_mva, res.s_to_mva)
        out: FloatArray = s / self.rate * 100.0
        return out
