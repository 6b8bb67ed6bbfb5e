"""Probability of failure within a horizon, per asset, from RUL distributions and anomaly scores.

This is the number the operations centre multiplies by an outage's impact to
rank contingencies by risk. The mapping, stated once:

* **From the RUL distribution.** The horizon ``H`` hours is converted to
  ``H / cycle_duration_h`` cycles; the probability that the asset fails within
  it is the predictive CDF of its true RUL at that many cycles,
  ``p_rul = P(RUL <= H / cycle_duration_h)``, read by linear interpolation
  between the quantiles of :class:`~aiguilleur.health.rul.RULPrediction`
  (0 below the lowest, 1 above the highest).
* **From the anomaly score.** An alarm (score ``a > 1``) adds a constant
  hazard ``lambda = anomaly_hazard_per_h * (a - 1)`` per hour while it
  lasts: ``p_anom = 1 - exp(-lambda H)``. Below the alarm threshold it adds
  nothing. ``anomaly_hazard_per_h`` is a stated assumption of the operator,
  not something fitted here (C-MAPSS has no labelled sudden faults to fit it on).
* **Combined** as independent causes (noisy-OR):
  ``p = 1 - (1 - p_rul) (1 - p_anom)``.

:func:`asset_failure_risk` runs the whole chain on the readings of each
asset so far (RUL model at the last reading, the anomaly detector's latest
score, then the mapping above): the operations centre calls it with each
asset's telemetry as readings arrive and takes ``probability`` as the
probability of that asset's outage within the horizon.

Each term, and so ``p``, is non-decreasing in the horizon and lies in [0, 1];
``p`` is non-decreasing in the anomaly score and non-increasing as the
predicted RUL distribution shifts to longer lives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError
from aiguilleur.health.anomaly import AnomalyDetector
from aiguilleur.health.anomaly import score as anomaly_score_of
from aiguilleur.health.rul import RULModel, RULPrediction, predict
from aiguilleur.health.telemetry import Telemetry, _expect

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FailureRisk",
    "RiskOptions",
    "asset_failure_risk",
    "failure_probability",
    "quantile_cdf",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RiskOptions:
    """How RUL (in cycles) and anomaly scores become a probability over hours.

    Parameters
    ----------
    cycle_duration_h
        Hours per cycle of the RUL model (a C-MAPSS cycle is one flight;
        for an asset read once a day it is 24).
    anomaly_hazard_per_h
        Failure hazard per hour per unit of anomaly score above the alarm
        threshold (0 ignores the anomaly score).
    """

    cycle_duration_h: float = 1.0
    anomaly_hazard_per_h: float = 0.01

    def __post_init__(self) -> None:
        c = self.cycle_duration_h
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < math.inf:
            raise ValidationError(f"cycle_duration_h: expected a positive number, got {c!r}")
        a = self.anomaly_hazard_per_h
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 <= a < math.inf:
            raise ValidationError(
                f"anomaly_hazard_per_h: expected a non-negative number, got {a!r}"
            )


@dataclass(frozen=True)
class FailureRisk:
    """Per asset: the probability of failure within ``horizon_h`` hours, and its two sources."""

    unit: IntArray
    horizon_h: float
    probability: FloatArray
    from_rul: FloatArray
    from_anomaly: FloatArray

    def probability_of(self, unit: int) -> float:
        """The probability for one asset.

        Raises
        ------
        ValidationError
            ``unit`` is not among the assets.
        """
        hit = np.flatnonzero(self.unit == unit)
        if hit.size == 0:
            raise ValidationError(f"unit {unit!r}: no failure probability for this asset")
        return float(self.probability[hit[0]])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the horizon and, per asset, the probability and its two sources."""
        return {
            "horizon_h": self.horizon_h,
            "assets": [
                {
                    "unit": int(u),
                    "probability": float(p),
                    "from_rul": float(r),
                    "from_anomaly": float(a),
                }
                for u, p, r, a in zip(
                    self.unit.tolist(),
                    self.probability.tolist(),
                    self.from_rul.tolist(),
                    self.from_anomaly.tolist(),
                    strict=True,
                )
            ],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per asset: unit, horizon_h, probability, from_rul, from_anomaly."""
        import pandas as pd

        return pd.DataFrame(
            {
                "unit": self.unit,
                "horizon_h": np.full(self.unit.shape[0], self.horizon_h),
                "probability": self.probability,
                "from_rul": self.from_rul,
                "from_anomaly": self.from_anomaly,
            }
        )


def quantile_cdf(quantiles: FloatArray, levels: FloatArray, x: float) -> FloatArray:
    """``P(X <= x)`` for each row of quantiles (non-decreasing, at ``levels``).

    Linear between quantiles, 0 below the first and ``levels[-1]`` at or above
    the last; where quantiles tie, the largest level of the tie is used, so the
    result is right-continuous and non-decreasing in ``x``.
    """
    q = np.asarray(quantiles, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != lv.shape[0] or lv.shape[0] < 2:
        raise ValidationError(f"quantiles: expected shape (n, {lv.shape[0]}), got {q.shape}")
    k = (q <= x).sum(axis=1)  # how many quantiles lie at or below x
    out = np.zeros(q.shape[0])
    full = k == lv.shape[0]
    out[full] = lv[-1]
    mid = (k > 0) & ~full
    if np.any(mid):
        rows = np.flatnonzero(mid)
        j = k[rows]  # q[j-1] <= x < q[j]
        q0, q1 = q[rows, j - 1], q[rows, j]
        frac = (x - q0) / (q1 - q0)
        out[rows] = lv[j - 1] + frac * (lv[j] - lv[j - 1])
    return np.clip(out, 0.0, 1.0)


def failure_probability(
    prediction: RULPrediction,
    horizon_h: float,
    options: RiskOptions | None = None,
    anomaly_score: dict[int, float] | None = None,
) -> FailureRisk:
    """Probability that each asset fails within ``horizon_h`` hours.

    Parameters
    ----------
    prediction
        RUL predictions, one per asset (``predict(..., at="last")``).
    horizon_h
        The horizon, in hours (>= 0).
    options
        Cycle duration and anomaly hazard (see the module docstring).
    anomaly_score
        Per unit, the latest anomaly score (for example
        :meth:`~aiguilleur.health.anomaly.AnomalyScores.last_score`); units not
        in it get no anomaly term.

    Raises
    ------
    ValidationError
        A negative or non-finite horizon, or a unit predicted more than once.
    """
    _expect(prediction, RULPrediction, "prediction")
    _expect(options, RiskOptions, "options", optional=True)
    s = options or RiskOptions()
    if isinstance(horizon_h, bool) or not isinstance(horizon_h, int | float):
        raise ValidationError(f"horizon_h: expected a number, got {horizon_h!r}")
    if not (0.0 <= horizon_h < math.inf):
        raise ValidationError(
            f"horizon_h: expected a non-negative finite number, got {horizon_h!r}"
        )
    if np.unique(prediction.unit).size != prediction.unit.size:
        raise ValidationError("prediction: one row per unit expected (use predict(..., at='last'))")
    cycles = float(horizon_h) / s.cycle_duration_h
    p_rul = quantile_cdf(prediction.quantiles, prediction.levels, cycles)
    a = np.array(
        [(anomaly_score or {}).get(int(u), 0.0) for u in prediction.unit.tolist()],
        dtype=np.float64,
    )
    if not np.all(np.isfinite(a)):
        u = prediction.unit[np.flatnonzero(~np.isfinite(a))[0]]
        raise ValidationError(f"anomaly score of unit {u} is not a finite number")
    hazard = s.anomaly_hazard_per_h * np.maximum(a - 1.0, 0.0)
    p_anom = -np.expm1(-hazard * float(horizon_h))
    p = 1.0 - (1.0 - p_rul) * (1.0 - p_anom)
    return FailureRisk(
        unit=prediction.unit.copy(),
        horizon_h=float(horizon_h),
        probability=np.clip(p, 0.0, 1.0),
        from_rul=p_rul,
        from_anomaly=p_anom,
    )


def asset_failure_risk(
    model: RULModel,
    telemetry: Telemetry,
    horizon_h: float,
    options: RiskOptions | None = None,
    detector: AnomalyDetector | None = None,
) -> FailureRisk:
    """Probability that each asset fails within ``horizon_h`` hours, from its readings so far.

    Parameters
    ----------
    model
        A fitted RUL model (:func:`~aiguilleur.health.rul.fit` or ``load_model``).
    telemetry
        Every reading of each asset up to now (one asset per ``unit``); the
        prediction is made at each asset's last reading, from its whole history.
    horizon_h
        The horizon, in hours (>= 0).
    options
        Cycle duration and anomaly hazard (:class:`RiskOptions`).
    detector
        When given, each asset's latest anomaly score adds the anomaly term;
        otherwise only the RUL distribution counts.

    Returns
    -------
    FailureRisk
        One row per asset, in the order of the units in ``telemetry``.

    Raises
    ------
    ValidationError
        A column the model or the detector needs is missing, a reading is not
        finite (naming the row), or the horizon is negative or not finite.
    """
    _expect(model, RULModel, "model")
    _expect(telemetry, Telemetry, "telemetry")
    _expect(options, RiskOptions, "options", optional=True)
    _expect(detector, AnomalyDetector, "detector", optional=True)
    pred = predict(model, telemetry, at="last")
    scores = anomaly_score_of(detector, telemetry).last_score() if detector is not None else None
    return failure_probability(pred, horizon_h, options, scores)
