"""The HTML report of a day-ahead assessment (built on :mod:`aiguilleur.ops.report`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aiguilleur.ops.report import Figure, Table, svg_heatmap, write_html_report

if TYPE_CHECKING:
    from aiguilleur.ops.dayahead import DayAheadResult

#: Rows of the heat map (the branches most often overloaded).
HEATMAP_ROWS = 40
#: Rows of the critical-triple table.
TABLE_ROWS = 60


def _money(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:,.0f}"


def report_file(path: str | Path) -> Path:
    """The file a report given as ``path`` goes to: ``path`` itself when it names a
    ``.html`` file, else ``day_ahead.html`` in the folder ``path``."""
    out = Path(path)
    return out if out.suffix.lower() == ".html" else out / "day_ahead.html"


def check_report_path(path: str | Path, *, force: bool = False) -> Path:
    """Check where the report will go, before the assessment (one line on a problem).

    A folder may exist or be new in an existing folder; an existing report is
    replaced only with ``force``. Returns the report file.
    """
    from aiguilleur._files import check_output_file
    from aiguilleur.errors import ValidationError

    p = Path(path)
    out = report_file(p)
    if out.parent != p.parent and not p.is_dir():  # a folder to be made
        if p.exists():
            raise ValidationError(f"{p}: is a file, not a folder; give a .html file or a folder")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise ValidationError(f"{p}: the folder {parent} does not exist")
        return out
    return check_output_file(out, force=force)


def write_report(res: DayAheadResult, path: str | Path) -> Path:
    """Write the report of ``res`` to ``path`` (a ``.html`` file, or a folder).

    In a folder the file is ``day_ahead.html``. The file is written atomically;
    check the place first with :func:`check_report_path` (it is replaced here).
    """
    out = report_file(path)
    sc = res.scenarios
    prob = res.overload_probability
    peak = prob.max(axis=0)
    rows = np.flatnonzero(peak > 0)
    rows = rows[np.lexsort((rows, -prob[:, rows].sum(axis=0), -peak[rows]))][:HEATMAP_ROWS]
    heat = svg_heatmap(
        prob[:, rows].T,
        [f"branch {int(b) + 1}" for b in rows],
        [f"{h:02d}" for h in range(24)],
        title="Overload probability by hour and branch",
    )
    d = res.to_dict()
    crit = res.critical[:TABLE_ROWS]
    crit_rows = tuple(
        (c.hour, c.contingency, f"branch {c.branch + 1}", round(c.probability, 3),
         c.max_loading_pct)
        for c in crit
    )  # fmt: skip
    rem_rows = []
    for o in res.outcomes:
        if o.preventive_status in ("not_needed", "not_run"):
            continue
        rem_rows.append(
            (o.hour, sc.labels[o.scenario], o.preventive_status, o.preventive_cost,
             o.preventive_moved_mw, o.preventive_shed_mw,
             None if o.residual_base < 0 else o.residual_base,
             None if o.residual_pairs < 0 else o.residual_pairs)
        )  # fmt: skip
    hour_rows = []
    for h in range(24):
        pts = [res.outcome(h, s) for s in range(sc.count)]
        hour_rows.append(
            (h, float(sc.load_mw[:, h] @ sc.weights), int(np.sum(prob[h] > 0)),
             sum(int(p.base_over.size) for p in pts), sum(int(p.pair_cont.size) for p in pts),
             sum(int(p.diverged.size) for p in pts), float(res.preventive_cost_by_hour[h]),
             float(res.eens_by_hour_mwh[h]), float(res.lolp[h]))
        )  # fmt: skip
    lo, hi = res.eens_ci_mwh
    headline = [
        ("day", str(res.day)),
        ("status", res.status),
        ("scenarios", ", ".join(sc.labels) if sc.count <= 5 else f"{sc.count} sampled"),
        ("contingencies per hour", f"{res.contingencies_per_hour:,}"),
        ("critical triples", f"{len(res.critical):,}"),
        ("preventive cost", _money(res.preventive_cost)),
        ("EENS", f"{res.eens_mwh:,.2f} MWh" if math.isfinite(res.eens_mwh) else "-"),
        ("95 % interval", f"{lo:,.2f} - {hi:,.2f} MWh" if math.isfinite(lo) else "-"),
        ("wall time", f"{res.wall_s:,.1f} s on {res.workers} {res.executor} worker(s)"),
    ]
    facts = [
        (
            "Inputs",
            [
                f"grid {res.net.name}: {res.net.n_bus} buses, {res.net.n_branch} branches, "
                f"{res.net.n_gen} units; planned outages: "
                + (", ".join(o.label for o in res.outages) or "none"),
                f"load reference {sc.reference_mw:,.1f} MW ({res.options.load_reference} of the "
                "history): each hour's forecast divided by it scales the case's bus loads",
                f"failure probabilities: {res.failure_source}",
                f"tasks {res.tasks}, retries {d['retries']}",
            ],
        ),
    ]
    if res.messages:
        facts.append(("What was not done", list(res.messages)))
    figures = [
        Figure(
            "Overload probability by hour and branch",
            heat,
            f"probability that the branch is above rating {res.options.rating.upper()} with "
            "every element in service or after some contingency; the "
            f"{len(rows)} branches most often overloaded",
        )
    ]
    tables = [
        Table(
            "Hour by hour",
            (
                "hour",
                "expected load MW",
                "branches at risk",
                "N-0 overloads",
                "N-1 pairs",
                "diverged",
                "preventive cost",
                "EENS MWh",
                "LOLP",
            ),
            tuple(hour_rows),
            "Counts add up over the scenarios; costs, EENS and LOLP are expected values.",
        ),
        Table(
            "Critical (hour, contingency, branch) triples",
            ("hour", "contingency", "overloaded branch", "probability", "worst loading %"),
            crit_rows,
            f"Most probable first; {len(res.critical):,} in all. 'base' means already above "
            "rating with every element in service.",
        ),
        Table(
            "Remedial actions: preventive redispatch (N-1 secure DC dispatch)",
            (
                "hour",
                "scenario",
                "status",
                "cost",
                "moved MW",
                "shed MW",
                "AC N-0 left",
                "AC N-1 pairs left",
            ),
            tuple(rem_rows),
            "Cost against the planned dispatch, at the case's cost curves; what is left is "
            "found by screening the remedied point again in AC.",
        ),
    ]
    notes = [
        "Forecast: LightGBM quantiles issued at 12:00 on the day before, from the history "
        "known then; scenarios P10/P50/P90 weighted 0.3/0.4/0.3 (extended Swanson-Megill) or "
        "paths sampled from a Gaussian copula of the forecast errors' hour-to-hour correlation.",
        "Plan: unit commitment per scenario on the case's costs; assessment: AC power flow and "
        "the full N-1 screen with AC verification of every hour of every scenario.",
        "EENS: outage states sampled from the hourly failure probabilities, conditioned on at "
        "least one failure, each answered by a corrective redispatch with load shedding; the "
        "interval covers the Monte Carlo error only.",
    ]
    return write_html_report(
        out,
        title=f"Day-ahead security assessment, {res.day}",
        subtitle=f"{res.net.name}, {sc.count} scenario(s), {res.contingencies_per_hour:,} "
        "contingencies per hour",
        headline=headline,
        facts=facts,
        figures=figures,
        tables=tables,
        notes=notes,
    )
