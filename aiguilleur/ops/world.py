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
"""

from __future__ import annotations

import dataclasses
import hashlib
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


def grid_world(
    case: str = "case1888",
    *,
    at: datetime,
    event_id: str = "world:grid",
    margin_pct: float = 5.0,
    assets: dict[str, str] | None = None,
    screen: bool = True,
) -> ev.GridInitialised:
    """The ``grid_initialised`` event of a case at a secure operating point (module docstring)."""
    from aiguilleur.grid import (
        ACOPFOptions,
        ContingencyOptions,
        ac_opf,
        scaled_dispatch,
        screen_n1,
    )
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
