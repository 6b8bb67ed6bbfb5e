"""Write the shipped AC-OPF operating points of the bundled cases (``<case>.json`` here).

Run from the repository root after a change to a bundled case, to the AC-OPF
or to the margins the scenarios use::

    python aiguilleur/data/operating_points/regenerate.py [case ...]

Each file holds, per branch margin, the dispatch, voltage set-points and
reactive outputs of the AC-OPF (IPOPT) with every branch limited to
``100 - margin`` % of rate A, with the SHA-256 of the case file it was solved
on. :func:`aiguilleur.ops.world.grid_world` uses a point only for that case
file and margin, and only when it holds in an AC power flow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aiguilleur.ops.world import operating_point_document

#: case -> branch margins (%) of the bundled scenarios that start from it
CASES: dict[str, tuple[float, ...]] = {"case1888": (5.0,)}


def main(argv: list[str]) -> None:
    here = Path(__file__).resolve().parent
    for case in argv or sorted(CASES):
        doc = operating_point_document(case, CASES.get(case, (5.0,)))
        out = here / f"{doc['case']}.json"
        out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"{out.name}: margins {', '.join(doc['margins'])} %")


if __name__ == "__main__":
    main(sys.argv[1:])
