"""Remaining useful life from multivariate telemetry, with per-unit prediction intervals.

The model (Saxena et al.'s C-MAPSS protocol):

* operating regimes are found by clustering the settings, and each sensor is
  centred and scaled by its regime's statistics, so that one code serves
  single- and multi-regime fleets;
* causal features of each reading from its unit's past: exponentially smoothed
  sensors, rolling means and spread, least-squares slopes over several windows,
  the drift from the unit's own first readings, the cycle count;
* a health index: per regime, a ridge regression of the capped RUL on the
  normalised sensors, so that readings of different operating conditions sit
  on one scale before they are smoothed together; its smoothed values, rolling
  means and slopes are features, and so is the share of each unit's readings
  spent in each regime;
* a gradient-boosted regression (LightGBM, one or more seeds averaged) on the
  piecewise-linear target ``min(RUL, cap)``;
* the PHM08 score charges late predictions more than early ones: the
  predictions are shifted by the constant (0 to ``max_shift_cycles`` cycles
  earlier) that minimises the score of the out-of-fold predictions on the
  training units;
* the predictive distribution of the true (uncapped) RUL is the point
  prediction plus residuals measured out of fold on held-out training units
  (split by unit), binned by the predicted value (split conformal). Intervals
  and failure probabilities are read from it.

Nothing in the fit looks at test units.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur._files import atomic_write_bytes
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.health._features import (
    Regimes,
    feature_matrix,
    find_regimes,
    fit_health_index,
    health_index,
    index_features,
    regime_history,
)
from aiguilleur.health.telemetry import Telemetry, _expect

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "RULBacktest",
    "RULModel",
    "RULOptions",
    "RULPrediction",
    "backtest",
    "fit",
    "load_model",
    "phm08_score",
    "predict",
    "rul_target",
    "save_model",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MODEL_FORMAT = "aiguilleur.health.rul"
MODEL_VERSION = 2
# Quantile levels at which each bin's residual distribution is stored.
_LEVELS = np.linspace(0.0, 1.0, 201)


def _positive_int(name: str, v: object, lo: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValidationError(f"{name}: expected an integer >= {lo}, got {v!r}")


def _ints(name: str, v: object, lo: int = 1) -> None:
    if not isinstance(v, tuple) or not v:
        raise ValidationError(f"{name}: expected a non-empty tuple of integers, got {v!r}")
    for x in v:
        _positive_int(name, x, lo)


@dataclass(frozen=True)
class RULOptions:
    """Options of the remaining-useful-life model.

    Parameters
    ----------
    cap_cycles
        The piecewise-linear target's ceiling: an asset is taken as healthy
        (RUL = cap) until ``cap_cycles`` before failure. 125 in the C-MAPSS
        literature.
    windows
        Rolling-mean windows, in readings.
    slope_windows
        Windows of the least-squares slopes, in readings (a slope over all the
        unit's readings is always added).
    alphas
        Smoothing factors of the exponentially weighted means, in ``(0, 1]``.
    baseline_cycles
        How many first readings of a unit define its own healthy level.
    n_regimes
        Number of operating regimes; ``None`` finds it from the settings.
    health_index
        Add the per-regime linear health index and its summaries as features.
    index_alphas, index_windows, index_slope_windows
        Smoothing factors, rolling-mean windows and slope windows of the health index.
    index_ridge
        Ridge penalty of the health index's per-regime regressions (on sensors
        scaled to unit variance in their regime).
    max_shift_cycles
        Largest downward shift of the predictions, chosen on the out-of-fold
        predictions to minimise the PHM08 score (0 disables it).
    n_rounds, learning_rate, num_leaves, min_data_in_leaf, feature_fraction
        LightGBM's boosting parameters.
    seeds
        One booster per seed, averaged in the fitted model (the out-of-fold
        fits behind the intervals use the first seed only).
    n_folds
        Folds (split by unit) of the out-of-fold residuals behind the intervals.
    n_bins
        Bins of the predicted RUL within which residuals are pooled.
    level
        Coverage of the prediction intervals that :func:`predict` reports.
    threads
        LightGBM threads.
    """

    cap_cycles: float = 125.0
    windows: tuple[int, ...] = (5, 10, 20, 30)
    slope_windows: tuple[int, ...] = (10, 20, 40)
    alphas: tuple[float, ...] = (0.1, 0.3)
    baseline_cycles: int = 15
    n_regimes: int | None = None
    health_index: bool = True
    index_alphas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    index_windows: tuple[int, ...] = (5, 10, 20, 30, 50)
    index_slope_windows: tuple[int, ...] = (10, 20, 40, 80)
    index_ridge: float = 1.0
    max_shift_cycles: float = 5.0
    n_rounds: int = 600
    learning_rate: float = 0.03
    num_leaves: int = 31
    min_data_in_leaf: int = 200
    feature_fraction: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    n_folds: int = 5
    n_bins: int = 5
    level: float = 0.8
    threads: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.cap_cycles, int | float) and 0 < self.cap_cycles < math.inf):
            raise ValidationError(
                f"cap_cycles: expected a positive number, got {self.cap_cycles!r}"
            )
        _ints("windows", self.windows)
        _ints("slope_windows", self.slope_windows, 2)
        _ints("index_windows", self.index_windows)
        _ints("index_slope_windows", self.index_slope_windows, 2)
        for name, al in (("alphas", self.alphas), ("index_alphas", self.index_alphas)):
            if not isinstance(al, tuple) or not al:
                raise ValidationError(f"{name}: expected a non-empty tuple, got {al!r}")
            for a in al:
                if isinstance(a, bool) or not isinstance(a, int | float) or not 0 < a <= 1:
                    raise ValidationError(f"{name}: expected numbers in (0, 1], got {a!r}")
        if not isinstance(self.health_index, bool):
            raise ValidationError(
                f"health_index: expected True or False, got {self.health_index!r}"
            )
        m = self.max_shift_cycles
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 <= m < math.inf:
            raise ValidationError(f"max_shift_cycles: expected a non-negative number, got {m!r}")
        r = self.index_ridge
        if isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r < math.inf:
            raise ValidationError(f"index_ridge: expected a non-negative number, got {r!r}")
        _positive_int("baseline_cycles", self.baseline_cycles)
        if self.n_regimes is not None:
            _positive_int("n_regimes", self.n_regimes)
        _positive_int("n_rounds", self.n_rounds)
        _positive_int("num_leaves", self.num_leaves, 2)
        _positive_int("min_data_in_leaf", self.min_data_in_leaf)
        _ints("seeds", self.seeds, 0)
        _positive_int("n_folds", self.n_folds, 2)
        _positive_int("n_bins", self.n_bins)
        _positive_int("threads", self.threads)
        for name, v, lo, hi in (
            ("learning_rate", self.learning_rate, 0.0, 1.0),
            ("feature_fraction", self.feature_fraction, 0.0, 1.0),
            ("level", self.level, 0.0, 1.0),
        ):
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo < v <= hi:
                raise ValidationError(f"{name}: expected a number in ({lo:g}, {hi:g}], got {v!r}")
        if self.level >= 1.0:
            raise ValidationError(f"level: expected a number in (0, 1), got {self.level!r}")


@dataclass(frozen=True)
class RULModel:
    """A fitted RUL model: what :func:`predict` needs, and what :func:`save_model` writes.

    ``setting_names`` and ``sensor_names`` are the columns the model needs;
    ``index_weights`` (one row per regime: intercept, then one weight per
    sensor) define the health index, empty when the options leave it out;
    ``shift_cycles`` (<= 0) is added to every prediction (before clipping to
    ``[0, cap]``); ``bin_edges`` split the predicted RUL into the bins whose residual
    quantiles (at ``levels``) are the rows of ``residual_quantiles``.
    ``train_time_s`` is the wall-clock time of the fit and ``train_cpu_s`` the
    processor time of this process (the fair figure on a shared machine).
    """

    options: RULOptions
    setting_names: tuple[str, ...]
    sensor_names: tuple[str, ...]
    regimes: Regimes
    index_weights: FloatArray
    shift_cycles: float
    feature_names: tuple[str, ...]
    boosters: tuple[str, ...]
    bin_edges: FloatArray
    levels: FloatArray
    residual_quantiles: FloatArray
    train_time_s: float
    train_cpu_s: float
    n_units: int
    oof_rmse: float
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _lgb(self) -> list[Any]:
        if "boosters" not in self._cache:
            import lightgbm as lgb

            self._cache["boosters"] = [lgb.Booster(model_str=s) for s in self.boosters]
        return list(self._cache["boosters"])

    def distribution(self, rul_cycles: npt.ArrayLike) -> FloatArray:
        """Quantiles (at :attr:`levels`) of the true RUL for each point prediction, in cycles."""
        p = np.atleast_1d(np.asarray(rul_cycles, dtype=np.float64))
        b = np.searchsorted(self.bin_edges, p, side="right")
        b = np.clip(b, 0, self.residual_quantiles.shape[0] - 1)
        return np.maximum(p[:, None] + self.residual_quantiles[b], 0.0)


@dataclass(frozen=True)
class RULPrediction:
    """Predicted remaining useful life, in cycles, with a prediction interval.

    ``rul_cycles`` is the point prediction of the capped target (the C-MAPSS
    convention); ``lower_cycles``/``upper_cycles`` bound the true, uncapped RUL
    with probability ``level``. ``quantiles`` (one row per prediction, columns at
    ``levels``) is the whole predictive distribution.
    """

    unit: IntArray
    cycle: IntArray
    rul_cycles: FloatArray
    lower_cycles: FloatArray
    upper_cycles: FloatArray
    level: float
    levels: FloatArray
    quantiles: FloatArray
    #: Units with fewer readings than the model's ``baseline_cycles``: their
    #: healthy level is unknown and their prediction is not to be trusted.
    short_units: tuple[int, ...] = ()
    min_readings: int = 0

    @property
    def status(self) -> str:
        """``feasible`` when every unit had enough readings, else ``partial`` (``short_units``)."""
        return "partial" if self.short_units else "feasible"

    @property
    def ok(self) -> bool:
        """True when every unit had enough readings for a trustworthy prediction."""
        return not self.short_units

    def missing(self) -> list[str]:
        """What is not to be trusted, in words (empty when :attr:`ok`)."""
        if not self.short_units:
            return []
        shown = ", ".join(str(u) for u in self.short_units[:10])
        more = f" and {len(self.short_units) - 10} more" if len(self.short_units) > 10 else ""
        return [
            f"{len(self.short_units)} unit(s) with fewer than {self.min_readings} readings "
            f"(too few to know their healthy level): {shown}{more}"
        ]

    def to_frame(self) -> pd.DataFrame:
        """One row per prediction: unit, cycle, rul_cycles, lower_cycles, upper_cycles."""
        import pandas as pd

        return pd.DataFrame(
            {
                "unit": self.unit,
                "cycle": self.cycle,
                "rul_cycles": self.rul_cycles,
                "lower_cycles": self.lower_cycles,
                "upper_cycles": self.upper_cycles,
            }
        )


def rul_target(tel: Telemetry, rul_at_end: npt.ArrayLike | None = None) -> FloatArray:
    """True RUL of every reading: cycles to the unit's last reading (plus ``rul_at_end``).

    ``rul_at_end`` gives, per unit in order, the RUL after its last reading; by
    default 0 (run-to-failure records).
    """
    _expect(tel, Telemetry, "tel")
    counts = np.diff(np.r_[tel.starts, tel.n_readings])
    end = tel.cycle[tel.last_rows].astype(np.float64)
    if rul_at_end is not None:
        try:
            extra = np.asarray(rul_at_end, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ValidationError("rul_at_end: expected one number per unit") from None
        if extra.shape != end.shape:
            raise ValidationError(
                f"rul_at_end: expected {end.shape[0]} values (one per unit), got {extra.shape[0]}"
            )
        end = end + extra
    return np.repeat(end, counts) - tel.cycle


def phm08_score(predicted: npt.ArrayLike, true: npt.ArrayLike) -> float:
    """The PHM08 challenge score: late predictions cost more than early ones.

    ``sum(exp(-d / 13) - 1)`` over early predictions (``d < 0``) plus
    ``sum(exp(d / 10) - 1)`` over late ones, ``d = predicted - true``.
    """
    try:
        a, b = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError("predicted, true: expected arrays of numbers") from None
    if a.shape != b.shape:
        raise ValidationError(f"predicted, true: shapes differ ({a.shape} and {b.shape})")
    d = a - b
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def _features(
    tel: Telemetry, regimes: Regimes, index_weights: FloatArray, s: RULOptions
) -> tuple[FloatArray, tuple[str, ...]]:
    z = regimes.normalise(tel)
    x, names = feature_matrix(z, tel, s.windows, s.slope_windows, s.alphas, s.baseline_cycles)
    blocks, labels = [x], list(names)
    g = regimes.assign(tel.settings)
    if s.health_index:
        h = health_index(z, g, index_weights)
        xi, ni = index_features(h, tel, s.index_alphas, s.index_windows, s.index_slope_windows)
        blocks.append(xi)
        labels.extend(ni)
    if regimes.n_regimes > 1:
        blocks.append(regime_history(tel, g, regimes.n_regimes))
        labels.extend(f"regime{k}_share" for k in range(regimes.n_regimes))
    return np.hstack(blocks), tuple(labels)


def _index_weights(tel: Telemetry, y: FloatArray, regimes: Regimes, s: RULOptions) -> FloatArray:
    """The health index fitted on ``tel`` (training readings only), or an empty array."""
    if not s.health_index:
        return np.zeros((0, 0))
    z = regimes.normalise(tel)
    g = regimes.assign(tel.settings)
    target = np.minimum(y, s.cap_cycles)
    return fit_health_index(z, g, target, regimes.n_regimes, s.index_ridge)


def _subset(tel: Telemetry, rows: npt.NDArray[np.bool_]) -> Telemetry:
    return Telemetry(
        unit=tel.unit[rows],
        cycle=tel.cycle[rows],
        settings=tel.settings[rows],
        sensors=tel.sensors[rows],
        setting_names=tel.setting_names,
        sensor_names=tel.sensor_names,
    )


def _train(
    x: FloatArray, y: FloatArray, s: RULOptions, seeds: tuple[int, ...] | None = None
) -> list[Any]:
    import lightgbm as lgb

    params: dict[str, Any] = {
        "objective": "regression",
        "learning_rate": s.learning_rate,
        "num_leaves": s.num_leaves,
        "min_data_in_leaf": s.min_data_in_leaf,
        "feature_fraction": s.feature_fraction,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "num_threads": s.threads,
        "verbose": -1,
        "deterministic": True,
    }
    data = lgb.Dataset(x, np.minimum(y, s.cap_cycles), free_raw_data=False)
    use = s.seeds if seeds is None else seeds
    return [lgb.train({**params, "seed": seed}, data, s.n_rounds) for seed in use]


def _predict_boosters(boosters: list[Any], x: FloatArray, cap: float) -> FloatArray:
    p = np.mean([b.predict(x, num_threads=1) for b in boosters], axis=0)
    return np.clip(np.asarray(p, dtype=np.float64), 0.0, cap)


def _score_shift(oof: FloatArray, target: FloatArray, s: RULOptions) -> float:
    """The downward shift, on a 0.25-cycle grid, with the least out-of-fold PHM08 score.

    Ties go to the smallest shift (the grid starts at 0).
    """
    grid = -np.arange(0.0, s.max_shift_cycles + 1e-9, 0.25)
    scores = [phm08_score(np.clip(oof + d, 0.0, s.cap_cycles), target) for d in grid]
    return float(grid[int(np.argmin(scores))])


def _check_columns(model: RULModel, tel: Telemetry) -> None:
    missing = [c for c in model.setting_names if c not in tel.setting_names]
    if missing:
        raise ValidationError(
            f"setting column(s) missing from the telemetry: {', '.join(missing)} "
            f"(the model needs {', '.join(model.setting_names)})",
            "telemetry",
        )


def _aligned(model: RULModel, tel: Telemetry) -> Telemetry:
    """``tel`` with its settings in the model's order (sensors are picked by name later)."""
    _check_columns(model, tel)
    idx = [tel.setting_names.index(c) for c in model.setting_names]
    return Telemetry(
        unit=tel.unit,
        cycle=tel.cycle,
        settings=tel.settings[:, idx],
        sensors=tel.sensors,
        setting_names=model.setting_names,
        sensor_names=tel.sensor_names,
    )


