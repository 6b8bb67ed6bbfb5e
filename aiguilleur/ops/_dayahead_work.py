"""The work items of the day-ahead assessment, as they run on a worker.

Every function here is a pure function of its arguments (frozen values and
numpy arrays), defined at module level so that the process pool and Ray can
ship it by reference; random draws come from a generator seeded by the
(seed, hour, scenario) triple, so a result does not depend on where or in which
order the work ran.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import AiguilleurError
from aiguilleur.forecast import BacktestSettings, ForecastSettings, HourlySeries, backtest, fit
from aiguilleur.forecast.models import assemble, booster_count, fit_part, predict_quantiles
from aiguilleur.grid import (
    CommitmentOptions,
    ContingencyOptions,
    Network,
    SCEDOptions,
    commit,
    sced,
    screen_n1,
)
from aiguilleur.grid.commitment import Profile
from aiguilleur.grid.redispatch import Outage, Redispatcher, RedispatchOptions

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Shed load below this (MW) is solver noise, not a loss of load.
SHED_TOL_MW = 1e-3


# -- forecast stage ----------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastJob:
    """What the forecast stage needs: the history known at the issue time and the day."""

    history: HourlySeries
    issue_time: np.datetime64
    settings: ForecastSettings
    residual_days: int


def forecast_parts(s: ForecastSettings) -> list[str]:
    """The forecast's independent tasks, longest first (the workers take them in order).

    ``"calibration"`` (its own model and the shifts), then each booster of the final
    model alone (``"final:K"``; the median models, the largest, first): on two
    workers one takes the calibration while the other trains the final boosters.
    """
    nb = booster_count(s)
    if nb == 0:
        return ["calibration", "final"]
    med = [s.median_index, *([len(s.quantiles)] if nb > len(s.quantiles) else [])]
    return ["calibration", *(f"final:{k}" for k in med + [k for k in range(nb) if k not in med])]


def forecast_task(job: ForecastJob, what: str) -> Any:
    """One independent part of the forecast stage.

    ``"calibration"``, ``"final"`` and ``"final:K"``: parts of the forecaster's fit
    (:func:`aiguilleur.forecast.models.fit_part`: the conformal shifts, the boosters
    trained on every day, the K-th of them alone), joined by
    :func:`forecast_quantiles`; ``"quantiles"``: the whole fit in one task, the
    day's ``(24, n_q)`` quantiles and their levels; ``"residuals"``: the normal
    scores ``(n_days, 24)`` of the outcomes of the ``residual_days`` days before the
    issue time, each placed in its own out-of-sample forecast (a rolling-origin
    backtest that only reads what precedes each issue time), mapped through
    :func:`quantile_to_z`, and an empty array.
    """
    s = job.settings
    q = np.asarray(s.quantiles, dtype=np.float64)
    if what == "calibration":
        return fit_part(job.history, s, "calibration")
    if what == "final":
        return fit_part(job.history, s, "final")
    if what.startswith("final:"):
        return fit_part(job.history, s, "final", [int(what.removeprefix("final:"))])
    if what == "quantiles":
        model = fit(job.history, s)
        _, pred = predict_quantiles(model, job.history, job.issue_time)
        return np.asarray(pred, dtype=np.float64), q
    if what != "residuals":
        raise ValueError(what)
    last = job.issue_time.astype("datetime64[D]") - np.timedelta64(1, "D")  # D-2: known
    first = last - np.timedelta64(job.residual_days - 1, "D")
    bt = backtest(
        job.history,
        s,
        BacktestSettings(start=str(first), end=str(last), refit="once", baseline=False),
    )
    z = quantile_to_z(bt.pred, q, bt.actual)
    return z, np.zeros(0)


def forecast_quantiles(
    job: ForecastJob, parts: Sequence[str], results: Sequence[Any]
) -> tuple[FloatArray, FloatArray]:
    """The day's ``(24, n_q)`` quantiles and their levels from the parts of the fit
    (:func:`forecast_parts` and their results): the same as the ``"quantiles"`` task."""
    got = dict(zip(parts, results, strict=True))
    if "final" in got:
        final = tuple(got["final"])
    else:
        nb = booster_count(job.settings)
        final = tuple(b for k in range(nb) for b in got[f"final:{k}"])
    model = assemble(job.history, job.settings, got["calibration"], final)
    _, pred = predict_quantiles(model, job.history, job.issue_time)
    return np.asarray(pred, dtype=np.float64), np.asarray(job.settings.quantiles, np.float64)


def _z_levels(q: FloatArray) -> FloatArray:
    from scipy.stats import norm

    out: FloatArray = norm.ppf(q)
    return out


def z_to_quantile(pred: FloatArray, q: FloatArray, z: FloatArray) -> FloatArray:
    """Values at normal scores ``z`` of the marginals given by the quantiles ``pred``.

    Each marginal is piecewise linear in the normal score between its quantile
    levels and extended linearly beyond the outermost two (the end slopes), so
    that it reproduces every quantile exactly. ``pred`` is ``(..., n_q)``, ``z``
    broadcasts against ``pred[..., 0]``.
    """
    zq = _z_levels(q)
    p = np.sort(np.asarray(pred, dtype=np.float64), axis=-1)
    zz = np.asarray(z, dtype=np.float64)
    shape = np.broadcast_shapes(p.shape[:-1], zz.shape)
    p = np.broadcast_to(p, (*shape, p.shape[-1]))
    zz = np.broadcast_to(zz, shape)
    k = np.clip(np.searchsorted(zq, zz, side="right") - 1, 0, zq.size - 2)
    z0, z1 = zq[k], zq[k + 1]
    x0 = np.take_along_axis(p, k[..., None], axis=-1)[..., 0]
    x1 = np.take_along_axis(p, (k + 1)[..., None], axis=-1)[..., 0]
    out: FloatArray = x0 + (x1 - x0) * (zz - z0) / (z1 - z0)
    return out


def quantile_to_z(pred: FloatArray, q: FloatArray, x: FloatArray) -> FloatArray:
    """The inverse of :func:`z_to_quantile`: normal scores of outcomes ``x``.

    Where two quantiles coincide the score is the middle of their levels;
    missing outcomes give NaN.
    """
    zq = _z_levels(q)
    p = np.sort(np.asarray(pred, dtype=np.float64), axis=-1)
    xx = np.asarray(x, dtype=np.float64)
    shape = np.broadcast_shapes(p.shape[:-1], xx.shape)
    p = np.broadcast_to(p, (*shape, p.shape[-1]))
    xx = np.broadcast_to(xx, shape)
    n_q = zq.size
    # segment: last quantile at or below x (clipped to the end segments)
    k = np.clip(np.sum(p <= xx[..., None], axis=-1) - 1, 0, n_q - 2)
    x0 = np.take_along_axis(p, k[..., None], axis=-1)[..., 0]
    x1 = np.take_along_axis(p, (k + 1)[..., None], axis=-1)[..., 0]
    z0, z1 = zq[k], zq[k + 1]
    width = x1 - x0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(width > 0, z0 + (z1 - z0) * (xx - x0) / width, 0.5 * (z0 + z1))
    out = np.where(np.isfinite(xx), out, np.nan)
    return np.asarray(out, dtype=np.float64)


# -- the operating point -------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """How a system load becomes bus loads: the case's loads times a factor per hour.

    Positive loads are scaled by the factor (active and reactive power, constant
    power factor); negative loads (embedded generation in some cases) are kept
    as they are.
    """

    pd_pos_mw: FloatArray
    pd_neg_mw: FloatArray
    qd_pos_mvar: FloatArray
    qd_neg_mvar: FloatArray

    @classmethod
    def of(cls, net: Network) -> Spread:
        pd, qd = net.bus.pd_mw, net.bus.qd_mvar
        pos = pd > 0
        return cls(
            np.where(pos, pd, 0.0), np.where(pos, 0.0, pd),
            np.where(pos, qd, 0.0), np.where(pos, 0.0, qd),
        )  # fmt: skip

    def commitment_load(self, factors: FloatArray) -> FloatArray:
        """``(T, n_bus)`` loads for the commitment: the fixed negative loads netted.

        The commitment has no negative load: the embedded generation is taken
        off the positive loads in proportion (exact for a copper-plate balance).
        """
        pos = factors[:, None] * self.pd_pos_mw[None, :]
        tot = pos.sum(axis=1)
        neg = float(self.pd_neg_mw.sum())
        share = np.where(tot > 0, (tot + neg) / np.where(tot > 0, tot, 1.0), 0.0)
        out: FloatArray = np.clip(pos * np.clip(share, 0.0, None)[:, None], 0.0, None)
        return out


def operating_point(
    net: Network,
    spread: Spread,
    factor: float,
    pg_mw: FloatArray,
    committed: BoolArray,
    reduce_mw: FloatArray,
) -> Network:
    """The network of one hour of one scenario.

    Bus loads are the case's (positive) loads times ``factor`` plus its negative
    loads, less ``reduce_mw`` (renewable output taken and load shed by the plan,
    per bus); units run if ``committed`` (units of the case with no active
    range, e.g. synchronous condensers, keep their status), at ``pg_mw``.
    """
    pd = factor * spread.pd_pos_mw + spread.pd_neg_mw - reduce_mw
    qd = factor * spread.qd_pos_mvar + spread.qd_neg_mvar
    bus = dataclasses.replace(net.bus, pd_mw=pd, qd_mvar=qd)
    on0 = net.gen.in_service == 1
    keep = on0 & (net.gen.pmax_mw <= 0)
    status = np.where((on0 & committed) | keep, 1, 0).astype(np.int64)
    pg = np.where(status == 1, pg_mw, 0.0)
    gen = dataclasses.replace(net.gen, in_service=status, pg_mw=pg)
    return net.replace(bus=bus, gen=gen)


def generation_cost(net: Network, pg_mw: FloatArray) -> float:
    """Cost per hour of the units in service at ``pg_mw`` on the case's cost curves."""
    gc = net.gencost
    if gc is None:
        return math.nan
    on = np.flatnonzero(net.gen.in_service == 1)
    total = 0.0
    for g in on.tolist():
        n = int(gc.ncost[g])
        par = gc.params[g]
        p = float(pg_mw[g])
        if int(gc.model[g]) == 2:
            total += float(np.polyval(par[:n], p)) if n else 0.0
        else:
            xs, ys = par[0 : 2 * n : 2], par[1 : 2 * n : 2]
            if n >= 2:
                slope_lo = (ys[1] - ys[0]) / (xs[1] - xs[0])
                slope_hi = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
                if p < xs[0]:
                    total += float(ys[0] + slope_lo * (p - xs[0]))
                elif p > xs[-1]:
                    total += float(ys[-1] + slope_hi * (p - xs[-1]))
                else:
                    total += float(np.interp(p, xs, ys))
    return total


