"""Backtest plots as self-contained SVG (no plotting library needed).

``fan_chart_svg``: the outcome and the forecast quantiles over a few days,
bands between symmetric quantiles (P05-P95, P10-P90, ...) and the median.
``error_by_hour_svg``: MAPE of the median by hour of day, model and reference.
"""

from __future__ import annotations

from html import escape

import numpy as np
import numpy.typing as npt

__all__ = ["error_by_hour_svg", "fan_chart_svg"]

FloatArray = npt.NDArray[np.float64]

_W, _H = 900, 380
_L, _R, _T, _B = 70, 20, 40, 50


def _scale(lo: float, hi: float, a: float, b: float) -> tuple[float, float]:
    span = hi - lo if hi > lo else 1.0
    k = (b - a) / span
    return k, a - k * lo


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n if hi > lo else 1.0
    mag = 10 ** np.floor(np.log10(step))
    step = float(min((1, 2, 2.5, 5, 10), key=lambda m: abs(m * mag - step)) * mag)
    start = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(start, hi + step * 0.5, step) if v <= hi]


def _frame(title: str, ylabel: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_L}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="16" y="{(_T + _H - _B) / 2}" transform="rotate(-90 16 {(_T + _H - _B) / 2})" '
        f'text-anchor="middle">{escape(ylabel)}</text>',
    ]


def _yaxis(out: list[str], lo: float, hi: float, ky: float, by: float, digits: int) -> None:
    for v in _ticks(lo, hi):
        y = ky * v + by
        out.append(
            f'<line x1="{_L}" x2="{_W - _R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{_L - 6}" y="{y + 4:.1f}" text-anchor="end">{v:,.{digits}f}</text>'
        )


def fan_chart_svg(
    days: npt.NDArray[np.datetime64],
    actual: FloatArray,
    pred: FloatArray,
    quantiles: FloatArray,
    label: str = "load",
) -> str:
    """A fan chart: ``actual`` ``(n_days, 24)`` and quantiles ``pred`` ``(n_days, 24, n_q)``."""
    q = np.asarray(quantiles)
    a = np.asarray(actual).reshape(-1)
    p = np.asarray(pred).reshape(-1, q.size)
    n = a.size
    vals = np.concatenate([a[np.isfinite(a)], p[np.isfinite(p)]])
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    kx, bx = _scale(0, max(n - 1, 1), _L, _W - _R)
    ky, by = _scale(lo, hi, _H - _B, _T)
    title = f"Day-ahead forecast of {label}, {days[0]} to {days[-1]}" if len(days) else label
    out = _frame(title, label)
    _yaxis(out, lo, hi, ky, by, 0)
    x = np.arange(n) * kx + bx
    for k in range(q.size // 2):
        j = q.size - 1 - k
        if not np.isfinite(p[:, k]).all() or not np.isfinite(p[:, j]).all():
            continue
        upper = " ".join(f"{x[i]:.1f},{ky * p[i, j] + by:.1f}" for i in range(n))
        lower = " ".join(f"{x[i]:.1f},{ky * p[i, k] + by:.1f}" for i in range(n - 1, -1, -1))
        opacity = 0.18 + 0.15 * k
        out.append(
            f'<polygon points="{upper} {lower}" fill="#3b7dd8" fill-opacity="{opacity:.2f}">'
            f"<title>P{q[k] * 100:g}-P{q[j] * 100:g}</title></polygon>"
        )
    med = int(np.argmin(np.abs(q - 0.5)))
    pts = " ".join(f"{x[i]:.1f},{ky * p[i, med] + by:.1f}" for i in range(n))
    out.append(f'<polyline points="{pts}" fill="none" stroke="#1f4e99" stroke-width="1.5"/>')
    ok = np.isfinite(a)
    pts = " ".join(f"{x[i]:.1f},{ky * a[i] + by:.1f}" for i in range(n) if ok[i])
    out.append(f'<polyline points="{pts}" fill="none" stroke="black" stroke-width="1.2"/>')
    for d in range(len(days)):
        xd = x[min(d * 24, n - 1)]
        out.append(
            f'<line x1="{xd:.1f}" x2="{xd:.1f}" y1="{_T}" y2="{_H - _B}" stroke="#bbb"/>'
            f'<text x="{xd + 4:.1f}" y="{_H - _B + 16}">{days[d]}</text>'
        )
    out.append(
        f'<text x="{_W - _R}" y="22" text-anchor="end">black: outcome, blue line: median, '
        "bands: central intervals</text></svg>"
    )
    return "\n".join(out)


def error_by_hour_svg(model: FloatArray, baseline: FloatArray | None = None) -> str:
    """Bars of the MAPE (%) of the median by hour of day, beside the reference's."""
    m = np.asarray(model, dtype=np.float64)
    b = None if baseline is None else np.asarray(baseline, dtype=np.float64)
    top = float(np.nanmax(m if b is None else np.concatenate([m, b])))
    top = top * 1.1 if np.isfinite(top) and top > 0 else 1.0
    ky, by = _scale(0.0, top, _H - _B, _T)
    out = _frame("MAPE of the median by hour of day", "MAPE (%)")
    _yaxis(out, 0.0, top, ky, by, 1)
    slot = (_W - _L - _R) / 24
    w = slot * (0.4 if b is not None else 0.7)
    for h in range(24):
        x0 = _L + h * slot + slot * 0.1
        series = [(m[h], "#3b7dd8")] + ([(b[h], "#c0c0c0")] if b is not None else [])
        for k, (v, colour) in enumerate(series):
            if not np.isfinite(v):
                continue
            y = ky * v + by
            out.append(
                f'<rect x="{x0 + k * w:.1f}" y="{y:.1f}" width="{w:.1f}" '
                f'height="{_H - _B - y:.1f}" fill="{colour}"><title>{h:02d}:00 '
                f"{v:.2f} %</title></rect>"
            )
        out.append(f'<text x="{x0 + w:.1f}" y="{_H - _B + 16}" text-anchor="middle">{h}</text>')
    out.append(
        f'<text x="{(_W) / 2}" y="{_H - 12}" text-anchor="middle">hour of day (start)</text>'
    )
    legend = "blue: model" + (", grey: seasonal naive" if b is not None else "")
    out.append(f'<text x="{_W - _R}" y="22" text-anchor="end">{legend}</text></svg>')
    return "\n".join(out)
