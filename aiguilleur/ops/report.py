"""Self-contained HTML reports: headline figures, inline SVG charts and tables.

A report is one HTML file with its style sheet and charts inline (SVG drawn
here, in Python): it opens offline, can be mailed or archived as it is, and
loads nothing from the network. Every piece of text is escaped.
"""

from __future__ import annotations

import html
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aiguilleur._files import atomic_write_bytes

__all__ = ["Bar", "Figure", "Table", "svg_heatmap", "svg_network_map", "write_html_report"]

Cell = str | int | float | None

# Series colours (base case first, then post-outage), the overload colour and the grid.
_COLOURS = ("#5b7fa6", "#d9822b", "#b8323a", "#6f8f5a")
_OVER = "#b8323a"
_AXIS = "#555"
_GRID = "#e3e3e3"


@dataclass(frozen=True)
class Table:
    """A table of the report.

    Parameters
    ----------
    title
        Section heading.
    columns
        Column headings.
    rows
        One tuple of cells per row; floats are shown with one decimal,
        ``None`` as a dash.
    note
        A sentence under the heading (what the table holds, units).
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Bar:
    """One bar of the overload chart: a branch's loading after and before the outage."""

    label: str
    value_pct: float
    reference_pct: float | None = None


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(value: Cell) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "&ndash;"
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return _e(value)


def _numeric(value: Cell) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _table(t: Table) -> str:
    # a column of numbers is right-aligned, heading included
    num_col = [
        any(_numeric(r[j]) for r in t.rows if j < len(r))
        and all(_numeric(r[j]) or r[j] is None for r in t.rows if j < len(r))
        for j in range(len(t.columns))
    ]
    head = "".join(
        f'<th class="num">{_e(c)}</th>' if num_col[j] else f"<th>{_e(c)}</th>"
        for j, c in enumerate(t.columns)
    )
    body = []
    for row in t.rows:
        cells = "".join(
            f'<td class="num">{_cell(v)}</td>' if _numeric(v) else f"<td>{_cell(v)}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(t.columns)}" class="empty">none</td></tr>')
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    return (
        f"<section><h2>{_e(t.title)}</h2>{note}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></section>"
    )


# -- charts ------------------------------------------------------------------------------


def _nice_step(top: float, ticks: int = 5) -> float:
    raw = max(top, 1.0) / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return float(m * mag)
    return float(10 * mag)


def _svg_histogram(
    series: Mapping[str, npt.ArrayLike],
    *,
    bin_pct: float = 10.0,
    max_pct: float = 200.0,
    title: str = "",
    width: int = 900,
    height: int = 340,
) -> str:
    """Grouped histogram of branch loadings, one colour per series.

    The last bin gathers everything at or above ``max_pct``. The count axis is
    logarithmic and bins at or above 100 % sit on a shaded band with their
    counts written on them: they are the few that matter and would otherwise
    vanish next to the lightly loaded majority. NaN values (unrated branches)
    are left out.
    """
    edges = np.arange(0.0, max_pct + bin_pct / 2, bin_pct)
    nbins = edges.size  # the last bin is the overflow [max_pct, inf)
    counts: list[npt.NDArray[np.int64]] = []
    names = list(series)
    for nm in names:
        v = np.asarray(series[nm], dtype=np.float64)
        v = v[np.isfinite(v)]
        idx = np.minimum((np.maximum(v, 0.0) // bin_pct).astype(np.int64), nbins - 1)
        counts.append(np.bincount(idx, minlength=nbins).astype(np.int64))
    ymax = max((int(c.max()) for c in counts if c.size), default=1)
    # log scale: a few overloaded branches must stay visible next to hundreds of light ones
    decades = max(1, math.ceil(math.log10(max(ymax, 1) + 1)))
    ml, mr, mt, mb = 56, 16, 34, 54
    pw, ph = width - ml - mr, height - mt - mb
    bw = pw / nbins
    gap = 2.0
    sub = (bw - 2 * gap) / max(len(names), 1)

    scale_top = math.log10(1.0 + 10**decades)

    def y(c: float) -> float:
        return mt + ph - ph * math.log10(1.0 + c) / scale_top

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(title)}">']
    over_x = ml + bw * (100.0 / bin_pct)
    out.append(
        f'<rect x="{over_x:.1f}" y="{mt}" width="{ml + pw - over_x:.1f}" height="{ph}" '
        'fill="#fbeaea"/>'
    )
    out.append(
        f'<text x="{over_x + 4:.1f}" y="{mt + 14}" font-size="12" fill="{_OVER}">'
        "overloaded (&#8805; 100 %)</text>"
    )
    for d in range(decades + 2):
        tick = 0 if d == 0 else 10 ** (d - 1)
        yy = y(float(tick))
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{_GRID}"/>')
        out.append(
            f'<text x="{ml - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="{_AXIS}">{tick:,}</text>'
        )
    for s, c in enumerate(counts):
        colour = _COLOURS[s % len(_COLOURS)]
        for i in range(nbins):
            if c[i] == 0:
                continue
            x = ml + i * bw + gap + s * sub
            yy = y(float(c[i]))
            out.append(
                f'<rect x="{x:.1f}" y="{yy:.1f}" width="{max(sub - 1, 1):.1f}" '
                f'height="{mt + ph - yy:.1f}" fill="{colour}"><title>{_e(names[s])}: '
                f"{int(c[i])} branches</title></rect>"
            )
            if edges[i] >= 100.0:
                out.append(
                    f'<text x="{x + sub / 2:.1f}" y="{yy - 3:.1f}" font-size="10" '
                    f'text-anchor="middle" fill="{colour}">{int(c[i])}</text>'
                )
    for i in range(0, nbins, 2):
        xx = ml + i * bw
        label = f"{int(i * bin_pct)}" if i < nbins - 1 else ""
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{mt + ph}" y2="{mt + ph + 4}" '
            f'stroke="{_AXIS}"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{mt + ph + 17}" font-size="11" text-anchor="middle" '
            f'fill="{_AXIS}">{label}</text>'
        )
    out.append(
        f'<text x="{ml + pw - bw / 2:.1f}" y="{mt + ph + 17}" font-size="11" '
        f'text-anchor="middle" fill="{_AXIS}">&#8805;{int(max_pct)}</text>'
    )
    out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}" stroke="{_AXIS}"/>')
    out.append(
        f'<text x="{ml + pw / 2:.1f}" y="{height - 12}" font-size="12" text-anchor="middle" '
        f'fill="{_AXIS}">branch loading (% of rating)</text>'
    )
    out.append(
        f'<text x="14" y="{mt + ph / 2:.1f}" font-size="12" text-anchor="middle" '
        f'fill="{_AXIS}" transform="rotate(-90 14 {mt + ph / 2:.1f})">branches (log scale)</text>'
    )
    lx = ml
    for s, nm in enumerate(names):
        colour = _COLOURS[s % len(_COLOURS)]
        out.append(f'<rect x="{lx}" y="10" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 17}" y="20" font-size="12" fill="#222">{_e(nm)}</text>')
        lx += 30 + 7 * len(nm)
    out.append("</svg>")
    return "".join(out)


