"""Asset health in the operations centre: failure probabilities, and contingencies ranked by risk.

An asset (a generating unit, a transformer, a line) is named by an id and
mapped to a grid element (``gen:<n>``, ``branch:<n>``) in the grid world or
by ``asset_registered`` events. Its condition-monitoring readings
(``health_reading`` events, C-MAPSS-like: operating settings and sensors)
give, through the health package, a remaining-useful-life distribution and
an anomaly score, hence the probability that it fails within a horizon
(:func:`aiguilleur.health.risk.failure_probability`); that probability is
the probability of the element's outage.

Elements without condition monitoring get a stated background rate: a
forced-outage rate of :data:`DEFAULT_OUTAGES_PER_YEAR` per element, as a
Poisson process over the horizon (order of magnitude of the forced outage
rates transmission operators publish for lines and units; an assumption,
not a fit).

Contingencies are ranked by expected impact: probability x impact, the
impact being what is left after the best DC corrective plan for that outage
(load shed, and overload above rating that no redispatch removes) plus the
load an islanding outage cuts off; see :func:`risk_ranking`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_OUTAGES_PER_YEAR",
    "HealthModels",
    "asset_failure",
    "risk_ranking",
]

DEFAULT_OUTAGES_PER_YEAR = 1.0
_HOURS_PER_YEAR = 8766.0


@dataclass
class HealthModels:
    """The RUL model and anomaly detector, fitted once on the bundled C-MAPSS sample.

    The sample (FD001 training units 1-9 of NASA's C-MAPSS data, public
    domain; unit 10 is held out, so a scenario can stream it as an asset the
    models have never seen) stands for the fleet history an operator would
    train on; ``cycle_duration_h`` converts the model's cycles into hours. The RUL
    model is fitted with one seed, three folds and 300 rounds (the benchmark's
    configuration uses three seeds, five folds and 600): a start-up cost of a few
    seconds instead of tens.
    """

    rul: Any
    detector: Any
    cycle_duration_h: float = 1.0
    anomaly_hazard_per_h: float = 0.01

    _lock = threading.Lock()
    _cached: HealthModels | None = None

    @classmethod
    def bundled(cls, cycle_duration_h: float = 1.0) -> HealthModels:
        import dataclasses

        with cls._lock:
            if cls._cached is None:
                from importlib.resources import as_file, files

                from aiguilleur.health import anomaly, rul
                from aiguilleur.health.cmapss import read_cmapss

                ref = files("aiguilleur.data").joinpath("cmapss", "train_FD001_units1-10.txt")
                with as_file(ref) as p:
                    train = read_cmapss(p).select_units(np.arange(1, 10))
                # lighter than the benchmark's configuration (one seed, three folds, fewer
                # rounds): it is fitted when the centre starts, on nine units
                opts = rul.RULOptions(seeds=(0,), n_folds=3, n_rounds=300)
                cls._cached = cls(rul.fit(train, opts), anomaly.fit_detector(train))
            return dataclasses.replace(cls._cached, cycle_duration_h=cycle_duration_h)


def _telemetry(
    history: Sequence[tuple[int, tuple[float, ...], tuple[tuple[str, float], ...]]],
) -> Any:
    from aiguilleur.health.cmapss import CMAPSS_SENSORS, CMAPSS_SETTINGS
    from aiguilleur.health.telemetry import Telemetry

    n = len(history)
    sens = np.full((n, len(CMAPSS_SENSORS)), np.nan)
    sets = np.zeros((n, len(CMAPSS_SETTINGS)))
    col = {s: i for i, s in enumerate(CMAPSS_SENSORS)}
    for r, (_c, st, se) in enumerate(history):
        for k, v in se:
            j = col.get(k)
            if j is not None:
                sens[r, j] = v
        sets[r, : min(len(st), sets.shape[1])] = st[: sets.shape[1]]
    return Telemetry(
        unit=np.ones(n, dtype=np.int64),
        cycle=np.array([c for c, _, _ in history], dtype=np.int64),
        settings=sets,
        sensors=sens,
        setting_names=CMAPSS_SETTINGS,
        sensor_names=CMAPSS_SENSORS,
    )


def asset_failure(
    history: Sequence[tuple[int, tuple[float, ...], tuple[tuple[str, float], ...]]],
    models: HealthModels,
    horizon_h: float,
) -> dict[str, Any]:
    """RUL quantiles, the latest anomaly score and the failure probability within ``horizon_h``.

    Returns ``{"status": "not_enough_data", ...}`` while the history is shorter
    than the detector's baseline, and ``{"status": "error", "message": ...}`` when
    the readings lack sensors the model needs.
    """
    from aiguilleur.errors import AiguilleurError
    from aiguilleur.health import anomaly, rul
    from aiguilleur.health.risk import RiskOptions, failure_probability

    base_n = int(models.detector.options.baseline_readings)
    if len(history) < max(base_n + 1, 2):
        return {"status": "not_enough_data", "readings": len(history), "needed": base_n + 1}
    try:
        tel = _telemetry(history)
        pred = rul.predict(models.rul, tel)
        scores = anomaly.score(models.detector, tel)
        last = float(scores.last_score().get(1, 0.0))
        risk = failure_probability(
            pred,
            horizon_h,
            RiskOptions(
                cycle_duration_h=models.cycle_duration_h,
                anomaly_hazard_per_h=models.anomaly_hazard_per_h,
            ),
            anomaly_score={1: last},
        )
    except AiguilleurError as e:
        return {"status": "error", "message": str(e)[:300], "readings": len(history)}
    q = np.asarray(pred.quantiles)[0]
    levels = np.asarray(pred.levels)
    mid = int(np.argmin(np.abs(levels - 0.5)))
    return {
        "status": "optimal",
        "readings": len(history),
        "cycle": int(history[-1][0]),
        "rul_p50_cycles": float(q[mid]),
        "rul_low_cycles": float(q[0]),
        "rul_high_cycles": float(q[-1]),
        "anomaly_score": last,
        "anomaly_alarm": last > 1.0,
        "horizon_h": float(horizon_h),
        "probability": float(risk.probability[0]),
        "from_rul": float(risk.from_rul[0]),
        "from_anomaly": float(risk.from_anomaly[0]),
    }


def background_probability(horizon_h: float) -> float:
    """Probability of a forced outage within ``horizon_h`` at the stated background rate."""
    return -math.expm1(-DEFAULT_OUTAGES_PER_YEAR * horizon_h / _HOURS_PER_YEAR)


def risk_ranking(
    net: Any,
    n1: Any,
    asset_risk: Mapping[str, Mapping[str, Any]],
    assets: Mapping[str, str],
    horizon_h: float,
    *,
    top: int = 15,
    redispatcher: Any = None,
    rating: str = "c",
    impacts: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Contingencies ranked by expected impact (probability x impact), most at risk first.

    ``n1`` is the N-1 screen of ``net`` (a :class:`~aiguilleur.grid.ContingencyResult`).
    Every element with condition monitoring is ranked, and the ``top`` most
    severe contingencies of the screen. The impact of a non-islanding outage
    is what the DC corrective redispatch cannot remove (shed MW plus MW of
    overload left); for an islanding outage, the load it cuts off. Where
    the corrective plan leaves nothing, the impact falls back to the overload
    the outage causes before any action (MW above rating), so that secure and
    merely correctable contingencies stay ordered by severity. ``impacts``
    caches the corrective plans' outcomes per contingency for one network
    (the caller keeps one per grid version), so that new health readings
    only change the probabilities. A contingency the screen found secure
    needs no plan (``plan_status`` ``"not_needed"``, nothing left); the
    redispatch runs for the others only. ``redispatcher`` may be a function
    that makes one: it is called once, when the first plan is needed.
    """
    from aiguilleur.ops.events import outage_ref

    prob_of: dict[str, tuple[float, str]] = {}
    for a, el in assets.items():
        r = asset_risk.get(a)
        if r is not None and r.get("status") == "optimal":
            prob_of[el] = (float(r["probability"]), f"health of {a}")
    kinds = np.asarray(n1.kind)
    elements = np.asarray(n1.element)
    ref_of = [
        outage_ref(str(k), int(e)) for k, e in zip(kinds.tolist(), elements.tolist(), strict=True)
    ]
    pos = {r: i for i, r in enumerate(ref_of)}
    chosen = [int(p) for p in n1.ranked()[:top]]
    chosen += [pos[el] for el in prob_of if el in pos and pos[el] not in chosen]
    base_p = background_probability(horizon_h)
    rate = net.branch.rating_mva(rating)
    out: list[dict[str, Any]] = []
    for p in chosen:
        ref = ref_of[p]
        status = str(n1.status[p])
        prob, src = prob_of.get(ref, (base_p, f"background rate {DEFAULT_OUTAGES_PER_YEAR:g}/year"))
        lost = float(n1.lost_load_mw[p])
        shed = over_left = 0.0
        plan_status = "not_run"
        hit = None if impacts is None else impacts.get(ref)
        if hit is not None:
            shed, over_left, plan_status = hit["shed"], hit["over_left"], hit["plan_status"]
        elif status == "secure":
            plan_status = "not_needed"  # within the emergency ratings in the screen: no plan
        elif status != "islanding" and redispatcher is not None:
            from aiguilleur.grid.redispatch import Outage

            if not hasattr(redispatcher, "solve"):
                redispatcher = redispatcher()  # made on first need

            kind = "gen" if str(kinds[p]) in ("gen", "generator") else "branch"
            rd = redispatcher.solve([Outage(kind, int(elements[p]))])  # type: ignore[arg-type]
            plan_status = str(rd.status)
            shed = float(rd.total_shed_mw)
            rem = np.asarray(rd.remaining_overloads, dtype=np.int64)
            if rem.size:
                over_left = float(
                    np.sum(np.maximum(np.abs(rd.flow_mw[rem]) - np.asarray(rd.limit_mw)[rem], 0.0))
                )
            if impacts is not None:
                impacts[ref] = {"shed": shed, "over_left": over_left, "plan_status": plan_status}
        ml = float(n1.max_loading_pct[p])
        severity = 0.0
        if np.isfinite(ml) and ml > 100.0:
            w = int(n1.worst_branch[p])
            severity = (ml - 100.0) / 100.0 * float(rate[w]) if w >= 0 else 0.0
        impact = lost + shed + over_left
        out.append(
            {
                "contingency": ref,
                "status": status,
                "probability": prob,
                "probability_source": src,
                "impact_mw": impact,
                "lost_load_mw": lost,
                "shed_after_plan_mw": shed,
                "overload_left_mw": over_left,
                "overload_before_plan_mw": severity,
                "max_loading_pct": ml if np.isfinite(ml) else None,
                "plan_status": plan_status,
                "expected_impact_mw": prob * (impact if impact > 0 else 1e-3 * severity),
            }
        )
    out.sort(key=lambda r: (-r["expected_impact_mw"], -r["probability"], r["contingency"]))
    for k, r in enumerate(out, 1):
        r["rank"] = k
    return out