# -- commitment stage ----------------------------------------------------------------------


@dataclass(frozen=True)
class CommitJob:
    """Shared by the commitment tasks: the day's network and how loads spread."""

    net: Network
    spread: Spread
    renewable_mw: FloatArray  # (24, n_bus) availability
    options: CommitmentOptions


@dataclass(frozen=True)
class CommitOutcome:
    """A scenario's plan: per hour and unit, per hour and bus."""

    status: str
    message: str
    pg_mw: FloatArray  # (24, n_gen)
    committed: BoolArray  # (24, n_gen)
    renewable_mw: FloatArray  # (24, n_bus) taken
    shed_mw: FloatArray  # (24, n_bus)
    objective: float
    mip_gap: float
    time_s: float


def commit_task(job: CommitJob, factors: FloatArray) -> CommitOutcome:
    """Unit commitment and dispatch of one scenario's 24 hours."""
    t0 = time.perf_counter()
    load = job.spread.commitment_load(np.asarray(factors, dtype=np.float64))
    prof = Profile(load, job.renewable_mw, 1.0)
    res = commit(job.net, prof, options=job.options)
    return CommitOutcome(
        status=res.status,
        message=res.message,
        pg_mw=np.asarray(res.pg_mw),
        committed=np.asarray(res.committed),
        renewable_mw=np.asarray(res.renewable_mw),
        shed_mw=np.asarray(res.shed_mw),
        objective=float(res.objective),
        mip_gap=float(res.mip_gap),
        time_s=time.perf_counter() - t0,
    )


