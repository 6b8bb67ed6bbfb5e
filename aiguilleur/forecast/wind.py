"""Wind-power quantile forecasts from numerical weather predictions (GEFCom2012 wind track).

Data: hourly power of each farm normalised by its capacity (0..1), and NWP
forecasts issued at 00:00 and 12:00 for lead times 1..48 h (zonal and
meridional wind ``u``, ``v``, speed ``ws``, direction ``wd``).

Model: per farm, one LightGBM model per quantile, pooled over lead times.
Features of a (issue time, lead) row, all known at the issue time: the NWP
wind at the target hour (``u``, ``v``, ``ws``, ``ws^3``, direction as sine
and cosine), the same issue's speed one and two hours either side and its
mean over seven hours, the lead, the hour of day and the day of year of the
target, and the power measured at the issue time. The quantiles are shifted
by conformal calibration (the errors, on the ``calibration_days`` before each
refit, of a model trained before them; see
:mod:`aiguilleur.forecast.calibration`), clipped to [0, 1] and sorted.

References on the same rows: *persistence* (the power measured at the issue
time, for every lead) and *climatology* (the mean power of the training
period as the point forecast, its empirical quantiles as the distribution).

In the competition's test period (2011 on) the files hold no NWP value for
some (issue time, lead) pairs (the organisers hid forecasts issued inside the
scoring windows beyond what was known): those rows are neither trained on nor
scored, for any of the three forecasts.

Protocol: test issue times from ``test_start`` on; the model serving an issue
time is trained on the rows whose target hour is before the first issue time
of its refit period. Scores are over lead times ``eval_leads`` (13-48 h by
default), on rows whose outcome and persistence value are both known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.forecast.backtest import pinball_loss
from aiguilleur.forecast.calibration import quantile_shifts

__all__ = [
    "FarmScores",
    "WindData",
    "WindResult",
    "WindSettings",
    "read_gefcom2012_wind",
    "wind_backtest",
]

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]
_HOUR = np.timedelta64(1, "h")
N_LEADS = 48


@dataclass(frozen=True)
class WindData:
    """Measured power and NWP forecasts of some wind farms.

    Attributes
    ----------
    time
        Hours of the measurements (regular axis), ``datetime64[h]``.
    power
        ``(n_hours, n_farms)`` normalised power, ``NaN`` where not measured.
    farms
        Farm names (``wp1`` ...).
    issue
        NWP issue times, ``datetime64[h]`` (the same for every farm).
    nwp
        Per farm: ``(n_issues, 48, 4)`` forecasts ``u, v, ws, wd`` by lead 1..48
        (``NaN`` where absent).
    """

    time: TimeArray
    power: FloatArray
    farms: tuple[str, ...]
    issue: TimeArray
    nwp: tuple[FloatArray, ...]


def _stamp(raw: Any, path: str, col: str) -> TimeArray:
    import pandas as pd

    s = pd.Series(raw).astype(str).str.strip()
    t = pd.to_datetime(s, format="%Y%m%d%H", errors="coerce")
    if t.isna().any():
        r = int(np.flatnonzero(t.isna().to_numpy())[0])
        shown = repr(s.iloc[r])
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise CaseFormatError(f"{col}: expected YYYYMMDDHH, got {shown}", path, r + 2)
    return t.to_numpy().astype("datetime64[h]")


#: Largest decompressed size of a ``.csv.gz`` forecast file (the real ones hold about
#: 5 MB); a gzip bomb is refused past it instead of filling the memory.
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024


def _gunzip(data: bytes, path: str) -> bytes:
    """Decompress a gzip file, bounded by :data:`MAX_UNZIPPED_BYTES`; one-line errors."""
    import gzip
    import io
    import zlib

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            out = fh.read(MAX_UNZIPPED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:
        what = "truncated" if isinstance(e, EOFError) else "corrupt"
        raise CaseFormatError(f"not a readable gzip file ({what}: {e})", path) from None
    if len(out) > MAX_UNZIPPED_BYTES:
        raise CaseFormatError(
            f"decompresses to more than the {MAX_UNZIPPED_BYTES:,} bytes allowed", path
        )
    return out


#: Cells read as a missing value (the GEFCom2012 files write ``NA``).
_NA = ["", "NA", "NaN", "nan", "N/A"]


def _read_csv(path: Path, gz: bool = False) -> Any:
    """A CSV table of strings (bounded read; folders, devices, binary and bad gzip refused)."""
    import io

    import pandas as pd

    from aiguilleur._files import read_input_bytes

    data = read_input_bytes(path)
    if gz:
        data = _gunzip(data, str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CaseFormatError(
            f"not utf-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "is this a binary or compressed file?",
            str(path),
            line,
        ) from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=_NA)
    except pd.errors.EmptyDataError:
        raise CaseFormatError("empty file (a header line and rows expected)", str(path)) from None
    except (pd.errors.ParserError, ValueError, OverflowError) as e:
        msg = " ".join(str(e).split())[:160]
        raise CaseFormatError(f"not a readable CSV file ({msg})", str(path)) from None
    if frame.empty:
        raise CaseFormatError("no data rows", str(path))
    return frame


def _numbers(frame: Any, cols: list[str], path: Path) -> FloatArray:
    """Columns as floats: an empty or ``NA`` cell is missing (NaN), another non-number an error."""
    import pandas as pd

    out = np.empty((len(frame), len(cols)))
    for j, c in enumerate(cols):
        raw = frame[c]
        v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(v) & raw.notna().to_numpy() & (raw.astype(str).str.strip() != "").to_numpy()
        bad |= np.isinf(v)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            shown = repr(raw.iloc[r])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise CaseFormatError(f"{c}: not a finite number: {shown}", str(path), r + 2)
        out[:, j] = v
    return out


def read_gefcom2012_wind(folder: str | Path, farms: tuple[int, ...] | None = None) -> WindData:
    """Read the GEFCom2012 wind files of a folder.

    ``windpowermeasurements.csv`` (``date`` YYYYMMDDHH, ``wp1``..``wp7``) and
    ``windforecasts_wf<k>.csv`` or ``.csv.gz`` (``date`` issue time, ``hors``
    lead, ``u``, ``v``, ``ws``, ``wd``). ``farms``: the farm numbers to read
    (default: every ``wp`` column).

    Raises :class:`~aiguilleur.errors.CaseFormatError` naming the file (and the
    line) of the first problem: a missing, unreadable, binary or corrupt
    (gzip) file, a missing column, a value that is not a number (an empty
    cell is a missing value), a bad timestamp or lead time.
    """
    import pandas as pd

    if not isinstance(folder, str | Path):
        raise ValidationError(f"folder: expected a folder name, got {type(folder).__name__}")
    if farms is not None:
        if not isinstance(farms, tuple | list) or not farms:
            raise ValidationError(
                f"farms: expected a non-empty tuple of farm numbers, got {farms!r}"
            )
        for k in farms:
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
                raise ValidationError(f"farms: expected farm numbers >= 1, got {k!r}")
        if len(set(farms)) != len(farms):
            raise ValidationError(f"farms: a farm is listed twice in {tuple(farms)}")
    d = Path(folder)
    if not d.exists():
        raise CaseFormatError("no such folder", str(d))
    if not d.is_dir():
        raise CaseFormatError("not a folder (the GEFCom2012 wind folder expected)", str(d))
    pm = d / "windpowermeasurements.csv"
    if not pm.exists():
        raise CaseFormatError("no windpowermeasurements.csv in the folder", str(d))
    frame = _read_csv(pm)
    if "date" not in frame.columns:
        raise CaseFormatError("no column 'date'", str(pm))
    cols = [c for c in frame.columns if str(c).startswith("wp")]
    if farms is not None:
        want = [f"wp{k}" for k in farms]
        missing = [c for c in want if c not in cols]
        if missing:
            raise CaseFormatError(f"no column {missing[0]!r}", str(pm))
        cols = want
    if not cols:
        raise CaseFormatError("no power column wp1, wp2, ...", str(pm))
    t = _stamp(frame["date"], str(pm), "date")
    step = np.diff(t).astype(np.int64)
    if (step <= 0).any():
        r = int(np.flatnonzero(step <= 0)[0]) + 1
        what = "duplicated" if step[r - 1] == 0 else "out-of-order"
        raise CaseFormatError(f"{what} timestamp {t[r]}", str(pm), r + 2)
    n = int((t[-1] - t[0]) // _HOUR) + 1
    pos = ((t - t[0]) // _HOUR).astype(np.int64)
    power = np.full((n, len(cols)), np.nan)
    power[pos] = _numbers(frame, cols, pm)
    time = t[0] + np.arange(n) * _HOUR

    nwps: list[FloatArray] = []
    issue_ref: TimeArray | None = None
    for c in cols:
        k = c[2:]
        f = next(
            (
                d / n_
                for n_ in (f"windforecasts_wf{k}.csv", f"windforecasts_wf{k}.csv.gz")
                if (d / n_).exists()
            ),
            None,
        )
        if f is None:
            raise CaseFormatError(f"no windforecasts_wf{k}.csv(.gz) for farm {c}", str(d))
        w = _read_csv(f, gz=f.name.endswith(".gz"))
        for need in ("date", "hors", "u", "v", "ws", "wd"):
            if need not in w.columns:
                raise CaseFormatError(f"no column {need!r}", str(f))
        it = _stamp(w["date"], str(f), "date")
        lead = pd.to_numeric(w["hors"], errors="coerce").to_numpy()
        bad = ~np.isin(lead, np.arange(1, N_LEADS + 1))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            shown = repr(w["hors"].iloc[r])[:40]
            raise CaseFormatError(f"hors: expected 1..48, got {shown}", str(f), r + 2)
        issues = np.unique(it)
        if issue_ref is None:
            issue_ref = issues
        elif not np.array_equal(issues, issue_ref):
            raise CaseFormatError("issue times differ from those of the first farm", str(f))
        ii = np.searchsorted(issues, it)
        li = lead.astype(np.int64) - 1
        key = ii * N_LEADS + li
        if np.unique(key).size != key.size:
            _, first = np.unique(key, return_index=True)
            r = int(np.setdiff1d(np.arange(key.size), first)[0])
            raise CaseFormatError("duplicated (date, hors) row", str(f), r + 2)
        arr = np.full((issues.size, N_LEADS, 4), np.nan)
        arr[ii, li] = _numbers(w, ["u", "v", "ws", "wd"], f)
        nwps.append(arr)
    assert issue_ref is not None
    return WindData(time=time, power=power, farms=tuple(cols), issue=issue_ref, nwp=tuple(nwps))


@dataclass(frozen=True)
class WindSettings:
    """Settings of the wind-power backtest.

    Parameters
    ----------
    test_start
        First issue time of the test period (``YYYY-MM-DD``).
    refit
        Retrain each farm's model every ``"monthly"``, ``"quarterly"`` period or ``"once"``.
    quantiles
        Quantile levels (increasing, including 0.5).
    eval_leads
        Lead times scored, inclusive.
    calibration_days
        Calibrate the quantiles on the last days before each refit (issue times
        in that window, lead times in ``eval_leads``), forecast by a model
        trained before the window; 0: raw quantiles.
    n_estimators, learning_rate, num_leaves, min_data_in_leaf, num_threads, seed
        LightGBM settings.
    """

    test_start: str = "2011-01-01"
    refit: Literal["monthly", "quarterly", "once"] = "quarterly"
    quantiles: tuple[float, ...] = (0.05, 0.1, 0.5, 0.9, 0.95)
    eval_leads: tuple[int, int] = (13, 48)
    calibration_days: int = 60
    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 100
    num_threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.refit not in ("monthly", "quarterly", "once"):
            raise ValidationError(f"refit: expected monthly, quarterly or once, got {self.refit!r}")
        if not isinstance(self.test_start, str):
            raise ValidationError(
                f"test_start: expected a date YYYY-MM-DD, got {self.test_start!r}"
            )
        try:
            np.datetime64(self.test_start, "h")
        except ValueError:
            raise ValidationError(f"test_start: cannot read {self.test_start[:40]!r}") from None
        if not isinstance(self.quantiles, tuple | list) or not all(
            isinstance(x, int | float | np.floating) and not isinstance(x, bool)
            for x in self.quantiles
        ):
            raise ValidationError(f"quantiles: expected a tuple of numbers, got {self.quantiles!r}")
        q = tuple(float(x) for x in self.quantiles)
        if list(q) != sorted(set(q)) or 0.5 not in q or any(not 0 < x < 1 for x in q):
            raise ValidationError(f"quantiles: increasing levels in (0, 1) with 0.5, got {q}")
        object.__setattr__(self, "quantiles", q)
        if isinstance(self.calibration_days, bool) or not isinstance(self.calibration_days, int):
            raise ValidationError(
                f"calibration_days: expected an integer, got {self.calibration_days!r}"
            )
        if self.calibration_days < 0:
            raise ValidationError("calibration_days: expected >= 0")
        for name, lo_, hi_ in (
            ("n_estimators", 1, 100_000),
            ("num_leaves", 2, 1 << 17),
            ("min_data_in_leaf", 1, 10**9),
            ("num_threads", 1, 256),
            ("seed", 0, 2**31 - 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo_ <= v <= hi_:
                raise ValidationError(f"{name}: expected an integer in [{lo_}, {hi_:,}], got {v!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0.0 < lr <= 1.0:
            raise ValidationError(f"learning_rate: expected a number in (0, 1], got {lr!r}")
        if (
            not isinstance(self.eval_leads, tuple | list)
            or len(self.eval_leads) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in self.eval_leads)
        ):
            raise ValidationError(
                f"eval_leads: expected two lead times (lo, hi), got {self.eval_leads!r}"
            )
        lo, hi = self.eval_leads
        if not 1 <= lo <= hi <= N_LEADS:
            raise ValidationError(
                f"eval_leads: expected 1 <= lo <= hi <= 48, got {self.eval_leads}"
            )


@dataclass(frozen=True)
class FarmScores:
    """Scores of one farm (or all farms together) over the evaluated lead times.

    Attributes
    ----------
    farm
        Farm name, or ``"all"``.
    rows
        Scored (issue, lead) pairs.
    rmse, persistence_rmse, climatology_rmse
        RMSE of the median, of persistence and of the climatological mean.
    pinball, climatology_pinball
        Mean pinball loss of the quantiles and of the climatological quantiles.
    coverage_80
        Fraction of outcomes within P10-P90.
    rmse_by_lead, persistence_rmse_by_lead
        RMSE per lead time 1..48 (``NaN`` where nothing is scored).
    """

    farm: str
    rows: int
    rmse: float
    persistence_rmse: float
    climatology_rmse: float
    pinball: float
    climatology_pinball: float
    coverage_80: float
    rmse_by_lead: FloatArray
    persistence_rmse_by_lead: FloatArray

    def as_dict(self) -> dict[str, Any]:
        """The scores as a plain dictionary."""
        return {
            "farm": self.farm,
            "rows": self.rows,
            "rmse": self.rmse,
            "persistence_rmse": self.persistence_rmse,
            "climatology_rmse": self.climatology_rmse,
            "pinball": self.pinball,
            "climatology_pinball": self.climatology_pinball,
            "coverage_80": self.coverage_80,
            "rmse_by_lead": [float(x) for x in self.rmse_by_lead],
            "persistence_rmse_by_lead": [float(x) for x in self.persistence_rmse_by_lead],
        }


@dataclass(frozen=True)
class WindResult:
    """Per-farm and pooled scores of the wind backtest."""

    farms: tuple[FarmScores, ...]
    all: FarmScores
    settings: WindSettings
    fit_time_s: float

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (the CLI's ``--json``)."""
        return {
            "status": "feasible",
            "ok": True,
            "test_start": self.settings.test_start,
            "eval_leads": list(self.settings.eval_leads),
            "farms": [f.as_dict() for f in self.farms],
            "all": self.all.as_dict(),
            "rmse": self.all.rmse,
            "persistence_rmse": self.all.persistence_rmse,
            "climatology_rmse": self.all.climatology_rmse,
            "improvement_vs_persistence": (
                1.0 - self.all.rmse / self.all.persistence_rmse
                if self.all.persistence_rmse > 0
                else float("nan")
            ),
            "fit_time_s": self.fit_time_s,
        }