def fit(
    telemetry: Telemetry,
    options: RULOptions | None = None,
    *,
    rul_at_end: npt.ArrayLike | None = None,
) -> RULModel:
    """Fit the RUL model on run-to-failure records.

    Parameters
    ----------
    telemetry
        Training readings; each unit's last reading is its failure unless
        ``rul_at_end`` says otherwise.
    options
        Model options (defaults: :class:`RULOptions`).
    rul_at_end
        Per unit, in order, the RUL after its last reading (for records that
        stop before failure).

    Returns
    -------
    RULModel
        The boosters, the regime normalisation, the feature list and the
        out-of-fold residual distribution behind the intervals.

    Raises
    ------
    ValidationError
        Too few units for the folds, or a non-finite sensor value (naming the row).
    """
    _expect(telemetry, Telemetry, "telemetry")
    _expect(options, RULOptions, "options", optional=True)
    s = options or RULOptions()
    t0, c0 = time.perf_counter(), time.process_time()
    units = telemetry.units
    if units.size < s.n_folds:
        raise ValidationError(
            f"{units.size} unit(s) in the training telemetry: need at least n_folds = {s.n_folds}"
        )
    y = rul_target(telemetry, rul_at_end)
    # Regimes and their sensor statistics use the settings and sensors of the
    # training readings only (no target): they are fitted once, on all of them.
    regimes = find_regimes(telemetry, s.n_regimes)
    # Out-of-fold residuals: each fold's units are predicted by boosters, and a
    # health index, fitted without them.
    rng = np.random.default_rng(12345)
    folds = np.array_split(rng.permutation(units), s.n_folds)
    oof = np.empty(y.shape[0])
    for f in folds:
        va = np.isin(telemetry.unit, f)
        w = _index_weights(_subset(telemetry, ~va), y[~va], regimes, s)
        xf, _ = _features(telemetry, regimes, w, s)
        # One booster per fold (the first seed) keeps the fit time in bounds; the
        # residuals of a seed average are, if anything, smaller, so the
        # intervals err on the wide side.
        oof[va] = _predict_boosters(_train(xf[~va], y[~va], s, s.seeds[:1]), xf[va], s.cap_cycles)
    weights = _index_weights(telemetry, y, regimes, s)
    x, names = _features(telemetry, regimes, weights, s)
    shift = _score_shift(oof, np.minimum(y, s.cap_cycles), s)
    oof = np.clip(oof + shift, 0.0, s.cap_cycles)
    resid = y - oof
    edges = np.quantile(oof, np.linspace(0, 1, s.n_bins + 1)[1:-1]) if s.n_bins > 1 else np.zeros(0)
    edges = np.unique(edges)
    b = np.searchsorted(edges, oof, side="right")
    rq = np.vstack([np.quantile(resid[b == i], _LEVELS) for i in range(edges.size + 1)])
    boosters = _train(x, y, s)
    return RULModel(
        options=s,
        setting_names=telemetry.setting_names,
        sensor_names=regimes.sensor_names,
        regimes=regimes,
        index_weights=weights,
        shift_cycles=shift,
        feature_names=names,
        boosters=tuple(bst.model_to_string() for bst in boosters),
        bin_edges=edges,
        levels=_LEVELS.copy(),
        residual_quantiles=rq,
        train_time_s=time.perf_counter() - t0,
        train_cpu_s=time.process_time() - c0,
        n_units=int(units.size),
        oof_rmse=float(np.sqrt(np.mean((np.minimum(y, s.cap_cycles) - oof) ** 2))),
        _cache={"boosters": boosters},
    )


