"""Risk ranking: corrective plans only where the N-1 screen found a violation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiguilleur.data import bundled_case_path
from aiguilleur.grid import ContingencyOptions, read_matpower, scaled_dispatch, screen_n1
from aiguilleur.grid.redispatch import Outage, Redispatcher, RedispatchOptions
from aiguilleur.ops.assets import risk_ranking
from aiguilleur.ops.world import emergency_network


@pytest.mark.parametrize("case", ["case14", "case118"])
def test_plans_run_only_for_violating_contingencies(case: str) -> None:
    net = scaled_dispatch(read_matpower(bundled_case_path(case)))
    emergency = emergency_network(net)
    n1 = screen_n1(emergency, ContingencyOptions(rating="c", generators=True, ac_verify=True))
    made: list[Redispatcher] = []
    opts = RedispatchOptions(minutes=15.0, rating="c", credit_savings=False)

    def factory() -> Redispatcher:
        made.append(Redispatcher(emergency, None, opts))
        return made[-1]

    top = 40
    ranking = risk_ranking(net, n1, {}, {}, 24.0, top=top, redispatcher=factory)
    chosen = [int(p) for p in n1.ranked()[:top]]
    statuses = {str(n1.status[p]) for p in chosen}
    assert len(ranking) == len(chosen)
    # the factory is called once, and only when some contingency needs a plan
    assert len(made) == (1 if "overload" in statuses or "diverged" in statuses else 0)
    assert "overload" in statuses  # both cases have outages beyond the emergency ratings
    for r in ranking:
        if r["status"] == "secure":
            assert r["plan_status"] == "not_needed"
            assert r["shed_after_plan_mw"] == 0.0 and r["overload_left_mw"] == 0.0
            assert r["impact_mw"] == r["lost_load_mw"] == 0.0
        elif r["status"] == "islanding":
            assert r["plan_status"] == "not_run" and r["impact_mw"] >= r["lost_load_mw"]
        else:
            # the same plan as a redispatch of that outage on its own
            kind, _, n = r["contingency"].partition(":")
            k = "gen" if kind == "gen" else "branch"
            alone: Any = Redispatcher(emergency, None, opts).solve([Outage(k, int(n) - 1)])  # type: ignore[arg-type]
            assert r["plan_status"] == str(alone.status)
            assert r["shed_after_plan_mw"] == pytest.approx(float(alone.total_shed_mw), abs=1e-6)
    exp = np.array([r["expected_impact_mw"] for r in ranking])
    assert np.all(np.diff(exp) <= 1e-12)  # most at risk first
