"""Conformal calibration of quantile forecasts on a rolling window of past days.

Each raw quantile forecast ``p_q`` is shifted by the empirical ``q``-quantile
of its own past errors, relative to the level of the series::

    r_q = (y - p_q) / level        on the calibration days
    p_q' = p_q + level * quantile_q(r_q)

so that, on the calibration window, a fraction ``q`` of the outcomes falls
below ``p_q'`` (quantile-wise split conformal calibration, which keeps the
shape the quantile model gives each hour). Calibration days are days whose
outcome was fully known at the issue time of the day being calibrated, and
whose forecasts were made out of sample. The calibrated quantiles are then
sorted per hour so that they never cross.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError

__all__ = ["apply_shifts", "non_crossing", "quantile_shifts", "rolling_shifts"]

FloatArray = npt.NDArray[np.float64]


def non_crossing(pred: FloatArray) -> FloatArray:
    """Sort the quantiles along the last axis (rearrangement: never crossing)."""
    return np.sort(pred, axis=-1)


def quantile_shifts(
    actual: FloatArray, pred: FloatArray, level: FloatArray, quantiles: FloatArray
) -> FloatArray:
    """The relative shift of each quantile from past out-of-sample forecasts.

    Parameters
    ----------
    actual
        Outcomes, shape ``(n,)``.
    pred
        Raw quantile forecasts, shape ``(n, n_quantiles)``.
    level
        The scale of each row (the series' recent mean), shape ``(n,)``.
    quantiles
        The quantile levels, shape ``(n_quantiles,)``.

    Returns
    -------
    One shift per quantile (relative to the level); zeros when no row is usable.
    """
    q = np.asarray(quantiles, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    lv = np.asarray(level, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != q.size or a.shape != (p.shape[0],) or lv.shape != a.shape:
        raise ValidationError("calibration: actual (n,), pred (n, n_quantiles), level (n,)")
    ok = np.isfinite(a) & np.isfinite(lv) & np.all(np.isfinite(p), axis=1) & (lv > 0)
    if not ok.any():
        return np.zeros(q.size)
    r = (a[ok, None] - p[ok]) / lv[ok, None]
    return np.array([np.quantile(r[:, j], q[j]) for j in range(q.size)])


def apply_shifts(pred: FloatArray, level: FloatArray, shifts: FloatArray) -> FloatArray:
    """Shift raw quantiles (``(..., n_quantiles)``) and make them non-crossing."""
    return non_crossing(pred + np.asarray(level)[..., None] * np.asarray(shifts))


def rolling_shifts(
    actual: FloatArray,
    pred: FloatArray,
    level: FloatArray,
    quantiles: FloatArray,
    usable_before: npt.NDArray[np.int64],
    window_days: int,
) -> FloatArray:
    """Shifts for each day from the ``window_days`` days before it.

    Parameters
    ----------
    actual, pred, level
        Per day and hour: ``(n_days, 24)``, ``(n_days, 24, n_q)``, ``(n_days, 24)``;
        the days in time order.
    usable_before
        For each day ``i``, the number of leading days whose outcome was known at
        its issue time (days ``0 .. usable_before[i] - 1`` may calibrate it).
    window_days
        The length of the rolling window, in days.

    Returns
    -------
    ``(n_days, n_q)`` shifts; a day with no usable past gets zeros.
    """
    n_days = actual.shape[0]
    out = np.zeros((n_days, len(quantiles)))
    for i in range(n_days):  # one quantile per day: the window moves by one day
        hi = int(usable_before[i])
        lo = max(hi - window_days, 0)
        if hi <= lo:
            continue
        out[i] = quantile_shifts(
            actual[lo:hi].reshape(-1),
            pred[lo:hi].reshape(-1, pred.shape[-1]),
            level[lo:hi].reshape(-1),
            quantiles,
        )
    return out
