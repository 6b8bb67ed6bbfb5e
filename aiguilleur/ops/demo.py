"""The demo: the bundled crisis scenario replayed through the operations centre.

On the French transmission grid (PGLib-OPF ``pglib_opf_case1888_rte``) and
the roads of Monaco: a cold snap, a line trip, a large unit degrading then
failing, a flooded fuel depot, urgent fuel for hospitals; every event is
stored, folded into the state and answered by the responder (corrective
plans that hold in AC, N-1, risk, fleet re-plans), and the whole day is
written up as an HTML report with the log, the routes and a summary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiguilleur.errors import AiguilleurError
from aiguilleur.ops.replay_report import REPORT_FILES, check_report_dir, write_replay_report
from aiguilleur.ops.scenario import ReplayResult, load_scenario, replay

__all__ = ["DEMO_SCENARIO", "default_report_dir", "run_demo"]

DEMO_SCENARIO = "crisis"


def default_report_dir(base: Path | None = None) -> Path:
    """``./aiguilleur-report``, or the first ``./aiguilleur-report-N`` that holds no report."""
    root = Path.cwd() if base is None else base
    for k in range(1, 1000):
        p = root / ("aiguilleur-report" if k == 1 else f"aiguilleur-report-{k}")
        if not any((p / f).exists() for f in REPORT_FILES):
            return p
    raise AiguilleurError(f"{root}: 999 report folders already; remove some")


def run_demo(
    out_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    force: bool = False,
    scenario: str = DEMO_SCENARIO,
    store: str | None = None,
) -> ReplayResult:
    """Replay the crisis and write its report; the folder is checked before any work."""
    out = default_report_dir() if out_dir is None else Path(out_dir)
    check_report_dir(out, force=force)
    sc = load_scenario(scenario)
    res = replay(sc, store=store, progress=progress)
    res.report_path = str(write_replay_report(res, out))
    return res
