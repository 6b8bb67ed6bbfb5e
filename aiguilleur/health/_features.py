"""Operating regimes, per-regime normalisation and causal window features (private).

Everything here is vectorised over the whole fleet: windows are computed from
cumulative sums with the window start clipped at each unit's first row, and
exponential smoothing runs as one linear filter per unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.cluster.vq import kmeans2
from scipy.signal import lfilter

from aiguilleur.errors import ValidationError
from aiguilleur.health.telemetry import Telemetry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# A true operating regime is far from the others compared with the spread inside
# it: in C-MAPSS the six flight conditions of FD002/FD004 are hundreds of
# within-regime standard deviations apart, while splitting noise around one
# condition gives ratios of 2-4.
_SEPARATION = 10.0
_MAX_REGIMES = 10
# A sensor that takes fewer distinct values than this in every regime carries no
# trend (C-MAPSS FD001: s1, s5, s10, s16, s18, s19 are constant and s6 flips
# between two readings); the resolution of a reading is often coarse (s8 takes
# 53 values), so spread relative to level is not a usable criterion.
_MIN_DISTINCT = 3


@dataclass(frozen=True)
class Regimes:
    """Operating regimes found by clustering the settings, and the sensor scales in each.

    ``centroids`` are in the settings' own units; ``scale`` divides the
    settings before distances are taken. ``mean``/``std`` are per regime and
    per kept sensor (``sensor_names``).
    """

    centroids: FloatArray
    scale: FloatArray
    sensor_names: tuple[str, ...]
    mean: FloatArray
    std: FloatArray

    @property
    def n_regimes(self) -> int:
        return int(self.centroids.shape[0])

    def assign(self, settings: FloatArray) -> IntArray:
        """The regime of each reading (nearest centroid)."""
        if self.n_regimes == 1 or settings.shape[1] == 0:
            return np.zeros(settings.shape[0], dtype=np.int64)
        z = settings / self.scale
        c = self.centroids / self.scale
        d = ((z[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        lab: IntArray = np.argmin(d, axis=1).astype(np.int64)
        return lab

    def normalise(self, tel: Telemetry) -> FloatArray:
        """The kept sensors of ``tel``, centred and scaled by their regime's statistics."""
        cols = sensor_columns(tel, self.sensor_names)
        x = tel.sensors[:, cols]
        bad = ~np.isfinite(x)
        if np.any(bad):
            r, c = np.argwhere(bad)[0]
            raise ValidationError(
                f"sensor {self.sensor_names[c]!r} is not a finite number at row {r} "
                f"(unit {tel.unit[r]}, cycle {tel.cycle[r]})",
                "telemetry",
                int(r),
            )
        g = self.assign(tel.settings)
        return (x - self.mean[g]) / self.std[g]


def sensor_columns(tel: Telemetry, names: tuple[str, ...]) -> IntArray:
    """Column index of each of ``names`` in ``tel``; a clear error naming a missing one."""
    missing = [n for n in names if n not in tel.sensor_names]
    if missing:
        raise ValidationError(
            f"sensor column(s) missing from the telemetry: {', '.join(missing)} "
            f"(the model needs {', '.join(names)})",
            "telemetry",
        )
    return np.array([tel.sensor_names.index(n) for n in names], dtype=np.int64)


