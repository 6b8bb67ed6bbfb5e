"""The world a log starts from: the grid at a secure operating point, the fleets and their plans.

A log begins with ``grid_initialised`` (and, with fleets, ``fleet_initialised``)
events that carry everything folding needs, solver outputs included, so that
the state is a pure fold of the log. :func:`grid_world` computes the grid's
operating point once:

* **Base case secure in AC.** The AC optimal power flow (PGLib-OPF's
  formulation, IPOPT) with every branch limited to ``100 - margin_pct`` % of
  its long-term rating (rate A): the dispatch, voltage set-points and the
  reactive output of units at buses that do not regulate voltage. An AC power
  flow of that point is then held against rate A and the voltage limits.
  The case files' stored set-points are not used: on case1888_rte they leave
  23 branches above rate A before anything happens.
* **N-1 against emergency ratings, where the case allows it.** Every branch
  and generator outage is screened (DC, then AC verification) against the
  emergency rating (``rate_c``, or 1.2 x rate A where the case gives no
  separate one, the rule of :mod:`aiguilleur.grid.security`). What remains
  insecure (typically load pockets that no dispatch can secure, and radial
  branches whose loss islands load) is counted in the report, not hidden.

When the AC-OPF fails, the stored set-points scaled to the load are used and
the report says so.

The AC-OPF of a bundled case at a given margin gives the same point every
time: it is solved once and shipped (``aiguilleur/data/operating_points``,
written by ``regenerate.py`` beside it, keyed by the case file's SHA-256 and
the margin). A shipped point is used only when it holds in the AC power flow
above (rate A less nothing, voltage limits); otherwise, or for any other case
or margin, the AC-OPF is solved here. The operating point names which it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.errors import AiguilleurError, ValidationError
from aiguilleur.ops import events as ev

__all__ = [
    "EMERGENCY_FACTOR",
    "check_world_time",
    "emergency_network",
    "grid_world",
    "load_case_source",
    "operating_point_document",
    "shipped_operating_point",
]

EMERGENCY_FACTOR = 1.2


def load_case_source(case: str) -> tuple[str, str, str | None, Any]:
    """``(name, sha256, text or None, network)`` of a bundled case name or a case file."""
    from aiguilleur._files import read_input_text
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower_string

    p = Path(case)
    if p.suffix == ".m" and (p.exists() or p.is_symlink()):
        # regular files only, bounded (a grid_initialised event carries the text)
        text = read_input_text(p, max_bytes=50_000_000)
        raw = text.encode("utf-8")
        net = read_matpower_string(text, source=str(p), default_name=p.stem)
        return p.stem, hashlib.sha256(raw).hexdigest(), text, net
    path = bundled_case_path(case)
    raw = path.read_bytes()
    net = read_matpower_string(raw.decode("utf-8"), source=path.name, default_name=case)
    short = path.name.removeprefix("pglib_opf_").removesuffix(".m")
    return short, hashlib.sha256(raw).hexdigest(), None, net


def check_world_time(at: Any, where: str) -> None:
    """A world's start: an aware date and time the event vocabulary accepts (1970 to 9998),
    checked before the work that builds the world."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError(f"{where}: expected a date and time with a time zone, got {at!r}")
    if not 1970 <= at.year <= 9998:
        raise ValidationError(
            f"{where}: expected a date between 1970 and 9998, got {at.isoformat()}"
        )


def emergency_network(net: Any) -> Any:
    """``net`` with ``rate_c`` set to the post-contingency limit: rate C, or 1.2 x rate A."""
    b = net.branch
    rc = np.where(
        (b.rate_c_mva > 0) & (b.rate_c_mva != b.rate_a_mva),
        b.rate_c_mva,
        EMERGENCY_FACTOR * b.rate_a_mva,
    )
    return net.replace(branch=dataclasses.replace(b, rate_c_mva=rc))


#: Folder of ``aiguilleur.data`` with the shipped AC-OPF operating points
OPERATING_POINTS = "operating_points"


def _margin_key(margin_pct: float) -> str:
    return f"{float(margin_pct):g}"