_WIND_FEATURES = (
    "lead",
    "hour",
    "day_of_year",
    "u",
    "v",
    "ws",
    "ws3",
    "wd_sin",
    "wd_cos",
    "ws_m2",
    "ws_m1",
    "ws_p1",
    "ws_p2",
    "ws_mean7",
    "power_at_issue",
)


def _farm_rows(
    data: WindData, f: int
) -> tuple[FloatArray, FloatArray, FloatArray, TimeArray, FloatArray]:
    """Features ``(n_issue * 48, n_f)``, outcome, persistence, issue time and lead per row."""
    nwp = data.nwp[f]
    n_i = data.issue.size
    lead = np.tile(np.arange(1, N_LEADS + 1), n_i)
    issue = np.repeat(data.issue, N_LEADS)
    target_t = issue + lead.astype("timedelta64[h]")
    pos = ((target_t - data.time[0]) // _HOUR).astype(np.int64)
    ok = (pos >= 0) & (pos < data.time.size)
    y = np.full(pos.size, np.nan)
    y[ok] = data.power[pos[ok], f]
    ipos = ((issue - data.time[0]) // _HOUR).astype(np.int64)
    iok = (ipos >= 0) & (ipos < data.time.size)
    pers = np.full(pos.size, np.nan)
    pers[iok] = data.power[ipos[iok], f]
    ws = nwp[:, :, 2]
    pad = np.pad(ws, ((0, 0), (3, 3)), mode="edge")
    # A neighbour the file lacks stands in as the lead's own value (never NaN when ws is known).
    shifted = {k: pad[:, 3 + k : 3 + k + N_LEADS] for k in range(-3, 4)}
    shifted = {k: np.where(np.isfinite(v), v, ws) for k, v in shifted.items()}
    mean7 = np.mean(np.stack(list(shifted.values())), axis=0)
    wd = np.deg2rad(nwp[:, :, 3])
    hour = ((target_t - target_t.astype("datetime64[D]")) // _HOUR).astype(np.float64)
    doy = (
        target_t.astype("datetime64[D]") - target_t.astype("datetime64[Y]").astype("datetime64[D]")
    ).astype(np.float64)
    cols = [
        lead.astype(np.float64),
        hour,
        doy,
        nwp[:, :, 0].reshape(-1),
        nwp[:, :, 1].reshape(-1),
        ws.reshape(-1),
        (ws**3).reshape(-1),
        np.sin(wd).reshape(-1),
        np.cos(wd).reshape(-1),
        shifted[-2].reshape(-1),
        shifted[-1].reshape(-1),
        shifted[1].reshape(-1),
        shifted[2].reshape(-1),
        mean7.reshape(-1),
        pers,
    ]
    return np.column_stack(cols), y, pers, issue, lead.astype(np.float64)


def _period(t: TimeArray, refit: str) -> npt.NDArray[np.int64]:
    m = t.astype("datetime64[M]").astype(np.int64)
    if refit == "monthly":
        return m
    if refit == "quarterly":
        return m // 3
    return np.zeros(t.size, dtype=np.int64)


def _rmse(e: FloatArray) -> float:
    return float(np.sqrt(np.mean(e**2))) if e.size else float("nan")


def _scores(
    name: str,
    y: FloatArray,
    pred: FloatArray,
    pers: FloatArray,
    clim_mean: FloatArray,
    clim_q: FloatArray,
    lead: FloatArray,
    q: FloatArray,
) -> FarmScores:
    med = pred[:, int(np.flatnonzero(q == 0.5)[0])]
    i10 = np.flatnonzero(np.isclose(q, 0.1))
    i90 = np.flatnonzero(np.isclose(q, 0.9))
    cover = (
        float(np.mean((y >= pred[:, i10[0]]) & (y <= pred[:, i90[0]])))
        if i10.size and i90.size
        else float("nan")
    )
    by_lead = np.full(N_LEADS, np.nan)
    by_lead_p = np.full(N_LEADS, np.nan)
    for k in range(1, N_LEADS + 1):
        m = lead == k
        if m.any():
            by_lead[k - 1] = _rmse(med[m] - y[m])
            by_lead_p[k - 1] = _rmse(pers[m] - y[m])
    return FarmScores(
        farm=name,
        rows=int(y.size),
        rmse=_rmse(med - y),
        persistence_rmse=_rmse(pers - y),
        climatology_rmse=_rmse(clim_mean - y),
        pinball=float(pinball_loss(y, pred, q).mean()),
        climatology_pinball=float(pinball_loss(y, clim_q, q).mean()),
        coverage_80=cover,
        rmse_by_lead=by_lead,
        persistence_rmse_by_lead=by_lead_p,
    )


def _train_predict(
    X_train: FloatArray, y_train: FloatArray, X_pred: FloatArray, s: WindSettings
) -> FloatArray:
    """One LightGBM quantile model per level; raw quantiles of ``X_pred``."""
    import lightgbm as lgb

    cols: list[FloatArray] = []
    for qq in s.quantiles:
        params = {
            "objective": "quantile",
            "alpha": qq,
            "learning_rate": s.learning_rate,
            "num_leaves": s.num_leaves,
            "min_data_in_leaf": s.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "num_threads": s.num_threads,
            "seed": s.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        ds = lgb.Dataset(X_train, label=y_train, feature_name=list(_WIND_FEATURES))
        b = lgb.train(params, ds, num_boost_round=s.n_estimators)
        cols.append(np.asarray(b.predict(X_pred, num_threads=s.num_threads)))
    return np.column_stack(cols)


def wind_backtest(
    data: WindData,
    settings: WindSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> WindResult:
    """Backtest quantile forecasts of every farm against persistence and climatology.

    Leads outside ``eval_leads`` are forecast too but not scored.
    """
    import time as _time

    if not isinstance(data, WindData):
        raise ValidationError(f"data: expected WindData, got {type(data).__name__}")
    if settings is not None and not isinstance(settings, WindSettings):
        raise ValidationError(f"settings: expected WindSettings, got {type(settings).__name__}")
    s = settings or WindSettings()
    q = np.array(s.quantiles)
    start = np.datetime64(s.test_start, "h")
    lo, hi = s.eval_leads
    per_farm: list[FarmScores] = []
    pooled: list[tuple[FloatArray, ...]] = []
    fit_time = 0.0
    for f, name in enumerate(data.farms):
        X, y, pers, issue, lead = _farm_rows(data, f)
        target_t = issue + lead.astype(np.int64).astype("timedelta64[h]")
        has_nwp = np.isfinite(X[:, _WIND_FEATURES.index("ws")])
        test = (issue >= start) & np.isfinite(y) & np.isfinite(pers) & has_nwp
        test &= (lead >= lo) & (lead <= hi)
        if not test.any():
            raise ValidationError(f"{name}: no scored row with issue time from {s.test_start}")
        pred = np.full((y.size, q.size), np.nan)
        clim_mean = np.full(y.size, np.nan)
        clim_q = np.full((y.size, q.size), np.nan)
        keys = _period(issue, s.refit)
        for key in np.unique(keys[test]):
            rows = test & (keys == key)
            first = issue[rows].min()
            train = (target_t < first) & np.isfinite(y) & has_nwp
            if train.sum() < 1000:
                raise ValidationError(
                    f"{name}: {int(train.sum())} training rows before {first}; need 1000"
                )
            t0 = _time.perf_counter()
            raw = _train_predict(X[train], y[train], X[rows], s)
            if s.calibration_days > 0:
                # Conformal shifts from a model trained before the calibration window.
                cal_start = first - np.timedelta64(24 * s.calibration_days, "h")
                ok = np.isfinite(y) & has_nwp
                cal = ok & (issue >= cal_start) & (target_t < first) & (lead >= lo) & (lead <= hi)
                pre = ok & (target_t < cal_start)
                if cal.sum() >= 100 and pre.sum() >= 1000:
                    raw_cal = _train_predict(X[pre], y[pre], X[cal], s)
                    raw = raw + quantile_shifts(y[cal], raw_cal, np.ones(int(cal.sum())), q)
            fit_time += _time.perf_counter() - t0
            pred[rows] = np.sort(np.clip(raw, 0.0, 1.0), axis=1)
            clim_mean[rows] = float(np.mean(y[train]))
            clim_q[rows] = np.quantile(y[train], q)[None, :]
        per_farm.append(
            _scores(
                name, y[test], pred[test], pers[test], clim_mean[test], clim_q[test], lead[test], q
            )
        )
        pooled.append((y[test], pred[test], pers[test], clim_mean[test], clim_q[test], lead[test]))
        if progress is not None:
            progress(f + 1, len(data.farms))
    cat = [np.concatenate([p[k] for p in pooled]) for k in range(6)]
    total = _scores("all", cat[0], cat[1], cat[2], cat[3], cat[4], cat[5], q)
    return WindResult(farms=tuple(per_farm), all=total, settings=s, fit_time_s=fit_time)