def _svg_barh(
    bars: Sequence[Bar],
    *,
    value_name: str = "after",
    reference_name: str = "before",
    title: str = "",
    width: int = 900,
) -> str:
    """Horizontal bars of loadings (%), a marker for the reference and a 100 % line."""
    if not bars:
        return '<p class="empty">No branch is overloaded.</p>'
    row_h, ml, mr, mt, mb = 24, 250, 60, 34, 40
    height = mt + mb + row_h * len(bars)
    pw = width - ml - mr
    vals = [b.value_pct for b in bars] + [
        b.reference_pct for b in bars if b.reference_pct is not None
    ]
    finite = [v for v in vals if math.isfinite(v)]
    xmax_raw = max([*finite, 100.0]) * 1.05
    step = _nice_step(xmax_raw, 6)
    xmax = step * math.ceil(xmax_raw / step)

    def x(v: float) -> float:
        return ml + pw * max(v, 0.0) / xmax

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(title)}">']
    t = 0.0
    while t <= xmax + 1e-9:
        xx = x(t)
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{mt}" y2="{height - mb}" stroke="{_GRID}"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{height - mb + 16}" font-size="11" text-anchor="middle" '
            f'fill="{_AXIS}">{int(t)}</text>'
        )
        t += step
    for i, b in enumerate(bars):
        y0 = mt + i * row_h
        val = b.value_pct if math.isfinite(b.value_pct) else 0.0
        colour = _OVER if val > 100.0 else _COLOURS[0]
        out.append(
            f'<text x="{ml - 8}" y="{y0 + row_h / 2 + 4:.1f}" font-size="12" '
            f'text-anchor="end" fill="#222">{_e(b.label)}</text>'
        )
        out.append(
            f'<rect x="{ml}" y="{y0 + 4}" width="{x(val) - ml:.1f}" height="{row_h - 8}" '
            f'fill="{colour}"><title>{_e(b.label)}: {val:.1f} %</title></rect>'
        )
        out.append(
            f'<text x="{x(val) + 4:.1f}" y="{y0 + row_h / 2 + 4:.1f}" font-size="11" '
            f'fill="#222">{val:.0f} %</text>'
        )
        if b.reference_pct is not None and math.isfinite(b.reference_pct):
            rx = x(b.reference_pct)
            out.append(
                f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{y0 + 2}" y2="{y0 + row_h - 2}" '
                f'stroke="#111" stroke-width="2.5"><title>{_e(reference_name)}: '
                f"{b.reference_pct:.1f} %</title></line>"
            )
    x100 = x(100.0)
    out.append(
        f'<line x1="{x100:.1f}" x2="{x100:.1f}" y1="{mt - 4}" y2="{height - mb}" '
        f'stroke="{_AXIS}" stroke-dasharray="4 3"/>'
    )
    out.append(
        f'<text x="{ml + pw / 2:.1f}" y="{height - 8}" font-size="12" text-anchor="middle" '
        f'fill="{_AXIS}">loading (% of rating)</text>'
    )
    out.append(f'<rect x="{ml}" y="10" width="12" height="12" fill="{_OVER}"/>')
    out.append(f'<text x="{ml + 17}" y="20" font-size="12" fill="#222">{_e(value_name)}</text>')
    lx = ml + 40 + 7 * len(value_name)
    out.append(
        f'<line x1="{lx + 6}" x2="{lx + 6}" y1="9" y2="23" stroke="#111" stroke-width="2.5"/>'
    )
    out.append(f'<text x="{lx + 14}" y="20" font-size="12" fill="#222">{_e(reference_name)}</text>')
    out.append("</svg>")
    return "".join(out)


