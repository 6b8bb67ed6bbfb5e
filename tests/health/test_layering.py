"""``health`` is a leaf: it imports neither grid, logistics, forecast, ops nor the CLI."""

from __future__ import annotations

import subprocess
import sys


def test_health_is_a_leaf() -> None:
    code = (
        "import sys, aiguilleur.health\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] in (['aiguilleur', 'grid'],"
        " ['aiguilleur', 'logistics'], ['aiguilleur', 'forecast'], ['aiguilleur', 'ops'],"
        " ['aiguilleur', 'cli'], ['aiguilleur', 'api'])]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