def _quantile_at(q: FloatArray, levels: FloatArray, tau: float) -> FloatArray:
    """Each row's quantile at level ``tau``, linear between the stored levels."""
    j = int(np.clip(np.searchsorted(levels, tau, side="right"), 1, levels.size - 1))
    w = (tau - levels[j - 1]) / (levels[j] - levels[j - 1])
    out: FloatArray = (1.0 - w) * q[:, j - 1] + w * q[:, j]
    return out


def predict(
    model: RULModel,
    telemetry: Telemetry,
    *,
    at: Literal["last", "all"] = "last",
    level: float | None = None,
) -> RULPrediction:
    """Predict the RUL of each unit (at its last reading) or of every reading.

    Parameters
    ----------
    model
        From :func:`fit` or :func:`load_model`.
    telemetry
        Readings of the assets; the columns the model needs must be present
        (extra columns are ignored).
    at
        ``"last"``: one prediction per unit, at its last reading. ``"all"``:
        one per reading (each using that reading and the unit's earlier ones).
    level
        Interval coverage (default: the model's ``options.level``).

    Raises
    ------
    ValidationError
        A sensor or setting column the model needs is missing (named), or a
        sensor value is not finite (naming the row).
    """
    _expect(model, RULModel, "model")
    _expect(telemetry, Telemetry, "telemetry")
    lv = model.options.level if level is None else float(level)
    if not 0.0 < lv < 1.0:
        raise ValidationError(f"level: expected a number in (0, 1), got {level!r}")
    if at not in ("last", "all"):
        raise ValidationError(f"at: expected 'last' or 'all', got {at!r}")
    tel = _aligned(model, telemetry)
    x, names = _features(tel, model.regimes, model.index_weights, model.options)
    if names != model.feature_names:
        raise ValidationError("the features computed differ from the model's feature list")
    rows = tel.last_rows if at == "last" else np.arange(tel.n_readings)
    cap = model.options.cap_cycles
    p = np.clip(_predict_boosters(model._lgb(), x[rows], cap) + model.shift_cycles, 0.0, cap)
    q = model.distribution(p)
    lo_hi = np.column_stack(
        [_quantile_at(q, model.levels, (1 - lv) / 2), _quantile_at(q, model.levels, (1 + lv) / 2)]
    )
    counts = np.diff(np.r_[tel.starts, tel.n_readings])
    need = int(model.options.baseline_cycles)
    short = tuple(int(u) for u in tel.units[counts < need])
    return RULPrediction(
        unit=tel.unit[rows],
        cycle=tel.cycle[rows],
        rul_cycles=p,
        lower_cycles=lo_hi[:, 0],
        upper_cycles=lo_hi[:, 1],
        level=lv,
        levels=model.levels,
        quantiles=q,
        short_units=short,
        min_readings=need,
    )


