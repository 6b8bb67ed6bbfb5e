"""The responder: each event becomes the analyses it affects, a verified proposal, and alarms.

For a batch of committed events (one event, or what arrived while the last
analysis ran: the newest state wins) the responder runs only what the
events affect, each against a deadline:

* **grid** (a trip, a restore, a derate, a demand or renewable change, a
  rating change, an applied grid plan, a new grid): the corrective plan of
  :func:`aiguilleur.grid.corrective.corrective_plan`, which begins with an AC
  power flow of the grid as it stands and returns only a plan that holds in
  an independent AC power flow (or says exactly what remains); then the N-1
  screen (DC screening, AC verification) against emergency ratings. A plan
  becomes a ``grid_corrective`` proposal; shedding is never applied without
  an operator.
* **risk** (after a grid analysis, or new asset health): contingencies ranked
  by probability x impact (:func:`aiguilleur.ops.assets.risk_ranking`).
* **health** (condition-monitoring readings): failure probability per asset
  within the horizon; an asset likely to fail raises an alarm naming it.
* **lookahead** (a load forecast): the grid at the forecast's P50 and P90 for
  the next hours (demand scaled, dispatch following by headroom), held against
  rate A in an AC power flow; hours with overloads raise alarms with the time
  left to act.
* **fleet** (closures, depots, breakdowns, orders, supply): each affected
  fleet re-planned from where its vehicles are
  (:func:`aiguilleur.ops.fleet.replan_fleet`), as a ``fleet_replan`` proposal.

Alarms have a severity (``alarm``, ``action``, ``compliant``, ``information``,
the vocabulary of control-room alarm standards), a time to act and an id that
operators acknowledge. An analysis that misses its deadline, or runs on stale
input, raises its own alarm.

A :class:`Responder` keeps caches between calls (the last N-1 screen per grid
version, the compiled redispatch model, the fleet's road model, the health
models); it is used from one thread at a time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from aiguilleur.errors import AiguilleurError
from aiguilleur.ops import events as ev
from aiguilleur.ops._canon import json_safe
from aiguilleur.ops.state import State

__all__ = ["SEVERITIES", "Reaction", "Responder", "ResponderOptions", "affected"]

SEVERITIES = ("alarm", "action", "compliant", "information")
_GRID_ACTIONS = ("set_dispatch", "set_voltage", "set_reactive", "shed_load", "trip_gen")


@dataclass(frozen=True)
class ResponderOptions:
    """Deadlines, horizons and the approval policy of the responder.

    Parameters
    ----------
    grid_deadline_s, fleet_deadline_s, health_deadline_s, lookahead_deadline_s
        Wall time each analysis may take; beyond it the analysis raises a
        ``deadline`` alarm (and the fleet re-plan returns what it has).
    minutes
        Time units have to move in a corrective plan (ramp limits).
    voll_eur_per_mwh
        Value of lost load.
    n1
        Run the N-1 screen after each grid change.
    horizon_h
        Horizon of failure probabilities and risk.
    health_cycle_h
        Hours of operation per cycle of condition-monitoring readings.
    lookahead_hours
        Hours of a load forecast the look-ahead checks.
    forecast_stale_h
        A forecast older than this (by the state's clock) is stale.
    risk_top
        Contingencies of the screen ranked by risk (beside every monitored asset).
    auto_apply
        Proposal kinds applied without an operator: ``"grid_corrective"``
        (only plans that hold in AC and shed nothing: shedding is never
        automatic) and ``"fleet_replan"``.
    n1_time_to_act_s
        Time to act on an N-1 insecurity (return to a secure state).
    seed, fleet_workers
        Search seed and parallel searches of fleet re-plans.
    estimate
        Run the state estimator on each batch with telemetry
        (:mod:`aiguilleur.ops.estimator`); when it sees a branch overloaded that
        the model does not, the grid analysis runs too.
    estimate_deadline_s
        Wall time the estimate may take; beyond it, a ``deadline`` alarm.
    estimator
        :class:`~aiguilleur.ops.estimator.EstimatorOptions` (``None``: defaults).
    """

    grid_deadline_s: float = 10.0
    fleet_deadline_s: float = 2.5
    health_deadline_s: float = 2.0
    lookahead_deadline_s: float = 5.0
    minutes: float = 15.0
    voll_eur_per_mwh: float = 10_000.0
    n1: bool = True
    horizon_h: float = 24.0
    health_cycle_h: float = 1.0
    lookahead_hours: int = 6
    forecast_stale_h: float = 24.0
    risk_top: int = 10
    auto_apply: tuple[str, ...] = ()
    n1_time_to_act_s: float = 1800.0
    seed: int = 1
    fleet_workers: int = 1
    estimate: bool = True
    estimate_deadline_s: float = 5.0
    estimator: Any = None

    def __post_init__(self) -> None:
        from aiguilleur.errors import ValidationError

        for name in (
            "grid_deadline_s",
            "fleet_deadline_s",
            "health_deadline_s",
            "lookahead_deadline_s",
            "minutes",
            "voll_eur_per_mwh",
            "horizon_h",
            "health_cycle_h",
            "forecast_stale_h",
            "n1_time_to_act_s",
            "estimate_deadline_s",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf:
                raise ValidationError(f"{name}: expected a positive finite number, got {v!r}")
        for name in ("lookahead_hours", "risk_top", "fleet_workers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10_000:
                raise ValidationError(f"{name}: expected a non-negative integer, got {v!r}")
        from aiguilleur.ops.estimator import EstimatorOptions

        if not isinstance(self.estimate, bool):
            raise ValidationError(f"estimate: expected true or false, got {self.estimate!r}")
        if self.estimator is not None and not isinstance(self.estimator, EstimatorOptions):
            raise ValidationError("estimator: expected EstimatorOptions or None")
        bad = [k for k in self.auto_apply if k not in ("grid_corrective", "fleet_replan")]
        if bad:
            raise ValidationError(
                f"auto_apply: unknown proposal kind {bad[0]!r} "
                "(expected grid_corrective or fleet_replan)"
            )


@dataclass(frozen=True)
class Reaction:
    """What the responder produced for a batch of events."""

    seq: int
    answered: tuple[int, ...]
    analyses: tuple[dict[str, Any], ...]
    proposals: tuple[dict[str, Any], ...]
    alarms: tuple[dict[str, Any], ...]
    time_s: float
    proposal_at_s: dict[str, float] = field(default_factory=dict)


def affected(events: Sequence[Any]) -> dict[str, set[str]]:
    """The analyses a batch of events calls for: ``{"grid": ..., "fleet": {fleets}, ...}``."""
    out: dict[str, set[str]] = {}
    for e in events:
        t = e.type
        if t in ev.GRID_EVENT_TYPES or t == "grid_initialised":
            out.setdefault("grid", set())
        elif t in ("proposal_approved", "proposal_amended"):
            kinds = {a.kind for a in e.actions}
            if kinds & set(_GRID_ACTIONS):
                out.setdefault("grid", set())
        elif t == "health_reading" or t == "asset_registered":
            out.setdefault("health", set()).add(e.asset)
        elif t == "telemetry":
            out.setdefault("telemetry", set())
        elif t == "forecast_issued" and e.quantity == "load":
            out.setdefault("lookahead", set())
        elif t == "fleet_initialised":
            out.setdefault("fleet_init", set())
        elif t in ev.LOGISTICS_EVENT_TYPES and t != "vehicle_position":
            out.setdefault("fleet", set()).add(getattr(e, "fleet", "*"))
    if "fleet" in out:
        out["fleet"] = {"*"} if "*" in out["fleet"] else out["fleet"]
    return out


def _iso(state: State) -> str:
    return state.clock or "1970-01-01T00:00:00+00:00"


class OpeningChecks:
    """The opening AC check of each grid version, run once by whichever thread asks first.

    The responder opens every grid analysis with an AC power flow held against
    rate A, and its limit alarms go out before the corrective plan is made. A
    watcher (:class:`aiguilleur.ops.stream.LimitWatch`) may run the same check
    for a new grid version while the responder is still busy with an earlier
    event; the responder then reuses that check and does not raise its alarms
    a second time. A thread that asks for a version another thread is
    checking waits for that result.
    """

    def __init__(self, keep: int = 16) -> None:
        self._lock = threading.Lock()
        self._runs: OrderedDict[int, Future[Any]] = OrderedDict()
        self._keep = keep

    def run(self, version: int, check: Callable[[], Any]) -> tuple[Any, bool]:
        """``(result, ran_here)``: the check of ``version``, computed now or by another thread."""
        with self._lock:
            fut = self._runs.get(version)
            mine = fut is None
            if fut is None:
                fut = Future()
                self._runs[version] = fut
                while len(self._runs) > self._keep:
                    self._runs.popitem(last=False)
        if mine:
            try:
                fut.set_result(check())
            except BaseException as e:
                fut.set_exception(e)
                raise
        return fut.result(), mine

    def checked(self, version: int) -> bool:
        """Whether the check of ``version`` has started (here or elsewhere)."""
        with self._lock:
            return version in self._runs


def raise_opening_alarms(net: Any, now: Any, out: _Out, minutes: float) -> None:
    if not now.converged:
        out.alarm(
            "ac_not_converged", "alarm", "the AC power flow of the grid does not converge", 0.0
        )
    for line in now.describe(net)[:20] if now.converged and not now.ok else []:
        out.alarm("limit", "alarm", line, minutes * 60.0)


def watch_limits(
    state: State,
    checks: OpeningChecks,
    publish: Callable[[dict[str, Any]], None],
    minutes: float,
) -> list[dict[str, Any]]:
    """The opening check of ``state``'s grid version, if nobody has run it yet.

    Returns the alarms raised (each already handed to ``publish``); their ids
    are ``A<seq>-L<n>``, apart from the responder's own ``A<seq>-<n>``.
    """
    g = state.grid
    if g is None or checks.checked(g.version):
        return []
    alarms: list[dict[str, Any]] = []
    out = _Out(state.last_seq, state, [], [], alarms, {}, time.perf_counter(), [], publish, "L")
    net = g.net
    now, mine = checks.run(g.version, lambda: ac_check_only(net))
    if mine:
        raise_opening_alarms(net, now, out, minutes)
    return alarms


def ac_check_only(net: Any) -> Any:
    from aiguilleur.grid.corrective import ac_check

    return ac_check(net, "a")


class Responder:
    """Turns committed events into analyses, proposals and alarms (see the module docstring)."""

    def __init__(self, options: ResponderOptions | None = None) -> None:
        self.options = ResponderOptions() if options is None else options
        self._n1: tuple[int, Any] | None = None  # (grid version, ContingencyResult)
        self._redispatcher: tuple[int, Any] | None = None
        self._impacts: tuple[int, dict[str, dict[str, Any]]] = (-1, {})
        self._asset_risk: dict[str, dict[str, Any]] = {}
        self._fleet_model: Any = None
        self._health: Any = None
        self._health_fit: Any = None
        self._last_opf: Any = None  # the last corrective AC-OPF: the next one's warm start
        self.last_risk: list[dict[str, Any]] = []
        self.last_grid: dict[str, Any] | None = None
        self._n1_alarm: tuple[int, str | None] | None = None
        self._estimator: Any = None  # ops.estimator.StateEstimator, made on first telemetry
        # the opening AC check per grid version, shared with a limit watcher (thread-safe)
        self.opening = OpeningChecks()

    # -- entry point --------------------------------------------------------------------
    def react(
        self,
        state: State,
        batch: Sequence[tuple[int, Any]],
        publish: Callable[[dict[str, Any]], None] | None = None,
    ) -> Reaction:
        """Analyse ``batch`` on ``state``; ``publish`` gets each alarm as soon as it is raised."""
        t0 = time.perf_counter()
        seq = state.last_seq
        todo = affected([e for _, e in batch])
        analyses: list[dict[str, Any]] = []
        proposals: list[dict[str, Any]] = []
        alarms: list[dict[str, Any]] = []
        at: dict[str, float] = {}
        out = _Out(seq, state, analyses, proposals, alarms, at, t0, list(batch), publish)
        answered = tuple(s for s, _ in batch)
        if self._health_fit is None and state.grid is not None and state.grid.assets:
            # assets are monitored: fit the health models now, beside the grid analyses
            from aiguilleur.ops.assets import HealthModels

            self._health_fit = threading.Thread(
                target=HealthModels.bundled, name="aiguilleur-health-fit", daemon=True
            )
            self._health_fit.start()
        if "grid" in todo and state.grid is not None:
            self._grid(state, out)
        estimating = "telemetry" in todo and state.grid is not None and self.options.estimate
        # the field sees an overload the model does not: assess the grid too
        if estimating and self._estimate(state, out, batch) and "grid" not in todo:
            self._grid(state, out)
        if ("health" in todo or "grid" in todo) and state.grid is not None:
            if "health" in todo:
                self._health_analysis(state, out, todo["health"])
            if self.options.n1:
                self._risk(state, out)
        if "lookahead" in todo and state.grid is not None:
            self._lookahead(state, out)
        if ("fleet" in todo or "fleet_init" in todo) and state.fleet is not None:
            self._fleet(state, out, todo.get("fleet", {"*"}))
        return Reaction(
            seq,
            answered,
            tuple(analyses),
            tuple(proposals),
            tuple(alarms),
            time.perf_counter() - t0,
            at,
        )

    # -- grid ---------------------------------------------------------------------------
    def _grid(self, state: State, out: _Out) -> None:
        from aiguilleur.grid import ContingencyOptions, screen_n1
        from aiguilleur.grid.corrective import CorrectiveOptions, corrective_plan
        from aiguilleur.ops.world import emergency_network

        o = self.options
        g = state.grid
        assert g is not None
        net = g.net
        from aiguilleur.grid.corrective import ac_check

        # the limits first (one AC power flow): their alarms go out before the plan is made
        # (a limit watcher may have run this check already: its alarms are out then)
        now, mine = self.opening.run(g.version, lambda: ac_check_only(net))
        if mine:
            raise_opening_alarms(net, now, out, o.minutes)
        copts = CorrectiveOptions(
            minutes=o.minutes, voll_eur_per_mwh=o.voll_eur_per_mwh, time_limit_s=o.grid_deadline_s
        )
        t = time.perf_counter()
        restoring = False
        try:
            plan = None
            only_decisions = all(e.type in ev.OPERATOR_EVENT_TYPES for _, e in out.batch)
            if g.total_shed_mw > 1e-6 and not only_decisions:
                # load is shed: plan from the grid with every load restored, so that the
                # proposal sheds only what the grid still needs (possibly nothing)
                plan = corrective_plan(_restored(g), copts, warm=self._last_opf)
                # restore only for a real gain (a re-optimised plan shaving a few kW off
                # the shedding is not worth an operator's decision)
                gain = g.total_shed_mw - plan.shed_total_mw
                restoring = plan.ok and gain >= max(1.0, 0.02 * g.total_shed_mw)
            if not restoring:
                # the opening check is this grid's AC check at rate A with the default
                # tolerances, as the plan's options ask: the plan starts from it
                plan = corrective_plan(net, copts, warm=self._last_opf, before=now)
            assert plan is not None
            if plan.opf is not None:
                self._last_opf = plan.opf
        except AiguilleurError as e:
            out.analysis(
                "corrective",
                "aiguilleur.grid.corrective",
                "error",
                time.perf_counter() - t,
                {"message": str(e)[:300]},
            )
            out.alarm("analysis_error", "alarm", f"corrective plan failed: {str(e)[:200]}", 0.0)
            return
        assert plan is not None
        dt_plan = time.perf_counter() - t
        if restoring:
            from aiguilleur.grid.corrective import ac_check

            before = ac_check(net, "a")
        else:
            before = plan.before
        body = {**plan.to_dict(net), "restoring_load": restoring}
        out.analysis(
            "corrective",
            "aiguilleur.grid.corrective (redispatch, AC-OPF, AC power flow)",
            plan.status,
            dt_plan,
            body,
            grid_version=g.version,
        )
        n1_body: dict[str, Any] | None = None
        if o.n1:
            # The N-1 screen of the grid the operator will be in: after the plan when it
            # holds in AC; otherwise the grid as it is, DC screen only (every outage would
            # inherit the base-case violations, and verifying each in AC says nothing new).
            from aiguilleur.grid.corrective import apply_plan

            after_plan = (plan.needed or restoring) and plan.ok
            screened = (
                apply_plan(
                    _restored(g) if restoring else net,
                    plan.pg_mw,
                    plan.vg_pu,
                    plan.qg_mvar,
                    plan.shed_mw,
                )
                if after_plan
                else net
            )
            ac = before.ok or after_plan
            t = time.perf_counter()
            try:
                n1 = screen_n1(
                    emergency_network(screened),
                    ContingencyOptions(rating="c", generators=True, ac_verify=ac),
                )
                if not plan.needed and not restoring:
                    self._n1 = (g.version, n1)
                counts = {k: n1.count(k) for k in ("secure", "overload", "islanding", "diverged")}
                top = [
                    {
                        "contingency": ev.outage_ref(str(n1.kind[p]), int(n1.element[p])),
                        "status": str(n1.status[p]),
                        "max_loading_pct": _f(n1.max_loading_pct[p]),
                        "worst_branch": f"branch:{int(n1.worst_branch[p]) + 1}"
                        if int(n1.worst_branch[p]) >= 0
                        else None,
                        "lost_load_mw": float(n1.lost_load_mw[p]),
                    }
                    for p in n1.ranked()[:20]
                    if str(n1.status[p]) != "secure"
                ]
                n1_body = {
                    "contingencies": len(n1),
                    **counts,
                    "ranked": top,
                    "rating": "emergency (rate C, or 1.2 x rate A)",
                    "grid": "after the proposed plan" if after_plan else "as it is",
                    "method": "DC screen, AC verification" if ac else "DC screen only",
                }
                out.analysis(
                    "n1",
                    "aiguilleur.grid.contingency",
                    "optimal",
                    time.perf_counter() - t,
                    n1_body,
                    grid_version=g.version,
                )
            except AiguilleurError as e:
                out.analysis(
                    "n1",
                    "aiguilleur.grid.contingency",
                    "error",
                    time.perf_counter() - t,
                    {"message": str(e)[:300]},
                )
        elapsed = time.perf_counter() - out.t0
        if elapsed > o.grid_deadline_s:
            out.alarm(
                "deadline",
                "alarm",
                f"grid analysis took {elapsed:.2f} s, past its {o.grid_deadline_s:g} s deadline",
                0.0,
            )
        # (the limit alarms went out from the opening AC check); back within limits: say so once
        if before.ok and self.last_grid is not None and not self.last_grid.get("ok", True):
            out.alarm("limit", "compliant", "every branch and voltage back within limits", 0.0)
        self.last_grid = {"ok": before.ok, "version": g.version}
        if n1_body is not None and (n1_body["overload"] or n1_body["diverged"]):
            worst = next((r for r in n1_body["ranked"] if r["status"] != "islanding"), None)
            key = (n1_body["overload"] + n1_body["diverged"], worst and worst["contingency"])
            if worst is not None and key != self._n1_alarm:
                self._n1_alarm = key
                out.alarm(
                    "n1_insecure",
                    "action",
                    f"N-1: {n1_body['overload'] + n1_body['diverged']} outage(s) would overload "
                    f"the grid beyond emergency ratings; worst {worst['contingency']} "
                    f"({_txt(worst['max_loading_pct'])} % on {worst['worst_branch']})",
                    o.n1_time_to_act_s,
                )
        if not plan.needed and not restoring:
            return
        # the proposal: shedding is stated as the total shed at each bus from now on
        actions = [_grid_action(a) for a in plan.actions if a.kind != "shed_load"]
        shed_now = np.asarray(g.shed_mw)
        total = np.asarray(plan.shed_mw) if restoring else shed_now + np.asarray(plan.shed_mw)
        bus_ids = net.bus.bus_id
        for i in np.flatnonzero(np.abs(total - shed_now) > 1e-3).tolist():
            actions.append(ev.ShedLoad(bus=f"bus:{int(bus_ids[i])}", shed_mw=float(total[i])))
        shed = float(np.sum(total))
        ok = plan.ok
        expl = [a.explanation for a in plan.actions[:30]]
        if restoring:
            expl.insert(
                0,
                f"restore load: {g.total_shed_mw:,.1f} MW shed now, {shed:,.1f} MW after this plan",
            )
        if not ok:
            expl.insert(0, "this plan does NOT hold in AC: " + "; ".join(plan.remaining[:10]))
            out.alarm(
                "plan_fails",
                "alarm",
                "no corrective plan holds in AC within the ramp limits; remaining: "
                + "; ".join(plan.remaining[:5]),
                o.minutes * 60.0,
            )
        summary = {
            "holds_in_ac": ok,
            "restores_mw": max(g.total_shed_mw - shed, 0.0),
            "status": plan.status,
            "method": plan.method,
            "cost_eur_per_h": plan.cost_eur_per_h,
            "shed_mw": shed,
            "overloads_before": len(before.overloads),
            "overloads_after": len(plan.after.overloads),
            "voltage_violations_before": len(before.low_voltage) + len(before.high_voltage),
            "voltage_violations_after": len(plan.after.low_voltage) + len(plan.after.high_voltage),
            "max_loading_before_pct": _f(before.max_loading_pct),
            "max_loading_after_pct": _f(plan.after.max_loading_pct),
            "remaining": list(plan.remaining),
            "moved_units": sum(1 for a in plan.actions if a.kind == "set_dispatch"),
        }
        out.proposal(
            "grid_corrective",
            "grid",
            actions,
            summary,
            expl,
            ok=ok,
            sheds=shed > g.total_shed_mw + 1e-6,
            grid_version=g.version,
            provenance=[
                {
                    "analysis": "corrective",
                    "solver": plan.method,
                    "status": plan.status,
                    "time_s": dt_plan,
                }
            ],
        )

    def _risk(self, state: State, out: _Out) -> None:
        from aiguilleur.grid.redispatch import Redispatcher, RedispatchOptions
        from aiguilleur.ops.assets import risk_ranking
        from aiguilleur.ops.world import emergency_network

        g = state.grid
        assert g is not None
        if self._n1 is None or self._n1[0] != g.version:
            return
        t = time.perf_counter()
        try:
            version = g.version

            def redispatcher() -> Any:
                # compiled once per grid version, and only when a contingency needs a plan
                if self._redispatcher is None or self._redispatcher[0] != version:
                    rd = Redispatcher(
                        emergency_network(g.net),
                        None,
                        RedispatchOptions(
                            minutes=self.options.minutes, rating="c", credit_savings=False
                        ),
                    )
                    self._redispatcher = (version, rd)
                return self._redispatcher[1]

            if self._impacts[0] != g.version:
                self._impacts = (g.version, {})
            ranking = risk_ranking(
                g.net,
                self._n1[1],
                self._asset_risk,
                g.assets,
                self.options.horizon_h,
                top=self.options.risk_top,
                redispatcher=redispatcher,
                impacts=self._impacts[1],
            )
        except AiguilleurError as e:
            out.analysis(
                "risk",
                "aiguilleur.ops.assets",
                "error",
                time.perf_counter() - t,
                {"message": str(e)[:300]},
            )
            return
        self.last_risk = ranking
        out.analysis(
            "risk",
            "aiguilleur.ops.assets (N-1 screen, DC corrective redispatch, health)",
            "optimal",
            time.perf_counter() - t,
            {"horizon_h": self.options.horizon_h, "ranking": ranking},
            grid_version=g.version,
        )

    # -- state estimation -----------------------------------------------------------------
    def _estimate(self, state: State, out: _Out, batch: Sequence[tuple[int, Any]]) -> bool:
        """Estimate from the telemetry; True when the estimate newly overloads a branch."""
        from aiguilleur.ops.estimator import StateEstimator

        if self._estimator is None:
            self._estimator = StateEstimator(self.options.estimator)
        t = time.perf_counter()
        try:
            res = self._estimator.estimate(state)
        except AiguilleurError as e:
            out.analysis(
                "estimate",
                "aiguilleur.grid.estimation",
                "error",
                time.perf_counter() - t,
                {"message": str(e)[:300]},
            )
            out.alarm("analysis_error", "alarm", f"state estimation failed: {str(e)[:200]}", 0.0)
            return False
        dt = time.perf_counter() - t
        tel = [e for _, e in batch if e.type == "telemetry"]
        # what the batch coalesced: every reading is in the log, the newest per slot is analysed
        res.body["batch"] = {
            "telemetry_events": len(tel),
            "readings": sum(len(e.readings) for e in tel),
        }
        g = state.grid
        out.analysis(
            "estimate",
            "aiguilleur.grid.estimation (WLS, normalised residuals, observability)",
            res.status,
            dt,
            res.body,
            grid_version=None if g is None else g.version,
        )
        for a in res.alarms:
            out.alarm(a["kind"], a["severity"], a["text"], a["time_to_act_s"], element=a["element"])
        if dt > self.options.estimate_deadline_s:
            out.alarm(
                "deadline",
                "alarm",
                f"state estimation took {dt:.2f} s, past its "
                f"{self.options.estimate_deadline_s:g} s deadline",
                0.0,
            )
        return bool(res.new_overloads)

    # -- health -------------------------------------------------------------------------
    def _health_analysis(self, state: State, out: _Out, assets: set[str]) -> None:
        from aiguilleur.ops.assets import HealthModels, asset_failure

        t = time.perf_counter()
        if self._health is None:
            if self._health_fit is not None:
                self._health_fit.join()
            self._health = HealthModels.bundled(self.options.health_cycle_h)
        g = state.grid
        results = {}
        for a in sorted(assets):
            hist = state.health.get(a)
            if not hist:
                continue
            r = asset_failure(hist, self._health, self.options.horizon_h)
            r["element"] = None if g is None else g.assets.get(a)
            prev = self._asset_risk.get(a, {})
            self._asset_risk[a] = r
            results[a] = r
            p = r.get("probability")
            if p is None:
                continue
            was = prev.get("probability") or 0.0
            where = f" ({r['element']})" if r["element"] else ""
            if p >= 0.5 and was < 0.5:
                out.alarm(
                    "asset_failure_risk",
                    "action",
                    f"asset {a}{where}: {100 * p:.0f} % probability of failure within "
                    f"{self.options.horizon_h:g} h (RUL median {r['rul_p50_cycles']:.0f} cycles"
                    + (", anomaly alarm" if r["anomaly_alarm"] else "")
                    + ")",
                    self.options.horizon_h * 3600.0 / 2,
                    element=r["element"],
                )
            elif p >= 0.1 and was < 0.1:
                out.alarm(
                    "asset_failure_risk",
                    "information",
                    f"asset {a}{where}: {100 * p:.0f} % probability of failure within "
                    f"{self.options.horizon_h:g} h",
                    self.options.horizon_h * 3600.0,
                    element=r["element"],
                )
        dt = time.perf_counter() - t
        out.analysis(
            "health",
            "aiguilleur.health (LightGBM RUL, anomaly detector)",
            "optimal",
            dt,
            {"assets": results},
        )
        if dt > self.options.health_deadline_s:
            out.alarm(
                "deadline",
                "alarm",
                f"health analysis took {dt:.2f} s, past its "
                f"{self.options.health_deadline_s:g} s deadline",
                0.0,
            )

    # -- look-ahead ---------------------------------------------------------------------
    def _lookahead(self, state: State, out: _Out) -> None:
        from aiguilleur.grid.corrective import ac_check

        g = state.grid
        f = state.forecasts.get("load")
        if g is None or f is None:
            return
        t = time.perf_counter()
        o = self.options
        now = state.clock_dt
        start = datetime.fromisoformat(f["start"])
        issued_seq = int(f["seq"])
        step = timedelta(minutes=int(f["step_minutes"]))
        p50, p90 = np.asarray(f["p50_mw"]), np.asarray(f["p90_mw"])
        if now is not None and now - start > timedelta(hours=o.forecast_stale_h):
            out.alarm(
                "stale_input",
                "alarm",
                f"the load forecast starts {start.isoformat()}, older than "
                f"{o.forecast_stale_h:g} h: look-ahead not run",
                0.0,
            )
            out.analysis(
                "lookahead",
                "aiguilleur.grid.powerflow",
                "error",
                time.perf_counter() - t,
                {"message": "stale forecast"},
            )
            return
        demand_now = float(np.sum(g.demand_p_mw))
        hours = []
        for k in range(min(o.lookahead_hours, p50.size)):
            when = start + k * step
            if now is not None and when + step <= now:
                continue
            row: dict[str, Any] = {"time": when.isoformat()}
            for name, level in (("p50", p50[k]), ("p90", p90[k])):
                factor = float(level) / demand_now if demand_now > 0 else 1.0
                net = _scaled(g, factor)
                chk = ac_check(net, "a")
                row[name] = {
                    "load_mw": float(level),
                    "factor": factor,
                    "converged": chk.converged,
                    "overloads": len(chk.overloads),
                    "max_loading_pct": _f(chk.max_loading_pct),
                    "voltage_violations": len(chk.low_voltage) + len(chk.high_voltage),
                    "worst": chk.describe(net)[:3],
                }
            hours.append(row)
            if time.perf_counter() - t > o.lookahead_deadline_s:
                out.alarm(
                    "deadline",
                    "alarm",
                    f"look-ahead stopped after {len(hours)} hour(s): past its "
                    f"{o.lookahead_deadline_s:g} s deadline",
                    0.0,
                )
                break
        for row in hours:
            when = datetime.fromisoformat(row["time"])
            ahead = max(0.0, (when - now).total_seconds()) if now is not None else 0.0
            for name, sev in (("p50", "action"), ("p90", "information")):
                r = row[name]
                if r["overloads"] or r["voltage_violations"] or not r["converged"]:
                    out.alarm(
                        "lookahead",
                        sev,
                        f"at {row['time']} ({name.upper()} load {r['load_mw']:,.0f} MW): "
                        + ("; ".join(r["worst"]) or "AC power flow does not converge"),
                        ahead,
                    )
                    break
        out.analysis(
            "lookahead",
            "aiguilleur.grid.powerflow (AC, at forecast P50 and P90)",
            "optimal",
            time.perf_counter() - t,
            {"forecast_seq": issued_seq, "hours": hours},
            grid_version=g.version,
        )

    # -- fleets -------------------------------------------------------------------------
    def _fleet(self, state: State, out: _Out, fleets: set[str]) -> None:
        from aiguilleur.ops.fleet import FleetModel, replan_fleet

        fs = state.fleet
        assert fs is not None
        t = time.perf_counter()
        if self._fleet_model is None or self._fleet_model.sha256 != fs.roads_sha256:
            self._fleet_model = FleetModel.load(fs.roads, fs.roads_sha256)
        now = state.clock_dt
        at_s = fs.at_s(now) if now is not None else 0
        names = sorted(fs.fleets) if "*" in fleets else sorted(fleets & set(fs.fleets))
        for name in names:
            t1 = time.perf_counter()
            try:
                rp = replan_fleet(
                    fs,
                    name,
                    at_s,
                    self._fleet_model,
                    # the event's deadline is shared by the fleets it touches
                    deadline_s=max(0.5, self.options.fleet_deadline_s / max(len(names), 1)),
                    seed=self.options.seed,
                    workers=self.options.fleet_workers,
                )
            except AiguilleurError as e:
                out.analysis(
                    "fleet",
                    "aiguilleur.logistics.routing.replan",
                    "error",
                    time.perf_counter() - t1,
                    {"fleet": name, "message": str(e)[:300]},
                )
                out.alarm("analysis_error", "alarm", f"{name}: re-plan failed: {str(e)[:200]}", 0.0)
                continue
            if rp is None:
                continue
            status = "optimal" if rp.ok else "partial"
            out.analysis(
                "fleet",
                "aiguilleur.logistics.routing.replan (PyVRP, repair baseline)",
                status,
                rp.time_s,
                rp.to_dict(),
            )
            summary = {
                "holds": rp.ok,
                "fleet": name,
                "changed_vehicles": rp.changed_vehicles,
                "undelivered": rp.undelivered,
                "undelivered_required": list(rp.undelivered_required),
                "km_plan_in_force": rp.cost_before_m / 1000.0,
                "km_left_after": rp.cost_after_m / 1000.0,
                "km_left_repair": rp.repair_cost_m / 1000.0,
                "max_delay_s": rp.max_delay_s,
                "reasons": list(rp.reasons),
            }
            if rp.undelivered_required:
                out.alarm(
                    "undelivered",
                    "action",
                    f"{name}: required order(s) cannot be delivered: "
                    + ", ".join(f"{o} ({rp.undelivered[o]})" for o in rp.undelivered_required[:5]),
                    1800.0,
                )
            out.proposal(
                "fleet_replan",
                name,
                [rp.action],
                summary,
                list(rp.explanation),
                ok=rp.ok,
                sheds=False,
                provenance=[
                    {
                        "analysis": "fleet",
                        "solver": "pyvrp+repair",
                        "status": status,
                        "time_s": rp.time_s,
                    }
                ],
            )
        dt = time.perf_counter() - t
        if dt > self.options.fleet_deadline_s + 0.5:
            out.alarm(
                "deadline",
                "alarm",
                f"fleet re-planning took {dt:.2f} s, past its "
                f"{self.options.fleet_deadline_s:g} s deadline",
                0.0,
            )


# -- output collector ----------------------------------------------------------------------


@dataclass
class _Out:
    seq: int
    state: State
    analyses: list[dict[str, Any]]
    proposals: list[dict[str, Any]]
    alarms: list[dict[str, Any]]
    at: dict[str, float]
    t0: float
    batch: list[tuple[int, Any]] = field(default_factory=list)
    publish: Callable[[dict[str, Any]], None] | None = None
    prefix: str = ""  # of alarm ids: A<seq>-<prefix><n>

    def analysis(
        self,
        kind: str,
        solver: str,
        status: str,
        time_s: float,
        body: dict[str, Any],
        grid_version: int | None = None,
    ) -> None:
        self.analyses.append(
            {
                "id": f"{kind}:{self.seq}:{len(self.analyses)}",
                "seq": self.seq,
                "kind": kind,
                "solver": solver,
                "status": status,
                "time_s": float(time_s),
                # from the start of the reaction to this analysis's end
                "done_after_s": time.perf_counter() - self.t0,
                "state_hash": self.state.state_hash,
                "grid_version": grid_version,
                "body": json_safe(body),
            }
        )

    def alarm(
        self,
        kind: str,
        severity: str,
        text: str,
        time_to_act_s: float,
        element: str | None = None,
    ) -> None:
        rec = {
            "id": f"A{self.seq}-{self.prefix}{len(self.alarms) + 1}",
            "seq": self.seq,
            "kind": kind,
            "severity": severity,
            "text": text,
            "element": element,
            "time_to_act_s": float(time_to_act_s),
            "raised_at": _iso(self.state),
            "raised_after_s": time.perf_counter() - self.t0,
        }
        self.alarms.append(rec)
        if self.publish is not None:
            # stored at once: an operator sees the alarm before the analyses end
            self.publish(rec)

    def proposal(
        self,
        kind: str,
        scope: str,
        actions: list[Any],
        summary: dict[str, Any],
        explanation: list[str],
        *,
        ok: bool,
        sheds: bool,
        provenance: list[dict[str, Any]],
        grid_version: int | None = None,
    ) -> None:
        pid = f"P{self.seq}-{scope}"
        self.at[pid] = time.perf_counter() - self.t0
        self.proposals.append(
            {
                "id": pid,
                "seq": self.seq,
                "kind": kind,
                "scope": scope,
                "state_seq": self.state.last_seq,
                "state_hash": self.state.state_hash,
                "grid_version": grid_version,
                "created_at": _iso(self.state),
                "ok": ok,
                "sheds_load": sheds,
                "actions": [a.model_dump(mode="json") for a in actions],
                "summary": json_safe(summary),
                "explanation": explanation,
                "provenance": json_safe(provenance),
                "reaction_s": self.at[pid],
            }
        )


def _grid_action(a: Any) -> Any:
    if a.kind == "set_dispatch":
        return ev.SetDispatch(gen=a.element, pg_mw=a.value)
    if a.kind == "set_voltage":
        return ev.SetVoltage(gen=a.element, vg_pu=a.value)
    if a.kind == "set_reactive":
        return ev.SetReactive(gen=a.element, qg_mvar=a.value)
    return ev.ShedLoad(bus=a.element, shed_mw=a.value)


def _restored(g: Any) -> Any:
    """The grid with every load back (demand, no shedding)."""
    import dataclasses

    net = g.net
    bus = dataclasses.replace(net.bus, pd_mw=g.demand_p_mw, qd_mvar=g.demand_q_mvar)
    return net.replace(bus=bus)


def _scaled(g: Any, factor: float) -> Any:
    """The grid with demand scaled by ``factor``, units following by headroom (as the fold does)."""
    import dataclasses

    net = g.net
    bus = dataclasses.replace(
        net.bus,
        pd_mw=np.asarray(net.bus.pd_mw) * factor,
        qd_mvar=np.asarray(net.bus.qd_mvar) * factor,
    )
    delta = float(np.sum(net.bus.pd_mw)) * (factor - 1.0)
    gen = net.gen
    on = (gen.in_service == 1) & ~np.asarray(g.must_take)
    pg = np.asarray(gen.pg_mw, dtype=np.float64)
    room = (gen.pmax_mw - pg) if delta > 0 else (pg - gen.pmin_mw)
    room = np.where(on, np.maximum(room, 0.0), 0.0)
    if room.sum() > 0:
        pg = pg + np.sign(delta) * room * min(1.0, abs(delta) / float(room.sum()))
    return net.replace(bus=bus, gen=dataclasses.replace(gen, pg_mw=pg))


def _f(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def _txt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"