# -- hourly stage --------------------------------------------------------------------------


@dataclass(frozen=True)
class HourJob:
    """Shared by every (hour, scenario) task: shipped once per network version."""

    net: Network
    spread: Spread
    contingency: ContingencyOptions
    sced: SCEDOptions | None
    sced_shed: SCEDOptions | None
    verify_preventive: bool
    redispatch: RedispatchOptions
    branch_fail_per_h: FloatArray  # (24, n_branch)
    gen_fail_per_h: FloatArray  # (24, n_gen)
    samples: int
    seed: int


@dataclass(frozen=True)
class HourItem:
    """One hour of one scenario: the plan's operating point."""

    hour: int
    scenario: int
    factor: float
    pg_mw: FloatArray
    committed: BoolArray
    reduce_mw: FloatArray


@dataclass(frozen=True)
class HourOutcome:
    """What one (hour, scenario) task found.

    ``pair_cont`` / ``pair_branch`` / ``pair_loading`` list the branches above
    rating after a contingency that are not already above it before (code of
    the contingency: the branch row, or ``n_branch + gen row``);
    ``base_over`` / ``base_loading`` the branches above rating with every
    element in service.
    """

    hour: int
    scenario: int
    status: str
    message: str
    contingencies: int
    ac_solved: int
    islanding: int
    islanding_lost_mw: float
    diverged: IntArray
    base_over: IntArray
    base_loading: FloatArray
    pair_cont: IntArray
    pair_branch: IntArray
    pair_loading: FloatArray
    max_loading: FloatArray  # (n_branch,) worst loading over base and contingencies
    planned_cost: float
    preventive_status: str
    preventive_cost: float
    preventive_shed_mw: float
    preventive_moved_mw: float
    preventive_unsecured: int
    residual_base: int
    residual_pairs: int
    mc_p_any: float
    mc_shed_mw: FloatArray  # one per conditional sample
    mc_base_shed_mw: float
    mc_states: int
    mc_unresolved: int
    screen_s: float
    preventive_s: float
    mc_s: float