# -- the page ----------------------------------------------------------------------------

_CSS = """
.figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}
figcaption{font-size:12px;color:#555;max-width:440px}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#f6f6f4}
main{max-width:1000px;margin:0 auto;padding:24px 28px 40px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}
h2{font-size:1.2em;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#555;margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 12px;background:#fafafa}
.card .v{font-size:1.35em;font-weight:600}
.card .k{font-size:.85em;color:#555}
ul.facts{margin:6px 0;padding-left:20px;line-height:1.5}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border-bottom:1px solid #e6e6e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0ee}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.empty,p.empty{color:#777;font-style:italic}
p.note{color:#555;margin:4px 0 8px;font-size:.9em}
footer{margin-top:32px;color:#666;font-size:.85em;border-top:1px solid #ddd;padding-top:8px}
"""


def write_html_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    subtitle: str = "",
    headline: Sequence[tuple[str, str]] = (),
    facts: Sequence[tuple[str, Sequence[str]]] = (),
    loading: Mapping[str, npt.ArrayLike] | None = None,
    overloads: Sequence[Bar] = (),
    overloads_title: str = "Most loaded branches",
    tables: Sequence[Table] = (),
    notes: Sequence[str] = (),
    attribution: str = "",
    figures: Sequence[Figure] = (),
) -> Path:
    """Write one self-contained HTML report, atomically.

    Parameters
    ----------
    path
        The ``.html`` file to write; its folder is created if needed. The page
        is written to a temporary file beside it, then renamed, so a reader
        never sees half a report.
    title, subtitle
        Page heading and the line under it.
    headline
        ``(label, value)`` pairs shown as figure cards.
    facts
        Sections of bullet points: ``(heading, lines)``.
    loading
        Branch loadings (%) per series name, drawn as one grouped histogram.
    overloads
        Bars of the overload chart, most loaded first.
    overloads_title
        Heading of the overload chart.
    tables
        Tables, in order, after the charts.
    notes
        Paragraphs of method notes near the end.
    attribution
        Data attribution shown in the footer.
    figures
        Further charts (inline SVG), each a section after the overload chart;
        figures with the same title prefix before ``": "`` are laid side by side.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from aiguilleur import __version__

    out = Path(path)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="sub">{_e(subtitle)}</p>')
    if headline:
        cards = "".join(
            f'<div class="card"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
            for k, v in headline
        )
        parts.append(f'<div class="cards">{cards}</div>')
    for heading, lines in facts:
        items = "".join(f"<li>{_e(line)}</li>" for line in lines)
        parts.append(f'<section><h2>{_e(heading)}</h2><ul class="facts">{items}</ul></section>')
    if loading:
        parts.append("<section><h2>Branch loadings</h2>")
        parts.append(_svg_histogram(loading, title="Histogram of branch loadings"))
        parts.append("</section>")
    if overloads or loading:
        parts.append(f"<section><h2>{_e(overloads_title)}</h2>")
        parts.append(_svg_barh(overloads, title=overloads_title))
        parts.append("</section>")
    groups: dict[str, list[Figure]] = {}
    for fig in figures:
        groups.setdefault(fig.title.split(": ", 1)[0], []).append(fig)
    for heading, figs in groups.items():
        parts.append(f'<section><h2>{_e(heading)}</h2><div class="figs">')
        for fig in figs:
            cap = f"<figcaption>{_e(fig.title)}. {_e(fig.caption)}</figcaption>"
            parts.append(f"<figure>{fig.svg}{cap}</figure>")
        parts.append("</div></section>")
    parts.extend(_table(t) for t in tables)
    if notes:
        parts.append("<section><h2>Method</h2>")
        parts.extend(f"<p>{_e(n)}</p>" for n in notes)
        parts.append("</section>")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = [f"Generated by aiguilleur {_e(__version__)} on {_e(stamp)}."]
    if attribution:
        footer.append(_e(attribution))
    parts.append(f"<footer>{'<br>'.join(footer)}</footer></main></body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, "\n".join(parts).encode("utf-8"))
    return out


@dataclass(frozen=True)
class Figure:
    """A chart given as inline SVG, with its heading and a caption."""

    title: str
    svg: str
    caption: str = ""


def _colour(t: float) -> str:
    """Blue (0) - pale yellow (0.5) - red (1)."""
    stops = ((0.0, (49, 99, 160)), (0.5, (245, 236, 180)), (1.0, (184, 50, 58)))
    t = min(max(t, 0.0), 1.0)
    for (t0, c0), (t1, c1) in itertools.pairwise(stops):
        if t <= t1:
            u = (t - t0) / (t1 - t0)
            r, g, b = (round(a + (bb - a) * u) for a, bb in zip(c0, c1, strict=True))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#b8323a"


def svg_network_map(
    xy: npt.ArrayLike,
    edge_from: npt.ArrayLike,
    edge_to: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    title: str,
    unit: str,
    vmin: float,
    vmax: float,
    highlight: Sequence[int] = (),
    width: int = 440,
    height: int = 360,
) -> str:
    """Buses as dots coloured by ``values`` (e.g. prices), branches as lines; a colour bar.

    ``xy`` is an ``(n, 2)`` layout; ``highlight`` lists edges drawn thick in red
    (the outage). NaN values are drawn grey.
    """
    p = np.asarray(xy, dtype=np.float64)
    f = np.asarray(edge_from, dtype=np.int64)
    t = np.asarray(edge_to, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    pad, bar_h = 10.0, 34.0
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    sx = (width - 2 * pad) / span[0]
    sy = (height - bar_h - 2 * pad) / span[1]
    q = np.column_stack([pad + (p[:, 0] - lo[0]) * sx, pad + (p[:, 1] - lo[1]) * sy])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        '<g stroke="#c8c8c8" stroke-width="0.5">',
    ]
    out.extend(
        f'<line x1="{q[a, 0]:.1f}" y1="{q[a, 1]:.1f}" x2="{q[b, 0]:.1f}" y2="{q[b, 1]:.1f}"/>'
        for a, b in zip(f.tolist(), t.tolist(), strict=True)
    )
    out.append("</g>")
    rng = vmax - vmin if vmax > vmin else 1.0
    out.append("<g>")
    for i in np.argsort(np.nan_to_num(v, nan=-np.inf), kind="stable").tolist():
        c = "#999" if not np.isfinite(v[i]) else _colour((v[i] - vmin) / rng)
        out.append(f'<circle cx="{q[i, 0]:.1f}" cy="{q[i, 1]:.1f}" r="2" fill="{c}"/>')
    out.append("</g>")
    for k in highlight:
        a, b = int(f[k]), int(t[k])
        out.append(
            f'<line x1="{q[a, 0]:.1f}" y1="{q[a, 1]:.1f}" x2="{q[b, 0]:.1f}" y2="{q[b, 1]:.1f}" '
            f'stroke="{_OVER}" stroke-width="3"/>'
        )
    y0 = height - bar_h + 6
    steps = 40
    w = (width - 2 * pad) / steps
    out.extend(
        f'<rect x="{pad + j * w:.1f}" y="{y0:.1f}" width="{w + 0.5:.1f}" height="10" '
        f'fill="{_colour(j / (steps - 1))}"/>'
        for j in range(steps)
    )
    out.append(
        f'<text x="{pad}" y="{y0 + 24:.1f}" font-size="11" fill="{_AXIS}">{vmin:,.1f}</text>'
        f'<text x="{width / 2:.1f}" y="{y0 + 24:.1f}" font-size="11" fill="{_AXIS}" '
        f'text-anchor="middle">{_e(unit)}</text>'
        f'<text x="{width - pad}" y="{y0 + 24:.1f}" font-size="11" fill="{_AXIS}" '
        f'text-anchor="end">{vmax:,.1f}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def svg_heatmap(
    values: npt.ArrayLike,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str,
    unit: str = "probability",
    vmax: float = 1.0,
    width: int = 900,
    cell_h: int = 14,
) -> str:
    """A grid of cells (rows x columns) coloured by value from 0 (white) to ``vmax`` (red).

    Every cell carries a tooltip with its row, column and value; NaN cells are
    grey. Meant for small matrices (tens of rows): an hour x branch map of
    overload probability, for instance.
    """
    v = np.asarray(values, dtype=np.float64)
    n_r, n_c = v.shape if v.ndim == 2 else (0, 0)
    if n_r == 0 or n_c == 0:
        return '<p class="empty">Nothing to show.</p>'
    ml, mr, mt, mb = 110, 16, 30, 46
    cw = (width - ml - mr) / n_c
    height = mt + mb + cell_h * n_r
    top = vmax if vmax > 0 else 1.0

    def colour(x: float) -> str:
        t = min(max(x / top, 0.0), 1.0)
        r, g, b = (round(255 + (c1 - 255) * t) for c1 in (184, 50, 58))
        return f"#{r:02x}{g:02x}{b:02x}"

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(title)}">']
    for i in range(n_r):
        y0 = mt + i * cell_h
        out.append(
            f'<text x="{ml - 6}" y="{y0 + cell_h - 3}" font-size="10" text-anchor="end" '
            f'fill="#222">{_e(row_labels[i])}</text>'
        )
        for j in range(n_c):
            x = float(v[i, j])
            fill = "#bbb" if not math.isfinite(x) else colour(x)
            if math.isfinite(x) and x == 0.0:
                fill = "#f7f7f5"
            tip = f"{row_labels[i]}, {col_labels[j]}: " + (
                f"{x:.3g}" if math.isfinite(x) else "n/a"
            )
            out.append(
                f'<rect x="{ml + j * cw:.1f}" y="{y0}" width="{cw - 1:.1f}" height="{cell_h - 1}" '
                f'fill="{fill}"><title>{_e(tip)} {_e(unit)}</title></rect>'
            )
    for j in range(n_c):
        out.append(
            f'<text x="{ml + (j + 0.5) * cw:.1f}" y="{mt - 6}" font-size="10" '
            f'text-anchor="middle" fill="{_AXIS}">{_e(col_labels[j])}</text>'
        )
    y0 = height - mb + 14
    steps = 20
    bw = 200 / steps
    for k in range(steps):
        out.append(
            f'<rect x="{ml + k * bw:.1f}" y="{y0}" width="{bw + 0.5:.1f}" height="10" '
            f'fill="{colour(top * (k + 0.5) / steps)}"/>'
        )
    out.append(
        f'<text x="{ml}" y="{y0 + 24}" font-size="11" fill="{_AXIS}">0</text>'
        f'<text x="{ml + 200}" y="{y0 + 24}" font-size="11" fill="{_AXIS}" text-anchor="end">'
        f"{top:g}</text>"
        f'<text x="{ml + 210}" y="{y0 + 9}" font-size="11" fill="{_AXIS}">{_e(unit)}</text>'
    )
    out.append("</svg>")
    return "".join(out)