def _cluster(z: FloatArray, k: int, seed: int) -> tuple[FloatArray, IntArray]:
    rng = np.random.default_rng(seed)
    best: tuple[float, FloatArray, IntArray] | None = None
    for _ in range(3):
        c, lab = kmeans2(z, k, minit="++", seed=rng)
        sse = float(((z - c[lab]) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, c, lab.astype(np.int64))
    assert best is not None
    return best[1], best[2]


def find_regimes(tel: Telemetry, n_regimes: int | None = None, seed: int = 0) -> Regimes:
    """Cluster the settings into operating regimes and learn per-regime sensor scales.

    With ``n_regimes=None`` the number is chosen as the largest ``k`` whose
    clusters are at least ``_SEPARATION`` within-cluster standard deviations
    apart (1 when no ``k`` is).
    """
    s = tel.settings
    n = s.shape[0]
    if n == 0:
        raise ValidationError("no readings to learn operating regimes from", "telemetry")
    spread = s.std(axis=0)
    varying = spread > 1e-12 * (1.0 + np.abs(s.mean(axis=0)))
    scale = np.where(varying, spread, 1.0)
    k_best, centroids = 1, s.mean(axis=0, keepdims=True)
    if s.shape[1] and np.any(varying):
        z = s[:, varying] / scale[varying]
        # Distinct points bound k; rounding keeps float noise from counting.
        n_distinct = np.unique(np.round(z, 6), axis=0).shape[0]
        candidates = [n_regimes] if n_regimes is not None else range(2, _MAX_REGIMES + 1)
        for k in candidates:
            if k < 2 or k > min(n_distinct, n):
                continue
            c, lab = _cluster(z, k, seed)
            counts = np.bincount(lab, minlength=k)
            if np.any(counts == 0):
                continue
            within = np.sqrt(((z - c[lab]) ** 2).sum(axis=1).mean())
            gaps = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
            gap = gaps[~np.eye(k, dtype=bool)].min()
            if n_regimes is not None or gap > _SEPARATION * max(within, 1e-12):
                k_best = k
                full = np.tile(s.mean(axis=0), (k, 1))
                full[:, varying] = c * scale[varying]
                centroids = full
    if n_regimes is not None and k_best != n_regimes:
        raise ValidationError(
            f"n_regimes={n_regimes}: the settings do not split into that many non-empty regimes"
        )
    proto = Regimes(centroids, scale, tel.sensor_names, np.zeros(0), np.zeros(0))
    lab = proto.assign(s)
    x = tel.sensors
    if not np.all(np.isfinite(x)):
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise ValidationError(
            f"sensor {tel.sensor_names[c]!r} is not a finite number at row {r} "
            f"(unit {tel.unit[r]}, cycle {tel.cycle[r]})",
            "telemetry",
            int(r),
        )
    mean = np.zeros((k_best, x.shape[1]))
    std = np.zeros((k_best, x.shape[1]))
    distinct = np.zeros(x.shape[1], dtype=np.int64)
    for g in range(k_best):
        xs = x[lab == g]
        mean[g] = xs.mean(axis=0)
        std[g] = xs.std(axis=0) if xs.shape[0] > 1 else 0.0
        srt = np.sort(xs, axis=0)
        n_g = 1 + (np.diff(srt, axis=0) > 1e-12 * (1.0 + np.abs(srt[1:]))).sum(axis=0)
        distinct = np.maximum(distinct, n_g)
    keep = np.flatnonzero((distinct >= _MIN_DISTINCT) & (std.max(axis=0) > 0.0))
    if keep.size == 0:
        raise ValidationError("every sensor is constant within its operating regime", "telemetry")
    std_k = np.maximum(std[:, keep], 1e-12)
    return Regimes(
        centroids=centroids,
        scale=scale,
        sensor_names=tuple(tel.sensor_names[j] for j in keep.tolist()),
        mean=mean[:, keep],
        std=std_k,
    )


# -- causal window features -------------------------------------------------------------


def unit_starts(unit: IntArray) -> IntArray:
    """For every row, the row of its unit's first reading."""
    n = unit.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.r_[True, unit[1:] != unit[:-1]]
    return np.maximum.accumulate(np.where(first, np.arange(n), 0)).astype(np.int64)


def _window_sum(cs: FloatArray, lo: IntArray, hi: IntArray) -> FloatArray:
    """Sum over rows ``lo..hi`` (inclusive) from a cumulative sum with a leading 0 row."""
    return cs[hi + 1] - cs[lo]


def _cumsum0(x: FloatArray) -> FloatArray:
    out = np.zeros((x.shape[0] + 1, *x.shape[1:]))
    np.cumsum(x, axis=0, out=out[1:])
    return out


def rolling_stats(
    z: FloatArray, t: FloatArray, start: IntArray, window: int | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mean, standard deviation and least-squares slope per cycle over the last ``window`` rows.

    ``window=None`` means every row since the unit's first. Rows with fewer
    than two readings in the window get slope 0 and std 0.
    """
    n = z.shape[0]
    hi = np.arange(n, dtype=np.int64)
    lo = start if window is None else np.maximum(start, hi - window + 1)
    m = (hi - lo + 1).astype(np.float64)[:, None]
    # Centre time on each unit's start to keep the sums well conditioned.
    tc = (t - t[start])[:, None]
    cz, czz = _cumsum0(z), _cumsum0(z * z)
    ct, ctt, ctz = _cumsum0(tc), _cumsum0(tc * tc), _cumsum0(tc * z)
    sz, szz = _window_sum(cz, lo, hi), _window_sum(czz, lo, hi)
    st, stt, stz = _window_sum(ct, lo, hi), _window_sum(ctt, lo, hi), _window_sum(ctz, lo, hi)
    mean = sz / m
    var = np.maximum(szz / m - mean * mean, 0.0)
    sxx = stt - st * st / m
    sxy = stz - st * sz / m
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 1e-9, sxy / np.where(sxx > 1e-9, sxx, 1.0), 0.0)
    return mean, np.sqrt(var), slope


def ewma(z: FloatArray, start: IntArray, alpha: float) -> FloatArray:
    """Exponentially weighted mean per unit, bias-corrected at the start (pandas' ``adjust``)."""
    out = np.empty_like(z)
    firsts = np.flatnonzero(start == np.arange(start.shape[0]))
    bounds = np.r_[firsts, start.shape[0]]
    b, a = [alpha], [1.0, alpha - 1.0]
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        num = lfilter(b, a, z[lo:hi], axis=0)
        den = lfilter(b, a, np.ones(hi - lo))
        out[lo:hi] = num / den[:, None]
    return out


def feature_matrix(
    z: FloatArray,
    tel: Telemetry,
    windows: tuple[int, ...],
    slope_windows: tuple[int, ...],
    alphas: tuple[float, ...],
    baseline_cycles: int,
) -> tuple[FloatArray, tuple[str, ...]]:
    """Causal features of every reading from the normalised sensors ``z``.

    Per sensor: exponentially smoothed values, rolling means (and the rolling
    standard deviation of the shortest window), least-squares slopes, the
    expanding mean and the drift of the smoothest series from the unit's own
    first ``baseline_cycles`` readings. Plus the cycle count. Each reading's
    features use that reading and earlier ones of the same unit only.
    """
    start = unit_starts(tel.unit)
    t = tel.cycle.astype(np.float64)
    names = list(_sensor_names(z.shape[1]))
    blocks: list[FloatArray] = [t[:, None] - t[start][:, None] + 1.0]
    labels: list[str] = ["cycles_seen"]

    def add(block: FloatArray, tag: str) -> None:
        blocks.append(block)
        labels.extend(f"{nm}_{tag}" for nm in names)

    smooth: FloatArray | None = None
    for a in alphas:
        e = ewma(z, start, a)
        add(e, f"ewm{a:g}")
        if smooth is None:
            smooth = e
    for w in windows:
        mean, std, _ = rolling_stats(z, t, start, w)
        add(mean, f"mean{w}")
        if w == min(windows):
            add(std, f"std{w}")
    for w in slope_windows:
        _, _, slope = rolling_stats(z, t, start, w)
        add(slope, f"slope{w}")
    emean, _, eslope = rolling_stats(z, t, start, None)
    add(emean, "mean_all")
    add(eslope, "slope_all")
    # The unit's own healthy level: the mean of its first readings (causal: a
    # reading before that count sees only what has arrived).
    hi = np.arange(z.shape[0], dtype=np.int64)
    base_hi = np.minimum(hi, start + baseline_cycles - 1)
    base = _window_sum(_cumsum0(z), start, base_hi) / (base_hi - start + 1)[:, None]
    assert smooth is not None
    add(smooth - base, "drift")
    return np.hstack(blocks), tuple(labels)


def _sensor_names(p: int) -> tuple[str, ...]:
    return tuple(f"z{j}" for j in range(p))


# -- health index ----------------------------------------------------------------------------


def fit_health_index(
    z: FloatArray, regime: IntArray, target: FloatArray, n_regimes: int, ridge: float
) -> FloatArray:
    """Per regime, ridge weights that map the normalised sensors to the (capped) RUL.

    Row ``k`` holds the intercept then one weight per sensor of regime ``k``. A
    sensor's response to wear differs from one operating condition to the next
    (C-MAPSS FD002: the HPC-outlet pressure moves twice as far, in regime
    standard deviations, at sea level as at 42,000 ft), so one linear index per
    regime puts every reading on one scale, in cycles, before the readings of
    different regimes are mixed in a window. A regime without training readings
    gets the pooled fit.
    """
    p = z.shape[1]
    pen = ridge * np.eye(p + 1)
    pen[0, 0] = 0.0  # the intercept is not shrunk

    def solve(rows: npt.NDArray[np.bool_]) -> FloatArray:
        a = np.hstack([np.ones((int(rows.sum()), 1)), z[rows]])
        w = np.asarray(np.linalg.solve(a.T @ a + pen, a.T @ target[rows]), dtype=np.float64)
        return w

    pooled = solve(np.ones(z.shape[0], dtype=bool))
    out = np.tile(pooled, (n_regimes, 1))
    for k in range(n_regimes):
        rows = regime == k
        if int(rows.sum()) > p + 1:
            out[k] = solve(rows)
    return out


def health_index(z: FloatArray, regime: IntArray, weights: FloatArray) -> FloatArray:
    """The per-regime linear index of every reading (a noisy RUL estimate, in cycles)."""
    w = weights[regime]
    h: FloatArray = w[:, 0] + np.einsum("ij,ij->i", z, w[:, 1:])
    return h


def index_features(
    h: FloatArray,
    tel: Telemetry,
    alphas: tuple[float, ...],
    windows: tuple[int, ...],
    slope_windows: tuple[int, ...],
) -> tuple[FloatArray, tuple[str, ...]]:
    """Causal summaries of the health index: smoothed, rolling means, slopes, since start."""
    start = unit_starts(tel.unit)
    t = tel.cycle.astype(np.float64)
    col = h[:, None]
    blocks: list[FloatArray] = []
    labels: list[str] = []
    for a in alphas:
        blocks.append(ewma(col, start, a))
        labels.append(f"hi_ewm{a:g}")
    for w in windows:
        mean, _, _ = rolling_stats(col, t, start, w)
        blocks.append(mean)
        labels.append(f"hi_mean{w}")
    for w in slope_windows:
        _, _, slope = rolling_stats(col, t, start, w)
        blocks.append(slope)
        labels.append(f"hi_slope{w}")
    emean, _, eslope = rolling_stats(col, t, start, None)
    blocks += [emean, eslope]
    labels += ["hi_mean_all", "hi_slope_all"]
    return np.hstack(blocks), tuple(labels)


def regime_history(tel: Telemetry, regime: IntArray, n_regimes: int) -> FloatArray:
    """Share of each unit's readings so far spent in each regime, shape ``(n, n_regimes)``."""
    start = unit_starts(tel.unit)
    counts = _window_sum(
        _cumsum0(np.eye(n_regimes)[regime]), start, np.arange(regime.shape[0], dtype=np.int64)
    )
    share: FloatArray = counts / counts.sum(axis=1, keepdims=True)
    return share