# -- backtest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RULBacktest:
    """The C-MAPSS protocol's figures on a test set.

    ``rmse`` and ``score`` (PHM08) compare the prediction at each test unit's
    last reading with its true, uncapped RUL; ``coverage`` is the share of
    units whose true RUL lies in the interval at ``level``. Times are the
    fit's wall clock and processor time and the prediction's wall clock.
    """

    rmse: float
    score: float
    units: int
    coverage: float
    level: float
    mean_interval_width: float
    train_time_s: float
    train_cpu_s: float
    predict_time_s: float
    prediction: RULPrediction
    true_rul: IntArray

    @property
    def status(self) -> str:
        """The prediction's status: ``partial`` when some test unit had too few readings."""
        return self.prediction.status

    @property
    def ok(self) -> bool:
        """True when every test unit had enough readings."""
        return self.prediction.ok

    def summary(self) -> dict[str, Any]:
        """The scalar figures as a dict (for ``--json``)."""
        return {
            "status": self.status,
            "ok": self.ok,
            "short_units": list(self.prediction.short_units),
            "missing": self.prediction.missing(),
            "rmse": self.rmse,
            "score": self.score,
            "units": self.units,
            "coverage": self.coverage,
            "level": self.level,
            "mean_interval_width": self.mean_interval_width,
            "train_time_s": self.train_time_s,
            "train_cpu_s": self.train_cpu_s,
            "predict_time_s": self.predict_time_s,
        }