def _codes(res: Any, n_branch: int) -> IntArray:
    el = np.asarray(res.element, dtype=np.int64)
    out: IntArray = np.where(res.kind == "branch", el, n_branch + el).astype(np.int64)
    return out


def _screen(net: Network, opts: ContingencyOptions) -> tuple[Any, FloatArray]:
    res = screen_n1(net, opts)
    base = res.base
    assert base is not None
    rate = net.branch.rating_mva(opts.rating)
    rate = np.where(rate > 0, rate, np.inf)
    base_load = np.maximum(base.s_from_mva, base.s_to_mva) / rate * 100.0
    return res, np.asarray(base_load, dtype=np.float64)


def _pairs(res: Any, base_load: FloatArray, n_branch: int) -> tuple[IntArray, IntArray, FloatArray]:
    """(contingency code, branch, loading) of the branches above 100 % after a contingency
    that are not above it in the base case."""
    codes = _codes(res, n_branch)
    lens = np.array([o.size for o in res.overloaded], dtype=np.int64)
    if not lens.sum():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    br = np.concatenate([o for o in res.overloaded if o.size]).astype(np.int64)
    pct = np.concatenate([np.asarray(x, dtype=np.float64) for x in res.overloaded_pct if x.size])
    cc = np.repeat(codes, lens)
    new = ~(base_load[br] > 100.0)
    return cc[new], br[new], pct[new]


def _max_loading(res: Any, base_load: FloatArray, n_branch: int) -> FloatArray:
    """Worst loading of each branch, base case or after any contingency (screened worst only)."""
    out = np.where(np.isfinite(base_load), base_load, 0.0).astype(np.float64)
    w = np.asarray(res.worst_branch, dtype=np.int64)
    m = np.asarray(res.max_loading_pct, dtype=np.float64)
    ok = (w >= 0) & np.isfinite(m)
    np.maximum.at(out, w[ok], m[ok])
    return out


