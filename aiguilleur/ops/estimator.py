"""The state estimator in the operations centre's loop: telemetry -> estimate -> alarms.

:func:`telemetry_measurements` turns the state's latest readings
(:class:`~aiguilleur.ops.state.TelemetryState`) into the grid leaf's
:class:`~aiguilleur.grid.measurements.Measurements`: fresh readings only (a
reading taken more than ``max_age_s`` before the state's clock is stale and
left out), with the standard deviation each reading carried (or the stated
default of its kind). Measurement ids are ``<quantity>:<element>``
(``p_from:branch:12``); the meter that took each reading is kept beside.

:class:`StateEstimator` runs :func:`~aiguilleur.grid.estimation.estimate_state`
on them against the grid as the state holds it and compares the estimate
with the model's own AC power flow (the grid's operating point, reactive
limits enforced, as the responder's other analyses solve it):

* a reading rejected as bad data raises an alarm naming its meter, its
  quantity and element, the reading and the estimate; readings among which
  bad data was detected but not identified are named together;
* unobservable buses (grouped in islands) raise an alarm;
* the largest ``|Vm - Vm_model|`` over estimated buses is reported, with an
  alarm above ``model_tolerance_pu``;
* the estimated voltages give the branch flows (the estimator's model); a
  branch loaded above its rating (rate A) by more than
  ``loading_tolerance_pct`` in the estimate while the model's power flow
  keeps it within is an ``estimated_overload`` alarm: the field sees what
  the model does not. The responder then runs its grid analysis.

An alarm is raised when its condition appears, not again while it lasts
(one :class:`StateEstimator` per responder keeps which conditions hold).
When fewer fresh readings remain than ``min_redundancy`` times the number of
states (``2 n - 1``), the estimate is not run and a ``stale_input`` alarm
says how many readings were too old.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError
from aiguilleur.grid.estimation import EstimationOptions, EstimationResult, estimate_state
from aiguilleur.grid.measurements import Measurements, measured_values
from aiguilleur.ops.state import BRANCH_QUANTITIES, BUS_QUANTITIES, State

__all__ = [
    "EstimateOutcome",
    "EstimatorOptions",
    "StateEstimator",
    "telemetry_measurements",
]

FloatArray = npt.NDArray[np.float64]
_UNIT = {
    "vm": "pu",
    "p_inj": "MW",
    "q_inj": "Mvar",
    "p_from": "MW",
    "q_from": "Mvar",
    "p_to": "MW",
    "q_to": "Mvar",
}
_KINDS = np.array(BUS_QUANTITIES + BRANCH_QUANTITIES)


def _positive(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf:
        raise ValidationError(f"{name}: expected a positive number, got {v!r}")


@dataclass(frozen=True)
class EstimatorOptions:
    """Settings of :class:`StateEstimator`.

    Parameters
    ----------
    max_age_s
        A reading taken longer than this before the state's clock is stale.
    min_redundancy
        Fresh readings needed per state variable (``2 n - 1`` for ``n``
        buses) to run the estimate at all.
    sigma_vm_pu, sigma_power_mw
        Standard deviation of a reading that carries none (pu; MW and Mvar).
    model_tolerance_pu
        Alarm when an estimated voltage magnitude differs from the model's
        power flow by more than this.
    loading_tolerance_pct
        An estimated loading above ``100 + this`` % of rate A, where the
        model's is not, is an estimated overload.
    estimation
        Options of :func:`~aiguilleur.grid.estimation.estimate_state`.
    """

    max_age_s: float = 60.0
    min_redundancy: float = 1.0
    sigma_vm_pu: float = 0.004
    sigma_power_mw: float = 1.0
    model_tolerance_pu: float = 0.02
    loading_tolerance_pct: float = 2.0
    estimation: EstimationOptions = field(default_factory=EstimationOptions)

    def __post_init__(self) -> None:
        for name in (
            "max_age_s",
            "min_redundancy",
            "sigma_vm_pu",
            "sigma_power_mw",
            "model_tolerance_pu",
            "loading_tolerance_pct",
        ):
            _positive(name, getattr(self, name))
        if not isinstance(self.estimation, EstimationOptions):
            raise ValidationError("estimation: expected EstimationOptions")


def telemetry_measurements(
    state: State, options: EstimatorOptions | None = None
) -> tuple[Measurements, tuple[str | None, ...], int]:
    """The fresh readings of ``state`` as measurements, their meters, and the stale count.

    Raises
    ------
    ValidationError
        When the state holds no grid.
    """
    opts = options or EstimatorOptions()
    g, t = state.grid, state.telemetry
    if g is None:
        raise ValidationError("estimate: no grid is initialised")
    empty = Measurements(
        np.zeros(0, dtype=np.str_),
        np.zeros(0, dtype=np.str_),
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
        np.zeros(0),
    )
    if t is None:
        return empty, (), 0
    slots = np.flatnonzero(t.seq > 0)
    clock = state.clock_dt
    now = clock.timestamp() if clock is not None else math.nan
    fresh = (now - t.time_s[slots]) <= opts.max_age_s  # unknown times (NaN) are stale
    stale = int(slots.size - np.count_nonzero(fresh))
    slots = slots[fresh]
    nb, nl = t.n_bus, t.n_branch
    on_bus = slots < 3 * nb
    q = np.where(on_bus, slots // max(nb, 1), 3 + (slots - 3 * nb) // max(nl, 1))
    row = np.where(on_bus, slots % max(nb, 1), (slots - 3 * nb) % max(nl, 1))
    kind = _KINDS[q]
    bus_ids = np.asarray(g.net.bus.bus_id, dtype=np.int64)
    element = np.where(on_bus, bus_ids[np.where(on_bus, row, 0)], row + 1).astype(np.int64)
    label = np.where(on_bus, ":bus:", ":branch:")
    ids = np.char.add(np.char.add(kind.astype(np.str_), label), element.astype(np.str_))
    sigma = np.array(t.sigma[slots], dtype=np.float64)
    default = np.where(kind == "vm", opts.sigma_vm_pu, opts.sigma_power_mw)
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, default)
    meas = Measurements(ids, kind, element, np.array(t.value[slots]), sigma)
    meters = tuple(t.meter.get(int(s)) for s in slots.tolist())
    return meas, meters, stale


@dataclass(frozen=True)
class EstimateOutcome:
    """One estimate in the loop: what it ran on, its result, the analysis body and new alarms.

    ``status`` is the estimator's (``converged``, ``partial``, ``bad_data``,
    ``not_converged``, ``unobservable``) or ``stale`` when too few fresh
    readings remained to run it; ``ok`` when converged and no alarm
    condition holds. ``alarms`` are dicts with ``kind``, ``severity``,
    ``text``, ``time_to_act_s``, ``element``; ``new_overloads`` are the
    branch rows that became overloaded in the estimate with this call.
    """

    status: str
    ok: bool
    measurements: Measurements
    meters: tuple[str | None, ...]
    result: EstimationResult | None
    body: dict[str, Any]
    alarms: tuple[dict[str, Any], ...]
    overloads: tuple[tuple[int, float], ...]
    new_overloads: tuple[int, ...]
    time_s: float


class StateEstimator:
    """Estimates the state from the telemetry the state holds (module docstring).

    Keeps the model's power flow per grid version and which alarm conditions
    hold; used from one thread at a time.
    """

    def __init__(self, options: EstimatorOptions | None = None) -> None:
        self.options = options or EstimatorOptions()
        self._model: tuple[int, str, Any] | None = None  # (grid version, case sha, ACCheck)
        self._active: set[str] = set()

    def model(self, state: State) -> Any:
        """The model's AC power flow held against rate A (cached per grid version)."""
        from aiguilleur.grid.corrective import ac_check

        g = state.grid
        assert g is not None
        key = (g.version, g.case_sha256)
        if self._model is None or self._model[:2] != key:
            self._model = (g.version, g.case_sha256, ac_check(g.net, "a"))
        return self._model[2]

    def estimate(self, state: State) -> EstimateOutcome:
        """Run the estimate on the state's fresh telemetry; see :class:`EstimateOutcome`."""
        t0 = time.perf_counter()
        o = self.options
        g = state.grid
        if g is None:
            raise ValidationError("estimate: no grid is initialised")
        net = g.net
        meas, meters, stale = telemetry_measurements(state, o)
        alarms: list[tuple[str, dict[str, Any]]] = []
        n_state = 2 * net.n_bus - 1
        need = math.ceil(o.min_redundancy * n_state)
        body: dict[str, Any] = {
            "readings_fresh": len(meas),
            "readings_stale": stale,
            "max_age_s": o.max_age_s,
            "states": n_state,
        }
        if len(meas) < need or len(meas) == 0:
            if stale:
                alarms.append(
                    (
                        "stale",
                        _alarm(
                            "stale_input",
                            "alarm",
                            f"state estimation not run: {stale} reading(s) older than "
                            f"{o.max_age_s:g} s left {len(meas)} fresh for {n_state} state "
                            f"variables (at least {need} needed)",
                            0.0,
                        ),
                    )
                )
            body.update(
                {"status": "stale", "converged": False, "message": "too few fresh readings"}
            )
            return self._finish("stale", False, meas, meters, None, body, alarms, (), t0)
        res = estimate_state(net, meas, o.estimation)
        ids = meas.id.tolist()
        pos = {m: k for k, m in enumerate(ids)}
        bad = []
        for mid, rn in res.bad_data:
            k = pos[mid]
            kind = str(meas.kind[k])
            element = mid.split(":", 1)[1]
            meter = meters[k]
            est = float(res.estimated_value[k])
            entry = {
                "id": mid,
                "meter": meter,
                "quantity": kind,
                "element": element,
                "value": float(meas.value[k]),
                "estimate": None if not math.isfinite(est) else est,
                "normalized_residual": rn,
            }
            bad.append(entry)
            who = f"meter {meter}" if meter else "an unnamed meter"
            unit = _UNIT[kind]
            alarms.append(
                (
                    f"bad:{meter or mid}",
                    _alarm(
                        "bad_measurement",
                        "action",
                        f"{who}: {kind} at {element} rejected as bad data (reads "
                        f"{entry['value']:.4g} {unit}, the estimate is "
                        + (f"{est:.4g} {unit}" if math.isfinite(est) else "unknown")
                        + f"; normalised residual {rn:.1f})",
                        3600.0,
                        element,
                    ),
                )
            )
        suspects = [
            {"id": s, "meter": meters[pos[s]]} for s in res.suspect_measurements if s in pos
        ]
        if suspects:
            names = ", ".join(str(s["meter"] or s["id"]) for s in suspects[:6])
            alarms.append(
                (
                    "suspect:" + ",".join(sorted(str(s["id"]) for s in suspects)),
                    _alarm(
                        "bad_measurement",
                        "action",
                        f"bad data among meters {names}: not identifiable (their readings "
                        "explain one another); none rejected",
                        3600.0,
                    ),
                )
            )
        unobs = res.unobservable_buses
        if unobs.size:
            alarms.append(
                (
                    f"unobservable:{unobs.size}",
                    _alarm(
                        "unobservable",
                        "information",
                        f"{unobs.size} bus(es) unobservable in {len(res.unobservable_islands)} "
                        "island(s): "
                        + ", ".join(f"bus:{int(b)}" for b in unobs[:8].tolist())
                        + (" ..." if unobs.size > 8 else ""),
                        3600.0,
                    ),
                )
            )
        if not res.converged:
            alarms.append(
                (
                    "not_converged",
                    _alarm(
                        "analysis_error",
                        "alarm",
                        f"state estimation did not converge: {res.message[:200]}",
                        0.0,
                    ),
                )
            )
        chk = self.model(state)
        overloads: list[tuple[int, float]] = []
        dv_max = math.nan
        worst_bus = None
        est_max_loading = math.nan
        if res.converged and chk.pf is not None and chk.converged:
            vm_model = np.asarray(chk.pf.vm_pu)
            dv = np.abs(res.vm_pu - vm_model)
            live = np.isfinite(dv) & (vm_model > 0)
            if np.any(live):
                k = int(np.flatnonzero(live)[np.argmax(dv[live])])
                dv_max = float(dv[k])
                worst_bus = f"bus:{int(net.bus.bus_id[k])}"
                if dv_max > o.model_tolerance_pu:
                    alarms.append(
                        (
                            "mismatch",
                            _alarm(
                                "estimate_mismatch",
                                "action",
                                f"the estimate puts {worst_bus} at {float(res.vm_pu[k]):.3f} pu, "
                                f"the model's power flow at {float(vm_model[k]):.3f} pu "
                                f"(|dV| {dv_max:.3f} pu above {o.model_tolerance_pu:g}): the "
                                "model may miss a change in the field",
                                900.0,
                                worst_bus,
                            ),
                        )
                    )
            loading = _estimated_loading(net, res.vm_pu, res.va_deg)
            fin = np.isfinite(loading)
            est_max_loading = float(np.max(loading[fin])) if np.any(fin) else math.nan
            limit = 100.0 + o.loading_tolerance_pct
            over = np.flatnonzero(fin & (loading > limit) & ~(chk.loading_pct > limit))
            over = over[np.argsort(-loading[over], kind="stable")]
            b = net.branch
            for r in over.tolist():
                pct = float(loading[r])
                overloads.append((int(r), pct))
                alarms.append(
                    (
                        f"overload:{r}",
                        _alarm(
                            "estimated_overload",
                            "alarm",
                            f"branch:{r + 1} ({int(b.from_bus_id[r])}-{int(b.to_bus_id[r])}) "
                            f"at {pct:.1f} % of rate A in the estimate; the model's power flow "
                            f"has it at {float(chk.loading_pct[r]):.1f} %",
                            900.0,
                            f"branch:{r + 1}",
                        ),
                    )
                )
        body.update(
            {
                "status": res.status,
                "ok": res.ok,
                "converged": res.converged,
                "iterations": res.iterations,
                "objective": _f(res.objective),
                "chi2_threshold": _f(res.chi2_threshold),
                "degrees_of_freedom": res.degrees_of_freedom,
                "message": res.message,
                "bad_data": bad,
                "suspect_measurements": suspects,
                "unobservable_buses": [int(x) for x in unobs.tolist()],
                "unobservable_islands": [list(i) for i in res.unobservable_islands],
                "unused_measurements": len(res.unused_measurements),
                "max_dv_model_pu": _f(dv_max),
                "max_dv_bus": worst_bus,
                "model_converged": bool(chk.converged),
                "estimated_max_loading_pct": _f(est_max_loading),
                "estimated_overloads": [
                    {"branch": f"branch:{r + 1}", "loading_pct": p} for r, p in overloads
                ],
                "estimate_time_s": res.time_s,
            }
        )
        ok = res.ok and not alarms
        return self._finish(res.status, ok, meas, meters, res, body, alarms, tuple(overloads), t0)

    def _finish(
        self,
        status: str,
        ok: bool,
        meas: Measurements,
        meters: tuple[str | None, ...],
        res: EstimationResult | None,
        body: dict[str, Any],
        alarms: list[tuple[str, dict[str, Any]]],
        overloads: tuple[tuple[int, float], ...],
        t0: float,
    ) -> EstimateOutcome:
        keys = {k for k, _ in alarms}
        new = tuple(a for k, a in alarms if k not in self._active)
        new_over = tuple(r for r, _ in overloads if f"overload:{r}" not in self._active)
        self._active = keys
        body["alarm_conditions"] = sorted(keys)
        return EstimateOutcome(
            status, ok, meas, meters, res, body, new, overloads, new_over, time.perf_counter() - t0
        )


def _alarm(
    kind: str, severity: str, text: str, time_to_act_s: float, element: str | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": severity,
        "text": text,
        "time_to_act_s": time_to_act_s,
        "element": element,
    }


def _estimated_loading(net: Any, vm: FloatArray, va: FloatArray) -> FloatArray:
    """Per branch: the larger end flow (MVA) of the estimated voltages over rate A, in %."""
    vals = measured_values(net, np.nan_to_num(vm, nan=0.0), np.nan_to_num(va, nan=0.0))
    s = np.maximum(np.hypot(vals["p_from"], vals["q_from"]), np.hypot(vals["p_to"], vals["q_to"]))
    rate = net.branch.rating_mva("a")
    known = np.isfinite(vm[net.branch_from]) & np.isfinite(vm[net.branch_to])
    usable = (rate > 0) & (net.branch.in_service == 1) & known
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(usable, 100.0 * s / np.where(rate > 0, rate, 1.0), np.nan)
    return out


def _f(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