def backtest(
    train: Telemetry,
    test: Telemetry,
    true_rul: npt.ArrayLike,
    options: RULOptions | None = None,
) -> RULBacktest:
    """Fit on ``train``, predict each ``test`` unit at its last reading, score against ``true_rul``.

    Raises
    ------
    ValidationError
        ``true_rul`` does not have one value per test unit.
    """
    _expect(train, Telemetry, "train")
    _expect(test, Telemetry, "test")
    _expect(options, RULOptions, "options", optional=True)
    truth = np.asarray(true_rul, dtype=np.int64)
    if truth.shape != test.units.shape:
        raise ValidationError(
            f"true RUL: expected {test.units.size} values (one per test unit), got {truth.size}"
        )
    model = fit(train, options)
    t0 = time.perf_counter()
    pred = predict(model, test)
    dt = time.perf_counter() - t0
    d = pred.rul_cycles - truth
    inside = (pred.lower_cycles <= truth) & (truth <= pred.upper_cycles)
    return RULBacktest(
        rmse=float(np.sqrt(np.mean(d**2))),
        score=phm08_score(pred.rul_cycles, truth),
        units=int(truth.size),
        coverage=float(inside.mean()),
        level=pred.level,
        mean_interval_width=float(np.mean(pred.upper_cycles - pred.lower_cycles)),
        train_time_s=model.train_time_s,
        train_cpu_s=model.train_cpu_s,
        predict_time_s=dt,
        prediction=pred,
        true_rul=truth,
    )