def hour_task(job: HourJob, item: HourItem) -> HourOutcome:
    """AC N-1 of one hour of one scenario, its preventive redispatch, and its EENS samples."""
    t0 = time.perf_counter()
    net = operating_point(
        job.net, job.spread, item.factor, item.pg_mw, item.committed, item.reduce_mw
    )
    nl = net.n_branch
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0)
    try:
        res, base_load = _screen(net, job.contingency)
    except AiguilleurError as e:
        return HourOutcome(
            item.hour, item.scenario, "not_converged", " ".join(str(e).split()), 0, 0, 0, 0.0,
            empty_i, empty_i, empty_f, empty_i, empty_i, empty_f, np.zeros(nl), math.nan,
            "not_run", math.nan, 0.0, 0.0, 0, -1, -1, math.nan, empty_f, math.nan, 0, 0,
            time.perf_counter() - t0, 0.0, 0.0,
        )  # fmt: skip
    screen_s = time.perf_counter() - t0
    base_over = np.flatnonzero(base_load > 100.0).astype(np.int64)
    cc, br, pair_load = _pairs(res, base_load, nl)
    diverged = _codes(res, nl)[res.status == "diverged"]
    isl = res.status == "islanding"
    lost = float(np.max(res.lost_load_mw[isl])) if isl.any() else 0.0
    planned = generation_cost(net, np.asarray(net.gen.pg_mw))

    # preventive redispatch: the cheapest dispatch of the committed units that is N-1 secure
    t1 = time.perf_counter()
    p_status, p_cost, p_shed, p_moved = "not_needed", 0.0, 0.0, 0.0
    p_unsecured = 0
    resid_base, resid_pairs = int(base_over.size), int(cc.size)
    mc_net, mc_pg = net, np.asarray(net.gen.pg_mw)
    congested = bool(base_over.size or cc.size)
    if job.sced is None:
        p_status = "not_run"
        resid_base = resid_pairs = -1
    elif congested:
        # DC limits that leave room for each branch's reactive flow at this point (one
        # AC-DC step: the active-power limit is sqrt(rating^2 - Q^2), at least 10 % of it)
        assert res.base is not None
        q = np.maximum(np.abs(res.base.q_from_mvar), np.abs(res.base.q_to_mvar))
        rate = net.branch.rating_mva(job.contingency.rating)
        p_lim = np.where(rate > 0, np.sqrt(np.maximum(rate**2 - q**2, (0.1 * rate) ** 2)), rate)
        col = f"rate_{job.contingency.rating}_mva"
        dc_net = net.replace(branch=dataclasses.replace(net.branch, **{col: p_lim}))
        p_status = ""
        sres = sced(dc_net, job.sced)
        if sres.status == "infeasible":
            # the reactive allowance leaves no dispatch: the plain ratings
            sres = sced(net, job.sced)
            p_status = "rating_"
        if sres.status == "infeasible" and job.sced_shed is not None:
            # not even the base case can be met by the committed units: shed as a last resort
            sres = sced(net, job.sced_shed)
            p_status += "shed_"
        p_status += sres.status
        if sres.status in ("optimal", "insecure"):
            p_unsecured = len({c.outage for c in sres.unsecured})
            d = sres.dispatch
            pg_new = np.where(net.gen.in_service == 1, np.nan_to_num(d.pg_mw), 0.0)
            shed = np.nan_to_num(np.asarray(d.shed_mw, dtype=np.float64))
            p_cost = float(d.objective) - planned
            p_shed = float(shed.sum())
            p_moved = 0.5 * float(np.abs(pg_new - net.gen.pg_mw).sum())
            after = net.with_dispatch(pg_new).replace(
                bus=dataclasses.replace(net.bus, pd_mw=net.bus.pd_mw - shed)
            )
            mc_net, mc_pg = after, pg_new
            if job.verify_preventive:
                try:
                    r2, bl2 = _screen(after, job.contingency)
                    c2, _, _ = _pairs(r2, bl2, nl)
                    resid_base, resid_pairs = int(np.sum(bl2 > 100.0)), int(c2.size)
                except AiguilleurError:
                    p_status = "not_converged"
                    resid_base = resid_pairs = -1
            else:
                resid_base = resid_pairs = -1
        else:
            p_cost = math.nan
    preventive_s = time.perf_counter() - t1

    # Monte Carlo beyond N-1: outage states conditioned on at least one failure
    t2 = time.perf_counter()
    p_any, shed_s, base_shed, states, unresolved = _monte_carlo(job, item, mc_net, mc_pg)
    mc_s = time.perf_counter() - t2
    return HourOutcome(
        hour=item.hour,
        scenario=item.scenario,
        status="ok",
        message="",
        contingencies=len(res),
        ac_solved=int(res.ac_solved),
        islanding=int(isl.sum()),
        islanding_lost_mw=lost,
        diverged=diverged.astype(np.int64),
        base_over=base_over,
        base_loading=base_load[base_over],
        pair_cont=cc.astype(np.int64),
        pair_branch=br.astype(np.int64),
        pair_loading=pair_load,
        max_loading=_max_loading(res, base_load, nl),
        planned_cost=planned,
        preventive_status=p_status,
        preventive_cost=p_cost,
        preventive_shed_mw=p_shed,
        preventive_moved_mw=p_moved,
        preventive_unsecured=p_unsecured,
        residual_base=resid_base,
        residual_pairs=resid_pairs,
        mc_p_any=p_any,
        mc_shed_mw=shed_s,
        mc_base_shed_mw=base_shed,
        mc_states=states,
        mc_unresolved=unresolved,
        screen_s=screen_s,
        preventive_s=preventive_s,
        mc_s=mc_s,
    )


