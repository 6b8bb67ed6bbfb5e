"""Asset health: remaining useful life, anomaly detection, failure probability.

A leaf package: it imports neither :mod:`aiguilleur.grid`, nor
:mod:`aiguilleur.logistics`, nor :mod:`aiguilleur.forecast`.

Typical use::

    from aiguilleur import health

    train = health.read_cmapss("train_FD001.txt")
    model = health.fit(train)                      # RUL model with intervals
    health.save_model(model, "fd001.json")
    pred = health.predict(model, health.read_cmapss("test_FD001.txt"))
    risk = health.failure_probability(pred, horizon_h=24.0)
    # or, per asset from its readings so far:
    risk = health.asset_failure_risk(model, readings, horizon_h=24.0)
"""

from __future__ import annotations

from aiguilleur.health.anomaly import (
    AnomalyDetector,
    AnomalyOptions,
    AnomalyScores,
    AssetBaseline,
    StreamState,
    baseline,
    fit_detector,
    score,
    start_stream,
    update,
)
from aiguilleur.health.cmapss import read_cmapss, read_rul
from aiguilleur.health.risk import (
    FailureRisk,
    RiskOptions,
    asset_failure_risk,
    failure_probability,
)
from aiguilleur.health.rul import (
    RULBacktest,
    RULModel,
    RULOptions,
    RULPrediction,
    backtest,
    fit,
    load_model,
    phm08_score,
    predict,
    rul_target,
    save_model,
)
from aiguilleur.health.telemetry import Gap, Telemetry

__all__ = [
    "AnomalyDetector",
    "AnomalyOptions",
    "AnomalyScores",
    "AssetBaseline",
    "FailureRisk",
    "Gap",
    "RULBacktest",
    "RULModel",
    "RULOptions",
    "RULPrediction",
    "RiskOptions",
    "StreamState",
    "Telemetry",
    "asset_failure_risk",
    "backtest",
    "baseline",
    "failure_probability",
    "fit",
    "fit_detector",
    "load_model",
    "phm08_score",
    "predict",
    "read_cmapss",
    "read_rul",
    "rul_target",
    "save_model",
    "score",
    "start_stream",
    "update",
]
