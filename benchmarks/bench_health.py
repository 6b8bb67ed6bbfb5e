"""Remaining useful life on C-MAPSS FD001, FD002 and FD003: aiguilleur against a plain LightGBM.

The standard protocol: train on the run-to-failure units with the target
``min(RUL, 125)``; predict each test unit at its last observed cycle; score
against the true, uncapped RUL of ``RUL_FDxxx.txt`` with the RMSE and the PHM08
score (late predictions cost more). Nothing is tuned on the test units.

* **aiguilleur**: ``aiguilleur.health.backtest`` with its default options (one
  configuration for every subset): operating regimes found from the settings,
  per-regime normalisation, smoothed sensors, rolling means and spread, slopes
  over several windows, drift from the unit's own start, a per-regime linear
  health index and its summaries, the share of readings in each regime,
  LightGBM (three seeds averaged), predictions shifted earlier by the constant
  that minimises the out-of-fold PHM08 score; the time includes the out-of-fold fits behind the prediction
  intervals, whose test coverage is printed too.
* Beside the RMSE against the true RUL the script prints, for reading only,
  how many test units have a true RUL above the training cap and the RMSE a
  model would have if it were exact on every other unit and predicted the cap
  on those (``floor``), and the RMSE against the true RUL capped too (a
  convention of part of the literature, not ours).
* **anchors**: a plain LightGBM on rolling-window features, written here
  independently with pandas: per sensor (sensors with fewer than 3 distinct
  values dropped) the last value and the mean and standard deviation over the
  last 30 cycles (``lgbm-roll30``), or over the last 5, 10, 20 and 30 cycles
  (``lgbm-roll4w``), plus the cycle; LightGBM with its default parameters
  (500 rounds, learning rate 0.05).

Run from the repository root::

    .venv/bin/python benchmarks/bench_health.py
    .venv/bin/python benchmarks/bench_health.py --subsets FD002 --data-dir path/to/cmapss
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from aiguilleur import health

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data" / "cmapss"
CAP = 125.0


def _read(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep=r"\s+", header=None)
    df.columns = ["unit", "cycle", "o1", "o2", "o3", *[f"s{i}" for i in range(1, 22)]]
    return df


def _rolling_features(df: pd.DataFrame, sensors: list[str], windows: list[int]) -> pd.DataFrame:
    g = df.groupby("unit")[sensors]
    parts = [df[sensors]]
    for w in windows:
        mean = g.rolling(w, min_periods=1).mean().reset_index(level=0, drop=True)
        std = g.rolling(w, min_periods=2).std().reset_index(level=0, drop=True).fillna(0.0)
        parts += [mean.add_suffix(f"_mean{w}"), std.add_suffix(f"_std{w}")]
    out = pd.concat(parts, axis=1)
    out["cycle"] = df["cycle"]
    return out


def anchor(
    train_path: Path, test_path: Path, truth: np.ndarray, threads: int, windows: list[int]
) -> dict[str, float]:
    """The plain LightGBM on rolling-window features."""
    import lightgbm as lgb

    t0, c0 = time.perf_counter(), time.process_time()
    tr, te = _read(train_path), _read(test_path)
    sensors = [c for c in tr.columns if c.startswith("s") and tr[c].nunique() > 2]
    y = np.minimum(tr.groupby("unit")["cycle"].transform("max") - tr["cycle"], CAP)
    x = _rolling_features(tr, sensors, windows)
    params = {"objective": "regression", "learning_rate": 0.05, "num_threads": threads,
              "verbose": -1, "seed": 0}  # fmt: skip
    model = lgb.train(params, lgb.Dataset(x, y), 500)
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    xt = _rolling_features(te, sensors, windows)
    last = te.groupby("unit")["cycle"].idxmax().to_numpy()
    pred = np.clip(model.predict(xt.loc[last]), 0.0, CAP)
    d = pred - truth
    return {
        "rmse": float(np.sqrt(np.mean(d**2))),
        "score": health.phm08_score(pred, truth),
        "train_time_s": fit_s,
        "train_cpu_s": fit_cpu_s,
    }


def _load() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subsets", nargs="*", default=["FD001", "FD002", "FD003"])
    ap.add_argument("--data-dir", type=Path, default=SHARED, help="folder of the C-MAPSS files")
    ap.add_argument("--threads", type=int, default=1, help="LightGBM threads (both models)")
    args = ap.parse_args()
    if not (args.data_dir / "train_FD001.txt").is_file() and not any(
        (args.data_dir / f"train_{s}.txt").is_file() for s in args.subsets
    ):
        sys.exit(f"no C-MAPSS files in {args.data_dir}; pass --data-dir")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    header = (
        f"{'subset':7} {'model':11} {'RMSE':>6} {'score':>7} {'train s':>8} "
        f"{'cover80':>7} {'width':>6} {'cpu s':>6}  load"
    )
    print(header)
    print("-" * len(header))
    for sub in args.subsets:
        paths = [args.data_dir / f"{k}_{sub}.txt" for k in ("train", "test", "RUL")]
        for p in paths:
            if not p.is_file():
                sys.exit(f"missing {p}")
        train, test = health.read_cmapss(paths[0]), health.read_cmapss(paths[1])
        truth = health.read_rul(paths[2], test.units.size)
        opts = health.RULOptions(threads=args.threads)
        res = health.backtest(train, test, truth, opts)
        print(
            f"{sub:7} {'aiguilleur':11} {res.rmse:6.2f} {res.score:7.1f} {res.train_time_s:8.1f} "
            f"{res.coverage:7.2f} {res.mean_interval_width:6.1f} {res.train_cpu_s:6.1f}  {_load()}"
        )
        cap = opts.cap_cycles
        above = truth > cap
        floor = float(np.sqrt(np.mean(np.where(above, truth - cap, 0.0) ** 2)))
        capped = float(np.sqrt(np.mean((res.prediction.rul_cycles - np.minimum(truth, cap)) ** 2)))
        below = float(np.sqrt(np.mean((res.prediction.rul_cycles - truth)[~above] ** 2)))
        print(
            f"{sub:7} {int(above.sum())} of {truth.size} test units have a true RUL above the cap "
            f"{cap:g} (max {int(truth.max())}): RMSE floor {floor:.2f}; RMSE on the others "
            f"{below:.2f}; RMSE against the capped truth {capped:.2f}"
        )
        # Failure within 30 cycles: Brier score of the probabilities against the outcome,
        # beside that of the base rate (an oracle: it uses the test outcomes).
        risk = health.failure_probability(
            res.prediction, 30.0, health.RiskOptions(cycle_duration_h=1.0)
        )
        failed = (truth <= 30).astype(float)
        brier = float(np.mean((risk.probability - failed) ** 2))
        base = float(np.mean((failed.mean() - failed) ** 2))
        print(f"{sub:7} P(fail within 30 cycles): Brier {brier:.3f}, base rate {base:.3f}")
        for name, windows in (("lgbm-roll30", [30]), ("lgbm-roll4w", [5, 10, 20, 30])):
            ref = anchor(paths[0], paths[1], truth, args.threads, windows)
            print(
                f"{sub:7} {name:11} {ref['rmse']:6.2f} {ref['score']:7.1f} "
                f"{ref['train_time_s']:8.1f} {'-':>7} {'-':>6} {ref['train_cpu_s']:6.1f}  {_load()}"
            )
            print(
                f"{sub:7} {'  ratio':11} {res.rmse / ref['rmse']:6.2f} "
                f"{res.score / ref['score']:7.2f} {res.train_time_s / ref['train_time_s']:8.1f}"
            )


if __name__ == "__main__":
    main()