# -- save and load -------------------------------------------------------------------------


def _arr(a: FloatArray) -> list[Any]:
    return [float(v) for v in a.tolist()] if a.ndim == 1 else [_arr(r) for r in a]


def save_model(model: RULModel, path: str | Path) -> None:
    """Write ``model`` to a JSON file (versioned; never half-written).

    The file holds the format name and version, the options, the setting and
    sensor columns the model needs, the feature list, the regime statistics,
    the boosters (LightGBM's text format) and the residual distribution.
    """
    _expect(model, RULModel, "model")
    _expect(path, (str, Path), "path")
    options = asdict(model.options)
    doc = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "options": options,
        "setting_names": list(model.setting_names),
        "sensor_names": list(model.sensor_names),
        "feature_names": list(model.feature_names),
        "regimes": {
            "centroids": _arr(model.regimes.centroids),
            "scale": _arr(model.regimes.scale),
            "mean": _arr(model.regimes.mean),
            "std": _arr(model.regimes.std),
        },
        "index_weights": _arr(model.index_weights),
        "shift_cycles": model.shift_cycles,
        "calibration": {
            "bin_edges": _arr(model.bin_edges),
            "levels": _arr(model.levels),
            "residual_quantiles": _arr(model.residual_quantiles),
        },
        "train_time_s": model.train_time_s,
        "train_cpu_s": model.train_cpu_s,
        "n_units": model.n_units,
        "oof_rmse": model.oof_rmse,
        "boosters": list(model.boosters),
    }
    from aiguilleur._files import check_output_file

    # Replacing an existing file is the caller's choice; never a folder, a device or a
    # pipe (a rename over /dev/full would replace the device), never a missing folder.
    target = check_output_file(path, force=True)
    try:
        atomic_write_bytes(target, json.dumps(doc).encode("utf-8"))
    except OSError as e:
        raise ValidationError(f"{path}: cannot write ({e.strerror or e})") from None