def sample_states(p: FloatArray, n: int, rng: np.random.Generator) -> tuple[float, BoolArray]:
    """``n`` outage states of independent elements, conditioned on at least one failure.

    The first failed element ``k`` is drawn with probability
    ``p_k prod_{j<k} (1 - p_j) / P(any)``; every later element fails
    independently with its own probability. Returns ``P(any)`` and the
    ``(n, len(p))`` states.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    m = p.size
    states = np.zeros((n, m), dtype=bool)
    if m == 0 or n == 0:
        return 0.0, states
    log_keep = np.concatenate([[0.0], np.cumsum(np.log1p(-np.minimum(p, 1.0 - 1e-16)))])
    p_none = float(np.exp(log_keep[-1])) if np.all(p < 1.0) else 0.0
    p_any = 1.0 - p_none
    if p_any <= 0.0:
        return 0.0, states
    first = p * np.exp(log_keep[:-1])
    cdf = np.cumsum(first)
    k = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    k = np.minimum(k, m - 1)
    later = rng.random((n, m)) < p[None, :]
    cols = np.arange(m)[None, :]
    states = (later & (cols > k[:, None])) | (cols == k[:, None])
    return p_any, states


def _monte_carlo(
    job: HourJob, item: HourItem, net: Network, pg: FloatArray
) -> tuple[float, FloatArray, float, int, int]:
    if job.samples <= 0:
        return 0.0, np.zeros(0), 0.0, 0, 0
    br = np.flatnonzero(net.branch.in_service == 1)
    gn = np.flatnonzero(net.gen.in_service == 1)
    p = np.concatenate([job.branch_fail_per_h[item.hour, br], job.gen_fail_per_h[item.hour, gn]])
    rng = np.random.default_rng([job.seed, item.hour, item.scenario])
    p_any, states = sample_states(p, job.samples, rng)
    rd = Redispatcher(net, pg, job.redispatch)
    base = rd.solve([])
    base_shed = float(np.sum(base.shed_mw)) if base.status != "error" else math.nan
    shed = np.zeros(job.samples)
    if p_any <= 0.0:
        return 0.0, shed, base_shed, 0, 0
    cache: dict[bytes, float] = {}
    unresolved = 0
    n_br = br.size
    for i in range(job.samples):
        idx = np.flatnonzero(states[i])
        key = idx.tobytes()
        v = cache.get(key)
        if v is None:
            outs = [
                Outage("branch", int(br[j])) if j < n_br else Outage("gen", int(gn[j - n_br]))
                for j in idx.tolist()
            ]
            r = rd.solve(outs)
            if r.status in ("optimal", "overloads_remain"):
                v = float(np.sum(r.shed_mw))
            else:
                # the balance itself cannot be met (over-generation in an island): no
                # load is lost for want of supply; counted apart
                v = float(np.sum(r.shed_mw)) if r.shed_mw.size else 0.0
                unresolved += 1
            cache[key] = v
        shed[i] = v
    return p_any, shed, base_shed, len(cache), unresolved