def shipped_operating_point(name: str, sha256: str, margin_pct: float) -> dict[str, Any] | None:
    """The shipped AC-OPF point of bundled case ``name`` (short name) at ``margin_pct``.

    ``None`` when none is shipped, or when it was made from another version of
    the case file (its SHA-256 differs) or for another margin.
    """
    from importlib.resources import files

    ref = files("aiguilleur.data").joinpath(OPERATING_POINTS, f"{name}.json")
    if not ref.is_file():
        return None
    try:
        doc = json.loads(ref.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("case_sha256") != sha256:
        return None
    point = (doc.get("margins") or {}).get(_margin_key(margin_pct))
    return point if isinstance(point, dict) else None


def operating_point_document(case: str, margins: tuple[float, ...] = (5.0,)) -> dict[str, Any]:
    """The AC-OPF operating points of bundled ``case`` at each margin, solved now (to ship)."""
    at = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    name, sha, text, _net = load_case_source(case)
    if text is not None:
        raise ValidationError(f"{case}: operating points are shipped for bundled cases only")
    out: dict[str, Any] = {"case": name, "case_sha256": sha, "margins": {}}
    for m in margins:
        e = grid_world(case, at=at, margin_pct=m, screen=False, shipped=False)
        op = e.operating_point
        if not str(op.get("method", "")).startswith("AC-OPF") or not op["base_case"]["ok"]:
            raise AiguilleurError(f"{case} at {m:g} %: the AC-OPF gave no secure point")
        out["margins"][_margin_key(m)] = {
            "method": op["method"],
            "objective_eur_per_h": op["objective_eur_per_h"],
            "iterations": op["iterations"],
            "pg_mw": e.pg_mw,
            "vg_pu": e.vg_pu,
            "qg_mvar": e.qg_mvar,
        }
    return out


def grid_world(
    case: str = "case1888",
    *,
    at: datetime,
    event_id: str = "world:grid",
    margin_pct: float = 5.0,
    assets: dict[str, str] | None = None,
    screen: bool = True,
    shipped: bool = True,
) -> ev.GridInitialised:
    """The ``grid_initialised`` event of a case at a secure operating point (module docstring).

    ``shipped`` false solves the AC-OPF even where a shipped point would do.
    """
    from aiguilleur.grid import ACOPFOptions, ac_opf, scaled_dispatch
    from aiguilleur.grid.corrective import ac_check

    check_world_time(at, "at")
    if not 0.0 <= margin_pct < 50.0:
        raise ValidationError(f"margin_pct: expected a number in [0, 50), got {margin_pct!r}")
    t0 = time.perf_counter()
    name, sha, text, net = load_case_source(case)
    b = net.branch
    tight = net.replace(
        branch=dataclasses.replace(b, rate_a_mva=b.rate_a_mva * (1.0 - margin_pct / 100.0))
    )
    op: dict[str, Any] = {"margin_pct": margin_pct}
    if shipped and text is None:
        point = _shipped_point(net, name, sha, margin_pct)
        if point is not None:
            pg, vg, qg, meta = point
            chk = ac_check(
                net.replace(gen=dataclasses.replace(net.gen, pg_mw=pg, vg_pu=vg, qg_mvar=qg)), "a"
            )
            # the margin too: a point that no longer keeps it is not the one shipped
            if chk.ok and chk.max_loading_pct <= 100.0 - margin_pct + 0.5:
                op.update(meta)
                return _event(
                    net, op, chk, pg, vg, qg, screen, t0, at, event_id, name, sha, text, assets
                )
    try:
        res = ac_opf(tight, ACOPFOptions())
        ok = res.status == "optimal"
    except AiguilleurError as e:
        res, ok = None, False
        op["ac_opf_error"] = str(e)[:200]
    if ok and res is not None:
        pg = np.asarray(res.pg_mw)
        vg = np.where(net.gen.in_service == 1, res.vm_pu[net.gen_bus], net.gen.vg_pu)
        qg = np.asarray(res.qg_mvar)
        op.update(
            {
                "method": (
                    f"AC-OPF (IPOPT) with branches limited to {100 - margin_pct:g} % of rate A"
                ),
                "objective_eur_per_h": float(res.objective),
                "iterations": int(res.iterations),
            }
        )
    else:
        scaled = scaled_dispatch(net)
        pg, vg, qg = (
            np.asarray(scaled.gen.pg_mw),
            np.asarray(net.gen.vg_pu),
            np.asarray(net.gen.qg_mvar),
        )
        op["method"] = "stored set-points scaled to the load (the AC-OPF did not solve)"
    point = net.replace(gen=dataclasses.replace(net.gen, pg_mw=pg, vg_pu=vg, qg_mvar=qg))
    chk = ac_check(point, "a")
    return _event(net, op, chk, pg, vg, qg, screen, t0, at, event_id, name, sha, text, assets)


def _shipped_point(
    net: Any, name: str, sha: str, margin_pct: float
) -> tuple[Any, Any, Any, dict[str, Any]] | None:
    doc = shipped_operating_point(name, sha, margin_pct)
    if doc is None:
        return None
    try:
        arrs = [np.asarray(doc[k], dtype=np.float64) for k in ("pg_mw", "vg_pu", "qg_mvar")]
        meta = {
            "method": f"{doc['method']}; solved once and shipped with aiguilleur "
            f"(data/{OPERATING_POINTS}/{name}.json, case SHA-256 checked), "
            "held here in an AC power flow",
            "objective_eur_per_h": float(doc["objective_eur_per_h"]),
            "iterations": int(doc["iterations"]),
            "shipped": True,
        }
    except (KeyError, TypeError, ValueError):
        return None
    if any(a.shape != (net.n_gen,) or not np.all(np.isfinite(a)) for a in arrs):
        return None
    return arrs[0], arrs[1], arrs[2], meta


def _event(
    net: Any,
    op: dict[str, Any],
    chk: Any,
    pg: Any,
    vg: Any,
    qg: Any,
    screen: bool,
    t0: float,
    at: datetime,
    event_id: str,
    name: str,
    sha: str,
    text: str | None,
    assets: dict[str, str] | None,
) -> ev.GridInitialised:
    from aiguilleur.grid import ContingencyOptions, screen_n1

    point = net.replace(gen=dataclasses.replace(net.gen, pg_mw=pg, vg_pu=vg, qg_mvar=qg))
    op["base_case"] = {
        "rating": "a",
        "ok": chk.ok,
        "max_loading_pct": chk.max_loading_pct,
        "overloads": len(chk.overloads),
        "voltage_violations": len(chk.low_voltage) + len(chk.high_voltage),
        "vm_min_pu": chk.vm_min_pu,
        "vm_max_pu": chk.vm_max_pu,
        "losses_mw": chk.losses_mw,
    }
    if screen:
        n1 = screen_n1(
            emergency_network(point),
            ContingencyOptions(rating="c", generators=True, ac_verify=True),
        )
        counts = {k: n1.count(k) for k in ("secure", "overload", "islanding", "diverged")}
        insecure = [
            ev.outage_ref(str(n1.kind[p]), int(n1.element[p]))
            for p in n1.ranked()
            if n1.status[p] in ("overload", "diverged")
        ]
        op["n1"] = {
            "rating": f"rate C, or {EMERGENCY_FACTOR} x rate A where the case has no separate one",
            "contingencies": len(n1),
            **counts,
            "insecure": insecure[:20],
            "secure_except_islanding": counts["overload"] + counts["diverged"] == 0,
        }
    op["time_s"] = time.perf_counter() - t0
    return ev.GridInitialised(
        id=event_id,
        occurred_at=at,
        source="aiguilleur:world",
        case=name,
        case_sha256=sha,
        case_text=text,
        pg_mw=[float(x) for x in pg],
        vg_pu=[float(x) for x in vg],
        qg_mvar=[float(x) for x in qg],
        operating_point=_json_safe(op),
        assets=dict(assets or {}),
    )


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float | np.floating):
        v = float(x)
        return v if np.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