def _field(doc: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...]) -> Any:
    if key not in doc:
        raise CaseFormatError(f"missing field {key!r}", path)
    v = doc[key]
    if not isinstance(v, kind):
        raise CaseFormatError(f"field {key!r}: unexpected type {type(v).__name__}", path)
    return v


def _array(doc: dict[str, Any], key: str, path: str, name: str | None = None) -> FloatArray:
    """A numeric array field, finite, named in the error when malformed."""
    v = _field(doc, key, path, list)
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise CaseFormatError(
            f"field {name or key!r}: expected a (nested) list of numbers of regular shape", path
        ) from None
    if not np.isfinite(a).all():
        raise CaseFormatError(f"field {name or key!r}: a value is not finite", path)
    return a


def load_model(path: str | Path) -> RULModel:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    CaseFormatError
        Not such a file, another format or version, or a missing or malformed
        field (named).
    """
    from aiguilleur._files import read_input_text

    if not isinstance(path, str | Path):
        raise ValidationError(f"path: expected a file name, got {type(path).__name__}")
    p = str(path)
    text = read_input_text(path)  # bounded; folders, devices and binary files refused
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CaseFormatError(f"not a model file (JSON expected: {e.msg})", p, e.lineno) from None
    except RecursionError:
        raise CaseFormatError("not a model file (JSON nested too deeply)", p) from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise CaseFormatError(f"not an aiguilleur RUL model (format {MODEL_FORMAT!r})", p)
    if doc.get("version") != MODEL_VERSION:
        raise CaseFormatError(
            f"model version {doc.get('version')!r}; this aiguilleur reads version {MODEL_VERSION}",
            p,
        )
    raw = dict(_field(doc, "options", p, dict))
    known_options = {f.name for f in fields(RULOptions)}
    unknown = sorted(str(k)[:40] for k in raw if k not in known_options)
    if unknown:
        raise CaseFormatError(f"field 'options': unknown key(s) {', '.join(unknown)}", p)
    try:
        for k in (
            "windows",
            "slope_windows",
            "alphas",
            "index_alphas",
            "index_windows",
            "index_slope_windows",
            "seeds",
        ):
            if k in raw:
                if not isinstance(raw[k], list):
                    raise CaseFormatError(f"field 'options.{k}': expected a list", p)
                raw[k] = tuple(raw[k])
        try:
            options = RULOptions(**raw)
        except ValidationError as e:
            raise CaseFormatError(f"field 'options': {e}", p) from None
        except (TypeError, ValueError):
            raise CaseFormatError("field 'options': a value of the wrong type", p) from None
        reg = _field(doc, "regimes", p, dict)
        cal = _field(doc, "calibration", p, dict)
        sensor_names = tuple(str(x) for x in _field(doc, "sensor_names", p, list))
        regimes = Regimes(
            centroids=_array(reg, "centroids", p, "regimes.centroids"),
            scale=_array(reg, "scale", p, "regimes.scale"),
            sensor_names=sensor_names,
            mean=_array(reg, "mean", p, "regimes.mean"),
            std=_array(reg, "std", p, "regimes.std"),
        )
        if regimes.mean.shape != (regimes.n_regimes, len(sensor_names)):
            raise CaseFormatError("field 'regimes': statistics do not match the sensor list", p)
        index_weights = _array(doc, "index_weights", p)
        if options.health_index and index_weights.shape != (
            regimes.n_regimes,
            len(sensor_names) + 1,
        ):
            raise CaseFormatError(
                "field 'index_weights': expected one row per regime and one weight per sensor", p
            )
        if not options.health_index:
            index_weights = np.zeros((0, 0))
        model = RULModel(
            options=options,
            setting_names=tuple(str(x) for x in _field(doc, "setting_names", p, list)),
            sensor_names=sensor_names,
            regimes=regimes,
            index_weights=index_weights,
            shift_cycles=float(_field(doc, "shift_cycles", p, (int, float))),
            feature_names=tuple(str(x) for x in _field(doc, "feature_names", p, list)),
            boosters=tuple(str(x) for x in _field(doc, "boosters", p, list)),
            bin_edges=_array(cal, "bin_edges", p, "calibration.bin_edges"),
            levels=_array(cal, "levels", p, "calibration.levels"),
            residual_quantiles=_array(
                cal, "residual_quantiles", p, "calibration.residual_quantiles"
            ),
            train_time_s=float(_field(doc, "train_time_s", p, (int, float))),
            train_cpu_s=float(_field(doc, "train_cpu_s", p, (int, float))),
            n_units=int(_field(doc, "n_units", p, int)),
            oof_rmse=float(_field(doc, "oof_rmse", p, (int, float))),
        )
    except ValidationError as e:
        raise CaseFormatError(f"malformed model: {e}", p) from None
    except (TypeError, ValueError, OverflowError, IndexError) as e:
        raise CaseFormatError(f"malformed model ({type(e).__name__})", p) from None
    if not model.boosters:
        raise CaseFormatError("field 'boosters': empty", p)
    if not all(b.startswith("tree\n") for b in model.boosters):  # else LightGBM prints to stderr
        raise CaseFormatError("field 'boosters': expected LightGBM model strings", p)
    if model.residual_quantiles.shape != (model.bin_edges.size + 1, model.levels.size):
        raise CaseFormatError("field 'calibration': shapes do not match", p)
    try:
        boosters = model._lgb()
    except Exception as e:  # LightGBM raises its own error type on a corrupt model string
        msg = " ".join(str(e).split())[:80]
        raise CaseFormatError(f"field 'boosters': not a LightGBM model ({msg})", p) from None
    for b in boosters:
        if b.num_feature() != len(model.feature_names):
            raise CaseFormatError(
                f"field 'boosters': {b.num_feature()} features, but "
                f"{len(model.feature_names)} in 'feature_names'",
                p,
            )
    return model
